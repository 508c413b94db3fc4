// The data collection rule (kind Direct) the function sends findings to through the
// Logs Ingestion API. Its stream declaration is the finding record (the same generated
// column list as the table); the data flow writes the stream to the custom table.

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

var findingColumns = loadJsonContent('../finding-columns.json')
var snapshotColumns = loadJsonContent('../snapshot-columns.json')
var parityColumns = loadJsonContent('../parity-columns.json')
var rejectionsColumns = loadJsonContent('../rejections-columns.json')

resource dcr 'Microsoft.Insights/dataCollectionRules@2023-03-11' = {
  name: name
  location: location
  tags: tags
  kind: 'Direct'
  properties: {
    description: 'Compliance findings from the event-driven compliance monitor.'
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

@description('The rule\'s own logs ingestion endpoint: LOGS_INGESTION__endpoint.')
output logsIngestionEndpoint string = dcr.properties.endpoints.logsIngestion

@description('The input stream the code sends to: LOGS_INGESTION__streamName.')
output streamName string = streamName

@description('The snapshot input stream: LOGS_INGESTION__snapshotStreamName.')
output snapshotStreamName string = snapshotStreamName

@description('The parity input stream: LOGS_INGESTION__parityStreamName.')
output parityStreamName string = parityStreamName

@description('The rejections input stream: LOGS_INGESTION__rejectionStreamName.')
output rejectionsStreamName string = rejectionsStreamName
