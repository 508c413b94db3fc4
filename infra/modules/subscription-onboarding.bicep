// The deployIfNotExists assignment that gives every subscription below one monitored management group
// its part of the monitor (infra/policy/subscription-events.json), with the onboarding role at that
// group for the assignment's identity. Subscriptions created or moved below the group later are
// onboarded by Azure Policy without a redeployment; existing ones by a remediation task (docs/DEPLOY.md).
// https://learn.microsoft.com/azure/governance/policy/concepts/effect-deploy-if-not-exists
targetScope = 'managementGroup'

@description('Required. Resource id of the policy definition (at this management group or above it).')
param policyDefinitionId string

@description('Required. Resource id of the onboarding role definition.')
param roleDefinitionId string

@description('Required. Region of the assignment\'s managed identity and of the deployments it runs.')
param location string

@description('Required. Values of the definition\'s parameters, as an assignment takes them: {"<name>": {"value": ...}}.')
param policyParameters object

@description('Optional. Enforce (Default) or only report (DoNotEnforce: no deployment runs, compliance shows which subscriptions lack their topic).')
@allowed([
  'Default'
  'DoNotEnforce'
])
param enforcementMode string = 'Default'

// Names of assignments at a management group are at most 24 characters.
resource assignment 'Microsoft.Authorization/policyAssignments@2024-04-01' = {
  name: 'cm-events-${take(uniqueString(managementGroup().id, policyDefinitionId), 13)}'
  location: location
  identity: {
    type: 'SystemAssigned'
  }
  properties: {
    displayName: 'Compliance monitor: Event Grid system topic in every subscription'
    description: 'Deploys the compliance monitor\'s system topic and queue delivery to subscriptions that lack them.'
    policyDefinitionId: policyDefinitionId
    enforcementMode: enforcementMode
    parameters: policyParameters
    nonComplianceMessages: [
      {
        message: 'This subscription has no compliance monitor event subscription yet: a remediation task deploys it.'
      }
    ]
  }
}

resource onboardingRole 'Microsoft.Authorization/roleAssignments@2022-04-01' = {
  name: guid(managementGroup().id, assignment.identity.principalId, roleDefinitionId)
  properties: {
    roleDefinitionId: roleDefinitionId
    principalId: assignment.identity.principalId
    principalType: 'ServicePrincipal'
    description: 'Compliance monitor: deploy each subscription\'s system topic (deployIfNotExists).'
  }
}

@description('The name of the policy assignment.')
output name string = assignment.name

@description('The resource id of the policy assignment (for remediation tasks).')
output resourceId string = assignment.id

@description('The principal id of the assignment\'s identity.')
output principalId string = assignment.identity.principalId
