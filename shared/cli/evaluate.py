"""``python -m shared evaluate``: ARM resource JSON files against the controls, as a table or JSON."""
from __future__ import annotations

import argparse
import json
import sys
from typing import Any, Mapping, TextIO

from ..catalog import Status, results_as_json
from ..config import Settings
from .inputs import EXIT_FINDINGS, EXIT_OK, catalog_from_settings, read_json, resources_from_document

HELP = "evaluate ARM resource JSON files against the controls"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("paths", nargs="+", metavar="PATH",
                        help='JSON file: an ARM resource, a list of them, {"value": [...]} or {"data": [...]}')
    parser.add_argument("--format", choices=("table", "json"), default="table")


def _table(rows: list[dict], out: TextIO) -> None:
    headers = ("RESOURCE", "CONTROL", "SEVERITY", "STATUS", "REASON")  # REASON: why a control is NotEvaluated
    data = [(r["resourceId"].rsplit("/", 1)[-1], r["controlId"], r["severity"], r["status"],
             " ".join(str(r.get("reason") or "").split())) for r in rows]
    widths = [max([len(h)] + [len(d[i]) for d in data]) for i, h in enumerate(headers)]
    line = lambda cells: "  ".join(c.ljust(w) for c, w in zip(cells, widths)).rstrip()  # noqa: E731
    print(line(headers), file=out)
    for d in data:
        print(line(d), file=out)


def run(args: argparse.Namespace, settings: Settings) -> int:
    catalog = catalog_from_settings(settings)
    resources: list[Mapping[str, Any]] = []
    for path in args.paths:
        resources.extend(resources_from_document(read_json(path), path))
    rows: list[dict] = []
    for resource in resources:
        rows.extend(results_as_json(resource["id"], catalog.evaluate(resource)))
    noncompliant = sum(1 for r in rows if r["status"] == Status.NONCOMPLIANT.value)
    if args.format == "json":
        json.dump(rows, sys.stdout, indent=2, default=str)
        print()
    else:
        _table(rows, sys.stdout)
        not_evaluated = sum(1 for r in rows if r["status"] == Status.NOT_EVALUATED.value)
        print(f"\n{len(resources)} resource(s), {len(rows)} control evaluation(s): {noncompliant} non-compliant, "
              f"{not_evaluated} not evaluated", file=sys.stdout)
    return EXIT_FINDINGS if noncompliant else EXIT_OK
