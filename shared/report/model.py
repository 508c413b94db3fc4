"""The posture report's figures: what is open, whose it is, what is overdue. Pure: no I/O, no templates.

``build_report`` turns resource states (and, when there are any, posture
snapshots) into a ``Report``. Deleted resources are left out. A control that is
no longer in the catalog (disabled, or its file removed) is still reported, with
severity ``Unknown``, as ``shared.domain.posture.summarize`` counts it.
"""
from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timezone
from typing import Iterable, Mapping, Sequence

from ..catalog import Catalog, Status
from ..domain.drift import ResourceState
from ..domain.posture import PostureSummary
from ..domain.resource_ids import InvalidResourceId, parse_resource_id

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
    evidence: tuple = ()  # what decided the verdict (the state's evidence)
    remediation: str = ""  # how to fix it (the control's remediation text), empty when it gives none

    @property
    def resource_name(self) -> str:
        return self.resource_id.rstrip("/").rsplit("/", 1)[-1]

    @property
    def evidence_text(self) -> str:
        """The evidence in a few words: ``path = actual`` of what matched (at most three)."""
        return evidence_words(self.evidence)


def evidence_words(evidence: Iterable, limit: int = 3) -> str:
    import json

    parts = []
    for item in evidence:
        if not isinstance(item, Mapping):
            continue
        if isinstance(item.get("matched"), list):
            paths = [str(m.get("path")) for m in item["matched"] if isinstance(m, Mapping) and m.get("path")]
            if paths:
                parts.append(f"{', '.join(paths[:limit])} match")
        elif item.get("result") is not False and (item.get("path") or item.get("field")) and \
                str(item.get("path") or item.get("field")) != "type":
            parts.append(f"{item.get('path') or item.get('field')} = {json.dumps(item.get('actual'), default=str)}")
    return "; ".join(parts[:limit])


@dataclass(frozen=True)
class NotEvaluatedPair:
    """A (resource, control) that has never been decided, and why (the last evaluation's note)."""

    resource_id: str
    resource_group: str | None
    control_id: str
    title: str
    reason: str

    @property
    def resource_name(self) -> str:
        return self.resource_id.rstrip("/").rsplit("/", 1)[-1]


@dataclass(frozen=True)
class FrameworkControl:
    """A control under one framework reference, with its pass / fail / not-evaluated counts."""

    reference: str
    control: ControlPosture


@dataclass(frozen=True)
class Framework:
    """One framework (cis, mcsb, ...): each reference and the controls that answer it."""

    name: str
    controls: tuple[FrameworkControl, ...]

    @property
    def passing(self) -> int:
        return sum(1 for c in self.controls if c.control.open == 0 and c.control.compliant > 0)

    @property
    def failing(self) -> int:
        return sum(1 for c in self.controls if c.control.open > 0)


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
    frameworks: tuple[Framework, ...] = ()  # per framework the controls reference (cis, mcsb, ...), by name
    not_evaluated: tuple[NotEvaluatedPair, ...] = ()  # pairs never decided, with the reason (at most ROWS_SHOWN)
    not_evaluated_total: int = 0

    @property
    def controls_applied(self) -> int:
        """Controls with a state on at least one live resource (what the figures are about)."""
        return len(self.by_control)

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
    undecided: list[NotEvaluatedPair] = []
    titles: dict[str, str] = {}  # of controls not in the catalog: what their assignment called them
    severities: dict[str, str] = {}
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
            sev = control.severity if control else cs.policy.severity if cs.policy else UNKNOWN_SEVERITY
            title = control.title if control else cs.policy.title or cid if cs.policy else cid
            titles.setdefault(cid, title)
            severities.setdefault(cid, sev)
            due = _utc(cs.due)
            is_open = cs.status == Status.NONCOMPLIANT
            overdue = is_open and due is not None and due < now
            for group in (total, severity.setdefault(sev, _Group()), by_control.setdefault(cid, _Group()), *groups):
                group.add(key, cs.status, overdue)
            if is_open:
                since = _utc(cs.since)
                findings.append(OpenFinding(
                    resource_id=state.resource_id, resource_type=state.resource_type, subscription=sub,
                    resource_group=rg, control_id=cid, title=title, severity=sev,
                    owner=state.owner, team=state.team, since=since, due=due,
                    age_days=(now - since).days if since else None,
                    overdue_days=(now - due).days if overdue else None, evidence=tuple(cs.evidence),
                    remediation=str((getattr(control, "remediation", None) or {}).get("text") or "")))
            elif cs.status is None:
                undecided.append(NotEvaluatedPair(state.resource_id, rg, cid, title,
                                                  cs.note or "not decided yet"))

    control_postures = []
    for cid, group in by_control.items():
        control = controls.get(cid)
        control_postures.append(group.posture(cid, ControlPosture, title=control.title if control else titles[cid],
                                              severity=control.severity if control else severities[cid]))
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
    undecided.sort(key=lambda n: (n.resource_id.lower(), n.control_id))
    return Report(
        generated_at=now, totals=totals, by_severity=severity_postures,
        by_control={c.name: c for c in control_postures}, by_subscription=_by_open(subscription),
        by_team=_by_open(team), by_owner=_by_open(owner), oldest_open=tuple(oldest), overdue=tuple(overdue),
        history=tuple(points), controls_in_catalog=len(catalog.controls),
        frameworks=_frameworks(control_postures, controls), not_evaluated=tuple(undecided[:ROWS_SHOWN]),
        not_evaluated_total=len(undecided),
    )


def _frameworks(postures: list[ControlPosture], controls: Mapping) -> tuple[Framework, ...]:
    """The controls that applied, under each framework reference they name, as compliance dashboards list
    them: by framework, then by reference."""
    by_name: dict[str, list[FrameworkControl]] = {}
    for posture in postures:
        control = controls.get(posture.name)
        for framework, references in (getattr(control, "frameworks", None) or {}).items():
            for reference in references:
                by_name.setdefault(framework, []).append(FrameworkControl(str(reference), posture))

    def order(reference: str) -> tuple:
        import re

        return tuple(int(p) if p.isdigit() else p for p in re.split(r"(\d+)", reference))

    return tuple(Framework(name, tuple(sorted(items, key=lambda i: (order(i.reference), i.control.name))))
                 for name, items in sorted(by_name.items()))
