// Private endpoints of the monitor's storage account for the three services the app uses: blob (the
// Functions host's containers, the code package), table (ComplianceState, ComplianceExemptions) and queue
// (queue delivery; the host's own queues). Each endpoint registers its address in the private DNS zone
// privatelink.<service>.<storage suffix> through a DNS zone group, so <account>.<service>.core.windows.net
// resolves to the private address inside the virtual network.
//
// Bring your own DNS: with a zone id in existingPrivateDnsZoneIds (a hub's central zones) no zone and no
// virtual network link is created for that service; the endpoint registers in the given zone, and the hub's
// DNS (links or a resolver) must answer for the app's network.
// Group ids and zone names: https://learn.microsoft.com/azure/private-link/private-endpoint-dns#storage
// and https://learn.microsoft.com/azure/storage/common/storage-private-endpoints

@description('Required. Name of the storage account.')
param storageAccountName string

@description('Optional. Azure region of the endpoints (the subnet\'s). Defaults to the resource group\'s.')
param location string = resourceGroup().location

@description('Optional. Tags for the endpoints and the zones.')
param tags object = {}

@description('Required. Resource id of the subnet the endpoints take their addresses from.')
param subnetId string

@description('Optional. Resource id of the virtual network the created zones are linked to (the one the app resolves names in); empty: no link.')
param virtualNetworkId string = ''

@description('Optional. Existing private DNS zone ids by service (blob, table, queue); a service without one gets a zone here.')
param existingPrivateDnsZoneIds object = {}

@description('Optional. The storage services that get an endpoint (private link group ids).')
param services array = [
  'blob'
  'table'
  'queue'
]

var storageSuffix = environment().suffixes.storage
var createdZoneServices = filter(services, service => !contains(existingPrivateDnsZoneIds, service))
// The created zones are linked to the app's network (none given: no links); their order is the zones' order.
var linkedZoneServices = empty(virtualNetworkId) ? [] : createdZoneServices
// The zone each service registers in: the given one, else the one created here.
var zoneIds = [for service in services: contains(existingPrivateDnsZoneIds, service) ? existingPrivateDnsZoneIds[service] : resourceId('Microsoft.Network/privateDnsZones', 'privatelink.${service}.${storageSuffix}')]

resource storage 'Microsoft.Storage/storageAccounts@2023-05-01' existing = {
  name: storageAccountName
}

resource zones 'Microsoft.Network/privateDnsZones@2024-06-01' = [for service in createdZoneServices: {
  name: 'privatelink.${service}.${storageSuffix}'
  location: 'global'
  tags: tags
}]

resource zoneLinks 'Microsoft.Network/privateDnsZones/virtualNetworkLinks@2024-06-01' = [for (service, i) in linkedZoneServices: {
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

resource endpoints 'Microsoft.Network/privateEndpoints@2024-05-01' = [for service in services: {
  name: 'pe-${storageAccountName}-${service}'
  location: location
  tags: tags
  properties: {
    subnet: {
      id: subnetId
    }
    privateLinkServiceConnections: [
      {
        name: '${storageAccountName}-${service}'
        properties: {
          privateLinkServiceId: storage.id
          groupIds: [
            service
          ]
        }
      }
    ]
  }
}]

resource zoneGroups 'Microsoft.Network/privateEndpoints/privateDnsZoneGroups@2024-05-01' = [for (service, i) in services: {
  parent: endpoints[i]
  name: 'default'
  properties: {
    privateDnsZoneConfigs: [
      {
        name: replace('privatelink.${service}.${storageSuffix}', '.', '-')
        properties: {
          privateDnsZoneId: zoneIds[i]
        }
      }
    ]
  }
  dependsOn: [
    zones
  ]
}]

@description('The name of the storage account the endpoints serve.')
output name string = storage.name

@description('The resource id of the storage account the endpoints serve.')
output resourceId string = storage.id

@description('The resource ids of the private endpoints, in the order of services.')
output privateEndpointIds array = [for (service, i) in services: endpoints[i].id]

@description('The private DNS zone ids the endpoints register in, in the order of services.')
output privateDnsZoneIds array = zoneIds
