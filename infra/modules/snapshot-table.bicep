// The custom table ComplianceSnapshot_CL in the workspace (new or existing): the posture snapshot
// each reconciliation run sends (the status of every resource and control).
// Deployed at the workspace's resource group. Its columns are the snapshot record:
// infra/snapshot-columns.json, generated from shared/domain/findings.py SNAPSHOT_COLUMNS.

@description('Required. Name of the Log Analytics workspace that holds the table.')
param workspaceName string

@description('Optional. Name of the custom table (must end in _CL).')
param tableName string = 'ComplianceSnapshot_CL'

@description('Optional. Interactive (analytics) retention of the snapshots, in days.')
@minValue(4)
@maxValue(730)
param retentionInDays int = 90

@description('Optional. Total retention of the snapshots (interactive plus long-term), in days.')
@minValue(4)
@maxValue(4383)
param totalRetentionInDays int = 365

var snapshotColumns = loadJsonContent('../snapshot-columns.json')

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
      description: 'Compliance posture snapshots: the status of every resource and control, per reconciliation run.'
      columns: snapshotColumns
    }
  }
}

@description('The name of the table.')
output name string = table.name

@description('The resource id of the table.')
output resourceId string = table.id

@description('The workspace\'s region: the data collection rule must be in the same region.')
output workspaceLocation string = workspace.location
