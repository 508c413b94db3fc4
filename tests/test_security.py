"""Scope security, secret redaction, oversized input and what the logs may contain."""
from __future__ import annotations

import json
import logging

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from handlers.resource_events import REJECTED, on_resource_change
from shared import bootstrap
from shared.adapters.memory import InMemoryStateStore, MemorySink, StaticResourceReader
from shared.catalog import load_catalog
from shared.domain.events import MAX_EVENT_BYTES, EventRejected, envelope_from_dict, parse_event
from shared.domain.redaction import REDACTED, redact
from shared.domain.resource_ids import parse_resource_id
from shared.domain.scopes import InvalidScope, Scopes
from shared.service.changes import Dependencies, OutOfScope, handle_change

SUB_IN = "aaaaaaaa-0000-4000-8000-000000000001"
SUB_OUT = "bbbbbbbb-0000-4000-8000-000000000002"


def sa_id(sub, rg="rg-app", name="stapp01"):
    return f"/subscriptions/{sub}/resourceGroups/{rg}/providers/Microsoft.Storage/storageAccounts/{name}"


def event(subject, **data):
    return {"id": "ev-" + subject[-8:], "topic": "/subscriptions/" + subject.split("/")[2], "subject": subject,
            "eventType": "Microsoft.Resources.ResourceWriteSuccess", "eventTime": "2026-06-01T10:00:00Z",
            "dataVersion": "2", "data": {"resourceUri": subject, **data}}


@pytest.mark.parametrize("scopes, resource, allowed", [
    ([f"/subscriptions/{SUB_IN}"], sa_id(SUB_IN), True),
    ([f"/subscriptions/{SUB_IN.upper()}"], sa_id(SUB_IN).replace("resourceGroups", "RESOURCEGROUPS"), True),
    ([f"/subscriptions/{SUB_IN}"], sa_id(SUB_OUT), False),
    ([f"/subscriptions/{SUB_IN}/resourceGroups/rg-app"], sa_id(SUB_IN), True),
    ([f"/subscriptions/{SUB_IN}/resourceGroups/rg-app"], sa_id(SUB_IN, rg="rg-app2"), False),  # not a prefix match
    ([f"/subscriptions/{SUB_IN[:-1]}"], sa_id(SUB_IN), False),
    (["*"], sa_id(SUB_OUT), True),  # explicit: an empty MONITORED_SCOPES is refused (test_hostile.py)
])
def test_scopes(scopes, resource, allowed):
    assert Scopes.parse(scopes).allows(parse_resource_id(resource)) is allowed


@pytest.mark.parametrize("entry", ["subscriptions/x", sa_id(SUB_IN), "", "/subscriptions/"])
def test_bad_scope_entries_are_named(entry):
    with pytest.raises(InvalidScope, match="MONITORED_SCOPES"):
        Scopes.parse([entry])


@pytest.fixture
def deps():
    reader = StaticResourceReader()
    d = Dependencies(load_catalog(), reader, InMemoryStateStore(), MemorySink(),
                     scopes=Scopes.parse([f"/subscriptions/{SUB_IN}"]))
    bootstrap.override(d)
    yield d
    bootstrap.override(None)


def test_out_of_scope_event_is_refused_without_reading(deps):
    with pytest.raises(OutOfScope, match="outside the monitored scopes"):
        handle_change(parse_event(envelope_from_dict(event(sa_id(SUB_OUT)))), deps)
    assert deps.reader.reads == 0 and deps.store.loads == 0


def test_handler_logs_and_counts_out_of_scope_events(deps, caplog):
    from azure.functions.eventgrid import EventGridEventInConverter
    from azure.functions.meta import Datum

    before = REJECTED["OutOfScope"]
    body = json.dumps(event(sa_id(SUB_OUT)))
    with caplog.at_level(logging.INFO):
        on_resource_change.build().get_user_function()(EventGridEventInConverter.decode(Datum(body, "json"),
                                                                                       trigger_metadata={}))
    assert REJECTED["OutOfScope"] == before + 1
    assert any("ev-" in r.getMessage() and "outside the monitored scopes" in r.getMessage()
               for r in caplog.records if r.levelno == logging.ERROR)


def test_tokens_and_claims_stay_out_of_logs_above_debug(deps, caplog):
    from azure.functions.eventgrid import EventGridEventInConverter
    from azure.functions.meta import Datum

    token = "eyJ0eXAiOiJKV1QiLCJhbGciOiJSUzI1NiJ9.eyJzdWIiOiIxMjM0NTY3ODkwIn0.c2lnbmF0dXJlc2lnbmF0dXJl"
    secret_claim = "ipaddr-203.0.113.77-secret-claim"
    resource = {"id": sa_id(SUB_IN), "type": "Microsoft.Storage/storageAccounts", "location": "westeurope",
                "tags": {}, "properties": {"supportsHttpsTrafficOnly": False}}
    deps.reader.put(resource)
    body = json.dumps(event(sa_id(SUB_IN), claims={"ipaddr": secret_claim, "upn": "ana@contoso.com"},
                            httpRequest={"authorization": f"Bearer {token}"}))
    with caplog.at_level(logging.INFO):
        on_resource_change.build().get_user_function()(EventGridEventInConverter.decode(Datum(body, "json"),
                                                                                       trigger_metadata={}))
    text = "\n".join(r.getMessage() for r in caplog.records if r.levelno > logging.DEBUG)
    assert "storage-https-only" in text  # the finding was logged...
    assert token not in text and secret_claim not in text  # ...but no token or raw claim


def test_oversized_event_is_rejected_with_its_size():
    big = event(sa_id(SUB_IN), padding="x" * (MAX_EVENT_BYTES + 10))
    with pytest.raises(EventRejected, match="bytes; Event Grid events are at most"):
        parse_event(envelope_from_dict(big))


@pytest.mark.parametrize("value, kept", [
    ("DefaultEndpointsProtocol=https;AccountName=st;AccountKey=c2VjcmV0a2V5;EndpointSuffix=core.windows.net",
     "AccountName=st"),
    ("https://st.blob.core.windows.net/c/b?sv=2022-11-02&se=2026-01-01&sig=abc%2Bdef%3D", "sv=2022-11-02"),
    ("Server=tcp:db.database.windows.net;Database=app;User ID=admin;Password=P@ssw0rd!;", "Database=app"),
    ("Endpoint=sb://ns.servicebus.windows.net/;SharedAccessKeyName=root;SharedAccessKey=a2V5a2V5a2V5", "root"),
])
def test_secret_looking_values_are_redacted(value, kept):
    out = redact({"actual": value})["actual"]
    assert REDACTED in out and kept in out
    assert "c2VjcmV0a2V5" not in out and "P@ssw0rd!" not in out and "abc%2Bdef" not in out


def test_secret_named_fields_and_app_setting_pairs_are_redacted():
    out = redact({"actual": [{"name": "DB_PASSWORD", "value": "hunter2"}, {"name": "REGION", "value": "eu"}],
                  "clientSecret": "s3cr3t", "path": "properties.siteConfig.appSettings[0]"})
    assert out["actual"][0]["value"] == REDACTED and out["actual"][1]["value"] == "eu"
    assert out["clientSecret"] == REDACTED and out["path"] == "properties.siteConfig.appSettings[0]"


def test_control_evidence_is_redacted_before_it_is_stored_or_sent(tmp_path):
    (tmp_path / "conn.yaml").write_text(
        "id: tag-has-no-connection-string\ntitle: Tags carry no connection strings\nseverity: High\n"
        "resourceTypes: ['*']\nrule: {field: \"tags['connection']\", like: '*AccountKey=*'}\n")
    catalog = load_catalog([tmp_path])
    resource = {"id": sa_id(SUB_IN), "type": "Microsoft.Storage/storageAccounts", "location": "westeurope",
                "tags": {"connection": "AccountName=st;AccountKey=bm90LWEtcmVhbC1rZXk="}}
    (result,) = catalog.evaluate(resource)
    assert result.status.value == "NonCompliant"
    assert "bm90LWEtcmVhbC1rZXk=" not in json.dumps(result.evidence)
    assert result.evidence[0]["path"] == "tags.connection"


def test_redaction_shared_across_controls_copies_each_object_once_and_still_redacts():
    setting = {"name": "STORAGE_KEY", "value": "DefaultEndpointsProtocol=https;AccountKey=c2VjcmV0a2V5;"}
    rule = {"name": "rule-00", "properties": {"access": "Allow", "sourceAddressPrefix": "*"}}
    first = [{"count": "rules[*]", "matched": [{"path": "rules[0]", "value": rule}, {"value": setting}]}]
    second = [{"field": "x", "actual": setting}, {"count": "rules[*]", "matched": [{"value": rule}]}]
    memo: dict = {}
    a, b = redact(first, memo=memo), redact(second, memo=memo)
    assert a == redact(first) and b == redact(second)  # the memo changes nothing but the work
    assert a[0]["matched"][1]["value"] is b[0]["actual"]  # one copy of the quoted object, shared
    assert "c2VjcmV0a2V5" not in a[0]["matched"][1]["value"]["value"] and setting["value"].endswith("c2VjcmV0a2V5;")
    assert a[0]["matched"][0]["value"] is not rule  # a copy, never the resource's own object


def test_nsg_evidence_is_the_same_whether_or_not_controls_share_redacted_copies():
    from bench import mix
    from shared.catalog import Catalog, offline_related

    catalog = load_catalog()
    group = [t for t in mix.templates() if t["type"] == mix.NSG_TYPE][5]  # an open group failing several controls
    shared_results = catalog.evaluate(group)
    alone = [Catalog._evaluate_one(c, group, offline_related, {}) for c in catalog.applicable(group)]
    assert sum(r.status.value == "NonCompliant" for r in shared_results) >= 3
    assert [(r.control_id, r.status, r.evidence) for r in shared_results] == \
        [(r.control_id, r.status, r.evidence) for r in alone]


def test_long_strings_found_clean_are_remembered_and_secrets_never_are(monkeypatch):
    import shared.domain.redaction as redaction

    monkeypatch.setattr(redaction, "_CLEAN", {})
    monkeypatch.setattr(redaction, "_CLEAN_LIMIT", 3)
    kind = "Microsoft.Network/networkSecurityGroups/securityRules"
    secret = "Endpoint=sb://ns.servicebus.windows.net/;SharedAccessKey=a2V5a2V5a2V5"
    short = "Pwd=hunter2;"
    for _ in range(2):  # the second time from the memory of clean strings, the same answer
        assert redaction.redact_text(kind) == kind and redaction.redact_text("Allow") == "Allow"
        assert "a2V5a2V5a2V5" not in redaction.redact_text(secret)
        assert "hunter2" not in redaction.redact_text(short)
    assert kind in redaction._CLEAN and secret not in redaction._CLEAN and short not in redaction._CLEAN
    for i in range(5):  # bounded: emptied when full
        redaction.redact_text(f"{kind}/rule-{i:02d}")
        assert len(redaction._CLEAN) <= 3


@settings(max_examples=300, deadline=None)
@given(key=st.sampled_from(["value", "actual", "id", "path", "dbPassword", "clientSecret", "name", "etag"]),
       text=st.one_of(st.text(max_size=60), st.sampled_from([
           "AccountKey=c2VjcmV0a2V5", "x?sig=abc&y=1", "Pwd=hunter2;", "eyJhbGciOiJIUzI1.eyJzdWIiOiIxMjM0.c2lnbmF0dXJlMTIz",
           "QUJDREVGR0hJSktMTU5PUFFSU1RVVldYWVo0123456789abcdefgh", ""])))
def test_a_string_in_an_object_is_redacted_as_it_would_be_on_its_own(key, text):
    assert redact({key: text})[key] == redact(text, key)
    assert redact({key: text}, memo={})[key] == redact(text, key)
