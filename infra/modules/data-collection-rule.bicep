// The data collection rule (kind Direct) the function sends findings to through the
// Logs Ingestion API. Its stream declaration is the finding record (the same generated
// column list as the table); the data flow writes the stream to the custom table.
//
// With private ingestion (main.bicep enableMonitorPrivateLink) the function sends to a data collection
// endpoint instead, whose public network access is off and which an Azure Monitor Private Link Scope serves:
// the Logs Ingestion API takes private link only through a DCE
// (https://learn.microsoft.com/azure/azure-monitor/logs/logs-ingestion-api-overview). The rule is then one
// that names the endpoint (dataCollectionEndpointId), not kind Direct, under a name of its own, so that
// turning the option on creates a new rule rather than changing an existing rule's kind.

@description('Required. Name of the data collection rule.')
param name string

@description('Optional. Azure region; must be the workspace\'s region.')
param location string = resourceGroup().location

@description('Optional. Tags for the rule.')
param tags object = {}

@description('Required. Resource id of the Log Analytics workspace that holds the findings table.')
param workspaceResourceId string

@description('Required. Name of the custom table the findings land in (ComplianceFindings_CL).')
param tableName string

@description('Optional. Name of the input stream; the code sends to it (LOGS_INGESTION__streamName).')
param streamName string = 'Custom-ComplianceFindings'

@description('Required. Name of the custom table the posture snapshots land in (ComplianceSnapshot_CL).')
param snapshotTableName string

@description('Optional. Name of the snapshot input stream (LOGS_INGESTION__snapshotStreamName).')
param snapshotStreamName string = 'Custom-ComplianceSnapshot'

@description('Required. Name of the custom table permanent rejections land in (ComplianceRejections_CL).')
param rejectionsTableName string

@description('Optional. Name of the rejections input stream (LOGS_INGESTION__rejectionStreamName).')
param rejectionsStreamName string = 'Custom-ComplianceRejections'

@description('Required. Name of the custom table parity records land in (ComplianceParity_CL).')
param parityTableName string

@description('Optional. Name of the parity input stream (LOGS_INGESTION__parityStreamName).')
param parityStreamName string = 'Custom-ComplianceParity'

@description('Optional. Send through a data collection endpoint with public network access off (private link).')
param privateIngestion bool = false

@description('Optional. Name of the data collection endpoint (with privateIngestion).')
param endpointName string = ''

var findingColumns = loadJsonContent('../finding-columns.json')
var snapshotColumns = loadJsonContent('../snapshot-columns.json')
var parityColumns = loadJsonContent('../parity-columns.json')
var rejectionsColumns = loadJsonContent('../rejections-columns.json')

resource endpoint 'Microsoft.Insights/dataCollectionEndpoints@2023-03-11' = if (privateIngestion) {
  name: endpointName
  location: location
  tags: tags
  properties: {
    description: 'Logs ingestion endpoint of the compliance monitor, reached through its Azure Monitor Private Link Scope.'
    networkAcls: {
      publicNetworkAccess: 'Disabled'
    }
  }
}

resource dcr 'Microsoft.Insights/dataCollectionRules@2023-03-11' = {
  name: privateIngestion ? '${name}-pl' : name
  location: location
  tags: tags
  kind: privateIngestion ? null : 'Direct'
  properties: {
    description: 'Compliance findings from the event-driven compliance monitor.'
    dataCollectionEndpointId: privateIngestion ? endpoint.id : null
    streamDeclarations: {
      '${streamName}': {
        columns: findingColumns
      }
      '${snapshotStreamName}': {
        columns: snapshotColumns
      }
      '${parityStreamName}': {
        columns: parityColumns
      }
      '${rejectionsStreamName}': {
        columns: rejectionsColumns
      }
    }
    destinations: {
      logAnalytics: [
        {
          name: 'findingsWorkspace'
          workspaceResourceId: workspaceResourceId
        }
      ]
    }
    dataFlows: [
      {
        streams: [
          streamName
        ]
        destinations: [
          'findingsWorkspace'
        ]
        transformKql: 'source'
        outputStream: 'Custom-${tableName}'
      }
      {
        streams: [
          snapshotStreamName
        ]
        destinations: [
          'findingsWorkspace'
        ]
        transformKql: 'source'
        outputStream: 'Custom-${snapshotTableName}'
      }
      {
        streams: [
          parityStreamName
        ]
        destinations: [
          'findingsWorkspace'
        ]
        transformKql: 'source'
        outputStream: 'Custom-${parityTableName}'
      }
      {
        streams: [
          rejectionsStreamName
        ]
        destinations: [
          'findingsWorkspace'
        ]
        transformKql: 'source'
        outputStream: 'Custom-${rejectionsTableName}'
      }
    ]
  }
}

@description('The name of the data collection rule.')
output name string = dcr.name

@description('The resource id of the data collection rule.')
output resourceId string = dcr.id

@description('The rule\'s immutable id (dcr-...): LOGS_INGESTION__ruleId.')
output immutableId string = dcr.properties.immutableId

@description('Where the code sends to (LOGS_INGESTION__endpoint): the rule\'s own logs ingestion endpoint, or with private ingestion the data collection endpoint\'s.')
output logsIngestionEndpoint string = privateIngestion ? endpoint!.properties.logsIngestion.endpoint : dcr.properties.endpoints.logsIngestion

@description('The resource id of the data collection endpoint; empty without private ingestion.')
output endpointResourceId string = privateIngestion ? endpoint.id : ''

@description('The input stream the code sends to: LOGS_INGESTION__streamName.')
output streamName string = streamName

@description('The snapshot input stream: LOGS_INGESTION__snapshotStreamName.')
output snapshotStreamName string = snapshotStreamName

@description('The parity input stream: LOGS_INGESTION__parityStreamName.')
output parityStreamName string = parityStreamName

@description('The rejections input stream: LOGS_INGESTION__rejectionStreamName.')
output rejectionsStreamName string = rejectionsStreamName
