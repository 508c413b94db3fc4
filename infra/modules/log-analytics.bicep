// A Log Analytics workspace for the findings, Application Insights and the alerts.
// Deployed only when main.bicep is not given an existing workspace.

@description('Required. Name of the workspace.')
param name string

@description('Optional. Azure region. Defaults to the resource group\'s.')
param location string = resourceGroup().location

@description('Optional. Tags for the workspace.')
param tags object = {}

@description('Optional. Interactive retention of the workspace\'s tables, in days.')
@minValue(30)
@maxValue(730)
param retentionInDays int = 90

@description('Optional. Accept ingestion from public networks; false with the Azure Monitor private link (queries stay public: the portal, the alerts).')
param publicIngestion bool = true

resource workspace 'Microsoft.OperationalInsights/workspaces@2023-09-01' = {
  name: name
  location: location
  tags: tags
  properties: {
    sku: {
      name: 'PerGB2018'
    }
    retentionInDays: retentionInDays
    features: {
      enableLogAccessUsingOnlyResourcePermissions: true
      // Entra ID only: no workspace keys for queries or the legacy agents' ingestion.
      disableLocalAuth: true
    }
    publicNetworkAccessForIngestion: publicIngestion ? 'Enabled' : 'Disabled'
    publicNetworkAccessForQuery: 'Enabled'
  }
}

@description('The name of the workspace.')
output name string = workspace.name

@description('The resource id of the workspace.')
output resourceId string = workspace.id
