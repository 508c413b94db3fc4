// The Event Grid system topics of one subscription, with a system-assigned identity each, or one
// user-assigned identity shared by every subscription's topics (it writes dead-lettered events to the
// central storage account and, with queue delivery, the events to its queue), and an alert on each
// topic's dead-lettered events.
//
// Only one system topic per source and topic type can exist: if the subscription already has one of a
// type the monitor uses, name it (existingArmTopicResourceId, existingResourceNotificationsTopicResourceId,
// existingPolicyStatesTopicResourceId) and it is reused, not changed: no lock, no diagnostic setting and no
// identity is put on a topic this module did not create; it must carry the identity the event
// subscriptions deliver with (docs/DEPLOY.md).

@description('Required. The subscription the topics take events from.')
param subscriptionId string

@description('Optional. Tags for the topics.')
param tags object = {}

@description('Optional. Also create the Azure Resource Notifications (Microsoft.ResourceNotifications.Resources) system topic.')
param enableResourceNotifications bool = false

@description('Optional. Also create the Azure Policy state changes (Microsoft.PolicyInsights.PolicyStates) system topic, for controls that take Azure Policy\'s verdict.')
param enablePolicyStateEvents bool = false

@description('Optional. Resource id of the action group the dead-letter alerts notify; empty for none.')
param actionGroupResourceId string = ''

@description('Optional. Resource id of the Log Analytics workspace the topics send their delivery failures to (DeliveryFailures); empty for none.')
param diagnosticsWorkspaceResourceId string = ''

@description('Optional. Put a CanNotDelete lock on the system topics (deleting one silently stops the events).')
param enableResourceLocks bool = false

@description('Optional. Resource id of a user-assigned identity all the topics share (it holds the dead-letter and queue roles once); empty: a system-assigned identity per topic.')
param identityResourceId string = ''

@description('Optional. Name of the ARM events system topic.')
param armTopicName string = 'evgt-compliance-monitor-arm'

@description('Optional. Name of the Resource Notifications system topic.')
param resourceNotificationsTopicName string = 'evgt-compliance-monitor-arn'

@description('Optional. Name of the Azure Policy state changes system topic.')
param policyStatesTopicName string = 'evgt-compliance-monitor-policy'

@description('Optional. Resource id of this subscription\'s existing Microsoft.Resources.Subscriptions system topic, to reuse instead of creating one (Event Grid allows one per subscription). It must carry the identity the events are dead-lettered with: the shared user-assigned one (identityResourceId) or, without it, its own system-assigned one. Empty: create the topic.')
param existingArmTopicResourceId string = ''

@description('Optional. Resource id of this subscription\'s existing Microsoft.ResourceNotifications.Resources system topic, to reuse (with enableResourceNotifications); as existingArmTopicResourceId.')
param existingResourceNotificationsTopicResourceId string = ''

@description('Optional. Resource id of this subscription\'s existing Microsoft.PolicyInsights.PolicyStates system topic, to reuse (with enablePolicyStateEvents); as existingArmTopicResourceId.')
param existingPolicyStatesTopicResourceId string = ''

var reuseArmTopic = !empty(existingArmTopicResourceId)
var reuseArnTopic = enableResourceNotifications && !empty(existingResourceNotificationsTopicResourceId)
var createArnTopic = enableResourceNotifications && empty(existingResourceNotificationsTopicResourceId)
var reusePolicyTopic = enablePolicyStateEvents && !empty(existingPolicyStatesTopicResourceId)
var createPolicyTopic = enablePolicyStateEvents && empty(existingPolicyStatesTopicResourceId)
// /subscriptions/<id>/resourceGroups/<group>/providers/Microsoft.EventGrid/systemTopics/<name>
var reusedArmTopicGroup = reuseArmTopic ? split(existingArmTopicResourceId, '/')[4] : resourceGroup().name
var reusedArmTopicName = reuseArmTopic ? last(split(existingArmTopicResourceId, '/')) : armTopicName
var reusedArnTopicGroup = reuseArnTopic ? split(existingResourceNotificationsTopicResourceId, '/')[4] : resourceGroup().name
var reusedArnTopicName = reuseArnTopic ? last(split(existingResourceNotificationsTopicResourceId, '/')) : resourceNotificationsTopicName
var reusedPolicyTopicGroup = reusePolicyTopic ? split(existingPolicyStatesTopicResourceId, '/')[4] : resourceGroup().name
var reusedPolicyTopicName = reusePolicyTopic ? last(split(existingPolicyStatesTopicResourceId, '/')) : policyStatesTopicName

var topicIdentity = empty(identityResourceId) ? {
  type: 'SystemAssigned'
} : {
  type: 'UserAssigned'
  userAssignedIdentities: {
    '${identityResourceId}': {}
  }
}

var alertActions = empty(actionGroupResourceId) ? [] : [
  {
    actionGroupId: actionGroupResourceId
  }
]

resource armTopic 'Microsoft.EventGrid/systemTopics@2022-06-15' = if (!reuseArmTopic) {
  name: armTopicName
  location: 'global'
  tags: tags
  identity: topicIdentity
  properties: {
    source: '/subscriptions/${subscriptionId}'
    topicType: 'Microsoft.Resources.Subscriptions'
  }
}

resource reusedArmTopic 'Microsoft.EventGrid/systemTopics@2022-06-15' existing = if (reuseArmTopic) {
  name: reusedArmTopicName
  scope: resourceGroup(reusedArmTopicGroup)
}

var armTopicResourceId = reuseArmTopic ? existingArmTopicResourceId : armTopic.id

resource arnTopic 'Microsoft.EventGrid/systemTopics@2022-06-15' = if (createArnTopic) {
  name: resourceNotificationsTopicName
  location: 'global'
  tags: tags
  identity: topicIdentity
  properties: {
    source: '/subscriptions/${subscriptionId}'
    topicType: 'Microsoft.ResourceNotifications.Resources'
  }
}

resource policyTopic 'Microsoft.EventGrid/systemTopics@2022-06-15' = if (createPolicyTopic) {
  name: policyStatesTopicName
  location: 'global'
  tags: tags
  identity: topicIdentity
  properties: {
    source: '/subscriptions/${subscriptionId}'
    topicType: 'Microsoft.PolicyInsights.PolicyStates'
  }
}

resource reusedArnTopic 'Microsoft.EventGrid/systemTopics@2022-06-15' existing = if (reuseArnTopic) {
  name: reusedArnTopicName
  scope: resourceGroup(reusedArnTopicGroup)
}

resource reusedPolicyTopic 'Microsoft.EventGrid/systemTopics@2022-06-15' existing = if (reusePolicyTopic) {
  name: reusedPolicyTopicName
  scope: resourceGroup(reusedPolicyTopicGroup)
}

var arnTopicResourceId = reuseArnTopic ? existingResourceNotificationsTopicResourceId : arnTopic.id
var policyTopicResourceId = reusePolicyTopic ? existingPolicyStatesTopicResourceId : policyTopic.id

var deliveryFailureLogs = [
  {
    category: 'DeliveryFailures'
    enabled: true
  }
]

resource armTopicLock 'Microsoft.Authorization/locks@2020-05-01' = if (enableResourceLocks && !reuseArmTopic) {
  name: 'compliance-monitor-do-not-delete'
  scope: armTopic
  properties: {
    level: 'CanNotDelete'
    notes: 'The compliance monitor receives this subscription\'s resource changes through this topic.'
  }
}

resource arnTopicLock 'Microsoft.Authorization/locks@2020-05-01' = if (enableResourceLocks && createArnTopic) {
  name: 'compliance-monitor-do-not-delete'
  scope: arnTopic
  properties: {
    level: 'CanNotDelete'
    notes: 'The compliance monitor receives resource notifications through this topic.'
  }
}

resource policyTopicLock 'Microsoft.Authorization/locks@2020-05-01' = if (enableResourceLocks && createPolicyTopic) {
  name: 'compliance-monitor-do-not-delete'
  scope: policyTopic
  properties: {
    level: 'CanNotDelete'
    notes: 'The compliance monitor receives Azure Policy state changes through this topic.'
  }
}

resource armTopicDiagnostics 'Microsoft.Insights/diagnosticSettings@2021-05-01-preview' = if ((!reuseArmTopic) && !empty(diagnosticsWorkspaceResourceId)) {
  name: 'compliance-monitor-self'
  scope: armTopic
  properties: {
    workspaceId: diagnosticsWorkspaceResourceId
    logs: deliveryFailureLogs
  }
}

resource arnTopicDiagnostics 'Microsoft.Insights/diagnosticSettings@2021-05-01-preview' = if (createArnTopic && !empty(diagnosticsWorkspaceResourceId)) {
  name: 'compliance-monitor-self'
  scope: arnTopic
  properties: {
    workspaceId: diagnosticsWorkspaceResourceId
    logs: deliveryFailureLogs
  }
}

resource policyTopicDiagnostics 'Microsoft.Insights/diagnosticSettings@2021-05-01-preview' = if (createPolicyTopic && !empty(diagnosticsWorkspaceResourceId)) {
  name: 'compliance-monitor-self'
  scope: policyTopic
  properties: {
    workspaceId: diagnosticsWorkspaceResourceId
    logs: deliveryFailureLogs
  }
}

resource armDeadLetterAlert 'Microsoft.Insights/metricAlerts@2018-03-01' = {
  name: 'alert-compliance-dead-lettered-arm'
  location: 'global'
  tags: tags
  properties: {
    description: 'Pipeline health: resource-change events could not be delivered to the compliance function and were dead-lettered.'
    severity: 2
    enabled: true
    scopes: [
      armTopicResourceId
    ]
    evaluationFrequency: 'PT5M'
    windowSize: 'PT15M'
    autoMitigate: true
    criteria: {
      'odata.type': 'Microsoft.Azure.Monitor.SingleResourceMultipleMetricCriteria'
      allOf: [
        {
          criterionType: 'StaticThresholdCriterion'
          name: 'DeadLetteredEvents'
          metricNamespace: 'Microsoft.EventGrid/systemTopics'
          metricName: 'DeadLetteredCount'
          operator: 'GreaterThan'
          threshold: 0
          timeAggregation: 'Total'
        }
      ]
    }
    actions: alertActions
  }
}

resource arnDeadLetterAlert 'Microsoft.Insights/metricAlerts@2018-03-01' = if (enableResourceNotifications) {
  name: 'alert-compliance-dead-lettered-arn'
  location: 'global'
  tags: tags
  properties: {
    description: 'Pipeline health: Resource Notifications events could not be delivered to the compliance function and were dead-lettered.'
    severity: 2
    enabled: true
    scopes: [
      arnTopicResourceId
    ]
    evaluationFrequency: 'PT5M'
    windowSize: 'PT15M'
    autoMitigate: true
    criteria: {
      'odata.type': 'Microsoft.Azure.Monitor.SingleResourceMultipleMetricCriteria'
      allOf: [
        {
          criterionType: 'StaticThresholdCriterion'
          name: 'DeadLetteredEvents'
          metricNamespace: 'Microsoft.EventGrid/systemTopics'
          metricName: 'DeadLetteredCount'
          operator: 'GreaterThan'
          threshold: 0
          timeAggregation: 'Total'
        }
      ]
    }
    actions: alertActions
  }
}

resource policyDeadLetterAlert 'Microsoft.Insights/metricAlerts@2018-03-01' = if (enablePolicyStateEvents) {
  name: 'alert-compliance-dead-lettered-policy'
  location: 'global'
  tags: tags
  properties: {
    description: 'Pipeline health: Azure Policy state events could not be delivered to the compliance function and were dead-lettered.'
    severity: 2
    enabled: true
    scopes: [
      policyTopicResourceId
    ]
    evaluationFrequency: 'PT5M'
    windowSize: 'PT15M'
    autoMitigate: true
    criteria: {
      'odata.type': 'Microsoft.Azure.Monitor.SingleResourceMultipleMetricCriteria'
      allOf: [
        {
          criterionType: 'StaticThresholdCriterion'
          name: 'DeadLetteredEvents'
          metricNamespace: 'Microsoft.EventGrid/systemTopics'
          metricName: 'DeadLetteredCount'
          operator: 'GreaterThan'
          threshold: 0
          timeAggregation: 'Total'
        }
      ]
    }
    actions: alertActions
  }
}

@description('The name of the ARM events system topic (created, or reused).')
output name string = reuseArmTopic ? reusedArmTopicName : armTopic.name

@description('The resource id of the ARM events system topic (created, or reused).')
output resourceId string = armTopicResourceId

@description('The name of the ARM events system topic (created, or reused).')
output armTopicName string = reuseArmTopic ? reusedArmTopicName : armTopic.name

@description('The resource group of the ARM events system topic: this one, or the reused topic\'s.')
output armTopicResourceGroupName string = reusedArmTopicGroup

@description('The resource id of the ARM events system topic (created, or reused).')
output armTopicResourceId string = armTopicResourceId

@description('The name of the Resource Notifications system topic this module created; empty when it is not enabled or is reused.')
output resourceNotificationsTopicName string = createArnTopic ? arnTopic.name : ''

@description('The name of the Azure Policy state changes system topic this module created; empty when it is not enabled or is reused.')
output policyStatesTopicName string = createPolicyTopic ? policyTopic.name : ''

@description('The principal ids of the topics\' system-assigned identities (they write dead-lettered events); empty with a shared user-assigned identity, whose roles are assigned once. A reused ARM topic gives its own system-assigned identity.')
output principalIds array = empty(identityResourceId) ? concat([
  reuseArmTopic ? reusedArmTopic!.identity.principalId : armTopic!.identity.principalId
], enableResourceNotifications ? [
  reuseArnTopic ? reusedArnTopic!.identity.principalId : arnTopic!.identity.principalId
] : [], enablePolicyStateEvents ? [
  reusePolicyTopic ? reusedPolicyTopic!.identity.principalId : policyTopic!.identity.principalId
] : []) : []
