"""``make load-sim``: the real handler in N worker processes against Azurite, as Flex Consumption runs it
on N instances: bursts on one resource (every worker on one Table partition) and on one subscription
(many resources at once). Reports throughput, per-worker throughput, concurrency conflicts and Event
Grid-style redeliveries, and checks that nothing is lost or doubled: every transition of the final
state reached the sink exactly once (by FindingId), and no transition has two different findings.

    .venv/bin/python bench/load_sim.py [--workers 1,2,4,8] [--resource-events 240] [--subscription-events 2000]
                                       [--write docs/SCALE.md]

Not a test: figures depend on the machine (this one has 2 cores, so the curve flattens past 2 workers).
"""
from __future__ import annotations

import argparse
import json
import multiprocessing as mp
import os
import queue
import sys
import tempfile
import time
import uuid
from collections import Counter
from datetime import datetime, timedelta, timezone
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from bench.sections import replace_section  # noqa: E402

SUB = "10ad0000-0000-4000-8000-000000000001"
T0 = datetime(2026, 9, 1, 8, 0, tzinfo=timezone.utc)


def account(index: int, secure: bool) -> dict:
    return {"id": f"/subscriptions/{SUB}/resourceGroups/rg-load/providers/Microsoft.Storage/storageAccounts/st{index:04d}",
            "name": f"st{index:04d}", "type": "Microsoft.Storage/storageAccounts", "location": "westeurope",
            "tags": {"owner": "load", "environment": "test"},
            "properties": {"supportsHttpsTrafficOnly": secure, "minimumTlsVersion": "TLS1_2" if secure else "TLS1_0",
                           "allowBlobPublicAccess": not secure, "networkAcls": {"defaultAction": "Deny"},
                           "publicNetworkAccess": "Enabled", "allowSharedKeyAccess": False,
                           "allowCrossTenantReplication": False, "defaultToOAuthAuthentication": True,
                           "encryption": {"requireInfrastructureEncryption": True},
                           "keyPolicy": {"keyExpirationPeriodInDays": 90}}}


def burst(kind: str, events: int) -> list[dict]:
    """One resource flipping between secure and not (every worker on one partition), or a subscription's
    resources each changed a few times; in time order per resource, delivered as they come."""
    from shared.devtools.events import notification

    out = []
    if kind == "one resource":
        for seq in range(events):
            out.append(notification(f"r-{seq:05d}", account(0, seq % 2 == 0), T0 + timedelta(seconds=seq)))
    else:
        resources = max(events // 5, 1)
        for seq in range(events):
            index = seq % resources
            out.append(notification(f"s-{seq:05d}", account(index, (seq // resources) % 2 == 0),
                                    T0 + timedelta(seconds=seq)))
    return out


def _worker(conn: str, table: str, work, results, ready, remaining, out_path: str) -> None:
    """One instance: its own clients, the real handle_change; a conflict that survives the handler's own
    retries is put back on the queue, as Event Grid redelivers a failed delivery."""
    from azure.data.tables import TableClient

    from shared.adapters.memory import JsonLinesSink, StaticResourceReader
    from shared.adapters.table_store import TableStateStore
    from shared.catalog import load_catalog
    from shared.domain.events import envelope_from_dict, parse_event
    from shared.service.changes import Dependencies, handle_change
    from shared.service.ports import ConcurrencyConflict

    import logging

    logging.getLogger("shared").setLevel(logging.ERROR)  # conflicts and stale copies are counted, not logged
    catalog = load_catalog(disabled=[c.id for c in load_catalog().controls
                                     if "microsoft.storage/storageaccounts" not in c.resource_types])
    store = TableStateStore(TableClient.from_connection_string(conn, table))
    deps = Dependencies(catalog, StaticResourceReader(), store, JsonLinesSink(out_path))
    stats = Counter()
    busy = 0.0
    ready.put(os.getpid())
    while True:
        try:
            item = work.get(timeout=0.2)
        except queue.Empty:
            with remaining.get_lock():
                if remaining.value <= 0:
                    break
            continue
        event, attempt = item
        started = time.perf_counter()
        try:
            outcome = handle_change(parse_event(envelope_from_dict(event)), deps)
            stats["handled"] += 1
            stats["conflict_retries"] += outcome.attempts - 1 if outcome.attempts else 0
            stats["stale_skipped"] += bool(outcome.skipped and outcome.skipped.startswith("stale payload"))
            with remaining.get_lock():
                remaining.value -= 1
        except ConcurrencyConflict:
            stats["redelivered"] += 1
            work.put((event, attempt + 1))
        busy += time.perf_counter() - started
    stats["busy_ms"] = int(busy * 1000)
    results.put(dict(stats))


def run_case(conn: str, kind: str, events: list[dict], workers: int) -> dict:
    from azure.data.tables import TableClient

    table = "load" + uuid.uuid4().hex[:10]
    TableClient.from_connection_string(conn, table).create_table()
    ctx = mp.get_context("spawn")
    work, results, ready = ctx.Queue(), ctx.Queue(), ctx.Queue()
    remaining = ctx.Value("i", len(events))
    tmp = Path(tempfile.mkdtemp(prefix="load-sim-"))
    procs = [ctx.Process(target=_worker, args=(conn, table, work, results, ready, remaining, str(tmp / f"w{i}.jsonl")))
             for i in range(workers)]
    for p in procs:
        p.start()
    for _ in procs:  # every worker has loaded its catalog: the clock measures handling only
        ready.get(timeout=300)
    started = time.perf_counter()
    for event in events:
        work.put((event, 1))
    stats = [results.get(timeout=1800) for _ in procs]
    elapsed = time.perf_counter() - started
    for p in procs:
        p.join()
    records = [json.loads(line) for f in tmp.glob("*.jsonl") for line in f.read_text().splitlines() if line]
    verdict = _check(conn, table, records)
    TableClient.from_connection_string(conn, table).delete_table()
    total = Counter()
    for s in stats:
        total.update(s)
    return {"case": kind, "workers": workers, "events": len(events), "seconds": round(elapsed, 2),
            "events_per_s": round(len(events) / elapsed, 1),
            "per_worker_per_s": round(len(events) / elapsed / workers, 1),
            "conflict_retries": total["conflict_retries"], "redelivered": total["redelivered"],
            "stale_skipped": total["stale_skipped"], **verdict}


def _version(record: dict) -> int:
    """The control version a finding names (its FindingId is a hash of resource, control, transition, version)."""
    from shared.domain.findings import finding_id

    for version in range(1, 100000):
        if finding_id(record["ResourceId"], record["ControlId"], record["Transition"], version) == record["FindingId"]:
            return version
    raise ValueError(f"finding {record['FindingId']} names no version")


def _check(conn: str, table: str, records: list[dict]) -> dict:
    """Lost: a status change of the final state (a control version) with no finding; doubled: two
    different findings for one (resource, control, version). Statuses alternate Compliant / NonCompliant
    here, and a control first seen Compliant takes version 1 without a finding."""
    from azure.data.tables import TableClient

    from shared.adapters.table_store import TableStateStore

    store = TableStateStore(TableClient.from_connection_string(conn, table))
    unique = {r["FindingId"]: r for r in records}
    versions = Counter((r["ResourceId"].lower(), r["ControlId"], _version(r)) for r in unique.values())
    doubled = sum(n - 1 for n in versions.values() if n > 1)
    lost = 0
    for state in store.states():
        for cid, cs in state.controls.items():
            if cs.status is None:
                continue
            first_noncompliant = (cs.status.value == "NonCompliant") == (cs.version % 2 == 1)
            for version in range(1 if first_noncompliant else 2, cs.version + 1):
                lost += (state.resource_id.lower(), cid, version) not in versions
    return {"findings": len(unique), "duplicate_deliveries": len(records) - len(unique), "lost": lost,
            "doubled": doubled}


def render(rows: list[dict]) -> str:
    lines = ["| case | workers | events | seconds | events/s | per worker/s | conflict retries | redelivered | "
             "older copies skipped | findings | lost | doubled |",
             "|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|"]
    for r in rows:
        lines.append(f"| {r['case']} | {r['workers']} | {r['events']} | {r['seconds']} | {r['events_per_s']} | "
                     f"{r['per_worker_per_s']} | {r['conflict_retries']} | {r['redelivered']} | {r['stale_skipped']} | "
                     f"{r['findings']} | {r['lost']} | {r['doubled']} |")
    return "\n".join(lines)


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--workers", default="1,2,4,8")
    parser.add_argument("--resource-events", type=int, default=240)
    parser.add_argument("--subscription-events", type=int, default=2000)
    parser.add_argument("--write", metavar="FILE", help="replace the load-sim section of FILE (docs/SCALE.md)")
    args = parser.parse_args(argv)
    from shared.devtools.azurite import azurite

    rows = []
    with azurite() as conn:
        for kind, count in (("one resource", args.resource_events), ("one subscription", args.subscription_events)):
            events = burst(kind, count)
            for workers in (int(w) for w in args.workers.split(",")):
                row = run_case(conn, kind, events, workers)
                print(json.dumps(row), flush=True)
                rows.append(row)
    table = render(rows)
    print(table)
    if args.write:
        path = Path(args.write)
        stamp = f"Measured {datetime.now(timezone.utc):%Y-%m-%d} on {os.cpu_count()} cores, Azurite from npm."
        replace_section(path, "load-sim", f"{stamp}\n\n{table}")
        print(f"wrote {path}")
    bad = [r for r in rows if r["lost"] or r["doubled"]]
    return 1 if bad else 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
