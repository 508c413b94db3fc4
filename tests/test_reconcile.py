"""Reconciliation over Resource Graph: planted drifts and deletions found exactly, resume after a crash,
Overdue once, posture history; the real ResourceGraphClient against the local Resource Graph endpoint."""
from __future__ import annotations

import uuid
from datetime import datetime, timedelta, timezone

import pytest
from azure.data.tables import TableClient
from azure.mgmt.resource.resources import ResourceManagementClient
from azure.mgmt.resourcegraph import ResourceGraphClient

from shared.adapters.arm import ArmResourceReader
from shared.adapters.memory import InMemoryStateStore, MemorySink
from shared.adapters.resource_graph import ResourceGraphLister
from shared.adapters.table_store import TableStateStore
from shared.service.reconcile import reconcile
from shared.service.changes import Dependencies
from tests.conftest import pipeline_catalog
from tests.support.local_azure import LocalAzure, graph_row

SUBS = ["1ec0c111-0000-4000-8000-000000000001", "1ec0c111-0000-4000-8000-000000000002"]
START = datetime(2026, 10, 1, 6, 0, tzinfo=timezone.utc)


def account(i: int, **props) -> dict:
    sub = SUBS[i % 2]
    properties = {"supportsHttpsTrafficOnly": True, "minimumTlsVersion": "TLS1_2", "allowBlobPublicAccess": False,
                  "networkAcls": {"defaultAction": "Deny"}}
    properties.update(props)
    return {"id": f"/subscriptions/{sub}/resourceGroups/rg-{i % 7}/providers/Microsoft.Storage/storageAccounts/st{i:05d}",
            "name": f"st{i:05d}", "type": "Microsoft.Storage/storageAccounts", "location": "westeurope",
            "tags": {"owner": "estate", "environment": "prod", "team": f"team-{i % 3}"}, "properties": properties}


@pytest.fixture
def local():
    with LocalAzure() as server:
        yield server


def wiring(local, store, clock):
    options = dict(base_url=local.url, connection_verify=local.ca_file, retry_backoff_factor=0.01)
    graph = ResourceGraphClient(local.credential(), **options)
    reader = ArmResourceReader(lambda sub: ResourceManagementClient(
        local.credential(), sub, credential_scopes=["https://management.azure.com/.default"], **options))
    deps = Dependencies(pipeline_catalog(), reader, store, MemorySink(), clock=clock)
    return deps, ResourceGraphLister(graph, page_size=1000)


class Clock:
    def __init__(self, now):
        self.now = now

    def __call__(self):
        return self.now


def test_estate_of_10000_finds_exactly_the_planted_drifts_and_deletions(local):
    estate = [account(i) for i in range(10_000)]
    local.graph_resources = [graph_row(r) for r in estate]
    clock = Clock(START)
    deps, lister = wiring(local, InMemoryStateStore(), clock)
    first = reconcile(deps, lister, SUBS)
    assert (first.listed, first.pages, first.findings, first.deleted) == (10_000, 10, 0, 0)
    # a Resource Graph row is the resource's whole ARM shape: judged as is, never completed by an ARM read
    # (the rows here carry no publicNetworkAccess, which a Resource Notifications payload would be re-read for)
    assert local.calls("arm", "/storageAccounts/") == []

    drifted = {7, 123, 2048, 4999, 8191}
    deleted = {3, 777, 9999}
    for i in drifted:
        estate[i] = account(i, allowBlobPublicAccess=True)
    local.graph_resources = [graph_row(r) for i, r in enumerate(estate) if i not in deleted]
    clock.now = START + timedelta(hours=6)
    deps.sink.records.clear()
    second = reconcile(deps, lister, SUBS)
    assert second.listed == 10_000 - len(deleted) and second.deleted == len(deleted)
    found = {(r["Transition"], r["ResourceId"].rsplit("st", 1)[-1]) for r in deps.sink.records}
    assert found == {("Drifted", f"{i:05d}") for i in drifted}
    gone = {s.resource_id.rsplit("st", 1)[-1] for s in deps.store.states() if s.deleted}
    assert gone == {f"{i:05d}" for i in deleted}
    assert all(r["Caller"] == "reconciliation" and r["Team"].startswith("team-") for r in deps.sink.records)
    history = deps.store.posture_history()
    assert len(history) == 2 and history[-1].counts["NonCompliant"] == len(drifted)


def test_a_crashed_run_resumes_from_its_checkpoint(local):
    estate = [account(i, minimumTlsVersion="TLS1_0" if i % 10 == 0 else "TLS1_2") for i in range(2_500)]
    local.graph_resources = [graph_row(r) for r in estate]
    deps, lister = wiring(local, InMemoryStateStore(), Clock(START))

    class Crash(Exception):
        pass

    class CrashingLister:
        def pages(self, subscriptions, types, skip_token=None):
            for page in lister.pages(subscriptions, types, skip_token):
                yield page
                if page.number == 2 and skip_token is None:
                    raise Crash("host recycled")

    with pytest.raises(Crash):
        reconcile(deps, CrashingLister(), SUBS)
    checkpoint = deps.store.load_checkpoint()
    assert checkpoint["phase"] == "listing" and checkpoint["pages"] == 2 and checkpoint["skipToken"]
    resumed = reconcile(deps, CrashingLister(), SUBS)
    assert resumed.resumed and resumed.run_id == checkpoint["runId"] and resumed.listed == 2_500
    new = [r for r in deps.sink.records if r["Transition"] == "New"]
    assert len(new) == 250 and len({r["FindingId"] for r in new}) == 250  # each once, none lost or doubled
    assert deps.store.load_checkpoint() is None


def test_overdue_is_reported_once_per_open_finding(local):
    local.graph_resources = [graph_row(account(1, allowBlobPublicAccess=True))]
    clock = Clock(START)
    deps, lister = wiring(local, InMemoryStateStore(), clock)
    reconcile(deps, lister, SUBS)
    clock.now = START + timedelta(days=8)  # High: due 7 days after the change
    reconcile(deps, lister, SUBS)
    reconcile(deps, lister, SUBS)
    overdue = [r for r in deps.sink.records if r["Transition"] == "Overdue"]
    assert [(r["ControlId"], r["Status"]) for r in overdue] == [("storage-no-public-blob-access", "NonCompliant")]
    assert overdue[0]["DueDate"] < clock.now.isoformat().replace("+00:00", "Z")


def test_reconciliation_on_table_storage_keeps_checkpoint_and_history(local, azurite_connection_string):
    table = TableClient.from_connection_string(azurite_connection_string, "rec" + uuid.uuid4().hex[:10])
    table.create_table()
    local.graph_resources = [graph_row(account(i, supportsHttpsTrafficOnly=i % 4 != 0)) for i in range(60)]
    deps, lister = wiring(local, TableStateStore(table), Clock(START))
    outcome = reconcile(deps, lister, SUBS)
    assert outcome.listed == 60 and outcome.findings == 15
    store = TableStateStore(table)
    assert store.load_checkpoint() is None
    (point,) = store.posture_history()
    assert point.counts["NonCompliant"] == 15 and point.compliance_percent is not None
    assert sum(1 for _ in store.states()) == 60  # bookkeeping rows are not resources
    table.delete_table()


def test_each_run_sends_a_posture_snapshot_of_every_resource_and_control(local):
    from azure.monitor.ingestion import LogsIngestionClient

    from shared.adapters.logs_ingestion import LogsIngestionSink
    from shared.domain.findings import SNAPSHOT_COLUMNS

    local.graph_resources = [graph_row(account(i, allowBlobPublicAccess=i == 0)) for i in range(30)]
    deps, lister = wiring(local, InMemoryStateStore(), Clock(START))
    deps.snapshot_sink = LogsIngestionSink(LogsIngestionClient(local.url, local.credential(),
                                                               connection_verify=local.ca_file),
                                           local.rule_id, "Custom-ComplianceSnapshot")
    outcome = reconcile(deps, lister, SUBS)
    rows = local.other_ingested["Custom-ComplianceSnapshot"]
    controls = len(deps.catalog.evaluate(account(1)))
    assert outcome.snapshot == len(rows) == 30 * controls
    assert all(set(r) == set(SNAPSHOT_COLUMNS) and r["RunId"] == outcome.run_id for r in rows)
    assert sum(1 for r in rows if r["Status"] == "NonCompliant") == 1
