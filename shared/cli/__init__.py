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
from . import aliases, catalog, demo, evaluate, exempt, import_policy, parity, preflight, replay, report, scan_template
from .catalog import catalog_markdown
from .inputs import EXIT_BAD_INPUT, EXIT_FINDINGS, EXIT_OK, InputError, resources_from_document

__all__ = ["EXIT_BAD_INPUT", "EXIT_FINDINGS", "EXIT_OK", "InputError", "build_parser", "catalog_markdown", "main",
           "resources_from_document"]

COMMANDS = {"evaluate": evaluate, "scan-template": scan_template, "replay": replay, "import-policy": import_policy, "aliases": aliases,
            "parity": parity, "preflight": preflight, "exempt": exempt, "catalog": catalog, "report": report,
            "demo": demo}  # in the order --help lists them


def build_parser() -> argparse.ArgumentParser:
    from .. import __version__

    invoked = os.path.basename(sys.argv[0]) if sys.argv and sys.argv[0] else ""
    prog = "python -m shared" if invoked in ("", "__main__.py", "-c") else invoked
    parser = argparse.ArgumentParser(prog=prog, description="Event-driven Azure compliance monitor.")
    parser.add_argument("--version", action="version", version=f"azure-compliance-monitor {__version__}")
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
    from azure.core.exceptions import AzureError

    try:
        settings = Settings.from_env()
        return COMMANDS[args.command].run(args, settings)
    except (InputError, ControlLoadError, ConfigurationError) as exc:
        print(f"error: {one_line(str(exc))}", file=sys.stderr)
        return EXIT_BAD_INPUT
    except AzureError as exc:
        print(f"error: {azure_problem(exc)}", file=sys.stderr)
        return EXIT_BAD_INPUT
    except BrokenPipeError:
        # The reader stopped early (| head): the result was decided before the output, so its exit code
        # stands. stdout is pointed at /dev/null so the interpreter's last flush cannot fail again.
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        code = getattr(args, "exit_code", None)
        os._exit(EXIT_OK if code is None else code)


def one_line(text: str, limit: int = 1000) -> str:
    return " ".join(text.split())[:limit]


def azure_problem(exc: Exception) -> str:
    """An Azure SDK error as one line: which endpoint, what it said, what to check."""
    from urllib.parse import urlsplit

    from azure.core.exceptions import ClientAuthenticationError, HttpResponseError, ServiceRequestError

    response = getattr(exc, "response", None)
    url = getattr(getattr(response, "request", None), "url", None)
    host = urlsplit(url).netloc if url else ""
    if not host:  # a connection that failed names its host and port in the message only
        import re

        found = re.search(r"host='([^']+)', port=(\d+)", str(exc))
        host = f"{found.group(1)}:{found.group(2)}" if found else ""
    said = one_line(str(getattr(exc, "message", None) or exc), 300)
    if isinstance(exc, ClientAuthenticationError) and response is None:
        return (f"no Azure credential could be used: {said}; sign in (az login) or set the identity "
                f"(AZURE_CLIENT_ID), or give a connection string for Azurite")
    if isinstance(exc, ServiceRequestError):
        return (f"cannot reach {host or 'the service'}: {said}; check the endpoint settings "
                f"(STATE_STORAGE__connectionString / __tableServiceUri, ARM_ENDPOINT, LOGS_INGESTION__endpoint) "
                f"and that it is running")
    if isinstance(exc, HttpResponseError):
        status = exc.status_code or "no status"
        code = getattr(exc, "error_code", None) or ""
        hint = "check the key in the connection string, or the identity's role" if status in (401, 403) \
            else "see the message"
        return f"{host or 'the service'} refused the request ({status} {code}".rstrip() + f"): {said}; {hint}"
    return f"{type(exc).__name__}: {said}"
