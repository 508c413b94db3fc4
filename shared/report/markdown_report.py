"""The posture report as Markdown: headings, tables, the summary and the glossary.

Code rather than a template, unlike the HTML: Markdown has no autoescape, and ``_md_table`` escapes
every cell it is given where a template would need a filter on each text cell by hand; and the output
is lines whose blank lines matter, which Jinja's whitespace control makes fiddly to hold.
"""
from __future__ import annotations

from typing import Iterable, Sequence

from .model import HISTORY_ROWS_SHOWN, NO_OWNER, NO_TEAM, ROWS_SHOWN, OpenFinding, Posture, Report
from .words import GLOSSARY, age, day, framework_name, pct, summary_text, utc_time

_MD_SPECIAL = set("\\`*_[]<>|#")


def _md(value: object) -> str:
    text = " ".join(str(value).split())  # no line breaks inside a table cell
    return "".join("\\" + ch if ch in _MD_SPECIAL else ch for ch in text)


def _md_table(headers: Sequence[str], rows: Iterable[Sequence[object]], right: Sequence[int] = ()) -> list[str]:
    lines = ["| " + " | ".join(headers) + " |",
             "|" + "|".join("---:" if i in right else "---" for i in range(len(headers))) + "|"]
    lines += ["| " + " | ".join(_md(c) for c in row) + " |" for row in rows]
    return lines


def _posture_rows(postures: Iterable[Posture]) -> list[list[object]]:
    return [[p.name, p.resources, p.open, p.overdue, p.exempt, p.compliant, pct(p.compliance_percent)]
            for p in postures]


_POSTURE_HEADERS = ("Resources", "Open", "Past due", "Exempt", "Compliant", "Compliance")


def _finding_rows(findings: Sequence[OpenFinding]) -> list[list[object]]:
    return [[f.resource_id, f.control_id, f.evidence_text, f.severity, f.owner or NO_OWNER, f.team or NO_TEAM,
             age(f.age_days), day(f.due), "" if f.overdue_days is None else age(f.overdue_days)] for f in findings]


_FINDING_HEADERS = ("Resource", "Control", "Evidence", "Severity", "Owner", "Team", "Open (days)", "Due",
                    "Past due (days)")


def render_markdown(report: Report) -> str:
    t = report.totals
    out = ["# Azure compliance report", "", f"Generated {utc_time(report.generated_at)}.", "",
           summary_text(report, _md), "", "## At a glance", ""]
    out += _md_table(("Measure", "Value"), [
        ("Resources", f"{t.resources:,}"), ("Subscriptions", f"{t.subscriptions:,}"),
        ("Checks decided", f"{t.evaluated:,}"), ("Passing (compliant)", f"{t.compliant:,}"),
        ("Open findings", f"{t.open:,}"), ("Past due", f"{t.overdue:,}"),
        ("Accepted risks (exempt)", f"{t.exempt:,}"), ("Not evaluated", f"{t.not_evaluated:,}"),
        ("Compliance", pct(t.compliance_percent)), ("Deleted resources (not counted)", f"{t.deleted_resources:,}"),
    ], right=(1,))
    out += ["", "## Open findings by severity", ""]
    out += _md_table(("Severity", "Open", "Past due", "Exempt", "Compliant", "Compliance"),
                     [[p.name, p.open, p.overdue, p.exempt, p.compliant, pct(p.compliance_percent)]
                      for p in report.by_severity.values()], right=(1, 2, 3, 4, 5))
    out += ["", f"## Past due findings ({len(report.overdue):,})", ""]
    if report.overdue:
        out += _md_table(_FINDING_HEADERS, _finding_rows(report.overdue[:ROWS_SHOWN]), right=(6, 8))
        if len(report.overdue) > ROWS_SHOWN:
            out += ["", f"...and {len(report.overdue) - ROWS_SHOWN:,} more."]
    else:
        out.append("None.")
    out += ["", "## Oldest open findings", ""]
    out += _md_table(_FINDING_HEADERS, _finding_rows(report.oldest_open), right=(6, 8)) if report.oldest_open \
        else ["None."]
    for title, label, groups in (("By team", "Team", report.by_team), ("By owner", "Owner", report.by_owner),
                                 ("By subscription", "Subscription", report.by_subscription)):
        out += ["", f"## {title}", ""]
        out += _md_table((label, *_POSTURE_HEADERS), _posture_rows(list(groups.values())[:ROWS_SHOWN]),
                         right=(1, 2, 3, 4, 5, 6)) if groups else ["None."]
    out += ["", "## By control", ""]
    out += _md_table(("Control", "Title", "Severity", "Open", "Past due", "Exempt", "Compliant", "Compliance"),
                     [[c.name, c.title, c.severity, c.open, c.overdue, c.exempt, c.compliant,
                       pct(c.compliance_percent)] for c in report.by_control.values()],
                     right=(3, 4, 5, 6, 7)) if report.by_control else ["None."]
    out += ["", "## By framework", ""]
    if not report.frameworks:
        out.append("None of the controls that applied names a framework reference.")
    for fw in report.frameworks:
        out += [f"### {framework_name(fw.name)}: {fw.passing:,} of {len(fw.controls):,} control reference(s) pass, "
                f"{fw.failing:,} fail", ""]
        out += _md_table(("Reference", "Control", "Severity", "Pass", "Fail", "Exempt", "Not evaluated"),
                         [[i.reference, i.control.name, i.control.severity, i.control.compliant, i.control.open,
                           i.control.exempt, i.control.not_evaluated] for i in fw.controls], right=(3, 4, 5, 6))
        out.append("")
    out += ["", f"## Not evaluated ({report.not_evaluated_total:,})", ""]
    out += _md_table(("Resource", "Control", "Why"), [[n.resource_id, n.control_id, n.reason]
                                                      for n in report.not_evaluated]) if report.not_evaluated \
        else ["None."]
    if report.not_evaluated_total > len(report.not_evaluated):
        out += ["", f"...and {report.not_evaluated_total - len(report.not_evaluated):,} more."]
    out += ["", "## Compliance over time", ""]
    if report.history:
        shown = report.history[-HISTORY_ROWS_SHOWN:]
        if len(shown) < len(report.history):
            out += [f"The last {len(shown)} of {len(report.history):,} snapshots.", ""]
        out += _md_table(("Time", "Compliance", "Open", "Exempt"),
                         [[utc_time(p.at), pct(p.compliance_percent), p.open, p.exempt] for p in shown],
                         right=(1, 2, 3))
    else:
        out.append("No posture snapshots recorded yet (the reconciliation records one per run).")
    out += ["", "## How to read this report", ""]
    out += [f"- **{term}**: {text}" for term, text in GLOSSARY]
    return "\n".join(out) + "\n"
