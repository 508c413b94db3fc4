"""Words shared by both formats: how a figure, a count or a date is written, the summary, the glossary.

The HTML templates use these as filters (``shared.report.templating``); the Markdown uses them directly.
"""
from __future__ import annotations

from datetime import datetime, timezone
from typing import Callable

from .model import Report


def pct(value: float | None) -> str:
    return "n/a" if value is None else f"{value:.1f}%"


def thousands(n: int) -> str:
    return f"{n:,}"


def plural(n: int, one: str, many: str | None = None) -> str:
    return f"{n:,} {one if n == 1 else (many or one + 's')}"


def age(days: int | None) -> str:
    if days is None:
        return "?"
    return "<1" if days < 1 else str(days)


def day(value: datetime | None) -> str:
    return value.strftime("%Y-%m-%d") if value else ""


def utc_time(value: datetime) -> str:
    return value.astimezone(timezone.utc).strftime("%Y-%m-%d %H:%M UTC")


FRAMEWORK_NAMES = {"cis": "CIS Microsoft Azure Foundations Benchmark", "mcsb": "Microsoft cloud security benchmark",
                   "nist": "NIST SP 800-53", "iso27001": "ISO 27001", "pci": "PCI DSS"}


def framework_name(key: str) -> str:
    return FRAMEWORK_NAMES.get(key.lower(), key.upper())


def short(text: str, limit: int) -> str:
    return text if len(text) <= limit else text[: limit - 1] + "\u2026"


def summary_text(report: Report, esc: Callable[[str], str] = str) -> str:
    """One paragraph in words; ``esc`` escapes the untrusted parts (names of resources and teams)."""
    t = report.totals
    if not t.resources:
        return ("The state store holds no live resources yet, so nothing can be reported: the monitor records a "
                "resource the first time an event or a reconciliation evaluates it.")
    parts = [f"This report covers {plural(t.resources, 'Azure resource')} in "
             f"{plural(t.subscriptions, 'subscription')}, checked against "
             f"{plural(report.controls_applied, 'security control')} that apply to them (of "
             f"{report.controls_in_catalog:,} in the catalog), as recorded by the compliance monitor "
             f"at {utc_time(report.generated_at)}."]
    if t.evaluated:
        parts.append(f"{pct(t.compliance_percent)} of the {plural(t.evaluated, 'check')} that could be decided "
                     f"pass.")
    if t.open:
        by_sev = ", ".join(f"{p.open:,} {name}" for name, p in report.by_severity.items() if p.open)
        parts.append(f"{plural(t.open, 'finding is', 'findings are')} open ({by_sev}); "
                     f"{t.overdue:,} of them {'is' if t.overdue == 1 else 'are'} past the date by which "
                     f"{'it' if t.overdue == 1 else 'they'} should have been fixed.")
    else:
        parts.append("No finding is open.")
    if t.exempt:
        parts.append(f"{plural(t.exempt, 'finding is an accepted risk', 'findings are accepted risks')} "
                     f"(exempt, with a recorded justification and expiry date).")
    if t.not_evaluated:
        parts.append(f"{plural(t.not_evaluated, 'check')} could not be decided (not evaluated).")
    if report.oldest_open:
        f = report.oldest_open[0]
        parts.append(f"The oldest open finding, \u201c{esc(f.title)}\u201d on {esc(f.resource_name)}, has been "
                     f"open for {plural(f.age_days or 0, 'day')}.")
    worst = next((p for p in report.by_team.values() if p.open), None)
    if worst is not None and len(report.by_team) > 1:
        parts.append(f"The team with the most open findings is {esc(worst.name)} ({worst.open:,}).")
    return " ".join(parts)


GLOSSARY = (
    ("Resource", "one thing running in Azure: a storage account, a network security group, a key vault, ..."),
    ("Control", "a security rule a resource must follow, such as \u201cstorage accounts accept HTTPS only\u201d."),
    ("Check", "one control applied to one resource. It is compliant (passes), non-compliant (an open "
              "finding), exempt, or not evaluated (it could not be decided)."),
    ("Open finding", "a check that fails today and must be fixed."),
    ("Severity", "how much harm the failure can do: Critical, High, Medium or Low."),
    ("Due date", "when an open finding must be fixed, set by its severity (Critical 1 day, High 7, Medium 30, "
                 "Low 90 unless configured otherwise). Past due means the date has passed."),
    ("Exempt", "a failing check accepted as a risk by someone accountable, with a justification and an expiry."),
    ("Compliance", "passing checks as a share of all decided checks (exempt ones count as not passing)."),
)
