"""Resource Notifications payloads: typed, judged as far as they go, completed by one ARM read.

The documented example (tests/fixtures/documented/, Microsoft's event-schema-resources
article, both schemas, placeholders as published) carries booleans as 1/0 and
``apiVersion`` 2019-06-01.
"""
from __future__ import annotations

import copy
import json
from datetime import datetime, timezone
from pathlib import Path

import pytest

from shared.adapters.memory import InMemoryStateStore, MemorySink, StaticResourceReader
from shared.catalog import load_catalog
from shared.domain.events import envelope_from_dict, parse_event
from shared.domain.payloads import KNOWN_BOOLEANS, annotate, lacks, normalise, plan
from shared.policy import parse_path
from shared.service.changes import Dependencies, handle_change

DOCUMENTED = Path(__file__).resolve().parent / "fixtures" / "documented"
SCHEMAS = ("eventgrid", "cloudevents")
CLOCK = datetime(2026, 4, 1, 8, 0, tzinfo=timezone.utc)


def published(schema: str) -> dict:
    return json.loads((DOCUMENTED / f"arn-documented-storage.{schema}.json").read_text(encoding="utf-8"))


def documented(schema: str) -> dict:
    """The documented example with its one typo mended: ``resourceInfo.id`` spells ``{subcription-id}``
    where the subject says ``{subscription-id}`` (as published, the identity check rejects it: below)."""
    body = published(schema)
    info = body["data"]["resourceInfo"]
    info["id"] = info["id"].replace("{subcription-id}", "{subscription-id}")
    return body


@pytest.mark.parametrize("schema", SCHEMAS)
def test_documented_example_as_published_is_rejected_for_its_mismatched_ids(schema):
    from shared.domain.events import EventRejected

    with pytest.raises(EventRejected, match="disagree"):
        parse_event(envelope_from_dict(published(schema)))


def storage_catalog():
    full = load_catalog()
    return load_catalog(disabled=[c.id for c in full.controls if "microsoft.storage/storageaccounts"
                                  not in c.resource_types])


def arm_get_of(payload: dict) -> dict:
    """The same account as an ARM GET of today's API version returns it: booleans, and the newer properties."""
    resource = copy.deepcopy(payload)
    props = resource["properties"]
    for key in ("allowBlobPublicAccess", "allowSharedKeyAccess", "supportsHttpsTrafficOnly"):
        props[key] = bool(props[key])
    props["encryption"]["requireInfrastructureEncryption"] = bool(props["encryption"]["requireInfrastructureEncryption"])
    for service in props["encryption"]["services"].values():
        service["enabled"] = bool(service["enabled"])
    props.update(publicNetworkAccess="Enabled", allowCrossTenantReplication=False, defaultToOAuthAuthentication=False,
                 keyPolicy={"keyExpirationPeriodInDays": 90}, dnsEndpointType="Standard")
    return resource


def event(raw: dict, event_id: str, time: str, **props) -> object:
    """The documented event with another id and time, and ``props`` changed in its payload."""
    body = copy.deepcopy(raw)
    body["id"] = event_id
    body["data"]["operationalInfo"]["resourceEventTime"] = time
    body["eventTime" if "eventTime" in body else "time"] = time
    body["data"]["resourceInfo"]["properties"].update(props)
    return parse_event(envelope_from_dict(body))


def arm_write(resource_id: str, event_id: str, time: str):
    return parse_event(envelope_from_dict({
        "id": event_id, "topic": "/".join(resource_id.split("/")[:3]), "subject": resource_id, "eventTime": time,
        "eventType": "Microsoft.Resources.ResourceWriteSuccess", "dataVersion": "2",
        "data": {"resourceUri": resource_id, "operationName": "Microsoft.Storage/storageAccounts/write"}}))


def transitions(outcome) -> list[tuple[str, str]]:
    return sorted((f["Transition"], f["ControlId"]) for f in outcome.findings)


# ----------------------------------------------------------------------------- typing


def test_rules_tell_which_properties_are_boolean():
    controls = storage_catalog().by_id()
    assert parse_path("properties.allowBlobPublicAccess") in controls["storage-no-public-blob-access"].reads.booleans
    assert parse_path("properties.encryption.requireInfrastructureEncryption") in \
        controls["storage-infrastructure-encryption"].reads.booleans
    assert not controls["storage-min-tls-1-2"].reads.booleans  # compared with strings
    assert not controls["storage-key-expiration-policy"].reads.booleans & {
        parse_path("properties.keyPolicy.keyExpirationPeriodInDays")}  # a number, compared with numbers


def test_normalise_types_booleans_only_where_boolean_and_never_touches_the_input():
    raw = {"properties": {"a": 1, "b": 0, "c": "TRUE", "d": "false", "e": 2, "f": "yes", "n": 1,
                          "list": [{"on": 1}, {"on": 0}], "map": {"x": {"enabled": 1}, "y": {"enabled": True}}}}
    before = copy.deepcopy(raw)
    paths = [parse_path(p) for p in ("properties.a", "properties.b", "properties.c", "properties.d", "properties.e",
                                     "properties.f", "properties.list[*].on", "properties.map.*.enabled")]
    typed, coerced = normalise(raw, paths)
    p = typed["properties"]
    assert (p["a"], p["b"], p["c"], p["d"]) == (True, False, True, False)
    assert p["e"] == 2 and p["f"] == "yes" and p["n"] == 1  # numbers stay numbers; other text stays text
    assert [i["on"] for i in p["list"]] == [True, False]
    assert p["map"]["x"]["enabled"] is True
    assert coerced == {"properties.a": 1, "properties.b": 0, "properties.c": "TRUE", "properties.d": "false",
                       "properties.list[0].on": 1, "properties.list[1].on": 0, "properties.map.x.enabled": 1}
    assert raw == before
    untouched, none = normalise(before, [parse_path("properties.e")])
    assert untouched is before and none == {}


def test_lacks_tells_absent_from_null():
    payload = {"tags": {}, "properties": {"a": None, "b": {"c": 1}, "arr": []}}
    assert not lacks(payload, ("properties", "a"))
    assert not lacks(payload, ("properties", "a", "deeper"))  # a null parent is carried: nothing below it
    assert lacks(payload, ("properties", "missing"))
    assert lacks(payload, ("properties", "b", "d"))
    assert not lacks(payload, ("properties", "arr", "*", "x"))
    assert not lacks(payload, ("tags", "owner"))  # tags travel whole: an absent tag is absent
    assert lacks(payload, ("identity", "type"))  # not part of a payload


@pytest.mark.parametrize("schema", SCHEMAS)
def test_documented_example_is_typed_and_its_gaps_named(schema):
    change = parse_event(envelope_from_dict(documented(schema)))
    assert change.payload_api_version == "2019-06-01"
    catalog = storage_catalog()
    extra = [parse_path(p) for p in KNOWN_BOOLEANS["microsoft.storage/storageaccounts"]]
    result = plan(change.payload, catalog.applicable(change.payload), change.payload_api_version, extra)
    assert result.coerced == {
        "properties.allowBlobPublicAccess": 1, "properties.allowSharedKeyAccess": 1,
        "properties.supportsHttpsTrafficOnly": 1, "properties.encryption.requireInfrastructureEncryption": 0,
        "properties.encryption.services.file.enabled": 1, "properties.encryption.services.blob.enabled": 1}
    props = result.resource["properties"]
    assert props["allowBlobPublicAccess"] is True and props["encryption"]["requireInfrastructureEncryption"] is False
    assert change.payload["properties"]["allowBlobPublicAccess"] == 1  # the event itself is left as delivered
    # 2019-06-01 predates these properties: the controls that read them are not judged on the payload
    assert result.missing == {
        "storage-cross-tenant-replication-disabled": ("properties.allowCrossTenantReplication",),
        "storage-default-oauth": ("properties.defaultToOAuthAuthentication",),
        "storage-key-expiration-policy": ("properties.keyPolicy.keyExpirationPeriodInDays",),
        "storage-network-default-deny": ("properties.publicNetworkAccess",),
        "storage-public-network-access-disabled": ("properties.publicNetworkAccess",)}
    assert "apiVersion 2019-06-01" in result.reason()
    evidence = annotate([{"path": "properties.allowBlobPublicAccess", "actual": True}], result.coerced)
    assert evidence == [{"path": "properties.allowBlobPublicAccess", "actual": True, "raw": 1,
                         "source": "Resource Notifications payload"}]


# ----------------------------------------------------------------------------- the stream


class RecordingReader(StaticResourceReader):
    """Remembers the types it was asked for (resource-group reads for ownership are not the point here)."""

    def __init__(self) -> None:
        super().__init__()
        self.asked: list[str] = []

    def get(self, resource_id):
        self.asked.append(resource_id.resource_type.lower())
        return super().get(resource_id)

    def accounts_read(self) -> int:
        return self.asked.count("microsoft.storage/storageaccounts")


@pytest.fixture
def world():
    deps = Dependencies(catalog=storage_catalog(), reader=RecordingReader(), store=InMemoryStateStore(),
                        sink=MemorySink(), clock=lambda: CLOCK)
    return deps


@pytest.mark.parametrize("schema", SCHEMAS)
def test_payload_then_arm_read_then_payload_gives_only_real_transitions(world, schema):
    raw = documented(schema)
    first = event(raw, "p1", "2026-04-01T07:00:00Z")
    arm_shape = arm_get_of(first.payload)
    world.reader.put(arm_shape)
    truth = {r.control_id for r in world.catalog.evaluate(arm_shape) if r.status.value == "NonCompliant"}
    assert "storage-https-only" not in truth and "storage-no-public-blob-access" in truth

    opened = handle_change(first, world)
    assert world.reader.accounts_read() == 1 and "apiVersion 2019-06-01" in opened.reread  # completed by one GET
    # what is really wrong opens, and nothing else: supportsHttpsTrafficOnly 1 is true, not a finding
    assert transitions(opened) == sorted(("New", c) for c in truth)
    blob = next(f for f in opened.findings if f["ControlId"] == "storage-no-public-blob-access")
    assert {"path": "properties.allowBlobPublicAccess", "actual": True, "raw": 1}.items() <= next(
        e for e in blob["Evidence"] if e.get("path") == "properties.allowBlobPublicAccess").items()
    infra = next(f for f in opened.findings if f["ControlId"] == "storage-infrastructure-encryption")
    assert any(e.get("raw") == 0 and e.get("actual") is False for e in infra["Evidence"])

    assert transitions(handle_change(arm_write(arm_shape["id"], "a1", "2026-04-01T07:01:00Z"), world)) == []
    assert transitions(handle_change(event(raw, "p2", "2026-04-01T07:02:00Z"), world)) == []

    # a real fix, in the payload's own number style: exactly one Resolved
    world.reader.put({**arm_shape, "properties": {**arm_shape["properties"], "allowBlobPublicAccess": False}})
    fixed = handle_change(event(raw, "p3", "2026-04-01T07:03:00Z", allowBlobPublicAccess=0), world)
    assert transitions(fixed) == [("Resolved", "storage-no-public-blob-access")]
    assert transitions(handle_change(arm_write(arm_shape["id"], "a2", "2026-04-01T07:04:00Z"), world)) == []
    kinds = [r["Transition"] for r in world.sink.records]
    assert kinds.count("Resolved") == 1 and "Drifted" not in kinds


def test_numbers_left_untyped_would_have_raised_false_findings(world):
    """The failure the typing prevents, shown on the same stream with typing switched off."""
    raw = documented("eventgrid")
    first = event(raw, "p1", "2026-04-01T07:00:00Z")
    verdicts = {r.control_id: r.status.value for r in world.catalog.evaluate(first.payload)}
    assert verdicts["storage-https-only"] == "NonCompliant"  # 1 is not true to the rule engine


def test_a_complete_payload_needs_no_read_and_still_shows_coercion(world):
    raw = documented("cloudevents")
    complete = arm_get_of(event(raw, "x", "2026-04-01T07:00:00Z").payload)["properties"]
    complete.update(allowBlobPublicAccess=1, supportsHttpsTrafficOnly="false")
    outcome = handle_change(event(raw, "p1", "2026-04-01T07:00:00Z", **complete), world)
    assert outcome.reread is None and world.reader.accounts_read() == 0
    https = next(f for f in outcome.findings if f["ControlId"] == "storage-https-only")
    assert any(e.get("raw") == "false" and e.get("actual") is False for e in https["Evidence"])


def test_inline_site_setting_in_a_payload_is_typed_and_judged_inline():
    site = json.loads((Path(__file__).resolve().parent / "fixtures" / "resources" / "webapp-hardened.json").read_text())
    site.pop("$related")
    payload = {k: site[k] for k in ("id", "name", "type", "location", "tags", "properties")}
    payload["properties"]["siteConfig"]["remoteDebuggingEnabled"] = 1
    catalog = load_catalog(disabled=[c.id for c in load_catalog().controls if c.id != "appservice-remote-debugging-off"])
    result = plan(payload, catalog.applicable(payload))
    assert result.coerced == {"properties.siteConfig.remoteDebuggingEnabled": 1} and result.complete
    [verdict] = catalog.evaluate(result.resource)  # no related data given: judged on the inline value alone
    assert verdict.status.value == "NonCompliant"
    entry = next(e for e in annotate(verdict.evidence, result.coerced)
                 if e.get("path") == "properties.siteConfig.remoteDebuggingEnabled")
    assert entry["actual"] is True
    assert entry["raw"] == 1
