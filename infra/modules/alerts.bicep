// Alerts: an action group (email and webhook receivers), log alerts on ComplianceFindings_CL
// for Critical and High drift, one on overdue findings (with ComplianceSnapshot_CL), and pipeline-health log alerts on Application Insights
// (failed function invocations, no event processed for a while). The dead-letter alerts
// live beside each system topic (event-topics.bicep). Queries: infra/queries/*.kql.

@description('Required. Prefix of the alert rule and action group names.')
param namePrefix string

@description('Optional. Azure region of the alert rules. Defaults to the resource group\'s.')
param location string = resourceGroup().location

@description('Optional. Tags for the alert rules and the action group.')
param tags object = {}

@description('Required. Resource id of the Log Analytics workspace with ComplianceFindings_CL.')
param workspaceResourceId string

@description('Required. Resource id of the Application Insights component of the Function App.')
param appInsightsResourceId string

@description('Required. Name of the Event Grid function, as the Functions host indexes it.')
param functionName string

@description('Optional. Email addresses the action group notifies.')
param emailAddresses array = []

@description('Optional. Webhook URIs the action group calls (common alert schema).')
param webhookUris array = []

@description('Optional. Short name of the action group (at most 12 characters), shown in SMS and email.')
@maxLength(12)
param actionGroupShortName string = 'compliance'

@description('Optional. How often the drift alerts run, and the window each run looks at. Not PT1M: the query selects by ingestion_time(), which one-minute rules do not accept.')
@allowed([
  'PT5M'
  'PT10M'
  'PT15M'
])
param driftAlertFrequency string = 'PT5M'

@description('Optional. Failed invocations of one function within 15 minutes that raise the pipeline alert.')
@minValue(1)
param functionFailureThreshold int = 5

@description('Optional. Permanently rejected events within an hour that raise the pipeline alert.')
@minValue(1)
param permanentRejectionThreshold int = 1

@description('Optional. Hours without a processed event that raise the pipeline alert: a window log search alerts support (1, 2, 3, 6, 24 or 48 hours).')
@allowed([
  1
  2
  3
  6
  24
  48
])
param noEventsAlertHours int = 24

var driftLevels = [
  {
    severity: 'Critical'
    alertSeverity: 0
  }
  {
    severity: 'High'
    alertSeverity: 1
  }
]

// The drift rules look a day back on TimeGenerated, so a late record is still in range, and count what was
// ingested since the previous run (@WINDOW@ is the run interval). The overdue rule needs the last
// reconciliation run's snapshot in its range: RECONCILE_SCHEDULE must run at least once a day.
var lateRecordRange = 'P1D'
var overdueQueryRange = 'P1D'
var runIntervals = {
  PT5M: '00:05:00'
  PT10M: '00:10:00'
  PT15M: '00:15:00'
}

var driftQuery = loadTextContent('../queries/alert-new-or-drifted.kql')
var overdueQuery = loadTextContent('../queries/alert-overdue.kql')
var failuresQuery = loadTextContent('../queries/pipeline-function-failures.kql')
var rejectionsQuery = loadTextContent('../queries/pipeline-permanent-rejections.kql')
var noEventsQuery = replace(loadTextContent('../queries/pipeline-no-events.kql'), '@FUNCTION_NAME@', functionName)

resource actionGroup 'Microsoft.Insights/actionGroups@2023-01-01' = {
  name: '${namePrefix}-ag'
  location: 'Global'
  tags: tags
  properties: {
    groupShortName: actionGroupShortName
    enabled: true
    emailReceivers: [for (address, i) in emailAddresses: {
      name: 'email-${i}'
      emailAddress: address
      useCommonAlertSchema: true
    }]
    webhookReceivers: [for (uri, i) in webhookUris: {
      name: 'webhook-${i}'
      serviceUri: uri
      useCommonAlertSchema: true
    }]
  }
}

// The custom table may be minutes old when the rules are created: skip query validation.
resource driftAlerts 'Microsoft.Insights/scheduledQueryRules@2023-12-01' = [for level in driftLevels: {
  name: '${namePrefix}-drift-${toLower(level.severity)}'
  location: location
  tags: tags
  kind: 'LogAlert'
  identity: {
    type: 'SystemAssigned'
  }
  properties: {
    displayName: 'Compliance drift: ${level.severity} control New or Drifted'
    description: 'A ${level.severity} control became non-compliant (Transition New or Drifted) in ComplianceFindings_CL.'
    severity: level.alertSeverity
    enabled: true
    evaluationFrequency: driftAlertFrequency
    windowSize: driftAlertFrequency
    overrideQueryTimeRange: lateRecordRange
    scopes: [
      workspaceResourceId
    ]
    targetResourceTypes: [
      'Microsoft.OperationalInsights/workspaces'
    ]
    skipQueryValidation: true
    autoMitigate: false
    criteria: {
      allOf: [
        {
          query: replace(replace(driftQuery, '@SEVERITY@', level.severity), '@WINDOW@', runIntervals[driftAlertFrequency])
          timeAggregation: 'Count'
          dimensions: [
            {
              name: 'ControlId'
              operator: 'Include'
              values: [
                '*'
              ]
            }
            {
              name: 'SubscriptionId'
              operator: 'Include'
              values: [
                '*'
              ]
            }
          ]
          operator: 'GreaterThan'
          threshold: 0
          failingPeriods: {
            numberOfEvaluationPeriods: 1
            minFailingPeriodsToAlert: 1
          }
        }
      ]
    }
    actions: {
      actionGroups: [
        actionGroup.id
      ]
    }
  }
}]

resource overdueAlert 'Microsoft.Insights/scheduledQueryRules@2023-12-01' = {
  name: '${namePrefix}-overdue'
  location: location
  tags: tags
  kind: 'LogAlert'
  identity: {
    type: 'SystemAssigned'
  }
  properties: {
    displayName: 'Compliance findings past their due date'
    description: 'Open findings (latest status NonCompliant in ComplianceSnapshot_CL or ComplianceFindings_CL) whose SLA due date (DueDate) has passed, per team.'
    severity: 2
    enabled: true
    evaluationFrequency: 'PT1H'
    windowSize: 'P1D'
    overrideQueryTimeRange: overdueQueryRange
    scopes: [
      workspaceResourceId
    ]
    targetResourceTypes: [
      'Microsoft.OperationalInsights/workspaces'
    ]
    skipQueryValidation: true
    autoMitigate: true
    criteria: {
      allOf: [
        {
          query: overdueQuery
          timeAggregation: 'Count'
          dimensions: [
            {
              name: 'Team'
              operator: 'Include'
              values: [
                '*'
              ]
            }
          ]
          operator: 'GreaterThan'
          threshold: 0
          failingPeriods: {
            numberOfEvaluationPeriods: 1
            minFailingPeriodsToAlert: 1
          }
        }
      ]
    }
    actions: {
      actionGroups: [
        actionGroup.id
      ]
    }
  }
}

resource functionFailures 'Microsoft.Insights/scheduledQueryRules@2023-12-01' = {
  name: '${namePrefix}-function-failures'
  location: location
  tags: tags
  kind: 'LogAlert'
  identity: {
    type: 'SystemAssigned'
  }
  properties: {
    displayName: 'Compliance monitor: function failures'
    description: 'Pipeline health: function invocations failed. Failed ${functionName} runs are redelivered by Event Grid and dead-lettered after the last attempt; a failed drain_findings run leaves findings in the outbox.'
    severity: 2
    enabled: true
    evaluationFrequency: 'PT5M'
    windowSize: 'PT15M'
    scopes: [
      appInsightsResourceId
    ]
    skipQueryValidation: true
    autoMitigate: true
    criteria: {
      allOf: [
        {
          query: failuresQuery
          timeAggregation: 'Count'
          dimensions: [
            {
              name: 'operation_Name'
              operator: 'Include'
              values: [
                '*'
              ]
            }
          ]
          operator: 'GreaterThanOrEqual'
          threshold: functionFailureThreshold
          failingPeriods: {
            numberOfEvaluationPeriods: 1
            minFailingPeriodsToAlert: 1
          }
        }
      ]
    }
    actions: {
      actionGroups: [
        actionGroup.id
      ]
    }
  }
}

resource noEvents 'Microsoft.Insights/scheduledQueryRules@2023-12-01' = {
  name: '${namePrefix}-no-events'
  location: location
  tags: tags
  kind: 'LogAlert'
  identity: {
    type: 'SystemAssigned'
  }
  properties: {
    displayName: 'Compliance monitor: no events processed'
    description: 'Pipeline health: ${functionName} processed no event in ${noEventsAlertHours} hour(s). Check the event subscriptions and the Function App.'
    severity: 2
    enabled: true
    evaluationFrequency: 'PT1H'
    windowSize: 'PT${noEventsAlertHours}H'
    scopes: [
      appInsightsResourceId
    ]
    skipQueryValidation: true
    autoMitigate: true
    criteria: {
      allOf: [
        {
          query: noEventsQuery
          timeAggregation: 'Count'
          operator: 'LessThan'
          threshold: 1
          failingPeriods: {
            numberOfEvaluationPeriods: 1
            minFailingPeriodsToAlert: 1
          }
        }
      ]
    }
    actions: {
      actionGroups: [
        actionGroup.id
      ]
    }
  }
}

resource permanentRejections 'Microsoft.Insights/scheduledQueryRules@2023-12-01' = {
  name: '${namePrefix}-permanent-rejections'
  location: location
  tags: tags
  kind: 'LogAlert'
  identity: {
    type: 'SystemAssigned'
  }
  properties: {
    displayName: 'Compliance monitor: events rejected permanently'
    description: 'Pipeline health: ${functionName} acknowledged events it can never process (malformed, forged, out of scope, or a state the table cannot hold). Their resources are not evaluated until the next event or reconciliation.'
    severity: 2
    enabled: true
    evaluationFrequency: 'PT15M'
    windowSize: 'PT1H'
    scopes: [
      workspaceResourceId
    ]
    skipQueryValidation: true
    autoMitigate: true
    criteria: {
      allOf: [
        {
          query: rejectionsQuery
          timeAggregation: 'Count'
          operator: 'GreaterThanOrEqual'
          threshold: permanentRejectionThreshold
          failingPeriods: {
            numberOfEvaluationPeriods: 1
            minFailingPeriodsToAlert: 1
          }
        }
      ]
    }
    actions: {
      actionGroups: [
        actionGroup.id
      ]
    }
  }
}

// Each rule runs its query as its own system-assigned identity (not as whoever last edited it): main.bicep
// grants each Log Analytics Reader on the scope it queries (role-assignments-alert-rules.bicep).
@description('Principal ids of the rules that query the workspace (Log Analytics Reader on it).')
output workspaceRulePrincipalIds array = [
  driftAlerts[0].identity.principalId
  driftAlerts[1].identity.principalId
  overdueAlert.identity.principalId
  permanentRejections.identity.principalId
]

@description('Principal ids of the rules that query Application Insights (Log Analytics Reader on it).')
output appInsightsRulePrincipalIds array = [
  functionFailures.identity.principalId
  noEvents.identity.principalId
]

@description('The name of the action group.')
output name string = actionGroup.name

@description('The resource id of the action group.')
output resourceId string = actionGroup.id

@description('The names of the log alert rules.')
output alertRuleNames array = [
  driftAlerts[0].name
  driftAlerts[1].name
  overdueAlert.name
  functionFailures.name
  noEvents.name
  permanentRejections.name
]
