"""shared.domain.events: envelopes from both schemas, ResourceChange from every fixture, rejections.

The fixtures in tests/fixtures/events follow the shapes of Microsoft's documented
examples for the subscription system topic and Azure Resource Notifications.
"""
from __future__ import annotations

import copy
import json
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from pathlib import Path

import pytest
from azure.functions import CloudEvent, EventGridEvent
from azure.functions.eventgrid import EventGridEventInConverter
from azure.functions.meta import Datum

from handlers.resource_events import envelope_from_trigger
from shared.domain.events import Envelope, EventRejected, envelope_from_dict, iter_envelopes, parse_event, parse_time

EVENTS = Path(__file__).with_name("fixtures") / "events"
UTC = timezone.utc

SUB = "7d2f4b1e-3c5a-4e8b-9f60-1a2b3c4d5e6f"
RGS = f"/subscriptions/{SUB}/resourceGroups"
SA_PROD = f"{RGS}/rg-data-prod/providers/Microsoft.Storage/storageAccounts/stcontosoprod01"
SA_DEV = f"{RGS}/rg-analytics-dev/providers/Microsoft.Storage/storageAccounts/stcontosodev07"
NSG = f"{RGS}/rg-network-prod/providers/Microsoft.Network/networkSecurityGroups/nsg-web-dmz"
SITE = f"{RGS}/rg-web-prod/providers/Microsoft.Web/sites/app-contoso-portal"
KV_PROD = f"{RGS}/rg-security-prod/providers/Microsoft.KeyVault/vaults/kv-contoso-prod"
KV_LEGACY = f"{RGS}/rg-security-prod/providers/Microsoft.KeyVault/vaults/kv-contoso-legacy"
AZ_CLI = "04b07795-8ddb-461a-bbee-02f9e1bf7b46"


def load(name: str) -> dict:
    return json.loads((EVENTS / name).read_text(encoding="utf-8"))


def parse_dict(obj: dict):
    return parse_event(envelope_from_dict(obj))


@dataclass(frozen=True)
class Expected:
    event_type: str
    kind: str
    resource: str
    subject: str
    event_time: datetime
    upn: str | None
    app_id: str | None
    principal_id: str | None
    operation: str | None
    correlation: str | None
    payload: bool
    schema: str = "EventGrid"
    deletes_resource: bool = False


WRITE = "Microsoft.Resources.ResourceWriteSuccess"
ARN_UPSERT = "Microsoft.ResourceNotifications.Resources.CreatedOrUpdated"

ARM_STORAGE_WRITE = Expected(
    WRITE, "write", SA_PROD, SA_PROD, datetime(2024, 5, 14, 9, 31, 27, 611735, UTC),
    upn="dana.whitfield@contoso.example", app_id=AZ_CLI, principal_id="a3f1c2d45b6e4f708192a3b4c5d6e7f8",
    operation="Microsoft.Storage/storageAccounts/write", correlation="e1d2c3b4-a596-4877-8c6d-5e4f3a2b1c0d",
    payload=False)
ARN_STORAGE_UPSERT = Expected(
    ARN_UPSERT, "write", SA_DEV, SA_DEV,
    # the resource's own change time (operationalInfo.resourceEventTime), not the delivery time
    datetime(2024, 5, 14, 15, 42, 8, 903146, UTC),
    upn=None, app_id=None, principal_id=None, operation=None, correlation=None, payload=True)

EXPECTED: dict[str, Expected] = {
    "arm-write-storage.eventgrid.json": ARM_STORAGE_WRITE,
    "arm-write-storage.cloudevents.json": Expected(**{**ARM_STORAGE_WRITE.__dict__, "schema": "CloudEvents"}),
    "arm-delete-nsg.eventgrid.json": Expected(
        "Microsoft.Resources.ResourceDeleteSuccess", "delete", NSG, NSG, datetime(2024, 5, 14, 11, 2, 48, 209331, UTC),
        upn="omar.lindqvist@contoso.example", app_id="c44b4083-3bb0-49c1-b47d-974e53cbdf3c",
        # no principalId in the evidence: the object id claim names the caller
        principal_id="6c5d4e3f-2a1b-4c0d-9e8f-7a6b5c4d3e2f",
        operation="Microsoft.Network/networkSecurityGroups/delete", correlation="2f3e4d5c-6b7a-4890-a1b2-c3d4e5f60718",
        payload=False, deletes_resource=True),
    "arm-action-listkeys.eventgrid.json": Expected(
        "Microsoft.Resources.ResourceActionSuccess", "action", SA_PROD, SA_PROD,
        datetime(2024, 5, 14, 9, 45, 3, 45229, UTC), upn=None, app_id="c0ffee00-1b2c-4d3e-8f90-a1b2c3d4e5f6",
        principal_id="9b8a7c6d5e4f4a3b9c2d1e0f9a8b7c6d", operation="Microsoft.Storage/storageAccounts/listKeys/action",
        correlation="77c6b5a4-9382-4716-b5a4-93827160f5e4", payload=False),
    "arm-write-blobservices.eventgrid.json": Expected(
        WRITE, "write", SA_PROD, f"{SA_PROD}/blobServices/default", datetime(2024, 5, 14, 12, 10, 5, 125094, UTC),
        upn="priya.raman@contoso.example", app_id=AZ_CLI, principal_id="1f2e3d4c5b6a1f2e3d4c5b6a1f2e3d4c",
        operation="Microsoft.Storage/storageAccounts/blobServices/write",
        correlation="c8d7e6f5-a4b3-4c2d-9e1f-0a9b8c7d6e5f", payload=False),
    "arm-write-webconfig.eventgrid.json": Expected(
        WRITE, "write", SITE, f"{SITE}/config/web", datetime(2024, 5, 14, 13, 20, 44, 998103, UTC),
        upn="priya.raman@contoso.example", app_id=AZ_CLI, principal_id="1f2e3d4c5b6a1f2e3d4c5b6a1f2e3d4c",
        operation="Microsoft.Web/sites/config/write", correlation="4d3c2b1a-0f9e-4d8c-b7a6-958473625140",
        payload=False),
    "arm-write-diagnostic-settings.eventgrid.json": Expected(
        WRITE, "write", KV_PROD, f"{KV_PROD}/providers/Microsoft.Insights/diagnosticSettings/send-to-law",
        datetime(2024, 5, 14, 14, 5, 12, 0, UTC), upn="priya.raman@contoso.example", app_id=AZ_CLI,
        principal_id="1f2e3d4c5b6a1f2e3d4c5b6a1f2e3d4c", operation="Microsoft.Insights/diagnosticSettings/write",
        correlation="9e8d7c6b-5a49-4382-a1b0-c9d8e7f6a5b4", payload=False),
    "arn-upsert-storage.eventgrid.json": ARN_STORAGE_UPSERT,
    "arn-upsert-storage.cloudevents.json": Expected(**{**ARN_STORAGE_UPSERT.__dict__, "schema": "CloudEvents"}),
    "arn-upsert-blobservices.eventgrid.json": Expected(
        ARN_UPSERT, "write", SA_DEV, f"{SA_DEV}/blobServices/default", datetime(2024, 5, 14, 15, 44, 30, 15851, UTC),
        upn=None, app_id=None, principal_id=None, operation=None, correlation=None,
        payload=False),  # the payload is the child; the tracked account must be re-read
    "arn-deleted-keyvault.eventgrid.json": Expected(
        "Microsoft.ResourceNotifications.Resources.Deleted", "delete", KV_LEGACY, KV_LEGACY,
        datetime(2024, 5, 14, 15, 59, 58, 113477, UTC), upn=None, app_id=None, principal_id=None, operation=None,
        correlation=None, payload=False, deletes_resource=True),
}
FIXTURE_NAMES = sorted(EXPECTED)


def test_every_event_fixture_has_expectations():
    assert sorted(p.name for p in EVENTS.glob("*.json")) == FIXTURE_NAMES


@pytest.mark.parametrize("name", FIXTURE_NAMES)
def test_parse_event_for_fixture(name):
    want = EXPECTED[name]
    change = parse_dict(load(name))

    assert change.event_id == load(name)["id"]
    assert change.event_type == want.event_type
    assert change.kind == want.kind
    assert change.schema == want.schema
    assert change.resource.value == want.resource
    assert change.subject.value == want.subject
    assert change.event_time == want.event_time
    assert change.event_time.tzinfo is not None
    assert change.caller.upn == want.upn
    assert change.caller.app_id == want.app_id
    assert change.caller.principal_id == want.principal_id
    assert change.operation_name == want.operation
    assert change.correlation_id == want.correlation
    assert (change.payload is not None) == want.payload
    assert change.is_resource_deleted == want.deletes_resource


@pytest.mark.parametrize("name", FIXTURE_NAMES)
def test_worker_converter_gives_the_same_change(name):
    """Decode the body exactly as the Functions host does, then go through the handler's adapter."""
    body = (EVENTS / name).read_text(encoding="utf-8")
    decoded = EventGridEventInConverter.decode(Datum(body, "json"), trigger_metadata={})
    assert isinstance(decoded, CloudEvent if EXPECTED[name].schema == "CloudEvents" else EventGridEvent)

    via_worker = parse_event(envelope_from_trigger(decoded))

    assert via_worker == parse_dict(json.loads(body))


def test_lower_case_resourcegroups_is_normalised():
    raw = load("arm-write-storage.eventgrid.json")
    assert "/resourcegroups/" in raw["subject"]
    change = parse_dict(raw)
    assert "/resourceGroups/" in change.resource.value
    assert change.resource.key == raw["subject"].lower()


def test_subject_and_resource_uri_spelled_differently_still_agree():
    raw = load("arm-write-blobservices.eventgrid.json")
    assert raw["subject"] != raw["data"]["resourceUri"]  # resourceGroups vs resourcegroups
    assert parse_dict(raw).subject.value == f"{SA_PROD}/blobServices/default"


def test_caller_display_prefers_upn_then_app():
    assert parse_dict(load("arm-write-storage.eventgrid.json")).caller.display == "dana.whitfield@contoso.example"
    assert parse_dict(load("arm-action-listkeys.eventgrid.json")).caller.display == (
        "app:c0ffee00-1b2c-4d3e-8f90-a1b2c3d4e5f6")
    assert parse_dict(load("arn-deleted-keyvault.eventgrid.json")).caller.display == "unknown"


def test_arn_payload_is_the_resource_object():
    change = parse_dict(load("arn-upsert-storage.eventgrid.json"))
    assert change.payload["id"] == SA_DEV
    assert change.payload["type"] == "Microsoft.Storage/storageAccounts"
    assert change.payload["location"] == "northeurope"
    assert change.payload["tags"] == {"environment": "dev", "owner": "analytics"}
    assert change.payload["properties"]["minimumTlsVersion"] == "TLS1_0"


def test_arn_payload_without_id_takes_the_subject():
    raw = load("arn-upsert-storage.eventgrid.json")
    del raw["data"]["resourceInfo"]["id"]
    assert parse_dict(raw).payload["id"] == SA_DEV


def test_arn_time_falls_back_to_event_time():
    raw = load("arn-upsert-storage.eventgrid.json")
    del raw["data"]["operationalInfo"]
    assert parse_dict(raw).event_time == datetime(2024, 5, 14, 15, 42, 10, 447195, UTC)


def test_delete_of_an_extension_does_not_delete_the_resource():
    raw = load("arm-write-diagnostic-settings.eventgrid.json")
    raw["eventType"] = "Microsoft.Resources.ResourceDeleteSuccess"
    change = parse_dict(raw)
    assert change.kind == "delete"
    assert change.resource.value == KV_PROD
    assert not change.is_resource_deleted


def test_data_as_json_text_is_decoded():
    raw = load("arm-write-storage.eventgrid.json")
    raw["data"] = json.dumps(raw["data"])
    assert parse_dict(raw) == parse_dict(load("arm-write-storage.eventgrid.json"))


def test_event_type_is_matched_case_insensitively():
    raw = load("arm-delete-nsg.eventgrid.json")
    raw["eventType"] = raw["eventType"].lower()
    assert parse_dict(raw).kind == "delete"


# --------------------------------------------------------------------------- rejections


def _set(path: str, value):
    def mutate(obj):
        *parents, last = path.split(".")
        for key in parents:
            obj = obj[key]
        obj[last] = value
    return mutate


def _del(path: str):
    def mutate(obj):
        *parents, last = path.split(".")
        for key in parents:
            obj = obj[key]
        del obj[last]
    return mutate


REJECTIONS = {
    "unsupported type": ("arm-write-storage.eventgrid.json",
                         _set("eventType", "Microsoft.Resources.ResourceWriteFailure"), "unsupported event type"),
    "unsupported type (CloudEvents)": ("arm-write-storage.cloudevents.json",
                                       _set("type", "Microsoft.Storage.BlobCreated"), "unsupported event type"),
    "missing id": ("arm-write-storage.eventgrid.json", _del("id"), "missing the required field 'id'"),
    "missing id (CloudEvents)": ("arm-write-storage.cloudevents.json", _del("id"),
                                 "missing the required attribute 'id'"),
    "missing subject": ("arm-write-storage.eventgrid.json", _del("subject"), "missing the required field 'subject'"),
    "wrong specversion": ("arn-upsert-storage.cloudevents.json", _set("specversion", "0.3"),
                          "unsupported CloudEvents specversion"),
    "data is an array": ("arm-write-storage.eventgrid.json", _set("data", ["not", "an", "object"]),
                         "event data must be a JSON object, got list"),
    "data missing": ("arm-write-storage.cloudevents.json", _del("data"),
                     "event data must be a JSON object, got NoneType"),
    "data is not JSON": ("arm-write-storage.eventgrid.json", _set("data", "{not json"),
                         "event data is not valid JSON"),
    "subject not an ARM id": ("arm-delete-nsg.eventgrid.json",
                              lambda e: (e.update(subject="nsg-web-dmz"), e["data"].pop("resourceUri")),
                              "event names no valid resource"),
    "resourceUri not an ARM id": ("arm-delete-nsg.eventgrid.json", _set("data.resourceUri", "/networkSecurityGroups/x"),
                                  "event names no valid resource"),
    "subject and resourceUri disagree": ("arm-write-storage.eventgrid.json",
                                         _set("subject", SA_PROD.replace("stcontosoprod01", "stother")), "disagree"),
    "bad event time": ("arm-write-storage.eventgrid.json", _set("eventTime", "yesterday at noon"), "not ISO-8601"),
    "bad resourceEventTime": ("arn-deleted-keyvault.eventgrid.json",
                              _set("data.operationalInfo.resourceEventTime", "14/05/2024 15:59"), "not ISO-8601"),
    "CloudEvent without time": ("arm-write-storage.cloudevents.json", _del("time"), "event has no time"),
    "ARN without resourceInfo": ("arn-deleted-keyvault.eventgrid.json", _del("data.resourceInfo"),
                                 "no 'data.resourceInfo' object"),
    "ARN upsert without properties": ("arn-upsert-storage.eventgrid.json", _del("data.resourceInfo.properties"),
                                      "no 'data.resourceInfo.properties' object"),
    "ARN id not an ARM id": ("arn-upsert-storage.cloudevents.json", _set("data.resourceInfo.id", "stcontosodev07"),
                             "event names no valid resource"),
}


@pytest.mark.parametrize("name, mutate, reason", REJECTIONS.values(), ids=REJECTIONS.keys())
def test_rejections_say_why(name, mutate, reason):
    raw = copy.deepcopy(load(name))
    mutate(raw)
    with pytest.raises(EventRejected) as info:
        parse_dict(raw)
    assert reason in info.value.reason
    assert info.value.event_id == raw.get("id", "<no id>")
    assert info.value.event_id in str(info.value)


def test_envelope_must_be_an_object():
    with pytest.raises(EventRejected, match="must be a JSON object, got list"):
        envelope_from_dict([load("arm-write-storage.eventgrid.json")])


def test_envelope_without_id_is_rejected_by_parse_event():
    envelope = Envelope(None, "Microsoft.Resources.ResourceWriteSuccess", SA_PROD, "2024-05-14T09:31:27Z", {},
                        None, "EventGrid")
    with pytest.raises(EventRejected, match="missing the required field 'id'"):
        parse_event(envelope)


# --------------------------------------------------------------------------- times

TIMES = {
    "seven-digit fraction, Z": ("2024-05-14T09:31:27.6117357Z", datetime(2024, 5, 14, 9, 31, 27, 611735, UTC)),
    "no fraction": ("2024-05-14T09:31:27Z", datetime(2024, 5, 14, 9, 31, 27, 0, UTC)),
    "no zone means UTC": ("2024-05-14T09:31:27.5", datetime(2024, 5, 14, 9, 31, 27, 500000, UTC)),
    "offset without fraction": ("2024-05-14T11:31:27+02:00", datetime(2024, 5, 14, 9, 31, 27, 0, UTC)),
    "seven-digit fraction, +02:00": ("2024-05-14T11:31:27.6117357+02:00",
                                     datetime(2024, 5, 14, 9, 31, 27, 611735, UTC)),
    "one-digit fraction, -05:00": ("2024-05-14T04:31:27.5-05:00", datetime(2024, 5, 14, 9, 31, 27, 500000, UTC)),
    "aware datetime": (datetime(2024, 5, 14, 11, 31, 27, tzinfo=timezone(timedelta(hours=2))),
                       datetime(2024, 5, 14, 9, 31, 27, 0, UTC)),
    "naive datetime means UTC": (datetime(2024, 5, 14, 9, 31, 27), datetime(2024, 5, 14, 9, 31, 27, 0, UTC)),
}


@pytest.mark.parametrize("value, instant", TIMES.values(), ids=TIMES.keys())
def test_parse_time(value, instant):
    parsed = parse_time(value)
    assert parsed.tzinfo is not None
    assert parsed == instant


@pytest.mark.parametrize("value", ["", None, 1715678781, "2024-13-01T00:00:00Z", "tomorrow"])
def test_parse_time_rejects(value):
    with pytest.raises(EventRejected, match="event time"):
        parse_time(value, "evt-1")


# --------------------------------------------------------------------------- iter_envelopes

A, B, C = "arm-write-storage.eventgrid.json", "arn-upsert-storage.cloudevents.json", "arm-delete-nsg.eventgrid.json"


def test_iter_envelopes_from_an_array():
    text = json.dumps([load(A), load(B), load(C)])
    envelopes = list(iter_envelopes(text))
    assert [e.id for e in envelopes] == [load(n)["id"] for n in (A, B, C)]
    assert [e.schema for e in envelopes] == ["EventGrid", "CloudEvents", "EventGrid"]
    assert all(isinstance(e, Envelope) for e in envelopes)


def test_iter_envelopes_from_a_single_object():
    envelopes = list(iter_envelopes((EVENTS / B).read_text()))
    assert len(envelopes) == 1
    assert envelopes[0].id == load(B)["id"]
    assert envelopes[0].source == f"/subscriptions/{SUB}"


def test_iter_envelopes_from_an_empty_text():
    assert list(iter_envelopes("  \n")) == []


def test_array_item_that_is_not_an_event_is_rejected_in_place():
    text = json.dumps([load(A), "oops", load(C)])
    out = list(iter_envelopes(text, origin="batch.json"))
    assert isinstance(out[0], Envelope) and isinstance(out[2], Envelope)
    assert isinstance(out[1], EventRejected)
    assert out[1].event_id == "batch.json[1]"
    assert "must be a JSON object" in out[1].reason


def test_json_lines_with_a_bad_line_do_not_hide_the_others():
    lines = [json.dumps(load(A)), "", '{"id": "broken", "eventType": ', json.dumps(load(B)),
             json.dumps({"hello": "world"}), json.dumps(load(C))]
    out = list(iter_envelopes("\n".join(lines), origin="events.jsonl"))

    assert [type(x).__name__ for x in out] == ["Envelope", "EventRejected", "Envelope", "EventRejected", "Envelope"]
    assert [x.id for x in out if isinstance(x, Envelope)] == [load(n)["id"] for n in (A, B, C)]
    bad_json, not_event = out[1], out[3]
    assert bad_json.event_id == "events.jsonl:3"
    assert "invalid JSON" in bad_json.reason
    assert not_event.event_id == "events.jsonl:5"
    assert "missing the required field 'id'" in not_event.reason
    # and each good one still parses
    assert [parse_event(x).event_id for x in out if isinstance(x, Envelope)] == [load(n)["id"] for n in (A, B, C)]
