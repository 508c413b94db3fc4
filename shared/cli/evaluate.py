"""``python -m shared evaluate``: ARM resource JSON files against the controls: a table, JSON, SARIF,
JUnit or CSV, with the exit code a CI step needs (``--fail-on``, ``--fail-on-not-evaluated``,
``--soft-fail``) and filters (``--severity``, ``--framework``, ``--control``, ``--quiet``)."""
from __future__ import annotations

import argparse

from ..catalog import results_as_json
from ..config import Settings
from .inputs import InputError, catalog_from_settings, json_documents, resources_in
from .verdicts import add_output_arguments, assigned_inputs, output

HELP = "evaluate ARM resource JSON files against the controls"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("paths", nargs="+", metavar="PATH",
                        help='JSON file: an ARM resource, a list of them, {"value": [...]} or {"data": [...]}, or '
                             'a deployment template (judged as scan-template does, without parameters); or a folder')
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
    from ..templates import is_template
    from .inputs import read_text

    docs, unusable = json_documents(args.paths)
    if unusable:
        raise InputError("; ".join(unusable))
    # a deployment template is judged as scan-template judges it (no parameters); the rest are resources
    templates = [(origin, read_text(origin)) for origin, doc in docs if is_template(doc)]
    others = [(origin, doc) for origin, doc in docs if not is_template(doc)]
    locations: dict = {}
    resources = resources_in(args.paths, locations, others) if others or not templates else []
    rows: list[dict] = []
    for resource in resources:
        rows.extend(results_as_json(resource["id"], catalog.evaluate(resource)))
    declared: dict = {}
    if templates:
        from ..templates import judge
        from .scan_template import template_rows

        more, declared = template_rows(templates, args, lambda d, siblings: results_as_json(
            d.resource["id"], judge(catalog, d, siblings=siblings)))
        rows += more
        for key, where in declared.items():
            locations.setdefault(key, where)
    total = len(resources) + len(declared)
    return output(rows, args, catalog.by_id(), locations, lambda counts, shown: (
        f"{total} resource(s), {shown} control evaluation(s): {counts['NonCompliant']} non-compliant, "
        f"{counts['NotEvaluated']} not evaluated"))


def assigned_rows(args: argparse.Namespace):
    """Every resource of ``args.paths`` against every assignment that reaches it: (rows, resources,
    assignments, assigned catalog)."""
    from datetime import datetime, timezone

    from ..policy.importing import evaluate_assigned

    assigned, exemptions, assignments = assigned_inputs(args)
    resources = resources_in(args.paths, getattr(args, "locations", None))
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
