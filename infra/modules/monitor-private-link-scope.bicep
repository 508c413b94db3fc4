// The Azure Monitor Private Link Scope (AMPLS) the monitor's workspace, Application Insights component and
// data collection endpoint are reached through (main.bicep enableMonitorPrivateLink): created here, or an
// existing one (a hub's) the three resources are added to. Microsoft's guidance is one AMPLS per DNS, set on
// the hub in hub-and-spoke networks, because an AMPLS's private endpoint overrides the DNS names of all of
// Azure Monitor for every network that shares that DNS
// (https://learn.microsoft.com/azure/azure-monitor/logs/private-link-design).
//
// A created scope's access modes stay Open: the network may still reach other Azure Monitor resources over
// their public endpoints. The monitor's own resources refuse public ingestion themselves
// (publicNetworkAccessForIngestion Disabled on the workspace and the component, the endpoint's network
// ACLs), which is what keeps their ingestion private.

@description('Required. Name of the scope (created), or of the existing scope in this resource group.')
param name string

@description('Optional. Create the scope (true), or add the resources to the existing one named (false).')
param create bool = true

@description('Optional. Tags for a created scope.')
param tags object = {}

@description('Required. Resource ids of the Azure Monitor resources the scope serves.')
param linkedResourceIds array

resource createdScope 'Microsoft.Insights/privateLinkScopes@2021-07-01-preview' = if (create) {
  name: name
  location: 'global'
  tags: tags
  properties: {
    accessModeSettings: {
      ingestionAccessMode: 'Open'
      queryAccessMode: 'Open'
    }
  }
}

resource existingScope 'Microsoft.Insights/privateLinkScopes@2021-07-01-preview' existing = if (!create) {
  name: name
}

resource createdLinks 'Microsoft.Insights/privateLinkScopes/scopedResources@2021-07-01-preview' = [for id in linkedResourceIds: if (create) {
  parent: createdScope
  name: 'cm-${uniqueString(id)}'
  properties: {
    linkedResourceId: id
  }
}]

resource existingLinks 'Microsoft.Insights/privateLinkScopes/scopedResources@2021-07-01-preview' = [for id in linkedResourceIds: if (!create) {
  parent: existingScope
  name: 'cm-${uniqueString(id)}'
  properties: {
    linkedResourceId: id
  }
}]

@description('The resource id of the scope.')
output resourceId string = create ? createdScope.id : existingScope.id

@description('The name of the scope.')
output name string = name
