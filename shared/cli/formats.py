"""What ``evaluate`` writes: a table, JSON, SARIF 2.1.0 (as GitHub code scanning reads it), JUnit XML or
CSV, from the same rows. Pure: rows, the controls they name and where each resource is written in.

A row is ``results_as_json``'s (``resourceId``, ``controlId``, ``title``, ``severity``, ``status``,
``evidence``, ``reason``) or ``evaluate --assignments``'s, which carries the assignment's ids too.
"""
from __future__ import annotations

import csv
import io
import json
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Iterable, Mapping

FORMATS = ("table", "json", "sarif", "junit", "csv")
SEVERITIES = ("Low", "Medium", "High", "Critical")
# GitHub code scanning reads properties.security-severity: over 9.0 critical, 7.0 to 8.9 high, 4.0 to 6.9
# medium, 0.1 to 3.9 low.
SECURITY_SEVERITY = {"Critical": "9.5", "High": "8.0", "Medium": "5.5", "Low": "3.0"}
LEVEL = {"Critical": "error", "High": "error", "Medium": "warning", "Low": "note"}
SARIF_SCHEMA = "https://json.schemastore.org/sarif-2.1.0.json"


@dataclass(frozen=True)
class Location:
    """Where a resource is declared: the file given and the line of its object (1-based)."""

    path: str
    line: int = 1


def locate(text: str, resource_ids: Iterable[str]) -> dict[str, int]:
    """The line of each resource's ``"id": "..."`` in the JSON text (1 when not found)."""
    lines = {}
    for rid in resource_ids:
        found = re.search(r'"id"\s*:\s*"' + re.escape(rid).replace("/", r"(?:/|\\/)") + '"', text)
        lines[rid] = text.count("\n", 0, found.start()) + 1 if found else 1
    return lines


def _meta(control: Any) -> dict[str, Any]:
    """What rows and reports say about a control beyond its verdict (remediation, frameworks)."""
    if control is None:
        return {}
    out: dict[str, Any] = {}
    if getattr(control, "remediation", None):
        out["remediation"] = dict(control.remediation)
    if getattr(control, "frameworks", None):
        out["frameworks"] = {k: list(v) for k, v in control.frameworks.items()}
    return out


def enriched(rows: list[dict], controls: Mapping[str, Any], locations: Mapping[str, Location]) -> list[dict]:
    """Rows with remediation, framework references and the file and line of the resource."""
    out = []
    for row in rows:
        extra = _meta(controls.get(row["controlId"]))
        where = locations.get(str(row["resourceId"]).lower())
        if where is not None:
            extra.update(file=where.path, line=where.line)
        out.append({**row, **extra})
    return out


def evidence_summary(row: Mapping[str, Any], width: int = 60) -> str:
    """The evidence that decided a non-compliant row, short: ``path=actual`` of the matching items."""
    if row.get("status") != "NonCompliant":
        return ""
    parts = []
    for item in row.get("evidence") or []:
        if isinstance(item, Mapping) and isinstance(item.get("matched"), list):  # a count: the elements that match
            paths = [str(m.get("path")) for m in item["matched"] if isinstance(m, Mapping) and m.get("path")]
            if paths:
                parts.append(f"{', '.join(paths[:3])}{' ...' if len(paths) > 3 else ''} match")
            continue
        if isinstance(item, Mapping) and item.get("result") is not False and ("path" in item or "field" in item):
            if str(item.get("path") or item.get("field")) == "type":
                continue
            parts.append(f"{item.get('path') or item.get('field')}={json.dumps(item.get('actual'), default=str)}")
    text = "; ".join(parts)
    return text if len(text) <= width else text[: width - 3] + "..."


def table(rows: list[dict]) -> str:
    headers = ("RESOURCE", "CONTROL", "SEVERITY", "STATUS", "EVIDENCE", "REASON")  # REASON: why NotEvaluated
    data = [(r["resourceId"].rsplit("/", 1)[-1], r["controlId"], r["severity"], r["status"], evidence_summary(r),
             " ".join(str(r.get("reason") or "").split())) for r in rows]
    widths = [max([len(h)] + [len(d[i]) for d in data]) for i, h in enumerate(headers)]
    line = lambda cells: "  ".join(c.ljust(w) for c, w in zip(cells, widths)).rstrip()  # noqa: E731
    return "\n".join([line(headers), *(line(d) for d in data)]) + "\n"


def csv_text(rows: list[dict]) -> str:
    columns = ("resourceId", "controlId", "title", "severity", "status", "reason", "evidence", "file", "line",
               "frameworks", "policyAssignmentId", "policyDefinitionReferenceId")
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    writer.writerow(columns)
    for r in rows:
        frameworks = " ".join(f"{k}:{ref}" for k, refs in (r.get("frameworks") or {}).items() for ref in refs)
        writer.writerow([r.get("resourceId", ""), r["controlId"], r.get("title", ""), r.get("severity", ""),
                         r["status"], r.get("reason") or "", json.dumps(r.get("evidence") or [], default=str),
                         r.get("file", ""), r.get("line", ""), frameworks, r.get("policyAssignmentId", ""),
                         r.get("policyDefinitionReferenceId", "")])
    return buffer.getvalue()


def _rule(control_id: str, row: Mapping[str, Any], control: Any) -> dict[str, Any]:
    severity = row.get("severity") or "Medium"
    title = row.get("title") or control_id
    description = (getattr(control, "description", "") or title).strip()
    remediation = dict(getattr(control, "remediation", None) or {})
    help_text = remediation.get("text") or f"Make the resource meet: {title}."
    markdown = [f"**{title}**", "", description, "", f"Remediation: {help_text}"]
    for key in ("az", "bicep", "powershell"):
        if remediation.get(key):
            markdown += ["", f"{key}: `{remediation[key]}`"]
    tags = ["security", "azure", f"severity:{severity.lower()}"]
    tags += [f"{k}:{ref}" for k, refs in (getattr(control, "frameworks", None) or {}).items() for ref in refs]
    rule: dict[str, Any] = {
        "id": control_id, "name": "".join(p.capitalize() for p in re.split(r"[^A-Za-z0-9]+", control_id) if p),
        "shortDescription": {"text": title}, "fullDescription": {"text": description},
        "help": {"text": help_text, "markdown": "\n".join(markdown)},
        "defaultConfiguration": {"level": LEVEL.get(severity, "warning")},
        "properties": {"security-severity": SECURITY_SEVERITY.get(severity, "5.5"), "tags": tags,
                       "precision": "very-high", "problem.severity": LEVEL.get(severity, "warning")}}
    policy = getattr(control, "policy_definition_id", None) or row.get("policyDefinitionId")
    if policy:
        rule["helpUri"] = "https://portal.azure.com/#view/Microsoft_Azure_Policy/PolicyDetailBlade/definitionId/" + \
            policy.replace("/", "%2F")
    return rule


def sarif(rows: list[dict], controls: Mapping[str, Any], version: str, base: Path | None = None) -> dict[str, Any]:
    """One run: a rule per control that gave a row, a result per non-compliant (resource, control)."""
    rules: dict[str, dict] = {}
    for row in rows:
        if row["controlId"] not in rules:
            rules[row["controlId"]] = _rule(row["controlId"], row, controls.get(row["controlId"]))
    index = {cid: i for i, cid in enumerate(rules)}
    results = []
    for row in rows:
        if row["status"] != "NonCompliant":
            continue
        location: dict[str, Any] = {"logicalLocations": [{"fullyQualifiedName": row["resourceId"],
                                                          "kind": "resource"}]}
        if row.get("file"):
            uri = Path(row["file"])
            if base is not None:
                try:
                    uri = uri.resolve().relative_to(base.resolve())
                except ValueError:
                    pass
            location["physicalLocation"] = {"artifactLocation": {"uri": uri.as_posix()},
                                            "region": {"startLine": int(row.get("line") or 1)}}
        evidence = evidence_summary(row, width=300)
        message = f"{row['resourceId']}: {row.get('title') or row['controlId']}" + (f" ({evidence})" if evidence else "")
        if row.get("nonComplianceMessage"):
            message += f" {row['nonComplianceMessage']}"
        results.append({"ruleId": row["controlId"], "ruleIndex": index[row["controlId"]],
                        "level": LEVEL.get(row.get("severity") or "Medium", "warning"),
                        "message": {"text": message}, "locations": [location],
                        "partialFingerprints": {"resourceControl/v1": f"{row['resourceId'].lower()}|{row['controlId']}"},
                        "properties": {"resourceId": row["resourceId"], "evidence": row.get("evidence") or []}})
    return {"$schema": SARIF_SCHEMA, "version": "2.1.0", "runs": [{
        "tool": {"driver": {"name": "azure-compliance-monitor", "version": version, "semanticVersion": version,
                            "rules": list(rules.values())}},
        "results": results, "columnKind": "unicodeCodePoints"}]}


_NOT_XML = re.compile("[^\x09\x0a\x0d\x20-\ud7ff\ue000-\ufffd\U00010000-\U0010ffff]")


def _xml(text: Any) -> str:
    """Text XML 1.0 can hold: characters it forbids (controls from a resource's values) become U+FFFD."""
    return _NOT_XML.sub("\ufffd", str(text))


def junit(rows: list[dict]) -> str:
    """One test suite per control, one test case per resource: a failure when non-compliant, skipped when
    not evaluated (with the reason)."""
    import xml.etree.ElementTree as ET

    suites = ET.Element("testsuites", name="azure-compliance-monitor")
    by_control: dict[str, list[dict]] = {}
    for row in rows:
        by_control.setdefault(row["controlId"], []).append(row)
    for control_id, items in by_control.items():
        suite = ET.SubElement(suites, "testsuite", name=_xml(control_id), tests=str(len(items)),
                              failures=str(sum(r["status"] == "NonCompliant" for r in items)),
                              skipped=str(sum(r["status"] == "NotEvaluated" for r in items)), errors="0")
        for row in items:
            case = ET.SubElement(suite, "testcase", classname=_xml(control_id), name=_xml(row["resourceId"]))
            if row.get("file"):
                case.set("file", _xml(row["file"]))
                case.set("line", str(row.get("line") or 1))
            if row["status"] == "NonCompliant":
                failure = ET.SubElement(case, "failure", type=_xml(row.get("severity") or "Medium"),
                                        message=_xml(row.get("title") or control_id))
                failure.text = _xml(json.dumps(row.get("evidence") or [], default=str, indent=1, ensure_ascii=False))
            elif row["status"] == "NotEvaluated":
                ET.SubElement(case, "skipped", message=_xml(row.get("reason") or "not evaluated"))
    tree = ET.ElementTree(suites)
    ET.indent(tree)
    buffer = io.BytesIO()
    tree.write(buffer, encoding="utf-8", xml_declaration=True)
    return buffer.getvalue().decode("utf-8") + "\n"
