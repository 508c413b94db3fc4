"""shared.domain.drift and shared.domain.findings: the drift state machine, finding ids, bounded evidence."""
from __future__ import annotations

import json
from dataclasses import replace
from datetime import datetime, timedelta, timezone

import pytest

from shared.catalog import ControlResult, Status
from shared.domain.drift import ControlTransition, Evaluation, ResourceState, Transition, apply_evaluation, changed_controls
from shared.domain.events import Caller, ResourceChange
from shared.domain.findings import MAX_EVIDENCE_CHARS, bounded_evidence, finding_id, finding_record
from shared.domain.resource_ids import parse_resource_id

T0 = datetime(2024, 5, 14, 9, 0, tzinfo=timezone.utc)
RID = ("/subscriptions/7d2f4b1e-3c5a-4e8b-9f60-1a2b3c4d5e6f/resourceGroups/rg-data-prod/providers/"
       "Microsoft.Storage/storageAccounts/stcontosoprod01")
TYPE = "Microsoft.Storage/storageAccounts"
TLS = "storage-min-tls-1-2"
C, NC, NE = Status.COMPLIANT, Status.NONCOMPLIANT, Status.NOT_EVALUATED
DEL = "deleted"
NEW, DRIFTED, RESOLVED, DELETED = Transition.NEW, Transition.DRIFTED, Transition.RESOLVED, Transition.DELETED


def result(control_id: str, status: Status, evidence=(), reason=None) -> ControlResult:
    return ControlResult(control_id, f"title of {control_id}", "High", status, list(evidence), reason)


def observe(previous: ResourceState | None, step: int, results, **facts):
    """Apply one evaluation (``results`` None = the resource is gone) at T0 + step minutes."""
    at = T0 + timedelta(minutes=step)
    evaluation = Evaluation(RID, TYPE, at, f"evt-{step}", at - timedelta(seconds=5),
                            None if results is None else tuple(results), **facts)
    return apply_evaluation(previous, evaluation, titles={TLS: ("Storage accounts require TLS 1.2", "High")})


# Each step is the control's verdict (or DEL); each expectation is
# (transition emitted, stored status after the step, stored version after the step).
SEQUENCES = {
    "first seen compliant": ([C], [(None, C, 1)]),
    "first seen non-compliant": ([NC], [(NEW, NC, 1)]),
    "compliant -> non-compliant": ([C, NC], [(None, C, 1), (DRIFTED, NC, 2)]),
    "non-compliant -> compliant": ([NC, C], [(NEW, NC, 1), (RESOLVED, C, 2)]),
    "compliant twice": ([C, C], [(None, C, 1), (None, C, 1)]),
    "non-compliant twice": ([NC, NC], [(NEW, NC, 1), (None, NC, 1)]),
    "resolved then drifted again": ([NC, C, NC], [(NEW, NC, 1), (RESOLVED, C, 2), (DRIFTED, NC, 3)]),
    "not evaluated keeps compliant": ([C, NE, NC], [(None, C, 1), (None, C, 1), (DRIFTED, NC, 2)]),
    "not evaluated keeps non-compliant": ([NC, NE, NC], [(NEW, NC, 1), (None, NC, 1), (None, NC, 1)]),
    "not evaluated then resolved": ([NC, NE, C], [(NEW, NC, 1), (None, NC, 1), (RESOLVED, C, 2)]),
    "not evaluated first": ([NE, NC], [(None, None, 0), (NEW, NC, 1)]),
    "delete closes an open finding": ([NC, DEL], [(NEW, NC, 1), (DELETED, None, 2)]),
    "delete of a compliant resource": ([C, DEL], [(None, C, 1), (None, None, 2)]),
    "second delete emits nothing": ([NC, DEL, DEL], [(NEW, NC, 1), (DELETED, None, 2), (None, None, 2)]),
    "back after delete starts over": ([NC, DEL, NC], [(NEW, NC, 1), (DELETED, None, 2), (NEW, NC, 3)]),
    "back compliant after delete": ([NC, DEL, C], [(NEW, NC, 1), (DELETED, None, 2), (None, C, 3)]),
    "drift after coming back": ([C, DEL, C, NC], [(None, C, 1), (None, None, 2), (None, C, 3), (DRIFTED, NC, 4)]),
    "delete of a resource never seen": ([DEL], [(None, None, 0)]),
}


@pytest.mark.parametrize("steps, expected", SEQUENCES.values(), ids=SEQUENCES.keys())
def test_sequence(steps, expected):
    state = None
    emitted_versions = []
    for step, (verdict, (transition, status, version)) in enumerate(zip(steps, expected)):
        results = None if verdict == DEL else [result(TLS, verdict, reason="ARM said 503" if verdict == NE else None)]
        state, transitions = observe(state, step, results)

        assert [t.transition for t in transitions] == ([transition] if transition else []), f"step {step}"
        row = state.controls.get(TLS)
        assert (row.status if row else None) == status, f"step {step}"
        assert (row.version if row else 0) == version, f"step {step}"
        assert state.deleted == (verdict == DEL)
        assert state.last_event_id == f"evt-{step}"
        emitted_versions += [t.version for t in transitions]
        for t in transitions:
            assert t.version == version  # the transition is named by the version it creates
    assert emitted_versions == sorted(set(emitted_versions)), "versions only ever increase"


TRANSITION_DETAILS = {
    NEW: ([NC], NC, None),
    DRIFTED: ([C, NC], NC, C),
    RESOLVED: ([NC, C], C, NC),
    DELETED: ([NC, DEL], C, NC),
}


@pytest.mark.parametrize("kind, steps, status, previous", [(k, *v) for k, v in TRANSITION_DETAILS.items()],
                         ids=[k.value for k in TRANSITION_DETAILS])
def test_transition_records_before_and_after(kind, steps, status, previous):
    state, transitions = None, []
    for step, verdict in enumerate(steps):
        state, transitions = observe(state, step, None if verdict == DEL else [result(TLS, verdict)])
    (t,) = transitions
    assert (t.transition, t.status, t.previous_status) == (kind, status, previous)
    assert (t.control_id, t.title, t.severity) == (TLS, "Storage accounts require TLS 1.2" if kind == DELETED
                                                   else f"title of {TLS}", "High")


def test_transition_carries_the_evidence():
    evidence = [{"field": "minimumTlsVersion", "path": "properties.minimumTlsVersion", "actual": "TLS1_0"}]
    state, (t,) = observe(None, 0, [result(TLS, NC, evidence)])
    assert t.evidence == tuple(evidence)
    assert state.controls[TLS].evidence == tuple(evidence)


def test_only_changed_controls_emit_transitions():
    state, _ = observe(None, 0, [result("a-control", C), result("b-control", NC), result("c-control", C)])
    state, transitions = observe(state, 1, [result("a-control", NC), result("b-control", NC), result("c-control", C)])
    assert [(t.control_id, t.transition) for t in transitions] == [("a-control", DRIFTED)]


def test_delete_closes_only_open_findings_and_names_them():
    state, _ = observe(None, 0, [result(TLS, NC), result("other-open", NC), result("fine", C)])
    state, transitions = observe(state, 1, None)
    assert sorted((t.control_id, t.title, t.severity) for t in transitions) == [
        ("other-open", "other-open", "Unknown"),  # no title known: the id stands in
        (TLS, "Storage accounts require TLS 1.2", "High"),
    ]
    assert all(row.status is None for row in state.controls.values())


def test_status_since_is_the_time_of_the_changing_event():
    state, _ = observe(None, 0, [result(TLS, NC)])  # event 5 s before T0
    state, _ = observe(state, 1, [result(TLS, NC)])
    assert state.controls[TLS].since == T0 - timedelta(seconds=5)
    state, _ = observe(state, 2, [result(TLS, C)])
    assert state.controls[TLS].since == T0 + timedelta(minutes=2, seconds=-5)


def test_not_evaluated_keeps_the_reason_until_decided():
    state, _ = observe(None, 0, [result(TLS, C)])
    state, _ = observe(state, 1, [result(TLS, NE, reason="ARM said 503")])
    assert (state.controls[TLS].status, state.controls[TLS].note) == (C, "ARM said 503")
    state, _ = observe(state, 2, [result(TLS, C)])
    assert state.controls[TLS].note is None


def test_resource_facts_are_kept():
    previous = ResourceState(RID, TYPE, etag='W/"1"')
    state, _ = observe(previous, 0, [result(TLS, C)], location="westeurope", tags={"owner": "data"})
    assert (state.location, state.tags, state.etag) == ("westeurope", {"owner": "data"}, 'W/"1"')
    assert state.last_evaluated == T0 and state.last_event_time == T0 - timedelta(seconds=5)
    gone, _ = observe(state, 1, None)
    assert (gone.deleted, gone.location, gone.tags, gone.etag) == (True, "westeurope", {"owner": "data"}, 'W/"1"')


# --------------------------------------------------------------------------- changed_controls


def test_changed_controls_on_first_sight_lists_every_row():
    state, _ = observe(None, 0, [result("a-control", C), result("b-control", NC)])
    assert sorted(changed_controls(None, state)) == ["a-control", "b-control"]


def test_changed_controls_lists_only_rows_that_differ():
    first, _ = observe(None, 0, [result("a-control", C), result("b-control", NC, [{"v": 1}]), result("c-control", C)])
    second, _ = observe(first, 1, [result("a-control", NC), result("b-control", NC, [{"v": 2}]),
                                   result("c-control", C)])
    # a: status changed; b: same status, new evidence (the stored row differs); c: identical
    assert sorted(changed_controls(first, second)) == ["a-control", "b-control"]
    third, _ = observe(second, 2, [result("a-control", NC), result("b-control", NC, [{"v": 2}]),
                                   result("c-control", C)])
    assert changed_controls(second, third) == []


def test_changed_controls_after_a_not_evaluated_note():
    first, _ = observe(None, 0, [result(TLS, C)])
    second, _ = observe(first, 1, [result(TLS, NE, reason="timeout")])
    third, _ = observe(second, 2, [result(TLS, NE, reason="timeout")])
    assert changed_controls(first, second) == [TLS]
    assert changed_controls(second, third) == []


# --------------------------------------------------------------------------- findings


def test_finding_id_is_deterministic():
    a = finding_id(RID.lower(), TLS, "Drifted", 2)
    assert a == finding_id(RID.lower(), TLS, "Drifted", 2)
    assert len(a) == 32 and int(a, 16) >= 0


def test_finding_id_ignores_the_case_of_the_resource_id():
    assert finding_id(RID, TLS, "New", 1) == finding_id(RID.upper(), TLS, "New", 1)


@pytest.mark.parametrize("other", [
    (RID, TLS, "Drifted", 3),  # another version
    (RID, TLS, "New", 2),  # another transition
    (RID, "storage-https-only", "Drifted", 2),  # another control
    (RID.replace("prod01", "prod02"), TLS, "Drifted", 2),  # another resource
], ids=["version", "transition", "control", "resource"])
def test_finding_id_differs(other):
    assert finding_id(*other) != finding_id(RID, TLS, "Drifted", 2)


def test_bounded_evidence_keeps_small_evidence_as_is():
    evidence = [{"field": "x", "actual": 1}, {"field": "y", "actual": "two"}]
    assert bounded_evidence(evidence) == evidence


@pytest.mark.parametrize("limit", [300, 1000, MAX_EVIDENCE_CHARS])
def test_bounded_evidence_stays_under_the_limit_and_says_what_it_left_out(limit):
    evidence = [{"path": f"properties.securityRules[{i}]", "value": {"name": f"rule-{i}", "port": "x" * 40}}
                for i in range(500)]
    kept = bounded_evidence(evidence, limit)

    assert len(json.dumps(kept, separators=(",", ":"))) <= limit
    *items, note = kept
    assert items == evidence[: len(items)]
    assert note == {"truncated": f"{len(evidence) - len(items)} more evidence item(s) left out"}


def test_bounded_evidence_with_one_huge_item():
    kept = bounded_evidence([{"actual": "x" * 50_000}], limit=1000)
    assert kept == [{"truncated": "1 more evidence item(s) left out"}]


def test_bounded_evidence_serialises_odd_values():
    kept = bounded_evidence([{"at": T0}], limit=1000)
    assert kept == [{"at": T0}]


def test_finding_record_names_the_transition():
    state, (t,) = observe(None, 0, [result(TLS, NC, [{"actual": "TLS1_0"}])], location="westeurope",
                          tags={"owner": "data"})
    change = ResourceChange("evt-0", "Microsoft.Resources.ResourceWriteSuccess", "write", parse_resource_id(RID),
                            parse_resource_id(RID), T0, Caller(upn="dana.whitfield@contoso.example"),
                            "Microsoft.Storage/storageAccounts/write", "corr-1")
    record = finding_record(t, state, change, T0 + timedelta(seconds=30))
    assert record["FindingId"] == finding_id(RID, TLS, "New", 1)
    assert (record["Transition"], record["Status"], record["PreviousStatus"]) == ("New", "NonCompliant", "")
    assert (record["Caller"], record["ResourceGroup"], record["Location"]) == (
        "dana.whitfield@contoso.example", "rg-data-prod", "westeurope")
    assert record["ChangeTime"] == "2024-05-14T09:00:00Z"
    assert record["Evidence"] == [{"actual": "TLS1_0"}]


def test_control_transition_is_immutable():
    t = ControlTransition(TLS, "t", "High", NEW, NC, None, 1)
    with pytest.raises(AttributeError):
        t.version = 2  # type: ignore[misc]
    assert replace(t, version=2).version == 2


# --------------------------------------------------------------------------- assigned controls
from shared.domain.results import PolicyRef  # noqa: E402

REF = PolicyRef("/subscriptions/s/providers/Microsoft.Authorization/policyAssignments/a",
                "/providers/Microsoft.Authorization/policyDefinitions/d", title="Secure transfer", severity="High")


def assigned(cid: str, status: Status, at: datetime, **flags) -> Evaluation:
    results = (ControlResult(cid, "Secure transfer", "High", status, policy=REF),) if status else ()
    return Evaluation("/subscriptions/s/resourceGroups/rg/providers/Microsoft.Storage/storageAccounts/sa",
                      "Microsoft.Storage/storageAccounts", at, f"e-{at:%H%M}", at, results, **flags)


T = datetime(2026, 5, 1, 9, 0, tzinfo=timezone.utc)


def test_an_assigned_control_without_a_result_closes_only_when_every_assignment_was_evaluated():
    opened, [new] = apply_evaluation(None, assigned("x", Status.NONCOMPLIANT, T, assigned_evaluated=True))
    assert new.policy == REF and opened.controls["x"].policy == REF
    # not evaluated against the assignments (none were a source for this evaluation): the finding stands
    kept, none = apply_evaluation(opened, assigned("x", None, T + timedelta(minutes=1)))
    assert none == [] and kept.controls["x"].status == Status.NONCOMPLIANT
    # evaluated, and no assignment gave a result: no compliance state, the finding closes with its ids
    closed, [resolved] = apply_evaluation(opened, assigned("x", None, T + timedelta(minutes=2), assigned_evaluated=True))
    assert (resolved.transition, resolved.title, resolved.severity) == (Transition.RESOLVED, "Secure transfer", "High")
    assert resolved.policy == REF and closed.controls["x"].status is None


def test_assignments_that_could_not_be_read_keep_the_state_and_record_why():
    opened, _ = apply_evaluation(None, assigned("x", Status.NONCOMPLIANT, T, assigned_evaluated=True))
    kept, none = apply_evaluation(opened, assigned("x", None, T + timedelta(minutes=1), assigned_gap="listing refused"))
    assert none == [] and kept.controls["x"].status == Status.NONCOMPLIANT
    assert kept.controls["x"].note == "listing refused"


def test_a_deleted_resource_closes_its_assigned_findings_with_the_assignments_title():
    opened, _ = apply_evaluation(None, assigned("x", Status.NONCOMPLIANT, T, assigned_evaluated=True))
    gone = replace(assigned("x", None, T + timedelta(minutes=1)), results=None)
    _, [deleted] = apply_evaluation(opened, gone)
    assert (deleted.transition, deleted.title, deleted.policy) == (Transition.DELETED, "Secure transfer", REF)


def test_a_finding_record_carries_the_policy_ids_and_the_message_only_while_non_compliant():
    message_ref = replace(REF, set_id="/providers/Microsoft.Authorization/policySetDefinitions/mcsb",
                          reference_id="secureTransfer", message="Use HTTPS")
    change = ResourceChange(event_id="e1", event_type="Microsoft.Resources.ResourceWriteSuccess", kind="write",
                            resource=parse_resource_id(assigned("x", None, T).resource_id),
                            subject=parse_resource_id(assigned("x", None, T).resource_id), event_time=T,
                            caller=Caller(name="dana"))
    state, _ = apply_evaluation(None, assigned("x", Status.NONCOMPLIANT, T))
    new = ControlTransition("x", "Secure transfer", "High", Transition.NEW, Status.NONCOMPLIANT, None, 1,
                            policy=message_ref)
    record = finding_record(new, state, change, T)
    assert (record["PolicyAssignmentId"], record["PolicyDefinitionId"], record["PolicySetDefinitionId"],
            record["PolicyDefinitionReferenceId"], record["NonComplianceMessage"]) == (
        REF.assignment_id, REF.definition_id, message_ref.set_id, "secureTransfer", "Use HTTPS")
    resolved = replace(new, transition=Transition.RESOLVED, status=Status.COMPLIANT)
    assert finding_record(resolved, state, change, T)["NonComplianceMessage"] == ""
    catalog = ControlTransition("y", "t", "Low", Transition.NEW, Status.NONCOMPLIANT, None, 1)
    assert all(finding_record(catalog, state, change, T)[k] == "" for k in (
        "PolicyAssignmentId", "PolicyDefinitionId", "PolicySetDefinitionId", "PolicyDefinitionReferenceId",
        "NonComplianceMessage", "ExemptionId"))
