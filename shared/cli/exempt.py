"""``python -m shared exempt``: accept a risk; add, list or remove exemptions in the state storage."""
from __future__ import annotations

import argparse
import json
import sys

from ..config import ConfigurationError, Settings
from .inputs import EXIT_OK, InputError, catalog_from_settings, has_state_table

HELP = "accept a risk: add, list or remove exemptions (Table Storage)"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    actions = parser.add_subparsers(dest="action", required=True)
    add = actions.add_parser("add", help="exempt a subscription, resource group or resource (optionally one control)")
    add.add_argument("--scope", required=True, help="/subscriptions/<id>[/resourceGroups/<rg>[/providers/...]]")
    add.add_argument("--control", help="one control id (default: every control)")
    add.add_argument("--justification", required=True, help="why the risk is accepted")
    add.add_argument("--requester", required=True, help="who asked for it")
    add.add_argument("--expires", help="ISO-8601 date or time (at most 366 days ahead)")
    add.add_argument("--days", type=int, help="expires this many days from now")
    listing = actions.add_parser("list", help="list active exemptions")
    listing.add_argument("--scope", help="only exemptions at or below this scope")
    listing.add_argument("--all", action="store_true", help="include expired ones")
    listing.add_argument("--format", choices=("table", "json"), default="table")
    remove = actions.add_parser("remove", help="remove an exemption by id")
    remove.add_argument("id")


def _parse_expiry(args: argparse.Namespace, now):
    from datetime import datetime, timedelta, timezone

    if args.days is not None:
        return now + timedelta(days=args.days)
    try:
        parsed = datetime.fromisoformat(args.expires.replace("Z", "+00:00"))
    except ValueError:
        raise InputError(f"--expires {args.expires!r} is not an ISO-8601 date or time (e.g. 2027-03-31)") from None
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=timezone.utc)


def run(args: argparse.Namespace, settings: Settings) -> int:
    from datetime import datetime, timezone

    from ..bootstrap import build_exemption_store
    from ..domain.exemptions import InvalidExemption, new_exemption

    if not has_state_table(settings):
        raise ConfigurationError("exempt needs the state storage: set STATE_STORAGE__tableServiceUri (identity) or "
                                 "STATE_STORAGE__connectionString")
    store = build_exemption_store(settings)
    now = datetime.now(timezone.utc)
    if args.action == "add":
        if (args.days is None) == (args.expires is None):
            raise InputError("exempt add needs exactly one of --expires DATE or --days N")
        try:
            exemption = new_exemption(args.scope, args.justification, args.requester, _parse_expiry(args, now), now,
                                      control_id=args.control,
                                      known_controls=[c.id for c in catalog_from_settings(settings).controls])
        except InvalidExemption as exc:
            raise InputError(f"exempt add: {exc}") from None
        store.add(exemption)
        print(json.dumps(_exemption_json(exemption, now)))
        return EXIT_OK
    if args.action == "remove":
        removed = store.remove(args.id)
        if removed is None:
            raise InputError(f"exempt remove: no exemption with id {args.id!r}")
        print(f"removed {removed.id} ({removed.scope}, {removed.control_id or 'all controls'}); the next evaluation "
              "re-opens its findings", file=sys.stderr)
        return EXIT_OK
    items = sorted(store.all(), key=lambda e: e.expires)
    if args.scope:
        items = [e for e in items if e.scope.lower().startswith(args.scope.lower().rstrip("/"))]
    if not args.all:
        items = [e for e in items if e.active(now)]
    if args.format == "json":
        json.dump([_exemption_json(e, now) for e in items], sys.stdout, indent=2)
        print()
    else:
        for e in items:
            state = "active" if e.active(now) else "EXPIRED"
            print(f"{e.id}  {state:<7}  until {e.expires:%Y-%m-%d}  {e.control_id or '(all controls)':<40}  {e.scope}")
            print(f"    {e.requester}: {e.justification}")
        print(f"{len(items)} exemption(s)", file=sys.stderr)
    return EXIT_OK


def _exemption_json(e, now) -> dict:
    return {"id": e.id, "scope": e.scope, "controlId": e.control_id, "justification": e.justification,
            "requester": e.requester, "expires": e.expires.isoformat(), "created": e.created.isoformat(),
            "active": e.active(now)}
