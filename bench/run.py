"""``make bench``: measure, print, and write docs/PERFORMANCE.md. Not a test: no pass/fail timing.

Figures:
* the headline: control evaluations per second over the realistic mix (``bench/mix.py``: every
  covered type, hardened and weak, 20-rule NSGs), per type, and per-event p50/p99 by type,
  each beside a machine yardstick measured in the same run (``bench/engine_bench.py``);
* the same figures of the engine before the fast path (``--before``, a git revision), measured
  in the same run, alternating with this tree;
* reconciliation of 100k resources from the mix, time and peak memory;
* engine throughput over the fixtures alone, per-event cost of storage events;
* cold start: ``import function_app`` in fresh interpreters, against a bare
  ``import azure.functions``.
"""
from __future__ import annotations

import argparse
import copy
import json
import os
import shutil
import statistics
import subprocess
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from bench import mix  # noqa: E402
from bench.render import (BEFORE, ENGINE_TARGET, HISTORY, render, render_c7n, render_events, render_forms,  # noqa: E402
                          render_mix, render_reconciliation)
from shared.catalog import load_catalog  # noqa: E402

FIXTURES = REPO / "tests" / "fixtures" / "resources"


def baseline_tree(ref: str) -> Path | None:
    """``ref`` extracted into a temporary directory with this tree's benchmark scripts, or None."""
    import tempfile

    target = Path(tempfile.mkdtemp(prefix="bench-before-"))
    archive = subprocess.run(["git", "-C", str(REPO), "archive", ref], capture_output=True)
    if archive.returncode != 0:
        print(f"  no baseline: git archive {ref} failed: {archive.stderr.decode().strip()}", flush=True)
        return None
    subprocess.run(["tar", "-x", "-C", str(target)], input=archive.stdout, check=True)
    for name in ("mix.py", "engine_bench.py", "reconcile_bench.py", "__init__.py"):
        (target / "bench" / name).write_bytes((REPO / "bench" / name).read_bytes())
    return target


def engine_runs(trees: dict[str, Path], repeats: int, resources: int, rounds: int, samples: int) -> dict:
    """``bench/engine_bench.py`` in each tree, alternating, ``repeats`` times; the best of each figure."""
    best: dict[str, dict] = {}
    for _ in range(repeats):
        for name, tree in trees.items():
            out = subprocess.run([sys.executable, str(tree / "bench" / "engine_bench.py"), "--resources",
                                  str(resources), "--rounds", str(rounds), "--samples", str(samples)],
                                 cwd=tree, capture_output=True, text=True, check=True)
            run = json.loads(out.stdout.strip().splitlines()[-1])
            run["ratio"] = run["mix"]["per_second_best"] / run["yardstick"]
            if name not in best:
                best[name] = run
                continue
            kept = best[name]
            if run["ratio"] > kept["ratio"]:
                kept.update(yardstick=run["yardstick"], ratio=run["ratio"],
                            mix=dict(run["mix"], per_type=kept["mix"]["per_type"]))
            for name_, form in run.get("closures_vs_generated", {}).items():
                saved = kept["closures_vs_generated"][name_]
                for key in ("closures_us", "generated_us"):
                    saved[key] = min(saved[key], form[key])
            for key, value in run.get("nsg", {}).items():
                if key.endswith("_ms") and key in kept.get("nsg", {}) and value < kept["nsg"][key]:
                    kept["nsg"][key] = value
            for kind, figure in run["mix"]["per_type"].items():
                if figure["ms_per_resource"] < kept["mix"]["per_type"][kind]["ms_per_resource"]:
                    kept["mix"]["per_type"][kind] = figure
            for kind, figure in run["events"].items():
                for key in ("p50_ms", "p99_ms", "p99_single_ms"):
                    if key in figure:
                        kept["events"][kind][key] = min(kept["events"][kind].get(key, figure[key]), figure[key])
    return best


def corpus(size: int) -> list[dict]:
    """``size`` resources cycled from the hardened and weak fixtures, each with its own id."""
    return mix.cycled([json.loads(p.read_text()) for p in sorted(FIXTURES.glob("*.json"))], size)


def engine_throughput(resources: list[dict], rounds: int) -> dict:
    from bench.engine_bench import timed_rounds, yardstick

    catalog = load_catalog()
    evaluations, timings = timed_rounds(catalog, resources, rounds)
    best, median = min(timings), statistics.median(timings)

    return {"controls": len(catalog.controls), "resources": len(resources), "evaluations": evaluations,
            "median_s": median, "per_second_median": evaluations / median, "per_second_best": evaluations / best,
            "rounds": rounds, "yardstick": yardstick(resources, rounds)}


class CountingReader:
    """The in-memory reader, counting what would be ARM calls."""

    def __init__(self, inner):
        self.inner, self.gets, self.related_reads = inner, 0, 0

    def get(self, rid):
        self.gets += 1
        return self.inner.get(rid)

    def related(self, rid, resource, spec):
        self.related_reads += 1
        return self.inner.related(rid, resource, spec)


class CountingStore:
    def __init__(self, inner):
        self.inner, self.reads, self.transactions = inner, 0, 0

    def load(self, rid):
        self.reads += 1
        return self.inner.load(rid)

    def save(self, previous, new, outbox=()):
        self.transactions += 1
        return self.inner.save(previous, new, outbox)

    def delivered(self, resource_id, ids):
        self.transactions += 1
        return self.inner.delivered(resource_id, ids)

    def __getattr__(self, name):
        return getattr(self.inner, name)


def per_event(samples: int) -> dict:
    """In-process cost of one event (parse + read + evaluate + transitions + state), in-memory adapters."""
    from shared.adapters.memory import InMemoryStateStore, MemorySink, StaticResourceReader
    from shared.domain.events import envelope_from_dict, parse_event
    from shared.service.changes import Dependencies, handle_change

    catalog = load_catalog()
    hardened = json.loads((FIXTURES / "storage-hardened.json").read_text())
    weak = json.loads((FIXTURES / "storage-weak.json").read_text())
    results = {}
    for kind in ("ARM write (re-read)", "Resource Notifications payload", "ARM delete"):
        timings, calls = [], []
        for i in range(samples):
            resource = copy.deepcopy(hardened if i % 2 else weak)
            resource["id"] = f"{resource['id']}{i}"
            reader = CountingReader(StaticResourceReader([resource]))
            store, sink = CountingStore(InMemoryStateStore()), MemorySink()
            deps = Dependencies(catalog, reader, store, sink)
            seed = {"id": f"seed-{i}", "subject": resource["id"], "eventType": "Microsoft.Resources.ResourceWriteSuccess",
                    "eventTime": "2026-01-01T00:00:00Z", "dataVersion": "2", "data": {"resourceUri": resource["id"]}}
            if kind == "ARM delete":
                handle_change(parse_event(envelope_from_dict(seed)), deps)  # state to delete
                reader.inner.remove(resource["id"])
                event = dict(seed, id=f"e-{i}", eventType="Microsoft.Resources.ResourceDeleteSuccess",
                             eventTime="2026-01-01T01:00:00Z")
            elif kind == "ARM write (re-read)":
                event = dict(seed, id=f"e-{i}")
            else:
                info = {k: resource[k] for k in ("id", "name", "type", "location", "tags", "properties")}
                event = {"id": f"e-{i}", "subject": resource["id"], "dataVersion": "1",
                         "eventType": "Microsoft.ResourceNotifications.Resources.CreatedOrUpdated",
                         "eventTime": "2026-01-01T00:00:00Z",
                         "data": {"resourceInfo": info, "operationalInfo": {"resourceEventTime": "2026-01-01T00:00:00Z"}}}
            reader.gets = reader.related_reads = store.reads = store.transactions = sink.calls = 0
            started = time.perf_counter()
            handle_change(parse_event(envelope_from_dict(event)), deps)
            timings.append(time.perf_counter() - started)
            calls.append((reader.gets, reader.related_reads, store.reads, store.transactions, sink.calls))
        timings.sort()
        results[kind] = {
            "p50_ms": 1000 * timings[len(timings) // 2], "p99_ms": 1000 * timings[int(len(timings) * 0.99) - 1],
            "arm_gets": max(c[0] for c in calls), "related_reads": max(c[1] for c in calls),
            "table_reads": max(c[2] for c in calls), "table_transactions": max(c[3] for c in calls),
            "ingestion_calls": max(c[4] for c in calls),
        }
    return results


def reconciliation(total: int, tree: Path = REPO) -> dict:
    """bench/reconcile_bench.py in a fresh process, so its peak memory is its own."""
    out = subprocess.run([sys.executable, str(tree / "bench" / "reconcile_bench.py"), str(total)], cwd=tree,
                         capture_output=True, text=True, check=True)
    return json.loads(out.stdout.strip().splitlines()[-1])


def c7n_comparison(c7n_python: str | None, resources: int = 20_000) -> dict | None:
    """Our engine and Cloud Custodian's value filter on the same resources and equivalent rules (one run each)."""
    if not c7n_python or not Path(c7n_python).exists():
        return None
    script = str(REPO / "bench" / "c7n_compare.py")
    runs = {}
    for engine, python in (("ours", sys.executable), ("c7n", c7n_python)):
        out = subprocess.run([python, script, "--engine", engine, "--resources", str(resources)], cwd=REPO,
                             capture_output=True, text=True, check=True)
        runs[engine] = json.loads(out.stdout.strip().splitlines()[-1])
    return runs


FIRST_USE = """
import time, function_app
t = time.perf_counter()
from shared.catalog import load_catalog
catalog = load_catalog()
from azure.identity import DefaultAzureCredential
from azure.data.tables import TableClient
from azure.monitor.ingestion import LogsIngestionClient
from azure.mgmt.resource.resources import ResourceManagementClient
credential = DefaultAzureCredential()
TableClient("https://account.table.core.windows.net", "ComplianceState", credential=credential)
LogsIngestionClient("https://dce.ingest.monitor.azure.com", credential)
ResourceManagementClient(credential, "00000000-0000-0000-0000-000000000000")
print(time.perf_counter() - t)
"""


def first_use_seconds(runs: int) -> float:
    """After ``import function_app``: loading the catalog, importing the SDKs and building the clients
    (what the first event pays; no network call is made)."""
    samples = []
    for _ in range(runs):
        out = subprocess.run([sys.executable, "-c", FIRST_USE], cwd=REPO, capture_output=True, text=True, check=True)
        samples.append(float(out.stdout.strip().splitlines()[-1]))
    return statistics.median(samples)


def heaviest_imports(statement: str, top: int = 8) -> list[tuple[str, float]]:
    """Modules by cumulative import time (python -X importtime), the heaviest first."""
    out = subprocess.run([sys.executable, "-X", "importtime", "-c", statement], cwd=REPO, capture_output=True,
                         text=True, check=True)
    rows = []
    for line in out.stderr.splitlines():
        if not line.startswith("import time:") or "cumulative" in line:
            continue
        _, _, rest = line.partition(":")
        self_us, cumulative_us, name = (part.strip() for part in rest.split("|"))
        module = name.strip()
        if "." not in module or module == "azure.functions":  # top-level modules (azure is a namespace)
            rows.append((module, int(cumulative_us) / 1e6))
    return sorted(rows, key=lambda r: -r[1])[:top]


def import_seconds(statements: dict[str, str], runs: int) -> dict[str, float]:
    """Median seconds to run each import statement in a fresh interpreter. The statements alternate
    run by run (after one unmeasured warm-up each), so the file cache and the machine's noise of the
    moment reach all of them alike and their ratio is fair."""
    def once(statement: str) -> float:
        code = f"import time; t = time.perf_counter(); {statement}; print(time.perf_counter() - t)"
        out = subprocess.run([sys.executable, "-c", code], cwd=REPO, capture_output=True, text=True, check=True)
        return float(out.stdout.strip())

    for statement in statements.values():
        once(statement)
    samples: dict[str, list[float]] = {name: [] for name in statements}
    for _ in range(runs):
        for name, statement in statements.items():
            samples[name].append(once(statement))
    return {name: statistics.median(values) for name, values in samples.items()}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--resources", type=int, default=2000)
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--repeats", type=int, default=3, help="alternating runs of each tree for the mix figures")
    parser.add_argument("--runs", type=int, default=15, help="fresh interpreters per cold-start figure")
    parser.add_argument("--samples", type=int, default=500, help="events per kind for the per-event figures")
    parser.add_argument("--type-samples", type=int, default=200, help="events per type for the mix per-event figures")
    parser.add_argument("--reconcile", type=int, default=100_000, help="resources for the reconciliation figure")
    parser.add_argument("--before", default=BEFORE, help="git revision measured as 'before' ('' for none)")
    parser.add_argument("--c7n-python", help="python of a venv with c7n-azure, for the side-by-side figure")
    parser.add_argument("--out", default=str(REPO / "docs" / "PERFORMANCE.md"))
    args = parser.parse_args()
    trees = {"after": REPO}
    if args.before:
        tree = baseline_tree(args.before)
        if tree is not None:
            trees["before"] = tree
    print(f"realistic mix: {args.resources} resources x {args.rounds} rounds, {args.repeats} runs of "
          f"{', '.join(trees)} ...", flush=True)
    mix_runs = engine_runs(trees, args.repeats, args.resources, args.rounds, args.type_samples)
    for name, run in mix_runs.items():
        print(f"  {name}: {run['mix']['per_second_best']:,.0f} evaluations/s, yardstick {run['yardstick']:,.0f}/s, "
              f"ratio {run['ratio']:.2f}", flush=True)
    print(f"reconciliation: {args.reconcile} resources in a fresh process per tree ...", flush=True)
    rec = {}
    for name, tree in trees.items():
        rec[name] = reconciliation(args.reconcile, tree)
        print(f"  {name}: {rec[name]['seconds']} s, {rec[name]['per_second']} resources/s, "
              f"peak {rec[name]['peak_mib']} MiB", flush=True)
    if hasattr(os, "sched_setaffinity"):
        os.sched_setaffinity(0, {min(os.sched_getaffinity(0))})
    print(f"engine (fixtures only): {args.resources} resources x {args.rounds} rounds ...", flush=True)
    engine = engine_throughput(corpus(args.resources), args.rounds)
    print(f"  {engine['per_second_median']:,.0f} control evaluations/s (target {ENGINE_TARGET:,})", flush=True)
    print(f"cold start: {args.runs} fresh interpreters each ...", flush=True)
    cold = {"runs": args.runs, **import_seconds({"bare": "import azure.functions", "app": "import function_app"},
                                                args.runs),
            "first_use": first_use_seconds(args.runs), "heaviest": heaviest_imports("import function_app")}
    print(f"  import function_app {cold['app']:.3f} s, azure.functions {cold['bare']:.3f} s", flush=True)
    print(f"per event: {args.samples} samples per kind ...", flush=True)
    events = per_event(args.samples)
    for kind, r in events.items():
        print(f"  {kind}: p50 {r['p50_ms']:.2f} ms, p99 {r['p99_ms']:.2f} ms", flush=True)
    print("Cloud Custodian side by side ...", flush=True)
    c7n = c7n_comparison(args.c7n_python)
    if c7n:
        print(f"  ours {c7n['ours']['seconds']:.3f} s, c7n {c7n['c7n']['seconds']:.3f} s", flush=True)
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    Path(args.out).write_text(render(engine, cold, render_mix(mix_runs, args.repeats)) + render_events(events)
                              + render_reconciliation(rec) + render_forms(mix_runs) + render_c7n(c7n) + HISTORY,
                              encoding="utf-8")
    print(f"wrote {args.out}")
    for name, tree in trees.items():
        if name != "after":
            shutil.rmtree(tree, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
