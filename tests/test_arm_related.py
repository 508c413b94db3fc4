"""Related resources and alias metadata read from a local ARM over real HTTPS with the real clients."""
from __future__ import annotations

import json
from pathlib import Path

import pytest
from azure.mgmt.network import NetworkManagementClient
from azure.mgmt.resource.resources import ResourceManagementClient

from shared.adapters.arm import ArmAliasSource, ArmResourceReader
from shared.catalog import RelatedSpec, load_catalog
from shared.policy import parse_path
from shared.service.ports import ResourceAccessDenied
from shared.domain.resource_ids import parse_resource_id
from tests.support.local_azure import LocalAzure
from tests.test_arm_reader import managed_identity_env  # noqa: F401 - fixture

FIXTURES = Path(__file__).with_name("fixtures") / "resources"
SCOPE = ["https://management.azure.com/.default"]
SUB = "5c4b3a29-1d0e-4f8a-b7c6-d5e4f3a2b1c0"
VAULT = f"/subscriptions/{SUB}/resourceGroups/rg-sec/providers/Microsoft.KeyVault/vaults/kv-app"
WATCHER = f"/subscriptions/{SUB}/resourceGroups/NetworkWatcherRG/providers/Microsoft.Network/networkWatchers/NetworkWatcher_westeurope"
NSG = f"/subscriptions/{SUB}/resourceGroups/rg-net/providers/Microsoft.Network/networkSecurityGroups/nsg-app"


@pytest.fixture
def local():
    with LocalAzure() as server:
        yield server


def reader_for(local) -> ArmResourceReader:
    options = dict(base_url=local.url, credential_scopes=SCOPE, connection_verify=local.ca_file)
    return ArmResourceReader(lambda sub: ResourceManagementClient(local.credential(), sub, **options),
                             lambda sub: NetworkManagementClient(local.credential(), sub, **options))


def diagnostic_setting(name: str, enabled: bool) -> dict:
    return {"id": f"{VAULT}/providers/Microsoft.Insights/diagnosticSettings/{name}", "name": name,
            "type": "Microsoft.Insights/diagnosticSettings",
            "properties": {"workspaceId": f"/subscriptions/{SUB}/resourceGroups/rg-mon/providers/"
                                          "Microsoft.OperationalInsights/workspaces/law",
                           "logs": [{"categoryGroup": "audit", "enabled": enabled}]}}


def test_extension_collection_is_listed(local):
    vault = {"id": VAULT, "type": "Microsoft.KeyVault/vaults", "properties": {}}
    local.put_resource(vault)
    reader = reader_for(local)
    spec = RelatedSpec("Microsoft.Insights/diagnosticSettings")
    assert reader.related(parse_resource_id(VAULT), vault, spec) == []  # an empty collection, not an error
    local.put_resource(diagnostic_setting("a", True))
    local.put_resource(diagnostic_setting("b", False))
    found = reader.related(parse_resource_id(VAULT), vault, spec)
    assert sorted(item["name"] for item in found) == ["a", "b"]
    listed = local.calls("arm", "/providers/Microsoft.Insights/diagnosticSettings")
    assert listed[-1].query["api-version"] == "2021-05-01-preview"  # only previews exist for this type


def test_named_child_is_read_and_a_missing_one_is_empty(local):
    account = json.loads((FIXTURES / "storage-weak.json").read_text())
    account.pop("$related", None)
    local.put_resource(account)
    rid = parse_resource_id(account["id"])
    spec = RelatedSpec("Microsoft.Storage/storageAccounts/blobServices", "default")
    reader = reader_for(local)
    assert reader.related(rid, account, spec) == []
    blob = {"id": account["id"] + "/blobServices/default", "name": "default",
            "type": "Microsoft.Storage/storageAccounts/blobServices",
            "properties": {"deleteRetentionPolicy": {"enabled": True, "days": 14}}}
    local.put_resource(blob)
    assert reader.related(rid, account, spec) == [blob]


def test_flow_logs_are_read_with_the_network_client(local):
    flow_log = {"id": f"{WATCHER}/flowLogs/fl-nsg-app", "name": "fl-nsg-app",
                "type": "Microsoft.Network/networkWatchers/flowLogs", "location": "westeurope",
                "properties": {"targetResourceId": NSG, "enabled": True,
                               "storageId": f"/subscriptions/{SUB}/resourceGroups/rg-logs/providers/"
                                            "Microsoft.Storage/storageAccounts/stflowlogs",
                               "retentionPolicy": {"days": 90, "enabled": True}, "provisioningState": "Succeeded"}}
    local.put_resource(flow_log)
    nsg = {"id": NSG, "type": "Microsoft.Network/networkSecurityGroups",
           "properties": {"flowLogs": [{"id": flow_log["id"]}, {"id": f"{WATCHER}/flowLogs/gone"}]}}
    spec = RelatedSpec("Microsoft.Network/networkWatchers/flowLogs", ids_from=parse_path("properties.flowLogs[*].id"))
    found = reader_for(local).related(parse_resource_id(NSG), nsg, spec)
    assert len(found) == 1
    assert found[0]["properties"]["retentionPolicy"] == {"days": 90, "enabled": True}
    assert found[0]["properties"]["targetResourceId"] == NSG
    gets = local.calls("arm", "/flowLogs/")
    assert {r.query["api-version"] for r in gets} == {"2026-03-01"}  # the typed client's own version
    assert not [r for r in local.calls("arm") if r.path.lower().endswith("/providers/microsoft.network")]


def test_forbidden_related_read_is_access_denied(local):
    vault = {"id": VAULT, "type": "Microsoft.KeyVault/vaults", "properties": {}}
    reader = reader_for(local)
    reader.api_version(parse_resource_id(VAULT + "/providers/Microsoft.Insights/diagnosticSettings/x"))
    local.fail_next(1, status=403, target="arm", code="AuthorizationFailed")
    with pytest.raises(ResourceAccessDenied):
        reader.related(parse_resource_id(VAULT), vault, RelatedSpec("Microsoft.Insights/diagnosticSettings"))


def test_aliases_missing_from_the_table_resolve_from_provider_metadata(local, tmp_path):
    """The snapshot answers the aliases it has; ARM only those it lacks (a newer one here), once per namespace."""
    local.aliases["microsoft.keyvault/vaults"] = [
        {"name": "Microsoft.KeyVault/vaults/deploymentAccessPolicy",
         "paths": [{"path": "properties.deploymentAccessPolicy", "apiVersions": ["2026-02-01"]}],
         "defaultPath": "properties.deploymentAccessPolicy", "type": "NotSpecified"}]
    (tmp_path / "kv-deploy.yaml").write_text(
        "id: kv-no-vm-deployment\ntitle: Vaults do not release secrets to VM deployments\nseverity: Low\n"
        "resourceTypes: [Microsoft.KeyVault/vaults]\n"
        "rule: {anyOf: [{field: Microsoft.KeyVault/vaults/enabledForDeployment, equals: true},\n"
        "               {field: Microsoft.KeyVault/vaults/deploymentAccessPolicy, equals: Open}]}\n")
    client = ResourceManagementClient(local.credential(), SUB, base_url=local.url, credential_scopes=SCOPE,
                                      connection_verify=local.ca_file)
    source = ArmAliasSource(client)
    catalog = load_catalog([tmp_path], aliases={}, alias_fallback=source)
    vault = {"id": VAULT, "type": "Microsoft.KeyVault/vaults", "properties": {"enabledForDeployment": False,
                                                                             "deploymentAccessPolicy": "Open"}}
    assert [r.status.value for r in catalog.evaluate(vault)] == ["NonCompliant"]
    vault["properties"]["deploymentAccessPolicy"] = "Closed"
    assert [r.status.value for r in catalog.evaluate(vault)] == ["Compliant"]
    assert len(local.calls("arm", "/providers/Microsoft.KeyVault")) == 1  # cached per namespace
    (tmp_path / "kv-deploy.yaml").write_text(
        (tmp_path / "kv-deploy.yaml").read_text().replace("deploymentAccessPolicy", "noSuchSetting"))
    from shared.catalog import ControlLoadError

    with pytest.raises(ControlLoadError, match="kv-no-vm-deployment.*noSuchSetting"):
        load_catalog([tmp_path], aliases={}, alias_fallback=source)


def test_related_in_another_resource_group_is_read_by_its_computed_id(local):
    """auditIfNotExists with resourceGroupName: the watcher of the NSG's region, in NetworkWatcherRG."""
    nsg = {"id": NSG, "name": "nsg-app", "type": "Microsoft.Network/networkSecurityGroups", "location": "westeurope",
           "properties": {}}
    spec = RelatedSpec("Microsoft.Network/networkWatchers", name="NetworkWatcher_westeurope", scope="resourceGroup",
                       resource_group="NetworkWatcherRG")
    reader = reader_for(local)
    assert reader.related(parse_resource_id(NSG), nsg, spec) == []  # 404: none exists
    local.put_resource({"id": WATCHER, "name": "NetworkWatcher_westeurope", "type": "Microsoft.Network/networkWatchers",
                        "location": "westeurope", "properties": {"provisioningState": "Succeeded"}})
    found = reader.related(parse_resource_id(NSG), nsg, spec)
    assert [f["name"] for f in found] == ["NetworkWatcher_westeurope"]
    assert local.calls("arm", "/resourceGroups/NetworkWatcherRG/providers/Microsoft.Network/networkWatchers/")


def test_related_in_the_subscription_is_listed_and_filtered_by_name(local):
    local.providers["Microsoft.Security"] = {"pricings": ["2024-01-01"]}
    for name, tier in (("VirtualMachines", "Standard"), ("AppServices", "Free")):
        local.put_resource({"id": f"/subscriptions/{SUB}/providers/Microsoft.Security/pricings/{name}", "name": name,
                            "type": "Microsoft.Security/pricings", "properties": {"pricingTier": tier}})
    vault = {"id": VAULT, "type": "Microsoft.KeyVault/vaults", "properties": {}}
    reader = reader_for(local)
    found = reader.related(parse_resource_id(VAULT), vault,
                           RelatedSpec("Microsoft.Security/pricings", name="AppServices", scope="subscription"))
    assert [(f["name"], f["properties"]["pricingTier"]) for f in found] == [("AppServices", "Free")]
    everything = reader.related(parse_resource_id(VAULT), vault, RelatedSpec("Microsoft.Security/pricings",
                                                                            scope="subscription"))
    assert sorted(f["name"] for f in everything) == ["AppServices", "VirtualMachines"]


def test_alias_refresh_writes_a_snapshot_from_provider_metadata(local, tmp_path):
    from shared.policy.aliases import AliasSnapshot

    local.aliases["microsoft.keyvault/vaults"] = [
        {"name": "Microsoft.KeyVault/vaults/enableRbacAuthorization",
         "paths": [{"path": "properties.enableRbacAuthorization", "apiVersions": ["2023-07-01"]}],
         "defaultPath": "properties.enableRbacAuthorization"},
        {"name": "Microsoft.KeyVault/vaults/sku.name", "defaultPath": "properties.sku.name",
         "paths": [{"path": "properties.sku.name", "apiVersions": ["2023-07-01"]},
                   {"path": "sku.name", "apiVersions": ["2015-06-01"]}]}]
    client = ResourceManagementClient(local.credential(), SUB, base_url=local.url, credential_scopes=SCOPE,
                                      connection_verify=local.ca_file)
    rows = ArmAliasSource(client).all_aliases()
    assert rows == [("Microsoft.KeyVault/vaults/enableRbacAuthorization", "properties.enableRbacAuthorization"),
                    ("Microsoft.KeyVault/vaults/sku.name", "properties.sku.name"),
                    ("Microsoft.KeyVault/vaults/sku.name", "sku.name")]
    from shared.policy.aliases import write_snapshot

    out = tmp_path / "aliases.csv.gz"
    assert write_snapshot(rows, out) == 3
    snapshot = AliasSnapshot(out)
    assert snapshot.get("microsoft.keyvault/VAULTS/sku.name") == "properties.sku.name"  # the default path first
    assert snapshot.get("Microsoft.KeyVault/vaults/nothing") is None
    assert len(local.calls("arm", "/providers")) == 1  # one listing of every provider


def test_policy_definitions_are_read_from_arm_by_id(local):
    from shared.adapters.arm import ArmPolicyDefinitions

    local.providers["Microsoft.Authorization"] = {"policyDefinitions": ["2023-04-01"]}
    definition = json.loads((Path(__file__).with_name("fixtures") / "policies" / "storage-secure-transfer.json")
                            .read_text())
    local.put_resource({**definition, "type": "Microsoft.Authorization/policyDefinitions"})
    client = ResourceManagementClient(local.credential(), SUB, base_url=local.url, credential_scopes=SCOPE,
                                      connection_verify=local.ca_file)
    source = ArmPolicyDefinitions(client)
    found = source(definition["id"])
    assert found["properties"]["policyRule"] == definition["properties"]["policyRule"]
    assert source("/providers/Microsoft.Authorization/policyDefinitions/00000000-0000-0000-0000-00000000dead") is None


@pytest.fixture
def app_env(local, managed_identity_env, monkeypatch):
    """The CLI configured like the function app, with no alias source left from an earlier test."""
    import shared.bootstrap as wiring

    monkeypatch.setattr(wiring, "_alias_source", None)
    return local


def test_cli_refreshes_the_alias_snapshot_and_imports_initiative_members_from_arm(app_env, tmp_path, capsys):
    from shared.policy.aliases import AliasSnapshot
    from shared.cli import main

    local = app_env
    local.aliases["microsoft.storage/storageaccounts"] = [
        {"name": "Microsoft.Storage/storageAccounts/supportsHttpsTrafficOnly",
         "paths": [{"path": "properties.supportsHttpsTrafficOnly", "apiVersions": ["2023-05-01"]}],
         "defaultPath": "properties.supportsHttpsTrafficOnly"}]
    out = tmp_path / "aliases.csv.gz"
    assert main(["aliases", "refresh", "--out", str(out)]) == 0
    assert "wrote 1 aliases" in capsys.readouterr().err
    assert AliasSnapshot(out).get("Microsoft.Storage/storageAccounts/supportsHttpsTrafficOnly") == \
        "properties.supportsHttpsTrafficOnly"

    local.providers["Microsoft.Authorization"] = {"policyDefinitions": ["2023-04-01"]}
    definition = json.loads((Path(__file__).with_name("fixtures") / "policies" / "storage-secure-transfer.json")
                            .read_text())
    local.put_resource({**definition, "type": "Microsoft.Authorization/policyDefinitions"})
    policy_set = {"name": "one", "properties": {"displayName": "One member", "policyDefinitions": [
        {"policyDefinitionReferenceId": "secure", "policyDefinitionId": definition["id"]}]}}
    (tmp_path / "set.json").write_text(json.dumps(policy_set))
    assert main(["import-policy", str(tmp_path / "set.json"), "--out", str(tmp_path / "out")]) == 1  # offline
    assert "not available offline" in capsys.readouterr().out
    assert main(["import-policy", str(tmp_path / "set.json"), "--out", str(tmp_path / "out"), "--from-arm"]) == 0
    assert capsys.readouterr().out.rstrip().endswith("imported 1 of 1 definitions (1 judged out of the box, 0 templates judged once parameters are given, 0 refused)")
    assert local.calls("arm", "/policyDefinitions/404c3081")
