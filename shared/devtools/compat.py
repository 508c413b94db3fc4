"""Azure Policy compatibility, measured: ``make compat`` (``python -m shared.devtools.compat``).

Imports every built-in definition below a folder (default ``../shared/data/azure-policy-builtins``,
one sub-folder per category) offline, as a user's ``import-policy`` run would, then:

* a template counts as imported only if it loads with values from a parameters file
  (the one ``--parameters-template`` writes: a value of each parameter's type);
* every imported control is evaluated against the test fixtures and a bare resource of
  each of its types; an exception other than a verdict (``NotEvaluated`` included) is a crash,
  and the rule's fast path must give the verdict its evidence path gives.

Prints per category: compiled, template-only (and whether it loaded with values),
delegated (data-plane definitions whose verdict is Azure Policy's own, read from its compliance
states; evaluated here against states given with the resource), refused with the reasons; then totals. ``--write FILE`` puts the same table in FILE's
``<!-- compat -->`` section (docs/POLICY-COMPATIBILITY.md).
"""
from __future__ import annotations

import argparse
import json
import re
import sys
import time
from collections import Counter, defaultdict
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[2]
DEFAULT_BUILTINS = REPO.parent / "shared" / "data" / "azure-policy-builtins"
DEFAULT_INITIATIVES = REPO.parent / "shared" / "data" / "azure-policy-initiatives"
FIXTURES = REPO / "tests" / "fixtures" / "resources"


def reason_class(reason: str) -> str:
    """A short family name for a refusal, for the per-category table."""
    for words, label in (("unknown field or alias", "alias unknown offline"),
                         ("is Disabled", "effect Disabled"),
                         ("denyAction", "effect denyAction"), ("auditAction", "effect auditAction"),
                         ("mutate", "effect mutate"), ("manual", "effect manual"),
                         ("unsupported template function", "template function"),
                         ("not available", "member not available")):
        if words in reason:
            if label == "template function":
                m = re.search(r"function '([^']+)'", reason)
                return f"template function {m.group(1)}()" if m else label
            return label
    return "other: " + reason[:60]


def _resources(types: list[str]) -> list[dict[str, Any]]:
    bare = [{"id": f"/subscriptions/00000000-0000-0000-0000-000000000000/resourceGroups/rg/providers/{t}/x",
             "name": "x", "type": t, "location": "westeurope", "tags": {}, "properties": {}} for t in types if t != "*"]
    return bare


def measure(root: Path, enable_disabled: bool = True, local_aliases: bool = True) -> dict[str, Any]:
    from shared.catalog import Catalog, ControlLoadError, alias_resolver, control_from_document
    from shared.policy import EvaluationError
    from shared.policy.importing import DELEGATED, REFUSED, TEMPLATE, import_documents
    from shared.domain.policy_states import POLICY_STATES_TYPE

    fixtures = [json.loads(p.read_text(encoding="utf-8")) for p in sorted(FIXTURES.glob("*.json"))] \
        if FIXTURES.is_dir() else []
    resolver = alias_resolver(None if local_aliases else {}, alias_snapshot=True)
    per: dict[str, Counter] = defaultdict(Counter)
    reasons: dict[str, Counter] = defaultdict(Counter)
    crashes: list[str] = []
    disagreements: list[str] = []
    evaluations = 0
    started = time.perf_counter()
    categories = sorted(p for p in root.iterdir() if p.is_dir())
    for category in categories:
        docs = [(str(p), json.loads(p.read_text(encoding="utf-8"))) for p in sorted(category.glob("*.json"))]
        outcomes, unusable = import_documents(docs, resolver=resolver, enable_disabled=enable_disabled)
        name = category.name
        per[name]["definitions"] = len(outcomes)
        per[name]["unusable"] += len(unusable)
        for o in outcomes:
            if o.status == REFUSED:
                per[name]["refused"] += 1
                reasons[name][reason_class(o.reason)] += 1
                continue
            values = o.samples if o.status == TEMPLATE else None
            try:
                control = control_from_document(o.control, o.origin, resolver, overrides=values)
            except ControlLoadError as exc:  # a template that does not load with values is not imported
                per[name]["refused"] += 1
                reasons[name]["template fails with values: " + str(exc)[-60:]] += 1
                continue
            per[name][{TEMPLATE: "template", DELEGATED: "delegated"}.get(o.status, "compiled")] += 1
            catalog = Catalog([control])
            extra = []
            if o.status == DELEGATED:  # Azure Policy's states given with the resource, as offline evaluate takes them
                extra = [{**r, "$related": {POLICY_STATES_TYPE: [
                    {"policyDefinitionId": control.policy_definition_id, "complianceState": state,
                     "policyAssignmentId": "/subscriptions/00000000-0000-0000-0000-000000000000/providers/"
                                           "Microsoft.Authorization/policyAssignments/a",
                     "timestamp": "2026-01-01T00:00:00Z"}]}}
                    for r in _resources(sorted(control.resource_types)) for state in ("Compliant", "NonCompliant")]
            for resource in fixtures + _resources(sorted(control.resource_types)) + extra:
                try:
                    catalog.evaluate(resource)
                    evaluations += 1
                    try:  # every rule, even off its type: the evidence path and the fast path must agree
                        slow = control.rule.evaluate(resource, evidence=True)[0]
                    except EvaluationError:
                        slow = "error"  # a verdict: the catalog reports it as NotEvaluated with the reason
                    try:
                        quick = control.rule.matches(resource)
                    except EvaluationError:
                        quick = "error"
                    if slow != quick:
                        disagreements.append(f"{o.origin} on {resource.get('id')}: evidence path {slow}, "
                                             f"fast path {quick}")
                    evaluations += 1
                except Exception as exc:  # noqa: BLE001 - a crash is what this counts
                    crashes.append(f"{o.origin}: {type(exc).__name__}: {exc}")
    return {"per": per, "reasons": reasons, "crashes": crashes, "disagreements": disagreements,
            "evaluations": evaluations,
            "seconds": time.perf_counter() - started}


def render(result: dict[str, Any], markdown: bool) -> str:
    per, reasons = result["per"], result["reasons"]
    rows = []
    totals: Counter = Counter()
    for name in sorted(per):
        c = per[name]
        totals.update(c)
        why = ", ".join(f"{k} {v}" for k, v in reasons[name].most_common()) or "-"
        rows.append((name, c["definitions"], c["compiled"], c["template"], c["delegated"], c["refused"], why))
    computed = totals["compiled"] + totals["template"]
    imported = computed + totals["delegated"]
    pct = lambda n: 100.0 * n / totals["definitions"] if totals["definitions"] else 0.0  # noqa: E731
    lines = []
    if markdown:
        lines += ["| category | definitions | judged offline out of the box | judged once parameters are given "
                  "(templates) | delegated (Azure Policy's verdict) | refused | why refused |",
                  "|---|---:|---:|---:|---:|---:|---|"]
        lines += [f"| {r[0]} | {r[1]} | {r[2]} | {r[3]} | {r[4]} | {r[5]} | {r[6]} |" for r in rows]
        lines.append(f"| **all** | **{totals['definitions']}** | **{totals['compiled']}** | **{totals['template']}** "
                     f"| **{totals['delegated']}** | **{totals['refused']}** | |")
    else:
        lines.append(f"{'category':20} {'defs':>5} {'as is':>8} {'template':>8} {'delegated':>9} {'refused':>7}"
                     f"  why refused")
        lines += [f"{r[0]:20} {r[1]:5} {r[2]:8} {r[3]:8} {r[4]:9} {r[5]:7}  {r[6]}" for r in rows]
    all_reasons: Counter = Counter()
    for c in reasons.values():
        all_reasons.update(c)
    lines.append("")
    lines.append(f"imported {imported} of {totals['definitions']} definitions ({pct(imported):.1f}%): "
                 f"{totals['compiled']} judged offline out of the box ({pct(totals['compiled']):.1f}%), "
                 f"{totals['template']} judged once parameters are given (templates: no verdict until then), "
                 f"{totals['delegated']} delegated to Azure Policy's verdict; {totals['refused']} refused")
    lines.append(f"judged by the monitor itself once parameters are given (out of the box + templates): {computed} of "
                 f"{totals['definitions']} ({pct(computed):.1f}%)")
    lines.append("refused: " + ", ".join(f"{k} {v}" for k, v in all_reasons.most_common()))
    lines.append(f"evaluated {result['evaluations']} times against the fixtures: {len(result['crashes'])} crashes, "
                 f"{len(result['disagreements'])} fast/evidence path disagreements ({result['seconds']:.1f} s)")
    return "\n".join(lines)


def measure_initiatives(builtins: Path, initiatives: Path) -> list[dict[str, Any]]:
    """Each initiative as an assignment with the set's own defaults would have it, members looked up
    among the built-ins: judged out of the box, judged once parameters are given, delegated,
    Disabled by the set's defaults (Azure evaluates nothing), refused, not available offline."""
    from shared.catalog import alias_resolver
    from shared.policy.importing import (DELEGATED, DISABLED_REASON, IMPORTED, REFUSED, TEMPLATE, PolicyLibrary,
                                         convert_set)

    library = PolicyLibrary()
    library.add_documents([(str(p), json.loads(p.read_text(encoding="utf-8")))
                           for p in sorted(builtins.rglob("*.json"))])
    resolver = alias_resolver()
    rows = []
    for path in sorted(initiatives.glob("*.json")):
        doc = json.loads(path.read_text(encoding="utf-8"))
        outcomes = convert_set(doc, resolver=resolver, library=library.definitions, origin=path.name)
        count = Counter()
        for o in outcomes:
            if o.status == REFUSED:
                kind = ("not_available" if "is not available" in o.reason else
                        "disabled" if o.reason.startswith(DISABLED_REASON) else "refused")
            else:
                kind = {IMPORTED: "as_is", TEMPLATE: "template", DELEGATED: "delegated"}[o.status]
            count[kind] += 1
        rows.append({"initiative": (doc.get("properties") or {}).get("displayName") or path.stem, "file": path.name,
                     "members": len(outcomes), **{k: count[k] for k in
                                                  ("as_is", "template", "delegated", "disabled", "refused",
                                                   "not_available")}})
    return rows


def render_initiatives(rows: list[dict[str, Any]]) -> str:
    lines = ["| initiative | members | judged offline out of the box | judged once parameters are given | delegated "
             "(Azure Policy's verdict) | Disabled by the set's defaults | refused | not available offline |",
             "|---|---:|---:|---:|---:|---:|---:|---:|"]
    lines += [f"| {r['initiative']} (`{r['file']}`) | {r['members']} | {r['as_is']} | {r['template']} | "
              f"{r['delegated']} | {r['disabled']} | {r['refused']} | {r['not_available']} |" for r in rows]
    return "\n".join(lines)


def _replace(doc: str, start: str, end: str, body: str) -> str | None:
    if start not in doc or end not in doc:
        return None
    head, rest = doc.split(start, 1)
    return f"{head}{start}\n\n{body}\n\n{end}{rest.split(end, 1)[1]}"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="make compat", description=__doc__.splitlines()[0])
    parser.add_argument("root", nargs="?", default=str(DEFAULT_BUILTINS),
                        help="folder of built-in definitions, one sub-folder per category")
    parser.add_argument("--keep-disabled", action="store_true",
                        help="count Disabled-by-default definitions as refused (default: import them as asked)")
    parser.add_argument("--snapshot-only", action="store_true",
                        help="resolve aliases from the snapshot alone, without shared/controls/aliases (what the "
                             "code reaches untuned)")
    parser.add_argument("--write", metavar="FILE",
                        help="replace the <!-- compat --> section of FILE with the Markdown table")
    args = parser.parse_args(argv)
    root = Path(args.root)
    if not root.is_dir():
        print(f"compat: {root} does not exist; nothing to measure", file=sys.stderr)
        return 0
    result = measure(root, enable_disabled=not args.keep_disabled, local_aliases=not args.snapshot_only)
    print(render(result, markdown=False))
    for crash in result["crashes"][:20]:
        print("crash:", crash, file=sys.stderr)
    for line in result["disagreements"][:20]:
        print("disagreement:", line, file=sys.stderr)
    initiatives = measure_initiatives(root, DEFAULT_INITIATIVES) if DEFAULT_INITIATIVES.is_dir() else []
    if initiatives:
        print("\ninitiatives, as assigned with the set's defaults (members looked up among the built-ins):")
        for r in initiatives:
            print(f"  {r['file']}: {r['members']} members: {r['as_is']} judged out of the box, {r['template']} once "
                  f"parameters are given, {r['delegated']} delegated, {r['disabled']} Disabled by default, "
                  f"{r['refused']} refused, {r['not_available']} not available offline")
    if args.write:
        path = Path(args.write)
        doc = _replace(path.read_text(encoding="utf-8"), "<!-- compat -->", "<!-- /compat -->",
                       render(result, markdown=True))
        if doc is not None and initiatives:
            doc = _replace(doc, "<!-- compat-initiatives -->", "<!-- /compat-initiatives -->",
                           render_initiatives(initiatives))
        if doc is None:
            print(f"{path} lacks a <!-- compat --> or <!-- compat-initiatives --> section", file=sys.stderr)
            return 2
        path.write_text(doc, encoding="utf-8")
    return 1 if result["crashes"] or result["disagreements"] else 0


if __name__ == "__main__":
    sys.exit(main())
