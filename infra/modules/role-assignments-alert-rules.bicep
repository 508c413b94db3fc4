// Log Analytics Reader for log alert rules on what they query: each rule runs its query as its own
// system-assigned identity. Deployed at the resource group of the workspace (workspaceName given: it may
// be an existing workspace elsewhere) or of Application Insights (appInsightsName given).

@description('Optional. Name of the Log Analytics workspace the rules query.')
param workspaceName string = ''

@description('Optional. Name of the Application Insights component the rules query.')
param appInsightsName string = ''

@description('Required. Principal ids (object ids) of the alert rules\' managed identities.')
param principalIds array

var logAnalyticsReader = subscriptionResourceId('Microsoft.Authorization/roleDefinitions', '73c42c96-874c-492b-b04d-ab87d138a893')

resource workspace 'Microsoft.OperationalInsights/workspaces@2023-09-01' existing = if (!empty(workspaceName)) {
  name: workspaceName
}

resource appInsights 'Microsoft.Insights/components@2020-02-02' existing = if (!empty(appInsightsName)) {
  name: appInsightsName
}

resource workspaceReaders 'Microsoft.Authorization/roleAssignments@2022-04-01' = [for principalId in principalIds: if (!empty(workspaceName)) {
  name: guid(workspace.id, principalId, logAnalyticsReader)
  scope: workspace
  properties: {
    roleDefinitionId: logAnalyticsReader
    principalId: principalId
    principalType: 'ServicePrincipal'
  }
}]

resource appInsightsReaders 'Microsoft.Authorization/roleAssignments@2022-04-01' = [for principalId in principalIds: if (!empty(appInsightsName)) {
  name: guid(appInsights.id, principalId, logAnalyticsReader)
  scope: appInsights
  properties: {
    roleDefinitionId: logAnalyticsReader
    principalId: principalId
    principalType: 'ServicePrincipal'
  }
}]

@description('A name for what this module grants.')
output name string = 'alert-rule-readers'

@description('The resource id of the scope the rules may read.')
output resourceId string = !empty(workspaceName) ? workspace.id : appInsights.id
