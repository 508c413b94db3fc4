"""The Table Storage state store against a real Azurite with the real SDK client."""
from __future__ import annotations

import threading
from datetime import datetime, timedelta, timezone

import pytest

from shared.adapters.table_store import TableStateStore, partition_key
from shared.catalog import ControlResult, Status
from shared.domain.drift import Evaluation, apply_evaluation
from shared.service.ports import OUTBOX_GRACE, ConcurrencyConflict
from shared.domain.resource_ids import parse_resource_id

RID = parse_resource_id(
    "/subscriptions/00000000-0000-0000-0000-000000000001/resourceGroups/rg-App/providers/"
    "Microsoft.Storage/storageAccounts/stApp01")
T0 = datetime(2026, 3, 1, 12, 0, tzinfo=timezone.utc)


def evaluation(statuses: dict[str, Status] | None, at: datetime = T0, event_id: str = "e1") -> Evaluation:
    results = None if statuses is None else tuple(
        ControlResult(cid, f"title {cid}", "High", status,
                      [{"field": "f", "actual": cid}] if status == Status.NONCOMPLIANT else [])
        for cid, status in statuses.items())
    return Evaluation(RID.value, "Microsoft.Storage/storageAccounts", at, event_id, at, results,
                      location="westeurope", tags={"owner": "team-a"})


def test_partition_key_has_no_forbidden_characters_and_ignores_case():
    key = partition_key(RID)
    assert not any(ch in key for ch in "/\\#?")
    assert key == partition_key(parse_resource_id(RID.value.upper().replace("SUBSCRIPTIONS", "subscriptions")))
    long_id = parse_resource_id(RID.value + "/blobServices/" + "x" * 1200)
    assert len(partition_key(long_id)) <= 1024


def test_round_trip_of_state_with_controls(table_client):
    store = TableStateStore(table_client)
    assert store.load(RID) is None
    state, _ = apply_evaluation(None, evaluation({"a": Status.COMPLIANT, "b": Status.NONCOMPLIANT}))
    store.save(None, state)
    loaded = store.load(RID)
    assert loaded.etag
    assert loaded.resource_id == RID.value
    assert loaded.tags == {"owner": "team-a"} and loaded.location == "westeurope"
    assert loaded.last_event_time == T0
    assert {cid: (cs.status, cs.version) for cid, cs in loaded.controls.items()} == {
        "a": (Status.COMPLIANT, 1), "b": (Status.NONCOMPLIANT, 1)}
    assert loaded.controls["b"].evidence == ({"field": "f", "actual": "b"},)
    # mixed-case id of the same resource shares the state
    assert store.load(parse_resource_id(RID.value.lower())).etag == loaded.etag


def test_one_row_per_control_plus_resource_row_in_one_partition(table_client):
    store = TableStateStore(table_client)
    state, _ = apply_evaluation(None, evaluation({"a": Status.COMPLIANT, "b": Status.NONCOMPLIANT}))
    store.save(None, state)
    rows = list(table_client.list_entities())
    assert {r["PartitionKey"] for r in rows} == {partition_key(RID)}
    assert sorted(r["RowKey"] for r in rows) == ["control.a", "control.b", "resource"]
    head = next(r for r in rows if r["RowKey"] == "resource")
    assert head["OpenFindings"] == 1


def test_stale_etag_is_a_conflict_and_nothing_is_written(table_client):
    store = TableStateStore(table_client)
    first, _ = apply_evaluation(None, evaluation({"a": Status.COMPLIANT}))
    store.save(None, first)
    stale = store.load(RID)
    second, _ = apply_evaluation(stale, evaluation({"a": Status.NONCOMPLIANT}, T0 + timedelta(minutes=1), "e2"))
    store.save(stale, second)
    third, _ = apply_evaluation(stale, evaluation({"a": Status.COMPLIANT, "c": Status.NONCOMPLIANT},
                                                  T0 + timedelta(minutes=2), "e3"))
    with pytest.raises(ConcurrencyConflict):
        store.save(stale, third)
    now = store.load(RID)
    assert now.last_event_id == "e2"
    assert set(now.controls) == {"a"}  # the conflicting transaction was rolled back whole


def test_creating_a_state_someone_else_created_is_a_conflict(table_client):
    store = TableStateStore(table_client)
    state, _ = apply_evaluation(None, evaluation({"a": Status.COMPLIANT}))
    store.save(None, state)
    with pytest.raises(ConcurrencyConflict):
        store.save(None, state)


def test_only_changed_control_rows_are_written(table_client):
    store = TableStateStore(table_client)
    first, _ = apply_evaluation(None, evaluation({"a": Status.COMPLIANT, "b": Status.COMPLIANT}))
    store.save(None, first)
    before = {r["RowKey"]: r.metadata["etag"] for r in table_client.list_entities()}
    loaded = store.load(RID)
    second, transitions = apply_evaluation(loaded, evaluation({"a": Status.COMPLIANT, "b": Status.NONCOMPLIANT},
                                                              T0 + timedelta(minutes=1), "e2"))
    store.save(loaded, second)
    after = {r["RowKey"]: r.metadata["etag"] for r in table_client.list_entities()}
    assert after["control.a"] == before["control.a"]
    assert after["control.b"] != before["control.b"]
    assert after["resource"] != before["resource"]
    assert [t.transition.value for t in transitions] == ["Drifted"]


def test_deleted_state_round_trips_and_lists(table_client):
    store = TableStateStore(table_client)
    first, _ = apply_evaluation(None, evaluation({"a": Status.NONCOMPLIANT}))
    store.save(None, first)
    loaded = store.load(RID)
    gone, transitions = apply_evaluation(loaded, evaluation(None, T0 + timedelta(hours=1), "e9"))
    store.save(loaded, gone)
    assert [t.transition.value for t in transitions] == ["Deleted"]
    states = list(store.states())
    assert len(states) == 1 and states[0].deleted
    assert states[0].controls["a"].status is None


def test_concurrent_writers_lose_no_update(table_client):
    """Several threads bump one control's version through load/compute/save with retries."""
    store = TableStateStore(table_client)
    state, _ = apply_evaluation(None, evaluation({"flip": Status.COMPLIANT}))
    store.save(None, state)
    per_worker, workers = 6, 4
    conflicts = []

    def work(worker: int) -> None:
        for i in range(per_worker):
            while True:
                current = store.load(RID)
                status = current.controls["flip"].status
                nxt = Status.NONCOMPLIANT if status == Status.COMPLIANT else Status.COMPLIANT
                new, _ = apply_evaluation(current, evaluation({"flip": nxt}, T0, f"w{worker}-{i}"))
                try:
                    store.save(current, new)
                    break
                except ConcurrencyConflict:
                    conflicts.append(worker)

    threads = [threading.Thread(target=work, args=(w,)) for w in range(workers)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    final = store.load(RID)
    # every successful save flipped the status once and bumped the version once
    assert final.controls["flip"].version == 1 + per_worker * workers


def test_outbox_rows_commit_with_the_state_and_drain(table_client):
    store = TableStateStore(table_client)
    state, _ = apply_evaluation(None, evaluation({"a": Status.NONCOMPLIANT}))
    records = [{"FindingId": "f-1", "ControlId": "a", "Transition": "New"},
               {"FindingId": "f-2", "ControlId": "b", "Transition": "New"}]
    store.save(None, state, outbox=records)
    # not due before the grace period that covers the inline send (was: due at the evaluation itself)
    assert store.pending(T0 + OUTBOX_GRACE - timedelta(seconds=1), 10) == []
    g0 = T0 + OUTBOX_GRACE
    due = store.pending(g0, 10)
    assert sorted(p.finding_id for p in due) == ["f-1", "f-2"]
    assert {p.record["ControlId"] for p in due} == {"a", "b"} and all(p.resource_id == RID.value for p in due)
    first = next(p for p in due if p.finding_id == "f-1")
    store.defer(first, g0 + timedelta(minutes=5), "503 from ingestion")
    assert [p.finding_id for p in store.pending(g0 + timedelta(minutes=1), 10)] == ["f-2"]
    later = store.pending(g0 + timedelta(minutes=5), 10)
    assert [(p.finding_id, p.attempts, p.last_error) for p in later if p.finding_id == "f-1"] == [
        ("f-1", 1, "503 from ingestion")]
    store.delivered(RID.value, ["f-1", "f-2"])
    store.delivered(RID.value, ["f-1"])  # already gone: fine
    assert store.pending(T0 + timedelta(days=1), 10) == []
    assert store.load(RID).controls["a"].status == Status.NONCOMPLIANT  # the state rows stay


def test_outbox_rows_roll_back_with_a_conflicting_state_write(table_client):
    store = TableStateStore(table_client)
    state, _ = apply_evaluation(None, evaluation({"a": Status.COMPLIANT}))
    store.save(None, state)
    stale = store.load(RID)
    store.save(stale, apply_evaluation(stale, evaluation({"a": Status.NONCOMPLIANT}, event_id="e2"))[0])
    with pytest.raises(ConcurrencyConflict):
        store.save(stale, apply_evaluation(stale, evaluation({"a": Status.NONCOMPLIANT}, event_id="e3"))[0],
                   outbox=[{"FindingId": "lost?", "ControlId": "a"}])
    assert store.pending(T0 + timedelta(days=1), 10) == []


def test_an_assigned_controls_ids_round_trip(table_client):
    from shared.domain.results import PolicyRef

    store = TableStateStore(table_client)
    ref = PolicyRef("/providers/Microsoft.Management/managementGroups/corp/providers/Microsoft.Authorization/"
                    "policyAssignments/mcsb", "/providers/Microsoft.Authorization/policyDefinitions/d",
                    "/providers/Microsoft.Authorization/policySetDefinitions/s", "secureTransfer", "Secure transfer",
                    "High", "m" * 9000, None)
    results = (ControlResult("mcsb-securetransfer-1a2b3c4d", "Secure transfer", "High", Status.NONCOMPLIANT,
                             policy=ref),)
    state, _ = apply_evaluation(None, Evaluation(RID.value, "Microsoft.Storage/storageAccounts", T0, "e1", T0,
                                                 results))
    store.save(None, state)
    loaded = store.load(RID).controls["mcsb-securetransfer-1a2b3c4d"].policy
    assert (loaded.assignment_id, loaded.definition_id, loaded.set_id, loaded.reference_id) == (
        ref.assignment_id, ref.definition_id, ref.set_id, ref.reference_id)
    assert len(loaded.message) < 4100 and loaded.message.startswith("mmm")  # bounded, never the ids


def test_scope_marks_coalesce_and_a_mark_made_again_survives_its_clearing(table_client):
    store = TableStateStore(table_client)
    sub = "00000000-0000-0000-0000-000000000001"
    store.mark_scope(sub.upper(), T0, "write of an assignment")
    store.mark_scope(sub, T0 + timedelta(seconds=5), "write of another")  # one row per subscription
    assert store.due_scopes(T0) == []  # marked after that time
    [mark] = store.due_scopes(T0 + timedelta(seconds=5))
    assert (mark.subscription_id, mark.reason) == (sub, "write of another")
    store.mark_scope(sub, T0 + timedelta(seconds=6), "a third, while re-evaluating")
    assert store.clear_scope(mark) is False  # its ETag changed: it stays due
    [again] = store.due_scopes(T0 + timedelta(minutes=1))
    assert store.clear_scope(again) is True and store.due_scopes(T0 + timedelta(hours=1)) == []
    assert store.policy_fingerprint(sub) is None
    store.save_policy_fingerprint(sub, "abc")
    assert store.policy_fingerprint(sub.upper()) == "abc"
    assert list(store.states()) == []  # bookkeeping rows are not resource states
