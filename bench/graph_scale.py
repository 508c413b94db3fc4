"""Reconciliation of 1,000 subscriptions through Resource Graph with its quota, measured.

The real ``ResourceGraphLister`` (real ``azure-mgmt-resourcegraph`` client, real HTTPS) lists a local
Resource Graph (``tests/support/local_azure.py``) that holds N resources in each of 1,000 subscriptions
(the realistic mix of ``bench/mix.py``) and enforces the per-user quota the service documents: a fixed
number of requests per window, announced on every reply in ``x-ms-user-quota-remaining`` and
``x-ms-user-quota-resets-after``, 429 beyond it ("Guidance for throttled requests in Azure Resource
Graph", https://learn.microsoft.com/azure/governance/resource-graph/concepts/guidance-for-throttled-requests).
The real ``reconcile`` evaluates every row with the built-in catalog; the state store discards what it is
given (Table Storage's cost per resource is measured in docs/SCALE.md's first section), so the figure is
listing plus evaluation. Each size runs three times in one run: reconciliation with the documented example
quota (15 requests per 5 seconds) and without a quota, and the listing alone under a tighter quota that
binds on this machine (its local Graph serves one to two pages a second), to show the waits.

    .venv/bin/python bench/graph_scale.py [--subscriptions 1000] [--per-subscription 20,100]
                                          [--quota 15/5] [--listing-quota 3/5] [--write docs/SCALE.md]
"""
from __future__ import annotations

import argparse
import logging
import sys
import time
from datetime import date
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from azure.mgmt.resourcegraph import ResourceGraphClient  # noqa: E402

from bench import mix  # noqa: E402
from bench.reconcile_bench import CountingSink, DiscardStore  # noqa: E402
from bench.sections import replace_section  # noqa: E402
from shared.adapters.memory import StaticResourceReader  # noqa: E402
from shared.adapters.resource_graph import ResourceGraphLister  # noqa: E402
from shared.catalog import load_catalog  # noqa: E402
from shared.service.changes import Dependencies  # noqa: E402
from shared.service.reconcile import reconcile  # noqa: E402
from tests.support.local_azure import LocalAzure, graph_row  # noqa: E402

MARK = "graph-scale"


def estate(subscriptions: int, per_subscription: int) -> list[dict]:
    templates = mix.templates()
    rows = []
    for s in range(subscriptions):
        sub = f"{s:08x}-0000-4000-8000-00000000b0b0"
        for i in range(per_subscription):
            resource = dict(templates[(s * per_subscription + i) % len(templates)])
            resource.pop("$related", None)
            resource["id"] = f"/subscriptions/{sub}/resourceGroups/rg-{i % 5}/providers/{resource['type']}/r{i:05d}"
            rows.append(graph_row(resource))
    return rows


def run(rows: list[dict], subscriptions: list[str], quota: tuple[int, float] | None, evaluate: bool = True) -> dict:
    """One listing of ``rows``: through ``reconcile`` (each row evaluated) or, ``evaluate`` False, the lister's
    pages alone (as fast as the quota lets them come)."""
    with LocalAzure() as local:
        local.graph_resources = rows
        local.graph_quota = quota
        client = ResourceGraphClient(local.credential(), base_url=local.url,
                                     credential_scopes=["https://management.azure.com/.default"],
                                     connection_verify=local.ca_file)
        lister = ResourceGraphLister(client)
        deps = Dependencies(load_catalog(), StaticResourceReader(), DiscardStore(), CountingSink())
        started = time.perf_counter()
        if evaluate:
            listed = reconcile(deps, lister, subscriptions).listed
        else:
            types = sorted({r["type"] for r in rows})
            listed = sum(len(page.resources) for page in lister.pages(subscriptions, types))
        seconds = time.perf_counter() - started
        calls = local.calls("graph")
    return {"listed": listed, "seconds": seconds, "requests": len(calls),
            "throttled": sum(1 for c in calls if c.status == 429), "waits": len(lister.quota_waits),
            "waited": sum(lister.quota_waits)}


def table(results: list[tuple[int, str, str, dict]], subscriptions: int) -> str:
    lines = [f"Measured {date.today().isoformat()} on 2 cores: {subscriptions:,} subscriptions in every request; "
             "quotas in requests/seconds.", "",
             "| resources per subscription | resources | what | quota | Graph requests | 429 answers | quota waits "
             "| seconds waiting | seconds in all | resources/s |",
             "|---:|---:|---|---|---:|---:|---:|---:|---:|---:|"]
    for per, label, mode, r in results:
        lines.append(f"| {per:,} | {r['listed']:,} | {mode} | {label} | {r['requests']} | {r['throttled']} "
                     f"| {r['waits']} | {r['waited']:.1f} | {r['seconds']:.1f} | {r['listed'] / r['seconds']:,.0f} |")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--subscriptions", type=int, default=1000)
    parser.add_argument("--per-subscription", default="20,100", help="comma-separated sizes")
    parser.add_argument("--quota", default="15/5", help="requests/seconds of the emulated per-user quota")
    parser.add_argument("--listing-quota", default="3/5",
                        help="a tighter quota for the listing-only run, so that it binds on this machine")
    parser.add_argument("--write", type=Path, help="replace the graph-scale section of this document")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.WARNING)
    quota, tight = (tuple(f(x) for f, x in zip((int, float), q.split("/"))) for q in (args.quota, args.listing_quota))
    subscriptions = [f"{s:08x}-0000-4000-8000-00000000b0b0" for s in range(args.subscriptions)]
    results = []
    for per in (int(p) for p in args.per_subscription.split(",")):
        rows = estate(args.subscriptions, per)
        for mode, label, q in (("reconcile", args.quota, quota), ("reconcile", "none", None),
                               ("listing only", args.listing_quota, tight)):
            print(f"graph-scale: {len(rows):,} resources, {mode}, quota {label} ...", file=sys.stderr, flush=True)
            result = run(rows, subscriptions, q, evaluate=mode == "reconcile")
            print(f"  {result['requests']} requests, {result['waits']} waits, {result['seconds']:.1f} s",
                  file=sys.stderr, flush=True)
            results.append((per, label, mode, result))
    text = table(results, args.subscriptions)
    print(text)
    if args.write:
        replace_section(args.write, MARK, text)
    return 0 if all(r["throttled"] == 0 for *_, r in results) else 1


if __name__ == "__main__":
    sys.exit(main())
