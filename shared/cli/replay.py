"""``python -m shared replay``: Event Grid events through the monitor, findings as JSON lines on stdout."""
from __future__ import annotations

import argparse
import json
import sys

from ..config import Settings
from .inputs import (EXIT_FINDINGS, EXIT_OK, InputError, catalog_from_settings, read_json, read_text, resources_from_document,
                     store_from_settings)

HELP = "run Event Grid events through the monitor and print the findings"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("events", metavar="EVENTS", help="JSON array or JSON lines of events (either schema)")
    parser.add_argument("--resources", metavar="FILE",
                        help="ARM resources that answer the ARM reads (others are gone)")


def _check_json(text: str, path: str) -> None:
    """A file that is neither JSON nor JSON lines can never be replayed: a usage error, not rejected events."""
    stripped = text.strip()
    if not stripped:
        raise InputError(f"{path}: empty: no events")
    candidates = [stripped] + stripped.splitlines()[:1000]
    for candidate in candidates:
        try:
            json.loads(candidate)
            return
        except (json.JSONDecodeError, RecursionError):
            continue
    raise InputError(f"{path}: neither JSON nor JSON lines (an array of events, one event, or one event per line)")


def run(args: argparse.Namespace, settings: Settings) -> int:
    from ..adapters.memory import MemorySink, StaticResourceReader
    from ..domain.events import EventRejected, iter_envelopes, parse_event, printable
    from ..service.changes import Dependencies, handle_change

    text = read_text(args.events)
    _check_json(text, args.events)
    resources = resources_from_document(read_json(args.resources), args.resources) if args.resources else []
    reader = StaticResourceReader(resources)
    sink = MemorySink()
    deps = Dependencies(catalog=catalog_from_settings(settings), reader=reader, store=store_from_settings(settings),
                        sink=sink)
    processed = rejected = failed = 0
    for item in iter_envelopes(text, origin=args.events):
        if isinstance(item, EventRejected):
            print(f"rejected event {item.event_id}: {item.reason}", file=sys.stderr)
            rejected += 1
            continue
        try:
            change = parse_event(item)
        except EventRejected as exc:
            print(f"rejected event {exc.event_id}: {exc.reason}", file=sys.stderr)
            rejected += 1
            continue
        except (RecursionError, OverflowError, ValueError, TypeError) as exc:  # parsing is pure: report, go on
            print(f"rejected event {printable(item.id)}: cannot be parsed: {type(exc).__name__}: {exc}",
                  file=sys.stderr)
            rejected += 1
            continue
        before = len(sink.records)
        try:
            handle_change(change, deps)
        except Exception as exc:  # report and go on: one failing event must not hide the rest
            print(f"failed event {change.event_id}: {type(exc).__name__}: {exc}", file=sys.stderr)
            failed += 1
            continue
        processed += 1
        args.exit_code = EXIT_FINDINGS if rejected or failed else EXIT_OK  # so far, should the output be cut
        for record in sink.records[before:]:
            print(json.dumps(record, default=str, separators=(",", ":")))
    print(f"replayed {processed} event(s): {len(sink.records)} finding(s), {rejected} rejected, {failed} failed",
          file=sys.stderr)
    return EXIT_FINDINGS if rejected or failed else EXIT_OK
