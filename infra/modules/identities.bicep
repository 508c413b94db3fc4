// The user-assigned managed identities of the management-group (and optional single-subscription)
// deployment: one for the Function App, one shared by every monitored subscription's system topics.
//
// The app's identity outlives the app: its role assignments (Reader at the management groups, the
// storage and monitoring roles) are not orphaned when the app is recreated. The topics' identity
// holds the dead-letter (and queue delivery) roles on the central storage account once, instead of
// one system-assigned identity and role assignment per topic (about 1,500 at 500 subscriptions).
// https://learn.microsoft.com/entra/identity/managed-identities-azure-resources/managed-identity-best-practice-recommendations

@description('Required. Name of the app\'s identity.')
param appIdentityName string

@description('Required. Name of the system topics\' shared identity; empty: none (the topics use their own).')
param topicIdentityName string

@description('Optional. Azure region. Defaults to the resource group\'s.')
param location string = resourceGroup().location

@description('Optional. Tags for the identities.')
param tags object = {}

resource app 'Microsoft.ManagedIdentity/userAssignedIdentities@2023-01-31' = {
  name: appIdentityName
  location: location
  tags: tags
}

resource topics 'Microsoft.ManagedIdentity/userAssignedIdentities@2023-01-31' = if (!empty(topicIdentityName)) {
  name: topicIdentityName
  location: location
  tags: tags
}

@description('The resource id of the app\'s identity.')
output appResourceId string = app.id

@description('The client id of the app\'s identity.')
output appClientId string = app.properties.clientId

@description('The principal id (object id) of the app\'s identity.')
output appPrincipalId string = app.properties.principalId

@description('The resource id of the topics\' identity; empty without one.')
output topicResourceId string = empty(topicIdentityName) ? '' : topics.id

@description('The principal id (object id) of the topics\' identity; empty without one.')
output topicPrincipalId string = empty(topicIdentityName) ? '' : topics!.properties.principalId

@description('The name of the app\'s identity.')
output name string = app.name

@description('The resource id of the app\'s identity.')
output resourceId string = app.id
