// The event subscriptions that deliver resource changes to the compliance function.
// Step 2 of the deployment: Event Grid checks that the function exists, so the code must
// be published first (docs/DEPLOY.md).

@description('Optional. Name of the ARM events (Microsoft.Resources.Subscriptions) system topic in this resource group; empty when it is elsewhere (a reused topic has its own deployment of this module in its resource group).')
param armTopicName string = ''

@description('Optional. Name of the Resource Notifications system topic; empty when it is not used.')
param resourceNotificationsTopicName string = ''

@description('Optional. Name of the Azure Policy state changes system topic; empty when it is not used.')
param policyStatesTopicName string = ''

@description('Required. Resource id of the function (<function app id>/functions/<name>).')
param functionResourceId string

@description('Required. Resource id of the storage account for dead-lettered events.')
param deadLetterStorageAccountResourceId string

@description('Required. Name of the blob container for dead-lettered events.')
param deadLetterContainerName string

@description('Optional. Name of the queue on the dead-letter storage account to deliver to (queue delivery, with the topics\' identities); empty: the function\'s webhook.')
param eventsQueueName string = ''

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

@description('Optional. ARM operations to drop, by data.operationName prefix.')
param ignoredOperationNamePrefixes array = []

@description('Optional. ARM operations to drop, by data.operationName suffix.')
param ignoredOperationNameSuffixes array = []

@description('Optional. Name of the event subscriptions.')
param eventSubscriptionName string = 'compliance-monitor'

// Advanced filters are ANDed; Event Grid allows 25 filter values in all per subscription.
var noiseFilters = concat(empty(ignoredOperationNamePrefixes) ? [] : [
  {
    operatorType: 'StringNotBeginsWith'
    key: 'data.operationName'
    values: ignoredOperationNamePrefixes
  }
], empty(ignoredOperationNameSuffixes) ? [] : [
  {
    operatorType: 'StringNotEndsWith'
    key: 'data.operationName'
    values: ignoredOperationNameSuffixes
  }
])

@description('Optional. Resource id of the user-assigned identity the topics share (deliveryWithResourceIdentity, deadLetterWithResourceIdentity); empty: each topic\'s system-assigned identity.')
param topicIdentityResourceId string = ''

// https://learn.microsoft.com/azure/event-grid/managed-service-identity: a system topic delivers and
// dead-letters with its system-assigned identity, or with a user-assigned one assigned to the topic.
var deliveryIdentity = empty(topicIdentityResourceId) ? {
  type: 'SystemAssigned'
} : {
  type: 'UserAssigned'
  userAssignedIdentity: topicIdentityResourceId
}

var destination = {
  endpointType: 'AzureFunction'
  properties: {
    resourceId: functionResourceId
    maxEventsPerBatch: 1
    preferredBatchSizeInKilobytes: 64
  }
}

// Queue delivery: to a Storage Queue with the topic's identity (Storage Queue Data Message Sender on it).
var queueDelivery = {
  identity: deliveryIdentity
  destination: {
    endpointType: 'StorageQueue'
    properties: {
      resourceId: deadLetterStorageAccountResourceId
      queueName: eventsQueueName
      queueMessageTimeToLiveInSeconds: 604800
    }
  }
}
var useQueue = !empty(eventsQueueName)

var retryPolicy = {
  maxDeliveryAttempts: maxDeliveryAttempts
  eventTimeToLiveInMinutes: eventTimeToLiveInMinutes
}

var deadLetter = {
  identity: deliveryIdentity
  deadLetterDestination: {
    endpointType: 'StorageBlob'
    properties: {
      resourceId: deadLetterStorageAccountResourceId
      blobContainerName: deadLetterContainerName
    }
  }
}

resource armTopic 'Microsoft.EventGrid/systemTopics@2022-06-15' existing = if (!empty(armTopicName)) {
  name: armTopicName
}

resource arnTopic 'Microsoft.EventGrid/systemTopics@2022-06-15' existing = if (!empty(resourceNotificationsTopicName)) {
  name: resourceNotificationsTopicName
}

resource policyTopic 'Microsoft.EventGrid/systemTopics@2022-06-15' existing = if (!empty(policyStatesTopicName)) {
  name: policyStatesTopicName
}

resource armToFunction 'Microsoft.EventGrid/systemTopics/eventSubscriptions@2022-06-15' = if (!empty(armTopicName)) {
  parent: armTopic
  name: eventSubscriptionName
  properties: {
    destination: useQueue ? null : destination
    deliveryWithResourceIdentity: useQueue ? queueDelivery : null
    eventDeliverySchema: eventDeliverySchema
    filter: {
      includedEventTypes: [
        'Microsoft.Resources.ResourceWriteSuccess'
        'Microsoft.Resources.ResourceDeleteSuccess'
        'Microsoft.Resources.ResourceActionSuccess'
      ]
      enableAdvancedFilteringOnArrays: true
      advancedFilters: noiseFilters
    }
    retryPolicy: retryPolicy
    deadLetterWithResourceIdentity: deadLetter
  }
}

resource arnToFunction 'Microsoft.EventGrid/systemTopics/eventSubscriptions@2022-06-15' = if (!empty(resourceNotificationsTopicName)) {
  parent: arnTopic
  name: eventSubscriptionName
  properties: {
    destination: useQueue ? null : destination
    deliveryWithResourceIdentity: useQueue ? queueDelivery : null
    eventDeliverySchema: eventDeliverySchema
    filter: {
      includedEventTypes: [
        'Microsoft.ResourceNotifications.Resources.CreatedOrUpdated'
        'Microsoft.ResourceNotifications.Resources.Deleted'
      ]
    }
    retryPolicy: retryPolicy
    deadLetterWithResourceIdentity: deadLetter
  }
}

resource policyToFunction 'Microsoft.EventGrid/systemTopics/eventSubscriptions@2022-06-15' = if (!empty(policyStatesTopicName)) {
  parent: policyTopic
  name: eventSubscriptionName
  properties: {
    destination: useQueue ? null : destination
    deliveryWithResourceIdentity: useQueue ? queueDelivery : null
    eventDeliverySchema: eventDeliverySchema
    filter: {
      includedEventTypes: [
        'Microsoft.PolicyInsights.PolicyStateCreated'
        'Microsoft.PolicyInsights.PolicyStateChanged'
        'Microsoft.PolicyInsights.PolicyStateDeleted'
      ]
    }
    retryPolicy: retryPolicy
    deadLetterWithResourceIdentity: deadLetter
  }
}

@description('The name of the ARM event subscription; empty when this deployment has no ARM topic.')
output name string = empty(armTopicName) ? '' : armToFunction.name

@description('The resource id of the ARM event subscription; empty when this deployment has no ARM topic.')
output resourceId string = empty(armTopicName) ? '' : armToFunction.id
