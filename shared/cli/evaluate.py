"""``python -m shared evaluate``: ARM resource JSON files against the controls, as a table or JSON."""
from __future__ import annotations

import argparse
import json
import sys
from typing import Any, Mapping, TextIO

from ..catalog import Status, results_as_json
from ..config import Settings
from .inputs import (EXIT_FINDINGS, EXIT_OK, InputError, catalog_from_settings, json_documents, read_json,
                     resources_from_document)

HELP = "evaluate ARM resource JSON files against the controls"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("paths", nargs="+", metavar="PATH",
                        help='JSON file: an ARM resource, a list of them, {"value": [...]} or {"data": [...]}')
    parser.add_argument("--format", choices=("table", "json"), default="table")
    parser.add_argument("--assignments", action="append", metavar="PATH",
                        help="evaluate Azure Policy assignments instead of the controls: `az policy assignment list` "
                             "output, one assignment, ARM template resources of that type, or a folder of them "
                             "(repeatable)")
    parser.add_argument("--definitions", action="append", metavar="DIR",
                        help="policy definitions and policy sets the assignments name: a file or a folder (repeatable)")
    parser.add_argument("--exemptions", action="append", metavar="PATH",
                        help="Azure Policy exemptions: `az policy exemption list` output, one, or a folder (repeatable)")


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
    if args.assignments:
        return _run_assigned(args)
    if args.definitions or args.exemptions:
        raise InputError("--definitions and --exemptions go with --assignments")
    catalog = catalog_from_settings(settings)
    resources: list[Mapping[str, Any]] = []
    for path in args.paths:
        resources.extend(resources_from_document(read_json(path), path))
    rows: list[dict] = []
    for resource in resources:
        rows.extend(results_as_json(resource["id"], catalog.evaluate(resource)))
    return _output(rows, args.format, lambda counts: (
        f"{len(resources)} resource(s), {len(rows)} control evaluation(s): {counts['NonCompliant']} non-compliant, "
        f"{counts['NotEvaluated']} not evaluated"))


def _output(rows: list[dict], form: str, summary) -> int:
    """Rows as JSON or as a table with a summary line (``summary(counts by status)``); the exit code."""
    counts = {s.value: sum(1 for r in rows if r["status"] == s.value) for s in Status}
    if form == "json":
        json.dump(rows, sys.stdout, indent=2, default=str)
        print()
    else:
        _table(rows, sys.stdout)
        print(f"\n{summary(counts)}", file=sys.stdout)
    return EXIT_FINDINGS if counts[Status.NONCOMPLIANT.value] else EXIT_OK


def assigned_rows(args: argparse.Namespace):
    """Every resource of ``args.paths`` against every assignment that reaches it: (rows, resources,
    assignments, assigned catalog), with the notes and problems said on stderr."""
    from datetime import datetime, timezone

    from ..catalog import alias_resolver
    from ..domain.assignments import MANAGEMENT_GROUP_PREFIX, AssignmentError, assignments_in, exemptions_in
    from ..policy.importing import PolicyLibrary, assigned_catalog, evaluate_assigned

    assignments, exemptions = [], []
    try:
        docs, unusable = json_documents(args.assignments)
        for origin, doc in docs:
            assignments.extend(assignments_in(doc, origin))
        exemption_docs, bad_exemptions = json_documents(args.exemptions or [])
        for origin, doc in exemption_docs:
            exemptions.extend(exemptions_in(doc, origin))
    except AssignmentError as exc:
        raise InputError(str(exc)) from None
    library = PolicyLibrary()
    definition_docs, bad_definitions = json_documents(args.definitions or [])
    unusable += bad_exemptions + bad_definitions + library.add_documents(definition_docs)
    if unusable:
        raise InputError("; ".join(unusable))
    resources: list[Mapping[str, Any]] = []
    for path in args.paths:
        resources.extend(resources_from_document(read_json(path), path))
    assigned = assigned_catalog(assignments, library, resolver=alias_resolver())
    for a in assignments:
        if a.scope is None:
            print(f"note: assignment {a.name} has no scope ({a.origin}): it is taken to reach every resource given",
                  file=sys.stderr)
        elif a.scope.lower().startswith(MANAGEMENT_GROUP_PREFIX):
            print(f"note: assignment {a.name} is at management group scope; offline the hierarchy is not known, "
                  f"so every resource given is taken to be below it", file=sys.stderr)
    for line in assigned.problems:
        print(f"not evaluated: {line}", file=sys.stderr)
    for line in assigned.disabled:
        print(f"disabled: {line}", file=sys.stderr)
    for line in assigned.notes:
        print(f"note: {line}", file=sys.stderr)
    now = datetime.now(timezone.utc)
    rows = [row for resource in resources for row in evaluate_assigned(assigned, resource, now=now,
                                                                        exemptions=exemptions)]
    return rows, resources, assignments, assigned


def _run_assigned(args: argparse.Namespace) -> int:
    rows, resources, assignments, assigned = assigned_rows(args)
    return _output(rows, args.format, lambda counts: (
        f"{len(resources)} resource(s), {len(assignments)} assignment(s), {len(assigned.controls)} "
        f"(assignment, definition) pair(s), {len(rows)} result(s): {counts['NonCompliant']} non-compliant, "
        f"{counts['Exempt']} exempt, {counts['NotEvaluated']} not evaluated; {len(assigned.problems)} "
        f"definition(s) not found or not convertible, {len(assigned.disabled)} disabled"))
