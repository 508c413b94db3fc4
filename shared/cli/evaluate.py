"""``python -m shared evaluate``: ARM resource JSON files against the controls: a table, JSON, SARIF,
JUnit or CSV, with the exit code a CI step needs (``--fail-on``, ``--fail-on-not-evaluated``,
``--soft-fail``) and filters (``--severity``, ``--framework``, ``--control``, ``--quiet``)."""
from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any, Mapping

from ..catalog import Status, results_as_json
from ..config import Settings
from . import formats
from .inputs import EXIT_FINDINGS, EXIT_OK, InputError, catalog_from_settings, json_documents, resources_in

HELP = "evaluate ARM resource JSON files against the controls"
RANK = {s: i + 1 for i, s in enumerate(formats.SEVERITIES)}  # Low 1 .. Critical 4; other severities count as Medium


def _severity(text: str) -> str:
    match = next((s for s in formats.SEVERITIES if s.lower() == text.strip().lower()), None)
    if match is None:
        raise argparse.ArgumentTypeError(f"{text!r} is not a severity: {', '.join(formats.SEVERITIES)}")
    return match


def _severities(text: str) -> list[str]:
    return [_severity(part) for part in text.split(",") if part.strip()]


def add_output_arguments(parser: argparse.ArgumentParser) -> None:
    """The options every command that judges resources shares: format, file, exit code, filters."""
    parser.add_argument("--format", choices=formats.FORMATS, default="table",
                        help="table (default), json, sarif (SARIF 2.1.0, for code scanning), junit (JUnit XML) or csv")
    parser.add_argument("--output", "-o", metavar="FILE", help="write the output to FILE instead of stdout")
    parser.add_argument("--fail-on", type=_severity, default="Low", metavar="SEVERITY",
                        help="exit 1 only for findings of this severity or higher: Critical, High, Medium, Low "
                             "(default: Low, any finding)")
    parser.add_argument("--fail-on-not-evaluated", action="store_true",
                        help="exit 1 also when a control could not be evaluated (NotEvaluated)")
    parser.add_argument("--soft-fail", action="store_true", help="exit 0 whatever was found (2 still means unusable input)")
    parser.add_argument("--severity", type=_severities, action="extend", metavar="S[,S]",
                        help="only controls of these severities (repeatable)")
    parser.add_argument("--framework", action="append", metavar="NAME",
                        help="only controls that reference this framework: cis, mcsb, ... (repeatable)")
    parser.add_argument("--control", action="append", metavar="ID", help="only this control (repeatable)")
    parser.add_argument("--quiet", "-q", action="store_true", help="only the rows that fail the run")


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("paths", nargs="+", metavar="PATH",
                        help='JSON file: an ARM resource, a list of them, {"value": [...]} or {"data": [...]}; '
                             'or a folder of them')
    add_output_arguments(parser)
    parser.add_argument("--assignments", action="append", metavar="PATH",
                        help="evaluate Azure Policy assignments instead of the controls: `az policy assignment list` "
                             "output, one assignment, ARM template resources of that type, or a folder of them "
                             "(repeatable)")
    parser.add_argument("--definitions", action="append", metavar="DIR",
                        help="policy definitions and policy sets the assignments name: a file or a folder (repeatable)")
    parser.add_argument("--exemptions", action="append", metavar="PATH",
                        help="Azure Policy exemptions: `az policy exemption list` output, one, or a folder (repeatable)")


def run(args: argparse.Namespace, settings: Settings) -> int:
    if args.assignments:
        return _run_assigned(args)
    if args.definitions or args.exemptions:
        raise InputError("--definitions and --exemptions go with --assignments")
    catalog = catalog_from_settings(settings)
    locations: dict = {}
    resources = resources_in(args.paths, locations)
    rows: list[dict] = []
    for resource in resources:
        rows.extend(results_as_json(resource["id"], catalog.evaluate(resource)))
    return output(rows, args, catalog.by_id(), locations, lambda counts, shown: (
        f"{len(resources)} resource(s), {shown} control evaluation(s): {counts['NonCompliant']} non-compliant, "
        f"{counts['NotEvaluated']} not evaluated"))


def _kept(rows: list[dict], args: argparse.Namespace, controls: Mapping[str, Any]) -> list[dict]:
    """The rows the filters keep; a filter that names nothing the catalog has is an error, not an empty pass."""
    if args.control:
        known = {r["controlId"] for r in rows} | set(controls)
        unknown = [c for c in args.control if c not in known]
        if unknown:
            raise InputError(f"--control: no control {', '.join(unknown)} (see `catalog`)")
        rows = [r for r in rows if r["controlId"] in set(args.control)]
    if args.severity:
        rows = [r for r in rows if r.get("severity") in set(args.severity)]
    if args.framework:
        wanted = {f.lower() for f in args.framework}
        known = {k.lower() for c in controls.values() for k in (getattr(c, "frameworks", None) or {})}
        unknown = sorted(wanted - known)
        if unknown:
            raise InputError(f"--framework: no control references {', '.join(unknown)}; the controls name "
                             f"{', '.join(sorted(known)) or 'none'}")
        rows = [r for r in rows if wanted & {k.lower() for k in (r.get("frameworks") or {})}]
    return rows


def _fails(row: Mapping[str, Any], args: argparse.Namespace) -> bool:
    if row["status"] == Status.NONCOMPLIANT.value:
        return RANK.get(row.get("severity"), RANK["Medium"]) >= RANK[args.fail_on]
    return row["status"] == Status.NOT_EVALUATED.value and args.fail_on_not_evaluated


def output(rows: list[dict], args: argparse.Namespace, controls: Mapping[str, Any], locations: Mapping[str, Any],
           summary) -> int:
    """Write ``rows`` as ``args`` asks; the exit code, decided before anything is written (a reader that
    stops early, ``| head``, does not change it). ``summary(counts by status, rows shown)`` is the table's
    last line (on stderr for the other formats, or when the table goes to a file)."""
    from .. import __version__

    rows = _kept(formats.enriched(rows, controls, locations), args, controls)
    failing = [r for r in rows if _fails(r, args)]
    shown = failing if args.quiet else rows
    counts = {s.value: sum(1 for r in rows if r["status"] == s.value) for s in Status}
    args.exit_code = EXIT_FINDINGS if failing and not args.soft_fail else EXIT_OK
    if args.format == "json":
        text = json.dumps(shown, indent=2, default=str) + "\n"
    elif args.format == "sarif":
        base = Path(args.output).resolve().parent if args.output else Path.cwd()
        text = json.dumps(formats.sarif(shown, controls, __version__, base=base), indent=2, default=str) + "\n"
    elif args.format == "junit":
        text = formats.junit(shown)
    elif args.format == "csv":
        text = formats.csv_text(shown)
    else:
        text = formats.table(shown)
    line = summary(counts, len(rows)) + (f"; {len(failing)} fail the run" if failing else "") + \
        (" (--soft-fail: exit 0)" if failing and args.soft_fail else "")
    if args.output:
        try:
            Path(args.output).parent.mkdir(parents=True, exist_ok=True)
            Path(args.output).write_text(text, encoding="utf-8")
        except OSError as exc:
            raise InputError(f"{args.output}: cannot write: {exc.strerror or exc}") from None
        print(f"wrote {args.output} ({args.format}): {line}", file=sys.stderr)
    elif args.format == "table":
        sys.stdout.write(text)
        print(f"\n{line}")
    else:
        sys.stdout.write(text)
        print(line, file=sys.stderr)
    return args.exit_code


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
    resources = resources_in(args.paths, getattr(args, "locations", None))
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
    args.locations = {}
    rows, resources, assignments, assigned = assigned_rows(args)
    return output(rows, args, assigned.catalog.by_id(), args.locations, lambda counts, shown: (
        f"{len(resources)} resource(s), {len(assignments)} assignment(s), {len(assigned.controls)} "
        f"(assignment, definition) pair(s), {shown} result(s): {counts['NonCompliant']} non-compliant, "
        f"{counts['Exempt']} exempt, {counts['NotEvaluated']} not evaluated; {len(assigned.problems)} "
        f"definition(s) not found or not convertible, {len(assigned.disabled)} disabled"))
