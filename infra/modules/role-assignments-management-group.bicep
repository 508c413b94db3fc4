// One role for one principal at a management group: Reader for the Function App's identity (inherited
// by every subscription below the group, those created later included), or the onboarding role for a
// policy assignment's identity.
// https://learn.microsoft.com/azure/governance/management-groups/overview#azure-role-based-access-control
targetScope = 'managementGroup'

@description('Required. Principal id (object id) of the identity.')
param principalId string

@description('Required. Resource id of the role definition (built-in: /providers/Microsoft.Authorization/roleDefinitions/<id>).')
param roleDefinitionId string

@description('Optional. Why the role is assigned (shown in the portal).')
param assignmentDescription string = ''

resource assignment 'Microsoft.Authorization/roleAssignments@2022-04-01' = {
  name: guid(managementGroup().id, principalId, roleDefinitionId)
  properties: {
    roleDefinitionId: roleDefinitionId
    principalId: principalId
    principalType: 'ServicePrincipal'
    description: assignmentDescription
  }
}

@description('The name of the role assignment.')
output name string = assignment.name

@description('The resource id of the role assignment.')
output resourceId string = assignment.id
