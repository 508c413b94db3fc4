"""The service with in-memory fakes: what one change does to state and findings."""
from __future__ import annotations

import copy
from datetime import datetime, timedelta, timezone

import pytest

from shared.adapters.memory import InMemoryStateStore, MemorySink, StaticResourceReader
from shared.catalog import load_catalog
from tests.conftest import pipeline_catalog
from shared.domain.events import envelope_from_dict, parse_event
from shared.domain.findings import FINDING_COLUMNS
from shared.service.ports import ConcurrencyConflict, FindingsDeliveryError, ResourceAccessDenied
from shared.service.changes import (MAX_CONFLICT_RETRIES, Dependencies, DrainOutcome, drain_outbox, handle_change,
                            retry_delay)

SUB = "11111111-2222-3333-4444-555555555555"
SA_ID = f"/subscriptions/{SUB}/resourceGroups/rg-data/providers/Microsoft.Storage/storageAccounts/stdata01"
CLOCK = datetime(2026, 4, 1, 8, 0, tzinfo=timezone.utc)
HARDENED = {
    "id": SA_ID, "name": "stdata01", "type": "Microsoft.Storage/storageAccounts", "location": "northeurope",
    "tags": {"owner": "dana@contoso.com", "team": "data", "environment": "prod"},
    "properties": {"supportsHttpsTrafficOnly": True, "minimumTlsVersion": "TLS1_2", "allowBlobPublicAccess": False,
                   "networkAcls": {"defaultAction": "Deny"}},
}


def weak(**props):
    resource = copy.deepcopy(HARDENED)
    resource["properties"].update(props)
    return resource


def write_event(event_id, subject=SA_ID, time="2026-04-01T07:59:00Z", kind="Write", upn="ana@contoso.com"):
    return parse_event(envelope_from_dict({
        "id": event_id, "topic": f"/subscriptions/{SUB}", "subject": subject,
        "eventType": f"Microsoft.Resources.Resource{kind}Success", "eventTime": time, "dataVersion": "2",
        "data": {"resourceUri": subject, "operationName": f"Microsoft.Storage/storageAccounts/{kind.lower()}",
                 "correlationId": f"corr-{event_id}",
                 "claims": {"http://schemas.xmlsoap.org/ws/2005/05/identity/claims/upn": upn}},
    }))


def arn_event(event_id, resource, event_time):
    return parse_event(envelope_from_dict({
        "id": event_id, "topic": f"/subscriptions/{SUB}", "subject": resource["id"],
        "eventType": "Microsoft.ResourceNotifications.Resources.CreatedOrUpdated", "eventTime": event_time,
        "dataVersion": "1", "data": {"resourceInfo": resource, "apiVersion": "2023-05-01",
                                     "operationalInfo": {"resourceEventTime": event_time}},
    }))


@pytest.fixture
def world():
    reader = StaticResourceReader([HARDENED])
    deps = Dependencies(catalog=pipeline_catalog(), reader=reader, store=InMemoryStateStore(), sink=MemorySink(),
                        clock=lambda: CLOCK)
    return deps


def transitions(outcome):
    return [(f["Transition"], f["ControlId"]) for f in outcome.findings]


def test_create_drift_duplicate_resolve_delete(world):
    assert transitions(handle_change(write_event("e1"), world)) == []
    world.reader.put(weak(allowBlobPublicAccess=True))
    drift = handle_change(write_event("e2", time="2026-04-01T08:01:00Z"), world)
    assert transitions(drift) == [("Drifted", "storage-no-public-blob-access")]
    assert transitions(handle_change(write_event("e2", time="2026-04-01T08:01:00Z"), world)) == []
    world.reader.put(HARDENED)
    assert transitions(handle_change(write_event("e3"), world)) == [("Resolved", "storage-no-public-blob-access")]
    world.reader.put(weak(supportsHttpsTrafficOnly=False))
    assert transitions(handle_change(write_event("e4"), world)) == [("Drifted", "storage-https-only")]
    world.reader.remove(SA_ID)
    assert transitions(handle_change(write_event("e5", kind="Delete"), world)) == [("Deleted", "storage-https-only")]
    assert transitions(handle_change(write_event("e5", kind="Delete"), world)) == []
    assert [r["Transition"] for r in world.sink.records] == ["Drifted", "Resolved", "Drifted", "Deleted"]
    assert len({r["FindingId"] for r in world.sink.records}) == 4


def test_finding_record_carries_the_contract_fields(world):
    world.reader.put(weak(allowBlobPublicAccess=True))
    record = handle_change(write_event("e9", upn="ben@contoso.com"), world).findings[0]
    assert list(record) == list(FINDING_COLUMNS)
    assert record["ResourceId"] == SA_ID
    assert record["SubscriptionId"] == SUB and record["ResourceGroup"] == "rg-data"
    assert record["Location"] == "northeurope"
    assert record["Caller"] == "ben@contoso.com"
    assert record["OperationName"] == "Microsoft.Storage/storageAccounts/write"
    assert record["CorrelationId"] == "corr-e9" and record["EventId"] == "e9"
    assert record["Status"] == "NonCompliant" and record["PreviousStatus"] == ""
    assert record["Transition"] == "New" and record["Severity"] == "High"
    assert record["TimeGenerated"] == "2026-04-01T08:00:00Z"
    assert record["ChangeTime"] == "2026-04-01T07:59:00Z"
    assert record["Tags"] == {"owner": "dana@contoso.com", "team": "data", "environment": "prod"}
    assert record["Owner"] == "dana@contoso.com" and record["Team"] == "data"
    assert record["DueDate"] == "2026-04-08T07:59:00Z"  # High: 7 days after the change
    assert record["Evidence"][0]["path"] == "properties.allowBlobPublicAccess"
    assert record["Evidence"][0]["actual"] is True


def test_event_on_child_resource_reevaluates_the_parent(world):
    world.reader.put(weak(minimumTlsVersion="TLS1_0"))
    outcome = handle_change(write_event("c1", subject=SA_ID.replace("resourceGroups", "resourcegroups")
                                        + "/blobServices/default"), world)
    assert transitions(outcome) == [("New", "storage-min-tls-1-2")]
    assert outcome.findings[0]["ResourceId"] == SA_ID


def test_delete_of_a_child_resource_does_not_delete_the_parent(world):
    handle_change(write_event("d0"), world)
    outcome = handle_change(write_event("d1", subject=SA_ID + "/blobServices/default", kind="Delete"), world)
    assert outcome.findings == []
    assert not world.store.load(outcome.change.resource).deleted
    assert world.reader.reads == 2  # the parent was re-read, not assumed gone


def test_payload_event_is_evaluated_without_an_arm_read(world):
    # a payload that carries every property the controls read (publicNetworkAccess included)
    complete = weak(allowBlobPublicAccess=True, publicNetworkAccess="Enabled")
    outcome = handle_change(arn_event("n1", complete, "2026-04-01T07:50:00Z"), world)
    assert transitions(outcome) == [("New", "storage-no-public-blob-access")]
    assert world.reader.reads == 0
    assert outcome.reread is None


def test_payload_without_a_property_a_control_reads_is_completed_by_one_arm_read(world):
    world.reader.put(weak(publicNetworkAccess="Enabled", networkAcls={"defaultAction": "Allow"}))
    outcome = handle_change(arn_event("n1", weak(allowBlobPublicAccess=True), "2026-04-01T07:50:00Z"), world)
    assert world.reader.reads == 1
    assert "properties.publicNetworkAccess" in outcome.reread
    # the payload judged what it carries; the re-read judged the control that needed the missing property
    assert transitions(outcome) == [("New", "storage-network-default-deny"), ("New", "storage-no-public-blob-access")]


def test_payload_gap_with_the_resource_gone_is_not_evaluated_not_guessed(world):
    world.reader.remove(SA_ID)
    outcome = handle_change(arn_event("n1", weak(), "2026-04-01T07:50:00Z"), world)
    verdicts = {r.control_id: r for r in outcome.results}
    assert verdicts["storage-network-default-deny"].status.value == "NotEvaluated"
    assert "no longer exists" in verdicts["storage-network-default-deny"].reason
    assert "properties.publicNetworkAccess" in verdicts["storage-network-default-deny"].reason
    assert verdicts["storage-https-only"].status.value == "Compliant"
    assert transitions(outcome) == []


def test_older_payload_cannot_roll_state_back(world):
    handle_change(arn_event("n2", weak(allowBlobPublicAccess=True), "2026-04-01T07:55:00Z"), world)
    late = handle_change(arn_event("n1", HARDENED, "2026-04-01T07:50:00Z"), world)
    assert late.findings == [] and late.skipped.startswith("stale payload")
    state = world.store.load(late.change.resource)
    assert state.controls["storage-no-public-blob-access"].status.value == "NonCompliant"


def test_type_without_controls_is_skipped_without_reading(world):
    everywhere = [c.id for c in load_catalog().controls if "*" in c.resource_types]
    world.catalog = load_catalog(disabled=everywhere)
    change = write_event("x1", subject=f"/subscriptions/{SUB}/resourceGroups/rg/providers/Contoso.Widgets/widgets/w1")
    outcome = handle_change(change, world)
    assert outcome.skipped == "no control applies to type Contoso.Widgets/widgets"
    assert world.reader.reads == 0


def test_resource_never_seen_and_gone_writes_nothing(world):
    world.reader.remove(SA_ID)
    outcome = handle_change(write_event("g1"), world)
    assert outcome.skipped and outcome.findings == []
    assert list(world.store.states()) == []


def test_access_denied_is_recorded_as_not_evaluated(world):
    class DeniedReader:
        reads = 0

        def get(self, resource_id):
            raise ResourceAccessDenied(f"reading {resource_id.value} was refused (403)")

    world.reader = DeniedReader()
    outcome = handle_change(write_event("f1"), world)
    assert outcome.findings == []
    assert {r.status.value for r in outcome.results} == {"NotEvaluated"}
    state = world.store.load(outcome.change.resource)
    assert all("403" in cs.note for cs in state.controls.values())


class ConflictingStore(InMemoryStateStore):
    """Another writer commits before each of the first ``conflicts`` saves."""

    def __init__(self, conflicts):
        super().__init__()
        self.conflicts = conflicts

    def save(self, previous, new, outbox=()):
        if self.conflicts:
            self.conflicts -= 1
            raise ConcurrencyConflict("simulated concurrent writer")
        super().save(previous, new, outbox)


def test_conflicts_are_retried_then_given_up(world):
    world.store = ConflictingStore(conflicts=2)
    world.reader.put(weak(allowBlobPublicAccess=True))
    outcome = handle_change(write_event("r1"), world)
    assert outcome.attempts == 3
    assert [r["FindingId"] for r in world.sink.records] == [outcome.findings[0]["FindingId"]]  # sent once
    world.store = ConflictingStore(conflicts=MAX_CONFLICT_RETRIES)
    with pytest.raises(ConcurrencyConflict, match="gave up"):
        handle_change(write_event("r2"), world)
    assert len(world.sink.records) == 1  # nothing is sent for a change that was never committed


class FlakySink(MemorySink):
    """Fails while ``down`` is true, like an ingestion outage."""

    def __init__(self):
        super().__init__()
        self.down = True

    def send(self, records):
        if self.down:
            raise FindingsDeliveryError("ingestion endpoint down")
        super().send(records)


def test_failed_send_leaves_the_finding_in_the_outbox_until_drained(world):
    world.sink = FlakySink()
    world.reader.put(weak(allowBlobPublicAccess=True))
    outcome = handle_change(write_event("s1"), world)
    assert outcome.pending == 1 and outcome.findings
    assert world.store.load(outcome.change.resource).controls["storage-no-public-blob-access"].version == 1
    assert drain_outbox(world) == DrainOutcome(sent=0, deferred=1)  # still down: deferred with backoff
    (item,) = world.store.pending(CLOCK + timedelta(hours=2), 10)
    # the failed inline send counts as the first attempt (it released the row to the drain at once)
    assert item.attempts == 2 and item.next_attempt == CLOCK + retry_delay(2) and "down" in item.last_error
    world.sink.down = False
    assert drain_outbox(world) == DrainOutcome()  # not due yet
    world.clock = lambda: CLOCK + timedelta(minutes=1)
    assert drain_outbox(world) == DrainOutcome(sent=1, deferred=0)
    assert [r["FindingId"] for r in world.sink.records] == [outcome.findings[0]["FindingId"]]
    assert world.store.pending(CLOCK + timedelta(days=1), 10) == []


def test_partial_delivery_keeps_only_the_failed_findings(world):
    class HalfSink(MemorySink):
        def send(self, records):
            ok = [r for r in records if r["ControlId"] != "storage-https-only"]
            super().send(ok)
            if len(ok) != len(records):
                raise FindingsDeliveryError("one rejected", {r["FindingId"] for r in records if r not in ok})

    world.sink = HalfSink()
    world.reader.put(weak(allowBlobPublicAccess=True, supportsHttpsTrafficOnly=False))
    outcome = handle_change(write_event("p1"), world)
    assert outcome.pending == 1
    (left,) = world.store.pending(CLOCK, 10)
    assert left.record["ControlId"] == "storage-https-only"


def test_retry_delay_grows_and_is_capped():
    assert [retry_delay(n).total_seconds() for n in (1, 2, 3)] == [30, 60, 120]
    assert retry_delay(50) == timedelta(hours=1)


def arn_deleted(event_id, resource_id, event_time):
    return parse_event(envelope_from_dict({
        "id": event_id, "topic": f"/subscriptions/{SUB}", "subject": resource_id,
        "eventType": "Microsoft.ResourceNotifications.Resources.Deleted", "eventTime": event_time,
        "dataVersion": "1", "data": {"resourceInfo": {"id": resource_id, "name": "stdata01",
                                                      "type": "Microsoft.Storage/storageAccounts"},
                                     "operationalInfo": {"resourceEventTime": event_time}}}))


def test_late_events_after_a_delete_cannot_resurrect_the_resource(world):
    handle_change(arn_event("n1", weak(allowBlobPublicAccess=True), "2026-04-01T07:00:00Z"), world)
    gone = handle_change(arn_deleted("n3", SA_ID, "2026-04-01T07:30:00Z"), world)
    assert transitions(gone) == [("Deleted", "storage-no-public-blob-access")]
    late_payload = handle_change(arn_event("n2", weak(allowBlobPublicAccess=True), "2026-04-01T07:10:00Z"), world)
    assert late_payload.skipped.startswith("stale payload") and late_payload.findings == []
    world.reader.remove(SA_ID)
    late_write = handle_change(write_event("w9", time="2026-04-01T07:05:00Z"), world)  # re-read: 404
    assert late_write.findings == []
    assert world.store.load(gone.change.resource).deleted
    world.reader.put(weak(allowBlobPublicAccess=True))  # it really exists again
    back = handle_change(write_event("w10", time="2026-04-01T08:00:00Z"), world)
    assert transitions(back) == [("New", "storage-no-public-blob-access")]
    assert not world.store.load(back.change.resource).deleted


def test_owner_and_team_fall_back_to_the_resource_group_tags(world):
    group = f"/subscriptions/{SUB}/resourceGroups/rg-data"
    world.reader.put({"id": group, "name": "rg-data", "type": "Microsoft.Resources/resourceGroups",
                      "location": "northeurope", "tags": {"Owner": "platform@contoso.com", "team": "platform"}})
    untagged = weak(allowBlobPublicAccess=True)
    untagged["tags"] = {"team": "data"}
    world.reader.put(untagged)
    record = handle_change(write_event("o1"), world).findings[0]
    assert (record["Owner"], record["Team"]) == ("platform@contoso.com", "data")  # field by field
    reads = world.reader.reads
    handle_change(write_event("o2"), world)
    assert world.reader.reads == reads + 1  # the group's tags are cached: only the resource is read again


def test_sla_due_dates_follow_severity_and_configuration(world):
    world.sla = {"High": timedelta(hours=4), "Critical": timedelta(hours=1), "Medium": timedelta(days=3),
                 "Low": timedelta(days=10)}
    world.reader.put(weak(allowBlobPublicAccess=True, minimumTlsVersion="TLS1_0"))
    outcome = handle_change(write_event("d1", time="2026-04-01T07:00:00Z"), world)
    assert {r["ControlId"]: r["DueDate"] for r in outcome.findings} == {
        "storage-no-public-blob-access": "2026-04-01T11:00:00Z", "storage-min-tls-1-2": "2026-04-01T11:00:00Z"}
    world.reader.put(HARDENED)
    resolved = handle_change(write_event("d2", time="2026-04-01T09:00:00Z"), world)
    assert {r["Transition"] for r in resolved.findings} == {"Resolved"}
    assert all(r["DueDate"] == "2026-04-01T11:00:00Z" for r in resolved.findings)  # fixed within its SLA
    state = world.store.load(resolved.change.resource)
    assert state.controls["storage-min-tls-1-2"].due is None


def test_the_in_memory_reader_gives_a_fresh_parsed_copy_on_every_read():
    from shared.domain.resource_ids import parse_resource_id

    resource = {"id": "/subscriptions/00000000-0000-0000-0000-000000000001/resourceGroups/rg/providers/"
                      "Microsoft.Storage/storageAccounts/st1", "type": "Microsoft.Storage/storageAccounts",
                "properties": {"minimumTlsVersion": "TLS1_2"}}
    reader = StaticResourceReader([resource])
    resource["properties"]["minimumTlsVersion"] = "TLS1_0"  # the caller's object is not the stored one
    first = reader.get(parse_resource_id(resource["id"]))
    first["properties"]["minimumTlsVersion"] = "changed by a caller"
    second = reader.get(parse_resource_id(resource["id"]))
    assert second == {**resource, "properties": {"minimumTlsVersion": "TLS1_2"}} and second is not first
    assert reader.reads == 2
    odd = {"id": resource["id"].replace("st1", "st2"), "type": "Microsoft.Storage/storageAccounts", "when": object()}
    reader.put(odd)  # not JSON (a test's own object): kept as a copy, still fresh on every read
    got = reader.get(parse_resource_id(odd["id"]))
    assert got["id"] == odd["id"] and got is not reader.get(parse_resource_id(odd["id"]))
