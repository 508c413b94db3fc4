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


# The unit prices a --prices file gives (your region's list prices: the Azure pricing calculator or the
# Azure Retail Prices API), and their free monthly grants where the meter has one.
PRICE_KEYS = {
    "functions_per_million_executions": "Functions executions, per million",
    "functions_per_gb_second": "Functions on-demand execution time, per GB-s",
    "functions_free_executions": "free executions a month",
    "functions_free_gb_seconds": "free GB-s a month",
    "table_per_10k_transactions": "Table Storage transactions, per 10,000",
    "queue_per_10k_transactions": "Queue Storage transactions, per 10,000",
    "logs_per_gb": "Logs Ingestion (Analytics logs), per GB",
    "event_grid_per_million_operations": "Event Grid operations, per million",
    "event_grid_free_operations": "free Event Grid operations a month",
}


class PriceError(ValueError):
    pass


def read_prices(path: Path) -> dict[str, float]:
    """The --prices file: a JSON object of PRICE_KEYS to non-negative numbers (missing grants count as 0)."""
    import json

    try:
        given = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        raise PriceError(f"{path}: not readable JSON: {exc}") from None
    if not isinstance(given, dict):
        raise PriceError(f"{path}: expected a JSON object of unit prices")
    unknown = sorted(set(given) - set(PRICE_KEYS))
    if unknown:
        raise PriceError(f"{path}: unknown keys {', '.join(unknown)} (known: {', '.join(PRICE_KEYS)})")
    missing = sorted(k for k in PRICE_KEYS if "_free_" not in k and k not in given)
    if missing:
        raise PriceError(f"{path}: missing unit prices for {', '.join(missing)}")
    bad = sorted(k for k, v in given.items() if isinstance(v, bool) or not isinstance(v, (int, float)) or v < 0)
    if bad:
        raise PriceError(f"{path}: {', '.join(bad)} must be non-negative numbers")
    return {k: float(given.get(k, 0)) for k in PRICE_KEYS}


def monthly_cost(subscriptions: int, resources_per_subscription: int, events_per_subscription_day: int,
                 prices: dict[str, float], queue_delivery: bool = False) -> dict[str, tuple[float, float]]:
    """(low, high) per meter for one month: low with the measured handler time and no changed verdict,
    high with the billing minimum per execution and every event changing one."""
    p = plan(subscriptions, resources_per_subscription, events_per_subscription_day)
    events = p["events"] * DAYS_PER_MONTH
    gb_s = (p["instance_seconds"] * DAYS_PER_MONTH * INSTANCE_GB, events * BILLED_MINIMUM_SECONDS * INSTANCE_GB)
    billable = lambda quantity, free: max(0.0, quantity - free)  # noqa: E731
    cost = {
        "functions executions": (billable(events, prices["functions_free_executions"]) / 1e6
                                 * prices["functions_per_million_executions"],) * 2,
        "functions execution time": tuple(billable(g, prices["functions_free_gb_seconds"])
                                          * prices["functions_per_gb_second"] for g in gb_s),
        "table transactions": tuple(t * DAYS_PER_MONTH / 1e4 * prices["table_per_10k_transactions"] for t in p["table"]),
        "logs ingestion": (0.0, p["ingested_mb"] * DAYS_PER_MONTH / 1000 * prices["logs_per_gb"]),
        "event grid": (billable(events, prices["event_grid_free_operations"]) / 1e6
                       * prices["event_grid_per_million_operations"],) * 2,
    }
    if queue_delivery:
        cost["queue transactions"] = (p["queue"] * DAYS_PER_MONTH / 1e4 * prices["queue_per_10k_transactions"],) * 2
    return cost


def cost_table(resources_per_subscription: int, events_per_subscription_day: int, prices: dict[str, float],
               queue_delivery: bool = False) -> str:
    costs = {subscriptions: monthly_cost(subscriptions, resources_per_subscription, events_per_subscription_day,
                                         prices, queue_delivery) for subscriptions in SUBSCRIPTIONS}
    meters_ = list(costs[SUBSCRIPTIONS[0]])
    lines = ["| subscriptions | " + " | ".join(meters_) + " | in all |", "|---:|" + "---:|" * (len(meters_) + 1)]
    for subscriptions, cost in costs.items():
        cells = [f"{low:,.2f}" if low == high else f"{low:,.2f} to {high:,.2f}" for low, high in cost.values()]
        total = (sum(c[0] for c in cost.values()), sum(c[1] for c in cost.values()))
        lines.append(f"| {subscriptions:,} | {' | '.join(cells)} | {total[0]:,.2f} to {total[1]:,.2f} |")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--resources-per-subscription", type=int, default=1000)
    parser.add_argument("--events-per-subscription-day", type=int, default=1000)
    parser.add_argument("--write", type=Path, help="replace the scale-plan section of this document")
    parser.add_argument("--prices", type=Path, help="a JSON file of your region's unit prices (keys: "
                        + ", ".join(PRICE_KEYS) + "): prints the monthly cost per meter, low to high")
    parser.add_argument("--queue-delivery", action="store_true", help="price the queue transactions too")
    args = parser.parse_args(argv)
    if args.prices:
        try:
            prices = read_prices(args.prices)
        except PriceError as exc:
            print(f"scale_plan: {exc}", file=sys.stderr)
            return 2
        print(cost_table(args.resources_per_subscription, args.events_per_subscription_day, prices,
                         args.queue_delivery))
        return 0
    text = table(args.resources_per_subscription, args.events_per_subscription_day)
    costs = meters(args.resources_per_subscription, args.events_per_subscription_day)
    print(text + "\n\n" + costs)
    if args.write:
        replace_section(args.write, MARK, text)
        replace_section(args.write, "scale-meters", costs)
    return 0


if __name__ == "__main__":
    sys.exit(main())
