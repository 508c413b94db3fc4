// Data-plane roles for one principal on the blob containers and tables of a storage account it uses,
// each role on its own container or table, none on the whole account.

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

@description('Optional. Roles on blob containers: [{ containerName, roleDefinitionId }] (role definition GUIDs). The containers must exist.')
param containerRoles array = []

@description('Optional. Roles on tables: [{ tableName, roleDefinitionId }] (role definition GUIDs). The tables must exist.')
param tableRoles array = []

@description('Optional. Roles on queues: [{ queueName, roleDefinitionId }] (role definition GUIDs). The queues must exist.')
param queueRoles array = []

resource storage 'Microsoft.Storage/storageAccounts@2023-05-01' existing = {
  name: storageAccountName
}

resource blobService 'Microsoft.Storage/storageAccounts/blobServices@2023-05-01' existing = {
  parent: storage
  name: 'default'
}

resource tableService 'Microsoft.Storage/storageAccounts/tableServices@2023-05-01' existing = {
  parent: storage
  name: 'default'
}

resource queueService 'Microsoft.Storage/storageAccounts/queueServices@2023-05-01' existing = {
  parent: storage
  name: 'default'
}

resource queues 'Microsoft.Storage/storageAccounts/queueServices/queues@2023-05-01' existing = [for grant in queueRoles: {
  parent: queueService
  name: grant.queueName
}]

resource queueAssignments 'Microsoft.Authorization/roleAssignments@2022-04-01' = [for (grant, i) in queueRoles: {
  name: guid(queues[i].id, principalId, subscriptionResourceId('Microsoft.Authorization/roleDefinitions', grant.roleDefinitionId))
  scope: queues[i]
  properties: {
    roleDefinitionId: subscriptionResourceId('Microsoft.Authorization/roleDefinitions', grant.roleDefinitionId)
    principalId: principalId
    principalType: principalType
  }
}]

resource containers 'Microsoft.Storage/storageAccounts/blobServices/containers@2023-05-01' existing = [for grant in containerRoles: {
  parent: blobService
  name: grant.containerName
}]

resource tables 'Microsoft.Storage/storageAccounts/tableServices/tables@2023-05-01' existing = [for grant in tableRoles: {
  parent: tableService
  name: grant.tableName
}]

resource containerAssignments 'Microsoft.Authorization/roleAssignments@2022-04-01' = [for (grant, i) in containerRoles: {
  name: guid(containers[i].id, principalId, subscriptionResourceId('Microsoft.Authorization/roleDefinitions', grant.roleDefinitionId))
  scope: containers[i]
  properties: {
    roleDefinitionId: subscriptionResourceId('Microsoft.Authorization/roleDefinitions', grant.roleDefinitionId)
    principalId: principalId
    principalType: principalType
  }
}]

resource tableAssignments 'Microsoft.Authorization/roleAssignments@2022-04-01' = [for (grant, i) in tableRoles: {
  name: guid(tables[i].id, principalId, subscriptionResourceId('Microsoft.Authorization/roleDefinitions', grant.roleDefinitionId))
  scope: tables[i]
  properties: {
    roleDefinitionId: subscriptionResourceId('Microsoft.Authorization/roleDefinitions', grant.roleDefinitionId)
    principalId: principalId
    principalType: principalType
  }
}]

@description('The name of the storage account the roles are assigned on.')
output name string = storage.name

@description('The resource id of the storage account the roles are assigned on.')
output resourceId string = storage.id
