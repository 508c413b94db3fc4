"""Azure Policy assignments and exemptions evaluated offline: scope, notScopes, parameters, overrides,
resource selectors, non-compliance messages, exemptions, and the ids Azure Policy's states carry.

Sections cited:
- [ASSIGN] "Azure Policy assignment structure" (learn.microsoft.com/azure/governance/policy/concepts/
  assignment-structure): scope, excluded scopes (notScopes), parameters, enforcement mode, overrides,
  resource selectors, non-compliance messages.
- [EXEMPT] "Azure Policy exemption structure" (concepts/exemption-structure): scope, policy assignment
  id, policy definition reference ids, exemption category, expiration, resource selectors.
"""
from __future__ import annotations

import copy
import json
from datetime import datetime, timedelta, timezone
from pathlib import Path

import pytest

from shared.catalog import alias_resolver
from shared.cli import main
from shared.domain.assignments import AssignmentError, assignments_in, exemptions_in
from shared.policy.importing import PolicyLibrary, assigned_catalog, evaluate_assigned
from shared.cli.inputs import json_documents
from tests.control_cases import load_fixture

POLICIES = Path(__file__).with_name("fixtures") / "policies"
SUB = "7d2f4b1e-3c5a-4e8b-9f60-1a2b3c4d5e6f"
SUB_SCOPE = f"/subscriptions/{SUB}"
SECURE_TRANSFER = "/providers/Microsoft.Authorization/policyDefinitions/404c3081-a854-4457-ae30-26a93ef643f9"
CORP_SET = "/providers/Microsoft.Management/managementGroups/corp/providers/Microsoft.Authorization/policySetDefinitions/corp-baseline"
NOW = datetime(2026, 6, 1, tzinfo=timezone.utc)


def assignment(name: str = "secure-transfer", definition: str = SECURE_TRANSFER, scope: str = SUB_SCOPE,
               **props) -> dict:
    """An assignment as ARM returns it (GET .../policyAssignments/{name})."""
    return {"id": f"{scope}/providers/Microsoft.Authorization/policyAssignments/{name}", "name": name,
            "type": "Microsoft.Authorization/policyAssignments",
            "properties": {"displayName": name, "policyDefinitionId": definition, "scope": scope, **props}}


@pytest.fixture(scope="module")
def library() -> PolicyLibrary:
    lib = PolicyLibrary()
    docs, unusable = json_documents([str(POLICIES)])
    assert unusable == [] and lib.add_documents(docs) == []
    return lib


def rows_for(library, assignments: list[dict], resources: list[dict], exemptions: list[dict] = (), now=NOW):
    parsed = [a for doc in assignments for a in assignments_in(doc, "test")]
    assigned = assigned_catalog(parsed, library, resolver=alias_resolver())
    found = [e for doc in exemptions for e in exemptions_in(doc, "test")]
    return assigned, [row for r in resources for row in evaluate_assigned(assigned, r, now=now, exemptions=found)]


def weak_storage() -> dict:
    return load_fixture("storage-weak")  # supportsHttpsTrafficOnly false, in SUB / rg-legacy


def verdicts(rows) -> dict[tuple[str, str | None], str]:
    return {(r["resourceId"].rsplit("/", 1)[-1], r.get("policyDefinitionReferenceId")): r["status"] for r in rows}


# ---------------------------------------------------------------- the documents


def test_the_three_shapes_of_an_assignment_read_alike():
    """ARM's GET, `az policy assignment list` (properties flattened) and an ARM template resource."""
    rest = assignment(notScopes=[f"{SUB_SCOPE}/resourceGroups/rg-x"], parameters={"effect": {"value": "Audit"}})
    az = {"id": rest["id"], "name": rest["name"], **rest["properties"]}
    template = {"type": "Microsoft.Authorization/policyAssignments", "apiVersion": "2022-06-01", "name": "secure-transfer",
                "properties": {k: v for k, v in rest["properties"].items() if k != "scope"}}
    a, b = assignments_in([rest], "rest.json")[0], assignments_in(az, "az.json")[0]
    c = assignments_in(template, "alz.json")[0]
    for got in (a, b, c):
        assert got.policy_definition_id == SECURE_TRANSFER and got.parameters == {"effect": "Audit"}
        assert got.not_scopes == (f"{SUB_SCOPE}/resourceGroups/rg-x",)
    assert a.scope == b.scope == SUB_SCOPE and c.scope is None  # a template is deployed somewhere: no scope


@pytest.mark.parametrize("doc, message", [
    ({"properties": {"displayName": "x"}}, "needs properties.policyDefinitionId"),
    (assignment(parameters={"effect": "Audit"}), "parameter 'effect' must be {\"value\": ...}"),
    (assignment(overrides=[{"kind": "definitionVersion", "value": "1.*.*"}]), "only kind policyEffect"),
    (assignment(resourceSelectors=[{"name": "x", "selectors": [{"kind": "resourceLocation"}]}]),
     "exactly one of 'in' and 'notIn'"),
    ({"type": "Microsoft.Authorization/policyDefinitions", "properties": {"policyDefinitionId": "x"}}, "is not"),
], ids=["no definition", "bare parameter", "unknown override", "selector without values", "wrong type"])
def test_an_unusable_assignment_is_refused_naming_the_file_and_the_field(doc, message):
    with pytest.raises(AssignmentError, match="^bad.json") as info:
        assignments_in(doc, "bad.json")
    assert message in str(info.value)


# ---------------------------------------------------------------- which resources an assignment reaches


def test_scope_and_not_scopes(library):
    """[ASSIGN] scope: the resources at or below it; excluded scopes (notScopes): none at or below them."""
    storage = weak_storage()
    other = copy.deepcopy(storage)
    other["id"] = other["id"].replace(SUB, "11111111-1111-1111-1111-111111111111")
    _, rows = rows_for(library, [assignment()], [storage, other])
    assert [r["resourceId"] for r in rows] == [storage["id"]]
    assert rows[0]["status"] == "NonCompliant" and rows[0]["policyAssignmentId"].endswith("/secure-transfer")
    group = storage["id"].split("/providers/")[0]
    _, rows = rows_for(library, [assignment(notScopes=[group.upper()])], [storage])
    assert rows == []  # ids compare case-insensitively


def test_resource_selectors_select_by_location_and_type(library):
    """[ASSIGN] resource selectors: a resource is evaluated when every selector of one resource selector
    holds (resourceLocation, resourceType; in or notIn)."""
    storage = weak_storage()
    location = storage["location"]
    only_here = assignment(resourceSelectors=[{"name": "here", "selectors": [
        {"kind": "resourceLocation", "in": [location.upper()]},
        {"kind": "resourceType", "in": ["Microsoft.Storage/storageAccounts"]}]}])
    assert len(rows_for(library, [only_here], [storage])[1]) == 1
    elsewhere = assignment(resourceSelectors=[{"name": "not-here", "selectors": [
        {"kind": "resourceLocation", "notIn": [location]}]}])
    assert rows_for(library, [elsewhere], [storage])[1] == []
    either = assignment(resourceSelectors=[
        {"name": "a", "selectors": [{"kind": "resourceLocation", "in": ["nowhere"]}]},
        {"name": "b", "selectors": [{"kind": "resourceType", "notIn": ["Microsoft.Compute/disks"]}]}])
    assert len(rows_for(library, [either], [storage])[1]) == 1  # one resource selector is enough


def test_a_management_group_assignment_is_taken_to_reach_what_is_given_offline(library):
    """[ASSIGN] scope: a management-group assignment reaches everything below it; offline the hierarchy is
    unknown, so every resource given is evaluated (the CLI says so)."""
    mg = assignment(scope="/providers/Microsoft.Management/managementGroups/corp")
    assert len(rows_for(library, [mg], [weak_storage()])[1]) == 1


# ---------------------------------------------------------------- parameters, effects, messages


def test_parameters_of_the_assignment_decide_the_verdict(library):
    """[ASSIGN] parameters: the require-a-tag definition checks the tag the assignment names."""
    storage = weak_storage()
    storage["tags"] = {"owner": "a"}
    tag = "/providers/Microsoft.Authorization/policyDefinitions/corp-require-tag"
    owner = assignment("tag-owner", tag, parameters={"tagName": {"value": "owner"}})
    cost = assignment("tag-cost", tag, parameters={"tagName": {"value": "costCenter"}})
    _, rows = rows_for(library, [owner, cost], [storage])
    assert {r["policyAssignmentName"]: r["status"] for r in rows} == {"tag-owner": "Compliant",
                                                                     "tag-cost": "NonCompliant"}


def test_do_not_enforce_still_reports_compliance(library):
    """[ASSIGN] enforcement mode: DoNotEnforce does not enforce the effect, and compliance is still reported."""
    _, rows = rows_for(library, [assignment(enforcementMode="DoNotEnforce")], [weak_storage()])
    assert [(r["status"], r["enforcementMode"]) for r in rows] == [("NonCompliant", "DoNotEnforce")]


def test_a_policy_set_gives_one_row_per_member_with_the_ids_of_azure_policy_states(library):
    """[ASSIGN] policy definition id of a set: each member is evaluated; results carry the set, the member
    definition and its policyDefinitionReferenceId. A member that cannot be found is listed once."""
    corp = assignment("corp", CORP_SET, scope="/providers/Microsoft.Management/managementGroups/corp",
                      parameters={"costCenterTag": {"value": "costCenter"}},
                      nonComplianceMessages=[{"message": "Corp baseline"},
                                             {"message": "Turn on secure transfer", "policyDefinitionReferenceId": "secureTransfer"}])
    assigned, rows = rows_for(library, [corp], [weak_storage(), load_fixture("keyvault-weak")])
    by_member = {(r["resourceId"].rsplit("/", 1)[-1], r["policyDefinitionReferenceId"]): r for r in rows}
    transfer = by_member[("stlegacyshare02", "secureTransfer")]
    assert transfer["policySetDefinitionId"] == CORP_SET and transfer["policyDefinitionId"] == SECURE_TRANSFER
    assert transfer["status"] == "NonCompliant" and transfer["nonComplianceMessage"] == "Turn on secure transfer"
    purge = [r for r in rows if r["policyDefinitionReferenceId"] == "kvPurge"]
    assert len(purge) == 1 and purge[0]["nonComplianceMessage"] == "Corp baseline"  # the message without a reference
    assert all(r["policyDefinitionReferenceId"] != "vmBackup" for r in rows)
    assert [p for p in assigned.problems if "vmBackup" in p] == [
        "assignment corp: /providers/Microsoft.Authorization/policyDefinitions/013e242c-8828-4970-87b3-ab247555486d "
        "(reference vmBackup): member definition /providers/Microsoft.Authorization/policyDefinitions/"
        "013e242c-8828-4970-87b3-ab247555486d is not available offline (give --definitions DIR, or --from-arm in Azure)"]


def test_an_override_to_disabled_removes_the_member_and_another_effect_keeps_it(library):
    """[ASSIGN] overrides: kind policyEffect with policyDefinitionReferenceId selectors; Disabled evaluates nothing."""
    params = {"costCenterTag": {"value": "costCenter"}}
    off = assignment("corp", CORP_SET, parameters=params, overrides=[
        {"kind": "policyEffect", "value": "Disabled",
         "selectors": [{"kind": "policyDefinitionReferenceId", "in": ["secureTransfer"]}]}])
    assigned, rows = rows_for(library, [off], [weak_storage()])
    refs = {r["policyDefinitionReferenceId"] for r in rows}
    assert "secureTransfer" not in refs and "costCenter" in refs
    assert any("(reference secureTransfer): effect Disabled" in d for d in assigned.disabled)
    # the set's own parameter switched the member off; an override to Audit brings it back
    params_off = {**params, "secureTransferEffect": {"value": "Disabled"}}
    assert "secureTransfer" not in {r["policyDefinitionReferenceId"]
                                    for r in rows_for(library, [assignment("c2", CORP_SET, parameters=params_off)],
                                                      [weak_storage()])[1]}
    back = assignment("c3", CORP_SET, parameters=params_off, overrides=[
        {"kind": "policyEffect", "value": "Audit",
         "selectors": [{"kind": "policyDefinitionReferenceId", "in": ["secureTransfer"]}]}])
    assert verdicts(rows_for(library, [back], [weak_storage()])[1])[("stlegacyshare02", "secureTransfer")] \
        == "NonCompliant"


def test_a_set_member_without_a_parameter_value_is_listed_not_guessed(library):
    """A parameter with no value in the assignment and no default: the member is not evaluated, and says why."""
    assigned, rows = rows_for(library, [assignment("corp", CORP_SET)], [weak_storage()])
    assert "costCenter" not in {r["policyDefinitionReferenceId"] for r in rows}
    assert any("(reference costCenter)" in p and "costCenterTag" in p for p in assigned.problems)


def test_assignments_with_the_same_values_share_one_compiled_control(library):
    """The same definition with the same parameter values is converted and compiled once."""
    a, b = assignment("one"), assignment("two", scope=f"{SUB_SCOPE}/resourceGroups/rg-legacy")
    assigned, rows = rows_for(library, [a, b], [weak_storage()])
    rules = {id(c.rule) for c in assigned.catalog.controls}
    assert len(assigned.catalog.controls) == 2 and len(rules) == 1
    assert sorted(r["policyAssignmentName"] for r in rows) == ["one", "two"]


# ---------------------------------------------------------------- exemptions


def exemption(name: str, scope: str, assignment_id: str, **props) -> dict:
    return {"id": f"{scope}/providers/Microsoft.Authorization/policyExemptions/{name}", "name": name,
            "properties": {"policyAssignmentId": assignment_id, "exemptionCategory": "Waiver", **props}}


def test_an_exemption_makes_the_result_exempt_with_its_id_until_it_expires(library):
    """[EXEMPT] scope (inherited below it), policyAssignmentId, expiresOn, exemptionCategory."""
    a = assignment()
    storage = weak_storage()
    group = storage["id"].split("/providers/")[0]
    waiver = exemption("legacy", group, a["id"], expiresOn=(NOW + timedelta(days=30)).isoformat())
    _, rows = rows_for(library, [a], [storage], [waiver])
    assert [(r["status"], r["exemptionId"], r["exemptionCategory"]) for r in rows] == [
        ("Exempt", waiver["id"], "Waiver")]
    _, rows = rows_for(library, [a], [storage], [waiver], now=NOW + timedelta(days=31))
    assert [r["status"] for r in rows] == ["NonCompliant"] and "exemptionId" not in rows[0]  # expired: reopens
    other = exemption("other", group, a["id"].replace("secure-transfer", "something-else"))
    assert [r["status"] for r in rows_for(library, [a], [storage], [other])[1]] == ["NonCompliant"]


def test_an_exemption_of_some_members_only(library):
    """[EXEMPT] policyDefinitionReferenceIds: only the members named are exempt."""
    corp = assignment("corp", CORP_SET, parameters={"costCenterTag": {"value": "costCenter"}})
    storage = weak_storage()
    partial = exemption("transfer", SUB_SCOPE, corp["id"], exemptionCategory="Mitigated",
                        policyDefinitionReferenceIds=["secureTransfer"])
    got = verdicts(rows_for(library, [corp], [storage], [partial])[1])
    assert got[("stlegacyshare02", "secureTransfer")] == "Exempt"
    assert got[("stlegacyshare02", "costCenter")] != "Exempt"


def test_an_unusable_exemption_is_refused_naming_it():
    with pytest.raises(AssignmentError, match="exemptionCategory must be Waiver or Mitigated"):
        exemptions_in(exemption("x", SUB_SCOPE, "/a", exemptionCategory="Forever"), "ex.json")
    with pytest.raises(AssignmentError, match="expiresOn 'soon'"):
        exemptions_in(exemption("x", SUB_SCOPE, "/a", expiresOn="soon"), "ex.json")


# ---------------------------------------------------------------- the command


def test_evaluate_assignments_from_the_command_line(tmp_path, capsys):
    corp = assignment("corp", CORP_SET, scope="/providers/Microsoft.Management/managementGroups/corp",
                      parameters={"costCenterTag": {"value": "costCenter"}})
    (tmp_path / "assignments").mkdir()
    (tmp_path / "assignments" / "corp.json").write_text(json.dumps({"value": [corp, assignment()]}))
    (tmp_path / "storage.json").write_text(json.dumps(weak_storage()))
    waiver = exemption("w", SUB_SCOPE, assignment()["id"])
    (tmp_path / "exemptions.json").write_text(json.dumps([waiver]))
    code = main(["evaluate", "--format", "json", "--assignments", str(tmp_path / "assignments"),
                 "--definitions", str(POLICIES), "--exemptions", str(tmp_path / "exemptions.json"),
                 str(tmp_path / "storage.json")])
    out, err = capsys.readouterr()
    rows = json.loads(out)
    assert code == 1  # something is non-compliant
    assert {(r["policyAssignmentName"], r.get("policyDefinitionReferenceId"), r["status"]) for r in rows} == {
        ("corp", "secureTransfer", "NonCompliant"), ("corp", "costCenter", "NonCompliant"),
        ("secure-transfer", None, "Exempt")}
    assert err.count("vmBackup") == 1 and "not evaluated: assignment corp" in err
    assert "management group scope" in err


def test_evaluate_assignments_refuses_a_bad_assignment_file(tmp_path, capsys):
    (tmp_path / "a.json").write_text(json.dumps({"properties": {}}))
    (tmp_path / "r.json").write_text(json.dumps(weak_storage()))
    assert main(["evaluate", "--assignments", str(tmp_path / "a.json"), str(tmp_path / "r.json")]) == 2
    assert "a.json: an assignment needs properties.policyDefinitionId" in capsys.readouterr().err


def test_the_definition_version_evaluated_is_said(library):
    """[ASSIGN] policy definition ID and version: results say which version was evaluated, and an
    assignment asking for another major version is told which one it got."""
    assigned, rows = rows_for(library, [assignment(definitionVersion="1.*.*")], [weak_storage()])
    assert rows[0]["policyDefinitionVersion"] == "2.0.0"
    assert assigned.notes == ["assignment secure-transfer: asks for definitionVersion 1.*.*; the definition given "
                              "is version 2.0.0, which is what is evaluated"]
    assert rows_for(library, [assignment(definitionVersion="2.*.*")], [weak_storage()])[0].notes == []
