"""Hostile and impossible inputs, through the real entry points.

Each test drives the Event Grid handler, the HTTP functions or ``python -m shared`` (state in Azurite where
state is involved) with an input that used to corrupt state, loop until dead-lettered, or hang a worker.
"""
from __future__ import annotations

import base64
import copy
import json
import logging
import os
import random
import re
import subprocess
import sys
import threading
import time
import uuid
from datetime import datetime, timedelta, timezone
from pathlib import Path

import azure.functions as func
import pytest
from azure.functions.eventgrid import EventGridEventInConverter
from azure.functions.meta import Datum
from hypothesis import given, settings
from hypothesis import strategies as st

from handlers.http_api import compliance, evaluate
from handlers.resource_events import REJECTED, on_resource_change
from shared import bootstrap
from shared.adapters.memory import MemorySink, StaticResourceReader
from shared.adapters.table_store import TableStateStore
from shared.config import ConfigurationError, Settings
from shared.policy.values import _like
from shared.domain.resource_ids import parse_resource_id
from shared.domain.scopes import Scopes
from shared.service.changes import Dependencies, drain_outbox, handle_change
from tests.conftest import pipeline_catalog

REPO = Path(__file__).resolve().parents[1]
SUB = "5c6d7e8f-1111-4222-8333-444455556666"
OTHER_SUB = "9f8e7d6c-aaaa-4bbb-8ccc-ddddeeeeffff"
RG = f"/subscriptions/{SUB}/resourceGroups/rg-hostile"
SA = f"{RG}/providers/Microsoft.Storage/storageAccounts/sthostile01"
SA2 = f"{RG}/providers/Microsoft.Storage/storageAccounts/sthostile02"
HARDENED = {
    "id": SA, "name": "sthostile01", "type": "Microsoft.Storage/storageAccounts", "location": "westeurope",
    "tags": {"owner": "ops", "environment": "prod"},
    "properties": {"supportsHttpsTrafficOnly": True, "minimumTlsVersion": "TLS1_2", "allowBlobPublicAccess": False,
                   "networkAcls": {"defaultAction": "Deny"}},
}


def resource(rid=SA, **props):
    found = copy.deepcopy(HARDENED)
    found["id"], found["name"] = rid, rid.rsplit("/", 1)[-1]
    found["properties"].update(props)
    return found


def notification(event_id, payload, at, subject=None, topic=f"/subscriptions/{SUB}"):
    info = {k: payload[k] for k in ("id", "name", "type", "location", "tags", "properties")}
    return {"id": event_id, "topic": topic, "subject": subject or payload["id"],
            "eventType": "Microsoft.ResourceNotifications.Resources.CreatedOrUpdated", "eventTime": at,
            "dataVersion": "1", "metadataVersion": "1",
            "data": {"resourceInfo": info, "apiVersion": "2023-05-01", "operationalInfo": {"resourceEventTime": at}}}


def arm_write(event_id, subject=SA, at=None, topic=f"/subscriptions/{SUB}"):
    at = at or datetime.now(timezone.utc).isoformat()
    return {"id": event_id, "topic": topic, "subject": subject, "eventType": "Microsoft.Resources.ResourceWriteSuccess",
            "eventTime": at, "dataVersion": "2", "metadataVersion": "1",
            "data": {"resourceUri": subject, "operationName": "Microsoft.Storage/storageAccounts/write"}}


def now_iso(offset=timedelta()):
    return (datetime.now(timezone.utc) + offset).isoformat()


class World:
    def __init__(self, deps, table):
        self.deps, self.table = deps, table
        self.function = on_resource_change.build().get_user_function()

    def deliver(self, event):
        """One event exactly as the Functions worker decodes it, into the real handler."""
        return self.function(EventGridEventInConverter.decode(Datum(json.dumps(event), "json"), trigger_metadata={}))

    def state(self, rid=SA):
        return self.deps.store.load(parse_resource_id(rid))

    def transitions(self):
        return [(r["Transition"], r["ControlId"]) for r in self.deps.sink.records]


@pytest.fixture
def world(table_client):
    deps = Dependencies(pipeline_catalog(), StaticResourceReader([HARDENED]), TableStateStore(table_client),
                        MemorySink(), scopes=Scopes.parse([f"/subscriptions/{SUB}"]))
    bootstrap.override(deps)
    yield World(deps, table_client)
    bootstrap.override(None)


def errors(caplog):
    return [r.getMessage() for r in caplog.records if r.levelno >= logging.ERROR]


# ----------------------------------------------------------------- 1. far-future event times


def test_a_far_future_event_time_does_not_make_later_payloads_stale(world):
    world.deliver(notification("future", resource(), "2999-01-01T00:00:00Z"))
    world.deliver(notification("now", resource(allowBlobPublicAccess=True), now_iso()))
    assert ("Drifted", "storage-no-public-blob-access") in world.transitions()
    state = world.state()
    assert state.last_event_time <= datetime.now(timezone.utc) + timedelta(minutes=10)


def test_an_event_dated_9999_is_evaluated_with_its_raw_time_kept(world, caplog):
    world.deliver(notification("far", resource(allowBlobPublicAccess=True), "9999-12-31T23:59:59.9999999Z"))
    assert world.transitions() == [("New", "storage-no-public-blob-access")]
    record = world.deps.sink.records[0]
    assert record["RawChangeTime"] == "9999-12-31T23:59:59.9999999Z"
    change_time = datetime.fromisoformat(record["ChangeTime"].replace("Z", "+00:00"))
    assert change_time <= datetime.now(timezone.utc) + timedelta(minutes=10)
    assert datetime.fromisoformat(record["DueDate"].replace("Z", "+00:00")) < datetime(2100, 1, 1, tzinfo=timezone.utc)


# ----------------------------------------------------------------- 2. identity of the event


def test_a_notification_whose_subject_and_resource_info_disagree_is_rejected(world, caplog):
    forged = notification("forged", resource(SA2, allowBlobPublicAccess=True), now_iso(), subject=SA)
    world.deliver(forged)
    assert world.state(SA) is None and world.state(SA2) is None
    assert any("forged" in m and "resourceInfo.id" in m for m in errors(caplog))


@pytest.mark.parametrize("topic", [f"/subscriptions/{OTHER_SUB}", f"/subscriptions/{SUB}/resourceGroups/rg-other"])
def test_a_topic_naming_another_scope_is_rejected(world, caplog, topic):
    world.deliver(notification("other-topic", resource(allowBlobPublicAccess=True), now_iso(), topic=topic))
    world.deliver(arm_write("other-topic-arm", topic=topic))
    assert world.state() is None
    assert sum("topic" in m for m in errors(caplog)) == 2


def test_empty_monitored_scopes_is_a_configuration_error_unless_star():
    with pytest.raises(ConfigurationError, match="MONITORED_SCOPES"):
        bootstrap.build(Settings.from_env({"STATE_STORE": "memory", "FINDINGS_SINK": "jsonl"}))
    deps = bootstrap.build(Settings.from_env({"STATE_STORE": "memory", "FINDINGS_SINK": "jsonl",
                                              "MONITORED_SCOPES": "*"}))
    assert deps.scopes.allows(parse_resource_id(f"/subscriptions/{OTHER_SUB}"))


# ----------------------------------------------------------------- 3. permanent failures


def test_a_resource_with_3000_tags_is_stored_bounded_with_full_tags_in_the_finding(world):
    tags = {**HARDENED["tags"], **{f"cost-centre-{i:04d}": f"value-{i:04d}-" + "x" * 10 for i in range(3000)}}
    payload = resource(allowBlobPublicAccess=True)
    payload["tags"] = tags
    world.deliver(notification("many-tags", payload, now_iso()))  # must not raise
    assert world.transitions() == [("New", "storage-no-public-blob-access")]
    assert world.deps.sink.records[0]["Tags"] == tags
    stored = world.state()
    assert len(stored.tags) < len(tags) and any("truncated" in k for k in stored.tags)


def test_a_200kb_event_id_is_handled_not_retried(world):
    event_id = "e" * 200_000
    world.deliver(notification(event_id, resource(allowBlobPublicAccess=True), now_iso()))
    assert world.transitions() == [("New", "storage-no-public-blob-access")]
    assert world.deps.sink.records[0]["EventId"] == event_id
    assert len(world.state().last_event_id) < 1000


def test_a_resource_id_whose_key_exceeds_azurite_512_characters_is_stored(world):
    long_id = f"{RG}/providers/Microsoft.Storage/storageAccounts/" + "s" * 600
    world.deps.reader.put(resource(long_id, allowBlobPublicAccess=True))
    world.deliver(arm_write("long-key", subject=long_id))
    assert world.transitions() == [("New", "storage-no-public-blob-access")]
    assert world.state(long_id).resource_id == long_id


def test_deeply_nested_data_is_rejected_not_redelivered(world, caplog):
    """As deep as the Functions worker's decoder accepts (orjson stops at 1,024 levels): ours must refuse it too."""
    depth = 1000
    body = json.dumps(arm_write("deep"))
    body = body[:-2] + ', "extra": ' + '{"a":' * depth + "{}" + "}" * depth + "}}"
    decoded = EventGridEventInConverter.decode(Datum(body, "json"), trigger_metadata={})
    world.function(decoded)  # acknowledged: must not raise
    assert any("deep" in m and "nest" in m for m in errors(caplog))
    assert world.state() is None


def test_a_permanent_store_rejection_is_acknowledged_counted_and_visible(world, caplog, monkeypatch):
    """Whatever Table Storage can never hold (here a 70,000-character value slipped into the first write) is
    acknowledged, logged with the event id and the table's error code, counted, and recorded NotEvaluated."""
    real_head = TableStateStore._head
    calls = []

    def head(pk, new):
        row = real_head(pk, new)
        calls.append(pk)
        return {**row, "Oversized": "x" * 70_000} if len(calls) == 1 else row

    monkeypatch.setattr(TableStateStore, "_head", staticmethod(head))
    before = REJECTED["PermanentFailure"]
    world.deliver(notification("too-big", resource(allowBlobPublicAccess=True), now_iso()))  # must not raise
    assert REJECTED["PermanentFailure"] == before + 1
    assert any("too-big" in m and "PropertyValueTooLarge" in m for m in errors(caplog))
    state = world.state()
    assert state is not None and state.controls
    assert all(cs.status is None and "could not be stored" in (cs.note or "") for cs in state.controls.values())
    assert world.deps.sink.records == []


# ----------------------------------------------------------------- 4. like without backtracking


def _like_regex(value, pattern):
    """The old translation, anchored with \\Z: its '$' also matched before a final newline ('a\\n' like 'a')."""
    regex = "^" + ".*".join(re.escape(p) for p in pattern.split("*")) + r"\Z"
    return re.match(regex, value, re.IGNORECASE | re.DOTALL) is not None


@settings(max_examples=3000, deadline=None)
@given(st.text("aAb*\n", max_size=8), st.text("aAbB\n", max_size=10))
def test_like_agrees_with_the_regex_version_on_small_inputs(pattern, value):
    assert _like(value, pattern) == _like_regex(value, pattern)


def test_like_on_a_hostile_tag_value_is_linear():
    value = "a" * 4096
    assert _like(value, "*a" * 40 + "*b") is False
    assert _like(value + "b", "*a" * 40 + "*b") is True


def test_a_hostile_like_pattern_through_the_handler_finishes(world, tmp_path):
    """A custom control with many wildcards, a tag value chosen by the resource's owner: evaluated, not hung."""
    from shared.catalog import load_catalog

    (tmp_path / "tag-like.yaml").write_text(
        "id: tag-env-like\ntitle: Environment tag pattern\ndescription: d\nseverity: Low\n"
        "resourceTypes: [Microsoft.Storage/storageAccounts]\nremediation: {text: fix}\n"
        "rule:\n  field: tags['environment']\n  notLike: '" + "*a" * 12 + "*b'\n", encoding="utf-8")
    world.deps.catalog = load_catalog([tmp_path])
    payload = resource()
    payload["tags"] = {"environment": "a" * 256}
    world.deliver(notification("like", payload, now_iso()))
    assert world.transitions() == [("New", "tag-env-like")]


# ----------------------------------------------------------------- 5. the outbox never re-sends


class SlowSink(MemorySink):
    def __init__(self):
        super().__init__()
        self.sending, self.release = threading.Event(), threading.Event()

    def send(self, records):
        self.sending.set()
        self.release.wait(10)
        super().send(records)


def test_a_drain_during_an_inline_send_does_not_send_the_same_rows(world):
    world.deps.sink = SlowSink()
    world.deps.reader.put(resource(allowBlobPublicAccess=True, supportsHttpsTrafficOnly=False))
    worker = threading.Thread(target=world.deliver, args=(arm_write("slow"),))
    worker.start()
    assert world.deps.sink.sending.wait(10)
    drained = drain_outbox(world.deps)  # the timer fires while the inline send is still in flight
    world.deps.sink.release.set()
    worker.join(10)
    ids = [r["FindingId"] for r in world.deps.sink.records]
    assert len(ids) == 2 and len(set(ids)) == 2, ids
    assert drained.sent == 0
    assert world.deps.store.pending(datetime.now(timezone.utc) + timedelta(hours=1), 100) == []


# ----------------------------------------------------------------- 6 and 9. the HTTP API


def http(function, method, body=None, headers=None, raw=None):
    request = func.HttpRequest(method=method, url=f"/api/{function.build().get_function_name()}", params={},
                               headers=headers or {}, body=raw if raw is not None else json.dumps(body).encode())
    response = function.build().get_user_function()(request)
    return response.status_code, json.loads(response.get_body() or b"null")


def principal(name, oid="0d0e0f00-0000-4000-8000-0000000000aa"):
    claims = {"auth_typ": "aad", "name_typ": "name", "role_typ": "roles",
              "claims": [{"typ": "name", "val": name},
                         {"typ": "http://schemas.microsoft.com/identity/claims/objectidentifier", "val": oid}]}
    return base64.b64encode(json.dumps(claims).encode()).decode()


def test_a_spoofed_principal_name_header_is_not_the_caller(world, monkeypatch):
    monkeypatch.delenv("WEBSITE_AUTH_ENABLED", raising=False)
    world.deps.reader.put(resource(allowBlobPublicAccess=True))
    status, body = http(evaluate, "POST", {"resourceId": SA}, headers={"x-ms-client-principal-name": "ceo@contoso.com"})
    assert status == 200, body
    assert [f["Caller"] for f in body["findings"]] == ["api (function key)"]


def test_the_caller_comes_from_the_validated_principal_when_authentication_is_on(world, monkeypatch):
    monkeypatch.setenv("WEBSITE_AUTH_ENABLED", "True")
    world.deps.reader.put(resource(allowBlobPublicAccess=True))
    status, body = http(evaluate, "POST", {"resourceId": SA}, headers={
        "x-ms-client-principal": principal("ops@contoso.com"), "x-ms-client-principal-name": "ceo@contoso.com",
        "x-ms-client-principal-id": "0d0e0f00-0000-4000-8000-0000000000aa"})
    assert status == 200, body
    assert [f["Caller"] for f in body["findings"]] == ["ops@contoso.com"]
    status, body = http(evaluate, "POST", {"resourceId": SA}, headers={"x-ms-client-principal": "not base64!"})
    assert status == 401 and "principal" in body["error"]


def test_an_oversized_body_is_refused_with_413(world):
    status, body = http(evaluate, "POST", raw=json.dumps({"resourceId": SA, "pad": "x" * 20_000_000}).encode())
    assert status == 413 and "bytes" in body["error"]
    assert world.deps.reader.reads == 0
    status, _ = http(compliance, "GET", raw=b"x" * 2_000_000)
    assert status == 413


def test_an_evaluation_on_request_that_can_never_be_stored_is_422_not_500(world, monkeypatch):
    real_head = TableStateStore._head
    calls = []

    def head(pk, new):
        calls.append(pk)
        row = real_head(pk, new)
        return {**row, "Oversized": "x" * 70_000} if len(calls) == 1 else row

    monkeypatch.setattr(TableStateStore, "_head", staticmethod(head))
    status, body = http(evaluate, "POST", {"resourceId": SA})
    assert status == 422 and "PropertyValueTooLarge" in body["error"]
    status, body = http(compliance, "GET", {"resourceId": SA})
    assert status == 200 and all(c["status"] == "NotEvaluated" for c in body["controls"])


# ----------------------------------------------------------------- 7. replay goes on after a bad line


def run_cli(*args, env=None):
    full_env = {k: v for k, v in os.environ.items() if not k.startswith(("STATE_", "FINDINGS_", "CONTROL"))}
    full_env.update(env or {})
    return subprocess.run([sys.executable, "-m", "shared", *args], capture_output=True, text=True, cwd=REPO,
                          env=full_env, timeout=120)


def test_replay_reports_a_deeply_nested_line_and_replays_the_rest(tmp_path):
    good = notification("after-deep", resource(allowBlobPublicAccess=True), now_iso())
    lines = [json.dumps(arm_write("before-deep")), "[" * 100_000 + "]" * 100_000, json.dumps(good)]
    path = tmp_path / "events.jsonl"
    path.write_text("\n".join(lines))
    proc = run_cli("replay", str(path))
    assert "Traceback" not in proc.stderr, proc.stderr[-2000:]
    assert f"{path}:2" in proc.stderr and "nest" in proc.stderr
    findings = [json.loads(line) for line in proc.stdout.splitlines()]
    assert {f["EventId"] for f in findings} == {"after-deep"}
    assert ("New", "storage-no-public-blob-access") in [(f["Transition"], f["ControlId"]) for f in findings]
    assert proc.returncode == 1


def test_evaluate_reports_a_deeply_nested_file(tmp_path):
    path = tmp_path / "deep.json"
    path.write_text("[" * 100_000 + "]" * 100_000)
    proc = run_cli("evaluate", str(path))
    assert proc.returncode == 2 and "Traceback" not in proc.stderr and "deep.json" in proc.stderr


# ----------------------------------------------------------------- 8. '..' segments


@pytest.mark.parametrize("subject", [
    f"{RG}/providers/Microsoft.Storage/storageAccounts/../../../../resourceGroups/rg-x/providers/"
    "Microsoft.Storage/storageAccounts/sty",
    f"/subscriptions/{SUB}/resourceGroups/../providers/Microsoft.Storage/storageAccounts/stz",
    f"{RG}/providers/Microsoft.Storage/storageAccounts/.",
])
def test_dot_segments_are_rejected(world, caplog, subject):
    world.deliver(arm_write("dots", subject=subject))
    assert world.deps.reader.reads == 0
    assert any("dots" in m and "'..'" in m or "'.'" in m for m in errors(caplog))
    status, body = http(evaluate, "POST", {"resourceId": subject})
    assert status == 400


def test_app_service_authentication_protects_the_api_but_not_event_grid_delivery():
    """infra: authsettingsV2 requires an Entra ID token (401 otherwise) except on the Event Grid webhook."""
    from tests.test_bicep import MAIN, body, module, parsed, resources_of_type

    (auth,) = resources_of_type(module("function-app-auth"), "Microsoft.Web/sites/config")
    props = body(auth)["properties"]
    assert body(auth)["name"] == "authsettingsV2" and props["platform"]["enabled"] is True
    validation = props["globalValidation"]
    assert validation["requireAuthentication"] is True and validation["unauthenticatedClientAction"] == "Return401"
    assert validation["excludedPaths"] == ["/runtime/webhooks/eventgrid"]
    assert props["identityProviders"]["azureActiveDirectory"]["enabled"] is True
    wired = [m for m in parsed(MAIN)["modules"].values() if m["detail"]["path"] == "modules/function-app-auth.bicep"]
    assert len(wired) == 1


@pytest.mark.parametrize("env, message", [
    ({"CONTROL_SOURCES": "builtin,policies"}, "CONTROL_SOURCES: policies is not a source"),
    ({"ASSIGNMENTS_REFRESH_MINUTES": "0"}, "ASSIGNMENTS_REFRESH_MINUTES='0'"),
    ({"ASSIGNMENTS_REFRESH_MINUTES": "ten"}, "from 1 to 1440"),
])
def test_control_source_settings_are_checked(env, message):
    with pytest.raises(ConfigurationError, match=message):
        Settings.from_env(env)


def test_control_sources_choose_what_is_loaded():
    default = Settings.from_env({"CONTROLS_PATH": "mine"})
    assert default.assignments_enabled and [p.name for p in default.control_directories()][-1] == "mine"
    only = Settings.from_env({"CONTROL_SOURCES": "Assignments", "CONTROLS_PATH": "mine"})
    assert only.assignments_enabled and only.control_directories() == []
    assert not Settings.from_env({"CONTROL_SOURCES": "builtin"}).assignments_enabled
