"""Property-based: thousands of generated envelopes never crash the parser or the handler.

Every input ends as a ResourceChange or a clear rejection (event id + reason);
the handler logs each rejection and never raises for bad input; state keys and
table queries survive injection strings in ids and tags.
"""
from __future__ import annotations

import json
import logging
import uuid

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from handlers.resource_events import on_resource_change
from shared import bootstrap
from shared.adapters.memory import InMemoryStateStore, MemorySink, StaticResourceReader
from shared.adapters.table_store import TableStateStore
from shared.catalog import load_catalog
from shared.domain.drift import Evaluation, apply_evaluation
from shared.domain.events import SUPPORTED_EVENT_TYPES, EventRejected, envelope_from_dict, iter_envelopes, parse_event
from shared.domain.resource_ids import InvalidResourceId, parse_resource_id
from shared.service.changes import Dependencies

NASTY = ["'", "''", "\"", "' or PartitionKey ne '", "$filter=", "%2F", "%", "#", "?", "\\", "/", "..", "\u0000",
         "\n", "\u202e", "😀", "<script>", "${jndi:ldap://x}", "Robert'); DROP TABLE x;--", " ", "resourceGroups"]
text = st.one_of(st.text(max_size=40), st.sampled_from(NASTY), st.builds("".join, st.lists(st.sampled_from(NASTY),
                                                                                            max_size=4)))
name = st.one_of(st.from_regex(r"[A-Za-z0-9][A-Za-z0-9._()-]{0,20}", fullmatch=True), text)
json_value = st.recursive(st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | text,
                          lambda inner: st.lists(inner, max_size=4) | st.dictionaries(text, inner, max_size=4),
                          max_leaves=12)


@st.composite
def arm_ids(draw):
    sub = draw(st.one_of(st.uuids().map(str), name))
    parts = ["", draw(st.sampled_from(["subscriptions", "SUBSCRIPTIONS", "subscription", ""])), sub]
    if draw(st.booleans()):
        parts += [draw(st.sampled_from(["resourceGroups", "resourcegroups", "rg"])), draw(name)]
    if draw(st.booleans()):
        parts += ["providers", draw(st.sampled_from(["Microsoft.Storage", "Microsoft.Network", "Microsoft.Web"])),
                  draw(st.sampled_from(["storageAccounts", "networkSecurityGroups", "sites"])), draw(name)]
        for _ in range(draw(st.integers(0, 3))):
            parts += [draw(st.sampled_from(["blobServices", "config", "providers", "securityRules"])), draw(name)]
    return "/".join(parts)


event_types = st.one_of(st.sampled_from(SUPPORTED_EVENT_TYPES), st.sampled_from(
    ["Microsoft.Storage.BlobCreated", "microsoft.resources.resourcewritesuccess", ""]), text)
times = st.one_of(st.datetimes().map(lambda d: d.isoformat() + "Z"), st.just("2026-01-01T00:00:00.1234567+02:00"),
                  text, st.integers())


@st.composite
def envelopes(draw):
    subject = draw(arm_ids())
    data = draw(st.one_of(
        st.fixed_dictionaries({}, optional={
            "resourceUri": st.one_of(st.just(subject), arm_ids()), "operationName": text, "correlationId": text,
            "claims": st.dictionaries(text, text, max_size=3),
            "authorization": st.fixed_dictionaries({}, optional={"evidence": st.dictionaries(text, text, max_size=2)}),
            "resourceInfo": st.fixed_dictionaries({}, optional={
                "id": st.one_of(st.just(subject), arm_ids()), "type": text, "location": text,
                "tags": st.dictionaries(text, text, max_size=3),
                "properties": st.dictionaries(text, json_value, max_size=3)}),
            "operationalInfo": st.fixed_dictionaries({}, optional={"resourceEventTime": times}),
        }),
        json_value))
    if draw(st.booleans()):
        event = {"id": draw(st.one_of(text, st.uuids().map(str))), "subject": subject, "eventType": draw(event_types),
                 "eventTime": draw(times), "data": data, "dataVersion": "1", "topic": draw(text)}
    else:
        event = {"specversion": draw(st.sampled_from(["1.0", "0.3", ""])), "id": draw(text), "source": draw(text),
                 "type": draw(event_types), "subject": subject, "time": draw(times), "data": data}
    for key in draw(st.lists(st.sampled_from(sorted(event)), max_size=2)):
        event.pop(key, None)  # some required field missing
    return event


@settings(max_examples=2000, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.one_of(envelopes(), json_value))
def test_parser_accepts_or_rejects_clearly(obj):
    try:
        change = parse_event(envelope_from_dict(obj))
    except EventRejected as exc:
        assert exc.event_id and exc.reason
        return
    assert change.resource.value.startswith("/subscriptions/")
    assert change.event_time.tzinfo is not None


@settings(max_examples=300, deadline=None)
@given(st.lists(st.one_of(envelopes(), json_value), max_size=5), st.booleans())
def test_batches_and_json_lines_never_hide_an_event(objs, as_lines):
    payload = "\n".join(json.dumps(o) for o in objs) if as_lines else json.dumps(objs)
    items = list(iter_envelopes(payload))
    if as_lines and len(objs) == 1 and isinstance(objs[0], list):
        return  # one line holding an array is a JSON array file: nothing to tell them apart
    assert len(items) == len(objs)  # one envelope or one rejection per event: none hidden
    for item in items:
        assert not isinstance(item, EventRejected) or (item.event_id and item.reason)


class _Collect(logging.Handler):
    def __init__(self):
        super().__init__(logging.DEBUG)
        self.records: list[logging.LogRecord] = []

    def emit(self, record):
        self.records.append(record)


@settings(max_examples=1000, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(envelopes())
def test_handler_never_raises_on_bad_input_and_logs_every_rejection(event):
    from azure.functions.eventgrid import EventGridEventInConverter
    from azure.functions.meta import Datum

    deps = Dependencies(CATALOG, StaticResourceReader(), InMemoryStateStore(), MemorySink())
    bootstrap.override(deps)
    collector = _Collect()
    logger = logging.getLogger("handlers.resource_events")
    logger.addHandler(collector)
    try:
        try:
            decoded = EventGridEventInConverter.decode(Datum(json.dumps(event), "json"), trigger_metadata={})
        except Exception:  # the Functions worker itself refuses it before any code of ours runs
            return
        on_resource_change.build().get_user_function()(decoded)
    finally:
        logger.removeHandler(collector)
        bootstrap.override(None)
    try:
        parse_event(envelope_from_dict(event))
        rejected = False
    except EventRejected:
        rejected = True
    errors = [r.getMessage() for r in collector.records if r.levelno >= logging.ERROR]
    if rejected:
        assert errors and "rejected" in errors[0]


CATALOG = load_catalog()


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture,
                                                                  HealthCheck.too_slow])
@given(name, st.dictionaries(text, text, max_size=3))
def test_injection_strings_in_ids_and_tags_round_trip_through_table_storage(table_client, resource_name, tags):
    try:
        rid = parse_resource_id(f"/subscriptions/{uuid.uuid4()}/resourceGroups/rg/providers/"
                                f"Microsoft.Storage/storageAccounts/{resource_name}")
    except InvalidResourceId:
        return
    store = TableStateStore(table_client)
    from datetime import datetime, timezone

    at = datetime(2026, 1, 1, tzinfo=timezone.utc)
    state, _ = apply_evaluation(None, Evaluation(rid.value, "Microsoft.Storage/storageAccounts", at, "e", at, (),
                                                 tags=tags))
    store.save(None, state)
    loaded = store.load(rid)
    assert loaded is not None and loaded.resource_id == rid.value and dict(loaded.tags) == tags
    other = parse_resource_id(rid.value.rsplit("/", 1)[0] + "/x" + uuid.uuid4().hex)
    assert store.load(other) is None  # a crafted name never reads another partition
