"""Controls that take Azure Policy's own verdict (data-plane definitions), from import to the Event Grid path.

Event shapes follow https://learn.microsoft.com/azure/event-grid/event-schema-policy (Azure Policy as an Event
Grid source); the states query, https://learn.microsoft.com/rest/api/policy/policy-states/list-query-results-for-resource.
"""
from __future__ import annotations

import copy
import json
from datetime import datetime, timezone
from pathlib import Path

import pytest
from azure.mgmt.resource.resources import ResourceManagementClient

from shared.adapters.arm import ArmResourceReader
from shared.adapters.memory import InMemoryStateStore, MemorySink, StaticResourceReader
from shared.cli import main
from shared.catalog import Catalog, RelatedSpec, Status, alias_resolver, control_from_document
from shared.domain.events import EventRejected, envelope_from_dict, parse_event
from shared.policy.importing import DELEGATED, REFUSED, convert_definition
from shared.domain.policy_states import POLICY_STATES_TYPE, overlay, verdict
from shared.service.ports import ResourceAccessDenied
from shared.domain.resource_ids import parse_resource_id
from shared.service.changes import Dependencies, handle_change
from tests.support.local_azure import LocalAzure

SUB = "3b8e5f21-6c4d-4a9e-8b17-0d2c4e6f8a13"
VAULT_ID = f"/subscriptions/{SUB}/resourceGroups/rg-sec/providers/Microsoft.KeyVault/vaults/kv-shop"
AKS_ID = f"/subscriptions/{SUB}/resourceGroups/rg-aks/providers/Microsoft.ContainerService/managedClusters/aks-shop"
GUID = "0a075868-4c26-42ef-914c-5bc007359560"
DEFINITION_ID = f"/providers/Microsoft.Authorization/policyDefinitions/{GUID}"
ASSIGNMENT = f"/subscriptions/{SUB}/providers/Microsoft.Authorization/policyAssignments/mcsb"
OTHER_ASSIGNMENT = f"/subscriptions/{SUB}/providers/Microsoft.Authorization/policyAssignments/cis"

# The shape of a built-in Microsoft.KeyVault.Data definition ("Certificates should have the specified
# maximum validity period"): the rule reads data-plane aliases no ARM read or event carries.
KV_DATA = {
    "id": DEFINITION_ID, "name": GUID, "type": "Microsoft.Authorization/policyDefinitions",
    "properties": {
        "displayName": "Certificates should have the specified maximum validity period",
        "policyType": "BuiltIn", "mode": "Microsoft.KeyVault.Data",
        "parameters": {
            "maximumValidityInMonths": {"type": "Integer", "defaultValue": 12},
            "effect": {"type": "String", "allowedValues": ["audit", "Audit", "deny", "Deny", "disabled", "Disabled"],
                       "defaultValue": "Audit"}},
        "policyRule": {
            "if": {"allOf": [
                {"field": "type", "equals": "Microsoft.KeyVault.Data/vaults/certificates"},
                {"field": "Microsoft.KeyVault.Data/vaults/certificates/properties.validityInMonths",
                 "greater": "[parameters('maximumValidityInMonths')]"}]},
            "then": {"effect": "[parameters('effect')]"}}}}
K8S_DATA = {
    "id": "/providers/Microsoft.Authorization/policyDefinitions/95edb821-ddaf-4404-9732-666045e056b4",
    "name": "95edb821-ddaf-4404-9732-666045e056b4",
    "properties": {
        "displayName": "Kubernetes cluster should not allow privileged containers",
        "mode": "Microsoft.Kubernetes.Data",
        "parameters": {"effect": {"type": "String", "allowedValues": ["audit", "Audit", "deny", "Deny", "disabled",
                                                                       "Disabled"], "defaultValue": "Audit"},
                       "excludedNamespaces": {"type": "Array"}},
        "policyRule": {
            "if": {"field": "type", "in": ["Microsoft.Kubernetes/connectedClusters",
                                           "Microsoft.ContainerService/managedClusters"]},
            "then": {"effect": "[parameters('effect')]",
                     "details": {"templateInfo": {"sourceType": "PublicURL", "url": "https://example.invalid/t.yaml"},
                                 "excludedNamespaces": "[parameters('excludedNamespaces')]"}}}}}
VAULT = {"id": VAULT_ID, "name": "kv-shop", "type": "Microsoft.KeyVault/vaults", "location": "westeurope",
         "tags": {"owner": "sec-team"}, "properties": {"tenantId": "9a8b7c6d-0000-4000-8000-00000000000a",
                                                       "sku": {"family": "A", "name": "standard"}}}


def state(compliance, assignment=ASSIGNMENT, definition=DEFINITION_ID, timestamp="2026-05-04T10:00:00.1234567Z", **extra):
    return {"policyAssignmentId": assignment, "policyDefinitionId": definition, "complianceState": compliance,
            "timestamp": timestamp, "resourceId": VAULT_ID, **extra}


def policy_event(event_id, compliance, subject=VAULT_ID, etype="PolicyStateChanged", cloud=False,
                 timestamp="2026-05-04T10:05:00.4496956Z", **data_overrides):
    """As the Event Grid docs show an Azure Policy event (ids lower-case, empty strings where there is nothing)."""
    data = {"timestamp": timestamp, "policyAssignmentId": ASSIGNMENT.lower(), "policyDefinitionId": DEFINITION_ID.lower(),
            "policyDefinitionReferenceId": "", "complianceState": compliance, "subscriptionId": SUB,
            "complianceReasonCode": ""}
    data.update(data_overrides)
    if cloud:
        return {"specversion": "1.0", "id": event_id, "source": f"/subscriptions/{SUB}", "subject": subject,
                "type": f"Microsoft.PolicyInsights.{etype}", "time": timestamp, "data": data}
    return {"id": event_id, "topic": f"/subscriptions/{SUB}", "subject": subject,
            "eventType": f"Microsoft.PolicyInsights.{etype}", "eventTime": "2026-05-04T10:05:01.5241536Z",
            "data": data, "dataVersion": "1", "metadataVersion": "1"}


def delegated_control(definition=KV_DATA):
    outcome = convert_definition(definition, resolver=alias_resolver(), origin="kv.json")
    assert outcome.status == DELEGATED, outcome.reason
    return control_from_document(outcome.control, "kv.json", alias_resolver())


# ----------------------------------------------------------------------------- the verdict, pure


def test_any_noncompliant_assignment_makes_the_control_noncompliant():
    status, evidence, reason = verdict([state("Compliant"), state("NonCompliant", OTHER_ASSIGNMENT)], DEFINITION_ID)
    assert (status, reason) == ("NonCompliant", None)
    assert {e["azurePolicy"]["policyAssignmentId"]: e["azurePolicy"]["complianceState"] for e in evidence} == {
        ASSIGNMENT: "Compliant", OTHER_ASSIGNMENT: "NonCompliant"}


def test_compliant_only_when_every_assignment_says_so_and_ids_compare_case_insensitively():
    assert verdict([state("Compliant", definition=DEFINITION_ID.lower())], DEFINITION_ID)[0] == "Compliant"
    assert verdict([{"policyDefinitionId": DEFINITION_ID, "isCompliant": False}], DEFINITION_ID)[0] == "NonCompliant"


def test_no_state_or_another_state_is_not_evaluated_with_the_reason():
    status, _, reason = verdict([state("NonCompliant", definition="/providers/Microsoft.Authorization/"
                                                                   "policyDefinitions/other")], DEFINITION_ID)
    assert status == "NotEvaluated" and "not assigned" in reason
    status, evidence, reason = verdict([state("Compliant"), state("Exempt", OTHER_ASSIGNMENT)], DEFINITION_ID)
    assert status == "NotEvaluated" and "Exempt" in reason and len(evidence) == 2


def test_an_event_state_replaces_an_older_record_and_a_deleted_state_drops_it():
    old = state("Compliant", timestamp="2026-05-04T10:00:00Z")
    other = state("Compliant", OTHER_ASSIGNMENT)
    newer = dict(old, complianceState="NonCompliant", timestamp="2026-05-04T10:05:00.4496956Z",
                 policyAssignmentId=ASSIGNMENT.lower(), policyDefinitionId=DEFINITION_ID.lower())
    merged = overlay([old, other], newer)
    assert sorted(r["complianceState"] for r in merged) == ["Compliant", "NonCompliant"] and len(merged) == 2
    stale = dict(newer, timestamp="2026-05-04T09:00:00Z")
    assert overlay([old, other], stale) == [old, other]
    assert overlay([old, other], newer, deleted=True) == [other]


# ----------------------------------------------------------------------------- import


def test_a_key_vault_data_plane_definition_imports_as_a_control_taking_azure_policys_verdict():
    outcome = convert_definition(KV_DATA, resolver=alias_resolver(), origin="kv.json")
    assert outcome.status == DELEGATED
    doc = outcome.control
    assert doc["resourceTypes"] == ["Microsoft.KeyVault/vaults"]
    assert doc["policyDefinitionId"] == DEFINITION_ID
    assert doc["related"]["type"] == POLICY_STATES_TYPE and doc["related"]["mode"] == "azurePolicyState"
    assert "parameters" not in doc  # Azure evaluates with the assignment's values, not ours


def test_kubernetes_definitions_cover_both_cluster_types_and_mutate_stays_refused():
    outcome = convert_definition(K8S_DATA, resolver=alias_resolver(), origin="k8s.json")
    assert outcome.status == DELEGATED
    assert outcome.control["resourceTypes"] == ["Microsoft.Kubernetes/connectedClusters",
                                                "Microsoft.ContainerService/managedClusters"]
    mutate = copy.deepcopy(K8S_DATA)
    mutate["properties"]["parameters"]["effect"] = {"type": "String", "allowedValues": ["Mutate", "Disabled"],
                                                     "defaultValue": "Mutate"}
    refused = convert_definition(mutate, resolver=alias_resolver(), origin="m.json")
    assert refused.status == REFUSED and "mutate" in refused.reason
    disabled = copy.deepcopy(K8S_DATA)
    disabled["properties"]["parameters"]["effect"]["defaultValue"] = "Disabled"
    assert convert_definition(disabled, resolver=alias_resolver(), origin="d.json").status == REFUSED
    assert convert_definition(disabled, resolver=alias_resolver(), origin="d.json", enable_disabled=True).status == DELEGATED


def test_a_delegated_control_without_a_definition_id_is_a_load_error():
    doc = dict(convert_definition(KV_DATA, resolver=alias_resolver()).control)
    doc.pop("policyDefinitionId")
    with pytest.raises(Exception, match="azurePolicyState takes the verdict"):
        control_from_document(doc, "x.yaml", alias_resolver())


def test_import_policy_cli_reports_delegated_definitions(tmp_path, capsys):
    path = tmp_path / "defs.json"
    path.write_text(json.dumps([KV_DATA, K8S_DATA]), encoding="utf-8")
    assert main(["import-policy", str(path), "--out", str(tmp_path / "out")]) == 0
    out, err = capsys.readouterr()
    assert out.strip().splitlines()[-1] == "imported 2 of 2 definitions (0 judged out of the box, 0 templates judged once parameters are given, 2 delegated to Azure Policy, 0 refused)"
    assert "enablePolicyStateEvents" in err
    assert len(list((tmp_path / "out").glob("*.yaml"))) == 2


# ----------------------------------------------------------------------------- offline evaluation


def test_offline_the_states_come_with_the_resource_and_without_them_it_is_not_evaluated():
    catalog = Catalog([delegated_control()])
    bare = catalog.evaluate(VAULT)
    assert bare[0].status == Status.NOT_EVALUATED and "$related" in bare[0].reason
    weak = dict(VAULT, **{"$related": {POLICY_STATES_TYPE: [state("NonCompliant")]}})
    result = catalog.evaluate(weak)[0]
    assert result.status == Status.NONCOMPLIANT
    assert result.evidence[0]["azurePolicy"]["complianceState"] == "NonCompliant"
    fine = dict(VAULT, **{"$related": {POLICY_STATES_TYPE: [state("Compliant")]}})
    assert catalog.evaluate(fine)[0].status == Status.COMPLIANT


def test_builtin_data_plane_definitions_of_the_kit_all_import_as_delegated():
    root = Path(__file__).resolve().parents[2] / "shared" / "data" / "azure-policy-builtins"
    if not root.is_dir():
        pytest.skip("needs ../shared/data (Microsoft's built-in definitions)")
    found = []
    for path in sorted(root.glob("*/*.json")):
        doc = json.loads(path.read_text(encoding="utf-8"))
        if str(doc.get("properties", {}).get("mode", "")).lower().endswith(".data"):
            found.append(convert_definition(doc, resolver=alias_resolver(), origin=str(path), enable_disabled=True))
    refused = [o for o in found if o.status != DELEGATED]
    assert len(found) == 104
    assert all("mutate" in o.reason for o in refused) and len(refused) == 19


# ----------------------------------------------------------------------------- events


@pytest.mark.parametrize("cloud", [False, True])
def test_a_policy_state_event_as_documented_becomes_a_change_of_the_resource(cloud):
    change = parse_event(envelope_from_dict(policy_event("5829794FCB5075FCF585476619577B5A5A30E52C84842CBD4E2AD73996714C4C",
                                                         "NonCompliant", cloud=cloud)),
                         now=datetime(2026, 5, 4, 11, tzinfo=timezone.utc))
    assert change.kind == "policyState" and change.resource.value == VAULT_ID
    assert change.policy_state["complianceState"] == "NonCompliant"
    assert "policyDefinitionReferenceId" not in change.policy_state  # empty in the event: nothing
    assert change.event_time == datetime(2026, 5, 4, 10, 5, 0, 449695, tzinfo=timezone.utc)  # data.timestamp
    assert not change.is_resource_deleted and not change.policy_state_deleted
    deleted = parse_event(envelope_from_dict(policy_event("d1", "NonCompliant", etype="PolicyStateDeleted")))
    assert deleted.policy_state_deleted


@pytest.mark.parametrize("overrides, words", [
    ({"policyDefinitionId": "/subscriptions/x/resourceGroups/rg"}, "policyDefinitionId is not a policy definition"),
    ({"policyDefinitionId": None}, "policyDefinitionId is not a policy definition"),
    ({"policyAssignmentId": "nope"}, "policyAssignmentId is not a policy assignment"),
    ({"complianceState": "Non\u202eCompliant"}, "complianceState must be a state name"),
    ({"complianceState": 7}, "must be a string"),
    ({"timestamp": "yesterday"}, "not ISO-8601"),
    ({"policyDefinitionId": DEFINITION_ID + "x" * 2000}, "at most 1024"),
])
def test_a_hostile_policy_state_event_is_rejected_naming_the_field(overrides, words):
    with pytest.raises(EventRejected, match=words):
        parse_event(envelope_from_dict(policy_event("h1", "NonCompliant", **overrides)))


def test_a_policy_state_event_for_a_resource_outside_its_topic_is_rejected():
    event = policy_event("h2", "NonCompliant", subject=VAULT_ID.replace(SUB, "00000000-0000-0000-0000-000000000001"))
    with pytest.raises(EventRejected, match="not the scope"):
        parse_event(envelope_from_dict(event))


# ----------------------------------------------------------------------------- the service, in memory


def deps_with(states, controls=None):
    vault = dict(VAULT, **{"$related": {POLICY_STATES_TYPE: states}})
    return Dependencies(catalog=Catalog(controls if controls is not None else [delegated_control()]),
                        reader=StaticResourceReader([vault]), store=InMemoryStateStore(), sink=MemorySink())


def deliver(deps, event):
    return handle_change(parse_event(envelope_from_dict(event), now=datetime(2026, 5, 4, 11, tzinfo=timezone.utc)), deps)


def test_a_state_event_drifts_and_resolves_the_control_even_before_the_query_shows_it():
    deps = deps_with([state("Compliant", timestamp="2026-05-04T09:00:00Z")])
    first = deliver(deps, policy_event("p0", "Compliant", timestamp="2026-05-04T09:00:00Z"))
    assert [r.status for r in first.results] == [Status.COMPLIANT] and not first.findings
    drift = deliver(deps, policy_event("p1", "NonCompliant"))  # the query still says Compliant (older)
    assert [(f["Transition"], f["ControlId"]) for f in drift.findings] == [
        ("Drifted", "certificates-should-have-the-specified-maximum-validity-period")]
    back = deliver(deps, policy_event("p2", "Compliant", timestamp="2026-05-04T10:20:00Z"))
    assert [f["Transition"] for f in back.findings] == ["Resolved"]


def test_a_state_event_no_control_takes_is_acknowledged_without_a_read():
    deps = deps_with([], controls=[])
    outcome = deliver(deps, policy_event("p3", "NonCompliant"))
    assert outcome.skipped and deps.reader.reads == 0
    deps = deps_with([])
    outcome = deliver(deps, policy_event("p4", "NonCompliant", policyDefinitionId=DEFINITION_ID[:-4] + "ffff"))
    assert "takes Azure Policy's verdict" in outcome.skipped and deps.reader.reads == 0


# ----------------------------------------------------------------------------- ARM over HTTPS


@pytest.fixture
def local_arm():
    with LocalAzure() as local:
        client = ResourceManagementClient(local.credential(), SUB, base_url=local.url, connection_verify=local.ca_file)
        yield local, ArmResourceReader(lambda sub: client)


def test_policy_states_are_read_from_policy_insights_with_paging(local_arm):
    local, reader = local_arm
    local.policy_states_page = 2
    local.policy_states[VAULT_ID.lower()] = [state("Compliant", f"{ASSIGNMENT}{i}") for i in range(4)] + [
        state("NonCompliant", OTHER_ASSIGNMENT)]
    local.put_resource(VAULT)
    spec = RelatedSpec(POLICY_STATES_TYPE)
    found = reader.related(parse_resource_id(VAULT_ID), VAULT, spec)
    assert len(found) == 5 and found[-1]["complianceState"] == "NonCompliant"
    calls = local.calls("arm", "policyStates/latest/queryResults")
    assert [c.method for c in calls] == ["POST"] * 3
    assert calls[0].query["api-version"] == "2019-10-01" and calls[0].query["$from"].endswith("Z")
    result = Catalog([delegated_control()]).evaluate(VAULT, lambda r, s: reader.related(parse_resource_id(VAULT_ID), r, s))
    assert result[0].status == Status.NONCOMPLIANT


def test_a_refused_states_query_is_access_denied(local_arm):
    local, reader = local_arm
    local.fail_next(1, status=403)
    with pytest.raises(ResourceAccessDenied, match="Azure Policy states"):
        reader.related(parse_resource_id(AKS_ID), {}, RelatedSpec(POLICY_STATES_TYPE))


# ----------------------------------------------------------------------------- end to end, Event Grid handler

from tests.test_end_to_end import pipeline  # noqa: E402,F401 - the Event Grid pipeline fixture (Azurite, local Azure)


def test_a_data_plane_definition_evaluates_end_to_end_through_the_event_grid_handler(pipeline, tmp_path, monkeypatch):
    """Import, CONTROLS_PATH, then Azure Policy's state events: findings that drift and resolve."""
    from shared import bootstrap

    defs = tmp_path / "kv.json"
    defs.write_text(json.dumps(KV_DATA), encoding="utf-8")
    out = tmp_path / "controls"
    assert main(["import-policy", str(defs), "--out", str(out), "--prefix", "ap-"]) == 0
    monkeypatch.setenv("CONTROLS_PATH", str(out))
    bootstrap.override(None)
    local = pipeline
    local.put_resource(VAULT)
    control = "ap-certificates-should-have-the-specified-maximum-validity-period"
    local.policy_states[VAULT_ID.lower()] = [state("NonCompliant", timestamp="2026-05-04T10:05:00.4496956Z")]
    local.deliver(policy_event("ps-1", "NonCompliant"))
    mine = [(r["Transition"], r["Status"]) for r in local.ingested if r["ControlId"] == control]
    assert mine == [("New", "NonCompliant")]
    assert local.calls("arm", "policyStates/latest/queryResults")
    local.policy_states[VAULT_ID.lower()] = [state("Compliant", timestamp="2026-05-04T10:30:00Z")]
    local.deliver(policy_event("ps-2", "Compliant", timestamp="2026-05-04T10:30:00Z", cloud=True))
    mine = [(r["Transition"], r["Status"]) for r in local.ingested if r["ControlId"] == control]
    assert mine == [("New", "NonCompliant"), ("Resolved", "Compliant")]
