"""``python -m shared parity``: the monitor's verdicts on Azure Policy assignments beside Azure Policy's own
latest policy states, pair by pair (``shared.domain.parity``).

Offline (``--states``): the resources given are evaluated against the assignments given, and compared
with the states file (only the states of those resources). In Azure (no ``--states``): the state table's
assigned verdicts are compared with PolicyInsights' latest states of the monitored subscriptions.
Disagreements are printed with the monitor's evidence; the last line sums up. Exit 0 when nothing
disagrees, 1 when something does, 2 on unusable input.
"""
from __future__ import annotations

import argparse
import json
import sys
from datetime import datetime, timezone
from typing import Any, Mapping

from ..config import Settings
from .inputs import EXIT_FINDINGS, EXIT_OK, InputError, has_state_table, json_documents, store_from_settings

HELP = "compare the verdicts on Azure Policy assignments with Azure Policy's own compliance states"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("paths", nargs="*", metavar="RESOURCES",
                        help="with --states: ARM resource JSON files, as for evaluate")
    parser.add_argument("--states", action="append", metavar="PATH",
                        help="Azure Policy states: a policyStates/latest/queryResults response, `az policy state "
                             "list` output, or a folder of them (repeatable); without it, read from Azure")
    parser.add_argument("--assignments", action="append", metavar="PATH", help="as for evaluate (with --states)")
    parser.add_argument("--definitions", action="append", metavar="DIR", help="as for evaluate (with --states)")
    parser.add_argument("--exemptions", action="append", metavar="PATH", help="as for evaluate (with --states)")
    parser.add_argument("--format", choices=("table", "json"), default="table",
                        help="json: every comparison as a ComplianceParity_CL record (the summary on stderr)")


def _changed_at(resource: Mapping[str, Any]) -> datetime | None:
    """When the resource last changed, where the document says (ARM's systemData, or changedTime)."""
    value = (resource.get("systemData") or {}).get("lastModifiedAt") if isinstance(resource.get("systemData"), Mapping) \
        else None
    value = value or resource.get("changedTime")
    if not isinstance(value, str):
        return None
    try:
        parsed = datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        return None
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=timezone.utc)


def _offline(args: argparse.Namespace):
    from ..domain.parity import StatesError, Verdict, azure_states, compare
    from .evaluate import assigned_rows

    if not args.assignments or not args.paths:
        raise InputError("parity --states needs --assignments and the RESOURCES they are evaluated on")
    docs, unusable = json_documents(args.states)
    if unusable:
        raise InputError("; ".join(unusable))
    states = []
    try:
        for origin, doc in docs:
            states.extend(azure_states(doc, origin))
    except StatesError as exc:
        raise InputError(str(exc)) from None
    rows, resources, _, _ = assigned_rows(args)
    changed = {str(r.get("id", "")).lower(): _changed_at(r) for r in resources}
    verdicts = [Verdict(row["resourceId"], row["policyAssignmentId"], row["policyDefinitionId"], row["status"],
                        row.get("policySetDefinitionId"), row.get("policyDefinitionReferenceId"), row.get("title", ""),
                        tuple(row.get("evidence") or ()), changed.get(str(row["resourceId"]).lower()))
                for row in rows]
    given = set(changed)
    return compare(verdicts, [s for s in states if s.resource_id.rstrip("/").lower() in given])


def _in_azure(settings: Settings):
    from .. import bootstrap
    from ..service.parity import run_parity

    if not has_state_table(settings):
        raise InputError("parity without --states reads the state table: set STATE_STORAGE__tableServiceUri "
                         "(or __connectionString), or give --states with --assignments and RESOURCES")
    try:
        subscriptions = bootstrap.monitored_scopes(settings).subscriptions
    except bootstrap.ConfigurationError as exc:
        raise InputError(f"MONITORED_SCOPES: {exc}") from None
    if not subscriptions:
        raise InputError("parity without --states compares the subscriptions in MONITORED_SCOPES; none is set")
    report, _ = run_parity(store_from_settings(settings), bootstrap.build_policy_states(settings).latest, subscriptions, None,
                           lambda: datetime.now(timezone.utc))
    return report


def run(args: argparse.Namespace, settings: Settings) -> int:
    from ..domain.parity import AZURE_OLDER, DISAGREE

    if not args.states and (args.assignments or args.paths or args.definitions or args.exemptions):
        raise InputError("RESOURCES, --assignments, --definitions and --exemptions go with --states "
                         "(without it, parity reads the state table and Azure)")
    report = _offline(args) if args.states else _in_azure(settings)
    args.exit_code = EXIT_FINDINGS if report.count(DISAGREE) else EXIT_OK
    if args.format == "json":
        now = datetime.now(timezone.utc)
        json.dump([c.as_record(now, "cli") for c in report.comparisons], sys.stdout, indent=2, default=str)
        print()
        print(report.summary(), file=sys.stderr)
    else:
        shown = [c for c in report.comparisons if c.outcome == DISAGREE] + [
            c for c in report.comparisons if c.outcome == AZURE_OLDER]
        for c in shown:
            member = f" ({c.reference_id})" if c.reference_id else ""
            when = f"Azure Policy evaluated it {c.azure_timestamp.isoformat()}" if c.azure_timestamp else \
                "no evaluation time"
            if c.outcome == AZURE_OLDER and c.changed_at:
                when += f"; the resource changed {c.changed_at.isoformat()}"
            print(f"{c.outcome}: {c.resource_id}\n  assignment {c.assignment_id}{member}: {c.title or c.definition_id}"
                  f"\n  monitor {c.monitor_status}, Azure Policy {c.azure_status} ({when})")
            for item in [e for e in c.evidence if not (isinstance(e, dict) and e.get("result") is False)][:5]:
                print(f"  evidence: {json.dumps(item, default=str)[:300]}")
        print(report.summary())
    return args.exit_code
