// The private endpoint of a created Azure Monitor Private Link Scope (group id azuremonitor), with the DNS
// zones its names resolve in: four of Azure Monitor's own and the blob zone (agents' storage), which the
// storage account's endpoints already use and which is passed in, not created twice. A zone given in
// existingPrivateDnsZoneIds (by key: monitor, oms, ods, agentsvc) is used as it is; the others are created
// here and linked to the app's network.
// Zone names: https://learn.microsoft.com/azure/private-link/private-endpoint-dns#management-and-governance
// (Azure Monitor, Microsoft.Insights/privateLinkScopes, azuremonitor); Azure's public cloud names.

@description('Required. Resource id of the Azure Monitor Private Link Scope.')
param scopeResourceId string

@description('Required. Name of the private endpoint.')
param name string

@description('Optional. Azure region of the endpoint (its subnet\'s). Defaults to the resource group\'s.')
param location string = resourceGroup().location

@description('Optional. Tags for the endpoint and the zones.')
param tags object = {}

@description('Required. Resource id of the subnet the endpoint takes its addresses from.')
param subnetId string

@description('Optional. Resource id of the virtual network the created zones are linked to; empty: no link.')
param virtualNetworkId string = ''

@description('Required. Resource id of the privatelink.blob zone (the storage endpoints\' zone).')
param blobPrivateDnsZoneId string

@description('Optional. Existing zone ids by key (monitor, oms, ods, agentsvc); a key without one gets a zone here.')
param existingPrivateDnsZoneIds object = {}

var monitorZones = {
  monitor: 'privatelink.monitor.azure.com'
  oms: 'privatelink.oms.opinsights.azure.com'
  ods: 'privatelink.ods.opinsights.azure.com'
  agentsvc: 'privatelink.agentsvc.azure-automation.net'
}
var zoneKeys = [
  'monitor'
  'oms'
  'ods'
  'agentsvc'
]
var createdZoneKeys = filter(zoneKeys, key => !contains(existingPrivateDnsZoneIds, key))
var linkedZoneKeys = empty(virtualNetworkId) ? [] : createdZoneKeys
// The zone each name registers in: the given one, else the one created here; then the storage endpoints' blob zone.
var monitorZoneIds = [for key in zoneKeys: contains(existingPrivateDnsZoneIds, key) ? existingPrivateDnsZoneIds[key] : resourceId('Microsoft.Network/privateDnsZones', monitorZones[key])]
var zoneIds = concat(monitorZoneIds, [
  blobPrivateDnsZoneId
])

resource zones 'Microsoft.Network/privateDnsZones@2024-06-01' = [for key in createdZoneKeys: {
  name: monitorZones[key]
  location: 'global'
  tags: tags
}]

resource zoneLinks 'Microsoft.Network/privateDnsZones/virtualNetworkLinks@2024-06-01' = [for (key, i) in linkedZoneKeys: {
  parent: zones[i]
  name: 'link-${uniqueString(virtualNetworkId)}'
  location: 'global'
  tags: tags
  properties: {
    registrationEnabled: false
    virtualNetwork: {
      id: virtualNetworkId
    }
  }
}]

resource endpoint 'Microsoft.Network/privateEndpoints@2024-05-01' = {
  name: name
  location: location
  tags: tags
  properties: {
    subnet: {
      id: subnetId
    }
    privateLinkServiceConnections: [
      {
        name: name
        properties: {
          privateLinkServiceId: scopeResourceId
          groupIds: [
            'azuremonitor'
          ]
        }
      }
    ]
  }
}

resource zoneGroup 'Microsoft.Network/privateEndpoints/privateDnsZoneGroups@2024-05-01' = {
  parent: endpoint
  name: 'default'
  properties: {
    privateDnsZoneConfigs: [for zoneId in zoneIds: {
      name: replace(last(split(zoneId, '/')), '.', '-')
      properties: {
        privateDnsZoneId: zoneId
      }
    }]
  }
  dependsOn: [
    zones
  ]
}

@description('The name of the private endpoint.')
output name string = endpoint.name

@description('The resource id of the private endpoint.')
output resourceId string = endpoint.id

@description('The private DNS zone ids the endpoint registers in (monitor, oms, ods, agentsvc, blob).')
output privateDnsZoneIds array = zoneIds
