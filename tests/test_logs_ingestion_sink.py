"""LogsIngestionSink with the real azure-monitor-ingestion client against a local Logs Ingestion API over HTTPS."""
from __future__ import annotations

import json
import threading
import time
from collections import Counter
from datetime import datetime, timedelta, timezone
from pathlib import Path

import pytest
from azure.monitor.ingestion import LogsIngestionClient

from shared import bootstrap
from shared.adapters.logs_ingestion import LogsIngestionSink
from shared.config import Settings
from shared.catalog import Status
from shared.domain.drift import ControlTransition, ResourceState, Transition
from shared.domain.events import envelope_from_dict, parse_event
from shared.domain.findings import FINDING_COLUMNS, finding_record
from shared.service.ports import FindingsDeliveryError
from tests.support.local_azure import OTHER_CREDENTIAL_SETTINGS, LocalAzure

EVENTS = Path(__file__).with_name("fixtures") / "events"
CHANGE = parse_event(envelope_from_dict(json.loads((EVENTS / "arm-write-storage.eventgrid.json").read_text())))
STATE = ResourceState(resource_id=CHANGE.resource.value, resource_type="Microsoft.Storage/storageAccounts",
                      location="westeurope", tags={"environment": "prod", "owner": "data-platform"})
GENERATED = datetime(2024, 5, 14, 9, 31, 41, tzinfo=timezone.utc)
CONTROLS = [
    ("storage-https-only", "Storage accounts accept secure transfer (HTTPS) only",
     {"path": "properties.supportsHttpsTrafficOnly", "expected": True, "actual": False}),
    ("storage-min-tls-1-2", "Storage accounts require TLS 1.2 or newer",
     {"path": "properties.minimumTlsVersion", "expected": "TLS1_2", "actual": "TLS1_0"}),
]


def findings(count: int = 2) -> list[dict]:
    """``count`` real finding records of about 1 KB each, with distinct FindingIds."""
    records = []
    for n in range(count):
        control_id, title, evidence = CONTROLS[n % len(CONTROLS)]
        transition = ControlTransition(control_id, title, "High", Transition.DRIFTED, Status.NONCOMPLIANT,
                                       Status.COMPLIANT, version=2 + n // len(CONTROLS), evidence=(evidence,))
        records.append(finding_record(transition, STATE, CHANGE, GENERATED + timedelta(milliseconds=n)))
    return records


@pytest.fixture
def local():
    with LocalAzure() as server:
        yield server


def make_sink(local: LocalAzure, stream_name: str | None = None) -> LogsIngestionSink:
    client = LogsIngestionClient(local.url, local.credential(), connection_verify=local.ca_file,
                                 retry_backoff_factor=0.01)
    return LogsIngestionSink(client, local.rule_id, stream_name or local.stream_name)


def posts(local: LocalAzure) -> list:
    return local.calls("ingestion")


def test_records_arrive_gzipped_on_the_rule_and_stream_as_sent(local):
    records = findings(2)
    assert list(records[0]) == list(FINDING_COLUMNS)  # the builder emits the table's contract

    make_sink(local).send(records)

    assert local.ingested == records
    assert local.ingestion_errors == []
    [post] = posts(local)
    assert (post.method, post.path, post.query, post.status) == (
        "POST", f"/dataCollectionRules/{local.rule_id}/streams/Custom-ComplianceFindings",
        {"api-version": "2023-01-01"}, 204)
    arrived = local.ingested[0]
    assert arrived["Caller"] == "dana.whitfield@contoso.example"
    assert arrived["ChangeTime"] == "2024-05-14T09:31:27.611735Z"
    assert arrived["Evidence"] == [CONTROLS[0][2]]


def test_nothing_is_sent_for_no_records(local):
    make_sink(local).send([])
    assert posts(local) == []


def test_a_large_batch_is_chunked_by_the_sdk_and_arrives_exactly_once(local):
    records = findings(3000)
    sizes = [len(json.dumps(r)) for r in records]
    assert 1000 < min(sizes) and max(sizes) < 1400  # about 1.3 KB each, about 4 MB in all

    make_sink(local).send(records)

    calls = posts(local)
    assert len(calls) >= 3 and all(c.status == 204 for c in calls)
    assert len(local.ingested) == 3000
    counts = Counter(r["FindingId"] for r in local.ingested)
    assert set(counts) == {r["FindingId"] for r in records} and set(counts.values()) == {1}
    assert local.ingested == records  # chunks go one after another, in order


def test_throttling_is_retried_after_the_servers_retry_after(local):
    records = findings(2)
    local.fail_next(1, status=429, retry_after=1, target="ingestion")

    started = time.monotonic()
    make_sink(local).send(records)

    assert time.monotonic() - started >= 0.9
    assert [c.status for c in posts(local)] == [429, 204]
    assert local.ingested == records  # delivered once


@pytest.mark.parametrize("change, named", [
    (lambda r: r.pop("Tags"), "missing ['Tags']"),
    (lambda r: r.update(Remediation="enable HTTPS only"), "unexpected ['Remediation']"),
])
def test_a_record_off_the_stream_schema_is_rejected_and_reported(local, change, named):
    records = findings(3)
    change(records[1])

    with pytest.raises(FindingsDeliveryError, match="failed for 3 of 3 finding") as caught:
        make_sink(local).send(records)

    assert "InvalidRecord" in str(caught.value)
    assert local.ingested == []
    assert len(local.ingestion_errors) == 1 and named in local.ingestion_errors[0]
    assert [c.status for c in posts(local)] == [400]  # a 400 is not retried


def test_an_undeclared_stream_is_rejected(local):
    with pytest.raises(FindingsDeliveryError, match="failed for 2 of 2.*Custom-Findings"):
        make_sink(local, stream_name="Custom-Findings").send(findings(2))
    assert local.ingested == []
    assert "stream 'Custom-Findings'" in local.ingestion_errors[0]


def test_a_rejected_chunk_is_reported_with_the_count_it_lost(local):
    records = findings(3000)
    del records[1500]["Evidence"]  # spoils the chunk that carries it; the other chunks are accepted

    with pytest.raises(FindingsDeliveryError) as caught:
        make_sink(local).send(records)

    lost = len(records) - len(local.ingested)
    assert 0 < lost < len(records) // 2
    assert f"failed for {lost} of 3000 finding(s)" in str(caught.value)
    assert records[1500]["FindingId"] not in {r["FindingId"] for r in local.ingested}
    assert [c.status for c in posts(local)].count(400) == 1


def test_an_unreachable_endpoint_raises_delivery_error(local):
    sink = make_sink(local)
    local.stop()

    with pytest.raises(FindingsDeliveryError, match="2 of 2 finding.*(refused|Failed to establish)"):
        sink.send(findings(2))


def test_local_azure_stops_without_leaking_threads():
    before = set(threading.enumerate())
    with LocalAzure() as local:
        make_sink(local).send(findings(2))
        assert local.ingested
    assert set(threading.enumerate()) - before == set()
    assert not Path(local.ca_file).exists()


def test_bootstrap_sink_delivers_with_managed_identity(local, monkeypatch):
    """The production wiring: LOGS_INGESTION__*, REQUESTS_CA_BUNDLE and DefaultAzureCredential from the environment."""
    for name in OTHER_CREDENTIAL_SETTINGS:
        monkeypatch.delenv(name, raising=False)
    for name, value in local.env().items():
        monkeypatch.setenv(name, value)
    bootstrap.override(None)
    try:
        sink = bootstrap.build_sink(Settings.from_env())
        records = findings(2)
        sink.send(records)
    finally:
        bootstrap.override(None)

    assert local.ingested == records
    assert [t.query["resource"] for t in local.calls("identity")] == ["https://monitor.azure.com"]
