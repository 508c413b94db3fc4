// The custom table ComplianceParity_CL in the workspace (new or existing): one record per comparison
// of the monitor's verdict on an Azure Policy assignment with Azure Policy's own latest state
// (agree, disagree, onlyMonitor, onlyAzure, azureOlder), per parity run.
// Deployed at the workspace's resource group. Its columns are the parity record:
// infra/parity-columns.json, generated from shared/domain/parity.py PARITY_COLUMNS.

@description('Required. Name of the Log Analytics workspace that holds the table.')
param workspaceName string

@description('Optional. Name of the custom table (must end in _CL).')
param tableName string = 'ComplianceParity_CL'

@description('Optional. Interactive (analytics) retention of the parity records, in days.')
@minValue(4)
@maxValue(730)
param retentionInDays int = 90

@description('Optional. Total retention of the parity records (interactive plus long-term), in days.')
@minValue(4)
@maxValue(4383)
param totalRetentionInDays int = 365

var parityColumns = loadJsonContent('../parity-columns.json')

resource workspace 'Microsoft.OperationalInsights/workspaces@2023-09-01' existing = {
  name: workspaceName
}

resource table 'Microsoft.OperationalInsights/workspaces/tables@2022-10-01' = {
  parent: workspace
  name: tableName
  properties: {
    plan: 'Analytics'
    retentionInDays: retentionInDays
    totalRetentionInDays: totalRetentionInDays
    schema: {
      name: tableName
      description: 'Parity with Azure Policy: the monitor\'s verdict beside Azure Policy\'s latest state, per assignment, member and resource.'
      columns: parityColumns
    }
  }
}

@description('The name of the table.')
output name string = table.name

@description('The resource id of the table.')
output resourceId string = table.id

@description('The workspace\'s region: the data collection rule must be in the same region.')
output workspaceLocation string = workspace.location
