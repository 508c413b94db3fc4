"""``python -m shared import-policy``: Azure Policy definitions become controls with the same verdicts."""
from __future__ import annotations

import json
from pathlib import Path

import pytest
import yaml

from shared.cli import main
from shared.controls import BUILTIN_DIR, load_catalog
from shared.policy_import import PolicyImportError, control_from_definition
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


def test_unsupported_effect_is_refused_naming_the_file(tmp_path, capsys):
    assert imported(tmp_path, "modify-tags.json") == 2
    err = capsys.readouterr().err
    assert "modify-tags.json" in err and "effect 'modify' cannot be monitored" in err
    assert list(tmp_path.iterdir()) == []  # nothing half-written


def test_unknown_alias_is_refused_naming_control_and_alias(tmp_path, capsys):
    definition = {"properties": {"displayName": "Odd setting", "policyRule": {
        "if": {"allOf": [{"field": "type", "equals": "Microsoft.Storage/storageAccounts"},
                         {"field": "Microsoft.Storage/storageAccounts/noSuchSetting", "equals": True}]},
        "then": {"effect": "audit"}}}}
    path = tmp_path / "odd.json"
    path.write_text(json.dumps(definition))
    out = tmp_path / "out"
    assert main(["import-policy", str(path), "--out", str(out)]) == 2
    err = capsys.readouterr().err
    assert "odd-setting" in err and "noSuchSetting" in err


@pytest.mark.parametrize("definition, words", [
    ({"properties": {"displayName": "x"}}, "no properties.policyRule"),
    ({"properties": {"displayName": "No effect", "policyRule": {"if": {"field": "type", "equals": "a/b"},
                                                                 "then": {}}}}, "effect is missing"),
    ({"properties": {"displayName": "Dyn", "policyRule": {
        "if": {"field": "type", "equals": "Microsoft.Web/sites"},
        "then": {"effect": "auditIfNotExists", "details": {"type": "Microsoft.Web/sites/config",
                                                          "name": "[field('name')]"}}}}}, "constant name"),
])
def test_definition_errors_say_what_is_wrong(definition, words):
    with pytest.raises(PolicyImportError, match=words):
        control_from_definition(definition, where="def.json")
