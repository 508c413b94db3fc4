"""Policy import benchmark (part of ``make bench``): what Azure Policy compatibility costs.

* ``import function_app`` alone, and followed by importing the policy importer (the
  importer is never on the function's import path: the difference is what a user pays
  only when converting definitions);
* loading the built-in catalog in a fresh process, the alias snapshot included
  (its first look-up decompresses and indexes the file);
* converting every built-in definition below ``../shared/data/azure-policy-builtins``
  (when present), and evaluating the imported controls over the test fixtures;
* building the controls of about 1,000 assigned member definitions (``bench/assigned_bench.py``).

Each figure is the best of several fresh processes (machines here are shared and noisy);
ratios are taken within this one run. ``--write FILE`` replaces the section between the
``<!-- policy-bench -->`` markers of FILE.
"""
from __future__ import annotations

import argparse
import json
import subprocess
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
BUILTINS = REPO.parent / "shared" / "data" / "azure-policy-builtins"
START, END = "<!-- policy-bench -->", "<!-- /policy-bench -->"


def fresh(code: str, runs: int) -> float:
    """Best wall time of ``code`` in a fresh interpreter, as it measures itself (seconds)."""
    best = float("inf")
    wrapped = f"import time; t = time.perf_counter()\n{code}\nprint(time.perf_counter() - t)"
    for _ in range(runs):
        out = subprocess.run([sys.executable, "-c", wrapped], cwd=REPO, capture_output=True, text=True, check=True)
        best = min(best, float(out.stdout.strip().splitlines()[-1]))
    return best


def fresh_alternating(codes: dict[str, str], runs: int) -> dict[str, float]:
    """:func:`fresh` of each piece of code, the pieces alternating run by run so that the file cache and
    the machine's noise of the moment reach them alike (their ratios are what is compared)."""
    best = {name: float("inf") for name in codes}
    for _ in range(runs):
        for name, code in codes.items():
            best[name] = min(best[name], fresh(code, 1))
    return best


def measure(runs: int) -> dict:
    result = {
        **fresh_alternating({"bare_functions": "import azure.functions", "function_app": "import function_app",
                             "function_app_then_importer": "import function_app\nimport shared.policy.importing"},
                            runs),
        "catalog_load": fresh("from shared.catalog import load_catalog\nload_catalog()", runs),
        "snapshot_first_lookup": fresh("from shared.policy.aliases import AliasSnapshot\n"
                                       "AliasSnapshot().get('Microsoft.Web/sites/httpsOnly')", runs),
    }
    if BUILTINS.is_dir():
        sys.path.insert(0, str(REPO))
        from shared.catalog import Catalog, alias_resolver, control_from_document
        from shared.policy.importing import REFUSED, import_documents

        docs = [(str(p), json.loads(p.read_text(encoding="utf-8"))) for p in sorted(BUILTINS.glob("*/*.json"))]
        resolver = alias_resolver()
        started = time.perf_counter()
        outcomes, _ = import_documents(docs, resolver=resolver, enable_disabled=True)
        result["convert_seconds"] = time.perf_counter() - started
        result["definitions"] = len(outcomes)
        controls = [control_from_document(o.control, o.origin, resolver, overrides=o.samples or None)
                    for o in outcomes if o.status != REFUSED]
        catalog = Catalog(controls)
        fixtures = [json.loads(p.read_text(encoding="utf-8"))
                    for p in sorted((REPO / "tests" / "fixtures" / "resources").glob("*.json"))]
        from bench.engine_bench import timed_rounds

        evaluations, timings = timed_rounds(catalog, fixtures, runs)
        best = min(timings)
        result.update(imported_controls=len(controls), evaluations=evaluations, evaluate_seconds=best)
        best_assigned = None
        for _ in range(max(1, runs // 2)):  # what is assigned, in a fresh process each time (memory included)
            out = subprocess.run([sys.executable, str(REPO / "bench" / "assigned_bench.py")], cwd=REPO,
                                 capture_output=True, text=True, check=True)
            got = json.loads(out.stdout)
            if "seconds" in got and (best_assigned is None or got["seconds"] < best_assigned["seconds"]):
                best_assigned = got
        if best_assigned is not None:
            result["assigned"] = best_assigned
    return result


def render(r: dict) -> str:
    ratio = r["function_app"] / r["bare_functions"] if r["bare_functions"] else 0.0
    lines = [START, "", "Measured by `make bench` (`bench/policy_bench.py`), best of several fresh processes:", "",
             "| what | seconds | ratio |", "|---|---:|---:|",
             f"| `import azure.functions` (the floor) | {r['bare_functions']:.3f} | 1.00 |",
             f"| `import function_app` | {r['function_app']:.3f} | {ratio:.2f} |",
             f"| `import function_app`, then the policy importer (only `import-policy` pays this) | "
             f"{r['function_app_then_importer']:.3f} | {r['function_app_then_importer'] / r['bare_functions']:.2f} |",
             f"| load the built-in catalog in a fresh process, alias snapshot included | {r['catalog_load']:.3f} | |",
             f"| first look-up in the alias snapshot (open the zip, read and index one namespace) | "
             f"{r['snapshot_first_lookup']:.3f} | |"]
    if "definitions" in r:
        lines += [f"| convert {r['definitions']} built-in definitions (import-policy, offline) | "
                  f"{r['convert_seconds']:.3f} | {1000 * r['convert_seconds'] / r['definitions']:.2f} ms each |",
                  f"| evaluate the {r['imported_controls']} imported controls over the 42 test fixtures "
                  f"({r['evaluations']} verdicts) | {r['evaluate_seconds']:.3f} | "
                  f"{r['evaluations'] / r['evaluate_seconds']:,.0f} verdicts/s |"]
    if "assigned" in r:
        a = r["assigned"]
        per_pair = 1000 * a["seconds"] / a["pairs"]
        per_definition = 1000 * r["convert_seconds"] / r["definitions"]
        lines.append(f"| build the controls of {a['assignments']} assignments of Microsoft's initiatives: {a['pairs']} "
                     f"assigned member definitions ({a['controls']} evaluated, {a['disabled']} disabled; "
                     f"{a['compiled']} distinct compiled, the rest shared), resident memory +{a['resident_growth_mib']} MiB | "
                     f"{a['seconds']:.3f} | {per_pair:.2f} ms each ({per_pair / per_definition:.2f}x a built-in's "
                     f"conversion above) |")
    lines += ["", END]
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--write", metavar="FILE", help="replace the policy-bench section of FILE")
    args = parser.parse_args(argv)
    text = render(measure(args.runs))
    print(text)
    if args.write:
        path = Path(args.write)
        doc = path.read_text(encoding="utf-8")
        if START not in doc or END not in doc:
            print(f"{path} has no {START} ... {END} section", file=sys.stderr)
            return 2
        head, rest = doc.split(START, 1)
        path.write_text(head + text + rest.split(END, 1)[1], encoding="utf-8")
    return 0


if __name__ == "__main__":
    sys.exit(main())
