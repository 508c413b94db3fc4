"""From 10 to 10,000 subscriptions: what the monitor asks of each service, computed, not guessed.

Nothing here is an estimate of a tenant. The inputs are what a platform team measures in its own
tenant: resources per subscription, and evaluated events per subscription per day (the query is in
docs/SCALE.md). Everything else is arithmetic over figures measured in this repository (costs per
event counted on the wire by tests/test_call_counts.py, the finding record's size, the handler's time
per event from ``make load-sim``, the listing time from ``make graph-scale``) and documented limits
(cited where they are used in docs/SCALE.md). The table is written into docs/SCALE.md between
``<!-- scale-plan -->`` markers; tests/test_scale_plan.py checks the document holds this output.

    .venv/bin/python bench/scale_plan.py [--resources-per-subscription 1000]
                                         [--events-per-subscription-day 1000] [--write docs/SCALE.md]
"""
from __future__ import annotations

import argparse
import math
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from bench.sections import replace_section  # noqa: E402

MARK = "scale-plan"
SUBSCRIPTIONS = (10, 100, 1_000, 10_000)

# Measured per event (tests/test_call_counts.py): one ARM read; Table Storage 2 requests when no verdict
# changes, 3 when one does (then one Logs Ingestion call).
TABLE_REQUESTS = (2, 3)
INGESTION_CALLS = (0, 1)
FINDING_BYTES = 1300  # one finding record as JSON (tests/test_logs_ingestion_sink.py)
QUEUE_REQUESTS = 3  # queue delivery: Event Grid's put, the trigger's get and delete of the message
HANDLER_SECONDS = 0.022  # one worker's time per event against Azurite (make load-sim: 45 events/s)
EVALUATED_PER_SECOND = 3225  # reconciliation's evaluation, every resource new (docs/PERFORMANCE.md, make bench)
# Documented limits (docs/SCALE.md cites each).
TABLE_ACCOUNT_PER_SECOND = 20_000
GRAPH_ROWS_PER_PAGE = 1_000
GRAPH_SUBSCRIPTIONS_PER_REQUEST = 1_000
GRAPH_QUOTA = (15, 5.0)  # requests per seconds, the documented example per-user quota
SECONDS_PER_DAY = 86_400


def plan(subscriptions: int, resources_per_subscription: int, events_per_subscription_day: int) -> dict:
    events = subscriptions * events_per_subscription_day
    resources = subscriptions * resources_per_subscription
    chunks = math.ceil(subscriptions / GRAPH_SUBSCRIPTIONS_PER_REQUEST)
    # Resources pages, plus one ResourceContainers (resource groups) listing per chunk.
    graph_requests = math.ceil(resources / GRAPH_ROWS_PER_PAGE) + chunks
    per_request = GRAPH_QUOTA[1] / GRAPH_QUOTA[0]
    return {
        "subscriptions": subscriptions, "resources": resources, "events": events,
        "per_second": events / SECONDS_PER_DAY,
        "table": tuple(events * n for n in TABLE_REQUESTS),
        "table_share": events * TABLE_REQUESTS[1] / SECONDS_PER_DAY / TABLE_ACCOUNT_PER_SECOND,
        "arm_reads": events, "ingestion_calls": tuple(events * n for n in INGESTION_CALLS),
        "ingested_mb": events * FINDING_BYTES / 1e6, "queue": events * QUEUE_REQUESTS,
        "instance_seconds": events * HANDLER_SECONDS, "graph_requests": graph_requests,
        "graph_minutes": graph_requests * per_request / 60, "partitions": resources + 1,
        "evaluation_minutes": resources / EVALUATED_PER_SECOND / 60,
    }


def _n(value: float) -> str:
    return f"{value:,.0f}" if value >= 10 else f"{value:,.2f}"


def table(resources_per_subscription: int, events_per_subscription_day: int) -> str:
    lines = [f"Inputs: {resources_per_subscription:,} resources and {events_per_subscription_day:,} evaluated "
             "events per subscription per day. Everything per day scales linearly with the events; the "
             "reconciliation columns with the resources.", "",
             "| subscriptions | resources | events/day | mean events/s | Table requests/day | share of one account's "
             "requests/s | ARM reads/day | Logs Ingestion calls/day | MB ingested/day (at most) | queue requests/day "
             "(queue delivery) | handler seconds/day | Graph requests per reconciliation | listing minutes at the "
             "quota | evaluation minutes | Table partitions |",
             "|---:|---:|---:|---:|---|---:|---:|---|---:|---:|---:|---:|---:|---:|---:|"]
    for subscriptions in SUBSCRIPTIONS:
        p = plan(subscriptions, resources_per_subscription, events_per_subscription_day)
        lines.append(
            f"| {p['subscriptions']:,} | {p['resources']:,} | {p['events']:,} | {_n(p['per_second'])} "
            f"| {p['table'][0]:,} to {p['table'][1]:,} | {p['table_share']:.2%} | {p['arm_reads']:,} "
            f"| {p['ingestion_calls'][0]:,} to {p['ingestion_calls'][1]:,} | {_n(p['ingested_mb'])} | {p['queue']:,} "
            f"| {_n(p['instance_seconds'])} | {p['graph_requests']:,} | {_n(p['graph_minutes'])} "
            f"| {_n(p['evaluation_minutes'])} | {p['partitions']:,} |")
    return "\n".join(lines)


DAYS_PER_MONTH = 30
INSTANCE_GB = 2048 / 1024  # functionInstanceMemoryMB 2,048 as GB
BILLED_MINIMUM_SECONDS = 1.0  # Flex Consumption billing: at least 1,000 ms per execution


def _millions(value: float) -> str:
    return f"{value / 1e6:,.1f} million" if value >= 1e6 else f"{value:,.0f}"


def meters(resources_per_subscription: int, events_per_subscription_day: int, columns=(1_000, 10_000)) -> str:
    """The monthly quantity of each billed meter (prices are regional: docs/SCALE.md says where to get them)."""
    plans = [plan(s, resources_per_subscription, events_per_subscription_day) for s in columns]
    month = [{k: (tuple(x * DAYS_PER_MONTH for x in v) if isinstance(v, tuple) else v * DAYS_PER_MONTH)
              for k, v in p.items() if k in ("events", "table", "ingested_mb", "queue", "instance_seconds")}
             for p in plans]
    rows = [
        ("Functions executions (Flex on demand)", [_millions(m["events"]) for m in month], "one per event"),
        ("Functions execution time, GB-s at 2,048 MB",
         [f"{_millions(m['instance_seconds'] * INSTANCE_GB)} (measured time) to "
          f"{_millions(m['events'] * BILLED_MINIMUM_SECONDS * INSTANCE_GB)} (billed minimum each)" for m in month],
         "handler seconds × 2 GB, up to the 1 s billing minimum each when events arrive alone"),
        ("Table Storage transactions", [f"{_millions(m['table'][0])} to {_millions(m['table'][1])}" for m in month],
         "2 to 3 per event"),
        ("Queue Storage transactions (queue delivery)", [_millions(m["queue"]) for m in month],
         "3 per event, plus about 1,800 GETs an hour per instance polling an empty queue at the 2 s maxPollingInterval"),
        ("Logs Ingestion, Analytics logs", [f"at most {m['ingested_mb'] / 1000:,.0f} GB" for m in month],
         "1.3 KB per changed verdict"),
        ("Event Grid operations", [_millions(m["events"]) for m in month],
         "one delivery per event; the first 100,000 a month are free"),
    ]
    head = " | ".join(f"per month, {c:,} subscriptions" for c in columns)
    lines = [f"| meter | {head} | from |", "|---|" + "---:|" * len(columns) + "---|"]
    lines += [f"| {name} | {' | '.join(values)} | {source} |" for name, values, source in rows]
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--resources-per-subscription", type=int, default=1000)
    parser.add_argument("--events-per-subscription-day", type=int, default=1000)
    parser.add_argument("--write", type=Path, help="replace the scale-plan section of this document")
    args = parser.parse_args(argv)
    text = table(args.resources_per_subscription, args.events_per_subscription_day)
    costs = meters(args.resources_per_subscription, args.events_per_subscription_day)
    print(text + "\n\n" + costs)
    if args.write:
        replace_section(args.write, MARK, text)
        replace_section(args.write, "scale-meters", costs)
    return 0


if __name__ == "__main__":
    sys.exit(main())
