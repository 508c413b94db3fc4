"""The one service: re-evaluate the resource a change names, record state, emit findings."""
from __future__ import annotations

import logging
from dataclasses import dataclass, field, replace
from datetime import datetime, timedelta, timezone
from collections.abc import Mapping
from typing import Any, Callable

from ..catalog import Catalog, RelatedUnavailable
from ..domain.drift import DEFAULT_SLA, Evaluation, apply_evaluation
from ..domain.exemptions import apply_exemptions
from ..domain.ownership import OwnershipPolicy
from ..domain.payloads import KNOWN_BOOLEANS, annotate, plan as plan_payload
from ..policy import EvaluationError, parse_path
from ..domain.policy_states import POLICY_STATES_TYPE, overlay
from ..domain.resource_ids import ResourceId, parse_resource_id
from ..domain.events import EventRejected, ResourceChange
from ..domain.scopes import Scopes
from ..domain.findings import finding_record
from .assigned_policy import is_policy_change
from .ports import (ConcurrencyConflict, FindingsDeliveryError, FindingsSink, PendingFinding, ResourceReader,
                    ResourceUnreadable, StateStore, StateUnstorable)

log = logging.getLogger(__name__)
MAX_CONFLICT_RETRIES = 5
DRAIN_BATCH = 500
RETRY_BASE = timedelta(seconds=30)
RETRY_MAX = timedelta(hours=1)


class OutOfScope(EventRejected):
    """The event names a resource outside MONITORED_SCOPES: refused, never read."""


class PermanentFailure(EventRejected):
    """The change can never be recorded (the store refuses its state): acknowledged, not retried.

    Before raising it, the service records the resource's controls as NotEvaluated with the reason
    (when even that state can be stored), so the gap stays visible.
    """


@dataclass
class Dependencies:
    catalog: Catalog
    reader: ResourceReader
    store: StateStore
    sink: FindingsSink
    clock: Callable[[], datetime] = field(default=lambda: datetime.now(timezone.utc))
    scopes: Scopes = field(default_factory=Scopes)  # or a MonitoredScopes (management groups listed from ARM)
    ownership: OwnershipPolicy = field(default_factory=OwnershipPolicy)
    sla: Mapping[str, timedelta] = field(default_factory=lambda: dict(DEFAULT_SLA))
    group_tags: "GroupTags | None" = None  # resource-group tags for the ownership fallback (cached)
    exemptions: Any = None  # CachedExemptions (or anything with for_subscription(sub, now)); None: none
    snapshot_sink: FindingsSink | None = None  # where reconciliation sends the posture snapshot; None: not sent
    rejection_sink: FindingsSink | None = None  # where permanent rejections are recorded; None: logged only
    assigned: Any = None  # AssignedPolicy (shared.service.assigned_policy): Azure Policy assignments; None: not a source

    def __post_init__(self) -> None:
        if self.group_tags is None:
            self.group_tags = GroupTags(self.reader)


class GroupTags:
    """Resource groups and subscriptions (group tags for the ownership fallback; tags and location for
    ``resourceGroup()`` / ``subscription()`` in rules), read through the reader and kept for ``ttl`` (one read
    per group, not per event)."""

    def __init__(self, reader: ResourceReader, ttl: timedelta = timedelta(minutes=10)) -> None:
        self.reader, self.ttl = reader, ttl
        self._cache: dict[str, tuple[datetime, Mapping[str, Any] | None]] = {}

    def group(self, group: ResourceId, now: datetime) -> Mapping[str, Any] | None:
        """The group's ARM object, or None when it cannot be read (gone or refused)."""
        cached = self._cache.get(group.key)
        if cached and now - cached[0] < self.ttl:
            return cached[1]
        try:
            found = self.reader.get(group)
        except ResourceUnreadable as exc:
            log.info("resource group %s unreadable (%s)", group.value, exc)
            found = None
        self._cache[group.key] = (now, found)
        return found

    def get(self, group: ResourceId, now: datetime) -> Mapping[str, str]:
        return dict((self.group(group, now) or {}).get("tags") or {})


class _ScopeOnDemand(Mapping):
    """``$resourceGroup`` / ``$subscription`` for rules that call ``resourceGroup()`` / ``subscription()``: the
    group or subscription is read (cached) only when a rule asks for it; when it cannot be read, the rule fails
    with the reason (NotEvaluated)."""

    def __init__(self, load: Callable[[], Mapping[str, Any] | None], what: str, scope_id: str) -> None:
        self._load, self._what, self._scope_id, self._value = load, what, scope_id, None

    def _data(self) -> Mapping[str, Any]:
        if self._value is None:
            found = self._load()
            if found is None:
                raise EvaluationError(f"{self._what}: {self._scope_id} could not be read")
            self._value = {k: found[k] for k in ("location", "tags", "managedBy", "properties", "displayName")
                           if k in found}
        return self._value

    def __getitem__(self, key: str) -> Any:
        return self._data()[key]

    def __iter__(self):
        return iter(self._data())

    def __len__(self) -> int:
        return len(self._data())


def _scoped(resource: Mapping[str, Any], change: ResourceChange, deps: Dependencies,
            catalogs: tuple = ()) -> Mapping[str, Any]:
    """``resource`` with ``$resourceGroup`` / ``$subscription`` on demand, when a control that applies to it calls
    resourceGroup() / subscription() (cached reads through ``deps.group_tags``)."""
    extra: dict[str, Any] = {}
    group = change.resource.resource_group
    catalogs = catalogs or (deps.catalog,)
    if group and "$resourceGroup" not in resource and any(c.uses_resource_group(resource) for c in catalogs):
        group_id = parse_resource_id(f"/subscriptions/{change.resource.subscription_id}/resourceGroups/{group}")
        extra["$resourceGroup"] = _ScopeOnDemand(lambda: deps.group_tags.group(group_id, deps.clock()),
                                                 "resourceGroup()", f"the resource group {group_id.value}")
    if "$subscription" not in resource and any(c.uses_subscription(resource) for c in catalogs):
        sub_id = parse_resource_id(f"/subscriptions/{change.resource.subscription_id}")
        extra["$subscription"] = _ScopeOnDemand(lambda: deps.group_tags.group(sub_id, deps.clock()),
                                                "subscription()", f"the subscription {sub_id.value}")
    return {**resource, **extra} if extra else resource


@dataclass
class Outcome:
    change: ResourceChange
    findings: list[dict[str, Any]] = field(default_factory=list)
    results: list = field(default_factory=list)
    skipped: str | None = None  # why nothing was evaluated, when nothing was
    attempts: int = 0
    pending: int = 0  # findings left in the outbox for drain_outbox after a failed send
    reread: str | None = None  # why a payload's controls were (partly) judged on an ARM re-read


def _current_resource(change: ResourceChange, deps: Dependencies) -> Mapping[str, Any] | None:
    if change.is_resource_deleted:
        return None
    if change.payload is not None:
        return change.payload
    return deps.reader.get(change.resource)


Source = tuple  # (catalog, ids it may evaluate or None for all): the built-in catalog, an assignment view


def _evaluate_payload(change: ResourceChange, deps: Dependencies,
                      sources: list[Source]) -> tuple[Mapping[str, Any], list[tuple], str | None]:
    """Judge a Resource Notifications payload as far as it goes (``shared.domain.payloads``).

    The payload is typed first (1/0 -> booleans where the property is boolean; evidence
    keeps the raw value). A control that reads a property the payload does not carry is
    judged on one ARM GET of the resource instead (NotEvaluated, with the reason, when
    that read finds nothing or is refused), one GET for every source of controls.
    Returns (resource, results per source, why it re-read).
    """
    allowed = [(catalog, (lambda c, ids=ids: ids is None or c.id in ids)) for catalog, ids in sources]
    controls = [c for catalog, ok in allowed for c in catalog.applicable(change.payload) if ok(c)]
    extra = [parse_path(p) for p in KNOWN_BOOLEANS.get(change.resource.resource_type.lower(), ())]
    plan = plan_payload(change.payload, controls, change.payload_api_version, extra)
    related = _related_source(change, deps)
    catalogs = tuple(catalog for catalog, _ in sources)
    scoped = _scoped(plan.resource, change, deps, catalogs)
    from_payload = [[replace(r, evidence=annotate(r.evidence, plan.coerced)) if plan.coerced else r
                     for r in catalog.evaluate(scoped, related, only=lambda c, ok=ok: ok(c) and c.id not in plan.missing)]
                    for catalog, ok in allowed]
    if plan.complete:
        return plan.resource, [tuple(r) for r in from_payload], None
    reason = plan.reason()
    log.info("event %s: %s read by %d control(s); re-reading %s from ARM", change.event_id, reason,
             len(plan.missing), change.resource.value)
    try:
        current = deps.reader.get(change.resource)
    except ResourceUnreadable as exc:
        current, why = None, f"{reason}, and re-reading the resource failed: {exc}"
    else:
        why = f"{reason}, and the resource no longer exists in ARM"
    if current is None:
        log.warning("event %s: %s; recording NotEvaluated", change.event_id, why)
    out = []
    for (catalog, ok), first in zip(allowed, from_payload):
        if current is None:
            reread = [r for r in catalog.not_evaluated(change.resource.resource_type, why) if r.control_id in plan.missing]
        else:
            reread = catalog.evaluate(_scoped(current, change, deps, catalogs), related,
                                      only=lambda c, ok=ok: ok(c) and c.id in plan.missing)
        by_id = {r.control_id: r for r in first + list(reread)}
        out.append(tuple(by_id[c.id] for c in catalog.applicable(change.payload) if c.id in by_id))
    return plan.resource, out, reason


def _related_source(change: ResourceChange, deps: Dependencies):
    """Related resources for auditIfNotExists-style controls, read on demand (only when a rule needs them)."""

    def fetch(resource: Mapping[str, Any], spec: Any) -> list:
        try:
            found = deps.reader.related(change.resource, resource, spec)
        except ResourceUnreadable as exc:
            log.warning("event %s: related %s of %s unreadable: %s", change.event_id, spec.key,
                        change.resource.value, exc)
            raise RelatedUnavailable(str(exc)) from exc
        if change.policy_state is not None and spec.type.lower() == POLICY_STATES_TYPE.lower():
            # the state the event reports, in case the query does not show that evaluation yet
            found = overlay(found, change.policy_state, change.policy_state_deleted)
        return found

    return fetch


def _ownership(change: ResourceChange, resource_type: str, tags: Mapping[str, str], deps: Dependencies,
               now: datetime) -> tuple[str | None, str | None]:
    owner, team = deps.ownership.pick(tags)
    group = change.resource.resource_group
    if (owner and team) or not group or resource_type.lower() == "microsoft.resources/resourcegroups":
        return owner, team
    group_id = parse_resource_id(f"/subscriptions/{change.resource.subscription_id}/resourceGroups/{group}")
    return deps.ownership.resolve(tags, deps.group_tags.get(group_id, now))


def _assigned_view(change: ResourceChange, deps: Dependencies):
    """(the subscription's assignments, None), or (None, why they are unknown) when ARM refuses the listing
    (assigned controls then keep their state, with the reason); (None, None) when they are not a source."""
    if deps.assigned is None:
        return None, None
    subscription = change.resource.subscription_id
    try:
        return deps.assigned.view(subscription), None
    except ResourceUnreadable as exc:
        log.warning("event %s: Azure Policy assignments of subscription %s unreadable: %s", change.event_id,
                    subscription, exc)
        return None, f"the Azure Policy assignments of subscription {subscription} could not be read: {exc}"


def _policy_changed(change: ResourceChange, deps: Dependencies, outcome: Outcome) -> Outcome:
    """An assignment, exemption, definition or set was written or deleted: the subscription's assignments
    are read again at their next use, and its resources are marked for re-evaluation (the assignments
    timer takes the mark: a burst of changes costs one listing of the subscription)."""
    subscription = change.resource.subscription_id
    if not subscription or not deps.scopes.allows_subscription(subscription):
        raise OutOfScope(change.event_id, f"{change.subject.value} is outside the monitored subscriptions")
    deps.assigned.changed(subscription, change.subject.resource_type)
    deps.store.mark_scope(subscription, deps.clock(), f"{change.kind} of {change.subject.value} "
                                                      f"(event {change.event_id})"[:2000])
    outcome.skipped = (f"Azure Policy change ({change.subject.resource_type}): the assignments of subscription "
                       f"{subscription} are read again and its resources re-evaluated by the assignments timer")
    log.info("event %s: %s", change.event_id, outcome.skipped)
    return outcome


def handle_change(change: ResourceChange, deps: Dependencies, always: bool = False) -> Outcome:
    """Evaluate the tracked resource of ``change`` and record what changed.

    The new state and its findings are committed together (the findings into the
    outbox), then the findings are sent and removed from the outbox. A failed
    send leaves them pending for ``drain_outbox``; if the process dies between
    any two steps, the outbox still holds them. Transient failures before the
    commit raise, so Event Grid redelivers.

    Azure Policy assignments (``deps.assigned``) that reach the resource are evaluated beside the
    catalog, their results carrying the assignment's ids. ``always``: evaluate even a type no control
    applies to (a scope re-evaluation closes assigned findings whose controls went away).
    """
    outcome = Outcome(change)
    if deps.assigned is not None and (is_policy_change(change.subject.resource_type)
                                      or is_policy_change(change.resource.resource_type)):
        return _policy_changed(change, deps, outcome)
    if not deps.scopes.allows(change.resource):
        raise OutOfScope(change.event_id, f"{change.resource.value} is outside the monitored scopes")
    view, gap = _assigned_view(change, deps)
    assigned_apply = view is not None and view.may_apply(change.resource.resource_type)
    if (not change.is_resource_deleted and not always and not assigned_apply and gap is None
            and not deps.catalog.may_apply(change.resource.resource_type)):
        outcome.skipped = f"no control applies to type {change.resource.resource_type}"
        log.info("event %s: %s; nothing to evaluate for %s", change.event_id, outcome.skipped, change.resource.value)
        return outcome
    if change.policy_state is not None and not deps.catalog.delegates(
            change.resource.resource_type, change.policy_state["policyDefinitionId"]):
        outcome.skipped = (f"no control of type {change.resource.resource_type} takes Azure Policy's verdict for "
                           f"{change.policy_state['policyDefinitionId']}")
        log.info("event %s: %s; nothing to evaluate for %s", change.event_id, outcome.skipped, change.resource.value)
        return outcome
    assigned_evaluated = False
    try:
        resource = _current_resource(change, deps)
    except ResourceUnreadable as exc:
        # Visible, not silent: every control of the type is recorded NotEvaluated with the reason.
        log.warning("event %s: %s; recording NotEvaluated", change.event_id, exc)
        resource = {"id": change.resource.value, "type": change.resource.resource_type}
        results = tuple(deps.catalog.not_evaluated(change.resource.resource_type, str(exc)))
        gap = gap or f"the resource could not be read: {exc}"
    else:
        if resource is None:
            results = None
        else:
            reached = view.reached(resource) if view is not None else set()
            sources: list[Source] = [(deps.catalog, None)] + ([(view.catalog, reached)] if reached else [])
            if resource is change.payload and not change.payload_complete:
                resource, per_source, outcome.reread = _evaluate_payload(change, deps, sources)
            else:
                scoped = _scoped(resource, change, deps, tuple(c for c, _ in sources))
                related = _related_source(change, deps)
                per_source = [tuple(catalog.evaluate(scoped, related,
                                                     only=None if ids is None else lambda c, ids=ids: c.id in ids))
                              for catalog, ids in sources]
            results = per_source[0]
            if reached:
                results += tuple(view.attributed(resource, per_source[1], deps.clock()))
            assigned_evaluated = view is not None
    if results is not None and deps.exemptions is not None:
        active = deps.exemptions.for_subscription(change.resource.subscription_id, deps.clock())
        if active:
            results = apply_exemptions(change.resource, results, active, deps.clock())
    outcome.results = list(results or ())
    resource_type = str(resource.get("type") or change.resource.resource_type) if resource else change.resource.resource_type
    for attempt in range(1, MAX_CONFLICT_RETRIES + 1):
        outcome.attempts = attempt
        previous = deps.store.load(change.resource)
        if previous is None and results is None:
            outcome.skipped = "resource does not exist and was never evaluated"
            log.info("event %s: %s: %s", change.event_id, change.resource.value, outcome.skipped)
            return outcome
        if previous is None and not results:
            outcome.skipped = f"no control applies to {change.resource.value}"
            log.info("event %s: %s; nothing recorded", change.event_id, outcome.skipped)
            return outcome
        if (change.payload is not None and previous is not None and previous.last_event_time is not None
                and change.event_time < previous.last_event_time):
            outcome.skipped = (f"stale payload: event time {change.event_time.isoformat()} is older than the "
                               f"last evaluated change {previous.last_event_time.isoformat()}")
            log.warning("event %s: %s for %s", change.event_id, outcome.skipped, change.resource.value)
            return outcome
        now = deps.clock()
        tags = dict(resource.get("tags") or {}) if resource else {}
        owner, team = _ownership(change, resource_type, tags, deps, now) if resource else (None, None)
        evaluation = Evaluation(
            resource_id=change.resource.value, resource_type=resource_type, at=now, event_id=change.event_id,
            event_time=change.event_time, results=results,
            location=str(resource.get("location")) if resource and resource.get("location") else None,
            tags=tags, owner=owner, team=team, assigned_evaluated=assigned_evaluated, assigned_gap=gap,
        )
        new_state, transitions = apply_evaluation(previous, evaluation, deps.catalog.titles, deps.sla)
        records = [finding_record(t, new_state, change, now) for t in transitions]
        try:
            deps.store.save(previous, new_state, outbox=records)
        except StateUnstorable as exc:
            _record_unstorable(change, deps, previous, resource_type, now, str(exc))
            raise PermanentFailure(change.event_id, f"{change.resource.value}: {exc}") from exc
        except ConcurrencyConflict:
            log.warning("event %s: state of %s changed while evaluating (attempt %d of %d); re-reading",
                        change.event_id, change.resource.value, attempt, MAX_CONFLICT_RETRIES)
            continue
        outcome.findings = records
        for record in records:
            log.info("event %s: %s %s on %s (%s, caller %s)", change.event_id, record["Transition"],
                     record["ControlId"], record["ResourceId"], record["Severity"], record["Caller"])
        if records:
            outcome.pending = deliver(deps, new_state.resource_id, records, now)
        return outcome
    raise ConcurrencyConflict(
        f"event {change.event_id}: state of {change.resource.value} kept changing; gave up after "
        f"{MAX_CONFLICT_RETRIES} attempts (Event Grid will redeliver)"
    )


def _record_unstorable(change: ResourceChange, deps: Dependencies, previous, resource_type: str, now: datetime,
                       reason: str) -> None:
    """A minimal state saying why the resource was not evaluated: every control NotEvaluated, no tags, no findings."""
    note = f"state could not be stored: {reason}"[:1000]
    evaluation = Evaluation(resource_id=change.resource.value, resource_type=change.resource.resource_type, at=now,
                            event_id=change.event_id[:200], event_time=change.event_time,
                            results=tuple(deps.catalog.not_evaluated(change.resource.resource_type, note)))
    state, _ = apply_evaluation(previous, evaluation, deps.catalog.titles, deps.sla)
    try:
        deps.store.save(previous, state, outbox=())
    except (StateUnstorable, ConcurrencyConflict) as exc:
        log.error("event %s: not even the NotEvaluated state of %s could be stored: %s", change.event_id[:200],
                  change.resource.value, exc)


def retry_delay(attempts: int) -> timedelta:
    """30 s, 1 min, 2 min, ... capped at one hour: pending findings are retried forever, never dropped."""
    return min(RETRY_BASE * (2 ** min(max(attempts - 1, 0), 12)), RETRY_MAX)


def deliver(deps: Dependencies, resource_id: str, records: list[dict], now: datetime) -> int:
    """Send freshly committed findings; on failure they stay in the outbox. Returns how many stay."""
    try:
        deps.sink.send(records)
    except FindingsDeliveryError as exc:
        failed = exc.failed_ids if exc.failed_ids is not None else {r["FindingId"] for r in records}
        log.warning("%d finding(s) of %s not delivered, left in the outbox for retry: %s", len(failed),
                    resource_id, exc)
        done = [r["FindingId"] for r in records if r["FindingId"] not in failed]
        if done:
            deps.store.delivered(resource_id, done)
        for record in records:  # the inline send is over: the drain may take these now, not after the grace
            if record["FindingId"] in failed:
                deps.store.defer(PendingFinding(resource_id, record["FindingId"], record, 0, now), now, str(exc))
        return len(failed)
    deps.store.delivered(resource_id, [r["FindingId"] for r in records])
    return 0


@dataclass
class DrainOutcome:
    sent: int = 0
    deferred: int = 0


def drain_outbox(deps: Dependencies, limit: int = DRAIN_BATCH) -> DrainOutcome:
    """Deliver findings left in the outbox (failed sends, crashes), with exponential backoff per finding."""
    now = deps.clock()
    items = deps.store.pending(now, limit)
    outcome = DrainOutcome()
    if not items:
        return outcome
    failed: set[str] = set()
    error = ""
    try:
        deps.sink.send([item.record for item in items])
    except FindingsDeliveryError as exc:
        failed = exc.failed_ids if exc.failed_ids is not None else {i.finding_id for i in items}
        error = str(exc)
    by_resource: dict[str, list[str]] = {}
    for item in items:
        if item.finding_id in failed:
            continue
        by_resource.setdefault(item.resource_id, []).append(item.finding_id)
    for resource_id, ids in by_resource.items():
        deps.store.delivered(resource_id, ids)
        outcome.sent += len(ids)
    for item in items:
        if item.finding_id in failed:
            deps.store.defer(item, now + retry_delay(item.attempts + 1), error)
            outcome.deferred += 1
            level = logging.ERROR if item.attempts + 1 >= 10 else logging.WARNING
            log.log(level, "finding %s of %s still undelivered after %d attempt(s); next in %s: %s",
                    item.finding_id, item.resource_id, item.attempts + 1, retry_delay(item.attempts + 1), error)
    log.info("outbox drain: %d sent, %d deferred", outcome.sent, outcome.deferred)
    return outcome


def evaluate_now(resource_id: ResourceId, deps: Dependencies, caller: str) -> Outcome:
    """Evaluate a resource on request (HTTP, CLI): the same path as an event, read from ARM now."""
    import uuid

    from ..domain.events import Caller

    now = deps.clock()
    change = ResourceChange(event_id=f"request-{uuid.uuid4().hex}", event_type="Request.Evaluate", kind="write",
                            resource=resource_id, subject=resource_id, event_time=now, caller=Caller(name=caller),
                            operation_name="POST /api/evaluate")
    return handle_change(change, deps)
