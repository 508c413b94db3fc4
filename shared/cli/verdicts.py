"""What the commands that judge resources share: the output and CI options (format, file, exit code,
filters), writing the rows, and reading the assignments, exemptions and definitions given."""
from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any, Mapping

from ..catalog import Status
from . import formats
from .inputs import EXIT_FINDINGS, EXIT_OK, InputError, json_documents

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


def assigned_inputs(args: argparse.Namespace):
    """The assignments, exemptions and definitions given, as an assigned catalog: (assigned catalog,
    exemptions, assignments), with the notes and problems said on stderr."""
    from ..catalog import alias_resolver
    from ..domain.assignments import MANAGEMENT_GROUP_PREFIX, AssignmentError, assignments_in, exemptions_in
    from ..policy.importing import PolicyLibrary, assigned_catalog

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
    return assigned, exemptions, assignments
