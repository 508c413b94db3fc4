"""Engine figures over the realistic mix (bench/mix.py), each beside a machine yardstick of the same run.

The yardstick is JSON round-trips per second (``json.loads(json.dumps(r))``) of the same resources:
a pure-Python-object workload every machine runs at its own speed, so the ratio travels between machines.
"""
from __future__ import annotations

import copy
import json
import statistics
import sys
import time
from collections import defaultdict
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
if str(REPO) not in sys.path:
    sys.path.insert(0, str(REPO))

from bench import mix  # noqa: E402

# The same script also runs in an older checkout (``bench/run.py --before``), where the modules were
# flat: shared/controls.py, shared/events.py, shared/service.py, shared/reconcile.py.
try:
    from shared.catalog import load_catalog  # noqa: E402
except ImportError:
    from shared.controls import load_catalog  # noqa: E402


def yardstick(resources: list[dict], rounds: int) -> float:
    """Best-of-``rounds`` JSON round-trips per second of ``resources``."""
    best = float("inf")
    for _ in range(rounds):
        started = time.perf_counter()
        for r in resources:
            json.loads(json.dumps(r))
        best = min(best, time.perf_counter() - started)
    return len(resources) / best


def timed_rounds(catalog, resources: list[dict], rounds: int) -> tuple[int, list[float]]:
    """(evaluations per pass, seconds of each of ``rounds`` passes) of ``catalog`` over ``resources``."""
    evaluations = sum(len(catalog.evaluate(r)) for r in resources)  # warm-up and count
    timings = []
    for _ in range(rounds):
        started = time.perf_counter()
        for resource in resources:
            catalog.evaluate(resource)
        timings.append(time.perf_counter() - started)
    return evaluations, timings


def mix_throughput(resources: list[dict], rounds: int, catalog=None) -> dict:
    """Control evaluations per second of the whole catalog over the mix; per type, ms per resource."""
    catalog = catalog or load_catalog()
    evaluations, timings = timed_rounds(catalog, resources, rounds)
    by_type: dict[str, list] = defaultdict(list)
    for r in resources:
        by_type[mix.label(r)].append(r)
    per_type = {}
    for name, group in sorted(by_type.items()):
        count, group_timings = timed_rounds(catalog, group, rounds)
        best = min(group_timings)
        per_type[name] = {"resources": len(group), "evaluations": count, "per_second": count / best,
                          "ms_per_resource": 1000 * best / len(group)}
    best, median = min(timings), statistics.median(timings)
    return {"controls": len(catalog.controls), "resources": len(resources), "evaluations": evaluations,
            "rounds": rounds, "per_second_median": evaluations / median, "per_second_best": evaluations / best,
            "per_type": per_type}


def nsg_figures(rounds: int = 200, catalog=None) -> dict:
    """The whole catalog on each 20-rule group of one mix cycle, best of ``rounds``: the mean over the
    hardened groups, over the open ones (2-4 Internet-facing rules), and the costliest group with the
    number of its controls that fail (each failing verdict also builds and redacts its evidence)."""
    catalog = catalog or load_catalog()
    groups = [t for t in mix.templates() if t["type"] == mix.NSG_TYPE]
    hardened, opened, costliest = [], [], (0.0, 0)
    for number, group in enumerate(groups):
        results = catalog.evaluate(group)
        best = float("inf")
        for _ in range(rounds):
            started = time.perf_counter()
            catalog.evaluate(group)
            best = min(best, time.perf_counter() - started)
        ms = 1000 * best
        (opened if number % 2 else hardened).append(ms)
        failing = sum(1 for r in results if r.status.value == "NonCompliant")
        costliest = max(costliest, (ms, failing))
    return {"hardened_ms": statistics.mean(hardened), "open_ms": statistics.mean(opened),
            "costliest_ms": costliest[0], "costliest_failing": costliest[1], "controls": len(results)}


def per_event_by_type(samples: int, repeats: int = 3) -> dict:
    """p50/p99 of one ARM write event (re-read, evaluate, transitions, state) per type, in-memory adapters.

    Each event is handled ``repeats`` times, in whole passes over the samples, each time afresh (a new
    store: the same work), and its best time counts: what the event costs, without the moments another
    tenant of a shared machine takes the core. ``p99_single_ms`` is the p99 of the first pass alone,
    noise included."""
    from shared.adapters.memory import InMemoryStateStore, MemorySink, StaticResourceReader
    try:
        from shared.domain.events import envelope_from_dict, parse_event
        from shared.service.changes import Dependencies, handle_change
    except ImportError:  # an older, flat checkout
        from shared.events import envelope_from_dict, parse_event
        from shared.service import Dependencies, handle_change

    catalog = load_catalog()
    groups: dict[str, list] = defaultdict(list)
    for t in mix.templates():
        groups[mix.label(t)].append(t)
    out = {}
    for name, shapes in sorted(groups.items()):
        timings = [float("inf")] * samples
        for attempt in range(max(1, repeats)):  # whole passes, so a slow spell of the machine meets one run only
            for i in range(samples):
                resource = copy.deepcopy(shapes[i % len(shapes)])
                resource["id"] = f"{resource['id']}{i}"
                deps = Dependencies(catalog, StaticResourceReader([resource]), InMemoryStateStore(), MemorySink())
                event = {"id": f"e-{i}", "subject": resource["id"],
                         "eventType": "Microsoft.Resources.ResourceWriteSuccess", "eventTime": "2026-01-01T00:00:00Z",
                         "dataVersion": "2", "data": {"resourceUri": resource["id"]}}
                started = time.perf_counter()
                handle_change(parse_event(envelope_from_dict(event)), deps)
                timings[i] = min(timings[i], time.perf_counter() - started)
            if attempt == 0:
                single = sorted(timings)
        timings.sort()
        p99 = max(0, int(len(timings) * 0.99) - 1)
        out[name] = {"samples": samples, "repeats": max(1, repeats), "p50_ms": 1000 * timings[len(timings) // 2],
                     "p99_ms": 1000 * timings[p99], "p99_single_ms": 1000 * single[p99]}
    return out



def _rule_compiler_module():
    """The module holding ``GENERATE_RULES``: the engine as a package, or (``--before`` an older
    commit) the engine as one module."""
    try:
        import shared.policy.conditions as policy
    except ImportError:
        import shared.policy as policy
    return policy

def closures_vs_generated(rounds: int = 15) -> dict:
    """The fast path two ways, side by side in one process: nested closures, and one generated Python
    function per rule (what runs). Microseconds per resource, the applicable rules' verdicts only."""
    policy = _rule_compiler_module()

    saved = policy.GENERATE_RULES
    try:
        policy.GENERATE_RULES = False
        closures = load_catalog()
        policy.GENERATE_RULES = True
        generated = load_catalog()
    finally:
        policy.GENERATE_RULES = saved
    templates = mix.templates()
    groups = {"networkSecurityGroups (20 rules)": [t for t in templates if t["type"] == mix.NSG_TYPE],
              "the whole mix": templates}

    def best(catalog, resources) -> float:
        work = [(r, [c.rule for c in catalog.controls if c.applies_to(r)]) for r in resources]
        fastest = float("inf")
        for _ in range(rounds):
            started = time.perf_counter()
            for r, rules in work:
                index: dict = {}
                for rule in rules:
                    rule.matches(r, index)
            fastest = min(fastest, time.perf_counter() - started)
        return 1e6 * fastest / len(resources)

    out = {}
    for name, resources in groups.items():
        a, b = best(closures, resources), best(generated, resources)
        out[name] = {"closures_us": a, "generated_us": b}
    return out


def main() -> int:
    """One JSON line: the mix throughput (and per type), the yardstick, per-event figures by type."""
    import argparse
    import os

    parser = argparse.ArgumentParser(description="engine figures over the realistic mix")
    parser.add_argument("--resources", type=int, default=2000)
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--samples", type=int, default=200, help="events per type for the per-event figures")
    args = parser.parse_args()
    if hasattr(os, "sched_setaffinity"):
        os.sched_setaffinity(0, {min(os.sched_getaffinity(0))})
    resources = mix.corpus(args.resources)
    result = {"yardstick": yardstick(resources, args.rounds)}
    result["mix"] = mix_throughput(resources, args.rounds)
    result["nsg"] = nsg_figures()
    result["events"] = per_event_by_type(args.samples) if args.samples else {}
    policy = _rule_compiler_module()

    if hasattr(policy, "GENERATE_RULES"):  # the engine before the fast path has one form only
        result["closures_vs_generated"] = closures_vs_generated()
    result["yardstick"] = max(result["yardstick"], yardstick(resources, args.rounds))  # before and after
    print(json.dumps(result))
    return 0


if __name__ == "__main__":
    sys.exit(main())
