"""Soak: 1,000 events over 100 resources, duplicated, shuffled, 4 concurrent workers, injected faults.

Against Azurite (state + outbox) and the local Logs Ingestion endpoint with the
real SDK clients. Proves: the final state equals the ground truth computed
sequentially; no transition is reported twice; no transition is lost (every
control's chain of versions reaches Log Analytics exactly once after
de-duplication by FindingId).
"""
from __future__ import annotations

import json
import queue
import random
import threading
import time
import uuid
from collections import Counter, defaultdict
from datetime import datetime, timedelta, timezone

from azure.core.exceptions import AzureError, ServiceRequestError
from azure.data.tables import TableClient
from azure.monitor.ingestion import LogsIngestionClient

from shared.adapters.logs_ingestion import LogsIngestionSink
from shared.adapters.memory import StaticResourceReader
from shared.adapters.table_store import TableStateStore
from shared.catalog import load_catalog
from shared.devtools.events import notification
from shared.domain.events import envelope_from_dict, parse_event
from shared.service.changes import Dependencies, drain_outbox, handle_change
from tests.support.local_azure import LocalAzure

RESOURCES, EVENTS_PER_RESOURCE, WORKERS = 100, 10, 4
SEED = 20261129
T0 = datetime(2026, 8, 1, 9, 0, tzinfo=timezone.utc)
SUB = "50a50a50-0000-4000-8000-000000000001"


def storage_payload(index: int, rng: random.Random) -> dict:
    return {
        "id": f"/subscriptions/{SUB}/resourceGroups/rg-soak/providers/Microsoft.Storage/storageAccounts/st{index:03d}",
        "name": f"st{index:03d}", "type": "Microsoft.Storage/storageAccounts", "location": "westeurope",
        "tags": {"owner": "soak", "environment": "test"} if rng.random() > 0.2 else {"owner": "soak"},
        "properties": {
            "supportsHttpsTrafficOnly": rng.random() > 0.3,
            "minimumTlsVersion": rng.choice(["TLS1_2", "TLS1_2", "TLS1_0"]),
            "allowBlobPublicAccess": rng.random() < 0.3,
            "networkAcls": {"defaultAction": rng.choice(["Deny", "Deny", "Allow"])},
            # the rest of what the storage controls read: a payload that lacks one is completed by an ARM
            # read (shared/domain/payloads.py), which this soak does not exercise
            "publicNetworkAccess": "Enabled", "allowSharedKeyAccess": False, "allowCrossTenantReplication": False,
            "defaultToOAuthAuthentication": True, "encryption": {"requireInfrastructureEncryption": True},
            "keyPolicy": {"keyExpirationPeriodInDays": 90},
        },
    }


class FaultyStore:
    """Wraps the table store: some calls fail before reaching it, some after the commit (response lost)."""

    def __init__(self, inner: TableStateStore, rng: random.Random, rate: float):
        self.inner, self.rng, self.rate = inner, rng, rate
        self.injected = Counter()
        self.lock = threading.Lock()

    def _roll(self, kind: str) -> bool:
        with self.lock:
            hit = self.rng.random() < self.rate
            if hit:
                self.injected[kind] += 1
            return hit

    def load(self, rid):
        if self._roll("load"):
            raise ServiceRequestError("injected: table read failed")
        return self.inner.load(rid)

    def save(self, previous, new, outbox=()):
        if self._roll("save-before"):
            raise ServiceRequestError("injected: table write failed")
        self.inner.save(previous, new, outbox)
        if self._roll("save-after"):
            raise ServiceRequestError("injected: response lost after the commit")

    def __getattr__(self, name):
        return getattr(self.inner, name)


def test_soak_duplicates_reordering_concurrency_and_faults(azurite_connection_string):
    rng = random.Random(SEED)
    catalog = load_catalog(disabled=[c.id for c in load_catalog().controls
                                     if "microsoft.storage/storageaccounts" not in c.resource_types
                                     and "*" not in c.resource_types])
    # ------------------------------------------------------------------ events and the ground truth
    deliveries, latest = [], {}
    for index in range(RESOURCES):
        for seq in range(EVENTS_PER_RESOURCE):
            payload = storage_payload(index, rng)
            at = T0 + timedelta(minutes=seq, seconds=rng.randint(0, 50))
            event = notification(f"ev-{index:03d}-{seq:02d}", payload, at)
            deliveries += [event] * rng.randint(1, 3)  # at least once: up to three deliveries
            latest[payload["id"].lower()] = payload  # events of a resource are generated in time order
    rng.shuffle(deliveries)
    assert len({e["id"] for e in deliveries}) == RESOURCES * EVENTS_PER_RESOURCE

    with LocalAzure() as local:
        client = LogsIngestionClient(local.url, local.credential(), connection_verify=local.ca_file, retry_total=0)
        sink = LogsIngestionSink(client, local.rule_id, local.stream_name)
        table = TableClient.from_connection_string(azurite_connection_string, "soak" + uuid.uuid4().hex[:10])
        table.create_table()
        store = FaultyStore(TableStateStore(table), random.Random(SEED + 1), rate=0.03)
        deps = Dependencies(catalog, StaticResourceReader(), store, sink)

        # ------------------------------------------------------------------ 4 workers, Event Grid style retries
        work: queue.Queue = queue.Queue()
        for event in deliveries:
            work.put((event, 1))
        failures, gave_up = Counter(), []
        stop_faults = threading.Event()

        def inject_ingestion_faults():
            while not stop_faults.is_set():
                local.fail_next(3, status=503, target="ingestion")
                stop_faults.wait(0.5)

        def worker():
            while True:
                try:
                    event, attempt = work.get(timeout=1)
                except queue.Empty:
                    return
                try:
                    handle_change(parse_event(envelope_from_dict(event)), deps)
                except AzureError as exc:
                    failures[type(exc).__name__] += 1
                    if attempt < 30:
                        work.put((event, attempt + 1))  # redelivered
                    else:
                        gave_up.append(event["id"])
                finally:
                    work.task_done()

        faults = threading.Thread(target=inject_ingestion_faults, daemon=True)
        faults.start()
        started = time.monotonic()
        threads = [threading.Thread(target=worker) for _ in range(WORKERS)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        stop_faults.set()
        faults.join()
        local._faults["ingestion"].clear()
        elapsed = time.monotonic() - started
        assert gave_up == []

        # ------------------------------------------------------------------ drain what the faults left behind
        store.rate = 0.0
        deps.clock = lambda: datetime.now(timezone.utc) + timedelta(days=1)  # past every backoff
        while drain_outbox(deps, limit=1000).sent:
            pass
        assert store.inner.pending(datetime.now(timezone.utc) + timedelta(days=2), 10) == []

        # ------------------------------------------------------------------ final state == ground truth
        states = {s.resource_id.lower(): s for s in store.inner.states()}
        assert set(states) == set(latest)
        for key, payload in latest.items():
            truth = {r.control_id: r.status for r in catalog.evaluate(payload) if r.status.value != "NotEvaluated"}
            got = {cid: cs.status for cid, cs in states[key].controls.items() if cs.status is not None}
            assert got == truth, key

        # ------------------------------------------------------------------ no duplicate, no lost transition
        unique = {r["FindingId"]: r for r in local.ingested}
        per_version = Counter((r["ResourceId"].lower(), r["ControlId"], _version(r, states)) for r in unique.values())
        assert max(per_version.values()) == 1, "two different findings for one transition"
        chains = defaultdict(list)
        for r in sorted(unique.values(), key=lambda r: r["ChangeTime"]):
            chains[(r["ResourceId"].lower(), r["ControlId"])].append(r)
        for key, state in states.items():
            for cid, cs in state.controls.items():
                if cs.status is None:
                    continue  # never decided (related data not available): no transitions
                records = chains.get((key, cid), [])
                got = [r["Transition"] for r in records]
                versions = sorted(_version(r, states) for r in records)
                assert versions == expected_versions(cs), (key, cid, got, cs)
                if cs.status.value == "NonCompliant":
                    assert got and got[-1] in ("New", "Drifted"), (key, cid, got)
                elif got:
                    assert got[-1] == "Resolved", (key, cid, got)
        duplicates = len(local.ingested) - len(unique)
        refused = sum(1 for r in local.calls("ingestion") if r.status == 503)
        summary = {"deliveries": len(deliveries), "events": RESOURCES * EVENTS_PER_RESOURCE,
                   "resources": RESOURCES, "workers": WORKERS, "seconds": round(elapsed, 1),
                   "transitions": len(unique), "re-sent findings (same FindingId)": duplicates,
                   "handler failures (redelivered)": dict(failures), "store faults": dict(store.injected),
                   "ingestion calls refused (503)": refused}
        print("\nSOAK " + json.dumps(summary))
        assert sum(store.injected.values()) > 0 and sum(failures.values()) > 0 and refused > 0  # faults happened
        table.delete_table()


def expected_versions(cs) -> list[int]:
    """Versions at which the control changed status with a reported transition.

    A control first seen Compliant takes version 1 silently; every later change is a transition.
    """
    first = 1 if _first_status_noncompliant(cs) else 2
    return list(range(first, cs.version + 1))


def _first_status_noncompliant(cs) -> bool:
    # version parity: statuses alternate, so the first status follows from the current one and the version
    noncompliant_now = cs.status.value == "NonCompliant"
    return noncompliant_now == (cs.version % 2 == 1)


def _version(record, states) -> int:
    import hashlib

    key = record["ResourceId"].lower()
    for version in range(1, 200):
        digest = hashlib.sha256(f"{key}|{record['ControlId']}|{record['Transition']}|{version}".encode()).hexdigest()
        if digest[:32] == record["FindingId"]:
            return version
    raise AssertionError(f"cannot place finding {record['FindingId']}")
