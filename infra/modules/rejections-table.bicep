// The custom table ComplianceRejections_CL in the workspace (new or existing): one record per event the
// function rejected permanently (acknowledged, never retried), which the pipeline-health alert counts.
// Unlike Application Insights traces it is not sampled. Deployed at the workspace's resource group. Its
// columns are the rejection record: infra/rejections-columns.json, generated from
// shared/domain/rejections.py REJECTION_COLUMNS.

@description('Required. Name of the Log Analytics workspace that holds the table.')
param workspaceName string

@description('Optional. Name of the custom table (must end in _CL).')
param tableName string = 'ComplianceRejections_CL'

@description('Optional. Interactive (analytics) retention of the rejection records, in days.')
@minValue(4)
@maxValue(730)
param retentionInDays int = 90

@description('Optional. Total retention of the rejection records (interactive plus long-term), in days.')
@minValue(4)
@maxValue(4383)
param totalRetentionInDays int = 365

var rejectionsColumns = loadJsonContent('../rejections-columns.json')

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
      description: 'Events the compliance monitor rejected permanently (acknowledged, never retried), one record each.'
      columns: rejectionsColumns
    }
  }
}

@description('The name of the table.')
output name string = table.name

@description('The resource id of the table.')
output resourceId string = table.id

@description('The workspace\'s region: the data collection rule must be in the same region.')
output workspaceLocation string = workspace.location
