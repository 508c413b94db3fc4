"""Scheduled reconciliation: catch what events missed, close what disappeared, flag what is overdue.

1. List the resources of the covered types in the monitored subscriptions with
   Azure Resource Graph, page by page, and evaluate each row through the same
   path as an event (``handle_change`` with the row as payload).
2. Sweep the stored states: a resource the listing did not reach is read from
   ARM; if it is gone (404) its open findings close (``Deleted``), if it exists
   it is re-evaluated. Open findings past their due date get one ``Overdue``
   record each.
3. Record a posture summary (for reports).

A checkpoint after every page (the Resource Graph skip token) lets a run that
crashed resume where it stopped. Events win over the listing: a row is evaluated
as of the run's start minus ``GRAPH_LAG``, so a resource that an event evaluated
more recently is left alone (Resource Graph lags behind ARM).
"""
from __future__ import annotations

import logging
import uuid
from dataclasses import dataclass, replace
from datetime import datetime, timedelta
from typing import Any, Iterable

from ..catalog import Status
from ..domain.drift import ControlTransition, Transition, described
from ..domain.events import Caller, EventRejected, ResourceChange
from ..domain.findings import finding_record, snapshot_records
from .ports import ConcurrencyConflict, FindingsDeliveryError, ResourceUnreadable
from ..domain.posture import summarize
from ..domain.resource_ids import InvalidResourceId, parse_resource_id, tracked_resource
from .changes import Dependencies, deliver, handle_change

log = logging.getLogger(__name__)
GRAPH_LAG = timedelta(minutes=5)
CALLER = Caller(name="reconciliation")


@dataclass
class ReconcileOutcome:
    run_id: str
    started: datetime
    resumed: bool = False
    pages: int = 0
    listed: int = 0
    findings: int = 0
    skipped: int = 0
    errors: int = 0
    rechecked: int = 0
    deleted: int = 0
    overdue: int = 0
    snapshot: int = 0  # posture snapshot records sent


def covered_types(catalog) -> list[str]:
    """Resource types the catalog has controls for (the listing's filter)."""
    return sorted({t for c in catalog.controls for t in c.resource_types if t != "*"})


def _types(deps: Dependencies, subscriptions: list[str]) -> list[str]:
    """The catalog's types and those of the assignments of ``subscriptions`` (when they are a source)."""
    types = set(covered_types(deps.catalog))
    for subscription in subscriptions if deps.assigned is not None else ():
        try:
            types.update(covered_types(deps.assigned.view(subscription).catalog))
        except ResourceUnreadable as exc:
            log.warning("reconciliation: assignments of subscription %s unreadable (%s); their types are not "
                        "listed this run", subscription, exc)
    return sorted(types, key=str.lower)


def _change(resource_id: str, run_id: str, at: datetime, kind: str = "write", payload: Any = None) -> ResourceChange:
    rid = tracked_resource(parse_resource_id(resource_id))
    return ResourceChange(event_id=f"reconcile-{run_id}-{uuid.uuid5(uuid.NAMESPACE_URL, rid.key).hex[:16]}",
                          event_type="Reconciliation", kind=kind, resource=rid, subject=rid, event_time=at,
                          caller=CALLER, operation_name="reconciliation", payload=payload,
                          payload_complete=payload is not None)


def reconcile(deps: Dependencies, lister: Any, subscriptions: Iterable[str],
              resource_types: list[str] | None = None) -> ReconcileOutcome:
    subscriptions = sorted({s.lower() for s in subscriptions})
    types = resource_types if resource_types is not None else _types(deps, subscriptions)
    checkpoint = deps.store.load_checkpoint()
    if checkpoint and checkpoint.get("phase") == "listing":
        outcome = ReconcileOutcome(checkpoint["runId"], datetime.fromisoformat(checkpoint["started"]), resumed=True,
                                   pages=checkpoint["pages"], listed=checkpoint["listed"])
        token = checkpoint.get("skipToken")
        log.warning("reconciliation %s resumes after page %d (%d resources so far)", outcome.run_id, outcome.pages,
                    outcome.listed)
    else:
        started = deps.clock()
        outcome = ReconcileOutcome(f"{started:%Y%m%dT%H%M%S}-{uuid.uuid4().hex[:6]}", started)
        token = None
    as_of = outcome.started - GRAPH_LAG
    log.info("reconciliation %s: %d subscription(s), %d type(s)", outcome.run_id, len(subscriptions), len(types))

    if not (checkpoint and checkpoint.get("phase") == "sweep" and checkpoint.get("runId") == outcome.run_id):
        for page in lister.pages(subscriptions, types, skip_token=token):
            for row in page.resources:
                _evaluate_row(row, outcome, deps, as_of)
            outcome.pages = page.number
            deps.store.save_checkpoint({"phase": "listing" if page.skip_token else "sweep", "runId": outcome.run_id,
                                        "started": outcome.started.isoformat(), "skipToken": page.skip_token,
                                        "pages": outcome.pages, "listed": outcome.listed})
            log.info("reconciliation %s: page %d, %d resources listed, %d findings so far", outcome.run_id,
                     page.number, outcome.listed, outcome.findings)

    _sweep(deps, outcome, set(subscriptions), {t.lower() for t in types})
    severities = {cid: severity for cid, (_, severity) in deps.catalog.titles.items()}
    summary = summarize(deps.store.states(), deps.clock(), severities)
    deps.store.record_posture(summary)
    outcome.snapshot = _send_snapshot(deps, outcome.run_id, severities)
    deps.store.clear_checkpoint()
    log.info("reconciliation %s done: %d listed, %d findings, %d re-checked, %d deleted, %d overdue, %d errors",
             outcome.run_id, outcome.listed, outcome.findings, outcome.rechecked, outcome.deleted, outcome.overdue,
             outcome.errors)
    return outcome


def _evaluate_row(row: dict, outcome: ReconcileOutcome, deps: Dependencies, as_of: datetime) -> None:
    outcome.listed += 1
    try:
        change = _change(row["id"], outcome.run_id, as_of, payload=row)
        result = handle_change(change, deps)
    except (EventRejected, InvalidResourceId, KeyError) as exc:
        outcome.skipped += 1
        log.info("reconciliation skipped %s: %s", row.get("id"), exc)
        return
    except (ConcurrencyConflict, ResourceUnreadable) as exc:
        outcome.errors += 1
        log.warning("reconciliation could not evaluate %s: %s", row.get("id"), exc)
        return
    outcome.findings += len(result.findings)


def _sweep(deps: Dependencies, outcome: ReconcileOutcome, subscriptions: set[str], types: set[str]) -> None:
    """States the listing did not reach: re-read from ARM (gone: Deleted); open findings past due: Overdue."""
    now = deps.clock()
    for state in deps.store.states():
        if state.deleted:
            continue
        rid = parse_resource_id(state.resource_id)
        listed_type = state.resource_type.lower() in types
        if rid.subscription_id.lower() in subscriptions and listed_type and (
                state.last_evaluated is None or state.last_evaluated < outcome.started):
            if not deps.scopes.allows(rid):
                continue
            outcome.rechecked += 1
            try:
                exists = deps.reader.get(rid) is not None
            except ResourceUnreadable as exc:
                outcome.errors += 1
                log.warning("reconciliation could not re-read %s: %s", rid.value, exc)
                continue
            change = _change(rid.value, outcome.run_id, now, kind="write" if exists else "delete")
            result = handle_change(change, deps)
            outcome.findings += len(result.findings)
            outcome.deleted += 0 if exists else 1
            state = deps.store.load(rid)
            if state is None or state.deleted:
                continue
        outcome.overdue += _notify_overdue(state, deps, now, outcome.run_id)


def _notify_overdue(state, deps: Dependencies, now: datetime, run_id: str) -> int:
    """One Overdue record per open finding past its due date (once: the control remembers it)."""
    titles = deps.catalog.titles
    for _ in range(5):
        due = [cs for cs in state.controls.values()
               if cs.status == Status.NONCOMPLIANT and cs.due is not None and cs.due < now and not cs.overdue_notified]
        if not due:
            return 0
        rid = parse_resource_id(state.resource_id)
        change = _change(rid.value, run_id, now)
        transitions = [ControlTransition(cs.control_id, *described(cs.control_id, cs, titles),
                                         Transition.OVERDUE, Status.NONCOMPLIANT, Status.NONCOMPLIANT, cs.version,
                                         cs.evidence, cs.due, cs.policy) for cs in due]
        records = [finding_record(t, state, change, now) for t in transitions]
        controls = dict(state.controls)
        for cs in due:
            controls[cs.control_id] = replace(cs, overdue_notified=True)
        try:
            deps.store.save(state, replace(state, controls=controls), outbox=records)
        except ConcurrencyConflict:
            state = deps.store.load(rid)
            if state is None or state.deleted:
                return 0
            continue
        deliver(deps, state.resource_id, records, now)
        return len(records)
    return 0


SNAPSHOT_BATCH = 5000


def _send_snapshot(deps: Dependencies, run_id: str, severities: dict[str, str]) -> int:
    """The current status of every (resource, control) to the snapshot stream, in batches (memory stays flat).

    A failed batch is logged and the run goes on: the next run sends a complete snapshot again.
    """
    if deps.snapshot_sink is None:
        return 0
    now, sent, batch = deps.clock(), 0, []
    for state in deps.store.states():
        if state.deleted:
            continue
        batch.extend(snapshot_records(state, run_id, now, severities))
        if len(batch) >= SNAPSHOT_BATCH:
            sent += _send_batch(deps, batch)
            batch = []
    if batch:
        sent += _send_batch(deps, batch)
    return sent


def _send_batch(deps: Dependencies, batch: list[dict]) -> int:
    try:
        deps.snapshot_sink.send(batch)
    except FindingsDeliveryError as exc:
        log.error("posture snapshot batch of %d record(s) not delivered: %s", len(batch), exc)
        return 0
    return len(batch)
