// A private endpoint for the Function App (group id sites: the app and its SCM site), so the HTTP API and
// publishing are reached inside the network (main.bicep enableFunctionPrivateEndpoint). The endpoint
// registers in privatelink.azurewebsites.net, created here and linked to the app's network, or yours.
// Event Grid does not deliver to private endpoints, which is why closing the app's public network access
// (disableFunctionPublicNetworkAccess) is offered only with queue delivery.
// https://learn.microsoft.com/azure/azure-functions/functions-networking-options#private-endpoints
// Zone name: https://learn.microsoft.com/azure/private-link/private-endpoint-dns#web

@description('Required. Name of the Function App.')
param functionAppName string

@description('Optional. Azure region of the endpoint (its subnet\'s). Defaults to the resource group\'s.')
param location string = resourceGroup().location

@description('Optional. Tags for the endpoint and the zone.')
param tags object = {}

@description('Required. Resource id of the subnet the endpoint takes its address from.')
param subnetId string

@description('Optional. Resource id of the virtual network the created zone is linked to; empty: no link.')
param virtualNetworkId string = ''

@description('Optional. Resource id of an existing privatelink.azurewebsites.net zone; empty: one is created here.')
param existingPrivateDnsZoneId string = ''

var zoneName = 'privatelink.azurewebsites.net'
var createZone = empty(existingPrivateDnsZoneId)
var zoneId = createZone ? resourceId('Microsoft.Network/privateDnsZones', zoneName) : existingPrivateDnsZoneId

resource site 'Microsoft.Web/sites@2024-04-01' existing = {
  name: functionAppName
}

resource zone 'Microsoft.Network/privateDnsZones@2024-06-01' = if (createZone) {
  name: zoneName
  location: 'global'
  tags: tags
}

resource zoneLink 'Microsoft.Network/privateDnsZones/virtualNetworkLinks@2024-06-01' = if (createZone && !empty(virtualNetworkId)) {
  parent: zone
  name: 'link-${uniqueString(virtualNetworkId)}'
  location: 'global'
  tags: tags
  properties: {
    registrationEnabled: false
    virtualNetwork: {
      id: virtualNetworkId
    }
  }
}

resource endpoint 'Microsoft.Network/privateEndpoints@2024-05-01' = {
  name: 'pe-${functionAppName}-sites'
  location: location
  tags: tags
  properties: {
    subnet: {
      id: subnetId
    }
    privateLinkServiceConnections: [
      {
        name: '${functionAppName}-sites'
        properties: {
          privateLinkServiceId: site.id
          groupIds: [
            'sites'
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
    privateDnsZoneConfigs: [
      {
        name: replace(zoneName, '.', '-')
        properties: {
          privateDnsZoneId: zoneId
        }
      }
    ]
  }
  dependsOn: [
    zone
  ]
}

@description('The name of the private endpoint.')
output name string = endpoint.name

@description('The resource id of the private endpoint.')
output resourceId string = endpoint.id

@description('The private DNS zone id the endpoint registers in.')
output privateDnsZoneId string = zoneId
