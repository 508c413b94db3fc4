// The event-driven compliance monitor, deployed in one subscription for many.
//
//   az deployment sub create --location <region> --parameters infra/main.bicepparam
//
// Step 1 (deployEventSubscriptions = false): resource group, storage, Function App,
// Log Analytics table and data collection rule, alerts, workbook, and per monitored
// subscription the Reader role and the Event Grid system topics. Then publish the code.
// Step 2 (deployEventSubscriptions = true): the same deployment again, which adds the
// event subscriptions to the function (Event Grid requires the function to exist).
// See docs/DEPLOY.md.
targetScope = 'subscription'

metadata name = 'Event-driven compliance monitor'
metadata description = 'Event Grid resource-change events -> Azure Function -> Table Storage state -> Logs Ingestion -> ComplianceFindings_CL, with alerts and a workbook.'

// ------------------------------------------------------------------ where and what

@description('Optional. Subscription ids to monitor. Each gets Reader for the function and an Event Grid system topic. May include this subscription. Give these, or monitoredManagementGroupIds, or both.')
param monitoredSubscriptionIds array = []

@description('Optional. Management group ids whose subscriptions are monitored (MONITORED_SCOPES names the groups; the function lists their subscriptions from ARM). Nothing is deployed in those subscriptions here: infra/management-group.bicep assigns Reader at the groups and deploys each subscription\'s part with infra/subscription.bicep (docs/DEPLOY.md).')
param monitoredManagementGroupIds array = []

@description('Optional. Azure region of the resource group and its resources (must offer the Flex Consumption plan). Defaults to the deployment\'s location.')
param location string = deployment().location

@description('Optional. Name of the resource group for the monitor.')
param resourceGroupName string = 'rg-compliance-monitor'

@description('Optional. Name of the resource group created in each monitored subscription for its system topics.')
param eventResourceGroupName string = 'rg-compliance-monitor-events'

@description('Optional. Existing Microsoft.Resources.Subscriptions system topics to reuse, by monitored subscription id: { \'<subscription id>\': \'<topic resource id>\' }. Event Grid allows one such topic per subscription, so a subscription that has one fails the deployment unless it is named here; the topic must carry the identity events are dead-lettered with (docs/DEPLOY.md).')
param existingArmTopicResourceIds object = {}

@description('Optional. Existing Microsoft.ResourceNotifications.Resources system topics to reuse with enableResourceNotifications, by monitored subscription id (as existingArmTopicResourceIds).')
param existingResourceNotificationsTopicResourceIds object = {}

@description('Optional. Existing Microsoft.PolicyInsights.PolicyStates system topics to reuse with enablePolicyStateEvents, by monitored subscription id (as existingArmTopicResourceIds).')
param existingPolicyStatesTopicResourceIds object = {}

@description('Optional. Tags for every resource group and resource.')
param tags object = {}

@description('Optional. Step 2 of the deployment: create the event subscriptions to the function. Set it only after the function code is published (docs/DEPLOY.md).')
param deployEventSubscriptions bool = false

// ------------------------------------------------------------------ events

@description('Optional. Also subscribe to Azure Resource Notifications (Microsoft.ResourceNotifications.Resources CreatedOrUpdated/Deleted), whose events carry the resource.')
param enableResourceNotifications bool = false

@description('Optional. Also subscribe to Azure Policy state changes (Microsoft.PolicyInsights.PolicyStateCreated/Changed/Deleted): controls imported from data-plane definitions (Kubernetes, Key Vault data) take Azure Policy\'s verdict, and these events say when it changed.')
param enablePolicyStateEvents bool = false

@description('Optional. Schema Event Grid delivers in; the function decodes both.')
@allowed([
  'EventGridSchema'
  'CloudEventSchemaV1_0'
])
param eventDeliverySchema string = 'EventGridSchema'

@description('Optional. Put CanNotDelete locks on the storage account (state, outbox, dead letters) and on the system topics of every monitored subscription. Removing a lock needs Owner or User Access Administrator.')
param enableResourceLocks bool = false

@description('Optional. How Event Grid delivers to the function: webhook (the Event Grid trigger), or queue (to the Storage Queue compliance-events with the topics\' identities, read by a queue trigger: no webhook handshake, works with private networking; adds up to the queue polling interval of latency, see DEPLOY.md).')
@allowed([
  'webhook'
  'queue'
])
param eventDelivery string = 'webhook'

@description('Optional. The identities: SystemAssigned (the app\'s and each system topic\'s own), or UserAssigned (one for the app and one shared by every monitored subscription\'s topics, created in the monitor\'s resource group: role assignments outlive a recreated app, and the topics\' dead-letter and queue roles are assigned once instead of per topic). With enablePrivateNetworking the topics keep system-assigned identities: Event Grid cannot deliver to a storage firewall with a user-assigned one.')
@allowed([
  'SystemAssigned'
  'UserAssigned'
])
param identityType string = 'SystemAssigned'

@description('Optional. Delivery attempts before an event is dead-lettered (Event Grid retries with back-off).')
@minValue(1)
@maxValue(30)
param maxDeliveryAttempts int = 30

@description('Optional. Minutes an event is retried before it is dead-lettered.')
@minValue(1)
@maxValue(1440)
param eventTimeToLiveInMinutes int = 1440

@description('Optional. ARM operations that are never evaluated, by data.operationName prefix. With the suffixes at most 25 values (Event Grid limit).')
param ignoredOperationNamePrefixes array = [
  'Microsoft.Resources/deployments/'
  'Microsoft.Authorization/policies/'
]

@description('Optional. Read-only ARM actions that are never evaluated, by data.operationName suffix.')
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

// ------------------------------------------------------------------ findings

@description('Optional. Resource id of an existing Log Analytics workspace for the findings; empty creates a new one.')
param existingLogAnalyticsWorkspaceId string = ''

@description('Optional. Retention of a new workspace, in days.')
@minValue(30)
@maxValue(730)
param logAnalyticsRetentionInDays int = 90

@description('Optional. Interactive retention of ComplianceFindings_CL, in days. The workbook\'s posture views look back this far.')
@minValue(4)
@maxValue(730)
param findingsRetentionInDays int = 90

@description('Optional. Long-term retention of ComplianceFindings_CL and ComplianceSnapshot_CL after their interactive retention, in days (0 for none). The total retention is the sum, so it can never be shorter than the interactive one; at most 730 + 3653 = 4383 days (12 years).')
@minValue(0)
@maxValue(3653)
param findingsLongTermRetentionInDays int = 275

// ------------------------------------------------------------------ the function

@description('Optional. Replication of the storage account (host, code package, state, dead letters).')
@allowed([
  'Standard_LRS'
  'Standard_ZRS'
  'Standard_GRS'
  'Standard_GZRS'
  'Standard_RAGRS'
  'Standard_RAGZRS'
])
param storageSkuName string = 'Standard_GRS'

@description('Optional. Maximum instances of the Flex Consumption plan.')
@minValue(40)
@maxValue(1000)
param functionMaximumInstanceCount int = 100

@description('Optional. Memory per instance of the Flex Consumption plan, in MB.')
@allowed([
  512
  2048
  4096
])
param functionInstanceMemoryMB int = 2048

@description('Optional. NCRONTAB schedule of the drain_findings timer, which delivers findings whose first send failed (OUTBOX_DRAIN_SCHEDULE).')
param outboxDrainSchedule string = '0 */1 * * * *'

@description('Optional. NCRONTAB schedule of the reconcile timer, which lists the monitored subscriptions with Azure Resource Graph (RECONCILE_SCHEDULE).')
param reconcileSchedule string = '0 0 */6 * * *'

@description('Optional. NCRONTAB schedule of the refresh_assignments timer, which notices Azure Policy assignment changes at management groups (they send no event) and re-evaluates the subscriptions whose assignments changed (ASSIGNMENTS_SCHEDULE).')
param assignmentsSchedule string = '0 */1 * * * *'

@description('Optional. NCRONTAB schedule of the parity timer, which compares the verdicts on Azure Policy assignments with Azure Policy\'s own latest states into ComplianceParity_CL (PARITY_SCHEDULE).')
param paritySchedule string = '0 30 */6 * * *'

@description('Optional. Where controls come from: builtin (the built-in catalog), custom (controlsPath), assignments (the Azure Policy assignments of the monitored subscriptions, read with the Reader role) (CONTROL_SOURCES).')
param controlSources array = [
  'builtin'
  'custom'
  'assignments'
]

@description('Optional. Minutes after which a subscription\'s Azure Policy assignments are read again; policy change events at subscription and resource-group scope make it sooner (ASSIGNMENTS_REFRESH_MINUTES).')
@minValue(1)
@maxValue(1440)
param assignmentsRefreshMinutes int = 10

@description('Optional. Tag names that name a resource\'s owner, first match wins; the resource group\'s tags are the fallback (OWNER_TAGS).')
param ownerTagNames array = [
  'owner'
]

@description('Optional. Tag names that name a resource\'s team (TEAM_TAGS).')
param teamTagNames array = [
  'team'
]

@description('Optional. Days to fix an open finding, by severity (SLA_DAYS).')
param slaDays object = {
  Critical: 1
  High: 7
  Medium: 30
  Low: 90
}

@description('Optional. Control ids to leave out (DISABLED_CONTROLS).')
param disabledControls array = []

@description('Optional. Parameter overrides per control id (CONTROL_PARAMETERS), e.g. {"required-tags": {"tagNames": ["owner"]}}.')
param controlParameters object = {}

@description('Optional. Folders of custom controls inside the published package, comma-separated (CONTROLS_PATH).')
param controlsPath string = ''

// ------------------------------------------------------------------ alerts

@description('Optional. Email addresses notified by the alerts.')
param alertEmailAddresses array = []

@description('Optional. Webhook URIs called by the alerts (common alert schema). A URI with a secret in it is visible in the deployment history.')
param alertWebhookUris array = []

@description('Optional. How often the Critical/High drift alerts run (and the window each run looks at). Not PT1M: their query selects by ingestion_time(), which one-minute log search alerts do not accept.')
@allowed([
  'PT5M'
  'PT10M'
  'PT15M'
])
param driftAlertFrequency string = 'PT5M'

@description('Optional. Failed function invocations within 15 minutes that raise the pipeline alert.')
@minValue(1)
param functionFailureThreshold int = 5

@description('Optional. Permanently rejected events (malformed, forged, unsupported) within an hour that raise the pipeline alert.')
@minValue(1)
param permanentRejectionThreshold int = 1

@description('Optional. Hours without a processed event that raise the pipeline alert. Make it longer than the quietest period of the monitored subscriptions.')
@allowed([
  1
  2
  3
  6
  24
  48
])
param noEventsAlertHours int = 24

@description('Optional. Application (client) id of the Microsoft Entra app registration that protects the HTTP API (App Service Authentication). Empty: function key only, and Caller is "api (function key)".')
param apiAuthClientId string = ''

@description('Optional. Token audiences the HTTP API accepts besides the client id and api://<client-id>.')
param apiAuthAllowedAudiences array = []

@description('Optional. Client application ids allowed to call the HTTP API; empty: any client of the tenant.')
param apiAuthAllowedClientApplications array = []

@description('Optional. Deploy the Azure Monitor workbook.')
param deployWorkbook bool = true

@description('Optional. Send the monitor\'s own logs (storage, Function App, data collection rule, system topic delivery failures) to the workspace.')
param deployDiagnosticSettings bool = true

// ------------------------------------------------------------------ private networking

@description('Optional. The private option (docs/DEPLOY.md, "Private networking"): VNet integration of the Function App, private endpoints for the storage account (blob, table, queue), the storage firewall closed to all but trusted Azure services (Event Grid delivers and dead-letters with its topics\' identities), and access restrictions on the app (Event Grid\'s service tag and apiAllowedIpRanges only, default Deny). Off: everything public, as in the quick start.')
param enablePrivateNetworking bool = false

@description('Optional. Address space of the virtual network created for the private option (not used with existing subnets).')
param virtualNetworkAddressPrefix string = '10.100.0.0/26'

@description('Optional. Address range of the created integration subnet, delegated to Microsoft.App/environments (/27: Microsoft\'s recommendation for one Flex Consumption app).')
param integrationSubnetAddressPrefix string = '10.100.0.0/27'

@description('Optional. Address range of the created private endpoint subnet (three endpoints).')
param privateEndpointSubnetAddressPrefix string = '10.100.0.32/28'

@description('Optional. Bring your own network: resource id of an existing subnet in this region, delegated to Microsoft.App/environments, for the app\'s VNet integration. Give it with existingPrivateEndpointSubnetId: then no virtual network is created.')
param existingIntegrationSubnetId string = ''

@description('Optional. Bring your own network: resource id of an existing subnet for the storage private endpoints.')
param existingPrivateEndpointSubnetId string = ''

@description('Optional. Bring your own DNS: existing private DNS zone ids by key, e.g. {"blob": ".../privatelink.blob.core.windows.net", "table": ..., "queue": ...} (a hub\'s central zones); also sites (privatelink.azurewebsites.net) and monitor, oms, ods, agentsvc (the Azure Monitor zones). No zone or link is created for a key given here.')
param existingPrivateDnsZoneIds object = {}

@description('Optional. With private networking: public IP ranges (CIDR) allowed to call the HTTP API and to publish through the SCM site (your operators\' and your build agents\' egress). Empty: only Event Grid gets in, and nobody can publish from outside.')
param apiAllowedIpRanges array = []

@description('Optional. With private networking and eventDelivery queue: turn the Function App\'s public network access off (Event Grid then needs no inbound path). The HTTP API and publishing need a private endpoint for the app then, which these templates do not create. Ignored with webhook delivery.')
param disableFunctionPublicNetworkAccess bool = false

@description('Optional. With private networking: a private endpoint for the Function App (group id sites, zone privatelink.azurewebsites.net, or existingPrivateDnsZoneIds.sites), so the HTTP API and publishing are reached inside the network; with disableFunctionPublicNetworkAccess (queue delivery) that is the only way in.')
param enableFunctionPrivateEndpoint bool = false

@description('Optional. With private networking: ingestion into Azure Monitor through an Azure Monitor Private Link Scope (docs/DEPLOY.md, "Private ingestion"): findings go to a data collection endpoint, and the endpoint, a created workspace and Application Insights refuse public ingestion. The scope is created with its private endpoint and DNS zones, or, with existingMonitorPrivateLinkScopeId, an existing (hub) scope serves them.')
param enableMonitorPrivateLink bool = false

@description('Optional. With enableMonitorPrivateLink: resource id of an existing Azure Monitor Private Link Scope (one per DNS, usually the hub\'s) to add the workspace, Application Insights and the data collection endpoint to; no scope, endpoint or zone is created then.')
param existingMonitorPrivateLinkScopeId string = ''

@description('Optional. With enableMonitorPrivateLink and a created network: address range of the Azure Monitor private endpoint subnet, outside virtualNetworkAddressPrefix (added to the address space).')
param monitorPrivateEndpointSubnetAddressPrefix string = '10.100.0.64/27'

@description('Optional. Refuse HTTP API calls that did not pass App Service Authentication (401), even with a valid function key (API_REQUIRE_AUTHENTICATION). Set apiAuthClientId with it; recommended in production.')
param requireApiAuthentication bool = false

var useExistingSubnets = !(empty(existingIntegrationSubnetId) && empty(existingPrivateEndpointSubnetId))
var createNetwork = enablePrivateNetworking && !useExistingSubnets
// The virtual network of an existing subnet: its id up to /virtualNetworks/<name>.
var existingVirtualNetworkId = empty(existingIntegrationSubnetId) ? '' : join(take(split(existingIntegrationSubnetId, '/'), 9), '/')
// Azure Monitor private link: an existing scope (joined), or one created here.
var useMonitorPrivateLink = enablePrivateNetworking && enableMonitorPrivateLink
var createMonitorScope = useMonitorPrivateLink && empty(existingMonitorPrivateLinkScopeId)
// /subscriptions/<id>/resourceGroups/<group>/providers/Microsoft.Insights/privateLinkScopes/<name>
var monitorScopeParts = split(empty(existingMonitorPrivateLinkScopeId) ? '/subscriptions/${subscription().subscriptionId}/resourceGroups/${resourceGroupName}/providers/Microsoft.Insights/privateLinkScopes/ampls-cm-${resourceToken}' : existingMonitorPrivateLinkScopeId, '/')
// The subnet the app integrates with: the created one, the given one, or none.
var functionSubnetId = enablePrivateNetworking ? (createNetwork ? network!.outputs.integrationSubnetId : existingIntegrationSubnetId) : ''

// ------------------------------------------------------------------ names

// The function Event Grid delivers to: handlers/resource_events.py (tests check it).
var eventFunctionName = 'on_resource_change'
var stateTableName = 'ComplianceState'
var findingsTableName = 'ComplianceFindings_CL'
var findingsStreamName = 'Custom-ComplianceFindings'
var deploymentContainerName = 'app-package'
var deadLetterContainerName = 'eventgrid-deadletter'

var resourceToken = toLower(uniqueString(subscription().id, resourceGroupName, location))
var names = {
  storage: 'stcm${resourceToken}'
  functionApp: 'func-cm-${resourceToken}'
  plan: 'asp-cm-${resourceToken}'
  appInsights: 'appi-cm-${resourceToken}'
  workspace: 'log-cm-${resourceToken}'
  dataCollectionRule: 'dcr-cm-findings-${resourceToken}'
  alertPrefix: 'alert-cm-${resourceToken}'
}

// Each role on the container or table it is needed for. Not on the account: the app has no role on the
// dead-letter container (it cannot delete dead letters) and none on queues (no queue trigger or binding).
var storageBlobDataOwner = 'b7e6dc6d-f1e8-4753-8033-0f276bb0955b' // host leases, timer state, function keys
var storageBlobDataContributor = 'ba92f5b4-2d11-453d-a403-e96b0029c9fe' // the code package
var storageTableDataContributor = '0a9a7e1f-b9d0-4cc4-a60d-0319b160aaa3' // ComplianceState, ComplianceExemptions
var storageQueueDataReader = '19e7f393-937e-4f77-808e-94535e297925' // queue delivery: the trigger reads the queues
var storageQueueDataMessageProcessor = '8a0f0c08-91a1-4084-bc3d-661d67233fed' // ... takes and deletes messages
var storageQueueDataMessageSender = 'c6a89b2d-59bc-44d0-9896-0f6e12d7b80a' // ... moves a failing one to -poison
var useQueueDelivery = eventDelivery == 'queue'
var eventsQueueName = useQueueDelivery ? 'compliance-events' : ''

// The function refuses events for resources outside these scopes (MONITORED_SCOPES); an empty list fails the
// deployment (function-app.bicep's monitoredScopes has @minLength(1)).
var monitoredSubscriptionScopes = [for subscriptionId in monitoredSubscriptionIds: '/subscriptions/${subscriptionId}']
var monitoredGroupScopes = [for groupId in monitoredManagementGroupIds: '/providers/Microsoft.Management/managementGroups/${groupId}']
var monitoredScopes = concat(monitoredSubscriptionScopes, monitoredGroupScopes)
var useUserAssignedIdentities = identityType == 'UserAssigned'
// Event Grid delivers to a storage account behind a firewall only with the topic's system-assigned identity
// (https://learn.microsoft.com/azure/event-grid/handler-storage-queues): with private networking the topics
// keep their own identities, and their roles are assigned per subscription.
var shareTopicIdentity = useUserAssignedIdentities && !enablePrivateNetworking

var findingsTotalRetentionInDays = findingsRetentionInDays + findingsLongTermRetentionInDays

var useExistingWorkspace = !empty(existingLogAnalyticsWorkspaceId)
var workspaceSubscriptionId = useExistingWorkspace ? split(existingLogAnalyticsWorkspaceId, '/')[2] : subscription().subscriptionId
var workspaceResourceGroupName = useExistingWorkspace ? split(existingLogAnalyticsWorkspaceId, '/')[4] : resourceGroupName
var workspaceName = useExistingWorkspace ? last(split(existingLogAnalyticsWorkspaceId, '/')) : names.workspace

// ------------------------------------------------------------------ resources

resource monitorGroup 'Microsoft.Resources/resourceGroups@2024-03-01' = {
  name: resourceGroupName
  location: location
  tags: tags
}

module workspace 'modules/log-analytics.bicep' = if (!useExistingWorkspace) {
  name: 'compliance-workspace'
  scope: monitorGroup
  params: {
    name: names.workspace
    location: location
    tags: tags
    retentionInDays: logAnalyticsRetentionInDays
    publicIngestion: !useMonitorPrivateLink
  }
}

var workspaceResourceId = useExistingWorkspace ? existingLogAnalyticsWorkspaceId : workspace!.outputs.resourceId

module findingsTable 'modules/findings-table.bicep' = {
  name: 'compliance-findings-table'
  scope: resourceGroup(workspaceSubscriptionId, workspaceResourceGroupName)
  params: {
    workspaceName: workspaceName
    tableName: findingsTableName
    retentionInDays: findingsRetentionInDays
    totalRetentionInDays: findingsTotalRetentionInDays
  }
  dependsOn: [
    workspace
  ]
}

module snapshotTable 'modules/snapshot-table.bicep' = {
  name: 'compliance-snapshot-table'
  scope: resourceGroup(workspaceSubscriptionId, workspaceResourceGroupName)
  params: {
    workspaceName: workspaceName
    tableName: 'ComplianceSnapshot_CL'
    retentionInDays: findingsRetentionInDays
    totalRetentionInDays: findingsTotalRetentionInDays
  }
  dependsOn: [
    workspace
  ]
}

module parityTable 'modules/parity-table.bicep' = {
  name: 'compliance-parity-table'
  scope: resourceGroup(workspaceSubscriptionId, workspaceResourceGroupName)
  params: {
    workspaceName: workspaceName
    tableName: 'ComplianceParity_CL'
    retentionInDays: findingsRetentionInDays
    totalRetentionInDays: findingsTotalRetentionInDays
  }
  dependsOn: [
    workspace
  ]
}

module rejectionsTable 'modules/rejections-table.bicep' = {
  name: 'compliance-rejections-table'
  scope: resourceGroup(workspaceSubscriptionId, workspaceResourceGroupName)
  params: {
    workspaceName: workspaceName
    tableName: 'ComplianceRejections_CL'
    retentionInDays: findingsRetentionInDays
    totalRetentionInDays: findingsTotalRetentionInDays
  }
  dependsOn: [
    workspace
  ]
}

module dataCollectionRule 'modules/data-collection-rule.bicep' = {
  name: 'compliance-dcr'
  scope: monitorGroup
  params: {
    name: names.dataCollectionRule
    location: findingsTable.outputs.workspaceLocation
    tags: tags
    workspaceResourceId: workspaceResourceId
    tableName: findingsTable.outputs.name
    streamName: findingsStreamName
    snapshotTableName: snapshotTable.outputs.name
    parityTableName: parityTable.outputs.name
    rejectionsTableName: rejectionsTable.outputs.name
    privateIngestion: useMonitorPrivateLink
    endpointName: 'dce-cm-${resourceToken}'
  }
}

module appInsights 'modules/app-insights.bicep' = {
  name: 'compliance-app-insights'
  scope: monitorGroup
  params: {
    name: names.appInsights
    location: location
    tags: tags
    workspaceResourceId: workspaceResourceId
    publicIngestion: !useMonitorPrivateLink
  }
}

module identities 'modules/identities.bicep' = if (useUserAssignedIdentities) {
  name: 'compliance-identities'
  scope: monitorGroup
  params: {
    appIdentityName: 'id-cm-app-${resourceToken}'
    topicIdentityName: shareTopicIdentity ? 'id-cm-topics-${resourceToken}' : ''
    location: location
    tags: tags
  }
}

var topicIdentityResourceId = shareTopicIdentity ? identities!.outputs.topicResourceId : ''

module storage 'modules/storage.bicep' = {
  name: 'compliance-storage'
  scope: monitorGroup
  params: {
    name: names.storage
    location: location
    tags: tags
    skuName: storageSkuName
    stateTableName: stateTableName
    deploymentContainerName: deploymentContainerName
    deadLetterContainerName: deadLetterContainerName
    eventsQueueName: eventsQueueName
    enableResourceLocks: enableResourceLocks
    denyPublicNetworkAccess: enablePrivateNetworking
  }
}

module network 'modules/network.bicep' = if (createNetwork) {
  name: 'compliance-network'
  scope: monitorGroup
  params: {
    name: 'vnet-cm-${resourceToken}'
    location: location
    tags: tags
    addressPrefix: virtualNetworkAddressPrefix
    integrationSubnetPrefix: integrationSubnetAddressPrefix
    privateEndpointSubnetPrefix: privateEndpointSubnetAddressPrefix
    monitorEndpointSubnetPrefix: createMonitorScope ? monitorPrivateEndpointSubnetAddressPrefix : ''
  }
}

module storagePrivateEndpoints 'modules/storage-private-endpoints.bicep' = if (enablePrivateNetworking) {
  name: 'compliance-storage-private-endpoints'
  scope: monitorGroup
  params: {
    storageAccountName: storage.outputs.name
    location: location
    tags: tags
    subnetId: createNetwork ? network!.outputs.privateEndpointSubnetId : existingPrivateEndpointSubnetId
    virtualNetworkId: createNetwork ? network!.outputs.resourceId : existingVirtualNetworkId
    existingPrivateDnsZoneIds: existingPrivateDnsZoneIds
  }
}

module monitorScope 'modules/monitor-private-link-scope.bicep' = if (useMonitorPrivateLink) {
  name: 'compliance-monitor-private-link-scope'
  scope: resourceGroup(monitorScopeParts[2], monitorScopeParts[4])
  params: {
    name: last(monitorScopeParts)
    create: createMonitorScope
    tags: tags
    linkedResourceIds: [
      workspaceResourceId
      appInsights.outputs.resourceId
      dataCollectionRule.outputs.endpointResourceId
    ]
  }
  dependsOn: [
    monitorGroup
  ]
}

module monitorPrivateEndpoint 'modules/monitor-private-endpoint.bicep' = if (createMonitorScope) {
  name: 'compliance-monitor-private-endpoint'
  scope: monitorGroup
  params: {
    scopeResourceId: monitorScope!.outputs.resourceId
    name: 'pe-ampls-cm-${resourceToken}'
    location: location
    tags: tags
    subnetId: createNetwork ? network!.outputs.monitorEndpointSubnetId : existingPrivateEndpointSubnetId
    virtualNetworkId: createNetwork ? network!.outputs.resourceId : existingVirtualNetworkId
    blobPrivateDnsZoneId: storagePrivateEndpoints!.outputs.privateDnsZoneIds[0] // services[0] is blob
    existingPrivateDnsZoneIds: existingPrivateDnsZoneIds
  }
}

module functionApp 'modules/function-app.bicep' = {
  name: 'compliance-function-app'
  scope: monitorGroup
  params: {
    name: names.functionApp
    planName: names.plan
    location: location
    tags: tags
    storageAccountName: storage.outputs.name
    deploymentContainerName: storage.outputs.deploymentContainerName
    stateTableServiceUri: storage.outputs.tableServiceUri
    stateTableName: storage.outputs.stateTableName
    exemptionsTableName: storage.outputs.exemptionsTableName
    logsIngestionEndpoint: dataCollectionRule.outputs.logsIngestionEndpoint
    dataCollectionRuleImmutableId: dataCollectionRule.outputs.immutableId
    logsIngestionStreamName: dataCollectionRule.outputs.streamName
    logsIngestionSnapshotStreamName: dataCollectionRule.outputs.snapshotStreamName
    logsIngestionParityStreamName: dataCollectionRule.outputs.parityStreamName
    logsIngestionRejectionStreamName: dataCollectionRule.outputs.rejectionsStreamName
    appInsightsConnectionString: appInsights.outputs.connectionString
    monitoredScopes: monitoredScopes
    outboxDrainSchedule: outboxDrainSchedule
    reconcileSchedule: reconcileSchedule
    assignmentsSchedule: assignmentsSchedule
    paritySchedule: paritySchedule
    eventsQueueName: eventsQueueName
    eventsQueueServiceUri: useQueueDelivery ? storage.outputs.queueServiceUri : ''
    controlSources: controlSources
    assignmentsRefreshMinutes: assignmentsRefreshMinutes
    ownerTagNames: ownerTagNames
    teamTagNames: teamTagNames
    slaDays: slaDays
    disabledControls: disabledControls
    controlParameters: controlParameters
    controlsPath: controlsPath
    maximumInstanceCount: functionMaximumInstanceCount
    instanceMemoryMB: functionInstanceMemoryMB
    userAssignedIdentityResourceId: useUserAssignedIdentities ? identities!.outputs.appResourceId : ''
    userAssignedIdentityClientId: useUserAssignedIdentities ? identities!.outputs.appClientId : ''
    userAssignedIdentityPrincipalId: useUserAssignedIdentities ? identities!.outputs.appPrincipalId : ''
    virtualNetworkSubnetId: functionSubnetId
    restrictPublicAccess: enablePrivateNetworking
    allowedIpRanges: apiAllowedIpRanges
    disablePublicNetworkAccess: enablePrivateNetworking && useQueueDelivery && disableFunctionPublicNetworkAccess
    requireApiAuthentication: requireApiAuthentication
  }
}

module functionPrivateEndpoint 'modules/function-app-private-endpoint.bicep' = if (enablePrivateNetworking && enableFunctionPrivateEndpoint) {
  name: 'compliance-function-private-endpoint'
  scope: monitorGroup
  params: {
    functionAppName: functionApp.outputs.name
    location: location
    tags: tags
    subnetId: createNetwork ? network!.outputs.privateEndpointSubnetId : existingPrivateEndpointSubnetId
    virtualNetworkId: createNetwork ? network!.outputs.resourceId : existingVirtualNetworkId
    existingPrivateDnsZoneId: contains(existingPrivateDnsZoneIds, 'sites') ? existingPrivateDnsZoneIds.sites : ''
  }
}

module functionAppAuth 'modules/function-app-auth.bicep' = if (!empty(apiAuthClientId)) {
  name: 'compliance-function-app-auth'
  scope: monitorGroup
  params: {
    functionAppName: functionApp.outputs.name
    clientId: apiAuthClientId
    allowedAudiences: apiAuthAllowedAudiences
    allowedClientApplications: apiAuthAllowedClientApplications
  }
}

module storageRoles 'modules/role-assignments-storage.bicep' = {
  name: 'compliance-storage-roles'
  scope: monitorGroup
  params: {
    storageAccountName: storage.outputs.name
    principalId: functionApp.outputs.principalId
    containerRoles: [
      {
        containerName: storage.outputs.hostContainerNames[0]
        roleDefinitionId: storageBlobDataOwner
      }
      {
        containerName: storage.outputs.hostContainerNames[1]
        roleDefinitionId: storageBlobDataOwner
      }
      {
        containerName: storage.outputs.deploymentContainerName
        roleDefinitionId: storageBlobDataContributor
      }
    ]
    tableRoles: [
      {
        tableName: storage.outputs.stateTableName
        roleDefinitionId: storageTableDataContributor
      }
      {
        tableName: storage.outputs.exemptionsTableName
        roleDefinitionId: storageTableDataContributor
      }
    ]
    queueRoles: useQueueDelivery ? [
      {
        queueName: eventsQueueName
        roleDefinitionId: storageQueueDataReader
      }
      {
        queueName: eventsQueueName
        roleDefinitionId: storageQueueDataMessageProcessor
      }
      {
        queueName: '${eventsQueueName}-poison'
        roleDefinitionId: storageQueueDataReader
      }
      {
        queueName: '${eventsQueueName}-poison'
        roleDefinitionId: storageQueueDataMessageSender
      }
    ] : []
  }
}

// The shared topic identity's roles, once for every monitored subscription: Storage Blob Data Contributor on
// the dead-letter container and, with queue delivery, Storage Queue Data Message Sender on the queue.
module topicRoles 'modules/role-assignments-dead-letter.bicep' = if (shareTopicIdentity) {
  name: 'compliance-topic-identity-roles'
  scope: monitorGroup
  params: {
    storageAccountName: storage.outputs.name
    containerName: storage.outputs.deadLetterContainerName
    queueName: eventsQueueName
    principalIds: [
      identities!.outputs.topicPrincipalId
    ]
  }
}

module monitoringRoles 'modules/role-assignments-monitoring.bicep' = {
  name: 'compliance-monitoring-roles'
  scope: monitorGroup
  params: {
    dataCollectionRuleName: dataCollectionRule.outputs.name
    appInsightsName: appInsights.outputs.name
    principalId: functionApp.outputs.principalId
  }
}

module alerts 'modules/alerts.bicep' = {
  name: 'compliance-alerts'
  scope: monitorGroup
  params: {
    namePrefix: names.alertPrefix
    location: location
    tags: tags
    workspaceResourceId: workspaceResourceId
    appInsightsResourceId: appInsights.outputs.resourceId
    functionName: eventFunctionName
    emailAddresses: alertEmailAddresses
    webhookUris: alertWebhookUris
    driftAlertFrequency: driftAlertFrequency
    functionFailureThreshold: functionFailureThreshold
    permanentRejectionThreshold: permanentRejectionThreshold
    noEventsAlertHours: noEventsAlertHours
  }
  dependsOn: [
    findingsTable
    rejectionsTable
  ]
}

module alertRuleWorkspaceReaders 'modules/role-assignments-alert-rules.bicep' = {
  name: 'compliance-alert-rule-workspace-readers'
  scope: resourceGroup(workspaceSubscriptionId, workspaceResourceGroupName)
  params: {
    workspaceName: workspaceName
    principalIds: alerts.outputs.workspaceRulePrincipalIds
  }
}

module alertRuleAppInsightsReaders 'modules/role-assignments-alert-rules.bicep' = {
  name: 'compliance-alert-rule-app-insights-readers'
  scope: monitorGroup
  params: {
    appInsightsName: appInsights.outputs.name
    principalIds: alerts.outputs.appInsightsRulePrincipalIds
  }
}

module diagnostics 'modules/diagnostic-settings.bicep' = if (deployDiagnosticSettings) {
  name: 'compliance-diagnostics'
  scope: monitorGroup
  params: {
    workspaceResourceId: workspaceResourceId
    storageAccountName: storage.outputs.name
    functionAppName: functionApp.outputs.name
    dataCollectionRuleName: dataCollectionRule.outputs.name
  }
}

module workbook 'modules/workbook.bicep' = if (deployWorkbook) {
  name: 'compliance-workbook'
  scope: monitorGroup
  params: {
    location: location
    tags: tags
    workspaceResourceId: workspaceResourceId
    postureLookbackDays: findingsRetentionInDays
  }
}

module monitored 'modules/monitored-subscription.bicep' = [for subscriptionId in monitoredSubscriptionIds: {
  name: take('compliance-monitored-${subscriptionId}', 64)
  scope: subscription(subscriptionId)
  params: {
    functionPrincipalId: functionApp.outputs.principalId
    functionResourceId: '${functionApp.outputs.resourceId}/functions/${eventFunctionName}'
    resourceGroupName: eventResourceGroupName
    location: location
    tags: tags
    storageSubscriptionId: subscription().subscriptionId
    storageResourceGroupName: monitorGroup.name
    storageAccountName: storage.outputs.name
    deadLetterContainerName: storage.outputs.deadLetterContainerName
    eventsQueueName: eventsQueueName
    enableResourceLocks: enableResourceLocks
    topicIdentityResourceId: topicIdentityResourceId
    existingArmTopicResourceId: contains(existingArmTopicResourceIds, subscriptionId) ? existingArmTopicResourceIds[subscriptionId] : ''
    existingResourceNotificationsTopicResourceId: contains(existingResourceNotificationsTopicResourceIds, subscriptionId) ? existingResourceNotificationsTopicResourceIds[subscriptionId] : ''
    existingPolicyStatesTopicResourceId: contains(existingPolicyStatesTopicResourceIds, subscriptionId) ? existingPolicyStatesTopicResourceIds[subscriptionId] : ''
    deployEventSubscriptions: deployEventSubscriptions
    enableResourceNotifications: enableResourceNotifications
    enablePolicyStateEvents: enablePolicyStateEvents
    eventDeliverySchema: eventDeliverySchema
    maxDeliveryAttempts: maxDeliveryAttempts
    eventTimeToLiveInMinutes: eventTimeToLiveInMinutes
    ignoredOperationNamePrefixes: ignoredOperationNamePrefixes
    ignoredOperationNameSuffixes: ignoredOperationNameSuffixes
    actionGroupResourceId: alerts.outputs.resourceId
    diagnosticsWorkspaceResourceId: deployDiagnosticSettings ? workspaceResourceId : ''
  }
}]

// ------------------------------------------------------------------ outputs

@description('The name of the monitor\'s resource group.')
output name string = monitorGroup.name

@description('The resource id of the monitor\'s resource group.')
output resourceId string = monitorGroup.id

@description('The name of the Function App: publish the code to it (docs/DEPLOY.md).')
output functionAppName string = functionApp.outputs.name

@description('The resource id of the function Event Grid delivers to.')
output eventFunctionResourceId string = '${functionApp.outputs.resourceId}/functions/${eventFunctionName}'

@description('The name of the storage account (state table, dead-lettered events).')
output storageAccountName string = storage.outputs.name

@description('The resource id of the Log Analytics workspace with ComplianceFindings_CL.')
output workspaceResourceId string = workspaceResourceId

@description('The resource id of the data collection rule.')
output dataCollectionRuleResourceId string = dataCollectionRule.outputs.resourceId

@description('The logs ingestion endpoint the function sends findings to.')
output logsIngestionEndpoint string = dataCollectionRule.outputs.logsIngestionEndpoint

@description('The resource id of the action group.')
output actionGroupResourceId string = alerts.outputs.resourceId

@description('Whether the event subscriptions were deployed (step 2).')
output eventSubscriptionsDeployed bool = deployEventSubscriptions

@description('The principal id (object id) of the Function App\'s identity: give it Reader where it monitors.')
output appPrincipalId string = functionApp.outputs.principalId

@description('The resource id of the identity the monitored subscriptions\' topics share; empty with system-assigned identities.')
output topicIdentityResourceId string = topicIdentityResourceId

@description('The parameters of infra/subscription.bicep for a monitored subscription (with identityType UserAssigned and eventDelivery queue): a vending pipeline passes them as they are.')
output subscriptionParameters object = {
  location: location
  storageAccountResourceId: storage.outputs.resourceId
  topicIdentityResourceId: topicIdentityResourceId
  eventsQueueName: eventsQueueName
  deadLetterContainerName: storage.outputs.deadLetterContainerName
  eventResourceGroupName: eventResourceGroupName
  tags: tags
  enableResourceNotifications: enableResourceNotifications
  enablePolicyStateEvents: enablePolicyStateEvents
  enableResourceLocks: enableResourceLocks
  eventDeliverySchema: eventDeliverySchema
  maxDeliveryAttempts: maxDeliveryAttempts
  eventTimeToLiveInMinutes: eventTimeToLiveInMinutes
  ignoredOperationNamePrefixes: ignoredOperationNamePrefixes
  ignoredOperationNameSuffixes: ignoredOperationNameSuffixes
  actionGroupResourceId: alerts.outputs.resourceId
  diagnosticsWorkspaceResourceId: deployDiagnosticSettings ? workspaceResourceId : ''
}

@description('The Azure Monitor Private Link Scope the monitor\'s ingestion goes through; empty without enableMonitorPrivateLink.')
output monitorPrivateLinkScopeId string = useMonitorPrivateLink ? monitorScope!.outputs.resourceId : ''

@description('The subnet the Function App integrates with (private networking); empty without it.')
output integrationSubnetId string = functionSubnetId

