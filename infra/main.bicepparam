// Parameters of infra/main.bicep. Copy this file, fill in your values and deploy:
//   az deployment sub create --location westeurope --parameters infra/main.bicepparam
// Step 2 (after publishing the code) overrides one value on the command line:
//   ... --parameters infra/main.bicepparam deployEventSubscriptions=true
using './main.bicep'

param monitoredSubscriptionIds = [
  '00000000-0000-0000-0000-000000000000'
]

param location = 'westeurope'

param resourceGroupName = 'rg-compliance-monitor'

param tags = {
  workload: 'compliance-monitor'
}

// Step 1: false. Step 2, once the code is published: true.
param deployEventSubscriptions = false

param enableResourceNotifications = false
param enablePolicyStateEvents = false

// Empty: a new workspace. Or the resource id of an existing one.
param existingLogAnalyticsWorkspaceId = ''

param alertEmailAddresses = []

param alertWebhookUris = []

param disabledControls = []

param controlParameters = {}
