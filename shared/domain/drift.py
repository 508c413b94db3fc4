"""The drift state machine. Pure: (previous state, new results) -> (new state, transitions).

A control's *status* is the last verdict that was decided (Compliant or
NonCompliant). ``NotEvaluated`` never overwrites it, so a Compliant ->
NotEvaluated -> NonCompliant sequence is still a drift. Each status change
bumps the control's ``version``; (resource, control, version) names one
transition, whichever worker or delivery computes it.
"""
from __future__ import annotations

from dataclasses import dataclass, field, replace
from datetime import datetime, timedelta
from enum import Enum
from typing import Iterable, Mapping

from .results import ControlResult, PolicyRef, Status


class Transition(str, Enum):
    NEW = "New"  # first seen non-compliant
    DRIFTED = "Drifted"  # Compliant -> NonCompliant
    RESOLVED = "Resolved"  # NonCompliant -> Compliant
    DELETED = "Deleted"  # the resource is gone: its open finding is closed
    EXEMPTED = "Exempted"  # a non-compliant control is covered by an exemption (accepted risk)
    REOPENED = "Reopened"  # its exemption expired or was removed and it is still non-compliant
    OVERDUE = "Overdue"  # still open past its due date (emitted once per finding, by reconciliation)


@dataclass(frozen=True)
class ControlState:
    control_id: str
    status: Status | None  # last decided verdict; None when never decided (or after a delete)
    version: int = 0
    since: datetime | None = None  # when the status last changed (time of the change event)
    evidence: tuple = ()
    note: str | None = None  # why the last evaluation was NotEvaluated, if it was
    due: datetime | None = None  # when an open finding must be fixed (its SLA), None when not open
    overdue_notified: bool = False  # an Overdue record was emitted for the current open finding
    policy: PolicyRef | None = None  # the assignment an assigned control comes from (None: a catalog control)


NOT_APPLICABLE = "no longer applicable to this resource"  # the note of a control that stopped applying

# Default time to fix an open finding, by severity (configurable: SLA_DAYS).
DEFAULT_SLA = {"Critical": timedelta(days=1), "High": timedelta(days=7), "Medium": timedelta(days=30),
               "Low": timedelta(days=90)}


@dataclass(frozen=True)
class ResourceState:
    resource_id: str  # normalised id, names' case kept
    resource_type: str
    deleted: bool = False
    location: str | None = None
    tags: Mapping[str, str] = field(default_factory=dict)
    last_event_id: str | None = None
    last_event_time: datetime | None = None
    last_evaluated: datetime | None = None
    controls: Mapping[str, ControlState] = field(default_factory=dict)
    etag: str | None = None  # concurrency token of the stored copy (None: not stored yet)
    owner: str | None = None
    team: str | None = None


@dataclass(frozen=True)
class ControlTransition:
    control_id: str
    title: str
    severity: str
    transition: Transition
    status: Status  # the status after the transition
    previous_status: Status | None
    version: int
    evidence: tuple = ()
    due: datetime | None = None  # the SLA due time of the finding this transition opens or closes
    policy: PolicyRef | None = None  # the assignment of an assigned control


@dataclass(frozen=True)
class Evaluation:
    """What one evaluation observed: the resource's current facts and verdicts.

    ``results`` is None when the resource no longer exists.
    """

    resource_id: str
    resource_type: str
    at: datetime
    event_id: str
    event_time: datetime
    results: tuple[ControlResult, ...] | None
    location: str | None = None
    tags: Mapping[str, str] = field(default_factory=dict)
    owner: str | None = None
    team: str | None = None
    # The resource was evaluated against every assignment that reaches it: an assigned control of the
    # previous state that gave no result (assignment removed, overridden to Disabled, its scope or
    # selectors no longer reach the resource, no longer applicable) has no compliance state any more.
    assigned_evaluated: bool = False
    assigned_gap: str | None = None  # why assigned controls could not be evaluated (they keep their state)


def described(cid: str, cs: ControlState, titles: Mapping[str, tuple[str, str]]) -> tuple[str, str]:
    """(title, severity) of a control: the catalog's, else what its assignment said when last evaluated."""
    if cid in titles:
        return titles[cid]
    if cs.policy is not None:
        return cs.policy.title or cid, cs.policy.severity
    return cid, "Unknown"


def apply_evaluation(previous: ResourceState | None, evaluation: Evaluation,
                     titles: Mapping[str, tuple[str, str]] | None = None,
                     sla: Mapping[str, timedelta] = DEFAULT_SLA,
                     ) -> tuple[ResourceState, list[ControlTransition]]:
    """Compute the next state and the transitions between ``previous`` and ``evaluation``.

    ``titles`` maps control id -> (title, severity), used to describe controls
    that close on delete. Nothing is emitted when nothing changed.
    """
    titles = titles or {}
    prior = previous.controls if previous is not None and not previous.deleted else {}
    if previous is not None and previous.deleted:
        # a resource that comes back starts over, but keeps version numbers increasing
        prior = {cid: replace(cs, status=None) for cid, cs in previous.controls.items()}
    controls = dict(prior)
    transitions: list[ControlTransition] = []

    if evaluation.results is None:
        for cid, cs in sorted(prior.items()):
            if cs.status in (Status.NONCOMPLIANT, Status.EXEMPT):
                title, severity = described(cid, cs, titles)
                transitions.append(ControlTransition(cid, title, severity, Transition.DELETED, Status.COMPLIANT,
                                                     cs.status, cs.version + 1, (), cs.due, cs.policy))
            controls[cid] = replace(cs, status=None, version=cs.version + (cs.status is not None),
                                    since=evaluation.event_time, evidence=(), note=None, due=None,
                                    overdue_notified=False)
        state = ResourceState(
            resource_id=evaluation.resource_id, resource_type=evaluation.resource_type, deleted=True,
            location=previous.location if previous else None, tags=previous.tags if previous else {},
            last_event_id=evaluation.event_id, last_event_time=_latest(previous, evaluation),
            last_evaluated=evaluation.at, controls=controls, etag=previous.etag if previous else None,
            owner=previous.owner if previous else None, team=previous.team if previous else None,
        )
        return state, transitions

    for result in evaluation.results:
        cs = controls.get(result.control_id) or ControlState(result.control_id, None)
        policy = result.policy or cs.policy
        if result.status == Status.NOT_EVALUATED:
            controls[result.control_id] = replace(cs, note=result.reason, policy=policy)
            continue
        evidence = tuple(result.evidence)
        if cs.status == result.status:
            controls[result.control_id] = replace(cs, evidence=evidence, note=result.reason, policy=policy)
            continue
        kind = None
        if result.status == Status.NONCOMPLIANT:
            kind = {Status.COMPLIANT: Transition.DRIFTED, Status.EXEMPT: Transition.REOPENED}.get(cs.status,
                                                                                                Transition.NEW)
        elif result.status == Status.EXEMPT:
            kind = Transition.EXEMPTED
        elif cs.status in (Status.NONCOMPLIANT, Status.EXEMPT):
            kind = Transition.RESOLVED
        version = cs.version + 1
        due = _due(evaluation.event_time, sla.get(result.severity, DEFAULT_SLA["Low"])) \
            if result.status == Status.NONCOMPLIANT else None
        controls[result.control_id] = ControlState(result.control_id, result.status, version, evaluation.event_time,
                                                   evidence, result.reason, due, policy=policy)
        if kind is not None:
            transitions.append(ControlTransition(result.control_id, result.title, result.severity, kind,
                                                 result.status, cs.status, version, evidence, due or cs.due, policy))
    # A control of the catalog that gave no result no longer applies to the resource (its mode, or Azure's
    # applicability rules: a changed kind, say). As in Azure Policy it then has no compliance state, and
    # an open finding on it is closed. (A control no longer in the catalog keeps its last state.)
    # An assigned control closes the same way when every assignment was evaluated (Evaluation.assigned_evaluated).
    decided = {r.control_id for r in evaluation.results}
    for cid, cs in sorted(prior.items()):
        if cid in decided:
            continue
        if cs.policy is not None and cid not in titles:
            if evaluation.assigned_gap is not None:
                controls[cid] = replace(cs, note=evaluation.assigned_gap)
                continue
            if not evaluation.assigned_evaluated:
                continue
        elif cid not in titles:
            continue
        if cs.status is None:
            continue
        if cs.status in (Status.NONCOMPLIANT, Status.EXEMPT):
            title, severity = described(cid, cs, titles)
            transitions.append(ControlTransition(cid, title, severity, Transition.RESOLVED, Status.COMPLIANT,
                                                 cs.status, cs.version + 1, (), cs.due, cs.policy))
        controls[cid] = replace(cs, status=None, version=cs.version + 1, since=evaluation.event_time, evidence=(),
                                note=NOT_APPLICABLE, due=None, overdue_notified=False)
    state = ResourceState(
        resource_id=evaluation.resource_id, resource_type=evaluation.resource_type, deleted=False,
        location=evaluation.location, tags=dict(evaluation.tags), last_event_id=evaluation.event_id,
        last_event_time=_latest(previous, evaluation), last_evaluated=evaluation.at, controls=controls,
        etag=previous.etag if previous else None, owner=evaluation.owner, team=evaluation.team,
    )
    return state, transitions


def _due(start: datetime, sla: timedelta) -> datetime:
    """``start + sla``; a start so late that the sum would overflow ends at the last representable time."""
    try:
        return start + sla
    except OverflowError:
        return datetime.max.replace(tzinfo=start.tzinfo)


def _latest(previous: ResourceState | None, evaluation: Evaluation) -> datetime:
    """The newest change time seen: an older event processed late never moves it back."""
    if previous is not None and previous.last_event_time is not None:
        return max(previous.last_event_time, evaluation.event_time)
    return evaluation.event_time


def changed_controls(previous: ResourceState | None, new: ResourceState) -> list[str]:
    """Ids of the control rows whose stored content differs (what a store must write)."""
    before = previous.controls if previous else {}
    return [cid for cid, cs in new.controls.items() if before.get(cid) != cs]


def open_findings(states: Iterable[ResourceState]) -> list[tuple[ResourceState, ControlState]]:
    return [(s, cs) for s in states if not s.deleted for cs in s.controls.values()
            if cs.status == Status.NONCOMPLIANT]
