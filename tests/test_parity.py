"""Parity with Azure Policy: the monitor's verdicts beside Azure Policy's latest policy states.

[STATES] "Policy States - List Query Results For Subscription" (REST, Microsoft.PolicyInsights,
         2019-10-01): POST .../policyStates/latest/queryResults returns {"@odata.context", "@odata.count",
         "value": [...]} where each record has timestamp, resourceId, policyAssignmentId,
         policyDefinitionId, isCompliant, complianceState, policySetDefinitionId and
         policyDefinitionReferenceId (empty outside a set), paged by @odata.nextLink.
[SCAN]   "Get compliance data of Azure resources", Evaluation triggers: a standard compliance scan
         runs every 24 hours; a change is evaluated some minutes after it: a state can be older than
         the resource's last change.
"""
from __future__ import annotations

import copy
import json
from datetime import datetime, timedelta, timezone

import pytest

from shared.cli import main
from shared.domain.parity import (AGREE, AZURE_OLDER, DISAGREE, ONLY_AZURE, ONLY_MONITOR, StatesError, Verdict,
                                  azure_states, compare)
from tests.control_cases import load_fixture
from tests.test_assignments import POLICIES, SECURE_TRANSFER, SUB, SUB_SCOPE, assignment

T = datetime(2026, 6, 1, 8, 0, tzinfo=timezone.utc)
ASSIGNED = f"{SUB_SCOPE}/providers/Microsoft.Authorization/policyAssignments/secure-transfer"


def state(resource_id: str, compliance: str, timestamp: datetime = T, assignment_id: str = ASSIGNED,
          definition: str = SECURE_TRANSFER, set_id: str = "", reference: str = "") -> dict:
    """One record as [STATES] documents it (fields of the example response)."""
    return {"@odata.id": None, "@odata.context": "https://management.azure.com/providers/Microsoft.PolicyInsights/"
                                                 "policyStates/$metadata#latest/$entity",
            "timestamp": timestamp.isoformat().replace("+00:00", "Z"), "resourceId": resource_id,
            "policyAssignmentId": assignment_id, "policyDefinitionId": definition,
            "effectiveParameters": "", "isCompliant": compliance == "Compliant", "subscriptionId": SUB,
            "resourceType": "/Microsoft.Storage/storageAccounts", "resourceLocation": "westeurope",
            "resourceGroup": "rg-legacy", "resourceTags": "tbd", "policyAssignmentName": "secure-transfer",
            "policyAssignmentOwner": "tbd", "policyAssignmentParameters": "{}", "policyAssignmentScope": SUB_SCOPE,
            "policyDefinitionName": definition.rsplit("/", 1)[-1], "policyDefinitionAction": "audit",
            "policyDefinitionCategory": "tbd", "policySetDefinitionId": set_id, "policySetDefinitionName": "",
            "policySetDefinitionOwner": "", "policySetDefinitionCategory": "", "policySetDefinitionParameters": "",
            "managementGroupIds": "", "policyDefinitionReferenceId": reference, "complianceState": compliance,
            "policyDefinitionGroupNames": [""], "policyDefinitionVersion": "2.0.0"}


def response(*records) -> dict:
    return {"@odata.context": "https://management.azure.com/providers/Microsoft.PolicyInsights/policyStates/"
                              "$metadata#latest", "@odata.count": len(records), "value": list(records)}


def verdict(resource_id: str, status: str, changed_at: datetime | None = None, **kw) -> Verdict:
    return Verdict(resource_id, kw.get("assignment_id", ASSIGNED), kw.get("definition", SECURE_TRANSFER), status,
                   kw.get("set_id"), kw.get("reference"), "Secure transfer", (), changed_at)


RID = f"{SUB_SCOPE}/resourceGroups/rg-legacy/providers/Microsoft.Storage/storageAccounts/"


@pytest.mark.parametrize("mine, azure, changed, expected", [
    ("NonCompliant", "NonCompliant", None, AGREE),
    ("Compliant", "Compliant", None, AGREE),
    ("Exempt", "Exempt", None, AGREE),
    ("Compliant", "Exempt", None, AGREE),  # an exemption matters only to a non-compliant result
    ("NonCompliant", "Compliant", None, DISAGREE),
    ("NonCompliant", "Compliant", T - timedelta(hours=1), DISAGREE),  # Azure evaluated after the change
    ("NonCompliant", "Compliant", T + timedelta(hours=1), AZURE_OLDER),  # [SCAN] changed after Azure's scan
    ("NonCompliant", None, None, ONLY_MONITOR),
    ("NonCompliant", "Unknown", None, ONLY_MONITOR),  # no decided state in Azure
    (None, "NonCompliant", None, ONLY_AZURE),
    ("NotEvaluated", "Compliant", None, ONLY_AZURE),
])
def test_each_pair_gets_one_outcome(mine, azure, changed, expected):
    verdicts = [verdict(RID + "sa", mine, changed)] if mine else []
    states = azure_states(response(state(RID + "sa", azure)), "states.json") if azure else []
    [comparison] = compare(verdicts, states).comparisons
    assert comparison.outcome == expected


def test_pairs_match_by_resource_assignment_and_reference_whatever_the_case():
    set_id = "/providers/Microsoft.Authorization/policySetDefinitions/mcsb"
    mine = [verdict(RID + "SA", "NonCompliant", set_id=set_id, reference="secureTransfer"),
            verdict(RID + "SA", "Compliant", set_id=set_id, reference="minimumTls")]
    theirs = azure_states([state(RID.lower() + "sa", "NonCompliant", set_id=set_id, reference="SECURETRANSFER"),
                           state(RID + "sa", "Compliant", set_id=set_id, reference="minimumTLS",
                                 assignment_id=ASSIGNED.upper())], "az")
    report = compare(mine, theirs)
    assert [c.outcome for c in report.comparisons] == [AGREE, AGREE]
    assert report.summary() == ("parity: 2 agree, 0 disagree, 0 only monitor, 0 only Azure Policy, 0 Azure older "
                                "(100.0% agreement)")


def test_the_latest_state_of_a_pair_counts():
    theirs = azure_states(response(state(RID + "sa", "Compliant", T - timedelta(days=1)),
                                   state(RID + "sa", "NonCompliant", T)), "states.json")
    [c] = compare([verdict(RID + "sa", "NonCompliant")], theirs).comparisons
    assert (c.outcome, c.azure_status) == (AGREE, "NonCompliant")


@pytest.mark.parametrize("document, message", [
    ({"nothing": []}, "not policy states"),
    (response({"resourceId": RID + "sa", "policyDefinitionId": SECURE_TRANSFER, "complianceState": "Compliant"}),
     "state 1: 'policyAssignmentId' is missing"),
    (response({**state(RID + "sa", "Compliant"), "complianceState": None, "isCompliant": None}),
     "neither 'complianceState' nor 'isCompliant'"),
    (response({**state(RID + "sa", "Compliant"), "timestamp": "yesterday"}), "'timestamp' 'yesterday' is not"),
    (response(state(RID + "sa", "Compliant"), 7), "state 2: not an object"),
])
def test_unusable_states_are_named(document, message):
    with pytest.raises(StatesError, match=message):
        azure_states(document, "states.json")
    problems: list[str] = []
    azure_states(document, "states.json", problems) if isinstance(document.get("value"), list) else None
    assert not isinstance(document.get("value"), list) or any(message.split(":")[-1].strip()[:20] in p
                                                              for p in problems)


# ---------------------------------------------------------------- the command, offline


def write(tmp_path, name, doc):
    path = tmp_path / name
    path.write_text(json.dumps(doc))
    return str(path)


def estate(tmp_path):
    weak = load_fixture("storage-weak")  # supportsHttpsTrafficOnly false
    strong = copy.deepcopy(weak)
    strong["id"] = weak["id"].rsplit("/", 1)[0] + "/ststrong01"
    strong["name"] = "ststrong01"
    strong["properties"]["supportsHttpsTrafficOnly"] = True
    changed = copy.deepcopy(weak)
    changed["id"] = weak["id"].rsplit("/", 1)[0] + "/stchanged01"
    changed["systemData"] = {"lastModifiedAt": (T + timedelta(hours=2)).isoformat()}
    return weak, strong, changed


def test_parity_offline_prints_the_disagreements_with_evidence_and_the_summary(tmp_path, capsys):
    weak, strong, changed = estate(tmp_path)
    other = RID + "stnotgiven"
    states = response(state(weak["id"], "NonCompliant"), state(strong["id"], "NonCompliant"),
                      state(changed["id"], "Compliant"), state(other, "NonCompliant"))
    code = main(["parity", "--states", write(tmp_path, "states.json", states),
                 "--assignments", write(tmp_path, "assignments.json", [assignment()]),
                 "--definitions", str(POLICIES), write(tmp_path, "resources.json", [weak, strong, changed])])
    out = capsys.readouterr().out.splitlines()
    assert code == 1  # ststrong01: the monitor says Compliant, Azure Policy NonCompliant
    assert out[-1] == ("parity: 1 agree, 1 disagree, 0 only monitor, 0 only Azure Policy, 1 Azure older "
                       "(50.0% agreement)")  # the state of a resource not given is left out
    assert out[0] == f"disagree: {strong['id']}"
    assert "monitor Compliant, Azure Policy NonCompliant" in out[2]
    assert any(line.startswith("azureOlder: ") and "stchanged01" in line for line in out)
    assert any("evidence:" in line and "supportsHttpsTrafficOnly" in line for line in out)  # the changed one's


def test_parity_offline_exits_0_when_nothing_disagrees_and_json_gives_every_record(tmp_path, capsys):
    weak, _, _ = estate(tmp_path)
    args = ["--states", write(tmp_path, "states.json", [state(weak["id"], "NonCompliant")]),
            "--assignments", write(tmp_path, "a.json", assignment()), "--definitions", str(POLICIES),
            write(tmp_path, "r.json", weak)]
    assert main(["parity", *args]) == 0
    assert capsys.readouterr().out.splitlines()[-1].startswith("parity: 1 agree, 0 disagree")
    assert main(["parity", "--format", "json", *args]) == 0
    captured = capsys.readouterr()
    [record] = json.loads(captured.out)
    assert (record["Outcome"], record["MonitorStatus"], record["AzureStatus"]) == ("agree", "NonCompliant",
                                                                                   "NonCompliant")
    assert record["PolicyAssignmentId"] == assignment()["id"] and record["SubscriptionId"] == SUB
    assert captured.err.strip().splitlines()[-1].startswith("parity: 1 agree")


@pytest.mark.parametrize("args, message", [
    (["--states", "STATES"], "needs --assignments and the RESOURCES"),
    (["--assignments", "x.json"], "go with --states"),
    (["--states", "BAD", "--assignments", "A", "R"], "state 1: 'policyAssignmentId' is missing"),
])
def test_parity_usage_errors_say_what_is_wrong(tmp_path, capsys, args, message):
    files = {"STATES": write(tmp_path, "s.json", []), "BAD": write(tmp_path, "b.json", [{"resourceId": "x"}]),
             "A": write(tmp_path, "a.json", assignment()), "R": write(tmp_path, "r.json", load_fixture("storage-weak"))}
    assert main(["parity", *[files.get(a, a) for a in args]]) == 2
    err = capsys.readouterr().err
    assert message in err and err.count("\n") == 1
