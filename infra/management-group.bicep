// The compliance monitor for many subscriptions: deployed at a management group, it monitors every
// subscription below the monitored management groups, those created later included.
//
//   az deployment mg create --management-group-id <group> --location <region> \
//     --template-file infra/management-group.bicep --parameters monitorSubscriptionId=<id>
//
// What it deploys:
// - the monitor (infra/main.bicep) in monitorSubscriptionId, with a user-assigned identity for the app,
//   one user-assigned identity shared by every subscription's system topics, queue delivery, and
//   MONITORED_SCOPES naming the management groups (the function lists their subscriptions from ARM);
// - Reader for the app's identity at each monitored management group (inherited below);
// - each subscription's part (system topic, event subscription to the queue) on its own, by a
//   deployIfNotExists policy assigned at each monitored group (subscriptionOnboarding 'policy', as
//   Azure Landing Zones deploys activity-log settings), or by your vending pipeline running
//   infra/subscription.bicep (subscriptionOnboarding 'pipeline'). A new subscription joins without a
//   redeployment, and a failure stays in its own subscription's deployment.
//
// The deployment's management group must hold the monitored groups and the monitor's subscription (the
// policy definition and the onboarding role are defined here). With main.bicep's private option
// (subscriptionOnboarding 'policyPrivate' or 'pipelinePrivate') Event Grid delivers to the storage firewall
// only with each topic's system-assigned identity, so each subscription's deployment assigns its topics'
// two storage roles: the policy's identity may assign exactly those two roles to service principals at
// the monitor's storage account and nothing else (a role assignment condition). See docs/DEPLOY.md,
// "Management groups: 500 subscriptions and more".
targetScope = 'managementGroup'

metadata name = 'Event-driven compliance monitor for management groups'
metadata description = 'The compliance monitor in one subscription, Reader at the monitored management groups, and each subscription\'s system topic deployed per subscription by policy or by a vending pipeline.'

@description('Required. Subscription that holds the monitor (Function App, storage, workspace, alerts).')
param monitorSubscriptionId string

@description('Optional. Ids of the management groups whose subscriptions are monitored; each gets Reader for the app and, with policy onboarding, the deployIfNotExists assignment. Defaults to this deployment\'s management group.')
@minLength(1)
param monitoredManagementGroupIds array = [
  managementGroup().name
]

@description('Optional. How each subscription gets its system topic: policy (a deployIfNotExists assignment at each monitored group; existing subscriptions by a remediation task), pipeline (your subscription vending pipeline deploys infra/subscription.bicep with the subscriptionParameters output), or policyPrivate / pipelinePrivate (the same with main.bicep\'s private networking; the topics keep system-assigned identities and each subscription\'s deployment assigns their storage roles).')
@allowed([
  'policy'
  'policyPrivate'
  'pipeline'
  'pipelinePrivate'
])
param subscriptionOnboarding string = 'policy'

@description('Optional. With policy onboarding: Default deploys, DoNotEnforce only reports which subscriptions lack their topic.')
@allowed([
  'Default'
  'DoNotEnforce'
])
param policyEnforcementMode string = 'Default'

@description('Optional. Region of the monitor, of the policy assignments\' identities and of the deployments they run.')
param location string = deployment().location

@description('Optional. Name of the monitor\'s resource group.')
param resourceGroupName string = 'rg-compliance-monitor'

@description('Optional. Name of the resource group created in each monitored subscription for its system topics.')
param eventResourceGroupName string = 'rg-compliance-monitor-events'

@description('Optional. Tags for every resource group and resource.')
param tags object = {}

@description('Optional. Also subscribe to Azure Resource Notifications, whose events carry the resource.')
param enableResourceNotifications bool = false

@description('Optional. Also subscribe to Azure Policy state changes, for controls that take Azure Policy\'s verdict.')
param enablePolicyStateEvents bool = false

@description('Optional. Put CanNotDelete locks on the storage account and on every subscription\'s system topics.')
param enableResourceLocks bool = false

@description('Optional. Schema Event Grid delivers in; the function decodes both.')
@allowed([
  'EventGridSchema'
  'CloudEventSchemaV1_0'
])
param eventDeliverySchema string = 'EventGridSchema'

@description('Optional. Resource id of an existing Log Analytics workspace for the findings; empty creates one.')
param existingLogAnalyticsWorkspaceId string = ''

@description('Optional. Email addresses notified by the alerts.')
param alertEmailAddresses array = []

@description('Optional. Where controls come from: builtin, custom, assignments (CONTROL_SOURCES).')
param controlSources array = [
  'builtin'
  'custom'
  'assignments'
]

@description('Optional. Replication of the monitor\'s storage account.')
@allowed([
  'Standard_LRS'
  'Standard_ZRS'
  'Standard_GRS'
  'Standard_GZRS'
  'Standard_RAGRS'
  'Standard_RAGZRS'
])
param storageSkuName string = 'Standard_GRS'

@description('Optional. Maximum instances of the Flex Consumption plan (docs/SCALE.md).')
@minValue(40)
@maxValue(1000)
param functionMaximumInstanceCount int = 100

@description('Optional. Application (client) id of the Entra app registration that protects the HTTP API.')
param apiAuthClientId string = ''

@description('Optional. Refuse HTTP API calls that did not pass App Service Authentication.')
param requireApiAuthentication bool = false

@description('Optional. With private networking (policyPrivate, pipelinePrivate): an existing subnet (delegated to Microsoft.App/environments) for the app; give it with existingPrivateEndpointSubnetId, or neither to create a network (main.bicep).')
param existingIntegrationSubnetId string = ''

@description('Optional. With private networking (policyPrivate, pipelinePrivate): an existing subnet for the storage private endpoints.')
param existingPrivateEndpointSubnetId string = ''

@description('Optional. With private networking (policyPrivate, pipelinePrivate): existing private DNS zone ids by service (blob, table, queue).')
param existingPrivateDnsZoneIds object = {}

@description('Optional. With private networking (policyPrivate, pipelinePrivate): public IP ranges allowed to call the HTTP API and to publish.')
param apiAllowedIpRanges array = []

@description('Optional. With private networking (policyPrivate, pipelinePrivate): ingestion into Azure Monitor through an Azure Monitor Private Link Scope (main.bicep enableMonitorPrivateLink).')
param enableMonitorPrivateLink bool = false

@description('Optional. With enableMonitorPrivateLink: an existing (hub) Azure Monitor Private Link Scope to join.')
param existingMonitorPrivateLinkScopeId string = ''

var usePolicy = contains([
  'policy'
  'policyPrivate'
], subscriptionOnboarding)
var usePrivateNetworking = contains([
  'policyPrivate'
  'pipelinePrivate'
], subscriptionOnboarding)
var readerRoleId = tenantResourceId('Microsoft.Authorization/roleDefinitions', 'acdd72a7-3385-48ef-bd42-f606fba81ae7')
var onboardingRoleName = guid(managementGroup().id, 'compliance-monitor-subscription-onboarding')
// A custom role's id in the form role assignments and a policy's roleDefinitionIds take.
var onboardingRoleId = tenantResourceId('Microsoft.Authorization/roleDefinitions', onboardingRoleName)

module monitor 'main.bicep' = {
  name: 'compliance-monitor'
  scope: subscription(monitorSubscriptionId)
  params: {
    monitoredManagementGroupIds: monitoredManagementGroupIds
    identityType: 'UserAssigned'
    eventDelivery: 'queue'
    location: location
    resourceGroupName: resourceGroupName
    eventResourceGroupName: eventResourceGroupName
    tags: tags
    enableResourceNotifications: enableResourceNotifications
    enablePolicyStateEvents: enablePolicyStateEvents
    enableResourceLocks: enableResourceLocks
    eventDeliverySchema: eventDeliverySchema
    existingLogAnalyticsWorkspaceId: existingLogAnalyticsWorkspaceId
    alertEmailAddresses: alertEmailAddresses
    controlSources: controlSources
    storageSkuName: storageSkuName
    functionMaximumInstanceCount: functionMaximumInstanceCount
    apiAuthClientId: apiAuthClientId
    requireApiAuthentication: requireApiAuthentication
    enablePrivateNetworking: usePrivateNetworking
    existingIntegrationSubnetId: existingIntegrationSubnetId
    existingPrivateEndpointSubnetId: existingPrivateEndpointSubnetId
    existingPrivateDnsZoneIds: existingPrivateDnsZoneIds
    apiAllowedIpRanges: apiAllowedIpRanges
    enableMonitorPrivateLink: enableMonitorPrivateLink
    existingMonitorPrivateLinkScopeId: existingMonitorPrivateLinkScopeId
  }
}

module readers 'modules/role-assignments-management-group.bicep' = [for groupId in monitoredManagementGroupIds: {
  name: take('compliance-reader-${groupId}', 64)
  scope: managementGroup(groupId)
  params: {
    principalId: monitor.outputs.appPrincipalId
    roleDefinitionId: readerRoleId
    assignmentDescription: 'Compliance monitor: re-read resources named by resource-change events, list the group\'s subscriptions and their Azure Policy assignments.'
  }
}]

// What a policy assignment's identity needs to deploy infra/policy/subscription-events.json in a
// subscription, and no more: the resource group and deployment, the system topics and their event
// subscriptions, the locks and the dead-letter alert; assigning the shared topic identity to the topics;
// and "write access" to the storage account the events go to, which Event Grid checks when an event
// subscription has a destination other than a webhook
// (https://learn.microsoft.com/azure/event-grid/security-authorization).
resource onboardingRole 'Microsoft.Authorization/roleDefinitions@2022-04-01' = if (usePolicy) {
  name: onboardingRoleName
  properties: {
    roleName: 'Compliance monitor subscription onboarding (${managementGroup().name})'
    description: 'Deploys the compliance monitor\'s Event Grid system topic and event subscription to a subscription.'
    type: 'CustomRole'
    permissions: [
      {
        actions: [
          'Microsoft.Resources/subscriptions/resourceGroups/read'
          'Microsoft.Resources/subscriptions/resourceGroups/write'
          'Microsoft.Resources/deployments/*'
          'Microsoft.EventGrid/systemTopics/*'
          'Microsoft.Authorization/locks/read'
          'Microsoft.Authorization/locks/write'
          'Microsoft.Insights/metricAlerts/*'
          'Microsoft.Insights/actionGroups/read'
          'Microsoft.ManagedIdentity/userAssignedIdentities/read'
          'Microsoft.ManagedIdentity/userAssignedIdentities/assign/action'
          'Microsoft.Storage/storageAccounts/read'
          'Microsoft.Storage/storageAccounts/write'
          'Microsoft.EventGrid/register/action' // a new subscription may not have the providers registered yet
          'Microsoft.Insights/register/action'
        ]
        notActions: []
      }
    ]
    assignableScopes: [
      managementGroup().id
    ]
  }
}

var templateParameters = monitor.outputs.subscriptionParameters

// https://learn.microsoft.com/azure/governance/policy/concepts/effect-deploy-if-not-exists: evaluated for
// each subscription (type Microsoft.Resources/subscriptions); compliant when the subscription has the
// monitor's event subscription delivering to the queue with the shared identity; otherwise the
// subscription-scope deployment runs (deploymentScope subscription, so it needs a location).
resource onboardingPolicy 'Microsoft.Authorization/policyDefinitions@2023-04-01' = if (usePolicy) {
  name: 'compliance-monitor-subscription-events'
  properties: {
    displayName: 'Compliance monitor: deploy the Event Grid system topic to every subscription'
    description: 'Deploys, in each subscription, the Event Grid system topic of its ARM events with an event subscription delivering to the compliance monitor\'s queue.'
    policyType: 'Custom'
    mode: 'All'
    metadata: {
      category: 'Monitoring'
      version: '1.0.0'
    }
    parameters: {
      effect: {
        type: 'String'
        allowedValues: [
          'DeployIfNotExists'
          'AuditIfNotExists'
          'Disabled'
        ]
        defaultValue: 'DeployIfNotExists'
      }
      location: {
        type: 'String'
      }
      storageAccountResourceId: {
        type: 'String'
      }
      topicIdentityResourceId: {
        type: 'String'
        defaultValue: ''
      }
      eventsQueueName: {
        type: 'String'
      }
      deadLetterContainerName: {
        type: 'String'
      }
      eventResourceGroupName: {
        type: 'String'
      }
      tags: {
        type: 'Object'
        defaultValue: {}
      }
      enableResourceNotifications: {
        type: 'Boolean'
        defaultValue: false
      }
      enablePolicyStateEvents: {
        type: 'Boolean'
        defaultValue: false
      }
      enableResourceLocks: {
        type: 'Boolean'
        defaultValue: false
      }
      eventDeliverySchema: {
        type: 'String'
        defaultValue: 'EventGridSchema'
      }
      actionGroupResourceId: {
        type: 'String'
        defaultValue: ''
      }
    }
    policyRule: {
      if: {
        field: 'type'
        equals: 'Microsoft.Resources/subscriptions'
      }
      then: {
        effect: '[parameters(\'effect\')]'
        details: {
          type: 'Microsoft.EventGrid/systemTopics/eventSubscriptions'
          existenceScope: 'subscription'
          deploymentScope: 'subscription'
          roleDefinitionIds: [
            onboardingRoleId
          ]
          existenceCondition: {
            allOf: [
              {
                field: 'name'
                equals: 'compliance-monitor'
              }
              {
                field: 'Microsoft.EventGrid/systemTopics/eventSubscriptions/deliveryWithResourceIdentity.destination.endpointType'
                equals: 'StorageQueue'
              }
              {
                // the shared identity, or with private networking (no shared identity) the topic's own
                anyOf: [
                  {
                    allOf: [
                      {
                        value: '[parameters(\'topicIdentityResourceId\')]'
                        notEquals: ''
                      }
                      {
                        field: 'Microsoft.EventGrid/systemTopics/eventSubscriptions/deliveryWithResourceIdentity.identity.userAssignedIdentity'
                        equals: '[parameters(\'topicIdentityResourceId\')]'
                      }
                    ]
                  }
                  {
                    allOf: [
                      {
                        value: '[parameters(\'topicIdentityResourceId\')]'
                        equals: ''
                      }
                      {
                        field: 'Microsoft.EventGrid/systemTopics/eventSubscriptions/deliveryWithResourceIdentity.identity.type'
                        equals: 'SystemAssigned'
                      }
                    ]
                  }
                ]
              }
            ]
          }
          deployment: {
            location: '[parameters(\'location\')]'
            properties: {
              mode: 'incremental'
              template: loadJsonContent('policy/subscription-events.json')
              parameters: {
                location: {
                  value: '[parameters(\'location\')]'
                }
                storageAccountResourceId: {
                  value: '[parameters(\'storageAccountResourceId\')]'
                }
                topicIdentityResourceId: {
                  value: '[parameters(\'topicIdentityResourceId\')]'
                }
                eventsQueueName: {
                  value: '[parameters(\'eventsQueueName\')]'
                }
                deadLetterContainerName: {
                  value: '[parameters(\'deadLetterContainerName\')]'
                }
                eventResourceGroupName: {
                  value: '[parameters(\'eventResourceGroupName\')]'
                }
                tags: {
                  value: '[parameters(\'tags\')]'
                }
                enableResourceNotifications: {
                  value: '[parameters(\'enableResourceNotifications\')]'
                }
                enablePolicyStateEvents: {
                  value: '[parameters(\'enablePolicyStateEvents\')]'
                }
                enableResourceLocks: {
                  value: '[parameters(\'enableResourceLocks\')]'
                }
                eventDeliverySchema: {
                  value: '[parameters(\'eventDeliverySchema\')]'
                }
                actionGroupResourceId: {
                  value: '[parameters(\'actionGroupResourceId\')]'
                }
              }
            }
          }
        }
      }
    }
  }
}

module onboarding 'modules/subscription-onboarding.bicep' = [for groupId in monitoredManagementGroupIds: if (usePolicy) {
  name: take('compliance-onboarding-${groupId}', 64)
  scope: managementGroup(groupId)
  params: {
    policyDefinitionId: onboardingPolicy.id
    roleDefinitionId: onboardingRoleId
    location: location
    enforcementMode: policyEnforcementMode
    policyParameters: {
      location: {
        value: templateParameters.location
      }
      storageAccountResourceId: {
        value: templateParameters.storageAccountResourceId
      }
      topicIdentityResourceId: {
        value: templateParameters.topicIdentityResourceId
      }
      eventsQueueName: {
        value: templateParameters.eventsQueueName
      }
      deadLetterContainerName: {
        value: templateParameters.deadLetterContainerName
      }
      eventResourceGroupName: {
        value: templateParameters.eventResourceGroupName
      }
      tags: {
        value: templateParameters.tags
      }
      enableResourceNotifications: {
        value: templateParameters.enableResourceNotifications
      }
      enablePolicyStateEvents: {
        value: templateParameters.enablePolicyStateEvents
      }
      enableResourceLocks: {
        value: templateParameters.enableResourceLocks
      }
      eventDeliverySchema: {
        value: templateParameters.eventDeliverySchema
      }
      actionGroupResourceId: {
        value: templateParameters.actionGroupResourceId
      }
    }
  }
  dependsOn: [
    onboardingRole
  ]
}]

// The same onboarding role on the monitor's resource group, for each assignment's identity: it assigns
// the shared topic identity (in that group) and meets Event Grid's write check on the storage account.
// With private networking, also the two storage roles of each subscription's topics, and only those.
module onboardingMonitorAccess 'modules/role-assignments-onboarding.bicep' = if (usePolicy) {
  name: 'compliance-onboarding-monitor-access'
  scope: resourceGroup(monitorSubscriptionId, resourceGroupName)
  params: {
    roleDefinitionId: onboardingRoleId
    principalIds: [for (groupId, i) in monitoredManagementGroupIds: onboarding[i]!.outputs.principalId]
    storageAccountName: last(split(templateParameters.storageAccountResourceId, '/'))
    delegateTopicStorageRoles: usePrivateNetworking
  }
  dependsOn: [
    monitor
    onboardingRole
  ]
}

@description('The name of the monitor\'s resource group.')
output name string = resourceGroupName

@description('The resource id of the monitor\'s resource group.')
output resourceId string = monitor.outputs.resourceId

@description('The name of the Function App: publish the code to it (docs/DEPLOY.md).')
output functionAppName string = monitor.outputs.functionAppName

@description('The principal id of the app\'s user-assigned identity (Reader at the monitored groups).')
output appPrincipalId string = monitor.outputs.appPrincipalId

@description('The parameters of infra/subscription.bicep for each monitored subscription (pipeline onboarding).')
output subscriptionParameters object = templateParameters

@description('The resource ids of the deployIfNotExists assignments (create a remediation task on each for the existing subscriptions); empty with pipeline onboarding.')
output policyAssignmentIds array = [for (groupId, i) in monitoredManagementGroupIds: usePolicy ? onboarding[i]!.outputs.resourceId : '']
