"""``python -m shared``: evaluate resource files, replay events, run the demo.

Exit codes: 0 success (``evaluate``: everything compliant), 1 something is
non-compliant (``evaluate``) or an event was rejected or failed (``replay``),
2 bad input or configuration (the message on stderr names the file and the problem).
"""
from __future__ import annotations

import argparse
import json
import logging
import os
import sys
from pathlib import Path
from typing import Any, Iterable, Mapping, TextIO

from .config import ConfigurationError, Settings
from .catalog import Catalog, ControlLoadError, Status, load_catalog, results_as_json

EXIT_OK, EXIT_FINDINGS, EXIT_BAD_INPUT = 0, 1, 2


class InputError(ValueError):
    """A command-line input that cannot be used; the message names the file and the problem."""


def _catalog(settings: Settings) -> Catalog:
    return load_catalog(settings.control_directories(), disabled=settings.disabled_controls,
                        parameters=settings.control_parameters)


def _read_json(path: str) -> Any:
    try:
        text = Path(path).read_text(encoding="utf-8")
    except OSError as exc:
        raise InputError(f"{path}: cannot read: {exc.strerror or exc}") from None
    try:
        return json.loads(text)
    except json.JSONDecodeError as exc:
        raise InputError(f"{path}: not valid JSON: {exc.msg} at line {exc.lineno} column {exc.colno}") from None
    except RecursionError:
        raise InputError(f"{path}: JSON nests too deeply to be read") from None


def resources_from_document(doc: Any, origin: str) -> list[Mapping[str, Any]]:
    """ARM resource objects from one resource, a list, an ARM page or a Resource Graph result."""
    if isinstance(doc, Mapping) and isinstance(doc.get("value"), list):
        items, where = doc["value"], "value"
    elif isinstance(doc, Mapping) and isinstance(doc.get("data"), list):
        items, where = doc["data"], "data"
    elif isinstance(doc, list):
        items, where = doc, ""
    elif isinstance(doc, Mapping):
        items, where = [doc], None
    else:
        raise InputError(f"{origin}: expected an ARM resource object, a list of them, "
                         f'{{"value": [...]}} or {{"data": [...]}}, got {type(doc).__name__}')
    out = []
    for index, item in enumerate(items):
        label = origin if where is None else f"{origin}: {where}[{index}]" if where else f"{origin}: [{index}]"
        if not isinstance(item, Mapping):
            raise InputError(f"{label}: a resource must be a JSON object, got {type(item).__name__}")
        for key in ("id", "type"):
            if not isinstance(item.get(key), str) or not item.get(key):
                raise InputError(f"{label}: resource has no '{key}'")
        out.append(item)
    return out


# ------------------------------------------------------------------ evaluate


def _table(rows: list[dict], out: TextIO) -> None:
    headers = ("RESOURCE", "CONTROL", "SEVERITY", "STATUS", "REASON")  # REASON: why a control is NotEvaluated
    data = [(r["resourceId"].rsplit("/", 1)[-1], r["controlId"], r["severity"], r["status"],
             " ".join(str(r.get("reason") or "").split())) for r in rows]
    widths = [max([len(h)] + [len(d[i]) for d in data]) for i, h in enumerate(headers)]
    line = lambda cells: "  ".join(c.ljust(w) for c, w in zip(cells, widths)).rstrip()  # noqa: E731
    print(line(headers), file=out)
    for d in data:
        print(line(d), file=out)


def cmd_evaluate(args: argparse.Namespace, settings: Settings) -> int:
    catalog = _catalog(settings)
    resources: list[Mapping[str, Any]] = []
    for path in args.paths:
        resources.extend(resources_from_document(_read_json(path), path))
    rows: list[dict] = []
    for resource in resources:
        rows.extend(results_as_json(resource["id"], catalog.evaluate(resource)))
    noncompliant = sum(1 for r in rows if r["status"] == Status.NONCOMPLIANT.value)
    if args.format == "json":
        json.dump(rows, sys.stdout, indent=2, default=str)
        print()
    else:
        _table(rows, sys.stdout)
        not_evaluated = sum(1 for r in rows if r["status"] == Status.NOT_EVALUATED.value)
        print(f"\n{len(resources)} resource(s), {len(rows)} control evaluation(s): {noncompliant} non-compliant, "
              f"{not_evaluated} not evaluated", file=sys.stdout)
    return EXIT_FINDINGS if noncompliant else EXIT_OK


# ------------------------------------------------------------------ replay


def _store_for_cli(settings: Settings):
    """In memory unless a Table Storage / Azurite connection is configured."""
    if settings.state_connection_string or settings.state_table_service_uri:
        from .bootstrap import build_store

        return build_store(settings)
    from .adapters.memory import InMemoryStateStore

    return InMemoryStateStore()


def cmd_replay(args: argparse.Namespace, settings: Settings) -> int:
    from .adapters.memory import MemorySink, StaticResourceReader
    from .domain.events import EventRejected, iter_envelopes, parse_event, printable
    from .service.changes import Dependencies, handle_change

    try:
        text = Path(args.events).read_text(encoding="utf-8")
    except OSError as exc:
        raise InputError(f"{args.events}: cannot read: {exc.strerror or exc}") from None
    resources = resources_from_document(_read_json(args.resources), args.resources) if args.resources else []
    reader = StaticResourceReader(resources)
    sink = MemorySink()
    deps = Dependencies(catalog=_catalog(settings), reader=reader, store=_store_for_cli(settings), sink=sink)
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
        for record in sink.records[before:]:
            print(json.dumps(record, default=str, separators=(",", ":")))
    print(f"replayed {processed} event(s): {len(sink.records)} finding(s), {rejected} rejected, {failed} failed",
          file=sys.stderr)
    return EXIT_FINDINGS if rejected or failed else EXIT_OK


# ------------------------------------------------------------------ import-policy


def _policy_inputs(paths: list[str]) -> tuple[list[tuple[str, Any]], list[str]]:
    """(file, decoded JSON) for every file given and every *.json below a folder given; unusable inputs."""
    docs, unusable = [], []
    for given in paths:
        root = Path(given)
        files = sorted(root.rglob("*.json")) if root.is_dir() else [root]
        if root.is_dir() and not files:
            unusable.append(f"{given}: the folder holds no .json file")
        for path in files:
            try:
                docs.append((str(path), _read_json(str(path))))
            except InputError as exc:
                unusable.append(str(exc))
    return docs, unusable


def _assignment_values(args: argparse.Namespace) -> dict[str, Any]:
    from .policy.importing import UnusableInput, parameter_values, parse_assignment

    values: dict[str, Any] = {}
    try:
        for path in args.parameters or []:
            values.update(parameter_values(_read_json(path), path))
        for text in args.param or []:
            name, value = parse_assignment(text)
            values[name] = value
    except UnusableInput as exc:
        raise InputError(str(exc)) from None
    return values


def cmd_import_policy(args: argparse.Namespace, settings: Settings) -> int:
    import yaml

    from .catalog import alias_resolver
    from .policy.importing import DELEGATED, IMPORTED, REFUSED, TEMPLATE, DefinitionLibrary, import_documents

    values = _assignment_values(args)
    remote_aliases = remote_definitions = None
    if args.from_arm:
        from .bootstrap import build_alias_source_once, build_policy_definition_source

        remote_aliases, remote_definitions = build_alias_source_once(settings), build_policy_definition_source(settings)
    resolver = alias_resolver(alias_fallback=remote_aliases)
    library = DefinitionLibrary(remote=remote_definitions)
    library_docs, library_unusable = _policy_inputs(args.definitions or [])
    for origin, doc in library_docs:
        for item in (doc.get("value") if isinstance(doc, dict) and isinstance(doc.get("value"), list)
                     else doc if isinstance(doc, list) else [doc]):
            if isinstance(item, dict):
                library.add(origin, item)
    docs, unusable = _policy_inputs(args.files)
    unusable += library_unusable
    total = [0]

    def progress(done: int) -> None:
        if done - total[0] >= 100:
            total[0] = done
            print(f"... {done} definitions converted", file=sys.stderr, flush=True)

    outcomes, bad_documents = import_documents(docs, resolver=resolver, library=library, values=values,
                                               severity=args.severity, prefix=args.prefix,
                                               enable_disabled=args.enable_disabled, progress=progress)
    unusable += bad_documents
    out_dir = Path(args.out)
    samples: dict[str, Any] = {}
    for o in outcomes:
        if o.status == REFUSED:
            print(f"refused   {o.name} ({o.origin}): {o.reason}")
            continue
        if o.status == TEMPLATE:
            samples.update({k: {"value": v} for k, v in o.samples.items()})
            print(f"template  {o.name} ({o.origin}): needs a value for {', '.join(o.missing)}"
                  + (f" ({o.reason})" if o.reason else ""))
        if args.check:
            continue
        target = (out_dir / "templates" if o.status == TEMPLATE else out_dir) / f"{o.control['id']}.yaml"
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_text(yaml.safe_dump(o.control, sort_keys=False, allow_unicode=True, width=100), encoding="utf-8")
        if o.status == IMPORTED:
            print(f"wrote {target} ({o.control['id']}, {o.control['severity']}, {', '.join(o.control['resourceTypes'])})")
        if o.status == DELEGATED:
            print(f"wrote {target} ({o.control['id']}, {o.control['severity']}, "
                  f"{', '.join(o.control['resourceTypes'])}; verdict from Azure Policy's compliance states)")
    for message in unusable:
        print(f"error: {message}", file=sys.stderr)
    if args.parameters_template and samples:
        Path(args.parameters_template).write_text(json.dumps(dict(sorted(samples.items())), indent=2) + "\n",
                                                  encoding="utf-8")
        print(f"wrote {args.parameters_template}: sample values for {len(samples)} parameter(s); edit them, "
              f"then import again with --parameters {args.parameters_template}", file=sys.stderr)
    imported = sum(o.status != REFUSED for o in outcomes)
    templates = sum(o.status == TEMPLATE for o in outcomes)
    delegated = sum(o.status == DELEGATED for o in outcomes)
    refused = len(outcomes) - imported
    if imported and not args.check:
        print(f"load them with CONTROLS_PATH={out_dir}" + (f" (templates in {out_dir / 'templates'} need values: "
              "--parameters or CONTROL_PARAMETERS)" if templates else ""), file=sys.stderr)
    if delegated:
        print(f"{delegated} control(s) take Azure Policy's verdict (data-plane definitions): assign the definitions "
              f"in Azure Policy, and deploy with enablePolicyStateEvents=true (docs/POLICY-COMPATIBILITY.md)",
              file=sys.stderr)
    print(f"imported {imported} of {len(outcomes)} definitions ({templates} templates, "
          + (f"{delegated} delegated to Azure Policy, " if delegated else "") + f"{refused} refused)")
    if unusable:
        return EXIT_BAD_INPUT
    return EXIT_FINDINGS if refused else EXIT_OK


def cmd_aliases(args: argparse.Namespace, settings: Settings) -> int:
    from .policy.aliases import SNAPSHOT, AliasSnapshotError, default_snapshot, write_snapshot

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
    from .bootstrap import build_alias_source_once

    out = Path(args.out) if args.out else SNAPSHOT
    rows = build_alias_source_once(settings).all_aliases(
        progress=lambda n: print(f"... {n} providers read", file=sys.stderr, flush=True))
    written = write_snapshot(rows, out)
    print(f"wrote {written} aliases to {out}", file=sys.stderr)
    return EXIT_OK


# ------------------------------------------------------------------ exempt


def _parse_expiry(args: argparse.Namespace, now):
    from datetime import datetime, timedelta, timezone

    if args.days is not None:
        return now + timedelta(days=args.days)
    try:
        parsed = datetime.fromisoformat(args.expires.replace("Z", "+00:00"))
    except ValueError:
        raise InputError(f"--expires {args.expires!r} is not an ISO-8601 date or time (e.g. 2027-03-31)") from None
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=timezone.utc)


def cmd_exempt(args: argparse.Namespace, settings: Settings) -> int:
    from datetime import datetime, timezone

    from .bootstrap import build_exemption_store
    from .domain.exemptions import InvalidExemption, new_exemption

    if settings.state_store == "memory" or not (settings.state_connection_string or settings.state_table_service_uri):
        raise ConfigurationError("exempt needs the state storage: set STATE_STORAGE__tableServiceUri (identity) or "
                                 "STATE_STORAGE__connectionString")
    store = build_exemption_store(settings)
    now = datetime.now(timezone.utc)
    if args.action == "add":
        if (args.days is None) == (args.expires is None):
            raise InputError("exempt add needs exactly one of --expires DATE or --days N")
        try:
            exemption = new_exemption(args.scope, args.justification, args.requester, _parse_expiry(args, now), now,
                                      control_id=args.control, known_controls=[c.id for c in _catalog(settings).controls])
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


# ------------------------------------------------------------------ catalog


def cmd_catalog(args: argparse.Namespace, settings: Settings) -> int:
    catalog = _catalog(settings)
    if args.format == "md":
        from .catalog_docs import render_markdown

        sys.stdout.write(render_markdown(catalog))
        return EXIT_OK
    rows = [{"id": c.id, "title": c.title, "severity": c.severity, "resourceTypes": sorted(c.resource_types),
             "frameworks": {k: list(v) for k, v in c.frameworks.items()},
             "policyDefinitionId": c.policy_definition_id, "related": c.related.spec.key if c.related else None,
             "parameters": dict(c.parameters), "source": c.source} for c in catalog.controls]
    json.dump(rows, sys.stdout, indent=2, default=str)
    print()
    return EXIT_OK


# ------------------------------------------------------------------ report


def cmd_report(args: argparse.Namespace, settings: Settings) -> int:
    from datetime import datetime, timezone

    from .report import build_report, render_html, render_markdown

    if settings.state_store == "memory" or not (settings.state_connection_string or settings.state_table_service_uri):
        raise ConfigurationError("report reads the state table: set STATE_STORAGE__connectionString or "
                                 "STATE_STORAGE__tableServiceUri (an in-memory store is always empty)")
    store = _store_for_cli(settings)
    posture_history = getattr(store, "posture_history", None)  # snapshots, where the store keeps them
    history = list(posture_history()) if callable(posture_history) else []
    report = build_report(store.states(), _catalog(settings), datetime.now(timezone.utc), history)
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


# ------------------------------------------------------------------ main


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m shared", description="Event-driven Azure compliance monitor.")
    parser.add_argument("-v", "--verbose", action="store_true", help="log progress to stderr")
    sub = parser.add_subparsers(dest="command", required=True)
    ev = sub.add_parser("evaluate", help="evaluate ARM resource JSON files against the controls")
    ev.add_argument("paths", nargs="+", metavar="PATH",
                    help='JSON file: an ARM resource, a list of them, {"value": [...]} or {"data": [...]}')
    ev.add_argument("--format", choices=("table", "json"), default="table")
    rp = sub.add_parser("replay", help="run Event Grid events through the monitor and print the findings")
    rp.add_argument("events", metavar="EVENTS", help="JSON array or JSON lines of events (either schema)")
    rp.add_argument("--resources", metavar="FILE", help="ARM resources that answer the ARM reads (others are gone)")
    ip = sub.add_parser("import-policy", help="turn Azure Policy definitions and initiatives into control files")
    ip.add_argument("files", nargs="+", metavar="PATH",
                    help="policy definition or policy set (initiative) JSON: one, a list, {\"value\": [...]}, "
                         "or a folder of them (searched recursively)")
    ip.add_argument("--out", default="imported-controls", metavar="DIR",
                    help="folder for the control files (default: %(default)s); templates go to DIR/templates")
    ip.add_argument("--severity", choices=("Critical", "High", "Medium", "Low"), default="Medium",
                    help="severity of the imported controls (default: %(default)s)")
    ip.add_argument("--prefix", default="", help="prefix for the control ids, e.g. 'corp-'")
    ip.add_argument("--parameters", action="append", metavar="FILE",
                    help="parameter values in the shape of an assignment's parameters: {\"name\": {\"value\": ...}}")
    ip.add_argument("-p", "--param", action="append", metavar="NAME=VALUE",
                    help="one parameter value (JSON when it parses, else a string); repeatable")
    ip.add_argument("--enable-disabled", action="store_true",
                    help="import definitions whose effect is Disabled with their first auditable allowed effect")
    ip.add_argument("--definitions", action="append", metavar="DIR",
                    help="where an initiative's member definitions are looked up (not imported themselves)")
    ip.add_argument("--from-arm", action="store_true",
                    help="read member definitions and unknown aliases from ARM (needs Azure credentials)")
    ip.add_argument("--parameters-template", metavar="FILE",
                    help="write sample values for every parameter a template still needs, to fill in")
    ip.add_argument("--check", action="store_true", help="convert and report only; write no file")
    al = sub.add_parser("aliases", help="the Azure Policy alias snapshot: look up, or refresh from ARM")
    als = al.add_subparsers(dest="action", required=True)
    alr = als.add_parser("refresh", help="rewrite the snapshot from a live tenant's provider metadata")
    alr.add_argument("--out", default=None, metavar="FILE",
                     help="file to write (default: the shipped shared/data/policy-aliases.csv.gz)")
    alg = als.add_parser("show", help="print the JSON path of aliases")
    alg.add_argument("names", nargs="+", metavar="ALIAS")
    ex = sub.add_parser("exempt", help="accept a risk: add, list or remove exemptions (Table Storage)")
    exs = ex.add_subparsers(dest="action", required=True)
    ea = exs.add_parser("add", help="exempt a subscription, resource group or resource (optionally one control)")
    ea.add_argument("--scope", required=True, help="/subscriptions/<id>[/resourceGroups/<rg>[/providers/...]]")
    ea.add_argument("--control", help="one control id (default: every control)")
    ea.add_argument("--justification", required=True, help="why the risk is accepted")
    ea.add_argument("--requester", required=True, help="who asked for it")
    ea.add_argument("--expires", help="ISO-8601 date or time (at most 366 days ahead)")
    ea.add_argument("--days", type=int, help="expires this many days from now")
    el = exs.add_parser("list", help="list active exemptions")
    el.add_argument("--scope", help="only exemptions at or below this scope")
    el.add_argument("--all", action="store_true", help="include expired ones")
    el.add_argument("--format", choices=("table", "json"), default="table")
    er = exs.add_parser("remove", help="remove an exemption by id")
    er.add_argument("id")
    cg = sub.add_parser("catalog", help="list the loaded controls (built-in and custom)")
    cg.add_argument("--format", choices=("json", "md"), default="json")
    rt = sub.add_parser("report", help="posture report from the state table (Markdown or one HTML file)")
    rt.add_argument("--format", choices=("md", "html"), default="md")
    rt.add_argument("--out", metavar="FILE", help="write the report to FILE (default: stdout)")
    dm = sub.add_parser("demo", help="replay a realistic scenario against Azurite and print the timeline")
    dm.add_argument("--findings", metavar="PATH", default="out/demo-findings.jsonl",
                    help="JSON-lines file the findings are written to (default: %(default)s)")
    dm.add_argument("--scenario", metavar="FILE", help="scenario file (default: the bundled one)")
    return parser


def main(argv: Iterable[str] | None = None) -> int:
    args = build_parser().parse_args(list(argv) if argv is not None else None)
    logging.basicConfig(level=logging.INFO if args.verbose else logging.WARNING, stream=sys.stderr,
                        format="%(levelname)s %(name)s: %(message)s")
    logging.getLogger("azure").setLevel(logging.WARNING)
    try:
        settings = Settings.from_env()
        if args.command == "demo":
            from .demo import run_demo

            return run_demo(args, settings)
        commands = {"evaluate": cmd_evaluate, "replay": cmd_replay, "import-policy": cmd_import_policy,
                    "aliases": cmd_aliases,
                    "catalog": cmd_catalog, "exempt": cmd_exempt, "report": cmd_report}
        return commands[args.command](args, settings)
    except (InputError, ControlLoadError, ConfigurationError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return EXIT_BAD_INPUT
    except BrokenPipeError:  # output piped into head & co.
        os._exit(EXIT_OK)
