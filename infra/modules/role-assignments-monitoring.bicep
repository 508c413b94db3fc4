// Monitoring Metrics Publisher for the Function App's identity on the data collection rule
// (Logs Ingestion API) and on Application Insights (telemetry with local auth off).

@description('Required. Name of the data collection rule.')
param dataCollectionRuleName string

@description('Required. Name of the Application Insights component.')
param appInsightsName string

@description('Required. Principal id (object id) of the Function App\'s managed identity.')
param principalId string

var monitoringMetricsPublisher = subscriptionResourceId('Microsoft.Authorization/roleDefinitions', '3913510d-42f4-4e42-8a64-420c390055eb')

resource dcr 'Microsoft.Insights/dataCollectionRules@2023-03-11' existing = {
  name: dataCollectionRuleName
}

resource appInsights 'Microsoft.Insights/components@2020-02-02' existing = {
  name: appInsightsName
}

resource dcrPublisher 'Microsoft.Authorization/roleAssignments@2022-04-01' = {
  name: guid(dcr.id, principalId, monitoringMetricsPublisher)
  scope: dcr
  properties: {
    roleDefinitionId: monitoringMetricsPublisher
    principalId: principalId
    principalType: 'ServicePrincipal'
  }
}

resource appInsightsPublisher 'Microsoft.Authorization/roleAssignments@2022-04-01' = {
  name: guid(appInsights.id, principalId, monitoringMetricsPublisher)
  scope: appInsights
  properties: {
    roleDefinitionId: monitoringMetricsPublisher
    principalId: principalId
    principalType: 'ServicePrincipal'
  }
}

@description('The name of the role assignment on the data collection rule.')
output name string = dcrPublisher.name

@description('The resource id of the role assignment on the data collection rule.')
output resourceId string = dcrPublisher.id
