// The storage account for the Functions host, the code package, the compliance state
// table and dead-lettered events. Identity-based access only: no shared keys.

@description('Required. Name of the storage account (3-24 lower-case letters and digits).')
@minLength(3)
@maxLength(24)
param name string

@description('Optional. Azure region. Defaults to the resource group\'s.')
param location string = resourceGroup().location

@description('Optional. Tags for the account.')
param tags object = {}

@description('Optional. Replication of the account.')
@allowed([
  'Standard_LRS'
  'Standard_ZRS'
  'Standard_GRS'
  'Standard_GZRS'
  'Standard_RAGRS'
  'Standard_RAGZRS'
])
param skuName string = 'Standard_GRS'

@description('Required. Name of the table that holds the compliance state (STATE_TABLE_NAME).')
param stateTableName string

@description('Optional. Name of the table that holds exemptions (EXEMPTIONS_TABLE_NAME).')
param exemptionsTableName string = 'ComplianceExemptions'

@description('Required. Name of the blob container the Flex Consumption plan deploys the code package to.')
param deploymentContainerName string

@description('Required. Name of the blob container Event Grid writes undeliverable events to.')
param deadLetterContainerName string

@description('Optional. Blob containers the Functions host uses (AzureWebJobsStorage): leases and timer state, function keys.')
param hostContainerNames array = [
  'azure-webjobs-hosts'
  'azure-webjobs-secrets'
]

@description('Optional. Days a deleted blob or container can be restored.')
@minValue(1)
@maxValue(365)
param deleteRetentionInDays int = 7

@description('Optional. Name of the queue Event Grid delivers events to (queue delivery); empty: no queue.')
param eventsQueueName string = ''

@description('Optional. Put a CanNotDelete lock on the storage account (it holds the compliance state and the dead letters).')
param enableResourceLocks bool = false

@description('Optional. Close the public endpoint to everything but trusted Azure services (networkAcls defaultAction Deny): the app reaches the account through private endpoints (storage-private-endpoints.bicep), Event Grid delivers and dead-letters as a trusted service with its topics\' identities.')
param denyPublicNetworkAccess bool = false

// With denyPublicNetworkAccess the public endpoint stays enabled but refuses every request except those of
// trusted Azure services (bypass AzureServices): Event Grid is one, and it cannot use a private endpoint
// ("with push delivery it isn't possible to deliver events using private endpoints"), so its system topics
// write dead letters and (queue delivery) events through the public endpoint with their system-assigned
// identities, which Event Grid supports behind a storage firewall only with the trusted-services exception.
// publicNetworkAccess 'Disabled' would refuse those too: events would fail and could not even be dead-lettered.
// https://learn.microsoft.com/azure/event-grid/consume-private-endpoints
// https://learn.microsoft.com/azure/event-grid/handler-storage-queues
// https://learn.microsoft.com/azure/storage/common/storage-network-security#grant-access-to-trusted-azure-services

resource storage 'Microsoft.Storage/storageAccounts@2023-05-01' = {
  name: name
  location: location
  tags: tags
  kind: 'StorageV2'
  sku: {
    name: skuName
  }
  properties: {
    accessTier: 'Hot'
    allowSharedKeyAccess: false
    defaultToOAuthAuthentication: true
    allowBlobPublicAccess: false
    allowCrossTenantReplication: false
    minimumTlsVersion: 'TLS1_2'
    supportsHttpsTrafficOnly: true
    isLocalUserEnabled: false
    isSftpEnabled: false
    publicNetworkAccess: 'Enabled'
    networkAcls: {
      bypass: 'AzureServices'
      defaultAction: denyPublicNetworkAccess ? 'Deny' : 'Allow'
    }
    encryption: {
      keySource: 'Microsoft.Storage'
      requireInfrastructureEncryption: true
      services: {
        blob: {
          enabled: true
          keyType: 'Account'
        }
        file: {
          enabled: true
          keyType: 'Account'
        }
        queue: {
          enabled: true
          keyType: 'Account'
        }
        table: {
          enabled: true
          keyType: 'Account'
        }
      }
    }
  }
}

resource blobService 'Microsoft.Storage/storageAccounts/blobServices@2023-05-01' = {
  parent: storage
  name: 'default'
  properties: {
    deleteRetentionPolicy: {
      enabled: true
      days: deleteRetentionInDays
    }
    containerDeleteRetentionPolicy: {
      enabled: true
      days: deleteRetentionInDays
    }
  }
}

resource deploymentContainer 'Microsoft.Storage/storageAccounts/blobServices/containers@2023-05-01' = {
  parent: blobService
  name: deploymentContainerName
  properties: {
    publicAccess: 'None'
  }
}

resource deadLetterContainer 'Microsoft.Storage/storageAccounts/blobServices/containers@2023-05-01' = {
  parent: blobService
  name: deadLetterContainerName
  properties: {
    publicAccess: 'None'
  }
}

// The Functions host's own containers (leases and timer state; function keys), created here so that its
// roles can be granted on them alone (role-assignments-storage.bicep) instead of on the account.
resource hostContainers 'Microsoft.Storage/storageAccounts/blobServices/containers@2023-05-01' = [for containerName in hostContainerNames: {
  parent: blobService
  name: containerName
  properties: {
    publicAccess: 'None'
  }
}]

resource queueService 'Microsoft.Storage/storageAccounts/queueServices@2023-05-01' = if (!empty(eventsQueueName)) {
  parent: storage
  name: 'default'
}

// The events queue and the poison queue the Functions host moves a message to after maxDequeueCount tries.
resource eventQueues 'Microsoft.Storage/storageAccounts/queueServices/queues@2023-05-01' = [for queueName in (empty(eventsQueueName) ? [] : [eventsQueueName, '${eventsQueueName}-poison']): {
  parent: queueService
  name: queueName
}]

resource storageLock 'Microsoft.Authorization/locks@2020-05-01' = if (enableResourceLocks) {
  name: 'compliance-monitor-do-not-delete'
  scope: storage
  properties: {
    level: 'CanNotDelete'
    notes: 'Holds the compliance monitor\'s state, outbox and dead-lettered events.'
  }
}

resource tableService 'Microsoft.Storage/storageAccounts/tableServices@2023-05-01' = {
  parent: storage
  name: 'default'
}

resource stateTable 'Microsoft.Storage/storageAccounts/tableServices/tables@2023-05-01' = {
  parent: tableService
  name: stateTableName
}

resource exemptionsTable 'Microsoft.Storage/storageAccounts/tableServices/tables@2023-05-01' = {
  parent: tableService
  name: exemptionsTableName
}

@description('The name of the storage account.')
output name string = storage.name

@description('The resource id of the storage account.')
output resourceId string = storage.id

@description('The blob endpoint, e.g. https://<account>.blob.core.windows.net/.')
output blobEndpoint string = storage.properties.primaryEndpoints.blob

@description('The table service URI without a trailing slash: STATE_STORAGE__tableServiceUri.')
output tableServiceUri string = 'https://${storage.name}.table.${environment().suffixes.storage}'

@description('The name of the state table.')
output stateTableName string = stateTable.name

@description('The name of the exemptions table.')
output exemptionsTableName string = exemptionsTable.name

@description('The name of the dead-letter container.')
output deadLetterContainerName string = deadLetterContainer.name

@description('The name of the code package container.')
output deploymentContainerName string = deploymentContainer.name

@description('The names of the Functions host\'s containers.')
output hostContainerNames array = [for (containerName, i) in hostContainerNames: hostContainers[i].name]

@description('The queue Event Grid delivers to (queue delivery), and its poison queue; empty without queue delivery.')
output eventQueueNames array = [for (queueName, i) in (empty(eventsQueueName) ? [] : [eventsQueueName, '${eventsQueueName}-poison']): eventQueues[i].name]

@description('The queue service URI (identity-based queue trigger connection: EVENTS_QUEUE__queueServiceUri).')
output queueServiceUri string = 'https://${storage.name}.queue.${environment().suffixes.storage}'
