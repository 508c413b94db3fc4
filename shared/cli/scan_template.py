"""``python -m shared scan-template``: ARM deployment templates checked before they are deployed, with the
same controls as deployed resources (built-in, CONTROLS_PATH, imported Azure Policy; assignments when
given), in the outputs CI reads. Bicep: run ``az bicep build`` first and scan the JSON it writes."""
from __future__ import annotations

import argparse
import sys
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from ..catalog import results_as_json
from ..config import Settings
from .verdicts import add_output_arguments, output
from .inputs import InputError, catalog_from_settings, read_json, read_text

HELP = "check ARM deployment templates (for Bicep: az bicep build output) against the controls before deployment"
LINKED_CONTROL = "template-linked-deployment"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("paths", nargs="+", metavar="TEMPLATE", help="ARM template JSON files, or folders of them")
    parser.add_argument("--parameters", metavar="FILE", help="a parameters file (deploymentParameters JSON)")
    parser.add_argument("-p", "--parameter", action="append", default=[], metavar="NAME=VALUE",
                        help="a parameter value (repeatable; wins over --parameters)")
    parser.add_argument("--subscription", default=None, metavar="ID", help="the subscription it deploys to")
    parser.add_argument("--resource-group", default=None, metavar="NAME", help="the resource group it deploys to")
    parser.add_argument("--location", default=None, metavar="REGION",
                        help="the resource group's location (resourceGroup().location); without it, a location "
                             "taken from it is not known")
    add_output_arguments(parser)
    parser.add_argument("--assignments", action="append", metavar="PATH",
                        help="judge with Azure Policy assignments instead of the controls (as for evaluate)")
    parser.add_argument("--definitions", action="append", metavar="DIR", help="as for evaluate")
    parser.add_argument("--exemptions", action="append", metavar="PATH", help="as for evaluate")


def template_files(paths: list[str]) -> list[tuple[str, str]]:
    """(path, text) of every file given and every *.json below a folder given."""
    files: list[tuple[str, str]] = []
    for given in paths:
        root = Path(given)
        if root.is_dir():
            found = sorted(p for p in root.rglob("*.json") if not p.name.endswith(".parameters.json"))
            if not found:
                raise InputError(f"{given}: the folder holds no .json template")
            files += [(str(p), read_text(str(p))) for p in found]
        else:
            files.append((given, read_text(given)))
    return files


def given_parameters(args: argparse.Namespace) -> dict[str, Any]:
    from ..templates import TemplateError, parameter_values

    values: dict[str, Any] = {}
    if getattr(args, "parameters", None):
        try:
            values.update(parameter_values(read_json(args.parameters), args.parameters))
        except TemplateError as exc:
            raise InputError(str(exc)) from None
    for item in getattr(args, "parameter", None) or []:
        name, sep, value = item.partition("=")
        if not sep or not name.strip():
            raise InputError(f"-p {item}: give NAME=VALUE")
        values[name.strip()] = value
    return values


def template_rows(files: list[tuple[str, str]], args: argparse.Namespace, judge_rows) -> tuple[list[dict], dict]:
    """The rows of every resource the templates declare, and where each is declared."""
    from ..templates import (PLACEHOLDER_GROUP, PLACEHOLDER_SUBSCRIPTION, TemplateError, expand_template, is_template,
                             read_json_with_lines)
    from .formats import Location

    parameters = given_parameters(args)
    rows: list[dict] = []
    locations: dict = {}
    for path, text in files:
        try:
            doc, lines, _keep = read_json_with_lines(text, path)
            if not is_template(doc):
                raise InputError(f"{path}: not an ARM deployment template (no deploymentTemplate.json $schema); "
                                 f"for resource JSON, use evaluate")
            expansion = expand_template(doc, parameters=parameters, lines=lines,
                                        subscription_id=getattr(args, "subscription", None) or PLACEHOLDER_SUBSCRIPTION,
                                        resource_group=getattr(args, "resource_group", None) or PLACEHOLDER_GROUP,
                                        location=getattr(args, "location", None))
        except TemplateError as exc:
            raise InputError(f"{path}: {exc}" if not str(exc).startswith(path) else str(exc)) from None
        for note in expansion.notes:
            print(f"note: {path}: {note}", file=sys.stderr)
        for declared in expansion.resources:
            rid = declared.resource["id"]
            locations.setdefault(rid.lower(), Location(path, declared.line))
            if declared.note:
                print(f"note: {path}: {declared.label} (line {declared.line}): {declared.note}", file=sys.stderr)
            if declared.not_evaluated:
                rows.append({"resourceId": rid, "controlId": LINKED_CONTROL, "title": "Linked template",
                             "severity": "Medium", "status": "NotEvaluated", "evidence": [],
                             "reason": declared.not_evaluated})
                continue
            rows.extend(judge_rows(declared, expansion.resources))
    if not rows and not locations:
        raise InputError(f"{', '.join(p for p, _ in files)}: the templates deploy no resource to judge")
    return rows, locations


def run(args: argparse.Namespace, settings: Settings) -> int:
    from ..templates import judge

    files = template_files(args.paths)
    if args.assignments:
        return _run_assigned(args, files)
    if args.definitions or args.exemptions:
        raise InputError("--definitions and --exemptions go with --assignments")
    catalog = catalog_from_settings(settings)
    rows, locations = template_rows(files, args, lambda d, others: results_as_json(
        d.resource["id"], judge(catalog, d, siblings=others)))
    resources = len(locations)
    return output(rows, args, catalog.by_id(), locations, lambda counts, shown: (
        f"{len(files)} template(s), {resources} resource(s), {shown} control evaluation(s): {counts['NonCompliant']} "
        f"non-compliant, {counts['NotEvaluated']} not evaluated"))


def _run_assigned(args: argparse.Namespace, files: list[tuple[str, str]]) -> int:
    from ..policy.importing import evaluate_assigned
    from ..templates import judge
    from .verdicts import assigned_inputs

    assigned, exemptions, assignments = assigned_inputs(args)
    now = datetime.now(timezone.utc)
    rows, locations = template_rows(files, args, lambda d, others: evaluate_assigned(
        assigned, d.resource, now=now, exemptions=exemptions,
        judge=lambda catalog, ids: judge(catalog, d, only=ids, siblings=others)))
    return output(rows, args, assigned.catalog.by_id(), locations, lambda counts, shown: (
        f"{len(files)} template(s), {len(locations)} resource(s), {len(assignments)} assignment(s), {shown} "
        f"result(s): {counts['NonCompliant']} non-compliant, {counts['Exempt']} exempt, "
        f"{counts['NotEvaluated']} not evaluated"))
