"""shared.catalog: the built-in catalog, a compliant and a non-compliant case per control, load errors.

Resources are ARM GET shapes from tests/fixtures/resources, varied one property
at a time.
"""
from __future__ import annotations

import copy
import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import yaml

from shared.catalog import (
    BUILTIN_DIR,
    ControlLoadError,
    Status,
    control_files,
    control_from_document,
    alias_resolver,
    load_aliases,
    load_catalog,
)
from shared.domain.events import envelope_from_dict, parse_event

FIXTURES = Path(__file__).with_name("fixtures")
C, NC = Status.COMPLIANT, Status.NONCOMPLIANT
DELETE = object()


def fixture(name: str) -> dict:
    return json.loads((FIXTURES / "resources" / f"{name}.json").read_text(encoding="utf-8"))


def variant(name: str, changes: dict[str, Any] | None = None) -> dict:
    """A copy of a resource fixture with dotted paths set (or removed with DELETE)."""
    resource = copy.deepcopy(fixture(name))
    for path, value in (changes or {}).items():
        *parents, last = path.split(".")
        node = resource
        for key in parents:
            node = node[key]
        if value is DELETE:
            node.pop(last, None)
        else:
            node[last] = value
    return resource


def rule(port=None, ports=(), source=None, sources=(), access="Allow", direction="Inbound", protocol="Tcp",
         name="rule-under-test"):
    """One NSG security rule as ARM returns it: a single port/prefix or the plural list, not both."""
    props: dict[str, Any] = {"provisioningState": "Succeeded", "protocol": protocol, "sourcePortRange": "*"}
    if port is not None:
        props["destinationPortRange"] = port
    if source is not None:
        props["sourceAddressPrefix"] = source
    props.update({"destinationAddressPrefix": "*", "access": access, "priority": 400, "direction": direction,
                  "sourcePortRanges": [], "destinationPortRanges": list(ports),
                  "sourceAddressPrefixes": list(sources), "destinationAddressPrefixes": []})
    return {"name": name, "type": "Microsoft.Network/networkSecurityGroups/securityRules", "properties": props}


def nsg(*rules) -> dict:
    """The locked-down NSG fixture with only the given rules (the default rules stay)."""
    return variant("nsg-hardened", {"properties.securityRules": list(rules)})


@dataclass(frozen=True)
class Case:
    control_id: str
    name: str
    resource: dict
    expected: Status


SSH, RDP, ALL = "nsg-no-ssh-from-internet", "nsg-no-rdp-from-internet", "nsg-no-all-ports-from-internet"

CASES = [
    # storage
    Case("storage-https-only", "https only", fixture("storage-hardened"), C),
    Case("storage-https-only", "http allowed", fixture("storage-weak"), NC),
    Case("storage-https-only", "property missing", variant("storage-hardened",
                                                            {"properties.supportsHttpsTrafficOnly": DELETE}), NC),
    Case("storage-min-tls-1-2", "TLS1_2", fixture("storage-hardened"), C),
    Case("storage-min-tls-1-2", "TLS1_3", variant("storage-hardened", {"properties.minimumTlsVersion": "TLS1_3"}), C),
    Case("storage-min-tls-1-2", "other case", variant("storage-hardened", {"properties.minimumTlsVersion": "tls1_2"}),
         C),
    Case("storage-min-tls-1-2", "TLS1_0", fixture("storage-weak"), NC),
    Case("storage-min-tls-1-2", "TLS1_1", variant("storage-hardened", {"properties.minimumTlsVersion": "TLS1_1"}), NC),
    Case("storage-min-tls-1-2", "property missing (defaults to TLS1_0)",
         variant("storage-hardened", {"properties.minimumTlsVersion": DELETE}), NC),
    Case("storage-network-default-deny", "Deny", fixture("storage-hardened"), C),
    Case("storage-network-default-deny", "Allow", fixture("storage-weak"), NC),
    Case("storage-network-default-deny", "no networkAcls (defaults to Allow)",
         variant("storage-hardened", {"properties.networkAcls": DELETE, "properties.publicNetworkAccess": "Enabled"}),
         NC),
    Case("storage-network-default-deny", "Allow, but public network access disabled",
         variant("storage-hardened", {"properties.networkAcls.defaultAction": "Allow",
                                      "properties.publicNetworkAccess": "Disabled"}), C),
    Case("storage-no-public-blob-access", "disallowed", fixture("storage-hardened"), C),
    Case("storage-no-public-blob-access", "allowed", fixture("storage-weak"), NC),
    Case("storage-no-public-blob-access", "property missing (the secure default)",
         variant("storage-hardened", {"properties.allowBlobPublicAccess": DELETE}), C),
    # key vault
    Case("keyvault-purge-protection", "enabled", fixture("keyvault-hardened"), C),
    Case("keyvault-purge-protection", "never set (ARM omits it)", fixture("keyvault-weak"), NC),
    Case("keyvault-purge-protection", "false",
         variant("keyvault-hardened", {"properties.enablePurgeProtection": False}), NC),
    Case("keyvault-rbac-authorization", "RBAC", fixture("keyvault-hardened"), C),
    Case("keyvault-rbac-authorization", "access policies", fixture("keyvault-weak"), NC),
    Case("keyvault-rbac-authorization", "property missing",
         variant("keyvault-hardened", {"properties.enableRbacAuthorization": DELETE}), NC),
    Case("keyvault-soft-delete", "enabled", fixture("keyvault-hardened"), C),
    Case("keyvault-soft-delete", "disabled", fixture("keyvault-weak"), NC),
    Case("keyvault-soft-delete", "property missing (on by default)",
         variant("keyvault-hardened", {"properties.enableSoftDelete": DELETE}), C),
    # required tags (default tagNames: owner, environment)
    Case("required-tags", "both tags", fixture("storage-hardened"), C),
    Case("required-tags", "tag names in other case",
         variant("storage-hardened", {"tags": {"OWNER": "x", "Environment": "prod"}}), C),
    Case("required-tags", "owner missing", fixture("storage-weak"), NC),
    Case("required-tags", "empty tags", fixture("keyvault-weak"), NC),
    Case("required-tags", "no tags property", variant("storage-hardened", {"tags": DELETE}), NC),
    Case("required-tags", "NSG with both tags", fixture("nsg-hardened"), C),
    # NSG fixtures as a whole
    Case(SSH, "locked NSG", fixture("nsg-hardened"), C),
    Case(SSH, "open NSG", fixture("nsg-open"), NC),
    Case(RDP, "locked NSG", fixture("nsg-hardened"), C),
    Case(RDP, "open NSG", fixture("nsg-open"), NC),
    Case(ALL, "locked NSG", fixture("nsg-hardened"), C),
    Case(ALL, "open NSG", fixture("nsg-open"), NC),
    # NSG, one rule at a time: ports
    Case(SSH, "only default rules", nsg(), C),
    Case(SSH, "no securityRules property", variant("nsg-hardened", {"properties.securityRules": DELETE}), C),
    Case(SSH, "22 from *", nsg(rule(port="22", source="*")), NC),
    Case(SSH, "22 inside 20-30", nsg(rule(port="20-30", source="Internet")), NC),
    Case(SSH, "range starting at 22", nsg(rule(port="22-25", source="Internet")), NC),
    Case(SSH, "range ending at 22", nsg(rule(port="1-22", source="Internet")), NC),
    Case(SSH, "range above 22", nsg(rule(port="23-30", source="Internet")), C),
    Case(SSH, "220-230 is not 22", nsg(rule(port="220-230", source="Internet")), C),
    Case(SSH, "2222 is not 22", nsg(rule(port="2222", source="Internet")), C),
    Case(SSH, "any port", nsg(rule(port="*", source="Internet")), NC),
    Case(SSH, "22 in destinationPortRanges", nsg(rule(ports=["80", "22"], source="*")), NC),
    Case(SSH, "range in destinationPortRanges", nsg(rule(ports=["443", "10-25"], source="*")), NC),
    Case(SSH, "destinationPortRanges without 22", nsg(rule(ports=["80", "443", "8000-8080"], source="*")), C),
    # NSG: sources
    Case(SSH, "source Internet", nsg(rule(port="22", source="Internet")), NC),
    Case(SSH, "source internet, other case", nsg(rule(port="22", source="internet")), NC),
    Case(SSH, "source 0.0.0.0/0", nsg(rule(port="22", source="0.0.0.0/0")), NC),
    Case(SSH, "source ::/0", nsg(rule(port="22", source="::/0")), NC),
    Case(SSH, "source Any", nsg(rule(port="22", source="Any")), NC),
    Case(SSH, "Internet in sourceAddressPrefixes", nsg(rule(port="22", sources=["10.0.0.0/8", "Internet"])), NC),
    Case(SSH, "0.0.0.0/0 in sourceAddressPrefixes", nsg(rule(port="22", sources=["0.0.0.0/0"])), NC),
    Case(SSH, "private sourceAddressPrefixes", nsg(rule(port="22", sources=["10.0.0.0/8", "192.0.2.0/24"])), C),
    Case(SSH, "VirtualNetwork source ignored", nsg(rule(port="22", source="VirtualNetwork")), C),
    Case(SSH, "AzureLoadBalancer source ignored", nsg(rule(port="*", source="AzureLoadBalancer")), C),
    Case(SSH, "single private source", nsg(rule(port="22", source="10.20.0.0/26")), C),
    # NSG: access and direction
    Case(SSH, "Deny rule ignored", nsg(rule(port="22", source="*", access="Deny")), C),
    Case(SSH, "Outbound rule ignored", nsg(rule(port="22", source="*", direction="Outbound")), C),
    Case(SSH, "allow/inbound in lower case", nsg(rule(port="22", source="*", access="allow", direction="inbound")), NC),
    Case(SSH, "one bad rule among good ones",
         nsg(rule(port="443", source="Internet", name="https"), rule(port="22", source="*", name="ssh")), NC),
    Case(RDP, "3389 from Internet", nsg(rule(port="3389", source="Internet")), NC),
    Case(RDP, "3389 inside 3000-4000", nsg(rule(port="3000-4000", source="*")), NC),
    Case(RDP, "3389 in destinationPortRanges", nsg(rule(ports=["3389", "5985-5986"], source="*")), NC),
    Case(RDP, "from 0.0.0.0/0 in sourceAddressPrefixes", nsg(rule(port="3389", sources=["0.0.0.0/0"])), NC),
    Case(RDP, "22 is not RDP", nsg(rule(port="22", source="*")), C),
    Case(RDP, "Deny rule ignored", nsg(rule(port="3389", source="*", access="Deny")), C),
    Case(RDP, "Outbound rule ignored", nsg(rule(port="3389", source="*", direction="Outbound")), C),
    Case(RDP, "VirtualNetwork source ignored", nsg(rule(port="3389", source="VirtualNetwork")), C),
    Case(ALL, "* from *", nsg(rule(port="*", source="*", protocol="*")), NC),
    Case(ALL, "0-65535 from Internet", nsg(rule(port="0-65535", source="Internet")), NC),
    Case(ALL, "1-65535 in destinationPortRanges", nsg(rule(ports=["1-65535"], source="*")), NC),
    Case(ALL, "* from Internet in sourceAddressPrefixes",
         nsg(rule(port="*", sources=["198.51.100.0/24", "Internet"])), NC),
    Case(ALL, "one port only", nsg(rule(port="22", source="*")), C),
    Case(ALL, "wide range but not all", nsg(rule(port="1024-65535", source="*")), C),
    Case(ALL, "* from VirtualNetwork", nsg(rule(port="*", source="VirtualNetwork")), C),
    Case(ALL, "* Deny", nsg(rule(port="*", source="*", access="Deny")), C),
    Case(ALL, "* Outbound", nsg(rule(port="*", source="*", direction="Outbound")), C),
]


def _builtin_ids() -> list[str]:
    return sorted(yaml.safe_load(p.read_text(encoding="utf-8"))["id"] for p in control_files(BUILTIN_DIR))


@pytest.fixture(scope="module")
def catalog():
    return load_catalog()


def verdict(catalog, control_id: str, resource: dict):
    results = {r.control_id: r for r in catalog.evaluate(resource)}
    assert control_id in results, f"{control_id} did not apply to a {resource.get('type')}"
    return results[control_id]


# --------------------------------------------------------------------------- catalog


def test_builtin_catalog_loads(catalog):
    ids = [c.id for c in catalog.controls]
    assert len(ids) >= 10
    assert ids == _builtin_ids()


@pytest.mark.parametrize("path", control_files(BUILTIN_DIR), ids=lambda p: p.name)
def test_every_control_file_validates(path):
    doc = yaml.safe_load(path.read_text(encoding="utf-8"))
    control = control_from_document(doc, str(path), alias_resolver())
    assert control.id == doc["id"]
    assert control.source == str(path)
    assert control.resource_types == frozenset(t.lower() for t in doc["resourceTypes"])


@pytest.mark.parametrize("control_id", _builtin_ids())
def test_every_builtin_control_has_cases(control_id):
    """Cases come from CASES above or from the data files in tests/control_cases/."""
    from tests.control_cases import load_cases

    expected = {case.expected for case in CASES if case.control_id == control_id}
    expected |= {Status(case.expect) for case in load_cases()
                 if case.control_id == control_id and case.expect != "NotApplicable"}
    assert C in expected, f"{control_id} has no compliant case"
    assert NC in expected, f"{control_id} has no non-compliant case"


@pytest.mark.parametrize("case", CASES, ids=[f"{c.control_id}: {c.name}" for c in CASES])
def test_control_case(catalog, case):
    result = verdict(catalog, case.control_id, case.resource)
    assert result.status == case.expected, result.evidence
    if case.expected == NC:
        assert result.evidence, "a non-compliant verdict must carry evidence"
    else:
        assert result.evidence == []


def test_every_case_names_a_builtin_control():
    assert {case.control_id for case in CASES} <= set(_builtin_ids())


# --------------------------------------------------------------------------- evidence


def test_storage_evidence_names_the_deciding_value(catalog):
    result = verdict(catalog, "storage-min-tls-1-2", fixture("storage-weak"))
    assert result.evidence == [{"field": "Microsoft.Storage/storageAccounts/minimumTlsVersion",
                                "path": "properties.minimumTlsVersion", "actual": "TLS1_0", "operator": "notIn",
                                "result": True}]


def test_missing_property_evidence_says_it_is_missing(catalog):
    result = verdict(catalog, "keyvault-purge-protection", fixture("keyvault-weak"))
    assert result.evidence[0]["path"] == "properties.enablePurgeProtection"
    assert result.evidence[0]["actual"] is None


@pytest.mark.parametrize("control_id, rules", [
    (SSH, {1: "allow-legacy-ftp-ssh", 3: "allow-any-temp"}),
    (RDP, {2: "allow-remote-admin", 3: "allow-any-temp"}),
    (ALL, {3: "allow-any-temp"}),
])
def test_nsg_evidence_names_the_offending_rules(catalog, control_id, rules):
    result = verdict(catalog, control_id, fixture("nsg-open"))
    (record,) = result.evidence
    assert record["matchedCount"] == len(rules)
    assert [m["path"] for m in record["matched"]] == [f"properties.securityRules[{i}]" for i in rules]
    assert [m["value"]["name"] for m in record["matched"]] == list(rules.values())


def test_required_tags_evidence_names_the_missing_tags(catalog):
    result = verdict(catalog, "required-tags", fixture("keyvault-weak"))
    assert [m["value"] for m in result.evidence[0]["matched"]] == ["owner", "environment"]


def test_payload_of_a_resource_notification_is_evaluated_as_is(catalog):
    event = json.loads((FIXTURES / "events" / "arn-upsert-storage.eventgrid.json").read_text())
    payload = parse_event(envelope_from_dict(event)).payload
    results = {r.control_id: r.status for r in catalog.evaluate(payload)}
    assert set(results) == _ids_for(catalog, "Microsoft.Storage/storageAccounts")
    assert {k: results[k] for k in ("storage-https-only", "storage-min-tls-1-2", "storage-network-default-deny",
                                    "storage-no-public-blob-access", "required-tags")} == {
        "storage-https-only": C, "storage-min-tls-1-2": NC, "storage-network-default-deny": NC,
        "storage-no-public-blob-access": NC, "required-tags": C,
    }


# --------------------------------------------------------------------------- applicability and parameters


def test_indexed_control_skips_resources_without_location(catalog):
    child = {"id": fixture("storage-hardened")["id"] + "/blobServices/default", "name": "stcontosoprod01/default",
             "type": "Microsoft.Storage/storageAccounts/blobServices", "properties": {}}
    assert catalog.evaluate(child) == []
    everywhere = sorted(c.id for c in catalog.controls if "*" in c.resource_types)
    assert "required-tags" in everywhere
    assert sorted(r.control_id for r in catalog.evaluate({**child, "location": "westeurope"})) == everywhere


def _ids_for(catalog, resource_type: str) -> set[str]:
    return {c.id for c in catalog.controls if resource_type.lower() in c.resource_types or "*" in c.resource_types}


def test_controls_apply_by_type_only(catalog):
    ids = {r.control_id for r in catalog.evaluate(fixture("keyvault-hardened"))}
    assert ids == _ids_for(catalog, "Microsoft.KeyVault/vaults")
    assert {"keyvault-purge-protection", "keyvault-soft-delete", "required-tags"} <= ids
    assert not any(i.startswith(("storage-", "nsg-")) for i in ids)


def test_not_evaluated_lists_the_controls_of_a_type(catalog):
    results = catalog.not_evaluated("Microsoft.KeyVault/vaults", "403 from ARM")
    assert {r.control_id for r in results} == _ids_for(catalog, "Microsoft.KeyVault/vaults")
    assert all(r.status == Status.NOT_EVALUATED and r.reason == "403 from ARM" for r in results)


def test_required_tags_default_parameters(catalog):
    assert catalog.by_id()["required-tags"].parameters == {"tagNames": ["owner", "environment"]}


def test_required_tags_with_overridden_tag_names():
    catalog = load_catalog(parameters={"required-tags": {"tagNames": ["costCenter"]}})
    assert verdict(catalog, "required-tags", fixture("storage-hardened")).status == C  # has costCenter
    weak = verdict(catalog, "required-tags", fixture("storage-weak"))  # has 'environment' only
    assert weak.status == NC
    assert [m["value"] for m in weak.evidence[0]["matched"]] == ["costCenter"]


def test_port_parameter_override():
    catalog = load_catalog(parameters={SSH: {"port": 2222}})
    assert verdict(catalog, SSH, nsg(rule(port="2200-2300", source="*"))).status == NC
    assert verdict(catalog, SSH, nsg(rule(port="22", source="*"))).status == C


def test_disabled_controls_are_left_out():
    catalog = load_catalog(disabled=["required-tags", SSH])
    assert {"required-tags", SSH}.isdisjoint(c.id for c in catalog.controls)
    assert len(catalog.controls) == len(_builtin_ids()) - 2


def test_a_rule_failing_on_a_resource_is_not_evaluated(tmp_path):
    write(tmp_path, "name-number.yaml", control("name-number", rule={"value": "[int(field('name'))]", "greater": 0}))
    catalog = load_catalog([tmp_path])
    (result,) = catalog.evaluate(fixture("storage-hardened"))
    assert result.status == Status.NOT_EVALUATED
    assert "rule failed on this resource" in result.reason and "int()" in result.reason


# --------------------------------------------------------------------------- load errors


def control(cid: str = "custom-control", **overrides) -> dict:
    doc = {
        "id": cid,
        "title": "A custom control for the tests",
        "severity": "Medium",
        "resourceTypes": ["Microsoft.Storage/storageAccounts"],
        "remediation": {"text": "Fix it."},
        "rule": {"field": "Microsoft.Storage/storageAccounts/minimumTlsVersion", "notEquals": "TLS1_2"},
    }
    doc.update(overrides)
    return doc


def write(directory: Path, name: str, doc: Any) -> Path:
    path = directory / name
    path.write_text(doc if isinstance(doc, str) else yaml.safe_dump(doc, sort_keys=False), encoding="utf-8")
    return path


def test_a_valid_custom_control_loads(tmp_path):
    write(tmp_path, "custom.yaml", control())
    catalog = load_catalog([tmp_path])
    assert [c.id for c in catalog.controls] == ["custom-control"]
    assert verdict(catalog, "custom-control", fixture("storage-weak")).status == NC


BAD_CONTROLS = {
    # name: (document, words the message must contain besides the file name)
    "severity not allowed": (control("bad-severity", severity="Urgent"), ["control bad-severity", "field 'severity'",
                                                                          "Urgent"]),
    "title missing": ({k: v for k, v in control("no-title").items() if k != "title"},
                      ["control no-title", "'title' is a required property"]),
    "unknown top-level key": (control("extra-key", effect="deny"), ["control extra-key", "effect"]),
    "bad resource type": (control("bad-type", resourceTypes=["storageAccounts"]),
                          ["control bad-type", "field 'resourceTypes/0'"]),
    "bad id": (control("Bad Id"), ["field 'id'"]),
    "id not a string": (control(["a", "list"]), ["field 'id'"]),
    "bad parameter type": (control("bad-param", parameters={"x": {"type": "Number"}}),
                           ["control bad-param", "field 'parameters/x/type'"]),
    "unknown alias": (control("bad-alias", rule={"field": "Microsoft.Storage/storageAccounts/nope", "equals": 1}),
                      ["control bad-alias", "field 'rule'", "Microsoft.Storage/storageAccounts/nope"]),
    "unknown operator": (control("bad-op", rule={"field": "name", "equal": "x"}),
                         ["control bad-op", "field 'rule'", "'equal'"]),
    "unknown parameter in rule": (control("bad-ref", rule={"field": "name", "in": "[parameters('names')]"}),
                                  ["control bad-ref", "field 'rule'", "unknown parameter 'names'"]),
    "parameter without default": (control("no-default", parameters={"names": {"type": "Array"}}),
                                  ["control no-default", "parameter 'names'", "no defaultValue"]),
    "default not allowed": (control("not-allowed", parameters={"v": {"type": "String", "defaultValue": "c",
                                                                     "allowedValues": ["a", "b"]}}),
                            ["control not-allowed", "parameter 'v'", "not one of"]),
    "expression that always fails": (control("always-fails", rule={"value": "[int('abc')]", "equals": 1}),
                                      ["control always-fails", "field 'rule'"]),
    "not a mapping": (["a", "list"], ["one YAML mapping"]),
    "bad YAML": ("id: x\ntitle: [unclosed\n", ["not valid YAML"]),
}


@pytest.mark.parametrize("doc, words", BAD_CONTROLS.values(), ids=BAD_CONTROLS.keys())
def test_load_error_names_file_control_and_field(tmp_path, doc, words):
    path = write(tmp_path, "broken.yaml", doc)
    with pytest.raises(ControlLoadError) as info:
        load_catalog([tmp_path])
    message = str(info.value)
    assert str(path) in message
    for word in words:
        assert word in message


def test_duplicate_id_names_both_files(tmp_path):
    first = write(tmp_path, "a.yaml", control("twin"))
    second = write(tmp_path, "b.yaml", control("twin", title="The same id again"))
    with pytest.raises(ControlLoadError) as info:
        load_catalog([tmp_path])
    message = str(info.value)
    assert str(first) in message and str(second) in message and "'twin'" in message


def test_duplicate_of_a_builtin_id(tmp_path):
    mine = write(tmp_path, "https.yaml", control("storage-https-only"))
    with pytest.raises(ControlLoadError) as info:
        load_catalog([BUILTIN_DIR, tmp_path])
    assert str(mine) in str(info.value)
    assert str(BUILTIN_DIR / "storage" / "storage-https-only.yaml") in str(info.value)


def test_unknown_parameter_override_names_control_and_parameter():
    with pytest.raises(ControlLoadError) as info:
        load_catalog(parameters={"required-tags": {"tagNmes": ["owner"]}})
    message = str(info.value)
    assert str(BUILTIN_DIR / "general" / "required-tags.yaml") in message
    assert "control required-tags" in message and "tagNmes" in message


def test_override_outside_allowed_values(tmp_path):
    write(tmp_path, "c.yaml", control(parameters={"v": {"type": "String", "defaultValue": "a",
                                                        "allowedValues": ["a", "b"]}}))
    with pytest.raises(ControlLoadError, match="parameter 'v' value 'z' is not one of"):
        load_catalog([tmp_path], parameters={"custom-control": {"v": "z"}})


@pytest.mark.parametrize("kwargs", [{"disabled": ["no-such-control"]},
                                    {"parameters": {"no-such-control": {"x": 1}}}], ids=["disabled", "parameters"])
def test_configuration_naming_an_unknown_control(kwargs):
    with pytest.raises(ControlLoadError, match=r"unknown control id\(s\): \['no-such-control'\]"):
        load_catalog(**kwargs)


def test_missing_directory(tmp_path):
    with pytest.raises(ControlLoadError, match="does not exist"):
        load_catalog([tmp_path / "nowhere"])
