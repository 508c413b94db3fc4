"""``python -m shared catalog``: the loaded controls as JSON, or as the Markdown of docs/CONTROLS.md."""
from __future__ import annotations

import argparse
import json
import sys
from collections import Counter, defaultdict
from pathlib import Path

from ..catalog import BUILTIN_DIR, SEVERITIES, Catalog
from ..config import Settings
from .inputs import EXIT_OK, catalog_from_settings

HELP = "list the loaded controls (built-in and custom)"
HEADER = """# Built-in controls

Generated from `shared/controls/` by `make docs` (`python -m shared catalog --format md`);
a test fails when this file is stale. Each control is one YAML file whose `rule`
is an Azure Policy `policyRule.if` condition (true = non-compliant); controls
marked *related* also read a child or extension resource, in the manner of an
`auditIfNotExists` policy. CIS numbers refer to the CIS Microsoft Azure
Foundations Benchmark v3.0, MCSB ids to the Microsoft cloud security benchmark.
"""


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--format", choices=("json", "md"), default="json")


def run(args: argparse.Namespace, settings: Settings) -> int:
    catalog = catalog_from_settings(settings)
    if args.format == "md":
        sys.stdout.write(catalog_markdown(catalog))
        return EXIT_OK
    rows = [{"id": c.id, "title": c.title, "severity": c.severity, "resourceTypes": sorted(c.resource_types),
             "frameworks": {k: list(v) for k, v in c.frameworks.items()},
             "policyDefinitionId": c.policy_definition_id, "related": c.related.spec.key if c.related else None,
             "parameters": dict(c.parameters), "source": c.source} for c in catalog.controls]
    json.dump(rows, sys.stdout, indent=2, default=str)
    print()
    return EXIT_OK


def _cell(text: str) -> str:
    return " ".join(str(text).split()).replace("|", "\\|")


def catalog_markdown(catalog: Catalog) -> str:
    """The catalog as Markdown: a table per resource type, then each control's details. Pure."""
    controls = catalog.controls
    by_type: dict[str, list] = defaultdict(list)
    for control in controls:
        for rtype in sorted(control.resource_types):
            by_type[rtype].append(control)
    names = {t: next((rt for c in controls for rt in _declared(c) if rt.lower() == t), t) for t in by_type}
    severities = Counter(c.severity for c in controls)
    lines = [HEADER,
             f"{len(controls)} controls over {len([t for t in by_type if t != '*'])} resource types "
             f"(plus {len(by_type.get('*', []))} that apply to every resource): "
             + ", ".join(f"{severities[s]} {s}" for s in SEVERITIES if severities[s]) + ".", ""]
    for rtype in sorted(by_type, key=lambda t: (t == "*", names[t].lower())):
        title = "Every resource with a location" if rtype == "*" else f"`{names[rtype]}`"
        lines += [f"## {title}", "", "| id | title | severity | CIS | MCSB | Azure Policy | check |",
                  "|---|---|---|---|---|---|---|"]
        for c in sorted(by_type[rtype], key=lambda c: (SEVERITIES.index(c.severity), c.id)):
            policy = c.policy_definition_id.rsplit("/", 1)[-1] if c.policy_definition_id else ""
            check = f"related: `{c.related.spec.key}`" if c.related else "rule"
            lines.append(f"| `{c.id}` | {_cell(c.title)} | {c.severity} | {', '.join(c.frameworks.get('cis', ()))} | "
                         f"{', '.join(c.frameworks.get('mcsb', ()))} | {policy} | {check} |")
        lines.append("")
    lines += ["## Details", ""]
    for c in sorted(controls, key=lambda c: c.id):
        source = Path(c.source)
        try:
            source = source.relative_to(BUILTIN_DIR.parent.parent)
        except ValueError:
            pass
        lines += [f"### `{c.id}`", "", f"**{_cell(c.title)}** ({c.severity}; `{source}`)", ""]
        if c.description:
            lines += [_cell(c.description), ""]
        if c.parameters:
            lines += ["Parameters: " + ", ".join(f"`{k}` = `{v}`" for k, v in c.parameters.items()), ""]
        if c.remediation:
            lines.append(f"Remediation: {_cell(c.remediation.get('text', ''))}")
            if c.remediation.get("az"):
                lines.append(f"`{_cell(c.remediation['az'])}`")
            lines.append("")
    return "\n".join(lines).rstrip() + "\n"


def _declared(control) -> list[str]:
    import yaml

    doc = yaml.safe_load(Path(control.source).read_text(encoding="utf-8"))
    return list(doc.get("resourceTypes", []))
