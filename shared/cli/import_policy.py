"""``python -m shared import-policy``: Azure Policy definitions and initiatives into control files."""
from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any

from ..config import Settings
from .inputs import EXIT_BAD_INPUT, EXIT_FINDINGS, EXIT_OK, InputError, json_documents, read_json

HELP = "turn Azure Policy definitions and initiatives into control files"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("files", nargs="+", metavar="PATH",
                        help="policy definition or policy set (initiative) JSON: one, a list, {\"value\": [...]}, "
                             "or a folder of them (searched recursively)")
    parser.add_argument("--out", default="imported-controls", metavar="DIR",
                        help="folder for the control files (default: %(default)s); templates go to DIR/templates")
    parser.add_argument("--severity", choices=("Critical", "High", "Medium", "Low"), default="Medium",
                        help="severity of the imported controls (default: %(default)s)")
    parser.add_argument("--prefix", default="", help="prefix for the control ids, e.g. 'corp-'")
    parser.add_argument("--parameters", action="append", metavar="FILE",
                        help="parameter values in the shape of an assignment's parameters: "
                             "{\"name\": {\"value\": ...}}")
    parser.add_argument("-p", "--param", action="append", metavar="NAME=VALUE",
                        help="one parameter value (JSON when it parses, else a string); repeatable")
    parser.add_argument("--enable-disabled", action="store_true",
                        help="import definitions whose effect is Disabled with their first auditable allowed effect")
    parser.add_argument("--definitions", action="append", metavar="DIR",
                        help="where an initiative's member definitions are looked up (not imported themselves)")
    parser.add_argument("--from-arm", action="store_true",
                        help="read member definitions and unknown aliases from ARM (needs Azure credentials)")
    parser.add_argument("--parameters-template", metavar="FILE",
                        help="write sample values for every parameter a template still needs, to fill in")
    parser.add_argument("--accept-samples", action="store_true",
                        help="use a --parameters file that still holds the sample values --parameters-template wrote")
    parser.add_argument("--check", action="store_true", help="convert and report only; write no file")


def _assignment_values(args: argparse.Namespace) -> dict[str, Any]:
    from ..policy.importing import UnusableInput, parameter_values, parse_assignment

    values: dict[str, Any] = {}
    try:
        for path in args.parameters or []:
            values.update(parameter_values(read_json(path), path, accept_samples=args.accept_samples))
        for text in args.param or []:
            name, value = parse_assignment(text)
            values[name] = value
    except UnusableInput as exc:
        raise InputError(str(exc)) from None
    return values


def _plain_dumper():
    import yaml

    class PlainDumper(yaml.SafeDumper):
        """Writes a value shared by several keys out in full each time: no &anchors and *aliases,
        which readers of the file would have to follow by hand."""

        def ignore_aliases(self, data):
            return True

    return PlainDumper


def run(args: argparse.Namespace, settings: Settings) -> int:
    import yaml

    from ..catalog import alias_resolver
    from ..policy.importing import (DELEGATED, IMPORTED, REFUSED, TEMPLATE, DefinitionLibrary, import_documents,
                                    samples_document)

    values = _assignment_values(args)
    remote_aliases = remote_definitions = None
    if args.from_arm:
        from ..bootstrap import build_alias_source_once, build_policy_definition_source

        remote_aliases, remote_definitions = build_alias_source_once(settings), build_policy_definition_source(settings)
    resolver = alias_resolver(alias_fallback=remote_aliases)
    library = DefinitionLibrary(remote=remote_definitions)
    library_docs, library_unusable = json_documents(args.definitions or [])
    for origin, doc in library_docs:
        for item in (doc.get("value") if isinstance(doc, dict) and isinstance(doc.get("value"), list)
                     else doc if isinstance(doc, list) else [doc]):
            if isinstance(item, dict):
                library.add(origin, item)
    docs, unusable = json_documents(args.files)
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
    dumper = _plain_dumper()
    if unusable and not outcomes:  # nothing could be read: a usage error, said once, with no summary
        raise InputError("; ".join(unusable))
    out_dir = Path(args.out)
    samples: dict[str, Any] = {}
    for o in outcomes:
        if o.status == REFUSED:
            print(f"refused   {o.name} ({o.origin}): {o.reason}")
            continue
        if o.status == TEMPLATE:
            samples.update(o.samples)
            print(f"template  {o.name} ({o.origin}): needs a value for {', '.join(o.missing)}"
                  + (f" ({o.reason})" if o.reason else ""))
        if args.check:
            continue
        target = (out_dir / "templates" if o.status == TEMPLATE else out_dir) / f"{o.control['id']}.yaml"
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_text(yaml.dump(o.control, Dumper=dumper, sort_keys=False, allow_unicode=True, width=100),
                          encoding="utf-8")
        if o.status == IMPORTED:
            print(f"wrote {target} ({o.control['id']}, {o.control['severity']}, {', '.join(o.control['resourceTypes'])})")
        if o.status == DELEGATED:
            print(f"wrote {target} ({o.control['id']}, {o.control['severity']}, "
                  f"{', '.join(o.control['resourceTypes'])}; verdict from Azure Policy's compliance states)")
    for message in unusable:
        print(f"error: {message}", file=sys.stderr)
    if args.parameters_template and samples:
        Path(args.parameters_template).write_text(json.dumps(samples_document(samples), indent=2) + "\n",
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
    print(f"imported {imported} of {len(outcomes)} definitions ({imported - templates - delegated} judged out of the "
          f"box, {templates} templates judged once parameters are given, "
          + (f"{delegated} delegated to Azure Policy, " if delegated else "") + f"{refused} refused)")
    if unusable:
        return EXIT_BAD_INPUT
    return EXIT_FINDINGS if refused else EXIT_OK
