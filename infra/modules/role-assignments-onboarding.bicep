// The onboarding role on the monitor's resource group for the deployIfNotExists assignments' identities:
// they assign the shared topic identity (held here) to each subscription's system topics, and Event Grid
// checks their write access to the storage account the events are delivered to.
//
// With private networking the topics deliver with their own system-assigned identities, so each
// subscription's deployment assigns them Storage Blob Data Contributor (dead-letter container) and
// Storage Queue Data Message Sender (events queue). For that the identities get Role Based Access Control
// Administrator on the storage account with a condition: they may add and remove assignments of those two
// roles to service principals, and nothing else
// (https://learn.microsoft.com/azure/role-based-access-control/delegate-role-assignments-examples).

@description('Required. Resource id of the onboarding role definition.')
param roleDefinitionId string

@description('Required. Principal ids (object ids) of the policy assignments\' identities.')
param principalIds array

@description('Optional. Name of the monitor\'s storage account (the topics\' storage roles are assigned on it).')
param storageAccountName string = ''

@description('Optional. Let the identities assign the topics\' two storage roles (private networking), and only those.')
param delegateTopicStorageRoles bool = false

resource assignments 'Microsoft.Authorization/roleAssignments@2022-04-01' = [for principalId in principalIds: {
  name: guid(resourceGroup().id, principalId, roleDefinitionId)
  properties: {
    roleDefinitionId: roleDefinitionId
    principalId: principalId
    principalType: 'ServicePrincipal'
    description: 'Compliance monitor: deploy each subscription\'s system topic (deployIfNotExists).'
  }
}]

// Storage Blob Data Contributor, Storage Queue Data Message Sender: what modules/role-assignments-dead-letter.bicep
// and the policy's template (infra/policy/subscription-events.json) assign to the topics.
var roleIdSet = '{ba92f5b4-2d11-453d-a403-e96b0029c9fe, c6a89b2d-59bc-44d0-9896-0f6e12d7b80a}'
var rbacAdministrator = subscriptionResourceId('Microsoft.Authorization/roleDefinitions', 'f58310d9-a9f6-439a-9e8d-f62e7b41a168')
// Two conditions, because writes and deletes read their attributes from different sources (Request, Resource).
var writeCondition = '((!(ActionMatches{\'Microsoft.Authorization/roleAssignments/write\'})) OR (@Request[Microsoft.Authorization/roleAssignments:RoleDefinitionId] ForAnyOfAnyValues:GuidEquals ${roleIdSet} AND @Request[Microsoft.Authorization/roleAssignments:PrincipalType] ForAnyOfAnyValues:StringEqualsIgnoreCase {\'ServicePrincipal\'}))'
var deleteCondition = '((!(ActionMatches{\'Microsoft.Authorization/roleAssignments/delete\'})) OR (@Resource[Microsoft.Authorization/roleAssignments:RoleDefinitionId] ForAnyOfAnyValues:GuidEquals ${roleIdSet} AND @Resource[Microsoft.Authorization/roleAssignments:PrincipalType] ForAnyOfAnyValues:StringEqualsIgnoreCase {\'ServicePrincipal\'}))'

resource storage 'Microsoft.Storage/storageAccounts@2023-05-01' existing = if (delegateTopicStorageRoles) {
  name: storageAccountName
}

resource topicRoleDelegation 'Microsoft.Authorization/roleAssignments@2022-04-01' = [for principalId in principalIds: if (delegateTopicStorageRoles) {
  name: guid(storage.id, principalId, rbacAdministrator)
  scope: storage
  properties: {
    roleDefinitionId: rbacAdministrator
    principalId: principalId
    principalType: 'ServicePrincipal'
    description: 'Compliance monitor: assign each subscription\'s system topics their two storage roles (deployIfNotExists, private networking).'
    condition: '${writeCondition} AND ${deleteCondition}'
    conditionVersion: '2.0'
  }
}]

@description('The name of the resource group.')
output name string = resourceGroup().name

@description('The resource id of the resource group.')
output resourceId string = resourceGroup().id
