"""Posture reports from the stored state: what is open, whose it is, what is overdue. Pure: no I/O.

``build_report`` turns resource states (and, when there are any, posture
snapshots) into a ``Report``; ``render_markdown`` and ``render_html`` turn a
report into text. The HTML is one self-contained file: inline CSS, charts drawn
as inline SVG, no script and no external reference, and every value escaped
(resource ids and tag values, hence owner and team, are untrusted input).

Deleted resources are left out. A control that is no longer in the catalog
(disabled, or its file removed) is still reported, with severity ``Unknown``,
as ``shared.posture.summarize`` counts it.
"""
from __future__ import annotations

import html
from dataclasses import dataclass
from datetime import datetime, timezone
from typing import Callable, Iterable, Mapping, Sequence

from .catalog import Catalog, Status
from .domain.drift import ResourceState
from .domain.posture import PostureSummary
from .domain.resource_ids import InvalidResourceId, parse_resource_id

SEVERITIES = ("Critical", "High", "Medium", "Low")
UNKNOWN_SEVERITY = "Unknown"
NO_TEAM = "(no team)"
NO_OWNER = "(no owner)"
NO_SUBSCRIPTION = "(not a subscription id)"
OLDEST_LIMIT = 20
ROWS_SHOWN = 100  # longest table a renderer prints; the rest is counted, not listed
HISTORY_ROWS_SHOWN = 30


# ---------------------------------------------------------------------------- the report


@dataclass(frozen=True)
class Posture:
    """Status counts of the (resource, control) pairs in one group: a severity, subscription, team or owner."""

    name: str
    resources: int = 0  # live resources with at least one control in the group
    compliant: int = 0
    open: int = 0  # NonCompliant: open findings
    exempt: int = 0  # NonCompliant with an active exemption (accepted risk)
    not_evaluated: int = 0  # never decided (the resource or a related one could not be read)
    overdue: int = 0  # open findings past their due date

    @property
    def evaluated(self) -> int:
        """Pairs with a decided status: Compliant, NonCompliant or Exempt."""
        return self.compliant + self.open + self.exempt

    @property
    def compliance_percent(self) -> float | None:
        """Compliant / (Compliant + NonCompliant + Exempt); None when nothing is decided."""
        return 100.0 * self.compliant / self.evaluated if self.evaluated else None


@dataclass(frozen=True)
class ControlPosture(Posture):
    """``name`` is the control id."""

    title: str = ""
    severity: str = UNKNOWN_SEVERITY

    @property
    def control_id(self) -> str:
        return self.name


@dataclass(frozen=True)
class Totals(Posture):
    deleted_resources: int = 0  # stored but deleted: left out of every other figure
    subscriptions: int = 0

    @property
    def pairs(self) -> int:
        """Every (resource, control) pair of the live resources, decided or not."""
        return self.evaluated + self.not_evaluated


@dataclass(frozen=True)
class OpenFinding:
    """One NonCompliant (resource, control) pair at report time."""

    resource_id: str
    resource_type: str
    subscription: str
    resource_group: str | None
    control_id: str
    title: str
    severity: str
    owner: str | None
    team: str | None
    since: datetime | None  # when it became non-compliant
    due: datetime | None  # when it must be fixed (SLA)
    age_days: int | None  # whole days open at report time
    overdue_days: int | None  # whole days past due; None when not past due

    @property
    def resource_name(self) -> str:
        return self.resource_id.rstrip("/").rsplit("/", 1)[-1]


@dataclass(frozen=True)
class HistoryPoint:
    at: datetime
    compliance_percent: float
    open: int
    exempt: int


@dataclass(frozen=True)
class Report:
    generated_at: datetime
    totals: Totals
    by_severity: Mapping[str, Posture]  # Critical, High, Medium, Low (always), then any other severity
    by_control: Mapping[str, ControlPosture]  # controls with open findings first, by severity
    by_subscription: Mapping[str, Posture]  # most open findings first
    by_team: Mapping[str, Posture]  # state.team or "(no team)"; most open findings first
    by_owner: Mapping[str, Posture]  # state.owner or "(no owner)"; most open findings first
    oldest_open: tuple[OpenFinding, ...]  # the OLDEST_LIMIT longest-open findings, oldest first
    overdue: tuple[OpenFinding, ...]  # every open finding past due, most overdue first
    history: tuple[HistoryPoint, ...] = ()  # compliance over time, oldest first
    controls_in_catalog: int = 0

    @property
    def exempt(self) -> int:
        return self.totals.exempt


# ---------------------------------------------------------------------------- building


class _Group:
    def __init__(self) -> None:
        self.resources: set[str] = set()
        self.counts = {"compliant": 0, "open": 0, "exempt": 0, "not_evaluated": 0, "overdue": 0}

    def add(self, resource_key: str, status: Status | None, overdue: bool) -> None:
        self.resources.add(resource_key)
        key = {Status.COMPLIANT: "compliant", Status.NONCOMPLIANT: "open", Status.EXEMPT: "exempt"}.get(
            status, "not_evaluated")
        self.counts[key] += 1
        self.counts["overdue"] += overdue

    def posture(self, name: str, cls=Posture, **extra) -> Posture:
        return cls(name, len(self.resources), **self.counts, **extra)


def _utc(value: datetime | None) -> datetime | None:
    if value is None:
        return None
    return value if value.tzinfo is not None else value.replace(tzinfo=timezone.utc)


def _rank(severity: str) -> int:
    return SEVERITIES.index(severity) if severity in SEVERITIES else len(SEVERITIES)


def _where(resource_id: str) -> tuple[str, str | None]:
    try:
        rid = parse_resource_id(resource_id)
    except InvalidResourceId:
        return NO_SUBSCRIPTION, None
    return rid.subscription_id.lower(), rid.resource_group


def _by_open(groups: dict[str, _Group]) -> dict[str, Posture]:
    postures = [g.posture(name) for name, g in groups.items()]
    return {p.name: p for p in sorted(postures, key=lambda p: (-p.open, -p.overdue, p.name.lower()))}


_FAR_FUTURE = datetime.max.replace(tzinfo=timezone.utc)


def build_report(states: Iterable[ResourceState], catalog: Catalog, now: datetime,
                 history: Sequence[PostureSummary] = (), *, oldest_limit: int = OLDEST_LIMIT) -> Report:
    """The posture of ``states`` at ``now``; ``history`` (posture snapshots) gives compliance over time."""
    now = _utc(now)
    controls = catalog.by_id()
    total = _Group()
    severity: dict[str, _Group] = {s: _Group() for s in SEVERITIES}
    by_control: dict[str, _Group] = {}
    subscription: dict[str, _Group] = {}
    team: dict[str, _Group] = {}
    owner: dict[str, _Group] = {}
    findings: list[OpenFinding] = []
    deleted = 0
    for state in states:
        if state.deleted:
            deleted += 1
            continue
        key = state.resource_id.lower()
        total.resources.add(key)
        sub, rg = _where(state.resource_id)
        groups = (subscription.setdefault(sub, _Group()), team.setdefault(state.team or NO_TEAM, _Group()),
                  owner.setdefault(state.owner or NO_OWNER, _Group()))
        for cid, cs in state.controls.items():
            control = controls.get(cid)
            sev = control.severity if control else UNKNOWN_SEVERITY
            due = _utc(cs.due)
            is_open = cs.status == Status.NONCOMPLIANT
            overdue = is_open and due is not None and due < now
            for group in (total, severity.setdefault(sev, _Group()), by_control.setdefault(cid, _Group()), *groups):
                group.add(key, cs.status, overdue)
            if is_open:
                since = _utc(cs.since)
                findings.append(OpenFinding(
                    resource_id=state.resource_id, resource_type=state.resource_type, subscription=sub,
                    resource_group=rg, control_id=cid, title=control.title if control else cid, severity=sev,
                    owner=state.owner, team=state.team, since=since, due=due,
                    age_days=(now - since).days if since else None,
                    overdue_days=(now - due).days if overdue else None))

    control_postures = []
    for cid, group in by_control.items():
        control = controls.get(cid)
        control_postures.append(group.posture(cid, ControlPosture, title=control.title if control else cid,
                                              severity=control.severity if control else UNKNOWN_SEVERITY))
    control_postures.sort(key=lambda c: (c.open == 0, _rank(c.severity), -c.open, c.name))

    severity_postures = {s: severity[s].posture(s) for s in sorted(severity, key=lambda s: (_rank(s), s))}
    oldest = sorted(findings, key=lambda f: (f.since or _FAR_FUTURE, _rank(f.severity), f.resource_id.lower(),
                                             f.control_id))[:oldest_limit]
    overdue = sorted((f for f in findings if f.overdue_days is not None),
                     key=lambda f: (f.due, _rank(f.severity), f.resource_id.lower(), f.control_id))
    points = []
    for summary in sorted(history, key=lambda p: _utc(p.at)):
        percent = summary.compliance_percent
        if percent is not None:
            points.append(HistoryPoint(_utc(summary.at), percent, summary.counts.get(Status.NONCOMPLIANT.value, 0),
                                       summary.counts.get(Status.EXEMPT.value, 0)))
    totals = total.posture("all", Totals, deleted_resources=deleted, subscriptions=len(subscription))
    return Report(
        generated_at=now, totals=totals, by_severity=severity_postures,
        by_control={c.name: c for c in control_postures}, by_subscription=_by_open(subscription),
        by_team=_by_open(team), by_owner=_by_open(owner), oldest_open=tuple(oldest), overdue=tuple(overdue),
        history=tuple(points), controls_in_catalog=len(catalog.controls),
    )


# ---------------------------------------------------------------------------- words shared by both formats


def _pct(value: float | None) -> str:
    return "n/a" if value is None else f"{value:.1f}%"


def _plural(n: int, one: str, many: str | None = None) -> str:
    return f"{n:,} {one if n == 1 else (many or one + 's')}"


def _age(days: int | None) -> str:
    if days is None:
        return "?"
    return "<1" if days < 1 else str(days)


def _date(value: datetime | None) -> str:
    return value.strftime("%Y-%m-%d") if value else ""


def _time(value: datetime) -> str:
    return value.astimezone(timezone.utc).strftime("%Y-%m-%d %H:%M UTC")


def summary_text(report: Report, esc: Callable[[str], str] = str) -> str:
    """One paragraph in words; ``esc`` escapes the untrusted parts (names of resources and teams)."""
    t = report.totals
    if not t.resources:
        return ("The state store holds no live resources yet, so nothing can be reported: the monitor records a "
                "resource the first time an event or a reconciliation evaluates it.")
    parts = [f"This report covers {_plural(t.resources, 'Azure resource')} in "
             f"{_plural(t.subscriptions, 'subscription')}, checked against a catalog of "
             f"{_plural(report.controls_in_catalog, 'security control')}, as recorded by the compliance monitor "
             f"at {_time(report.generated_at)}."]
    if t.evaluated:
        parts.append(f"{_pct(t.compliance_percent)} of the {_plural(t.evaluated, 'check')} that could be decided "
                     f"pass.")
    if t.open:
        by_sev = ", ".join(f"{p.open:,} {name}" for name, p in report.by_severity.items() if p.open)
        parts.append(f"{_plural(t.open, 'finding is', 'findings are')} open ({by_sev}); "
                     f"{t.overdue:,} of them {'is' if t.overdue == 1 else 'are'} past the date by which "
                     f"{'it' if t.overdue == 1 else 'they'} should have been fixed.")
    else:
        parts.append("No finding is open.")
    if t.exempt:
        parts.append(f"{_plural(t.exempt, 'finding is an accepted risk', 'findings are accepted risks')} "
                     f"(exempt, with a recorded justification and expiry date).")
    if t.not_evaluated:
        parts.append(f"{_plural(t.not_evaluated, 'check')} could not be decided (not evaluated).")
    if report.oldest_open:
        f = report.oldest_open[0]
        parts.append(f"The oldest open finding, \u201c{esc(f.title)}\u201d on {esc(f.resource_name)}, has been "
                     f"open for {_plural(f.age_days or 0, 'day')}.")
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


# ---------------------------------------------------------------------------- markdown


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
    return [[p.name, p.resources, p.open, p.overdue, p.exempt, p.compliant, _pct(p.compliance_percent)]
            for p in postures]


_POSTURE_HEADERS = ("Resources", "Open", "Past due", "Exempt", "Compliant", "Compliance")


def _finding_rows(findings: Sequence[OpenFinding]) -> list[list[object]]:
    return [[f.resource_id, f.control_id, f.severity, f.owner or NO_OWNER, f.team or NO_TEAM, _age(f.age_days),
             _date(f.due), "" if f.overdue_days is None else _age(f.overdue_days)] for f in findings]


_FINDING_HEADERS = ("Resource", "Control", "Severity", "Owner", "Team", "Open (days)", "Due", "Past due (days)")


def render_markdown(report: Report) -> str:
    t = report.totals
    out = ["# Azure compliance report", "", f"Generated {_time(report.generated_at)}.", "",
           summary_text(report, _md), "", "## At a glance", ""]
    out += _md_table(("Measure", "Value"), [
        ("Resources", f"{t.resources:,}"), ("Subscriptions", f"{t.subscriptions:,}"),
        ("Checks decided", f"{t.evaluated:,}"), ("Passing (compliant)", f"{t.compliant:,}"),
        ("Open findings", f"{t.open:,}"), ("Past due", f"{t.overdue:,}"),
        ("Accepted risks (exempt)", f"{t.exempt:,}"), ("Not evaluated", f"{t.not_evaluated:,}"),
        ("Compliance", _pct(t.compliance_percent)), ("Deleted resources (not counted)", f"{t.deleted_resources:,}"),
    ], right=(1,))
    out += ["", "## Open findings by severity", ""]
    out += _md_table(("Severity", "Open", "Past due", "Exempt", "Compliant", "Compliance"),
                     [[p.name, p.open, p.overdue, p.exempt, p.compliant, _pct(p.compliance_percent)]
                      for p in report.by_severity.values()], right=(1, 2, 3, 4, 5))
    out += ["", f"## Past due findings ({len(report.overdue):,})", ""]
    if report.overdue:
        out += _md_table(_FINDING_HEADERS, _finding_rows(report.overdue[:ROWS_SHOWN]), right=(5, 7))
        if len(report.overdue) > ROWS_SHOWN:
            out += ["", f"...and {len(report.overdue) - ROWS_SHOWN:,} more."]
    else:
        out.append("None.")
    out += ["", "## Oldest open findings", ""]
    out += _md_table(_FINDING_HEADERS, _finding_rows(report.oldest_open), right=(5, 7)) if report.oldest_open \
        else ["None."]
    for title, label, groups in (("By team", "Team", report.by_team), ("By owner", "Owner", report.by_owner),
                                 ("By subscription", "Subscription", report.by_subscription)):
        out += ["", f"## {title}", ""]
        out += _md_table((label, *_POSTURE_HEADERS), _posture_rows(list(groups.values())[:ROWS_SHOWN]),
                         right=(1, 2, 3, 4, 5, 6)) if groups else ["None."]
    out += ["", "## By control", ""]
    out += _md_table(("Control", "Title", "Severity", "Open", "Past due", "Exempt", "Compliant", "Compliance"),
                     [[c.name, c.title, c.severity, c.open, c.overdue, c.exempt, c.compliant,
                       _pct(c.compliance_percent)] for c in report.by_control.values()],
                     right=(3, 4, 5, 6, 7)) if report.by_control else ["None."]
    out += ["", "## Compliance over time", ""]
    if report.history:
        shown = report.history[-HISTORY_ROWS_SHOWN:]
        if len(shown) < len(report.history):
            out += [f"The last {len(shown)} of {len(report.history):,} snapshots.", ""]
        out += _md_table(("Time", "Compliance", "Open", "Exempt"),
                         [[_time(p.at), _pct(p.compliance_percent), p.open, p.exempt] for p in shown],
                         right=(1, 2, 3))
    else:
        out.append("No posture snapshots recorded yet (the reconciliation records one per run).")
    out += ["", "## How to read this report", ""]
    out += [f"- **{term}**: {text}" for term, text in GLOSSARY]
    return "\n".join(out) + "\n"


# ---------------------------------------------------------------------------- HTML


def _e(value: object) -> str:
    return html.escape(str(value), quote=True)


SEVERITY_COLOURS = {"Critical": "#7f1d1d", "High": "#c62828", "Medium": "#b45309", "Low": "#1d5fa8",
                    UNKNOWN_SEVERITY: "#5f6368"}
_SEVERITY_CLASS = {"Critical": "sev-critical", "High": "sev-high", "Medium": "sev-medium", "Low": "sev-low"}
BAR_COLOUR = "#2f5d8a"

_CSS = """
:root { color-scheme: light; }
* { box-sizing: border-box; }
body { margin: 0; font: 15px/1.5 system-ui, -apple-system, "Segoe UI", Roboto, Helvetica, Arial, sans-serif;
       color: #1f2328; background: #f6f7f9; }
main { max-width: 1120px; margin: 0 auto; padding: 24px 20px 48px; }
h1 { font-size: 26px; margin: 0 0 4px; }
h2 { font-size: 19px; margin: 32px 0 8px; padding-bottom: 4px; border-bottom: 1px solid #d8dde3; }
.meta { color: #57606a; margin: 0 0 16px; }
.summary { font-size: 16px; background: #fff; border: 1px solid #d8dde3; border-radius: 8px; padding: 14px 18px; }
.kpis { display: grid; grid-template-columns: repeat(auto-fit, minmax(160px, 1fr)); gap: 12px; margin: 16px 0; }
.kpi { background: #fff; border: 1px solid #d8dde3; border-radius: 8px; padding: 12px 14px; }
.kpi .value { font-size: 26px; font-weight: 700; display: block; }
.kpi .label { color: #57606a; font-size: 13px; }
.kpi.alert .value { color: #b42318; }
.charts { display: grid; grid-template-columns: repeat(auto-fit, minmax(420px, 1fr)); gap: 16px; }
figure { margin: 0; background: #fff; border: 1px solid #d8dde3; border-radius: 8px; padding: 12px; }
figcaption { font-weight: 600; margin-bottom: 6px; }
svg.chart { display: block; width: 100%; height: auto; }
svg.chart text { font: 12px system-ui, -apple-system, "Segoe UI", Roboto, Helvetica, Arial, sans-serif;
                 fill: #1f2328; }
.note { color: #57606a; font-size: 13px; }
.table-wrap { overflow-x: auto; background: #fff; border: 1px solid #d8dde3; border-radius: 8px; }
table { border-collapse: collapse; width: 100%; font-size: 14px; }
th, td { text-align: left; padding: 6px 10px; border-bottom: 1px solid #eceff2; vertical-align: top; }
th { background: #eef1f4; font-weight: 600; white-space: nowrap; }
td.num, th.num { text-align: right; font-variant-numeric: tabular-nums; white-space: nowrap; }
tr.overdue td { background: #fff4f2; }
.rid { color: #57606a; font-size: 12px; word-break: break-all; }
.sev { display: inline-block; min-width: 64px; text-align: center; padding: 1px 8px; border-radius: 10px;
       color: #fff; font-size: 12px; font-weight: 700; }
.sev-critical { background: #7f1d1d; } .sev-high { background: #c62828; }
.sev-medium { background: #b45309; } .sev-low { background: #1d5fa8; } .sev-unknown { background: #5f6368; }
dl.glossary { display: grid; grid-template-columns: max-content 1fr; gap: 4px 16px; background: #fff;
              border: 1px solid #d8dde3; border-radius: 8px; padding: 12px 16px; }
dl.glossary dt { font-weight: 600; } dl.glossary dd { margin: 0; }
footer { color: #57606a; font-size: 13px; margin-top: 32px; }
@media print { body { background: #fff; } .table-wrap, figure, .summary, .kpi { border-color: #999; } }
"""


def _badge(severity: str) -> str:
    return f'<span class="sev {_SEVERITY_CLASS.get(severity, "sev-unknown")}">{_e(severity)}</span>'


def _short(text: str, limit: int) -> str:
    return text if len(text) <= limit else text[: limit - 1] + "\u2026"


def _bar_chart(label: str, rows: Sequence[tuple[str, int, str]], empty: str) -> str:
    """Horizontal bars: (label, value, colour) per row; colours come from this module, never from data."""
    width, label_w, row_h, top = 600, 190, 30, 6
    plot_w = width - label_w - 70
    height = top * 2 + row_h * max(len(rows), 1)
    peak = max((v for _, v, _ in rows), default=0)
    desc = "; ".join(f"{name}: {value}" for name, value, _ in rows)
    svg = [f'<svg class="chart" viewBox="0 0 {width} {height}" role="img" aria-label="{_e(label)}">',
           f"<title>{_e(label)}</title><desc>{_e(desc)}</desc>"]
    for i, (name, value, colour) in enumerate(rows):
        y = top + i * row_h
        bar = round(plot_w * value / peak) if peak else 0
        svg.append(f'<g><title>{_e(name)}: {_e(value)}</title>'
                   f'<text x="{label_w - 8}" y="{y + row_h / 2 + 4}" text-anchor="end">{_e(_short(name, 26))}</text>'
                   f'<rect x="{label_w}" y="{y + 5}" width="{max(bar, 1 if value else 0)}" height="{row_h - 10}" '
                   f'rx="3" fill="{colour}"/>'
                   f'<text x="{label_w + bar + 6}" y="{y + row_h / 2 + 4}">{_e(f"{value:,}")}</text></g>')
    if not peak:
        svg.append(f'<text x="{label_w + 8}" y="{height - 8}" fill="#57606a">{_e(empty)}</text>')
    svg.append("</svg>")
    return "".join(svg)


def _line_chart(points: Sequence[HistoryPoint]) -> str:
    width, height, left, right, top, bottom = 640, 240, 48, 20, 14, 36
    plot_w, plot_h = width - left - right, height - top - bottom
    start, end = points[0].at, points[-1].at
    span = (end - start).total_seconds()

    def x(i: int, p: HistoryPoint) -> float:
        share = (p.at - start).total_seconds() / span if span > 0 else i / (len(points) - 1)
        return round(left + share * plot_w, 1)

    def y(percent: float) -> float:
        return round(top + (1 - percent / 100) * plot_h, 1)

    label = (f"Compliance over time: from {_pct(points[0].compliance_percent)} on {_date(start)} to "
             f"{_pct(points[-1].compliance_percent)} on {_date(end)}, {len(points)} snapshots")
    svg = [f'<svg class="chart" viewBox="0 0 {width} {height}" role="img" aria-label="{_e(label)}">',
           f"<title>{_e(label)}</title>"]
    for tick in (0, 25, 50, 75, 100):
        svg.append(f'<line x1="{left}" x2="{width - right}" y1="{y(tick)}" y2="{y(tick)}" stroke="#e1e5ea"/>'
                   f'<text x="{left - 6}" y="{y(tick) + 4}" text-anchor="end">{tick}%</text>')
    coords = [(x(i, p), y(p.compliance_percent)) for i, p in enumerate(points)]
    svg.append('<polyline fill="none" stroke="#1a7f37" stroke-width="2.5" points="'
               + " ".join(f"{cx},{cy}" for cx, cy in coords) + '"/>')
    for (cx, cy), p in zip(coords, points):
        svg.append(f'<circle cx="{cx}" cy="{cy}" r="3.5" fill="#1a7f37"><title>{_e(_time(p.at))}: '
                   f'{_e(_pct(p.compliance_percent))} compliant, {_e(p.open)} open</title></circle>')
    ticks = [0, len(points) - 1] if len(points) < 3 else [0, len(points) // 2, len(points) - 1]
    for i in ticks:
        anchor = "start" if i == 0 else "end" if i == len(points) - 1 else "middle"
        svg.append(f'<text x="{coords[i][0]}" y="{height - 12}" text-anchor="{anchor}">'
                   f'{_e(_date(points[i].at))}</text>')
    svg.append("</svg>")
    return "".join(svg)


def _html_table(headers: Sequence[str], rows: Iterable[Sequence[str]], numeric: Sequence[int] = (),
                row_class: Callable[[int], str] | None = None) -> str:
    """``rows`` hold cell HTML that the caller has already escaped."""
    head = "".join(f'<th scope="col"{" class=num" if i in numeric else ""}>{_e(h)}</th>'
                   for i, h in enumerate(headers))
    body = []
    for r, row in enumerate(rows):
        cls = row_class(r) if row_class else ""
        cells = "".join(f'<td{" class=num" if i in numeric else ""}>{c}</td>' for i, c in enumerate(row))
        body.append(f'<tr{f" class={cls}" if cls else ""}>{cells}</tr>')
    return f'<div class="table-wrap"><table><thead><tr>{head}</tr></thead><tbody>{"".join(body)}</tbody></table></div>'


def _html_findings(findings: Sequence[OpenFinding]) -> str:
    rows = []
    for f in findings:
        resource = (f"<strong>{_e(f.resource_name)}</strong><div class=rid>{_e(f.resource_type)}</div>"
                    f"<div class=rid>{_e(f.resource_id)}</div>")
        rows.append([resource, f"{_e(f.title)}<div class=rid>{_e(f.control_id)}</div>", _badge(f.severity),
                     _e(f.owner or NO_OWNER), _e(f.team or NO_TEAM), _e(_age(f.age_days)), _e(_date(f.due)),
                     _e("" if f.overdue_days is None else _age(f.overdue_days))])
    return _html_table(("Resource", "Control", "Severity", "Owner", "Team", "Open (days)", "Due", "Past due (days)"),
                       rows, numeric=(5, 7), row_class=lambda r: "overdue" if findings[r].overdue_days is not None
                       else "")


def _html_postures(label: str, postures: Sequence[Posture]) -> str:
    rows = [[_e(p.name), _e(f"{p.resources:,}"), _e(f"{p.open:,}"), _e(f"{p.overdue:,}"), _e(f"{p.exempt:,}"),
             _e(f"{p.compliant:,}"), _e(_pct(p.compliance_percent))] for p in postures]
    return _html_table((label, *_POSTURE_HEADERS), rows, numeric=(1, 2, 3, 4, 5, 6))


def _more(total: int, shown: int) -> str:
    return f'<p class="note">{_e(f"...and {total - shown:,} more, not listed.")}</p>' if total > shown else ""


def render_html(report: Report) -> str:
    t = report.totals
    kpis = [("Compliance", _pct(t.compliance_percent), False), ("Open findings", f"{t.open:,}", t.open > 0),
            ("Past due", f"{t.overdue:,}", t.overdue > 0), ("Accepted risks (exempt)", f"{t.exempt:,}", False),
            ("Resources", f"{t.resources:,}", False), ("Subscriptions", f"{t.subscriptions:,}", False)]
    body = [
        "<header><h1>Azure compliance report</h1>",
        f'<p class="meta">Generated {_e(_time(report.generated_at))} from the compliance monitor\'s state store'
        f" \u00b7 {_e(_plural(t.resources, 'resource'))} \u00b7 {_e(_plural(report.controls_in_catalog, 'control'))}"
        f"{_e(f' · {t.deleted_resources:,} deleted resource(s) not counted') if t.deleted_resources else ''}</p>"
        "</header>",
        f'<p class="summary">{summary_text(report, _e)}</p>',
        '<section class="kpis" aria-label="Key figures">' + "".join(
            f'<div class="kpi{" alert" if alert else ""}"><span class="value">{_e(value)}</span>'
            f'<span class="label">{_e(name)}</span></div>' for name, value, alert in kpis) + "</section>",
        "<h2>Charts</h2>", '<div class="charts">',
        "<figure><figcaption>Open findings by severity</figcaption>" + _bar_chart(
            "Open findings by severity",
            [(name, p.open, SEVERITY_COLOURS.get(name, SEVERITY_COLOURS[UNKNOWN_SEVERITY]))
             for name, p in report.by_severity.items()], "No open findings") + "</figure>",
    ]
    teams = list(report.by_team.values())
    team_rows = [(p.name, p.open, BAR_COLOUR) for p in teams[:12]]
    if len(teams) > 12:
        team_rows.append((f"{len(teams) - 12} other teams", sum(p.open for p in teams[12:]), "#8c959f"))
    body.append("<figure><figcaption>Open findings by team</figcaption>"
                + _bar_chart("Open findings by team", team_rows, "No open findings") + "</figure>")
    if len(report.history) >= 2:
        h = report.history
        note = (f"From {_pct(h[0].compliance_percent)} on {_date(h[0].at)} to {_pct(h[-1].compliance_percent)} "
                f"on {_date(h[-1].at)}; lowest {_pct(min(p.compliance_percent for p in h))}; {len(h)} snapshots.")
        body.append("<figure><figcaption>Compliance over time</figcaption>" + _line_chart(h)
                    + f'<p class="note">{_e(note)}</p></figure>')
    else:
        body.append('<figure><figcaption>Compliance over time</figcaption><p class="note">Appears once at least '
                    "two posture snapshots are recorded (the scheduled reconciliation records one per run).</p>"
                    "</figure>")
    body.append("</div>")

    body.append("<h2>Open findings by severity</h2>")
    body.append(_html_table(("Severity", "Open", "Past due", "Exempt", "Compliant", "Compliance"), [
        [_badge(name), _e(f"{p.open:,}"), _e(f"{p.overdue:,}"), _e(f"{p.exempt:,}"), _e(f"{p.compliant:,}"),
         _e(_pct(p.compliance_percent))] for name, p in report.by_severity.items()], numeric=(1, 2, 3, 4, 5)))
    body.append(f"<h2>Past due findings ({_e(f'{len(report.overdue):,}')})</h2>")
    body.append('<p class="note">Open findings whose due date has passed, the most overdue first.</p>')
    body.append(_html_findings(report.overdue[:ROWS_SHOWN]) + _more(len(report.overdue), ROWS_SHOWN)
                if report.overdue else '<p class="note">None: every open finding is within its due date.</p>')
    body.append("<h2>Oldest open findings</h2>")
    body.append(f'<p class="note">The {_e(len(report.oldest_open))} findings open the longest (at most '
                f"{OLDEST_LIMIT}); past due rows are shaded.</p>")
    body.append(_html_findings(report.oldest_open) if report.oldest_open else '<p class="note">None.</p>')
    for title, label, groups in (("By team", "Team", report.by_team), ("By owner", "Owner", report.by_owner),
                                 ("By subscription", "Subscription", report.by_subscription)):
        body.append(f"<h2>{_e(title)}</h2>")
        postures = list(groups.values())
        body.append(_html_postures(label, postures[:ROWS_SHOWN]) + _more(len(postures), ROWS_SHOWN)
                    if postures else '<p class="note">None.</p>')
    body.append("<h2>By control</h2>")
    body.append(_html_table(("Control", "Severity", "Open", "Past due", "Exempt", "Compliant", "Compliance"), [
        [f"{_e(c.title)}<div class=rid>{_e(c.name)}</div>", _badge(c.severity), _e(f"{c.open:,}"),
         _e(f"{c.overdue:,}"), _e(f"{c.exempt:,}"), _e(f"{c.compliant:,}"), _e(_pct(c.compliance_percent))]
        for c in report.by_control.values()], numeric=(2, 3, 4, 5, 6)) if report.by_control
        else '<p class="note">None.</p>')
    body.append("<h2>How to read this report</h2><dl class=glossary>" + "".join(
        f"<dt>{_e(term)}</dt><dd>{_e(text)}</dd>" for term, text in GLOSSARY) + "</dl>")
    body.append(f"<footer>{_e('Azure compliance monitor · python -m shared report · ' + _time(report.generated_at))}"
                "</footer>")
    return ("<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">"
            "<meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">"
            # nothing may load or run, even if a value slipped through unescaped
            "<meta http-equiv=\"Content-Security-Policy\" content=\"default-src 'none'; style-src 'unsafe-inline'\">"
            f"<title>{_e('Azure compliance report ' + _date(report.generated_at))}</title>"
            f"<style>{_CSS}</style></head>\n<body><main>\n" + "\n".join(body) + "\n</main></body></html>\n")
