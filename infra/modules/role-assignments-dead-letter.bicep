// Storage Blob Data Contributor on the dead-letter container for the system topics'
// managed identities (deadLetterWithResourceIdentity), and, with queue delivery, Storage Queue
// Data Message Sender on the events queue (deliveryWithResourceIdentity). Deployed at the storage
// account's resource group, once per monitored subscription.

@description('Required. Name of the storage account.')
param storageAccountName string

@description('Required. Name of the dead-letter blob container.')
param containerName string

@description('Optional. Name of the queue events are delivered to (queue delivery); empty: none.')
param queueName string = ''

@description('Required. Principal ids (object ids) of the system topics\' managed identities.')
param principalIds array

var blobDataContributor = subscriptionResourceId('Microsoft.Authorization/roleDefinitions', 'ba92f5b4-2d11-453d-a403-e96b0029c9fe')
var queueMessageSender = subscriptionResourceId('Microsoft.Authorization/roleDefinitions', 'c6a89b2d-59bc-44d0-9896-0f6e12d7b80a')

resource storage 'Microsoft.Storage/storageAccounts@2023-05-01' existing = {
  name: storageAccountName
}

resource blobService 'Microsoft.Storage/storageAccounts/blobServices@2023-05-01' existing = {
  parent: storage
  name: 'default'
}

resource container 'Microsoft.Storage/storageAccounts/blobServices/containers@2023-05-01' existing = {
  parent: blobService
  name: containerName
}

resource assignments 'Microsoft.Authorization/roleAssignments@2022-04-01' = [for principalId in principalIds: {
  name: guid(container.id, principalId, blobDataContributor)
  scope: container
  properties: {
    roleDefinitionId: blobDataContributor
    principalId: principalId
    principalType: 'ServicePrincipal'
  }
}]

resource queueService 'Microsoft.Storage/storageAccounts/queueServices@2023-05-01' existing = {
  parent: storage
  name: 'default'
}

resource queue 'Microsoft.Storage/storageAccounts/queueServices/queues@2023-05-01' existing = if (!empty(queueName)) {
  parent: queueService
  name: queueName
}

resource queueSenders 'Microsoft.Authorization/roleAssignments@2022-04-01' = [for principalId in principalIds: if (!empty(queueName)) {
  name: guid(queue.id, principalId, queueMessageSender)
  scope: queue
  properties: {
    roleDefinitionId: queueMessageSender
    principalId: principalId
    principalType: 'ServicePrincipal'
  }
}]

@description('The name of the storage account.')
output name string = storage.name

@description('The resource id of the storage account (the dead-letter destination).')
output resourceId string = storage.id
