// App Service Authentication (Easy Auth, authsettingsV2) for the Function App's HTTP API: callers of
// /api/evaluate and /api/compliance need a Microsoft Entra ID token for the app registration as well as
// the function key. App Service then injects the validated principal (X-MS-CLIENT-PRINCIPAL) and
// refuses that header from outside, so the finding's Caller names a real identity (handlers/http_api.py).
// Event Grid deliveries (/runtime/webhooks/eventgrid, system key) are excluded from the check.

@description('Required. Name of the existing Function App.')
param functionAppName string

@description('Required. Application (client) id of the Microsoft Entra app registration that protects the API.')
param clientId string

@description('Optional. Microsoft Entra tenant id of the app registration. Defaults to the deployment\'s tenant.')
param tenantId string = tenant().tenantId

@description('Optional. Token audiences accepted besides the client id (e.g. api://<client-id>).')
param allowedAudiences array = []

@description('Optional. Client (application) ids allowed to call the API; empty: any client of the tenant.')
param allowedClientApplications array = []

resource site 'Microsoft.Web/sites@2023-12-01' existing = {
  name: functionAppName
}

// checkov reads every Microsoft.Web/sites/config resource as the 'web' site config; this one is
// 'authsettingsV2', which has none of those settings (they live on the site, function-app.bicep).
resource auth 'Microsoft.Web/sites/config@2023-12-01' = {
  // checkov:skip=CKV_AZURE_13: this resource IS the App Service Authentication setting the check asks for
  // checkov:skip=CKV_AZURE_63: HTTP logging is a 'web' config setting, not one of authsettingsV2
  // checkov:skip=CKV_AZURE_65: detailed error messages are a 'web' config setting, not one of authsettingsV2
  // checkov:skip=CKV_AZURE_66: failed request tracing is a 'web' config setting, not one of authsettingsV2
  // checkov:skip=CKV_AZURE_80: .NET Framework version is a 'web' config setting; the app runs Python
  // checkov:skip=CKV_AZURE_88: Azure Files mounts are a 'web' config setting, not one of authsettingsV2
  parent: site
  name: 'authsettingsV2'
  properties: {
    platform: {
      enabled: true
    }
    globalValidation: {
      requireAuthentication: true
      unauthenticatedClientAction: 'Return401'
      excludedPaths: [
        '/runtime/webhooks/eventgrid'
      ]
    }
    httpSettings: {
      requireHttps: true
    }
    identityProviders: {
      azureActiveDirectory: {
        enabled: true
        registration: {
          clientId: clientId
          openIdIssuer: '${environment().authentication.loginEndpoint}${tenantId}/v2.0'
        }
        validation: {
          allowedAudiences: union([
            clientId
            'api://${clientId}'
          ], allowedAudiences)
          defaultAuthorizationPolicy: {
            allowedApplications: allowedClientApplications
          }
        }
      }
    }
    login: {
      tokenStore: {
        enabled: false
      }
    }
  }
}

@description('The name of the authentication settings resource.')
output name string = auth.name

@description('The resource id of the authentication settings resource.')
output resourceId string = auth.id