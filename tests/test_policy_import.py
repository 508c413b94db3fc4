"""``python -m shared import-policy``: Azure Policy definitions become controls with the same verdicts."""
from __future__ import annotations

import json
from pathlib import Path

import pytest
import yaml

from shared.cli import main
from shared.catalog import BUILTIN_DIR, load_catalog
from shared.policy.importing import PolicyImportError, control_from_definition
from tests.control_cases import load_fixture

POLICIES = Path(__file__).with_name("fixtures") / "policies"


def imported(tmp_path, *names, capsys=None, extra=()):
    code = main(["import-policy", *(str(POLICIES / n) for n in names), "--out", str(tmp_path), *extra])
    return code


def verdicts(catalog, resource):
    return {r.control_id: r.status.value for r in catalog.evaluate(resource)}


def test_audit_definition_gives_the_builtin_verdicts(tmp_path, capsys):
    assert imported(tmp_path, "storage-secure-transfer.json", extra=["--severity", "High"]) == 0
    doc = yaml.safe_load((tmp_path / "secure-transfer-to-storage-accounts-should-be-enabled.yaml").read_text())
    assert doc["policyDefinitionId"].endswith("404c3081-a854-4457-ae30-26a93ef643f9")
    assert doc["resourceTypes"] == ["Microsoft.Storage/storageAccounts"] and doc["severity"] == "High"
    assert "parameters" not in doc  # the effect parameter is not a control parameter
    catalog = load_catalog([BUILTIN_DIR, tmp_path])
    for fixture in ("storage-hardened", "storage-weak"):
        resource = load_fixture(fixture)
        got = verdicts(catalog, resource)
        assert got["secure-transfer-to-storage-accounts-should-be-enabled"] == got["storage-https-only"], fixture
    weak = load_fixture("storage-hardened")
    weak["properties"]["supportsHttpsTrafficOnly"] = False
    assert verdicts(catalog, weak)["secure-transfer-to-storage-accounts-should-be-enabled"] == "NonCompliant"
    assert "wrote" in capsys.readouterr().out


def test_parameterized_tag_policy_keeps_its_parameter(tmp_path):
    assert imported(tmp_path, "require-tag.json", extra=["--prefix", "corp-", "--severity", "Low"]) == 0
    doc = yaml.safe_load((tmp_path / "corp-require-a-cost-center-tag-on-resources.yaml").read_text())
    assert doc["resourceTypes"] == ["*"] and doc["mode"] == "Indexed"
    assert doc["parameters"]["tagName"]["defaultValue"] == "costCenter"
    catalog = load_catalog([tmp_path], parameters={"corp-require-a-cost-center-tag-on-resources": {"tagName": "owner"}})
    resource = load_fixture("storage-hardened")
    assert verdicts(catalog, resource)["corp-require-a-cost-center-tag-on-resources"] == "Compliant"
    resource["tags"].pop("owner")
    assert verdicts(catalog, resource)["corp-require-a-cost-center-tag-on-resources"] == "NonCompliant"


def test_audit_if_not_exists_becomes_a_related_check(tmp_path):
    definitions = json.loads((POLICIES / "keyvault-definitions.json").read_text())["value"]
    control = control_from_definition(definitions[1], where="kv.json")
    assert control["related"]["type"] == "Microsoft.Insights/diagnosticSettings"
    assert "existenceCondition" in control["related"]
    (tmp_path / "logs.yaml").write_text(yaml.safe_dump(control))
    catalog = load_catalog([BUILTIN_DIR, tmp_path])
    hardened = load_fixture("keyvault-hardened")  # carries a compliant diagnostic setting under $related
    got = verdicts(catalog, hardened)
    assert got[control["id"]] == got["keyvault-diagnostic-logs"] == "Compliant"
    hardened["$related"]["Microsoft.Insights/diagnosticSettings"] = []
    got = verdicts(catalog, hardened)
    assert got[control["id"]] == got["keyvault-diagnostic-logs"] == "NonCompliant"


def test_modify_definition_is_audited_as_its_condition_with_the_operations_as_remediation(tmp_path, capsys):
    assert imported(tmp_path, "modify-tags.json") == 0
    doc = yaml.safe_load((tmp_path / "inherit-the-environment-tag-from-the-resource-group.yaml").read_text())
    assert "add tags['environment']" in doc["remediation"]["text"]
    catalog = load_catalog([tmp_path])
    resource = load_fixture("storage-hardened")
    resource["tags"]["environment"] = "prod"
    assert verdicts(catalog, resource) == {"inherit-the-environment-tag-from-the-resource-group": "Compliant"}
    del resource["tags"]["environment"]
    assert verdicts(catalog, resource) == {"inherit-the-environment-tag-from-the-resource-group": "NonCompliant"}


def _tls_modify(condition: dict, operations: list) -> dict:
    return {"name": "tls-modify", "properties": {"displayName": "Storage minimum TLS set by modify", "mode": "Indexed",
            "policyRule": {"if": condition, "then": {"effect": "modify", "details": {
                "roleDefinitionIds": [], "operations": operations}}}}}


TLS_OPERATION = {"operation": "addOrReplace", "field": "Microsoft.Storage/storageAccounts/minimumTlsVersion",
                 "value": "TLS1_2"}


def test_modify_marks_an_existing_resource_non_compliant_when_its_if_matches(tmp_path):
    """Docs, "Azure Policy definitions modify effect", skipped modifications, existing resources: an
    evaluation cycle changes nothing and marks any resource that meets the if condition as non-compliant,
    even where the operation would leave it as it is."""
    (tmp_path / "out").mkdir()
    only_type = control_from_definition(_tls_modify({"field": "type", "equals": "Microsoft.Storage/storageAccounts"},
                                                    [TLS_OPERATION]), where="tls.json")
    assert only_type["effect"] == "Modify" and only_type["resourceTypes"] == ["Microsoft.Storage/storageAccounts"]
    (tmp_path / "out" / "c.yaml").write_text(yaml.safe_dump(only_type))
    catalog = load_catalog([tmp_path / "out"])
    resource = load_fixture("storage-hardened")
    assert resource["properties"]["minimumTlsVersion"] == "TLS1_2"
    assert verdicts(catalog, resource)[only_type["id"]] == "NonCompliant"  # its if matches: non-compliant


def test_modify_whose_if_tests_the_property_is_compliant_once_it_is_set(tmp_path):
    (tmp_path / "out").mkdir()
    control = control_from_definition(_tls_modify({"allOf": [
        {"field": "type", "equals": "Microsoft.Storage/storageAccounts"},
        {"field": "Microsoft.Storage/storageAccounts/minimumTlsVersion", "notEquals": "TLS1_2"}]}, [TLS_OPERATION]),
        where="tls.json")
    (tmp_path / "out" / "c.yaml").write_text(yaml.safe_dump(control))
    catalog = load_catalog([tmp_path / "out"])
    resource = load_fixture("storage-hardened")
    assert verdicts(catalog, resource)[control["id"]] == "Compliant"
    resource["properties"]["minimumTlsVersion"] = "TLS1_0"
    assert verdicts(catalog, resource)[control["id"]] == "NonCompliant"


def test_modify_of_identity_type_applies_only_to_virtual_machines_and_scale_sets(tmp_path):
    """Docs, modify effect, operations: identity.type can be modified only for virtual machines and
    Virtual Machine Scale Sets; any other resource is not applicable (no row), whatever its identity."""
    definition = {"name": "identity-modify", "properties": {"displayName": "Add a system-assigned identity",
                  "mode": "Indexed", "policyRule": {
                      "if": {"field": "identity.type", "notContains": "SystemAssigned"},
                      "then": {"effect": "modify", "details": {"roleDefinitionIds": [], "operations": [
                          {"operation": "addOrReplace", "field": "identity.type", "value": "SystemAssigned"}]}}}}}
    (tmp_path / "out").mkdir()
    control = control_from_definition(definition, where="identity.json")
    assert sorted(control["resourceTypes"]) == ["Microsoft.Compute/virtualMachineScaleSets",
                                                "Microsoft.Compute/virtualMachines"]
    (tmp_path / "out" / "c.yaml").write_text(yaml.safe_dump(control))
    catalog = load_catalog([tmp_path / "out"])
    storage = load_fixture("storage-hardened")
    storage.pop("identity", None)
    assert control["id"] not in verdicts(catalog, storage)
    vm = load_fixture("vm-hardened")
    vm["identity"] = {"type": "UserAssigned"}
    assert verdicts(catalog, vm)[control["id"]] == "NonCompliant"
    vm["identity"] = {"type": "SystemAssigned, UserAssigned"}
    assert verdicts(catalog, vm)[control["id"]] == "Compliant"


def test_unknown_alias_is_refused_naming_control_and_alias(tmp_path, capsys):
    definition = {"properties": {"displayName": "Odd setting", "policyRule": {
        "if": {"allOf": [{"field": "type", "equals": "Microsoft.Storage/storageAccounts"},
                         {"field": "Microsoft.Storage/storageAccounts/noSuchSetting", "equals": True}]},
        "then": {"effect": "audit"}}}}
    path = tmp_path / "odd.json"
    path.write_text(json.dumps(definition))
    out = tmp_path / "out"
    assert main(["import-policy", str(path), "--out", str(out)]) == 1  # refused, reported; not an unusable input
    printed = capsys.readouterr().out
    assert "refused   Odd setting" in printed and "odd.json" in printed and "noSuchSetting" in printed
    assert printed.rstrip().endswith("imported 0 of 1 definitions (0 judged out of the box, 0 templates judged once parameters are given, 1 refused)")
    assert not out.exists()  # nothing half-written


@pytest.mark.parametrize("definition, words", [
    ({"properties": {"displayName": "x"}}, "no properties.policyRule"),
    ({"properties": {"displayName": "No effect", "policyRule": {"if": {"field": "type", "equals": "a/b"},
                                                                 "then": {}}}}, "effect is missing"),
    ({"properties": {"displayName": "Dyn", "policyRule": {
        "if": {"field": "type", "equals": "Microsoft.Web/sites"},
        "then": {"effect": "auditIfNotExists", "details": {"type": "Microsoft.Web/sites/config",
                                                          "name": "[nosuch('name')]"}}}}}, "nosuch"),
    ({"properties": {"displayName": "Delete guard", "policyRule": {
        "if": {"field": "type", "equals": "Microsoft.Web/sites"},
        "then": {"effect": "denyAction", "details": {"actionNames": ["delete"]}}}}}, "no resource state"),
    ({"properties": {"displayName": "Pods", "mode": "Microsoft.Kubernetes.Data", "policyRule": {
        "if": {"field": "type", "equals": "Microsoft.ContainerService/managedClusters"},
        "then": {"effect": "audit", "details": {}}}}}, "inside the cluster"),
])
def test_definition_errors_say_what_is_wrong(definition, words):
    with pytest.raises(PolicyImportError, match=words):
        control_from_definition(definition, where="def.json")


# ----------------------------------------------------------------------------- parameters, templates, many files

ALLOWED_LOCATIONS = {"name": "e56962a6-4747-49cd-b67b-bf8b01975c4c", "properties": {
    "displayName": "Allowed locations", "mode": "Indexed",
    "parameters": {"listOfAllowedLocations": {"type": "Array", "metadata": {"strongType": "location"}}},
    "policyRule": {"if": {"allOf": [
        {"field": "location", "notIn": "[parameters('listOfAllowedLocations')]"},
        {"field": "location", "notEquals": "global"}]}, "then": {"effect": "deny"}}}}
DISABLED = {"name": "d1", "properties": {
    "displayName": "Storage accounts should disable public network access", "mode": "Indexed",
    "parameters": {"effect": {"type": "String", "allowedValues": ["Audit", "Deny", "Disabled"], "defaultValue": "Disabled"}},
    "policyRule": {"if": {"allOf": [{"field": "type", "equals": "Microsoft.Storage/storageAccounts"},
                                    {"field": "Microsoft.Storage/storageAccounts/publicNetworkAccess",
                                     "notEquals": "Disabled"}]},
                   "then": {"effect": "[parameters('effect')]"}}}}


def write(folder, name, doc):
    folder.mkdir(parents=True, exist_ok=True)
    (folder / name).write_text(json.dumps(doc))
    return folder / name


def test_parameter_without_default_is_a_template_until_a_value_is_given(tmp_path, capsys):
    src = write(tmp_path / "in", "locations.json", ALLOWED_LOCATIONS)
    out = tmp_path / "out"
    params = tmp_path / "params.json"
    assert main(["import-policy", str(src), "--out", str(out), "--parameters-template", str(params)]) == 0
    printed = capsys.readouterr()
    assert "template  Allowed locations" in printed.out and "listOfAllowedLocations" in printed.out
    assert printed.out.rstrip().endswith("imported 1 of 1 definitions (0 judged out of the box, 1 templates judged once parameters are given, 0 refused)")
    template = out / "templates" / "allowed-locations.yaml"
    assert template.exists() and not (out / "allowed-locations.yaml").exists()
    assert load_catalog([out]).controls == []  # templates/ is not loaded: it needs values first
    written = json.loads(params.read_text())
    assert written["listOfAllowedLocations"] == {"value": []} and set(written) == {"$samples", "listOfAllowedLocations"}
    catalog = load_catalog([out / "templates"], parameters={"allowed-locations": {
        "listOfAllowedLocations": ["westeurope"]}})  # CONTROL_PARAMETERS gives the value instead
    assert verdicts(catalog, load_fixture("storage-hardened")) == {"allowed-locations": "Compliant"}

    params.write_text(json.dumps({"listOfAllowedLocations": {"value": ["northeurope"]}}))  # an assignment's shape
    assert main(["import-policy", str(src), "--out", str(out), "--parameters", str(params)]) == 0
    assert capsys.readouterr().out.rstrip().endswith("imported 1 of 1 definitions (1 judged out of the box, 0 templates judged once parameters are given, 0 refused)")
    catalog = load_catalog([out])
    resource = load_fixture("storage-hardened")
    assert resource["location"] == "westeurope"
    assert verdicts(catalog, resource) == {"allowed-locations": "NonCompliant"}
    assert main(["import-policy", str(src), "--out", str(out), "-p", 'listOfAllowedLocations=["westeurope"]']) == 0
    assert verdicts(load_catalog([out]), resource) == {"allowed-locations": "Compliant"}


def test_a_sample_parameters_file_is_refused_until_its_values_are_edited(tmp_path, capsys):
    """A template gives no verdict until real values are given: the file --parameters-template writes is
    marked as samples, and refused while it still holds them (unless --accept-samples)."""
    src = write(tmp_path / "in", "locations.json", ALLOWED_LOCATIONS)
    out, params = tmp_path / "out", tmp_path / "params.json"
    assert main(["import-policy", str(src), "--out", str(out), "--parameters-template", str(params)]) == 0
    capsys.readouterr()
    assert main(["import-policy", str(src), "--out", str(out), "--parameters", str(params)]) == 2
    assert "still holds the sample values" in capsys.readouterr().err
    assert main(["import-policy", str(src), "--out", str(out), "--parameters", str(params), "--accept-samples"]) == 0
    capsys.readouterr()
    edited = json.loads(params.read_text())
    edited["listOfAllowedLocations"]["value"] = ["westeurope"]  # the marker stays: the values are no longer samples
    params.write_text(json.dumps(edited))
    assert main(["import-policy", str(src), "--out", str(out), "--parameters", str(params)]) == 0
    assert verdicts(load_catalog([out]), load_fixture("storage-hardened")) == {"allowed-locations": "Compliant"}


def test_disabled_default_is_reported_and_imported_only_when_asked(tmp_path, capsys):
    src = write(tmp_path / "in", "pna.json", DISABLED)
    out = tmp_path / "out"
    assert main(["import-policy", str(src), "--out", str(out)]) == 1
    printed = capsys.readouterr().out
    assert "refused   Storage accounts should disable public network access" in printed and "Disabled" in printed
    assert not out.exists()
    assert main(["import-policy", str(src), "--out", str(out), "--enable-disabled"]) == 0
    control = yaml.safe_load((out / "storage-accounts-should-disable-public-network-access.yaml").read_text())
    assert "parameters" not in control  # the effect parameter is not a control parameter
    resource = load_fixture("storage-hardened")
    resource["properties"]["publicNetworkAccess"] = "Enabled"
    assert verdicts(load_catalog([out]), resource) == {"storage-accounts-should-disable-public-network-access":
                                                       "NonCompliant"}
    assert main(["import-policy", str(src), "--out", str(tmp_path / "o2"), "-p", "effect=Audit"]) == 0


def test_many_files_report_every_refusal_and_one_bad_file_stops_nothing(tmp_path, capsys):
    folder = tmp_path / "in"
    write(folder, "a-locations.json", ALLOWED_LOCATIONS)
    write(folder, "b-disabled.json", DISABLED)
    (folder / "c-broken.json").write_text("{not json")
    write(folder, "d-no-rule.json", {"properties": {"displayName": "Half a definition"}})
    (folder / "sub").mkdir()
    (folder / "sub" / "e-secure.json").write_text((POLICIES / "storage-secure-transfer.json").read_text())
    out = tmp_path / "out"
    code = main(["import-policy", str(folder), "--out", str(out)])
    printed = capsys.readouterr()
    assert code == 2  # an unusable input (not JSON), reported, and the others still converted
    assert "c-broken.json: not valid JSON" in printed.err
    lines = printed.out.strip().splitlines()
    assert lines[-1] == "imported 2 of 4 definitions (1 judged out of the box, 1 templates judged once parameters are given, 2 refused)"
    refused = [line for line in lines if line.startswith("refused")]
    assert len(refused) == 2 and any("d-no-rule.json" in r and "no properties.policyRule" in r for r in refused)
    assert (out / "secure-transfer-to-storage-accounts-should-be-enabled.yaml").exists()
    (folder / "c-broken.json").unlink()
    assert main(["import-policy", str(folder), "--out", str(out), "--check"]) == 1  # some refused


def test_definition_without_display_name_gets_its_name_not_none(tmp_path):
    definition = json.loads((POLICIES / "storage-secure-transfer.json").read_text())
    del definition["properties"]["displayName"]
    control = control_from_definition(definition, where="x.json")
    assert control["title"] == "404c3081-a854-4457-ae30-26a93ef643f9"
    assert control["id"] == "404c3081-a854-4457-ae30-26a93ef643f9" and "None" not in control["title"]
    del definition["name"], definition["id"]
    assert control_from_definition(definition, where="dir/secure.json")["id"] == "secure"


def test_array_parameter_default_is_checked_element_by_element(tmp_path):
    definition = {"name": "kt", "properties": {"displayName": "Vaults allow only the chosen SKUs", "mode": "Indexed",
        "parameters": {"skus": {"type": "Array", "allowedValues": ["standard", "premium"],
                                "defaultValue": ["premium"]}},
        "policyRule": {"if": {"allOf": [{"field": "type", "equals": "Microsoft.KeyVault/vaults"},
                                        {"field": "Microsoft.KeyVault/vaults/sku.name",
                                         "notIn": "[parameters('skus')]"}]}, "then": {"effect": "audit"}}}}
    (tmp_path / "c.yaml").write_text(yaml.safe_dump(control_from_definition(definition)))
    vault = load_fixture("keyvault-hardened")
    vault["properties"]["sku"] = {"family": "A", "name": "standard"}
    catalog = load_catalog([tmp_path])
    assert verdicts(catalog, vault) == {"vaults-allow-only-the-chosen-skus": "NonCompliant"}
    from shared.catalog import ControlLoadError

    with pytest.raises(ControlLoadError, match="not one of"):
        load_catalog([tmp_path], parameters={"vaults-allow-only-the-chosen-skus": {"skus": ["premium", "gold"]}})


SITE = "/subscriptions/00000000-0000-0000-0000-000000000001/resourceGroups/rg-web/providers/Microsoft.Web/sites/app1"


@pytest.mark.parametrize("details, related, expected", [
    ({"type": "Microsoft.Web/sites/config", "name": "[concat('we', 'b')]"},
     {"Microsoft.Web/sites/config": [{"name": "web", "properties": {"ftpsState": "FtpsOnly"}}]}, "Compliant"),
    ({"type": "Microsoft.Web/sites/config", "name": "[parameters('configName')]"},
     {"Microsoft.Web/sites/config": [{"name": "web", "properties": {"ftpsState": "AllAllowed"}}]}, "NonCompliant"),
    ({"type": "Microsoft.Web/sites", "name": "[field('name')]"},  # the resource itself, read again
     {"Microsoft.Web/sites": [{"name": "other", "properties": {"ftpsState": "FtpsOnly"}}]}, "NonCompliant"),
    ({"type": "Microsoft.Network/networkWatchers", "resourceGroupName": "NetworkWatcherRG",
      "name": "[concat('NetworkWatcher_', field('location'))]"},
     {"Microsoft.Network/networkWatchers": [{"name": "NetworkWatcher_westeurope", "properties": {"ftpsState": "FtpsOnly"}}]},
     "Compliant"),
    ({"type": "Microsoft.Security/pricings", "existenceScope": "subscription", "name": "AppServices"},
     {"Microsoft.Security/pricings/AppServices": []}, "NonCompliant"),
])
def test_computed_related_name_resource_group_and_scope(details, related, expected):
    definition = {"name": "x", "properties": {"displayName": "Related with a computed name", "mode": "Indexed",
        "parameters": {"configName": {"type": "String", "defaultValue": "web"}},
        "policyRule": {"if": {"field": "type", "equals": "Microsoft.Web/sites"}, "then": {
            "effect": "auditIfNotExists",
            "details": {**details, "existenceCondition": {"field": "Microsoft.Web/sites/config/web.ftpsState",
                                                          "equals": "FtpsOnly"}}}}}}
    from shared.catalog import Catalog, alias_resolver, control_from_document

    doc = control_from_definition(definition)
    if "resourceGroupName" in details:
        assert doc["related"]["scope"] == "resourceGroup" and doc["related"]["resourceGroupName"] == "NetworkWatcherRG"
    control = control_from_document(doc, "x", alias_resolver())
    site = {"id": SITE, "name": "app1", "type": "Microsoft.Web/sites", "location": "westeurope", "properties": {},
            "$related": related}
    [result] = Catalog([control]).evaluate(site)
    assert result.status.value == expected, result
