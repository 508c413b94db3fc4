// The custom table ComplianceFindings_CL in the workspace (new or existing).
// Deployed at the workspace's resource group. Its columns are the finding record:
// infra/finding-columns.json, generated from shared/domain/findings.py FINDING_COLUMNS.

@description('Required. Name of the Log Analytics workspace that holds the table.')
param workspaceName string

@description('Optional. Name of the custom table (must end in _CL).')
param tableName string = 'ComplianceFindings_CL'

@description('Optional. Interactive (analytics) retention of the findings, in days.')
@minValue(4)
@maxValue(730)
param retentionInDays int = 90

@description('Optional. Total retention of the findings (interactive plus long-term), in days.')
@minValue(4)
@maxValue(4383)
param totalRetentionInDays int = 365

var findingColumns = loadJsonContent('../finding-columns.json')

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
      description: 'Compliance findings: one record per control state transition (New, Drifted, Resolved, Deleted).'
      columns: findingColumns
    }
  }
}

@description('The name of the table.')
output name string = table.name

@description('The resource id of the table.')
output resourceId string = table.id

@description('The workspace\'s region: the data collection rule must be in the same region.')
output workspaceLocation string = workspace.location
