// The monitor monitors itself: diagnostic settings that send the logs of its own resources to the
// workspace. Storage: reads, writes and deletes on blobs (host, code package, dead letters) and tables
// (state, exemptions), plus the account's transaction metrics; the Function App: FunctionAppLogs;
// the data collection rule: LogErrors (DCRLogErrors: ingestion and transformation errors). The system
// topics' delivery failures are set beside each topic (event-topics.bicep).

@description('Required. Resource id of the Log Analytics workspace the logs go to.')
param workspaceResourceId string

@description('Required. Name of the monitor\'s storage account.')
param storageAccountName string

@description('Required. Name of the Function App.')
param functionAppName string

@description('Required. Name of the data collection rule of the findings.')
param dataCollectionRuleName string

@description('Optional. Name of every diagnostic setting.')
param settingName string = 'compliance-monitor-self'

var storageLogs = [
  {
    category: 'StorageRead'
    enabled: true
  }
  {
    category: 'StorageWrite'
    enabled: true
  }
  {
    category: 'StorageDelete'
    enabled: true
  }
]

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

resource site 'Microsoft.Web/sites@2024-04-01' existing = {
  name: functionAppName
}

resource dataCollectionRule 'Microsoft.Insights/dataCollectionRules@2023-03-11' existing = {
  name: dataCollectionRuleName
}

resource storageMetrics 'Microsoft.Insights/diagnosticSettings@2021-05-01-preview' = {
  name: settingName
  scope: storage
  properties: {
    workspaceId: workspaceResourceId
    metrics: [
      {
        category: 'Transaction'
        enabled: true
      }
    ]
  }
}

resource blobLogs 'Microsoft.Insights/diagnosticSettings@2021-05-01-preview' = {
  name: settingName
  scope: blobService
  properties: {
    workspaceId: workspaceResourceId
    logs: storageLogs
  }
}

resource tableLogs 'Microsoft.Insights/diagnosticSettings@2021-05-01-preview' = {
  name: settingName
  scope: tableService
  properties: {
    workspaceId: workspaceResourceId
    logs: storageLogs
  }
}

resource functionAppLogs 'Microsoft.Insights/diagnosticSettings@2021-05-01-preview' = {
  name: settingName
  scope: site
  properties: {
    workspaceId: workspaceResourceId
    logs: [
      {
        category: 'FunctionAppLogs'
        enabled: true
      }
    ]
  }
}

resource dataCollectionRuleLogs 'Microsoft.Insights/diagnosticSettings@2021-05-01-preview' = {
  name: settingName
  scope: dataCollectionRule
  properties: {
    workspaceId: workspaceResourceId
    logs: [
      {
        category: 'LogErrors'
        enabled: true
      }
    ]
  }
}

@description('The name of the diagnostic settings.')
output name string = settingName

@description('The resource ids of the diagnostic settings.')
output resourceIds array = [
  storageMetrics.id
  blobLogs.id
  tableLogs.id
  functionAppLogs.id
  dataCollectionRuleLogs.id
]

@description('The resource id of the Function App\'s diagnostic setting.')
output resourceId string = functionAppLogs.id
