"""docs/PERFORMANCE.md from the figures ``bench/run.py`` measured: each table beside its target."""
from __future__ import annotations

import os
import platform
from datetime import datetime, timezone
from pathlib import Path

from bench import mix

ENGINE_TARGET = 20_000  # control evaluations per second on one core, fixtures corpus
MIX_TARGET = 50_000  # control evaluations per second on one core, realistic mix
NSG_TARGET_MS = 0.5  # the whole catalog on one 20-rule NSG
EVENT_P99_TARGET_MS = 2.0
RECONCILE_TARGET_S, RECONCILE_TARGET_MIB = 60, 100
BEFORE = "7820daa"  # the engine before the fast path and generated rules


def _met(ok: bool) -> str:
    return "met" if ok else "NOT met"


def render_reconciliation(runs: dict[str, dict]) -> str:
    r = runs["after"]
    before = runs.get("before")
    ratio = lambda x: x["per_second"] / x["yardstick"]  # noqa: E731
    rows = f"""| wall time | {r['seconds']} s | {f"{before['seconds']} s" if before else "-"} | under {RECONCILE_TARGET_S} s ({_met(r['seconds'] < RECONCILE_TARGET_S)}) |
| resources per second | {r['per_second']:,} | {f"{before['per_second']:,}" if before else "-"} | |
| resources per second / yardstick | {ratio(r):.3f} | {f"{ratio(before):.3f}" if before else "-"} | |
| yardstick (JSON round-trips/s of the rows) | {r['yardstick']:,.0f} | {f"{before['yardstick']:,.0f}" if before else "-"} | |
| peak memory (RSS) | {r['peak_mib']} MiB | {f"{before['peak_mib']} MiB" if before else "-"} | under {RECONCILE_TARGET_MIB} MiB ({_met(r['peak_mib'] < RECONCILE_TARGET_MIB)}) |"""
    return f"""
## Reconciliation at scale

Method: `bench/reconcile_bench.py` in its own process: {r['resources']:,} resources generated as
Resource Graph pages of 1,000, cycling through the realistic mix (`bench/mix.py`: every covered
type, hardened and weak, 20-rule NSGs), each evaluated through the event path with the whole
catalog. The state store keeps nothing (in Azure the state is in Table Storage), and every
resource is seen for the first time, so every weak one produces findings ({r['findings']:,}
here): the worst case. Resource Graph rows carry no related resources, so the
auditIfNotExists-style controls read none here.

| figure | now | before | target |
|---|---|---|---|
{rows}

Pages are streamed: memory does not grow with the number of resources.
"""


def render_c7n(runs: dict | None) -> str:
    if runs is None:
        return """
## Side by side with Cloud Custodian

Not measured in this run: `make bench` installs c7n-azure into `.venv-c7n` (benchmark only) and
passes `--c7n-python .venv-c7n/bin/python`.
"""
    ours, c7n = runs["ours"], runs["c7n"]
    per = lambda r: r["resources"] * r["rules"] / r["seconds"]  # noqa: E731
    return f"""
## Side by side with Cloud Custodian

Method: `bench/c7n_compare.py`, one run each: {ours['resources']:,} storage accounts (hardened and weak),
{ours['rules']} equivalent rules (secure transfer, minimum TLS, public blob access, firewall default
action) as Azure Policy conditions here and as `value` filters in Cloud Custodian (c7n-azure from
PyPI, installed only for the benchmark). Both flag the same {ours['flagged']:,} (resource, rule) pairs.

| engine | rule evaluations per second |
|---|---|
| this engine (whole evaluation: applicability, results, evidence) | {per(ours):,.0f} |
| Cloud Custodian value filter (a boolean per filter) | {per(c7n):,.0f} |
| ratio (this / Custodian) | {per(ours) / per(c7n):.2f} |

Cloud Custodian's filter returns a boolean; this engine also builds a result per control with the
evidence that decided it (redacted), which is the larger part of its cost on these simple rules.
"""


def _type_name(kind: str) -> str:
    return kind.split("/")[-1]


def render_mix(runs: dict[str, dict], repeats: int) -> str:
    now, before = runs["after"], runs.get("before")
    m = now["mix"]
    b = before["mix"] if before else None
    speedup = now["ratio"] / before["ratio"] if before else None
    nsg_kind = mix.label({"type": mix.NSG_TYPE})
    nsg = m["per_type"].get(nsg_kind, {})

    g = now.get("nsg")

    def before_nsg(key: str) -> str:
        return f"{before['nsg'][key]:.3f}" if before and key in before.get("nsg", {}) else "-"

    def before_p99(kind: str) -> str:
        return f"{before['events'][kind]['p99_ms']:.2f}" if before and kind in before["events"] else "-"

    def before_ms(kind: str) -> str:
        figure = b["per_type"].get(kind) if b else None
        return f"{figure['ms_per_resource']:.3f}" if figure else "-"

    headline = f"""| control evaluations per second (best round) | {m['per_second_best']:,.0f} | {f"{b['per_second_best']:,.0f}" if b else "-"} | {MIX_TARGET:,} ({_met(m['per_second_best'] >= MIX_TARGET)}) |
| control evaluations per second (median round) | {m['per_second_median']:,.0f} | {f"{b['per_second_median']:,.0f}" if b else "-"} | |
| yardstick: JSON round-trips per second of the same resources | {now['yardstick']:,.0f} | {f"{before['yardstick']:,.0f}" if before else "-"} | |
| evaluations per JSON round-trip (machine-independent) | {now['ratio']:.2f} | {f"{before['ratio']:.2f}" if before else "-"} | |
| speed-up (ratio to ratio) | {f"{speedup:.1f}x" if speedup else "-"} | | 3x |
| one 20-rule NSG, whole catalog, ms | {nsg.get('ms_per_resource', 0):.3f} | {before_ms(nsg_kind)} | {NSG_TARGET_MS} ({_met(nsg.get('ms_per_resource', 9) <= NSG_TARGET_MS)}) |""" + (f"""
| a hardened 20-rule NSG (mean of the mix's), ms | {g['hardened_ms']:.3f} | {before_nsg('hardened_ms')} | |
| an open 20-rule NSG, 2-4 Internet-facing rules (mean of the mix's), ms | {g['open_ms']:.3f} | {before_nsg('open_ms')} | {NSG_TARGET_MS} ({_met(g['open_ms'] <= NSG_TARGET_MS)}) |
| the costliest NSG of the mix ({g['costliest_failing']} of its {g['controls']} controls failing, evidence built and redacted), ms | {g['costliest_ms']:.3f} | {before_nsg('costliest_ms')} | {NSG_TARGET_MS} ({_met(g['costliest_ms'] <= NSG_TARGET_MS)}) |""" if g else "")
    worst = max(e["p99_ms"] for e in now["events"].values()) if now["events"] else 0

    events = "\n".join(f"| {kind} | {e['p50_ms']:.2f} | {e['p99_ms']:.2f} | {before_p99(kind)} | "
                       f"{e.get('p99_single_ms', 0):.2f} |"
                       for kind, e in sorted(now["events"].items()))
    types = "\n".join(
        f"| {kind} | {f['resources']} | {f['evaluations'] // max(f['resources'], 1)} | {f['per_second']:,.0f} | "
        f"{f['ms_per_resource']:.3f} | {before_ms(kind)} |" for kind, f in sorted(m["per_type"].items()))
    return f"""
## The realistic mix (headline)

Method: `bench/engine_bench.py`: the whole catalog ({m['controls']} controls) over {m['resources']:,}
resources from `bench/mix.py`: every covered type from `tests/fixtures/resources/` (hardened
and weak) and network security groups as people write them, 20 security rules each (single
ports, port ranges, lists of ports and ranges, `*`, service tags, CIDRs and lists of CIDRs;
half of them hide 2-4 Internet-facing rules among ordinary ones), a fifth of the resources.
{m['evaluations']:,} control evaluations per round, {m['rounds']} rounds, one process pinned to
one core. "Before" is the engine at `{BEFORE}` (before the fast path), measured in the same run,
alternating with this tree, {repeats} runs each; each figure is the best of the runs. The
yardstick (JSON round-trips per second of the same resources) is measured in each run: the
ratio to it is what carries over between machines.

| figure | now | before | target |
|---|---|---|---|
{headline}

Per type (ms per resource: the whole catalog on one resource of that type):

| type | resources | controls each | evaluations/s | ms per resource | before, ms |
|---|---|---|---|---|---|
{types}

Per event by type: `handle_change` on one ARM write event with in-memory adapters (re-read
from memory, the whole catalog, transitions, state write), alternating hardened and weak
resources of the type, {next(iter(now['events'].values()))['samples'] if now['events'] else 0} events per type.
Each event is handled in {next(iter(now['events'].values())).get('repeats', 1) if now['events'] else 0} whole passes over the samples, afresh each time (a new store,
so the same work), and its best time counts: the p50 and p99 are of what each event costs, the
moments when another tenant of the shared machine has the core left out. The last column is the
p99 of the first pass alone, with whatever noise the machine had then.

| type | p50 ms | p99 ms | before, p99 ms | p99 of single runs, noise included, ms |
|---|---|---|---|---|
{events}

Worst p99: {worst:.2f} ms (target under {EVENT_P99_TARGET_MS} ms for every type: {_met(worst < EVENT_P99_TARGET_MS)}).
"""


def machine() -> str:
    model = "unknown CPU"
    try:
        model = next(line.split(":", 1)[1].strip() for line in Path("/proc/cpuinfo").read_text().splitlines()
                     if line.startswith("model name"))
    except (OSError, StopIteration):
        pass
    return f"{model}, {os.cpu_count()} cores, Python {platform.python_version()} on {platform.system()}"


def render_events(events: dict) -> str:
    rows = "\n".join(
        f"| {kind} | {r['p50_ms']:.2f} | {r['p99_ms']:.2f} | {r['arm_gets']} | {r['related_reads']} | "
        f"{r['table_reads']} | {r['table_transactions']} | {r['ingestion_calls']} |" for kind, r in events.items())
    return f"""
## Per-event cost (in process)

Method: `handle_change` on one event with in-memory adapters (parse, ARM read from memory,
the whole catalog evaluated, transitions, state write), alternating a hardened and a weak
storage account; calls counted at the adapters (the most seen for one event).

| event | p50 ms | p99 ms | ARM reads | related reads | table reads | table transactions | ingestion calls |
|---|---|---|---|---|---|---|---|
{rows}

A table transaction writes the state and its findings (outbox) together; when an event
produced findings, a second transaction deletes them from the outbox after the Logs
Ingestion call accepted them. Related reads are made only for controls whose rule selected
the resource (here: the storage account's blob service for the soft-delete controls). ARM reads
include one read of the resource group when the resource's own tags name no owner or team; it is
cached for 10 minutes per group (each sample here starts with an empty cache, the worst case).
The weak account's payload lacks properties some storage controls read, so it is completed by
one ARM GET of the account (`bench/payload_coverage.py` measures how often that happens).
The test `tests/test_call_counts.py` counts the same round trips on the wire.
"""


HISTORY = """
## What was profiled and changed

Measured with cProfile on the same corpora, before and after each change:

| change | before | after |
|---|---|---|
| evidence described lazily (only for a non-compliant verdict), `dict` instead of `typing.Mapping` checks, cached lower-cased paths | 15,263 evaluations/s (12 controls) | 30,706 evaluations/s |
| `allOf`/`anyOf`/`and`/`or` as plain loops, a string fast path in `equals`, a regex instead of a per-character scan of resource ids | 1,462 resources/s reconciled | 1,819 resources/s |
| a related read (or its failure) shared by every control of one evaluation | 2 related reads per storage account | 1 |

Then, on the realistic mix, where a profile of 1,000 resources showed the NSG port-range `count`
rules taking most of the time (a template expression per port per security rule, `current()`
re-resolving its path on every call, path tuples and an evidence closure built for every
condition even inside `count`, `redact` about a tenth):

| change | what it removes |
|---|---|
| a fast path for the verdict alone; evidence described in a second pass only for a rule that matched, and inside a `count` never | paths and evidence records for compliant resources |
| fields and `current()` bound to frame slots when the rule is compiled | a search of the enclosing counts by path on every lookup |
| each rule's fast path generated as one Python function (as template engines and JSON-schema compilers do), beside the closures | a Python call per condition and per expression node |
| constant `in`/`notIn` lists as sets of normalised values, constant strings case-folded once, `count ... greater 0` stopping at the first match | a comparison per list item and per remaining element |
| sub-expressions that read only an outer element (`current()` of the security rule, its `split`, `int`) computed once per loop, failures deferred to where they are used | the same work for every port of every rule |
| case-insensitive misses through a per-evaluation index of each object's names | a scan of every key for each absent property |
| redaction: one keyword search decides for short strings | eight regular expressions per evidence string |
| the evidence pass and `current()` in template expressions through the same per-evaluation index; elsewhere a case-insensitive miss compares only names of the key's length | lower-casing every key of the object |
| a `count` over a constant array (the port-range template over a `ports` parameter) remembered per count site by the plain values it reads from enclosing elements (the port range as read), at most 1,024 per site; what is computed from them (`split`, `int`) only when the value is new | every port of the list checked again, and the range parsed again, for each port range of each rule |
| evidence: a count's matches found by one generated loop over the array; an object several controls quote measured once per evaluation; scalars and short strings not measured | a call per element and a `repr` per quote |
| redaction: strings found free of secrets remembered (bounded; never one that held a secret) | the patterns again for every quote of a rule's type, etag, access and direction |
| evidence of a condition on a field of the resource itself (no `[*]`): its value read directly and its path formatted once at load | a path walk, path tuples and formatting for each described condition |
| the event parser imported on the first event instead of at `import function_app` | about a tenth of the cold start over bare `azure.functions` |

"""


def render_forms(runs: dict[str, dict]) -> str:
    forms = runs["after"].get("closures_vs_generated")
    if not forms:
        return ""
    rows = "\n".join(f"| {name} | {f['closures_us']:,.0f} | {f['generated_us']:,.0f} | "
                      f"{f['closures_us'] / f['generated_us']:.1f}x |" for name, f in forms.items())
    return f"""
## Closures or generated Python

The fast path measured both ways side by side in one process (`closures_vs_generated` in
`bench/engine_bench.py`): nested closures with fields and `current()` bound to frame slots,
and one generated Python function per rule. Microseconds per resource, every applicable rule's
verdict, best of 15 rounds. The generated form is what runs; `GENERATE_RULES` in
`shared/policy/conditions.py` switches back to the closures.

| resources | closures, us | generated, us | generated is faster by |
|---|---|---|---|
{rows}
"""


def render(engine: dict, cold: dict, headline: str) -> str:
    verdict = "met" if engine["per_second_median"] >= ENGINE_TARGET else "NOT met"
    return f"""# Performance

Written by `make bench` (`bench/run.py`) on {datetime.now(timezone.utc):%Y-%m-%d}; machine: {machine()}.
The machines are shared and noisy: figures are the best or the median of several runs,
each beside a yardstick measured in the same run, and no test asserts on time.
""" + headline + f"""
## Rule engine throughput over the fixtures alone (one core)

Method: the whole built-in catalog ({engine['controls']} controls) evaluated over
{engine['resources']} resources cycled from the real ARM GET shapes in
`tests/fixtures/resources/` (hardened and weak variants of every covered type),
{engine['evaluations']} control evaluations per round, {engine['rounds']} rounds, in one
process pinned to one core. Related (auditIfNotExists) checks read their data from the
resource's `$related` block, so no I/O is timed.

| figure | value |
|---|---|
| control evaluations per second (median round) | {engine['per_second_median']:,.0f} |
| control evaluations per second (best round) | {engine['per_second_best']:,.0f} |
| yardstick: JSON round-trips per second of the same resources | {engine['yardstick']:,.0f} |
| evaluations per JSON round-trip | {engine['per_second_best'] / engine['yardstick']:.2f} |
| target | {ENGINE_TARGET:,} ({verdict}) |

## Cold start

Method: median of {cold['runs']} fresh interpreters, time to import, the two imports alternating run by run.

| import | seconds |
|---|---|
| `import azure.functions` (the floor) | {cold['bare']:.3f} |
| `import function_app` | {cold['app']:.3f} |
| ratio (target <= 1.1) | {cold['app'] / cold['bare']:.2f} ({_met(cold['app'] / cold['bare'] <= 1.1)}) |
| first use: load the catalog, import the SDKs, build the clients (no network) | {cold['first_use']:.3f} |

`function_app` imports only `azure.functions` and the four blueprints in `handlers/`; the
event parser is imported on the first event, and the Azure SDK clients are imported and
built on the first event that needs them (`shared/bootstrap.py`).
Heaviest top-level imports of `import function_app` (cumulative seconds):

| module | seconds |
|---|---|
""" + "\n".join(f"| `{name}` | {seconds:.3f} |" for name, seconds in cold["heaviest"]) + "\n"
