// The onboarding role on the monitor's resource group for the deployIfNotExists assignments' identities:
// they assign the shared topic identity (held here) to each subscription's system topics, and Event Grid
// checks their write access to the storage account the events are delivered to.

@description('Required. Resource id of the onboarding role definition.')
param roleDefinitionId string

@description('Required. Principal ids (object ids) of the policy assignments\' identities.')
param principalIds array

resource assignments 'Microsoft.Authorization/roleAssignments@2022-04-01' = [for principalId in principalIds: {
  name: guid(resourceGroup().id, principalId, roleDefinitionId)
  properties: {
    roleDefinitionId: roleDefinitionId
    principalId: principalId
    principalType: 'ServicePrincipal'
    description: 'Compliance monitor: deploy each subscription\'s system topic (deployIfNotExists).'
  }
}]

@description('The name of the resource group.')
output name string = resourceGroup().name

@description('The resource id of the resource group.')
output resourceId string = resourceGroup().id
