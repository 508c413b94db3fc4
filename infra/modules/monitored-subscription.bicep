// Everything one monitored subscription needs, deployed at that subscription's scope:
// Reader for the Function App (it re-reads changed resources from ARM), a resource group
// with the Event Grid system topic(s), the dead-letter role for the topics' identities on
// the central storage account, and - in step 2 of the deployment, once the function code
// is published - the event subscriptions to the function.
//
// With a shared topic identity (topicIdentityResourceId) the dead-letter and queue roles are held
// once, centrally, and none is assigned here; with assignReader false Reader comes from a management
// group above. That is what infra/subscription.bicep (the management-group deployment) deploys.
targetScope = 'subscription'

@description('Required. Principal id (object id) of the Function App\'s managed identity.')
param functionPrincipalId string

@description('Required. Resource id of the function the events go to (<function app id>/functions/<name>).')
param functionResourceId string

@description('Required. Name of the resource group in this subscription that holds the system topics.')
param resourceGroupName string

@description('Required. Azure region of that resource group.')
param location string

@description('Optional. Tags for the resource group and the topics.')
param tags object = {}

@description('Required. Subscription id of the central storage account (dead-lettered events).')
param storageSubscriptionId string

@description('Required. Resource group of the central storage account.')
param storageResourceGroupName string

@description('Required. Name of the central storage account.')
param storageAccountName string

@description('Required. Name of the blob container for dead-lettered events.')
param deadLetterContainerName string

@description('Optional. Put a CanNotDelete lock on the system topics.')
param enableResourceLocks bool = false

@description('Optional. The queue on the central storage account events are delivered to (queue delivery); empty: the webhook.')
param eventsQueueName string = ''

@description('Optional. Create the event subscriptions. False in step 1 (the function code is not published yet), true in step 2.')
param deployEventSubscriptions bool = false

@description('Optional. Also subscribe to the Azure Resource Notifications system topic (payload-carrying events).')
param enableResourceNotifications bool = false

@description('Optional. Also subscribe to Azure Policy state changes (Microsoft.PolicyInsights.PolicyStates), for controls that take Azure Policy\'s verdict.')
param enablePolicyStateEvents bool = false

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

@description('Optional. ARM operations to drop, by operationName prefix (e.g. deployments).')
param ignoredOperationNamePrefixes array = []

@description('Optional. ARM operations to drop, by operationName suffix (e.g. read-only list actions).')
param ignoredOperationNameSuffixes array = []

@description('Optional. Resource id of the action group the dead-letter alerts notify; empty for none.')
param actionGroupResourceId string = ''

@description('Optional. Resource id of the Log Analytics workspace the system topics send their delivery failures to; empty for none.')
param diagnosticsWorkspaceResourceId string = ''

@description('Optional. Assign Reader on this subscription to the Function App\'s identity; false when Reader is assigned at a management group above it.')
param assignReader bool = true

@description('Optional. Resource id of the user-assigned identity every monitored subscription\'s topics share (its dead-letter and queue roles are assigned once, centrally); empty: each topic\'s system-assigned identity, with its roles assigned here.')
param topicIdentityResourceId string = ''

@description('Optional. Resource id of this subscription\'s existing Microsoft.Resources.Subscriptions system topic, to reuse (Event Grid allows one per subscription): its event subscription is created in the topic\'s resource group, and the topic must carry the identity events are dead-lettered with (docs/DEPLOY.md). Empty: a topic is created.')
param existingArmTopicResourceId string = ''

@description('Optional. Resource id of this subscription\'s existing Microsoft.ResourceNotifications.Resources system topic, to reuse with enableResourceNotifications; as existingArmTopicResourceId.')
param existingResourceNotificationsTopicResourceId string = ''

@description('Optional. Resource id of this subscription\'s existing Microsoft.PolicyInsights.PolicyStates system topic, to reuse with enablePolicyStateEvents; as existingArmTopicResourceId.')
param existingPolicyStatesTopicResourceId string = ''

var sharedTopicIdentity = !empty(topicIdentityResourceId)
var reuseArmTopic = !empty(existingArmTopicResourceId)
var reuseArnTopic = enableResourceNotifications && !empty(existingResourceNotificationsTopicResourceId)
var reusePolicyTopic = enablePolicyStateEvents && !empty(existingPolicyStatesTopicResourceId)
// Each reused topic, in its own resource group (/subscriptions/<id>/resourceGroups/<group>/providers/
// Microsoft.EventGrid/systemTopics/<name>), with the one topic name its event subscription deployment takes.
var reusedTopics = concat(reuseArmTopic ? [
  {
    kind: 'arm'
    group: split(existingArmTopicResourceId, '/')[4]
    arm: last(split(existingArmTopicResourceId, '/'))
    arn: ''
    policy: ''
  }
] : [], reuseArnTopic ? [
  {
    kind: 'arn'
    group: split(existingResourceNotificationsTopicResourceId, '/')[4]
    arm: ''
    arn: last(split(existingResourceNotificationsTopicResourceId, '/'))
    policy: ''
  }
] : [], reusePolicyTopic ? [
  {
    kind: 'policy'
    group: split(existingPolicyStatesTopicResourceId, '/')[4]
    arm: ''
    arn: ''
    policy: last(split(existingPolicyStatesTopicResourceId, '/'))
  }
] : [])
var storageAccountResourceId = resourceId(storageSubscriptionId, storageResourceGroupName, 'Microsoft.Storage/storageAccounts', storageAccountName)

var readerRoleId = subscriptionResourceId('Microsoft.Authorization/roleDefinitions', 'acdd72a7-3385-48ef-bd42-f606fba81ae7')

resource reader 'Microsoft.Authorization/roleAssignments@2022-04-01' = if (assignReader) {
  name: guid(subscription().id, functionPrincipalId, readerRoleId)
  properties: {
    roleDefinitionId: readerRoleId
    principalId: functionPrincipalId
    principalType: 'ServicePrincipal'
    description: 'Compliance monitor: re-read resources named by resource-change events.'
  }
}

resource eventsGroup 'Microsoft.Resources/resourceGroups@2024-03-01' = {
  name: resourceGroupName
  location: location
  tags: tags
}

module topics 'event-topics.bicep' = {
  name: 'compliance-event-topics'
  scope: eventsGroup
  params: {
    subscriptionId: subscription().subscriptionId
    tags: tags
    enableResourceNotifications: enableResourceNotifications
    enablePolicyStateEvents: enablePolicyStateEvents
    actionGroupResourceId: actionGroupResourceId
    diagnosticsWorkspaceResourceId: diagnosticsWorkspaceResourceId
    enableResourceLocks: enableResourceLocks
    identityResourceId: topicIdentityResourceId
    existingArmTopicResourceId: existingArmTopicResourceId
    existingResourceNotificationsTopicResourceId: existingResourceNotificationsTopicResourceId
    existingPolicyStatesTopicResourceId: existingPolicyStatesTopicResourceId
  }
}

module deadLetterRole 'role-assignments-dead-letter.bicep' = if (!sharedTopicIdentity) {
  name: take('compliance-dead-letter-${subscription().subscriptionId}', 64)
  scope: resourceGroup(storageSubscriptionId, storageResourceGroupName)
  params: {
    storageAccountName: storageAccountName
    containerName: deadLetterContainerName
    queueName: eventsQueueName
    principalIds: topics.outputs.principalIds
  }
}

module eventSubscriptions 'event-subscriptions.bicep' = if (deployEventSubscriptions) {
  name: 'compliance-event-subscriptions'
  scope: eventsGroup
  params: {
    armTopicName: reuseArmTopic ? '' : topics.outputs.armTopicName
    resourceNotificationsTopicName: topics.outputs.resourceNotificationsTopicName
    policyStatesTopicName: topics.outputs.policyStatesTopicName
    functionResourceId: functionResourceId
    deadLetterStorageAccountResourceId: storageAccountResourceId
    topicIdentityResourceId: topicIdentityResourceId
    deadLetterContainerName: deadLetterContainerName
    eventsQueueName: eventsQueueName
    eventDeliverySchema: eventDeliverySchema
    maxDeliveryAttempts: maxDeliveryAttempts
    eventTimeToLiveInMinutes: eventTimeToLiveInMinutes
    ignoredOperationNamePrefixes: ignoredOperationNamePrefixes
    ignoredOperationNameSuffixes: ignoredOperationNameSuffixes
  }
  dependsOn: [
    deadLetterRole // Event Grid checks the destination's role when the subscription is created
  ]
}

// A reused topic lives in a resource group of its own: its event subscription is deployed there (a child
// resource deploys only at its parent's scope).
module reusedTopicSubscriptions 'event-subscriptions.bicep' = [for topic in reusedTopics: if (deployEventSubscriptions) {
  name: 'compliance-event-subscription-${topic.kind}'
  scope: resourceGroup(topic.group)
  params: {
    armTopicName: topic.arm
    resourceNotificationsTopicName: topic.arn
    policyStatesTopicName: topic.policy
    functionResourceId: functionResourceId
    deadLetterStorageAccountResourceId: storageAccountResourceId
    topicIdentityResourceId: topicIdentityResourceId
    deadLetterContainerName: deadLetterContainerName
    eventsQueueName: eventsQueueName
    eventDeliverySchema: eventDeliverySchema
    maxDeliveryAttempts: maxDeliveryAttempts
    eventTimeToLiveInMinutes: eventTimeToLiveInMinutes
    ignoredOperationNamePrefixes: ignoredOperationNamePrefixes
    ignoredOperationNameSuffixes: ignoredOperationNameSuffixes
  }
  dependsOn: [
    deadLetterRole
  ]
}]

@description('The name of the resource group that holds the system topics.')
output name string = eventsGroup.name

@description('The resource id of the resource group that holds the system topics.')
output resourceId string = eventsGroup.id

@description('The resource id of the ARM (Microsoft.Resources.Subscriptions) system topic.')
output armTopicResourceId string = topics.outputs.armTopicResourceId
