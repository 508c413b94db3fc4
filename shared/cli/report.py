"""``python -m shared report``: the posture report from the state table, Markdown or one HTML file."""
from __future__ import annotations

import argparse
import sys
from pathlib import Path

from ..config import ConfigurationError, Settings
from .inputs import EXIT_OK, InputError, catalog_from_settings, has_state_table, store_from_settings

HELP = "posture report from the state table (Markdown or one HTML file)"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--format", choices=("md", "html"), default="md")
    parser.add_argument("--out", metavar="FILE", help="write the report to FILE (default: stdout)")


def run(args: argparse.Namespace, settings: Settings) -> int:
    from datetime import datetime, timezone

    from ..report import build_report, render_html, render_markdown

    if not has_state_table(settings):
        raise ConfigurationError("report reads the state table: set STATE_STORAGE__connectionString or "
                                 "STATE_STORAGE__tableServiceUri (an in-memory store is always empty)")
    store = store_from_settings(settings)
    posture_history = getattr(store, "posture_history", None)  # snapshots, where the store keeps them
    history = list(posture_history()) if callable(posture_history) else []
    report = build_report(store.states(), catalog_from_settings(settings), datetime.now(timezone.utc), history)
    text = render_html(report) if args.format == "html" else render_markdown(report)
    if not args.out:
        sys.stdout.write(text)
        return EXIT_OK
    out = Path(args.out)
    try:
        out.parent.mkdir(parents=True, exist_ok=True)
        out.write_text(text, encoding="utf-8")
    except OSError as exc:
        raise InputError(f"{out}: cannot write: {exc.strerror or exc}") from None
    print(f"wrote {out} ({args.format}): {report.totals.resources} resource(s), {report.totals.open} open "
          f"finding(s), {report.totals.overdue} past due", file=sys.stderr)
    return EXIT_OK
