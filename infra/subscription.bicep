// One monitored subscription's part of the management-group deployment (infra/management-group.bicep),
// deployed in that subscription on its own: by a subscription vending pipeline, or by the
// deployIfNotExists policy management-group.bicep assigns (infra/policy/subscription-events.json is
// this template in ARM JSON). A new subscription joins without redeploying the monitor, and a failure
// stays in its own deployment.
//
//   az deployment sub create --subscription <id> --location <region> \
//     --template-file infra/subscription.bicep --parameters @subscription.parameters.json
//
// The parameters come from the monitor's output `subscriptionParameters` (docs/DEPLOY.md,
// "Management groups: 500 subscriptions and more"). Reader comes from the management groups, and the
// shared topic identity holds its storage roles once, centrally, so nothing here assigns a role; without
// a shared identity (the monitor's private networking: topicIdentityResourceId empty) the topics use their
// system-assigned identities and this deployment gives them their roles on the monitor's storage account.
targetScope = 'subscription'

metadata name = 'Compliance monitor: one monitored subscription'
metadata description = 'The Event Grid system topics of one subscription, delivering to the compliance monitor\'s queue with the shared topic identity.'

@description('Required. Region of the resource group for the system topics.')
param location string

@description('Required. Resource id of the monitor\'s storage account (events queue, dead-letter container).')
param storageAccountResourceId string

@description('Required. Resource id of the user-assigned identity every monitored subscription\'s topics share; empty (the monitor\'s private networking): each topic\'s system-assigned identity, with its storage roles assigned by this deployment.')
param topicIdentityResourceId string

@description('Optional. The queue events are delivered to.')
param eventsQueueName string = 'compliance-events'

@description('Optional. The blob container for dead-lettered events.')
param deadLetterContainerName string = 'eventgrid-deadletter'

@description('Optional. Name of the resource group created for the system topics.')
param eventResourceGroupName string = 'rg-compliance-monitor-events'

@description('Optional. Resource id of this subscription\'s existing Microsoft.Resources.Subscriptions system topic, to reuse (Event Grid allows one per subscription); it must carry the shared topic identity (docs/DEPLOY.md). Empty: a topic is created.')
param existingArmTopicResourceId string = ''

@description('Optional. Resource id of this subscription\'s existing Microsoft.ResourceNotifications.Resources system topic, to reuse with enableResourceNotifications (it must carry the shared topic identity). Empty: one is created.')
param existingResourceNotificationsTopicResourceId string = ''

@description('Optional. Resource id of this subscription\'s existing Microsoft.PolicyInsights.PolicyStates system topic, to reuse with enablePolicyStateEvents (it must carry the shared topic identity). Empty: one is created.')
param existingPolicyStatesTopicResourceId string = ''

@description('Optional. Tags for the resource group and the topics.')
param tags object = {}

@description('Optional. Also subscribe to Azure Resource Notifications (payload-carrying events).')
param enableResourceNotifications bool = false

@description('Optional. Also subscribe to Azure Policy state changes.')
param enablePolicyStateEvents bool = false

@description('Optional. Put a CanNotDelete lock on the system topics.')
param enableResourceLocks bool = false

@description('Optional. Schema Event Grid delivers in; the function decodes both.')
@allowed([
  'EventGridSchema'
  'CloudEventSchemaV1_0'
])
param eventDeliverySchema string = 'EventGridSchema'

@description('Optional. Delivery attempts before an event is dead-lettered.')
@minValue(1)
@maxValue(30)
param maxDeliveryAttempts int = 30

@description('Optional. Minutes an event is retried before it is dead-lettered.')
@minValue(1)
@maxValue(1440)
param eventTimeToLiveInMinutes int = 1440

@description('Optional. ARM operations never evaluated, by data.operationName prefix.')
param ignoredOperationNamePrefixes array = [
  'Microsoft.Resources/deployments/'
  'Microsoft.Authorization/policies/'
]

@description('Optional. Read-only ARM actions never evaluated, by data.operationName suffix.')
param ignoredOperationNameSuffixes array = [
  '/listKeys/action'
  '/listAccountSas/action'
  '/listServiceSas/action'
  '/config/list/action'
  '/listSecrets/action'
  '/listCredentials/action'
  '/listClusterUserCredential/action'
  '/listClusterAdminCredential/action'
  '/listConnectionStrings/action'
  '/listAdminKeys/action'
  '/listQueryKeys/action'
  '/publishxml/action'
]

@description('Optional. Resource id of the action group the dead-letter alerts notify; empty for none.')
param actionGroupResourceId string = ''

@description('Optional. Resource id of the Log Analytics workspace the topics send their delivery failures to; empty for none.')
param diagnosticsWorkspaceResourceId string = ''

var storage = split(storageAccountResourceId, '/')

module monitored 'modules/monitored-subscription.bicep' = {
  name: 'compliance-monitored-subscription'
  params: {
    functionPrincipalId: '' // Reader comes from the management group
    functionResourceId: '' // queue delivery
    assignReader: false
    topicIdentityResourceId: topicIdentityResourceId
    existingArmTopicResourceId: existingArmTopicResourceId
    existingResourceNotificationsTopicResourceId: existingResourceNotificationsTopicResourceId
    existingPolicyStatesTopicResourceId: existingPolicyStatesTopicResourceId
    resourceGroupName: eventResourceGroupName
    location: location
    tags: tags
    storageSubscriptionId: storage[2]
    storageResourceGroupName: storage[4]
    storageAccountName: last(storage)
    deadLetterContainerName: deadLetterContainerName
    eventsQueueName: eventsQueueName
    enableResourceLocks: enableResourceLocks
    deployEventSubscriptions: true
    enableResourceNotifications: enableResourceNotifications
    enablePolicyStateEvents: enablePolicyStateEvents
    eventDeliverySchema: eventDeliverySchema
    maxDeliveryAttempts: maxDeliveryAttempts
    eventTimeToLiveInMinutes: eventTimeToLiveInMinutes
    ignoredOperationNamePrefixes: ignoredOperationNamePrefixes
    ignoredOperationNameSuffixes: ignoredOperationNameSuffixes
    actionGroupResourceId: actionGroupResourceId
    diagnosticsWorkspaceResourceId: diagnosticsWorkspaceResourceId
  }
}

@description('The name of the resource group that holds the system topics.')
output name string = monitored.outputs.name

@description('The resource id of the resource group that holds the system topics.')
output resourceId string = monitored.outputs.resourceId

@description('The resource id of the ARM events system topic.')
output armTopicResourceId string = monitored.outputs.armTopicResourceId
