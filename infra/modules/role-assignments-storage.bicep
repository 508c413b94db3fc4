// Data-plane roles for one principal on the storage account, or on one blob container of it.

@description('Required. Name of the storage account.')
param storageAccountName string

@description('Required. Principal id (object id) that gets the roles.')
param principalId string

@description('Optional. Type of the principal.')
@allowed([
  'ServicePrincipal'
  'User'
  'Group'
])
param principalType string = 'ServicePrincipal'

@description('Required. Role definition ids (GUIDs) to assign on the account.')
param roleDefinitionIds array

resource storage 'Microsoft.Storage/storageAccounts@2023-05-01' existing = {
  name: storageAccountName
}

resource assignments 'Microsoft.Authorization/roleAssignments@2022-04-01' = [for roleId in roleDefinitionIds: {
  name: guid(storage.id, principalId, subscriptionResourceId('Microsoft.Authorization/roleDefinitions', roleId))
  scope: storage
  properties: {
    roleDefinitionId: subscriptionResourceId('Microsoft.Authorization/roleDefinitions', roleId)
    principalId: principalId
    principalType: principalType
  }
}]

@description('The name of the storage account the roles are assigned on.')
output name string = storage.name

@description('The resource id of the storage account the roles are assigned on.')
output resourceId string = storage.id
