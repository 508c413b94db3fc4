"""``python -m shared demo``: replay the bundled scenario through the real handler.

State goes to Azurite (started here unless ``STATE_STORAGE__connectionString``
is set) through the Table Storage adapter; findings go to a JSON-lines file.
ARM reads are answered from the scenario's resource states, step by step.
The scenario and its resources are data files in ``shared/demo/``.
"""
from __future__ import annotations

import argparse
import contextlib
import json
import sys
import time
from pathlib import Path
from typing import Any, Iterator, Mapping, Sequence, TextIO

from ..catalog import Status
from ..config import Settings
from .inputs import EXIT_OK, InputError, catalog_from_settings, read_json

HELP = "replay a realistic scenario against Azurite and print the timeline"
SCENARIO = Path(__file__).parent.parent / "demo" / "scenario.json"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--findings", metavar="PATH", default="out/demo-findings.jsonl",
                        help="JSON-lines file the findings are written to (default: %(default)s)")
    parser.add_argument("--scenario", metavar="FILE", help="scenario file (default: the bundled one)")


class RecordingSink:
    """Forwards to another sink and remembers what was sent (for the timeline)."""

    def __init__(self, inner: Any) -> None:
        self.inner = inner
        self.records: list[dict] = []

    def send(self, records: Sequence[Mapping[str, Any]]) -> None:
        self.inner.send(records)
        self.records.extend(dict(r) for r in records)


@contextlib.contextmanager
def _state_connection(settings: Settings, out: TextIO) -> Iterator[str]:
    if settings.state_connection_string:
        print("state: Table Storage from STATE_STORAGE__connectionString", file=out)
        yield settings.state_connection_string
        return
    from ..devtools.azurite import azurite

    started = time.monotonic()
    with azurite() as conn:
        endpoint = next((p.split("=", 1)[1] for p in conn.split(";") if p.startswith("TableEndpoint=")), "?")
        print(f"state: Azurite at {endpoint} (started in {time.monotonic() - started:.1f} s)", file=out)
        yield conn
    print("Azurite stopped.", file=out)


def _short(resource_id: str) -> str:
    parts = resource_id.split("/")
    return f"{parts[-2]}/{parts[-1]}" if len(parts) >= 2 else resource_id


def _evidence_summary(record: Mapping[str, Any]) -> str:
    bits = []
    for item in record.get("Evidence") or []:
        if "count" in item:
            names = [m.get("value", {}).get("name") if isinstance(m.get("value"), Mapping) else m.get("value")
                     for m in item.get("matched", [])]
            bits.append(f"{item['matchedCount']} match(es): {', '.join(str(n) for n in names)}")
        elif "field" in item and item.get("result"):
            actual = item.get("actual")
            bits.append(f"{item.get('path', item['field'])} = {'(missing)' if actual is None else json.dumps(actual)}")
    return "; ".join(bits)


def run(args: argparse.Namespace, settings: Settings, out: TextIO = sys.stdout) -> int:
    from azure.data.tables import TableClient
    from azure.functions.eventgrid import EventGridEventInConverter
    from azure.functions.meta import Datum

    from .. import bootstrap
    from ..adapters.memory import JsonLinesSink, StaticResourceReader
    from ..adapters.table_store import TableStateStore
    from ..domain.events import envelope_from_dict, parse_event
    from ..service.changes import Dependencies
    from handlers.resource_events import on_resource_change

    scenario_path = Path(args.scenario) if args.scenario else SCENARIO
    scenario = read_json(str(scenario_path))
    steps = scenario.get("steps") if isinstance(scenario, Mapping) else None
    if not isinstance(steps, list) or not steps:
        raise InputError(f"{scenario_path}: a scenario needs a non-empty 'steps' list")
    findings_path = Path(args.findings)
    findings_path.parent.mkdir(parents=True, exist_ok=True)
    findings_path.write_text("", encoding="utf-8")
    handler = on_resource_change.build().get_user_function()
    catalog = catalog_from_settings(settings)
    print(f"Compliance monitor demo: {len(steps)} events, {len(catalog.controls)} controls", file=out)
    with _state_connection(settings, out) as conn:
        table = TableClient.from_connection_string(conn, f"demo{int(time.time() * 1000) % 10**9}")
        store = TableStateStore.create_table(table)
        reader = StaticResourceReader()
        sink = RecordingSink(JsonLinesSink(findings_path))
        bootstrap.override(Dependencies(catalog=catalog, reader=reader, store=store, sink=sink))
        try:
            print("\nTIMELINE", file=out)
            for number, step in enumerate(steps, start=1):
                if step.get("resource"):
                    reader.put(step["resource"])
                if step.get("deletes"):
                    reader.remove(step["deletes"])
                event = step["event"]
                change = parse_event(envelope_from_dict(event))
                before = len(sink.records)
                handler(EventGridEventInConverter.decode(Datum(json.dumps(event), "json"), trigger_metadata={}))
                new = sink.records[before:]
                when = change.event_time.strftime("%H:%M:%S")
                print(f"{when}  {change.caller.display:<40} {change.kind:<6} {_short(change.subject.value)}"
                      f"  [{change.schema}]", file=out)
                print(f"          {step.get('title', '')}", file=out)
                for record in new:
                    mark = {"New": "!", "Drifted": "!", "Resolved": "+", "Deleted": "x"}.get(record["Transition"], "-")
                    print(f"          {mark} {record['Transition']:<8} {record['ControlId']} "
                          f"({record['Severity']}) on {record['ResourceId'].rsplit('/', 1)[-1]}", file=out)
                    summary = _evidence_summary(record)
                    if summary:
                        print(f"            evidence: {summary}", file=out)
                if not new:
                    print("          = no compliance change", file=out)
            _print_final_table(store, out)
        finally:
            bootstrap.override(None)
            table.delete_table()
    print(f"\n{len(sink.records)} finding record(s) written to {findings_path}", file=out)
    return EXIT_OK


def _print_final_table(store: Any, out: TextIO) -> None:
    """One line per resource: how many controls pass, and the open findings with their severity."""
    print("\nFINAL COMPLIANCE", file=out)
    rows = []
    for state in store.states():
        name = state.resource_id.rsplit("/", 1)[-1]
        if state.deleted:
            rows.append((name, "-", "-", "-", "(deleted: its findings are closed)"))
            continue
        statuses = [cs.status for cs in state.controls.values()]
        open_ = sorted(cid for cid, cs in state.controls.items() if cs.status == Status.NONCOMPLIANT)
        rows.append((name, str(statuses.count(Status.COMPLIANT)), str(len(open_)),
                     str(sum(1 for s in statuses if s is None)), ", ".join(open_) or "none"))
    headers = ("RESOURCE", "COMPLIANT", "NON-COMPLIANT", "NOT EVALUATED", "OPEN FINDINGS")
    widths = [max(len(h), *(len(r[i]) for r in rows)) if rows else len(h) for i, h in enumerate(headers)]
    for r in [headers, *rows]:
        print("  ".join(c.ljust(w) for c, w in zip(r, widths)).rstrip(), file=out)
