"""Which resources an imported definition applies to, case by case against Microsoft's documentation.

Sections cited:
- [APPL] "What is applicability in Azure Policy?" (learn.microsoft.com/azure/governance/policy/concepts/
  policy-applicability): Resource Manager modes, ifNotExists effects, all other effects, the table of
  special cases, and the note on the Microsoft.Resources resource provider.
- [MODE] "Azure Policy definition structure basics", mode: Indexed evaluates only resource types that
  support tags and location.
- [AINE] "Azure Policy definitions auditIfNotExists effect", existenceCondition.

Not applicable means no result at all (not Compliant): the resource is not counted for the policy.
The definitions below are written for these cases (the shapes Microsoft's built-ins use).
"""
from __future__ import annotations

import copy
import json

import pytest
import yaml

from shared.catalog import load_catalog
from shared.policy import applicability_condition, only_type_tests, possible_types
from shared.policy.importing import control_from_definition
from tests.control_cases import load_fixture

STORAGE, DISKS, SITES = "Microsoft.Storage/storageAccounts", "Microsoft.Compute/disks", "Microsoft.Web/sites"


def definition(condition: dict, effect: str = "audit", mode: str = "All", details: dict | None = None) -> dict:
    then = {"effect": effect, **({"details": details} if details else {})}
    return {"name": "case", "properties": {"displayName": "Applicability case", "mode": mode,
                                           "policyRule": {"if": condition, "then": then}}}


def verdict(tmp_path, doc: dict, resource: dict) -> str | None:
    """The imported control's status on ``resource``, or None where it does not apply."""
    control = control_from_definition(doc, where="case.json")
    folder = tmp_path / "controls"
    folder.mkdir(exist_ok=True)
    (folder / "case.yaml").write_text(yaml.safe_dump(control))
    catalog = load_catalog([folder])
    found = {r.control_id: r.status.value for r in catalog.evaluate(resource)}
    return found.get(control["id"])


def resource(rtype: str, **extra) -> dict:
    name = extra.pop("name", "r1")
    return {"id": f"/subscriptions/00000000-0000-0000-0000-000000000001/resourceGroups/rg/providers/{rtype}/{name}",
            "name": name, "type": rtype, "location": "westeurope", "tags": {}, "properties": {}, **extra}


# ---------------------------------------------------------------- all other effects: type, name, kind only


def test_other_conditions_do_not_decide_applicability_only_the_type_does(tmp_path):
    """[APPL] All other policy effects: only type, name and kind conditions are evaluated; others count as true."""
    rule = {"allOf": [{"field": "type", "equals": STORAGE},
                      {"field": "Microsoft.Storage/storageAccounts/supportsHttpsTrafficOnly", "equals": False}]}
    assert verdict(tmp_path, definition(rule), resource(STORAGE, properties={"supportsHttpsTrafficOnly": True})) \
        == "Compliant"
    assert verdict(tmp_path, definition(rule), resource(STORAGE, properties={"supportsHttpsTrafficOnly": False})) \
        == "NonCompliant"
    assert verdict(tmp_path, definition(rule), resource(DISKS)) is None


def test_a_type_test_inside_anyof_branches_names_the_types_and_others_do_not_apply(tmp_path):
    """[APPL] the whole if is evaluated for type conditions, under anyOf too: a storage account is not
    applicable to a managed-disk / virtual-machine rule (before, such a rule became resourceTypes ['*'])."""
    rule = {"anyOf": [
        {"allOf": [{"field": "type", "equals": DISKS},
                   {"field": "Microsoft.Compute/disks/encryption.type", "notIn": ["EncryptionAtRestWithCustomerKey"]}]},
        {"allOf": [{"field": "type", "equals": "Microsoft.Compute/virtualMachines"},
                   {"field": "Microsoft.Compute/virtualMachines/storageProfile.osDisk.managedDisk.id", "exists": False}]}]}
    control = control_from_definition(definition(rule), where="case.json")
    assert sorted(control["resourceTypes"]) == [DISKS, "Microsoft.Compute/virtualMachines"]
    assert verdict(tmp_path, definition(rule), load_fixture("storage-hardened")) is None
    disk = load_fixture("disk-hardened")
    assert verdict(tmp_path, definition(rule), disk) in ("Compliant", "NonCompliant")


def test_kind_counts_beside_type_and_other_conditions(tmp_path):
    """[APPL] table: type, kind and other conditions -> type and kind are considered: a function app is not
    applicable to a rule for web apps only (kind notContains functionapp)."""
    rule = {"allOf": [{"field": "type", "equals": SITES}, {"field": "kind", "notContains": "functionapp"},
                      {"field": "Microsoft.Web/sites/httpsOnly", "equals": False}]}
    function_app = load_fixture("functionapp-weak")
    assert "functionapp" in function_app["kind"].lower()
    assert verdict(tmp_path, definition(rule), function_app) is None
    web_app = load_fixture("webapp-weak")
    web_app["properties"]["httpsOnly"] = False
    assert verdict(tmp_path, definition(rule), web_app) == "NonCompliant"


def test_kind_alone_with_type_does_not_count(tmp_path):
    """[APPL] table: only type and kind conditions -> only the type is considered: the function app applies
    (and, its if being false, is Compliant)."""
    rule = {"allOf": [{"field": "type", "equals": SITES}, {"field": "kind", "notContains": "functionapp"}]}
    assert verdict(tmp_path, definition(rule), load_fixture("functionapp-weak")) == "Compliant"
    assert verdict(tmp_path, definition(rule), load_fixture("webapp-weak")) == "NonCompliant"


def test_name_counts_beside_type_and_other_conditions_but_not_with_type_alone(tmp_path):
    """[APPL] table: type, name and other -> type and name considered; type and name only -> type only."""
    with_other = {"allOf": [{"field": "type", "equals": STORAGE}, {"field": "name", "like": "prod*"},
                            {"field": "tags['owner']", "exists": False}]}
    assert verdict(tmp_path, definition(with_other), resource(STORAGE, name="dev01")) is None
    assert verdict(tmp_path, definition(with_other), resource(STORAGE, name="prod01")) == "NonCompliant"
    type_and_name = {"allOf": [{"field": "type", "equals": STORAGE}, {"field": "name", "like": "prod*"}]}
    assert verdict(tmp_path, definition(type_and_name), resource(STORAGE, name="dev01")) == "Compliant"


@pytest.mark.parametrize("rule", [{"field": "kind", "equals": "StorageV2"}, {"field": "name", "like": "prod*"}],
                         ids=["only kind", "only name"])
def test_only_kind_or_only_name_applies_to_every_resource(tmp_path, rule):
    """[APPL] table: an if of only kind (or only name) conditions applies to all resources."""
    disk = resource(DISKS, name="dev01", kind="Premium")
    assert verdict(tmp_path, definition(rule), disk) == "Compliant"
    assert applicability_condition(rule, "audit") is None


def test_a_negated_other_condition_counts_as_true_where_it_stands(tmp_path):
    """[APPL] other conditions are treated as true, or false when negated: not(tags containsKey) never
    makes a storage account inapplicable."""
    rule = {"allOf": [{"not": {"field": "tags", "containsKey": "application"}}, {"field": "type", "equals": STORAGE}]}
    assert verdict(tmp_path, definition(rule), resource(STORAGE, tags={"application": "x"})) == "Compliant"
    assert verdict(tmp_path, definition(rule), resource(STORAGE)) == "NonCompliant"
    assert verdict(tmp_path, definition(rule), resource(DISKS)) is None


def test_anyof_with_an_other_condition_applies_to_any_type(tmp_path):
    """[APPL] an other condition counts as true, so anyOf[type, other] is true for every resource."""
    rule = {"anyOf": [{"field": "type", "equals": STORAGE}, {"field": "tags['owner']", "exists": False}]}
    assert possible_types(applicability_condition(rule, "audit")) is None
    assert verdict(tmp_path, definition(rule), resource(DISKS, tags={"owner": "a"})) == "Compliant"


def test_allowed_locations_does_not_apply_to_the_type_it_excludes(tmp_path):
    """[APPL] the type condition of the allowed-locations shape (type notEquals b2cDirectories, Indexed) is
    evaluated: a b2cDirectories resource is not applicable, rather than Compliant."""
    rule = {"allOf": [{"field": "location", "notIn": ["westeurope"]}, {"field": "location", "notEquals": "global"},
                      {"field": "type", "notEquals": "Microsoft.AzureActiveDirectory/b2cDirectories"}]}
    doc = definition(rule, mode="Indexed")
    b2c = resource("Microsoft.AzureActiveDirectory/b2cDirectories", location="United States")
    assert verdict(tmp_path, doc, b2c) is None
    assert verdict(tmp_path, doc, resource(STORAGE, location="eastus")) == "NonCompliant"
    assert verdict(tmp_path, doc, resource(STORAGE, location="westeurope")) == "Compliant"


# ---------------------------------------------------------------- ifNotExists effects: the whole if


def test_if_not_exists_applies_where_the_whole_if_is_true(tmp_path):
    """[APPL] ifNotExists policy effects: applicability is the entire if; where it is false the policy is not
    applicable. The SQL-auditing shape (kind notContains analytics) leaves an analytics server out."""
    rule = {"allOf": [{"field": "type", "equals": "Microsoft.Sql/servers"}, {"field": "kind", "notContains": "analytics"}]}
    details = {"type": "Microsoft.Sql/servers/auditingSettings", "name": "default",
               "existenceCondition": {"field": "Microsoft.Sql/auditingSettings.state", "equals": "Enabled"}}
    doc = definition(rule, effect="auditIfNotExists", details=details)
    server = load_fixture("sqlserver-hardened")
    analytics = copy.deepcopy(server)
    analytics["kind"] = "v12.0,analytics"
    analytics["$related"] = {"Microsoft.Sql/servers/auditingSettings": []}
    assert verdict(tmp_path, doc, analytics) is None
    server["kind"] = "v12.0"
    server["$related"] = {"Microsoft.Sql/servers/auditingSettings": []}
    assert verdict(tmp_path, doc, server) == "NonCompliant"
    server["$related"]["Microsoft.Sql/servers/auditingSettings"] = [
        {"id": server["id"] + "/auditingSettings/default", "name": "default",
         "type": "Microsoft.Sql/servers/auditingSettings", "properties": {"state": "Enabled"}}]
    assert verdict(tmp_path, doc, server) == "Compliant"


def test_if_not_exists_other_conditions_decide_applicability_too(tmp_path):
    """[APPL] ifNotExists: unlike the other effects, a property condition in the if decides applicability."""
    rule = {"allOf": [{"field": "type", "equals": STORAGE}, {"field": "tags['audit']", "equals": "yes"}]}
    details = {"type": "Microsoft.Insights/diagnosticSettings",
               "existenceCondition": {"field": "Microsoft.Insights/diagnosticSettings/logs.enabled", "equals": "true"}}
    doc = definition(rule, effect="auditIfNotExists", details=details)
    untagged = resource(STORAGE, **{"$related": {"Microsoft.Insights/diagnosticSettings": []}})
    assert verdict(tmp_path, doc, untagged) is None
    tagged = resource(STORAGE, tags={"audit": "yes"}, **{"$related": {"Microsoft.Insights/diagnosticSettings": []}})
    assert verdict(tmp_path, doc, tagged) == "NonCompliant"


# ---------------------------------------------------------------- mode and resource provider


def test_indexed_mode_does_not_evaluate_types_without_location(tmp_path):
    """[MODE] Indexed: only resource types that support tags and location; routeTables/routes do not."""
    rule = {"allOf": [{"field": "type", "equals": "Microsoft.Network/routeTables/routes"},
                      {"field": "Microsoft.Network/routeTables/routes/nextHopType", "equals": "Internet"}]}
    route = resource("Microsoft.Network/routeTables/routes", properties={"nextHopType": "Internet"})
    del route["location"], route["tags"]
    assert verdict(tmp_path, definition(rule, mode="Indexed"), route) is None
    assert verdict(tmp_path, definition(rule, mode="All"), route) == "NonCompliant"


def test_indexed_mode_leaves_out_resource_groups(tmp_path):
    """[MODE] resource groups and subscriptions need mode All to be evaluated."""
    rule = {"field": "tags['owner']", "exists": False}
    group = load_fixture("resourcegroup-weak")
    group["tags"] = {}
    assert verdict(tmp_path, definition(rule, mode="Indexed"), group) is None
    assert verdict(tmp_path, definition(rule, mode="All"), group) == "NonCompliant"


def test_resources_of_the_microsoft_resources_provider_are_not_evaluated(tmp_path):
    """[APPL] note: Azure Policy does not evaluate Microsoft.Resources types other than subscriptions and
    resource groups (deployments, template specs, ...)."""
    rule = {"field": "tags['owner']", "exists": False}
    deployment = resource("Microsoft.Resources/deployments")
    assert verdict(tmp_path, definition(rule), deployment) is None
    assert verdict(tmp_path, definition(rule), resource(STORAGE)) == "NonCompliant"


# ---------------------------------------------------------------- the pure rewrite


def test_possible_types_unites_anyof_intersects_allof_and_reads_given_parameters():
    a, b = "Microsoft.A/x", "Microsoft.B/y"
    assert possible_types({"anyOf": [{"field": "type", "equals": a}, {"field": "TYPE", "in": [b]}]}) == {
        a.lower(), b.lower()}
    assert possible_types({"allOf": [{"field": "type", "in": [a, b]}, {"field": "type", "equals": b}]}) == {b.lower()}
    assert possible_types({"not": {"field": "type", "equals": a}}) is None
    assert possible_types({"field": "type", "in": "[parameters('types')]"}, {"Types": [a]}) == {a.lower()}
    assert possible_types({"field": "type", "in": "[parameters('types')]"}) is None  # no value given: any type


def test_the_rewrite_keeps_type_conditions_and_neutralises_the_others():
    rule = {"allOf": [{"field": "type", "equals": STORAGE}, {"not": {"field": "tags", "containsKey": "a"}}]}
    assert applicability_condition(rule, "Deny") == {"field": "type", "equals": STORAGE}  # the rest folds away
    kept = {"allOf": [{"field": "type", "equals": STORAGE}, {"field": "kind", "equals": "BlobStorage"},
                      {"not": {"field": "tags", "containsKey": "a"}}]}
    assert applicability_condition(kept, "Audit") == {"allOf": [kept["allOf"][0], kept["allOf"][1]]}
    assert applicability_condition({"anyOf": [{"field": "type", "equals": STORAGE}, {"field": "tags", "exists": True}]},
                                   "Audit") is None  # anyOf with a condition taken as true: every resource
    assert applicability_condition(rule, "AuditIfNotExists") is rule
    assert only_type_tests({"anyOf": [{"field": "type", "equals": STORAGE}, {"field": "type", "in": [DISKS]}]}) == {
        STORAGE.lower(), DISKS.lower()}
    assert only_type_tests(kept) is None


def test_a_finding_closes_when_its_control_stops_applying(tmp_path):
    """[APPL] a resource that is not applicable has no compliance state: when a SQL server becomes an
    analytics server, the auditing finding on it is resolved, not left open."""
    from datetime import datetime, timezone

    from shared.domain.drift import Evaluation, Transition, apply_evaluation

    rule = {"allOf": [{"field": "type", "equals": "Microsoft.Sql/servers"}, {"field": "kind", "notContains": "analytics"}]}
    details = {"type": "Microsoft.Sql/servers/auditingSettings", "name": "default",
               "existenceCondition": {"field": "Microsoft.Sql/auditingSettings.state", "equals": "Enabled"}}
    control = control_from_definition(definition(rule, effect="auditIfNotExists", details=details), where="case.json")
    (tmp_path / "case.yaml").write_text(yaml.safe_dump(control))
    catalog = load_catalog([tmp_path])
    server = load_fixture("sqlserver-hardened")
    server["kind"] = "v12.0"
    server["$related"] = {"Microsoft.Sql/servers/auditingSettings": []}
    at = datetime(2026, 3, 1, tzinfo=timezone.utc)

    def evaluate(previous, resource, when):
        results = tuple(catalog.evaluate(resource))
        return apply_evaluation(previous, Evaluation(resource["id"], resource["type"], when, "e", when, results),
                                catalog.titles)

    state, transitions = evaluate(None, server, at)
    assert [(t.control_id, t.transition) for t in transitions] == [(control["id"], Transition.NEW)]
    server["kind"] = "v12.0,analytics"
    state, transitions = evaluate(state, server, at.replace(day=2))
    assert [(t.control_id, t.transition) for t in transitions] == [(control["id"], Transition.RESOLVED)]
    assert state.controls[control["id"]].status is None
    assert evaluate(state, server, at.replace(day=3))[1] == []  # and stays closed


# ---------------------------------------------------------------- existenceCondition and field()


def test_field_inside_existence_condition_reads_the_resource_of_the_if(tmp_path):
    """[AINE] "Azure Policy definitions auditIfNotExists effect", existenceCondition: [field()] checks
    equivalence with values of the resource in the if condition. The "Network Watcher should be enabled"
    shape: a watcher must exist in the virtual network's region; one in another region does not count."""
    rule = {"field": "type", "equals": "Microsoft.Network/virtualNetworks"}
    details = {"type": "Microsoft.Network/networkWatchers", "resourceGroupName": "NetworkWatcherRG",
               "existenceCondition": {"field": "location", "equals": "[field('location')]"}}
    doc = definition(rule, effect="auditIfNotExists", details=details)

    def watcher(region: str) -> dict:
        return {"id": f"/subscriptions/00000000-0000-0000-0000-000000000001/resourceGroups/NetworkWatcherRG/providers/"
                      f"Microsoft.Network/networkWatchers/NetworkWatcher_{region}", "name": f"NetworkWatcher_{region}",
                "type": "Microsoft.Network/networkWatchers", "location": region, "properties": {}}

    vnet = resource("Microsoft.Network/virtualNetworks", location="westeurope",
                    **{"$related": {"Microsoft.Network/networkWatchers": [watcher("eastus")]}})
    assert verdict(tmp_path, doc, vnet) == "NonCompliant"  # before: Compliant (the watcher compared with itself)
    vnet["$related"]["Microsoft.Network/networkWatchers"].append(watcher("westeurope"))
    assert verdict(tmp_path, doc, vnet) == "Compliant"
    vnet["location"] = "northeurope"
    assert verdict(tmp_path, doc, vnet) == "NonCompliant"  # one compiled condition per region: not stale


# ---------------------------------------------------------------- child types


def test_a_control_on_a_child_type_is_judged_on_the_parents_inline_children(tmp_path):
    """A definition on networkSecurityGroups/securityRules (the RDP built-in's shape): Event Grid events on a
    rule re-read the network security group, so the control is judged on its inline securityRules: the NSG
    is NonCompliant naming the rule, Compliant when no rule matches; a child on its own is judged too."""
    rules = "Microsoft.Network/networkSecurityGroups/securityRules"
    rule = {"allOf": [{"field": "type", "equals": rules},
                      {"field": f"{rules}/access", "equals": "Allow"}, {"field": f"{rules}/direction", "equals": "Inbound"},
                      {"field": f"{rules}/destinationPortRange", "equals": "3389"}]}
    nsg = load_fixture("nsg-hardened")
    assert all(r["type"] == rules for r in nsg["properties"]["securityRules"])
    assert verdict(tmp_path, definition(rule), nsg) == "Compliant"
    rdp = {"id": nsg["id"] + "/securityRules/allow-rdp", "name": "allow-rdp", "type": rules,
           "properties": {"access": "Allow", "direction": "Inbound", "destinationPortRange": "3389", "priority": 100}}
    nsg["properties"]["securityRules"].append(rdp)
    control = control_from_definition(definition(rule), where="case.json")
    (tmp_path / "own").mkdir()
    (tmp_path / "own" / "c.yaml").write_text(yaml.safe_dump(control))
    result = next(r for r in load_catalog([tmp_path / "own"]).evaluate(nsg) if r.control_id == control["id"])
    assert result.status.value == "NonCompliant" and result.evidence[0]["child"] == rdp["id"]
    assert verdict(tmp_path, definition(rule), rdp) == "NonCompliant"  # the child itself, as evaluate gets it
    nsg["properties"]["securityRules"] = []
    assert verdict(tmp_path, definition(rule), nsg) is None  # no child: not applicable


def test_an_event_on_a_child_rule_finds_the_child_type_control_on_the_parent(tmp_path):
    """Through the service: an ARM write on a security rule re-reads its network security group, and the
    child-type control opens a finding on the NSG naming the rule; removing the rule resolves it."""
    from shared.adapters.memory import InMemoryStateStore, MemorySink, StaticResourceReader
    from shared.domain.events import envelope_from_dict, parse_event
    from shared.service.changes import Dependencies, handle_change

    rules = "Microsoft.Network/networkSecurityGroups/securityRules"
    rule = {"allOf": [{"field": "type", "equals": rules}, {"field": f"{rules}/access", "equals": "Allow"},
                      {"field": f"{rules}/destinationPortRange", "equals": "3389"}]}
    control = control_from_definition(definition(rule), where="case.json")
    (tmp_path / "c.yaml").write_text(yaml.safe_dump(control))
    nsg = load_fixture("nsg-hardened")
    rdp = {"id": nsg["id"] + "/securityRules/allow-rdp", "name": "allow-rdp", "type": rules,
           "properties": {"access": "Allow", "direction": "Inbound", "destinationPortRange": "3389"}}
    opened = copy.deepcopy(nsg)
    opened["properties"]["securityRules"].append(rdp)
    reader = StaticResourceReader([opened])
    deps = Dependencies(catalog=load_catalog([tmp_path]), reader=reader, store=InMemoryStateStore(), sink=MemorySink())

    def event(event_id: str, time: str):
        return parse_event(envelope_from_dict({
            "id": event_id, "topic": "/subscriptions/" + rdp["id"].split("/")[2], "subject": rdp["id"],
            "eventType": "Microsoft.Resources.ResourceWriteSuccess", "eventTime": time, "dataVersion": "2",
            "data": {"resourceUri": rdp["id"], "operationName": f"{rules}/write", "correlationId": "c"}}))

    findings = handle_change(event("e1", "2026-04-01T08:00:00Z"), deps).findings
    assert [(f["Transition"], f["ControlId"], f["ResourceId"]) for f in findings] == [
        ("New", control["id"], nsg["id"])]
    assert rdp["id"] in json.dumps(findings[0]["Evidence"])
    reader.put(nsg)  # the rule is gone again
    findings = handle_change(event("e2", "2026-04-01T08:05:00Z"), deps).findings
    assert [(f["Transition"], f["ControlId"]) for f in findings] == [("Resolved", control["id"])]
