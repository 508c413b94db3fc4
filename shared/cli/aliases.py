"""``python -m shared aliases``: look aliases up in the snapshot, or refresh the snapshot from ARM."""
from __future__ import annotations

import argparse
import sys
from pathlib import Path

from ..config import Settings
from .inputs import EXIT_FINDINGS, EXIT_OK, InputError

HELP = "the Azure Policy alias snapshot: look up, or refresh from ARM"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    actions = parser.add_subparsers(dest="action", required=True)
    refresh = actions.add_parser("refresh", help="rewrite the snapshot from a live tenant's provider metadata")
    refresh.add_argument("--out", default=None, metavar="FILE",
                         help="file to write (default: the shipped shared/data/policy-aliases.csv.gz)")
    show = actions.add_parser("show", help="print the JSON path of aliases")
    show.add_argument("names", nargs="+", metavar="ALIAS")


def run(args: argparse.Namespace, settings: Settings) -> int:
    from ..policy.aliases import SNAPSHOT, AliasSnapshotError, default_snapshot, write_snapshot

    if args.action == "show":
        missing = 0
        for name in args.names:
            try:
                path = default_snapshot().get(name)
            except AliasSnapshotError as exc:
                raise InputError(str(exc)) from None
            missing += path is None
            print(f"{name}\t{path if path else '(not in the snapshot)'}")
        return EXIT_FINDINGS if missing else EXIT_OK
    from ..bootstrap import build_alias_source_once

    out = Path(args.out) if args.out else SNAPSHOT
    rows = build_alias_source_once(settings).all_aliases(
        progress=lambda n: print(f"... {n} providers read", file=sys.stderr, flush=True))
    written = write_snapshot(rows, out)
    print(f"wrote {written} aliases to {out}", file=sys.stderr)
    return EXIT_OK
