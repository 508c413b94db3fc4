// The Function App on the Flex Consumption plan (Python 3.11, v2 programming model) with a
// system-assigned managed identity, or a user-assigned one (its role assignments outlive the app:
// recreating the app orphans none of them). Every connection is identity-based: the host storage
// (AzureWebJobsStorage__accountName), the code package container, the state table,
// Logs Ingestion and Application Insights. Role assignments: role-assignments-*.bicep.

@description('Required. Name of the Function App.')
param name string

@description('Required. Name of the Flex Consumption plan.')
param planName string

@description('Optional. Azure region. Defaults to the resource group\'s.')
param location string = resourceGroup().location

@description('Optional. Tags for the plan and the app.')
param tags object = {}

@description('Required. Name of the storage account (host storage, code package, state table).')
param storageAccountName string

@description('Required. Name of the blob container the plan deploys the code package from.')
param deploymentContainerName string

@description('Required. Table service URI of the state storage account: STATE_STORAGE__tableServiceUri.')
param stateTableServiceUri string

@description('Required. Name of the state table: STATE_TABLE_NAME.')
param stateTableName string

@description('Required. Name of the exemptions table: EXEMPTIONS_TABLE_NAME.')
param exemptionsTableName string

@description('Required. Logs ingestion endpoint of the data collection rule: LOGS_INGESTION__endpoint.')
param logsIngestionEndpoint string

@description('Required. Immutable id of the data collection rule: LOGS_INGESTION__ruleId.')
param dataCollectionRuleImmutableId string

@description('Required. Input stream of the data collection rule: LOGS_INGESTION__streamName.')
param logsIngestionStreamName string

@description('Required. The posture snapshot stream of the rule: LOGS_INGESTION__snapshotStreamName.')
param logsIngestionSnapshotStreamName string

@description('Required. The parity stream of the rule: LOGS_INGESTION__parityStreamName.')
param logsIngestionParityStreamName string

@description('Required. The permanent rejections stream of the rule: LOGS_INGESTION__rejectionStreamName.')
param logsIngestionRejectionStreamName string

@description('Required. Connection string of the Application Insights component.')
param appInsightsConnectionString string

@description('Required. Subscriptions and resource groups the function may evaluate (/subscriptions/<id>): MONITORED_SCOPES.')
@minLength(1)
param monitoredScopes array

@description('Optional. NCRONTAB schedule of the drain_findings timer that delivers findings left in the outbox: OUTBOX_DRAIN_SCHEDULE.')
param outboxDrainSchedule string = '0 */1 * * * *'

@description('Optional. NCRONTAB schedule of the reconcile timer: RECONCILE_SCHEDULE.')
param reconcileSchedule string = '0 0 */6 * * *'

@description('Optional. NCRONTAB schedule of the refresh_assignments timer (Azure Policy assignment changes at management groups, re-evaluation after a change): ASSIGNMENTS_SCHEDULE.')
param assignmentsSchedule string = '0 */1 * * * *'

@description('Optional. NCRONTAB schedule of the parity timer (Azure Policy\'s own states beside the monitor\'s): PARITY_SCHEDULE.')
param paritySchedule string = '0 30 */6 * * *'

@description('Optional. Where controls come from: builtin, custom (controlsPath), assignments (the Azure Policy assignments of the monitored subscriptions): CONTROL_SOURCES.')
param controlSources array = [
  'builtin'
  'custom'
  'assignments'
]

@description('Optional. Minutes after which a subscription\'s Azure Policy assignments are read again: ASSIGNMENTS_REFRESH_MINUTES.')
@minValue(1)
@maxValue(1440)
param assignmentsRefreshMinutes int = 10

@description('Optional. The queue Event Grid delivers to (queue delivery: EVENT_DELIVERY=queue, EVENTS_QUEUE_NAME); empty: the webhook.')
param eventsQueueName string = ''

@description('Optional. The queue service URI of the storage account (EVENTS_QUEUE__queueServiceUri), with queue delivery.')
param eventsQueueServiceUri string = ''

@description('Optional. Tag names that name a resource\'s owner: OWNER_TAGS.')
param ownerTagNames array = [
  'owner'
]

@description('Optional. Tag names that name a resource\'s team: TEAM_TAGS.')
param teamTagNames array = [
  'team'
]

@description('Optional. Days to fix an open finding, by severity: SLA_DAYS.')
param slaDays object = {
  Critical: 1
  High: 7
  Medium: 30
  Low: 90
}

@description('Optional. Control ids to leave out: DISABLED_CONTROLS.')
param disabledControls array = []

@description('Optional. Parameter overrides per control id: CONTROL_PARAMETERS.')
param controlParameters object = {}

@description('Optional. Folders (comma-separated, relative to the deployed package) of custom controls: CONTROLS_PATH.')
param controlsPath string = ''

@description('Optional. Maximum number of instances the plan scales out to.')
@minValue(40)
@maxValue(1000)
param maximumInstanceCount int = 100

@description('Optional. Memory per instance, in MB.')
@allowed([
  512
  2048
  4096
])
param instanceMemoryMB int = 2048

@description('Optional. Python version of the Functions runtime.')
@allowed([
  '3.11'
])
param pythonVersion string = '3.11'

@description('Optional. Resource id of the subnet the app integrates with (delegated to Microsoft.App/environments); empty: no VNet integration. A Flex Consumption app then sends all its outbound traffic through the virtual network (no Route All setting needed).')
param virtualNetworkSubnetId string = ''

@description('Optional. Access restrictions: the app admits only Event Grid (service tag AzureEventGrid, webhook delivery only) and allowedIpRanges, default action Deny; the SCM (publishing) site admits only allowedIpRanges.')
param restrictPublicAccess bool = false

@description('Optional. With restrictPublicAccess: public IP ranges (CIDR) allowed to call the HTTP API and to publish through the SCM site.')
param allowedIpRanges array = []

@description('Optional. Turn the app\'s public network access off (no inbound from the internet, Event Grid included): only with queue delivery, and the HTTP API and publishing then need a private endpoint for the app.')
param disablePublicNetworkAccess bool = false

@description('Optional. Refuse HTTP API calls that did not pass App Service Authentication (API_REQUIRE_AUTHENTICATION).')
param requireApiAuthentication bool = false

@description('Optional. Resource id of a user-assigned managed identity for the app (host storage, code package, ARM, tables, Logs Ingestion); empty: the system-assigned identity.')
param userAssignedIdentityResourceId string = ''

@description('Optional. Client id of that identity (AZURE_CLIENT_ID and the connections\' __clientId).')
param userAssignedIdentityClientId string = ''

@description('Optional. Principal id (object id) of that identity, returned as principalId.')
param userAssignedIdentityPrincipalId string = ''

var useUserAssignedIdentity = !empty(userAssignedIdentityResourceId)

// With a user-assigned identity every identity-based connection names it: the host's (AzureWebJobsStorage,
// the queue trigger's EVENTS_QUEUE) by __credential and __clientId, the code's (DefaultAzureCredential) by
// AZURE_CLIENT_ID, Application Insights by ClientId in its authentication string.
// https://learn.microsoft.com/azure/azure-functions/functions-reference#common-properties-for-identity-based-connections
var userAssignedIdentitySettings = useUserAssignedIdentity ? {
  AZURE_CLIENT_ID: userAssignedIdentityClientId
  AzureWebJobsStorage__credential: 'managedidentity'
  AzureWebJobsStorage__clientId: userAssignedIdentityClientId
  EVENTS_QUEUE__credential: 'managedidentity'
  EVENTS_QUEUE__clientId: userAssignedIdentityClientId
} : {}

// Trailing slash trimmed: the code joins paths onto ARM_ENDPOINT.
var resourceManager = environment().resourceManager
var armEndpoint = endsWith(resourceManager, '/') ? substring(resourceManager, 0, length(resourceManager) - 1) : resourceManager

// Every name below is read by shared/config.py, by a trigger binding (%NAME%), or by the Functions host.
var appSettings = {
  AzureWebJobsStorage__accountName: storage.name
  APPLICATIONINSIGHTS_CONNECTION_STRING: appInsightsConnectionString
  APPLICATIONINSIGHTS_AUTHENTICATION_STRING: useUserAssignedIdentity ? 'Authorization=AAD;ClientId=${userAssignedIdentityClientId}' : 'Authorization=AAD'
  STATE_STORE: 'table'
  STATE_TABLE_NAME: stateTableName
  EXEMPTIONS_TABLE_NAME: exemptionsTableName
  STATE_STORAGE__tableServiceUri: stateTableServiceUri
  FINDINGS_SINK: 'logsIngestion'
  LOGS_INGESTION__endpoint: logsIngestionEndpoint
  LOGS_INGESTION__ruleId: dataCollectionRuleImmutableId
  LOGS_INGESTION__streamName: logsIngestionStreamName
  LOGS_INGESTION__snapshotStreamName: logsIngestionSnapshotStreamName
  LOGS_INGESTION__parityStreamName: logsIngestionParityStreamName
  LOGS_INGESTION__rejectionStreamName: logsIngestionRejectionStreamName
  ARM_ENDPOINT: armEndpoint
  MONITORED_SCOPES: join(monitoredScopes, ',')
  OUTBOX_DRAIN_SCHEDULE: outboxDrainSchedule
  RECONCILE_SCHEDULE: reconcileSchedule
  ASSIGNMENTS_SCHEDULE: assignmentsSchedule
  EVENT_DELIVERY: empty(eventsQueueName) ? 'webhook' : 'queue'
  EVENTS_QUEUE_NAME: empty(eventsQueueName) ? 'compliance-events' : eventsQueueName
  EVENTS_QUEUE__queueServiceUri: eventsQueueServiceUri
  PARITY_SCHEDULE: paritySchedule
  CONTROL_SOURCES: join(controlSources, ',')
  ASSIGNMENTS_REFRESH_MINUTES: string(assignmentsRefreshMinutes)
  OWNER_TAGS: join(ownerTagNames, ',')
  TEAM_TAGS: join(teamTagNames, ',')
  SLA_DAYS: string(slaDays)
  CONTROLS_PATH: controlsPath
  DISABLED_CONTROLS: join(disabledControls, ',')
  CONTROL_PARAMETERS: string(controlParameters)
  API_REQUIRE_AUTHENTICATION: requireApiAuthentication ? 'true' : 'false'
}

// Access restrictions (https://learn.microsoft.com/azure/app-service/app-service-ip-restrictions): the
// webhook admits Event Grid's service tag (Event Grid authenticates with the extension's system key on top);
// with queue delivery nothing inbound is needed from Event Grid, so only the operators' ranges remain. The
// SCM site does not share the main rules (scmIpSecurityRestrictionsUseMain false): Event Grid never
// publishes code, so it gets the operators' ranges alone.
var operatorRules = [for (range, i) in allowedIpRanges: {
  name: 'operators-${i}'
  action: 'Allow'
  priority: 200 + i
  ipAddress: range
}]
var eventGridRule = {
  name: 'event-grid'
  action: 'Allow'
  priority: 100
  tag: 'ServiceTag'
  ipAddress: 'AzureEventGrid'
}
var accessRules = concat(empty(eventsQueueName) ? [
  eventGridRule
] : [], operatorRules)

resource storage 'Microsoft.Storage/storageAccounts@2023-05-01' existing = {
  name: storageAccountName
}

resource plan 'Microsoft.Web/serverfarms@2024-04-01' = {
  name: planName
  location: location
  tags: tags
  kind: 'functionapp'
  sku: {
    name: 'FC1'
    tier: 'FlexConsumption'
  }
  properties: {
    reserved: true
  }
}

resource site 'Microsoft.Web/sites@2024-04-01' = {
  // checkov:skip=CKV_AZURE_16: the identity type is an expression (system- or user-assigned) checkov cannot read; tests/test_infra_scale.py checks the app has an identity either way.
  name: name
  location: location
  tags: tags
  kind: 'functionapp,linux'
  identity: {
    type: useUserAssignedIdentity ? 'UserAssigned' : 'SystemAssigned'
    userAssignedIdentities: useUserAssignedIdentity ? {
      '${userAssignedIdentityResourceId}': {}
    } : null
  }
  properties: {
    serverFarmId: plan.id
    httpsOnly: true
    clientAffinityEnabled: false
    publicNetworkAccess: disablePublicNetworkAccess ? 'Disabled' : 'Enabled'
    virtualNetworkSubnetId: empty(virtualNetworkSubnetId) ? null : virtualNetworkSubnetId
    siteConfig: {
      minTlsVersion: '1.2'
      scmMinTlsVersion: '1.2'
      ftpsState: 'Disabled'
      http20Enabled: true
      ipSecurityRestrictionsDefaultAction: restrictPublicAccess ? 'Deny' : null
      ipSecurityRestrictions: restrictPublicAccess ? accessRules : null
      scmIpSecurityRestrictionsUseMain: restrictPublicAccess ? false : null
      scmIpSecurityRestrictionsDefaultAction: restrictPublicAccess ? 'Deny' : null
      scmIpSecurityRestrictions: restrictPublicAccess ? operatorRules : null
      appSettings: [for setting in items(union(appSettings, userAssignedIdentitySettings)): {
        name: setting.key
        value: setting.value
      }]
    }
    functionAppConfig: {
      deployment: {
        storage: {
          type: 'blobContainer'
          value: '${storage.properties.primaryEndpoints.blob}${deploymentContainerName}'
          authentication: useUserAssignedIdentity ? {
            type: 'UserAssignedIdentity'
            userAssignedIdentityResourceId: userAssignedIdentityResourceId
          } : {
            type: 'SystemAssignedIdentity'
          }
        }
      }
      scaleAndConcurrency: {
        maximumInstanceCount: maximumInstanceCount
        instanceMemoryMB: instanceMemoryMB
      }
      runtime: {
        name: 'python'
        version: pythonVersion
      }
    }
  }
}

// No basic-auth (user name and password) publishing on FTP or the SCM site: the code is published with
// Entra ID (docs/DEPLOY.md).
resource ftpPublishing 'Microsoft.Web/sites/basicPublishingCredentialsPolicies@2024-04-01' = {
  parent: site
  name: 'ftp'
  properties: {
    allow: false
  }
}

resource scmPublishing 'Microsoft.Web/sites/basicPublishingCredentialsPolicies@2024-04-01' = {
  parent: site
  name: 'scm'
  properties: {
    allow: false
  }
}

@description('The name of the Function App.')
output name string = site.name

@description('The resource id of the Function App.')
output resourceId string = site.id

@description('The principal id of the app\'s managed identity (the user-assigned one when given).')
output principalId string = useUserAssignedIdentity ? userAssignedIdentityPrincipalId : site.identity.principalId

@description('The default host name of the app.')
output defaultHostName string = site.properties.defaultHostName
