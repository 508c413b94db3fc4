// An Azure Monitor workbook over ComplianceFindings_CL: posture by severity, control and
// subscription; open findings; drift timeline; top offenders (Caller); recently resolved.
// Queries: infra/queries/workbook-*.kql. The serialized workbook is built here.

@description('Optional. Display name of the workbook.')
param displayName string = 'Compliance monitor'

@description('Optional. Azure region. Defaults to the resource group\'s.')
param location string = resourceGroup().location

@description('Optional. Tags for the workbook.')
param tags object = {}

@description('Required. Resource id of the Log Analytics workspace with ComplianceFindings_CL.')
param workspaceResourceId string

@description('Optional. Days of findings the posture views look back over (the findings table\'s retention).')
@minValue(1)
@maxValue(730)
param postureLookbackDays int = 90

var dayMs = 86400000
var workspaceType = 'microsoft.operationalinsights/workspaces'
var postureTime = {
  durationMs: postureLookbackDays * dayMs
}

var intro = '''## Compliance monitor
Findings from the event-driven compliance monitor (table `ComplianceFindings_CL`): one record per control state transition (`New`, `Drifted`, `Resolved`, `Deleted`).
The posture views show the latest record per resource and control over the findings' retention; the other views follow the time range below.
The parity tile compares the verdicts on Azure Policy assignments with Azure Policy's own latest states (table `ComplianceParity_CL`).'''

var workbookContent = {
  version: 'Notebook/1.0'
  items: [
    {
      type: 1
      name: 'intro'
      content: {
        json: intro
      }
    }
    {
      type: 9
      name: 'parameters'
      content: {
        version: 'KqlParameterItem/1.0'
        style: 'pills'
        queryType: 0
        resourceType: workspaceType
        parameters: [
          {
            id: guid(workspaceResourceId, 'compliance-workbook-time-range')
            version: 'KqlParameterItem/1.0'
            name: 'TimeRange'
            label: 'Time range'
            type: 4
            isRequired: true
            value: {
              durationMs: 7 * dayMs
            }
            typeSettings: {
              allowCustom: true
              selectableValues: [
                {
                  durationMs: dayMs
                }
                {
                  durationMs: 7 * dayMs
                }
                {
                  durationMs: 30 * dayMs
                }
                {
                  durationMs: 90 * dayMs
                }
              ]
            }
          }
        ]
      }
    }
    {
      type: 3
      name: 'posture-by-severity'
      customWidth: '33'
      content: {
        version: 'KqlItem/1.0'
        title: 'Open findings by severity'
        query: loadTextContent('../queries/workbook-posture-by-severity.kql')
        size: 1
        queryType: 0
        resourceType: workspaceType
        crossComponentResources: [
          workspaceResourceId
        ]
        timeContext: postureTime
        visualization: 'piechart'
      }
    }
    {
      type: 3
      name: 'posture-by-subscription'
      customWidth: '33'
      content: {
        version: 'KqlItem/1.0'
        title: 'Open findings by subscription'
        query: loadTextContent('../queries/workbook-posture-by-subscription.kql')
        size: 1
        queryType: 0
        resourceType: workspaceType
        crossComponentResources: [
          workspaceResourceId
        ]
        timeContext: postureTime
        visualization: 'barchart'
      }
    }
    {
      type: 3
      name: 'posture-by-control'
      customWidth: '33'
      content: {
        version: 'KqlItem/1.0'
        title: 'Open findings by control'
        query: loadTextContent('../queries/workbook-posture-by-control.kql')
        size: 1
        queryType: 0
        resourceType: workspaceType
        crossComponentResources: [
          workspaceResourceId
        ]
        timeContext: postureTime
        visualization: 'table'
      }
    }
    {
      type: 3
      name: 'posture-by-team'
      content: {
        version: 'KqlItem/1.0'
        title: 'Open and overdue findings by team and owner'
        query: loadTextContent('../queries/workbook-posture-by-team.kql')
        size: 1
        queryType: 0
        resourceType: workspaceType
        crossComponentResources: [
          workspaceResourceId
        ]
        timeContext: postureTime
        visualization: 'table'
      }
    }
    {
      type: 3
      name: 'open-findings'
      content: {
        version: 'KqlItem/1.0'
        title: 'Open findings'
        query: loadTextContent('../queries/workbook-open-findings.kql')
        size: 0
        queryType: 0
        resourceType: workspaceType
        crossComponentResources: [
          workspaceResourceId
        ]
        timeContext: postureTime
        visualization: 'table'
      }
    }
    {
      type: 3
      name: 'drift-timeline'
      content: {
        version: 'KqlItem/1.0'
        title: 'Drift timeline (transitions per hour)'
        query: loadTextContent('../queries/workbook-drift-timeline.kql')
        size: 0
        queryType: 0
        resourceType: workspaceType
        crossComponentResources: [
          workspaceResourceId
        ]
        timeContextFromParameter: 'TimeRange'
        timeContext: {
          durationMs: 7 * dayMs
        }
        visualization: 'timechart'
      }
    }
    {
      type: 3
      name: 'parity'
      customWidth: '100'
      content: {
        version: 'KqlItem/1.0'
        title: 'Parity with Azure Policy (latest run): agreement and each outcome'
        query: loadTextContent('../queries/workbook-parity.kql')
        size: 4
        queryType: 0
        resourceType: workspaceType
        crossComponentResources: [
          workspaceResourceId
        ]
        timeContext: postureTime
        visualization: 'table'
      }
    }
    {
      type: 3
      name: 'top-offenders'
      customWidth: '50'
      content: {
        version: 'KqlItem/1.0'
        title: 'Top offenders: who introduced drift'
        query: loadTextContent('../queries/workbook-top-offenders.kql')
        size: 0
        queryType: 0
        resourceType: workspaceType
        crossComponentResources: [
          workspaceResourceId
        ]
        timeContextFromParameter: 'TimeRange'
        timeContext: {
          durationMs: 7 * dayMs
        }
        visualization: 'table'
      }
    }
    {
      type: 3
      name: 'recently-resolved'
      customWidth: '50'
      content: {
        version: 'KqlItem/1.0'
        title: 'Recently resolved'
        query: loadTextContent('../queries/workbook-recently-resolved.kql')
        size: 0
        queryType: 0
        resourceType: workspaceType
        crossComponentResources: [
          workspaceResourceId
        ]
        timeContextFromParameter: 'TimeRange'
        timeContext: {
          durationMs: 7 * dayMs
        }
        visualization: 'table'
      }
    }
  ]
  fallbackResourceIds: [
    workspaceResourceId
  ]
  '$schema': 'https://github.com/Microsoft/Application-Insights-Workbooks/blob/master/schema/workbook.json'
}

resource workbook 'Microsoft.Insights/workbooks@2023-06-01' = {
  name: guid(resourceGroup().id, workspaceResourceId, 'compliance-monitor-workbook')
  location: location
  tags: tags
  kind: 'shared'
  properties: {
    displayName: displayName
    category: 'workbook'
    version: 'Notebook/1.0'
    sourceId: toLower(workspaceResourceId)
    serializedData: string(workbookContent)
  }
}

@description('The name (a GUID) of the workbook.')
output name string = workbook.name

@description('The resource id of the workbook.')
output resourceId string = workbook.id
