// Application Insights (workspace-based) for the Function App. Local (key) authentication
// is off: the app sends telemetry with its managed identity (Monitoring Metrics Publisher).

@description('Required. Name of the Application Insights component.')
param name string

@description('Optional. Azure region. Defaults to the resource group\'s.')
param location string = resourceGroup().location

@description('Optional. Tags for the component.')
param tags object = {}

@description('Required. Resource id of the Log Analytics workspace the telemetry is stored in.')
param workspaceResourceId string

@description('Optional. Accept ingestion from public networks; false with the Azure Monitor private link (queries stay public: the portal, the alerts).')
param publicIngestion bool = true

resource appInsights 'Microsoft.Insights/components@2020-02-02' = {
  name: name
  location: location
  tags: tags
  kind: 'web'
  properties: {
    Application_Type: 'web'
    WorkspaceResourceId: workspaceResourceId
    IngestionMode: 'LogAnalytics'
    DisableLocalAuth: true
    publicNetworkAccessForIngestion: publicIngestion ? 'Enabled' : 'Disabled'
    publicNetworkAccessForQuery: 'Enabled'
  }
}

@description('The name of the component.')
output name string = appInsights.name

@description('The resource id of the component.')
output resourceId string = appInsights.id

@description('The connection string (it names the component; it is not a credential with local auth off).')
output connectionString string = appInsights.properties.ConnectionString
