// The virtual network of the private option (main.bicep enablePrivateNetworking), created only when no
// existing subnets are given: one subnet the Flex Consumption app integrates with (delegated to
// Microsoft.App/environments, the delegation Flex Consumption requires) and one for the storage private
// endpoints, each with its own network security group; with the Azure Monitor private link
// (main.bicep enableMonitorPrivateLink) a third, for the Azure Monitor Private Link Scope's endpoint, in an
// address range of its own added to the network's address space.
//
// Sizes follow Microsoft's Functions networking guidance: a /27 integration subnet serves one Flex
// Consumption app up to 1,000 instances (its outbound traffic goes through at most 27 shared gateways, one
// address each), and all of a Flex app's outbound traffic goes through the virtual network (no Route All
// setting). https://learn.microsoft.com/azure/azure-functions/functions-networking-options#subnets
// NSG inbound rules do not apply to the app (VNet integration is outbound only; inbound is the app's access
// restrictions, function-app.bicep).

@description('Required. Name of the virtual network.')
param name string

@description('Optional. Azure region. Defaults to the resource group\'s.')
param location string = resourceGroup().location

@description('Optional. Tags for the network and its security groups.')
param tags object = {}

@description('Optional. Address space of the virtual network.')
param addressPrefix string = '10.100.0.0/26'

@description('Optional. Address range of the integration subnet (delegated to Microsoft.App/environments; /27 is what Microsoft recommends for one Flex Consumption app).')
param integrationSubnetPrefix string = '10.100.0.0/27'

@description('Optional. Address range of the private endpoint subnet (three endpoints: blob, table, queue).')
param privateEndpointSubnetPrefix string = '10.100.0.32/28'

@description('Optional. Address range of the Azure Monitor private endpoint subnet, outside addressPrefix (it is added to the address space); empty: no such subnet.')
param monitorEndpointSubnetPrefix string = ''

var integrationSubnetName = 'snet-function-integration'
var privateEndpointSubnetName = 'snet-private-endpoints'
var monitorEndpointSubnetName = 'snet-monitor-endpoints'
var withMonitorSubnet = !empty(monitorEndpointSubnetPrefix)

// Outbound from the app stays as Azure's default rules allow it (ARM, Resource Graph, Logs Ingestion and
// Entra ID are public endpoints the app must reach); inbound from the internet to either subnet is denied.
var denyInternetInbound = {
  name: 'deny-internet-inbound'
  properties: {
    priority: 4096
    direction: 'Inbound'
    access: 'Deny'
    protocol: '*'
    sourceAddressPrefix: 'Internet'
    sourcePortRange: '*'
    destinationAddressPrefix: '*'
    destinationPortRange: '*'
  }
}

resource integrationNsg 'Microsoft.Network/networkSecurityGroups@2024-05-01' = {
  name: 'nsg-${name}-integration'
  location: location
  tags: tags
  properties: {
    securityRules: [
      denyInternetInbound
    ]
  }
}

resource privateEndpointNsg 'Microsoft.Network/networkSecurityGroups@2024-05-01' = {
  name: 'nsg-${name}-private-endpoints'
  location: location
  tags: tags
  properties: {
    securityRules: concat([
      {
        name: 'allow-https-from-integration-subnet'
        properties: {
          priority: 100
          direction: 'Inbound'
          access: 'Allow'
          protocol: 'Tcp'
          sourceAddressPrefix: integrationSubnetPrefix
          sourcePortRange: '*'
          destinationAddressPrefix: privateEndpointSubnetPrefix
          destinationPortRange: '443'
        }
      }
    ], withMonitorSubnet ? [
      {
        name: 'allow-https-from-integration-subnet-to-monitor'
        properties: {
          priority: 110
          direction: 'Inbound'
          access: 'Allow'
          protocol: 'Tcp'
          sourceAddressPrefix: integrationSubnetPrefix
          sourcePortRange: '*'
          destinationAddressPrefix: monitorEndpointSubnetPrefix
          destinationPortRange: '443'
        }
      }
    ] : [], [
      denyInternetInbound
    ])
  }
}

// Subnets inline (not child resources): one PUT of the network, so the two subnets are never written in
// parallel (which Azure refuses with AnotherOperationInProgress).
resource vnet 'Microsoft.Network/virtualNetworks@2024-05-01' = {
  name: name
  location: location
  tags: tags
  properties: {
    addressSpace: {
      addressPrefixes: concat([
        addressPrefix
      ], withMonitorSubnet ? [
        monitorEndpointSubnetPrefix
      ] : [])
    }
    subnets: concat([
      {
        name: integrationSubnetName
        properties: {
          addressPrefix: integrationSubnetPrefix
          networkSecurityGroup: {
            id: integrationNsg.id
          }
          delegations: [
            {
              name: 'flex-consumption'
              properties: {
                serviceName: 'Microsoft.App/environments'
              }
            }
          ]
        }
      }
      {
        name: privateEndpointSubnetName
        properties: {
          addressPrefix: privateEndpointSubnetPrefix
          networkSecurityGroup: {
            id: privateEndpointNsg.id
          }
          // NSG rules apply to the private endpoints too (off by default for endpoints).
          privateEndpointNetworkPolicies: 'Enabled'
        }
      }
    ], withMonitorSubnet ? [
      {
        name: monitorEndpointSubnetName
        properties: {
          addressPrefix: monitorEndpointSubnetPrefix
          networkSecurityGroup: {
            id: privateEndpointNsg.id
          }
          privateEndpointNetworkPolicies: 'Enabled'
        }
      }
    ] : [])
  }
}

@description('The name of the virtual network.')
output name string = vnet.name

@description('The resource id of the virtual network.')
output resourceId string = vnet.id

@description('The resource id of the integration subnet (delegated to Microsoft.App/environments).')
output integrationSubnetId string = '${vnet.id}/subnets/${integrationSubnetName}'

@description('The resource id of the private endpoint subnet.')
output privateEndpointSubnetId string = '${vnet.id}/subnets/${privateEndpointSubnetName}'

@description('The resource id of the Azure Monitor private endpoint subnet; empty without it.')
output monitorEndpointSubnetId string = withMonitorSubnet ? '${vnet.id}/subnets/${monitorEndpointSubnetName}' : ''
