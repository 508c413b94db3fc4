"""Reconciliation throughput and peak memory over a generated Resource Graph dump (run in its own process).

Prints one JSON line: resources, seconds, resources per second, peak RSS in MiB, and the yardstick
(JSON round-trips per second of the same rows, see bench/engine_bench.py). The state store keeps
nothing (state lives in Table Storage in Azure), so the figure is the function's own memory.
"""
from __future__ import annotations

import json
import resource
import sys
import time
from dataclasses import dataclass
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from bench import mix  # noqa: E402
from bench.engine_bench import yardstick  # noqa: E402
from shared.adapters.memory import MemorySink, StaticResourceReader  # noqa: E402

try:
    from shared.catalog import load_catalog  # noqa: E402
    from shared.service.changes import Dependencies  # noqa: E402
    from shared.service.reconcile import reconcile  # noqa: E402
except ImportError:  # an older, flat checkout (bench/run.py --before)
    from shared.controls import load_catalog  # noqa: E402
    from shared.reconcile import reconcile  # noqa: E402
    from shared.service import Dependencies  # noqa: E402




@dataclass(frozen=True)
class Page:
    resources: list
    skip_token: str | None
    number: int


class GeneratedGraph:
    """Pages of 1,000 rows like Resource Graph's, generated on the fly (nothing kept)."""

    def __init__(self, total: int):
        self.total = total
        self.templates = mix.templates()  # every covered type, hardened and weak, 20-rule NSGs
        for t in self.templates:
            t.pop("$related", None)  # Resource Graph rows carry no related resources

    def pages(self, subscriptions, types, skip_token=None):
        start = int(skip_token or 0)
        number = start // 1000
        while start < self.total:
            rows = []
            for i in range(start, min(start + 1000, self.total)):
                row = dict(self.templates[i % len(self.templates)])  # shallow: rules never mutate a resource
                row["id"] = f"/subscriptions/{subscriptions[0]}/resourceGroups/rg-{i % 50}/providers/" \
                            f"{row['type']}/r{i:06d}"
                rows.append(row)
            start += len(rows)
            number += 1
            yield Page(rows, str(start) if start < self.total else None, number)


class DiscardStore:
    """Accepts every write, keeps none: the function's own memory, not the table's."""

    def load(self, rid):
        return None

    def save(self, previous, new, outbox=()):
        pass

    def delivered(self, resource_id, ids):
        pass

    def states(self):
        return iter(())

    checkpoint = None

    def load_checkpoint(self):
        return None

    def save_checkpoint(self, checkpoint):
        pass

    def clear_checkpoint(self):
        pass

    def record_posture(self, summary):
        pass


class CountingSink(MemorySink):
    def send(self, records):
        self.calls += 1


def main() -> int:
    total = int(sys.argv[1]) if len(sys.argv) > 1 else 100_000
    graph = GeneratedGraph(total)
    before = yardstick(graph.templates * 20, 3)
    deps = Dependencies(load_catalog(), StaticResourceReader(), DiscardStore(), CountingSink())
    started = time.perf_counter()
    outcome = reconcile(deps, graph, ["00000000-0000-4000-8000-00000000b0b0"])
    seconds = time.perf_counter() - started
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # KiB on Linux
    print(json.dumps({"resources": outcome.listed, "seconds": round(seconds, 2),
                      "per_second": round(outcome.listed / seconds), "peak_mib": round(peak, 1),
                      "findings": outcome.findings,
                      "yardstick": max(before, yardstick(graph.templates * 20, 3))}))
    return 0


if __name__ == "__main__":
    sys.exit(main())
