"""``python -m shared``: evaluate resource files, replay events, run the demo.

One module per command, each with its ``HELP``, its ``add_arguments(parser)`` and its
``run(args, settings)``; ``inputs`` reads what they share. Exit codes: 0 success (``evaluate``:
everything compliant), 1 something is non-compliant (``evaluate``) or an event was rejected or
failed (``replay``), 2 bad input or configuration (the message on stderr names the file and the problem).
"""
from __future__ import annotations

import argparse
import logging
import os
import sys
from typing import Iterable

from ..catalog import ControlLoadError
from ..config import ConfigurationError, Settings
from . import aliases, catalog, demo, evaluate, exempt, import_policy, parity, replay, report
from .catalog import catalog_markdown
from .inputs import EXIT_BAD_INPUT, EXIT_FINDINGS, EXIT_OK, InputError, resources_from_document

__all__ = ["EXIT_BAD_INPUT", "EXIT_FINDINGS", "EXIT_OK", "InputError", "build_parser", "catalog_markdown", "main",
           "resources_from_document"]

COMMANDS = {"evaluate": evaluate, "replay": replay, "import-policy": import_policy, "aliases": aliases,
            "parity": parity, "exempt": exempt, "catalog": catalog, "report": report, "demo": demo}  # in the order --help lists them


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m shared", description="Event-driven Azure compliance monitor.")
    parser.add_argument("-v", "--verbose", action="store_true", help="log progress to stderr")
    sub = parser.add_subparsers(dest="command", required=True)
    for name, command in COMMANDS.items():
        command.add_arguments(sub.add_parser(name, help=command.HELP))
    return parser


def main(argv: Iterable[str] | None = None) -> int:
    args = build_parser().parse_args(list(argv) if argv is not None else None)
    logging.basicConfig(level=logging.INFO if args.verbose else logging.WARNING, stream=sys.stderr,
                        format="%(levelname)s %(name)s: %(message)s")
    logging.getLogger("azure").setLevel(logging.WARNING)
    try:
        settings = Settings.from_env()
        return COMMANDS[args.command].run(args, settings)
    except (InputError, ControlLoadError, ConfigurationError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return EXIT_BAD_INPUT
    except BrokenPipeError:  # output piped into head & co.
        os._exit(EXIT_OK)
