"""The private option of the deployment (main.bicep ``enablePrivateNetworking``, docs/DEPLOY.md "Private
networking"): VNet integration of the Flex Consumption app, private endpoints for the storage account's blob,
table and queue services, the storage firewall closed to all but trusted Azure services, access restrictions
on the app, and the HTTP API's required Microsoft Entra ID authentication.

No Bicep CLI runs here, so the templates are evaluated for given parameter values by a small evaluator of
the expressions they use (parameters, variables, conditions, loops, string interpolation, module inputs):
what a deployment with those values would create. A value known only at deployment (a module output, a
resource's id) stays a ``Runtime`` string naming it, e.g. ``network.outputs.integrationSubnetId``.
Network properties are checked against the Network REST API's models (azure-mgmt-network, which the app
already depends on).
"""
from __future__ import annotations

import functools
import ipaddress
import json
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

from tests.test_bicep import CHECKOV_CONFIG, INFRA, MAIN, PARAMS, REPO, bicepparam_assignments, body, parsed

NETWORK = INFRA / "modules" / "network.bicep"
ENDPOINTS = INFRA / "modules" / "storage-private-endpoints.bicep"
STORAGE = INFRA / "modules" / "storage.bicep"
FUNCTION_APP = INFRA / "modules" / "function-app.bicep"
SUBSCRIPTION = "00000000-0000-4000-8000-000000000001"
HUB = "/subscriptions/11111111-0000-4000-8000-000000000002/resourceGroups/rg-hub/providers/Microsoft.Network"
SPOKE = HUB.replace("rg-hub", "rg-spoke") + "/virtualNetworks/vnet-spoke"
ENVIRONMENT = {"suffixes": {"storage": "core.windows.net"}, "resourceManager": "https://management.azure.com/",
               "authentication": {"loginEndpoint": "https://login.microsoftonline.com/"}}
PRIVATE_PARAMETERS = ("enablePrivateNetworking", "virtualNetworkAddressPrefix", "integrationSubnetAddressPrefix",
                      "privateEndpointSubnetAddressPrefix", "existingIntegrationSubnetId",
                      "existingPrivateEndpointSubnetId", "existingPrivateDnsZoneIds", "apiAllowedIpRanges",
                      "disableFunctionPublicNetworkAccess", "requireApiAuthentication", "enableMonitorPrivateLink",
                      "existingMonitorPrivateLinkScopeId", "monitorPrivateEndpointSubnetAddressPrefix",
                      "enableFunctionPrivateEndpoint")


# ----------------------------------------------------------------- a small Bicep evaluator

class Runtime(str):
    """A value only the deployment knows (a module output, a resource property), by its expression."""


class Scope:
    def __init__(self, tree: dict, env: dict[str, Any]):
        self.tree, self.env = tree, env
        self.symbols = set(tree.get("resources", {})) | set(tree.get("modules", {}))

    def __call__(self, expr: Any) -> Any:
        return ev(expr, self)

    def bound(self, **names: Any) -> "Scope":
        return Scope(self.tree, {**self.env, **names})


def _path(expr: Any) -> list:
    """The names of a (right-nested, as pycep gives it) property access chain."""
    if isinstance(expr, dict) and expr.get("operator", {}).get("type") == "property_accessor":
        operands = expr["operator"]["operands"]
        return [operands["operand_1"], *_path(operands["operand_2"])]
    return [expr]


def _access(value: Any, names: list) -> Any:
    for name in names:
        value = Runtime(f"{value}.{name}") if isinstance(value, Runtime) else value[name]
    return value


def _interpolate(text: str, scope: Scope) -> str:
    parts, runtime = [], False
    for piece in re.split(r"(\$\{[^}]+\})", text):
        match = re.fullmatch(r"\$\{(\w+)((?:\.\w+)*)\}", piece)
        if not match:
            parts.append(piece)
            continue
        value = _access(ev(match.group(1), scope), [n for n in match.group(2).split(".") if n])
        runtime |= isinstance(value, Runtime)
        parts.append(str(value))
    return Runtime("".join(parts)) if runtime else "".join(parts)


def _loop(expr: dict, scope: Scope) -> list:
    detail, kind = expr["loop_type"]["detail"], expr["loop_type"]["type"]
    if kind == "object":
        items = [{"key": k, "value": v} for k, v in ev(detail["object_name"], scope).items()]
    else:
        items = ev(detail["array_name"], scope)
    assert isinstance(items, list), f"a loop over {detail}: {items!r} is not known before deployment"
    out = []
    for i, item in enumerate(items):
        inner = scope.bound(**{detail["item_name"]: item}, **({detail["index_name"]: i} if "index_name" in detail else {}))
        if expr.get("condition") is None or ev(expr["condition"], inner) is True:
            out.append(ev(expr["config"], inner))
    return out


def _function(function: dict, scope: Scope) -> Any:
    """A function call, and the index after it (``split(id, '/')[4]``)."""
    value = _call(function, scope)
    if function.get("index") is None:
        return value
    return Runtime(f"{value}[{function['index']}]") if isinstance(value, Runtime) else value[function["index"]]


def _call(function: dict, scope: Scope) -> Any:
    kind, args = function["type"], function.get("parameters") or {}
    arg = lambda name: ev(args[name], scope)  # noqa: E731
    if kind == "environment":
        return ENVIRONMENT[function["property_name"]] if function.get("property_name") else ENVIRONMENT
    if kind == "empty":
        return not arg("item_to_test")
    if kind == "contains":
        return arg("item_to_find") in arg("container")
    if kind == "concat":
        return [x for a in args.values() for x in ev(a, scope)]
    if kind == "union":
        merged: dict = {}
        for a in args.values():
            merged.update(ev(a, scope))
        return merged
    if kind == "split":
        return arg("input_string").split(arg("delimiter"))
    if kind == "last":
        return arg("arg_1")[-1]
    if kind == "resource_group" and function.get("property_name") == "name" and not any(args.values()):
        return Runtime("resourceGroup().name")
    if kind == "take":
        return arg("original_value")[:arg("number_to_take")]
    if kind == "join":
        return arg("delimiter").join(arg("input_array"))
    if kind == "replace":
        return arg("original_string").replace(arg("old_string"), arg("new_string"))
    if kind == "filter":
        return [x for x in arg("input_array") if ev(args["expression"], scope.bound(**{args["input_element"]: x}))]
    if kind == "resource_id":
        names = [ev(args[k], scope) for k in ("resource_name_1", "resource_name_2") if args.get(k)]
        return f"resourceId({args['resource_type']}/{'/'.join(names)})"
    return Runtime(f"{kind}()")  # uniqueString, deployment(), ...: known at deployment only


def ev(expr: Any, scope: Scope) -> Any:
    """The value of a pycep expression; identifiers and string literals are both Python strings in pycep's
    tree: a name of the scope (parameter, variable, loop item) or a symbol is an identifier, anything else a
    literal (with ``${...}`` interpolation)."""
    if isinstance(expr, str):
        if expr in scope.env:
            return scope.env[expr]
        if expr in scope.tree.get("variables", {}):
            return ev(scope.tree["variables"][expr]["value"], scope)
        if expr in scope.symbols:
            return Runtime(expr)
        return _interpolate(expr, scope)
    if isinstance(expr, list):
        return [ev(x, scope) for x in expr]
    if not isinstance(expr, dict):
        return expr
    if "loop_type" in expr:
        return _loop(expr, scope)
    if "function" in expr:
        return _function(expr["function"], scope)
    if not isinstance(expr.get("operator"), dict):  # an object (a property may be named operator)
        return {key: ev(value, scope) for key, value in expr.items()}
    kind, operands = expr["operator"]["type"], expr["operator"]["operands"]
    if kind == "property_accessor":
        return _access(ev(operands["operand_1"], scope), _path(operands["operand_2"]))
    if kind == "conditional":
        condition = ev(operands["condition"], scope)
        assert isinstance(condition, bool), f"a condition known only at deployment: {operands['condition']}"
        return ev(operands["true_value" if condition else "false_value"], scope)
    if kind == "not":
        return not ev(operands["bool_value"], scope)
    left, right = ev(operands["operand_1"], scope), operands["operand_2"]
    if kind == "and":
        return bool(left) and bool(ev(right, scope))
    if kind == "or":
        return bool(left) or bool(ev(right, scope))
    right = ev(right, scope)
    if kind == "index_accessor":
        return Runtime(f"{left}[{right}]") if isinstance(left, Runtime) else left[right]
    return {"equals": lambda: left == right, "not_equals": lambda: left != right,
            "add": lambda: left + right}[kind]()


# ----------------------------------------------------------------- what a deployment creates

def main_modules(**overrides: Any) -> dict[str, dict]:
    """main.bicep with its parameter defaults and ``overrides``: module symbol -> {deployed, params}."""
    main = parsed(MAIN)
    env = {"monitoredSubscriptionIds": [SUBSCRIPTION], "location": "westeurope"}
    for name, param in main["parameters"].items():
        if name not in env and param["default"] is not None:
            env[name] = ev(param["default"], Scope(main, {}))
    unknown = set(overrides) - set(main["parameters"])
    assert not unknown, f"main.bicep has no parameters {sorted(unknown)}"
    scope = Scope(main, {**env, **overrides})
    found = {}
    for symbol, mod in main["modules"].items():
        condition = mod["config"].get("condition") if "loop_type" not in mod["config"] else None
        found[symbol] = {"deployed": condition is None or scope(condition) is True,
                         "params": {k: scope(v) for k, v in body(mod)["params"].items()}}
    return found


def module_scope(path: Path, params: dict[str, Any]) -> Scope:
    tree = parsed(path)
    scope = Scope(tree, {})
    env = {name: scope(p["default"]) for name, p in tree["parameters"].items() if p["default"] is not None}
    return Scope(tree, {**env, **params})


def created(scope: Scope, resource_type: str) -> list[dict]:
    """The (evaluated) bodies of every resource of ``resource_type`` the module creates."""
    out = []
    for res in scope.tree["resources"].values():
        if res["type"] != resource_type or res["existing"]:
            continue
        config = res["config"]
        if "loop_type" in config:
            out.extend(_loop(config, scope))
        elif "condition" in config and "config" in config:
            if scope(config["condition"]) is True:
                out.append(scope(config["config"]))
        else:
            out.append(scope(config))
    return out


def deployed(**overrides: Any) -> dict[str, Any]:
    """What one deployment of main.bicep with ``overrides`` sets up where the private option acts."""
    mods = main_modules(**overrides)
    storage = module_scope(STORAGE, mods["storage"]["params"])
    app = module_scope(FUNCTION_APP, mods["functionApp"]["params"])
    (site,) = [body(r) for r in app.tree["resources"].values() if r["type"] == "Microsoft.Web/sites"]
    site_config = site["properties"]["siteConfig"]
    access = ("ipSecurityRestrictionsDefaultAction", "ipSecurityRestrictions", "scmIpSecurityRestrictionsUseMain",
              "scmIpSecurityRestrictionsDefaultAction", "scmIpSecurityRestrictions")
    result = {
        "modules": {symbol: m["deployed"] for symbol, m in mods.items()},
        "storage": {k: v for k, v in created(storage, "Microsoft.Storage/storageAccounts")[0]["properties"].items()
                    if k in ("publicNetworkAccess", "networkAcls")},
        "site": {"publicNetworkAccess": app(site["properties"]["publicNetworkAccess"]),
                 "virtualNetworkSubnetId": app(site["properties"]["virtualNetworkSubnetId"]),
                 **{k: app(site_config[k]) for k in access}},
        "apiRequireAuthentication": app(app.tree["variables"]["appSettings"]["value"]["API_REQUIRE_AUTHENTICATION"]),
    }
    if mods["network"]["deployed"]:
        net = module_scope(NETWORK, mods["network"]["params"])
        (vnet,) = created(net, "Microsoft.Network/virtualNetworks")
        subnets = {s["name"]: s["properties"] for s in vnet["properties"]["subnets"]}
        result["network"] = {"vnet": vnet, "subnets": subnets, "outputs": {
            k: net(o["value"]) for k, o in net.tree["outputs"].items()},
            "nsgs": {n["name"]: n for n in created(net, "Microsoft.Network/networkSecurityGroups")}}
    if mods["storagePrivateEndpoints"]["deployed"]:
        pe = module_scope(ENDPOINTS, mods["storagePrivateEndpoints"]["params"])
        result["endpoints"] = {kind: created(pe, f"Microsoft.Network/{kind}") for kind in (
            "privateEndpoints", "privateEndpoints/privateDnsZoneGroups", "privateDnsZones",
            "privateDnsZones/virtualNetworkLinks")}
        result["endpointParams"] = mods["storagePrivateEndpoints"]["params"]
    return result


# ----------------------------------------------------------------- the templates themselves

def test_the_new_modules_parse_are_deployed_by_main_and_pass_checkov(tmp_path):
    """network.bicep and storage-private-endpoints.bicep parse with pycep, main.bicep deploys both, and
    checkov (the repository's settings, offline) parses them and fails no check, having run checks on
    their network security groups and virtual network (RDP, SSH and HTTP from the internet, DNS)."""
    paths = {m["detail"]["path"] for m in parsed(MAIN)["modules"].values()}
    assert {"modules/network.bicep", "modules/storage-private-endpoints.bicep"} <= paths
    for path in (NETWORK, ENDPOINTS):
        assert parsed(path)["resources"], path.name
        shutil.copy(path, tmp_path / path.name)
    env = {**os.environ, "BC_SKIP_MAPPING": "TRUE", "LOG_LEVEL": "WARNING"}
    env.pop("BC_API_KEY", None)
    proc = subprocess.run([sys.executable, "-m", "checkov.main", "--config-file", str(CHECKOV_CONFIG), "-d",
                           str(tmp_path), "--framework", "bicep", "--skip-download", "-o", "json", "--compact"],
                          capture_output=True, text=True, cwd=REPO, env=env, timeout=300)
    report = json.loads(proc.stdout)
    report = next(r for r in report if r.get("check_type") == "bicep") if isinstance(report, list) else report
    assert report["summary"]["parsing_errors"] == 0 and report["summary"]["failed"] == 0, report["summary"]
    checked = {(c["resource"], c["check_id"]) for c in report["results"]["passed_checks"]}
    for nsg in ("integrationNsg", "privateEndpointNsg"):
        assert {(f"Microsoft.Network/networkSecurityGroups.{nsg}", c) for c in
                ("CKV_AZURE_9", "CKV_AZURE_10", "CKV_AZURE_160")} <= checked, checked
    assert any(r == "Microsoft.Network/virtualNetworks.vnet" for r, _ in checked)


def _rest_model(value: Any):
    from azure.mgmt.network._utils.model_base import Model

    if isinstance(value, type) and issubclass(value, Model):
        return value
    if isinstance(value, functools.partial):
        return next((m for m in map(_rest_model, (value.func, *value.args)) if m), None)
    return None


def _unknown_properties(model, value: Any, where: str) -> list[str]:
    """Property names of ``value`` (a Bicep object) the REST model does not accept on create."""
    if isinstance(value, list):
        return [p for i, item in enumerate(value) for p in _unknown_properties(model, item, f"{where}[{i}]")]
    if not isinstance(value, dict) or "operator" in value or "function" in value or "loop_type" in value:
        return []
    fields = {f._rest_name: f for f in model()._attr_to_rest_field.values()}
    bad = []
    for key, item in value.items():
        field = fields.get(key)
        if field is None or "create" not in (field._visibility or ["create"]):
            bad.append(f"{where}.{key}")
        elif (inner := _rest_model(field._type)) is not None:
            bad.extend(_unknown_properties(inner, item, f"{where}.{key}"))
    return bad


def test_network_resources_use_known_api_versions_and_properties_the_network_api_defines():
    """Each Microsoft.Network resource uses a stable API version no newer than the Network API that the
    installed azure-mgmt-network implements, and every property it sets exists, writable, in that API's
    model (https://learn.microsoft.com/azure/templates/microsoft.network/virtualnetworks and its siblings).
    Private DNS zones (another API, not in that package) use 2024-06-01, their current stable version
    (https://learn.microsoft.com/azure/templates/microsoft.network/privatednszones). The storage account
    reference uses the same version as storage.bicep."""
    from azure.mgmt.network import models

    sdk_version = max(re.findall(r'"(\d{4}-\d{2}-\d{2})"', (Path(models.__file__).parents[1] / "_configuration.py")
                                 .read_text(encoding="utf-8")), default="2026-03-01")
    model_of = {"Microsoft.Network/virtualNetworks": models.VirtualNetwork,
                "Microsoft.Network/networkSecurityGroups": models.NetworkSecurityGroup,
                "Microsoft.Network/privateEndpoints": models.PrivateEndpoint,
                "Microsoft.Network/privateEndpoints/privateDnsZoneGroups": models.PrivateDnsZoneGroup}
    storage_version = {r["api_version"] for r in parsed(STORAGE)["resources"].values()
                       if r["type"] == "Microsoft.Storage/storageAccounts"}
    seen = set()
    for path in (NETWORK, ENDPOINTS, *(INFRA / "modules" / f"{m}.bicep" for m in ("monitor-private-endpoint",
                                                                      "function-app-private-endpoint"))):
        for symbol, res in parsed(path)["resources"].items():
            where, version = f"{path.name}:{symbol}", res["api_version"]
            assert re.fullmatch(r"\d{4}-\d{2}-\d{2}", version), f"{where}: {version} is not a stable version"
            if res["type"].startswith("Microsoft.Network/privateDnsZones"):
                assert version == "2024-06-01", where
            elif res["type"] == "Microsoft.Storage/storageAccounts":
                assert {version} == storage_version, where
            elif res["type"] == "Microsoft.Web/sites":  # the app the endpoint serves, as function-app.bicep has it
                assert res["existing"] and version == parsed(FUNCTION_APP)["resources"]["site"]["api_version"], where
            else:
                assert version <= sdk_version, f"{where}: {version} is newer than the Network API checked against"
                props = body(res)["properties"]
                assert _unknown_properties(_rest_model(
                    {f._rest_name: f for f in model_of[res["type"]]()._attr_to_rest_field.values()}["properties"]._type),
                    props, where) == [], where
            seen.add(res["type"])
    assert set(model_of) <= seen


# ----------------------------------------------------------------- the default: public, as before

def test_by_default_everything_stays_public_and_unchanged():
    """The quick start deploys no network, no endpoints, no zones; storage allows all networks; the app
    has no VNet integration and no access restrictions (every property unset, as before); the API needs
    the function key only. The sample parameters file sets none of the new parameters."""
    main = parsed(MAIN)["parameters"]
    assert {name: main[name]["default"] for name in PRIVATE_PARAMETERS if isinstance(main[name]["default"], (bool, str))
            and not name.endswith("Prefix")} == {
        "enablePrivateNetworking": False, "existingIntegrationSubnetId": "", "existingPrivateEndpointSubnetId": "",
        "disableFunctionPublicNetworkAccess": False, "requireApiAuthentication": False,
        "enableMonitorPrivateLink": False, "existingMonitorPrivateLinkScopeId": "", "enableFunctionPrivateEndpoint": False}
    assert main["apiAllowedIpRanges"]["default"] == [] and main["existingPrivateDnsZoneIds"]["default"] == {}
    _, assignments = bicepparam_assignments(PARAMS.read_text(encoding="utf-8"))
    assert not set(assignments) & set(PRIVATE_PARAMETERS)
    for overrides in ({}, {"eventDelivery": "queue"}, {"disableFunctionPublicNetworkAccess": True,
                                                      "apiAllowedIpRanges": ["203.0.113.0/24"]}):
        d = deployed(**overrides)
        assert not d["modules"]["network"] and not d["modules"]["storagePrivateEndpoints"], overrides
        assert d["storage"] == {"publicNetworkAccess": "Enabled",
                                "networkAcls": {"bypass": "AzureServices", "defaultAction": "Allow"}}
        assert d["site"] == {"publicNetworkAccess": "Enabled", "virtualNetworkSubnetId": None,
                             "ipSecurityRestrictionsDefaultAction": None, "ipSecurityRestrictions": None,
                             "scmIpSecurityRestrictionsUseMain": None, "scmIpSecurityRestrictionsDefaultAction": None,
                             "scmIpSecurityRestrictions": None}, overrides
        assert d["apiRequireAuthentication"] == "false"


# ----------------------------------------------------------------- private networking on

def test_private_networking_denies_public_storage_access_but_keeps_event_grid_as_a_trusted_service():
    """The storage firewall denies by default and lets trusted Azure services through (bypass AzureServices);
    its public endpoint stays enabled: Event Grid cannot deliver through a private endpoint
    (https://learn.microsoft.com/azure/event-grid/consume-private-endpoints), and behind a storage firewall it
    delivers to a queue and dead-letters to a blob with a system-assigned identity only with the trusted-services
    exception (https://learn.microsoft.com/azure/event-grid/handler-storage-queues,
    https://learn.microsoft.com/azure/storage/common/storage-network-security#grant-access-to-trusted-azure-services).
    The topics' identities and roles are unchanged: the event subscriptions already deliver with them."""
    for delivery in ("webhook", "queue"):
        d = deployed(enablePrivateNetworking=True, eventDelivery=delivery)
        assert d["storage"] == {"publicNetworkAccess": "Enabled",
                                "networkAcls": {"bypass": "AzureServices", "defaultAction": "Deny"}}, delivery


def test_private_networking_creates_endpoints_for_blob_table_and_queue_with_dns_zone_groups():
    """One private endpoint per service the app uses, group ids blob, table and queue
    (https://learn.microsoft.com/azure/storage/common/storage-private-endpoints), each registering in
    privatelink.<service>.core.windows.net through a DNS zone group; the zones are created and linked to the
    created virtual network (https://learn.microsoft.com/azure/private-link/private-endpoint-dns#storage)."""
    d = deployed(enablePrivateNetworking=True)
    assert d["modules"]["network"] and d["modules"]["storagePrivateEndpoints"]
    endpoints = d["endpoints"]
    by_group = {}
    for pe in endpoints["privateEndpoints"]:
        (connection,) = pe["properties"]["privateLinkServiceConnections"]
        (group,) = connection["properties"]["groupIds"]
        assert connection["properties"]["privateLinkServiceId"] == "storage.id"
        assert pe["properties"]["subnet"] == {"id": "network.outputs.privateEndpointSubnetId"}
        by_group[group] = pe
    assert sorted(by_group) == ["blob", "queue", "table"]
    zones = sorted(z["name"] for z in endpoints["privateDnsZones"])
    assert zones == [f"privatelink.{s}.core.windows.net" for s in ("blob", "queue", "table")]
    assert all(z["location"] == "global" for z in endpoints["privateDnsZones"])
    links = endpoints["privateDnsZones/virtualNetworkLinks"]
    assert len(links) == 3 and {link["properties"]["virtualNetwork"]["id"] for link in links} == {
        "network.outputs.resourceId"}
    assert all(link["properties"]["registrationEnabled"] is False for link in links)
    groups = endpoints["privateEndpoints/privateDnsZoneGroups"]
    assert len(groups) == 3
    registered = {g["properties"]["privateDnsZoneConfigs"][0]["properties"]["privateDnsZoneId"] for g in groups}
    assert registered == {f"resourceId(Microsoft.Network/privateDnsZones/privatelink.{s}.core.windows.net)"
                          for s in ("blob", "table", "queue")}
    assert d["endpointParams"]["storageAccountName"] == "storage.outputs.name"


def test_private_networking_integrates_the_app_with_a_subnet_delegated_to_microsoft_app_environments():
    """The app joins the created integration subnet, delegated to Microsoft.App/environments as Flex
    Consumption requires (https://learn.microsoft.com/azure/azure-functions/flex-consumption-plan#considerations),
    /27 by default, which Microsoft recommends for one Flex Consumption app; all of a Flex app's outbound
    traffic then goes through the network, no Route All needed
    (https://learn.microsoft.com/azure/azure-functions/functions-networking-options#subnets). Both subnets
    have a network security group; the endpoint subnet applies it to the endpoints."""
    d = deployed(enablePrivateNetworking=True)
    net = d["network"]
    assert d["site"]["virtualNetworkSubnetId"] == "network.outputs.integrationSubnetId"
    integration = net["outputs"]["integrationSubnetId"].rsplit("/subnets/", 1)[1]
    endpoints = net["outputs"]["privateEndpointSubnetId"].rsplit("/subnets/", 1)[1]
    subnet = net["subnets"][integration]
    assert [x["properties"]["serviceName"] for x in subnet["delegations"]] == ["Microsoft.App/environments"]
    assert ipaddress.ip_network(subnet["addressPrefix"]).prefixlen == 27
    assert net["subnets"][endpoints]["privateEndpointNetworkPolicies"] == "Enabled"
    assert not net["subnets"][endpoints].get("delegations")
    space = ipaddress.ip_network(net["vnet"]["properties"]["addressSpace"]["addressPrefixes"][0])
    inside = [ipaddress.ip_network(s["addressPrefix"]) for s in net["subnets"].values()]
    assert all(n.subnet_of(space) for n in inside) and not inside[0].overlaps(inside[1])
    assert {s["networkSecurityGroup"]["id"] for s in net["subnets"].values()} == {
        "integrationNsg.id", "privateEndpointNsg.id"}
    for nsg in net["nsgs"].values():
        (deny,) = [r for r in nsg["properties"]["securityRules"] if r["properties"]["access"] == "Deny"]
        assert deny["properties"]["sourceAddressPrefix"] == "Internet" and deny["properties"]["direction"] == "Inbound"
    assert "vnetRouteAllEnabled" not in json.dumps(parsed(FUNCTION_APP)["resources"])


def test_private_networking_admits_event_grid_by_service_tag_with_default_deny_and_a_closed_scm_site():
    """Access restrictions (https://learn.microsoft.com/azure/app-service/app-service-ip-restrictions): the
    webhook admits the AzureEventGrid service tag and the operators' ranges, everything else is denied; the
    SCM (publishing) site has its own rules, the operators' ranges only. With queue delivery Event Grid needs
    no inbound path: no Event Grid rule, and the app's public network access can be turned off."""
    event_grid = {"name": "event-grid", "action": "Allow", "priority": 100, "tag": "ServiceTag",
                  "ipAddress": "AzureEventGrid"}
    site = deployed(enablePrivateNetworking=True)["site"]
    assert site["ipSecurityRestrictionsDefaultAction"] == "Deny" and site["ipSecurityRestrictions"] == [event_grid]
    assert site["scmIpSecurityRestrictionsUseMain"] is False
    assert site["scmIpSecurityRestrictionsDefaultAction"] == "Deny" and site["scmIpSecurityRestrictions"] == []
    assert site["publicNetworkAccess"] == "Enabled"

    ranges = ["203.0.113.0/24", "198.51.100.7/32"]
    operators = [{"name": f"operators-{i}", "action": "Allow", "priority": 200 + i, "ipAddress": r}
                 for i, r in enumerate(ranges)]
    site = deployed(enablePrivateNetworking=True, apiAllowedIpRanges=ranges)["site"]
    assert site["ipSecurityRestrictions"] == [event_grid, *operators]
    assert site["scmIpSecurityRestrictions"] == operators
    priorities = [r["priority"] for r in site["ipSecurityRestrictions"]]
    assert len(set(priorities)) == len(priorities)

    site = deployed(enablePrivateNetworking=True, eventDelivery="queue", apiAllowedIpRanges=ranges)["site"]
    assert site["ipSecurityRestrictions"] == operators and site["publicNetworkAccess"] == "Enabled"
    site = deployed(enablePrivateNetworking=True, eventDelivery="queue", disableFunctionPublicNetworkAccess=True)["site"]
    assert site["publicNetworkAccess"] == "Disabled"
    # With the webhook, turning the app's public access off would stop every delivery: the switch is ignored.
    site = deployed(enablePrivateNetworking=True, disableFunctionPublicNetworkAccess=True)["site"]
    assert site["publicNetworkAccess"] == "Enabled"


def test_bring_your_own_subnets_and_dns_zones_create_no_network_and_no_zones():
    """Hub and spoke with central DNS: given subnet ids the template creates no virtual network and joins
    the app and the endpoints to them; given zone ids it creates no zone and no link, and the endpoints
    register in the central zones. Zones it does create are linked to the network of the given integration
    subnet (https://learn.microsoft.com/azure/private-link/private-endpoint-dns-integration)."""
    integration, endpoints_subnet = f"{SPOKE}/subnets/snet-func", f"{SPOKE}/subnets/snet-pe"
    zones = {s: f"{HUB}/privateDnsZones/privatelink.{s}.core.windows.net" for s in ("blob", "table", "queue")}
    d = deployed(enablePrivateNetworking=True, existingIntegrationSubnetId=integration,
                 existingPrivateEndpointSubnetId=endpoints_subnet, existingPrivateDnsZoneIds=zones)
    assert not d["modules"]["network"] and "network" not in d and d["modules"]["storagePrivateEndpoints"]
    assert d["site"]["virtualNetworkSubnetId"] == integration
    endpoints = d["endpoints"]
    assert {pe["properties"]["subnet"]["id"] for pe in endpoints["privateEndpoints"]} == {endpoints_subnet}
    assert len(endpoints["privateEndpoints"]) == 3
    assert endpoints["privateDnsZones"] == [] and endpoints["privateDnsZones/virtualNetworkLinks"] == []
    assert {g["properties"]["privateDnsZoneConfigs"][0]["properties"]["privateDnsZoneId"]
            for g in endpoints["privateEndpoints/privateDnsZoneGroups"]} == set(zones.values())
    assert d["storage"]["networkAcls"]["defaultAction"] == "Deny"

    d = deployed(enablePrivateNetworking=True, existingIntegrationSubnetId=integration,
                 existingPrivateEndpointSubnetId=endpoints_subnet, existingPrivateDnsZoneIds={"blob": zones["blob"]})
    assert not d["modules"]["network"]
    assert sorted(z["name"] for z in d["endpoints"]["privateDnsZones"]) == [
        "privatelink.queue.core.windows.net", "privatelink.table.core.windows.net"]
    assert {link["properties"]["virtualNetwork"]["id"] for link in d["endpoints"]["privateDnsZones/virtualNetworkLinks"]
            } == {SPOKE}


# ----------------------------------------------------------------- the HTTP API and the docs

def test_require_api_authentication_sets_the_setting_the_code_reads():
    """requireApiAuthentication becomes API_REQUIRE_AUTHENTICATION, which shared/config.py reads and the HTTP
    API enforces (tests/test_http_api.py)."""
    from shared.config import Settings

    assert deployed()["apiRequireAuthentication"] == "false"
    value = deployed(requireApiAuthentication=True)["apiRequireAuthentication"]
    assert value == "true" and Settings.from_env({"API_REQUIRE_AUTHENTICATION": value}).api_require_authentication


def test_deploy_doc_explains_the_private_option_and_no_longer_lists_it_as_missing():
    """docs/DEPLOY.md "Private networking" names every parameter of main.bicep's private networking section,
    the delegation, the service tag, the trusted-services bypass, the zones, how the package is published,
    and what stays public (Logs Ingestion without AMPLS), with links to Microsoft's documentation."""
    main_text = MAIN.read_text(encoding="utf-8")
    rule = "// " + "-" * 66
    section = main_text.split(f"{rule} private networking\n", 1)[1].split(rule, 1)[0]
    section_params = re.findall(r"^param (\w+)", section, flags=re.M)
    assert sorted(section_params) == sorted(PRIVATE_PARAMETERS), section_params
    text = (REPO / "docs" / "DEPLOY.md").read_text(encoding="utf-8")
    section = text.split("\n## Private networking\n", 1)[1].split("\n## ", 1)[0]
    assert all(f"`{name}`" in section for name in PRIVATE_PARAMETERS), [
        n for n in PRIVATE_PARAMETERS if f"`{n}`" not in section]
    for words in ("Microsoft.App/environments", "AzureEventGrid", "AzureServices", "privatelink.blob",
                  "Logs Ingestion", "AMPLS", "app-package", "learn.microsoft.com"):
        assert words in section, words
    missing = text.split("## Not there yet", 1)[1].split("\n## ", 1)[0]
    assert "**Private networking**" not in missing and "private webhook" in missing  # still missing, said plainly
