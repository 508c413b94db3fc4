"""Azure Policy assignments, exemptions, definitions and sets read from ARM with the real SDK client over
HTTPS (the local ARM endpoint), then evaluated as Azure Policy would: a management-group assignment
reaches the subscription below it, an exemption at a resource group covers what is in it.

[ASSIGN-LIST] "Policy Assignments - List" (REST, Microsoft.Authorization): without a filter, the list of a
subscription includes the assignments that apply to it directly, from management groups containing it,
and on objects inside it. The same holds for "Policy Exemptions - List".
"""
from __future__ import annotations

import copy
import json
from datetime import datetime, timezone
from pathlib import Path

import pytest
from azure.mgmt.resource.resources import ResourceManagementClient

from shared.adapters.arm import ArmPolicyAssignments, ArmPolicyDefinitions
from shared.catalog import alias_resolver
from shared.domain.assignments import subscription_policy
from shared.policy.importing import PolicyLibrary, assigned_catalog, evaluate_assigned
from shared.service.ports import ResourceAccessDenied
from tests.control_cases import load_fixture
from tests.support.local_azure import LocalAzure

SCOPE = ["https://management.azure.com/.default"]
POLICIES = Path(__file__).with_name("fixtures") / "policies"
SUB = "7d2f4b1e-3c5a-4e8b-9f60-1a2b3c4d5e6f"  # the storage fixtures' subscription
OTHER = "11111111-1111-1111-1111-111111111111"
MG = "/providers/Microsoft.Management/managementGroups/corp"
AUTH = "/providers/Microsoft.Authorization"


@pytest.fixture
def local():
    with LocalAzure() as server:
        server.providers["Microsoft.Authorization"] = {
            t: ["2023-04-01", "2022-07-01-preview"]
            for t in ("policyAssignments", "policyExemptions", "policyDefinitions", "policySetDefinitions")}
        yield server


def client(local) -> ResourceManagementClient:
    return ResourceManagementClient(local.credential(), SUB, base_url=local.url, credential_scopes=SCOPE,
                                    connection_verify=local.ca_file)


def assignment(scope: str, name: str, definition: str, **props) -> dict:
    return {"id": f"{scope}{AUTH}/policyAssignments/{name}", "name": name, "type": "Microsoft.Authorization/policyAssignments",
            "properties": {"policyDefinitionId": definition, "scope": scope, **props}}


def seed(local) -> None:
    corp_set = json.loads((POLICIES / "initiative-corp-baseline.json").read_text())
    local.put_resource(corp_set)
    for name in ("storage-secure-transfer.json", "require-tag.json"):
        doc = json.loads((POLICIES / name).read_text())
        doc.setdefault("id", f"{AUTH}/policyDefinitions/{doc['name']}")
        local.put_resource({**doc, "type": "Microsoft.Authorization/policyDefinitions"})
    for doc in json.loads((POLICIES / "keyvault-definitions.json").read_text())["value"]:
        doc.setdefault("id", f"/subscriptions/00000000-0000-0000-0000-000000000000{AUTH}/policyDefinitions/{doc['name']}")
        local.put_resource({**doc, "type": "Microsoft.Authorization/policyDefinitions"})
    local.put_resource(assignment(MG, "corp", corp_set["id"], parameters={"costCenterTag": {"value": "costCenter"}}))
    local.put_resource(assignment(f"/subscriptions/{SUB}", "transfer",
                                  f"{AUTH}/policyDefinitions/404c3081-a854-4457-ae30-26a93ef643f9"))
    local.put_resource(assignment(f"/subscriptions/{OTHER}", "elsewhere",
                                  f"{AUTH}/policyDefinitions/404c3081-a854-4457-ae30-26a93ef643f9"))
    group = f"/subscriptions/{SUB}/resourceGroups/rg-legacy"
    local.put_resource({"id": f"{group}{AUTH}/policyExemptions/legacy-transfer", "name": "legacy-transfer",
                        "type": "Microsoft.Authorization/policyExemptions",
                        "properties": {"policyAssignmentId": f"/subscriptions/{SUB}{AUTH}/policyAssignments/transfer",
                                       "exemptionCategory": "Mitigated"}})
    local.management_groups[SUB] = ["corp"]


def test_a_subscriptions_assignments_and_exemptions_come_from_arm_with_what_it_inherits(local):
    """[ASSIGN-LIST] one paged list per subscription: its own, its groups', and its management groups'."""
    seed(local)
    source = ArmPolicyAssignments(client(local))
    listed = subscription_policy(SUB, source.assignments(SUB), source.exemptions(SUB))
    assert sorted(a.name for a in listed.assignments) == ["corp", "transfer"]  # not the other subscription's
    assert [e.id.rsplit("/", 1)[-1] for e in listed.exemptions] == ["legacy-transfer"]
    assert listed.management_groups == {"corp"} and listed.problems == ()
    assert local.calls("arm", "policyAssignments")[0].query["api-version"] == ArmPolicyAssignments.ASSIGNMENTS_API


def test_what_arm_lists_is_evaluated_with_definitions_read_from_arm(local):
    seed(local)
    arm = client(local)
    source = ArmPolicyAssignments(arm)
    listed = subscription_policy(SUB, source.assignments(SUB), source.exemptions(SUB))
    library = PolicyLibrary(remote=ArmPolicyDefinitions(arm))
    assigned = assigned_catalog(listed.assignments, library, resolver=alias_resolver())
    storage = load_fixture("storage-weak")  # in SUB / rg-legacy, no HTTPS-only, no costCenter tag
    rows = evaluate_assigned(assigned, storage, now=datetime(2026, 6, 1, tzinfo=timezone.utc),
                             exemptions=listed.exemptions, ancestors=listed.ancestors)
    got = {(r["policyAssignmentName"], r.get("policyDefinitionReferenceId")): (r["status"], r.get("exemptionId"))
           for r in rows}
    assert got[("corp", "secureTransfer")] == ("NonCompliant", None)  # the management group's reaches it
    assert got[("corp", "costCenter")] == ("NonCompliant", None)
    assert got[("transfer", None)][0] == "Exempt"  # the resource group's exemption covers it
    assert [p for p in assigned.problems if "vmBackup" in p]  # not in ARM either: listed, not dropped
    before = len(local.calls("arm", "policyDefinitions"))
    assigned_catalog(listed.assignments, library, resolver=alias_resolver())
    assert len(local.calls("arm", "policyDefinitions")) - before == 1  # found once, kept; only the missing one again
    other = copy.deepcopy(storage)
    other["id"] = other["id"].replace(SUB, OTHER)
    assert evaluate_assigned(assigned, other, now=datetime(2026, 6, 1, tzinfo=timezone.utc),
                             ancestors=listed.ancestors) == []  # the listing knows SUB's groups only: OTHER is not below corp


def test_an_unreadable_assignment_is_named_and_the_rest_kept(local):
    seed(local)
    local.put_resource({"id": f"/subscriptions/{SUB}{AUTH}/policyAssignments/broken", "name": "broken",
                        "properties": {"displayName": "no definition"}})
    source = ArmPolicyAssignments(client(local))
    listed = subscription_policy(SUB, source.assignments(SUB), [])
    assert sorted(a.name for a in listed.assignments) == ["corp", "transfer"]
    assert len(listed.problems) == 1 and "policyAssignments/broken" in listed.problems[0]


def test_a_refused_listing_raises_access_denied(local):
    seed(local)
    local.fail_next(1, status=403)
    with pytest.raises(ResourceAccessDenied):
        ArmPolicyAssignments(client(local)).assignments(SUB)
