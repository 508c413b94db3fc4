"""Private ingestion (main.bicep ``enableMonitorPrivateLink``, docs/DEPLOY.md "Private ingestion (Azure Monitor
private link)"): findings through a data collection endpoint with public network access off, since the Logs
Ingestion API takes private link only through a DCE
(https://learn.microsoft.com/azure/azure-monitor/logs/logs-ingestion-api-overview); the workspace and
Application Insights refusing public ingestion; all three in an Azure Monitor Private Link Scope, created with
its private endpoint and DNS zones, or an existing (hub) scope, as Microsoft's design guidance asks for one
scope per DNS (https://learn.microsoft.com/azure/azure-monitor/logs/private-link-design). And the app's own
private endpoint (``enableFunctionPrivateEndpoint``). The templates are evaluated with the small Bicep
evaluator of tests/test_infra_private.py.
"""
from __future__ import annotations

import ipaddress
from typing import Any

from tests.test_bicep import INFRA, body, parsed
from tests.test_infra_private import created, main_modules, module_scope

NETWORK = INFRA / "modules" / "network.bicep"
DCR = INFRA / "modules" / "data-collection-rule.bicep"
SCOPE = INFRA / "modules" / "monitor-private-link-scope.bicep"
ENDPOINT = INFRA / "modules" / "monitor-private-endpoint.bicep"
HUB_SCOPE = ("/subscriptions/22222222-0000-4000-8000-000000000003/resourceGroups/rg-hub-monitor/providers/"
             "Microsoft.Insights/privateLinkScopes/ampls-hub")
MONITOR_ZONES = ["privatelink.monitor.azure.com", "privatelink.oms.opinsights.azure.com",
                 "privatelink.ods.opinsights.azure.com", "privatelink.agentsvc.azure-automation.net"]
PRIVATE = {"enablePrivateNetworking": True, "enableMonitorPrivateLink": True}


def outputs(path, params: dict[str, Any]) -> dict[str, Any]:
    scope = module_scope(path, params)
    return {name: scope(o["value"]) for name, o in scope.tree["outputs"].items()}


def ingestion(mods: dict) -> dict[str, Any]:
    """What the workspace, Application Insights and the rule modules would create with main's inputs."""
    workspace = created(module_scope(INFRA / "modules" / "log-analytics.bicep", mods["workspace"]["params"]),
                        "Microsoft.OperationalInsights/workspaces")[0]["properties"]
    component = created(module_scope(INFRA / "modules" / "app-insights.bicep", mods["appInsights"]["params"]),
                        "Microsoft.Insights/components")[0]["properties"]
    rule_scope = module_scope(DCR, mods["dataCollectionRule"]["params"])
    (rule,) = created(rule_scope, "Microsoft.Insights/dataCollectionRules")
    return {"workspace": (workspace["publicNetworkAccessForIngestion"], workspace["publicNetworkAccessForQuery"]),
            "component": (component["publicNetworkAccessForIngestion"], component["publicNetworkAccessForQuery"]),
            "rule": rule, "endpoints": created(rule_scope, "Microsoft.Insights/dataCollectionEndpoints"),
            "outputs": outputs(DCR, mods["dataCollectionRule"]["params"])}


def test_without_it_ingestion_stays_as_it_was_even_with_private_networking():
    for overrides in ({}, {"enablePrivateNetworking": True}, {"enableMonitorPrivateLink": True}):
        mods = main_modules(**overrides)
        assert not mods["monitorScope"]["deployed"] and not mods["monitorPrivateEndpoint"]["deployed"], overrides
        seen = ingestion(mods)
        assert seen["workspace"] == seen["component"] == ("Enabled", "Enabled")
        assert seen["rule"]["kind"] == "Direct" and seen["endpoints"] == []
        assert seen["outputs"]["logsIngestionEndpoint"] == "dcr.properties.endpoints.logsIngestion"
        assert seen["outputs"]["endpointResourceId"] == ""


def test_findings_go_to_a_closed_endpoint_and_the_workspace_and_component_refuse_public_ingestion():
    mods = main_modules(**PRIVATE)
    seen = ingestion(mods)
    assert seen["workspace"] == seen["component"] == ("Disabled", "Enabled")  # queries stay: portal, alerts
    (endpoint,) = seen["endpoints"]
    assert endpoint["properties"]["networkAcls"] == {"publicNetworkAccess": "Disabled"}
    assert endpoint["location"] == seen["rule"]["location"]  # a DCE serves rules of its own region
    rule = seen["rule"]
    assert rule["kind"] is None and rule["properties"]["dataCollectionEndpointId"] == "endpoint.id"
    assert rule["name"].endswith("-pl")  # a new rule, not the Direct rule changed in place
    assert seen["outputs"]["logsIngestionEndpoint"] == "endpoint.properties.logsIngestion.endpoint"
    app = mods["functionApp"]["params"]
    assert app["logsIngestionEndpoint"] == "dataCollectionRule.outputs.logsIngestionEndpoint"  # LOGS_INGESTION__endpoint


def test_a_scope_is_created_with_open_access_modes_for_the_three_resources():
    mods = main_modules(**PRIVATE)
    scope_module = mods["monitorScope"]
    assert scope_module["deployed"] and scope_module["params"]["create"] is True
    assert scope_module["params"]["linkedResourceIds"] == [
        "workspace.outputs.resourceId", "appInsights.outputs.resourceId", "dataCollectionRule.outputs.endpointResourceId"]
    scope = module_scope(SCOPE, {**scope_module["params"], "linkedResourceIds": ["ws", "ai", "dce"]})
    (ampls,) = created(scope, "Microsoft.Insights/privateLinkScopes")
    assert ampls["location"] == "global"
    assert ampls["properties"]["accessModeSettings"] == {"ingestionAccessMode": "Open", "queryAccessMode": "Open"}
    links = created(scope, "Microsoft.Insights/privateLinkScopes/scopedResources")
    assert [link["properties"]["linkedResourceId"] for link in links] == ["ws", "ai", "dce"]
    # one per resource, named from its id (uniqueString is ARM's, known at deployment)
    assert body(scope.tree["resources"]["createdLinks"])["name"] == "cm-${uniqueString(id)}"
    assert scope.tree["resources"]["createdLinks"]["config"]["loop_type"]["detail"]["item_name"] == "id"
    tree = parsed(INFRA / "main.bicep")
    target = body(tree["modules"]["monitorScope"])["scope"]["function"]["parameters"]
    assert (target["subscription_id"], target["resource_group_name"]) == (
        {"operator": {"type": "index_accessor", "operands": {"operand_1": "monitorScopeParts", "operand_2": 2}}},
        {"operator": {"type": "index_accessor", "operands": {"operand_1": "monitorScopeParts", "operand_2": 4}}})


def test_the_created_scope_gets_its_endpoint_in_a_subnet_of_its_own_with_the_five_zones():
    mods = main_modules(**PRIVATE)
    net_params = mods["network"]["params"]
    assert net_params["monitorEndpointSubnetPrefix"] == "10.100.0.64/27"
    net = module_scope(NETWORK, net_params)
    (vnet,) = created(net, "Microsoft.Network/virtualNetworks")
    prefixes = [ipaddress.ip_network(p) for p in vnet["properties"]["addressSpace"]["addressPrefixes"]]
    subnets = {s["name"]: ipaddress.ip_network(s["properties"]["addressPrefix"]) for s in vnet["properties"]["subnets"]}
    assert set(subnets) == {"snet-function-integration", "snet-private-endpoints", "snet-monitor-endpoints"}
    assert all(any(net_.subnet_of(p) for p in prefixes) for net_ in subnets.values())
    assert not any(a.overlaps(b) for a in subnets.values() for b in subnets.values() if a is not b)
    (nsg,) = [n for n in created(net, "Microsoft.Network/networkSecurityGroups") if n["name"].endswith("private-endpoints")]
    assert "10.100.0.64/27" in {r["properties"]["destinationAddressPrefix"] for r in nsg["properties"]["securityRules"]}
    assert module_scope(NETWORK, {**net_params, "monitorEndpointSubnetPrefix": ""})("withMonitorSubnet") is False

    pe_module = mods["monitorPrivateEndpoint"]
    assert pe_module["deployed"]
    params = pe_module["params"]
    assert params["subnetId"] == "network.outputs.monitorEndpointSubnetId"
    assert params["virtualNetworkId"] == "network.outputs.resourceId"
    blob = body(parsed(INFRA / "main.bicep")["modules"]["monitorPrivateEndpoint"])["params"]["blobPrivateDnsZoneId"]
    assert blob == {"operator": {"type": "property_accessor", "operands": {"operand_1": "storagePrivateEndpoints", "operand_2": {
        "operator": {"type": "property_accessor", "operands": {"operand_1": "outputs", "operand_2": {
            "operator": {"type": "index_accessor", "operands": {"operand_1": "privateDnsZoneIds", "operand_2": 0}}}}}}}}}
    assert parsed(INFRA / "modules" / "storage-private-endpoints.bicep")["parameters"]["services"]["default"][0] == "blob"
    scope = module_scope(ENDPOINT, {**params, "blobPrivateDnsZoneId": "blob-zone", "scopeResourceId": "ampls"})
    (pe,) = created(scope, "Microsoft.Network/privateEndpoints")
    (connection,) = pe["properties"]["privateLinkServiceConnections"]
    assert connection["properties"] == {"privateLinkServiceId": "ampls", "groupIds": ["azuremonitor"]}
    zones = created(scope, "Microsoft.Network/privateDnsZones")
    assert [z["name"] for z in zones] == MONITOR_ZONES  # the blob zone is the storage endpoints', not a second one
    links = created(scope, "Microsoft.Network/privateDnsZones/virtualNetworkLinks")
    assert len(links) == 4 and {link["properties"]["virtualNetwork"]["id"] for link in links} == {
        "network.outputs.resourceId"}
    (group,) = created(scope, "Microsoft.Network/privateEndpoints/privateDnsZoneGroups")
    registered = [c["properties"]["privateDnsZoneId"] for c in group["properties"]["privateDnsZoneConfigs"]]
    assert registered == [f"resourceId(Microsoft.Network/privateDnsZones/{z})" for z in MONITOR_ZONES] + ["blob-zone"]


def test_your_zones_are_used_as_they_are():
    given = {"monitor": "/zones/monitor", "oms": "/zones/oms", "ods": "/zones/ods", "agentsvc": "/zones/agentsvc"}
    mods = main_modules(**PRIVATE, existingPrivateDnsZoneIds=given)
    scope = module_scope(ENDPOINT, {**mods["monitorPrivateEndpoint"]["params"], "blobPrivateDnsZoneId": "blob-zone",
                                    "scopeResourceId": "ampls"})
    assert created(scope, "Microsoft.Network/privateDnsZones") == []
    assert created(scope, "Microsoft.Network/privateDnsZones/virtualNetworkLinks") == []
    (group,) = created(scope, "Microsoft.Network/privateEndpoints/privateDnsZoneGroups")
    assert [c["properties"]["privateDnsZoneId"] for c in group["properties"]["privateDnsZoneConfigs"]] == [
        *given.values(), "blob-zone"]


def test_a_hub_scope_is_joined_and_nothing_else_is_created():
    """existingMonitorPrivateLinkScopeId: the three resources are added to the hub's scope, in its own
    subscription and resource group; no scope, no endpoint, no zone and no extra subnet here."""
    mods = main_modules(**PRIVATE, existingMonitorPrivateLinkScopeId=HUB_SCOPE)
    scope_module = mods["monitorScope"]
    assert scope_module["deployed"] and scope_module["params"]["create"] is False
    assert scope_module["params"]["name"] == "ampls-hub"
    main = parsed(INFRA / "main.bicep")
    from tests.test_infra_private import Scope, ev

    env = {name: ev(p["default"], Scope(main, {})) for name, p in main["parameters"].items() if p["default"] is not None}
    parts = Scope(main, {**env, "monitoredSubscriptionIds": ["s"], "location": "westeurope", **PRIVATE,
                         "existingMonitorPrivateLinkScopeId": HUB_SCOPE})("monitorScopeParts")
    assert (parts[2], parts[4]) == ("22222222-0000-4000-8000-000000000003", "rg-hub-monitor")
    assert not mods["monitorPrivateEndpoint"]["deployed"]
    assert mods["network"]["params"]["monitorEndpointSubnetPrefix"] == ""
    scope = module_scope(SCOPE, {**scope_module["params"], "linkedResourceIds": ["ws", "ai", "dce"]})
    assert created(scope, "Microsoft.Insights/privateLinkScopes") == []
    assert [link["properties"]["linkedResourceId"] for link in
            created(scope, "Microsoft.Insights/privateLinkScopes/scopedResources")] == ["ws", "ai", "dce"]
    assert scope.tree["resources"]["existingScope"]["existing"]
    seen = ingestion(mods)
    assert seen["workspace"] == ("Disabled", "Enabled") and len(seen["endpoints"]) == 1


def test_the_management_group_deployment_passes_private_ingestion_through():
    scope = module_scope(INFRA / "management-group.bicep", {
        "monitorSubscriptionId": "s", "subscriptionOnboarding": "policyPrivate", "enableMonitorPrivateLink": True,
        "existingMonitorPrivateLinkScopeId": HUB_SCOPE})
    params = body(scope.tree["modules"]["monitor"])["params"]
    assert scope(params["enablePrivateNetworking"]) is True
    assert (scope(params["enableMonitorPrivateLink"]), scope(params["existingMonitorPrivateLinkScopeId"])) == (
        True, HUB_SCOPE)


# ------------------------------------------------------------------ the app's own private endpoint

APP_ENDPOINT = INFRA / "modules" / "function-app-private-endpoint.bicep"


def test_the_app_gets_a_private_endpoint_for_itself_and_its_scm_site_only_when_asked():
    """Group id sites (the app and its SCM site) in the endpoint subnet, registering in
    privatelink.azurewebsites.net (https://learn.microsoft.com/azure/private-link/private-endpoint-dns#web),
    created and linked to the network, or the given zone as it is."""
    assert not main_modules(enablePrivateNetworking=True)["functionPrivateEndpoint"]["deployed"]
    assert not main_modules(enableFunctionPrivateEndpoint=True)["functionPrivateEndpoint"]["deployed"]
    mods = main_modules(enablePrivateNetworking=True, enableFunctionPrivateEndpoint=True)
    params = mods["functionPrivateEndpoint"]["params"]
    assert mods["functionPrivateEndpoint"]["deployed"] and params["functionAppName"] == "functionApp.outputs.name"
    assert params["subnetId"] == "network.outputs.privateEndpointSubnetId" and params["existingPrivateDnsZoneId"] == ""
    scope = module_scope(APP_ENDPOINT, params)
    (pe,) = created(scope, "Microsoft.Network/privateEndpoints")
    (connection,) = pe["properties"]["privateLinkServiceConnections"]
    assert connection["properties"] == {"privateLinkServiceId": "site.id", "groupIds": ["sites"]}
    assert pe["properties"]["subnet"] == {"id": "network.outputs.privateEndpointSubnetId"}
    assert [z["name"] for z in created(scope, "Microsoft.Network/privateDnsZones")] == ["privatelink.azurewebsites.net"]
    (link,) = created(scope, "Microsoft.Network/privateDnsZones/virtualNetworkLinks")
    assert link["properties"]["virtualNetwork"] == {"id": "network.outputs.resourceId"}
    (group,) = created(scope, "Microsoft.Network/privateEndpoints/privateDnsZoneGroups")
    assert group["properties"]["privateDnsZoneConfigs"][0]["properties"]["privateDnsZoneId"] == \
        "resourceId(Microsoft.Network/privateDnsZones/privatelink.azurewebsites.net)"
    net = module_scope(NETWORK, mods["network"]["params"])
    (vnet,) = created(net, "Microsoft.Network/virtualNetworks")
    (endpoints,) = [s for s in vnet["properties"]["subnets"] if s["name"] == "snet-private-endpoints"]
    usable = ipaddress.ip_network(endpoints["properties"]["addressPrefix"]).num_addresses - 5  # Azure keeps five
    assert usable >= 3 + 1  # blob, table, queue and the app

    hub_zone = "/subscriptions/x/resourceGroups/rg-dns/providers/Microsoft.Network/privateDnsZones/privatelink.azurewebsites.net"
    mods = main_modules(enablePrivateNetworking=True, enableFunctionPrivateEndpoint=True,
                        existingPrivateDnsZoneIds={"sites": hub_zone})
    scope = module_scope(APP_ENDPOINT, mods["functionPrivateEndpoint"]["params"])
    assert created(scope, "Microsoft.Network/privateDnsZones") == []
    assert created(scope, "Microsoft.Network/privateDnsZones/virtualNetworkLinks") == []
    (group,) = created(scope, "Microsoft.Network/privateEndpoints/privateDnsZoneGroups")
    assert group["properties"]["privateDnsZoneConfigs"][0]["properties"]["privateDnsZoneId"] == hub_zone
