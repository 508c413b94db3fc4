"""When what is assigned changes, re-evaluate the subscriptions it reaches: bounded, one listing each.

A policy change event (an assignment, exemption, definition or set written or deleted at subscription
or resource-group scope) marks its subscription (``handle_change``); a change at a management group
sends no event, so the assignments timer compares each monitored subscription's assignments with what
it saw last (a digest in the store) and marks the subscription when they differ. The timer then takes
the marks that have settled (``SETTLE``: a burst of writes, an Azure Landing Zones deployment say,
coalesces into one mark per subscription) and re-evaluates each subscription through the
reconciliation path: one Resource Graph listing of the covered types, each row evaluated as an
event would be, and the stored resources with assigned controls that the listing did not reach
re-read from ARM (their type may have lost every control: their findings close). Marks left when the
run's time budget is spent wait for the next run; a mark made again while its subscription was being
re-evaluated stays (its ETag changed), so nothing is lost.
"""
from __future__ import annotations

import logging
import uuid
from dataclasses import dataclass, field
from datetime import timedelta
from typing import Any, Iterable

from ..domain.events import EventRejected
from ..domain.resource_ids import InvalidResourceId, parse_resource_id
from .changes import Dependencies, handle_change
from .ports import ConcurrencyConflict, ResourceUnreadable
from .reconcile import GRAPH_LAG, _change, covered_types

log = logging.getLogger(__name__)
SETTLE = timedelta(seconds=30)
BUDGET = timedelta(minutes=4)  # per timer run: well inside a one-minute schedule's overlap rules and host timeouts


@dataclass
class ScopesOutcome:
    compared: int = 0  # subscriptions whose assignments were compared with the stored digest
    changed: list[str] = field(default_factory=list)  # ... and found different (marked)
    reevaluated: list[str] = field(default_factory=list)
    listed: int = 0
    rechecked: int = 0  # stored resources with assigned controls that the listing did not reach
    findings: int = 0
    errors: int = 0
    left: int = 0  # marks left for the next run (the budget was spent)


def refresh_assignments(deps: Dependencies, lister: Any, subscriptions: Iterable[str], *,
                        settle: timedelta = SETTLE, budget: timedelta = BUDGET) -> ScopesOutcome:
    """The assignments timer: notice changes (management groups' included), then re-evaluate the
    subscriptions marked, as far as ``budget`` goes."""
    outcome = ScopesOutcome()
    if deps.assigned is None:
        return outcome
    started = deps.clock()
    for subscription in sorted({s.lower() for s in subscriptions}):
        try:
            view = deps.assigned.view(subscription)
        except ResourceUnreadable as exc:
            outcome.errors += 1
            log.warning("assignments of subscription %s unreadable: %s (compared again next run)", subscription, exc)
            continue
        outcome.compared += 1
        digest, seen = view.fingerprint(), deps.store.policy_fingerprint(subscription)
        if digest != seen:
            why = "assignments read for the first time" if seen is None else "assignments changed"
            deps.store.mark_scope(subscription, started - settle, why)
            deps.store.save_policy_fingerprint(subscription, digest)
            outcome.changed.append(subscription)
            log.info("subscription %s: %s (%d assignment(s), %d exemption(s)); re-evaluation queued", subscription,
                     why, len(view.policy.assignments), len(view.policy.exemptions))
    marks = deps.store.due_scopes(started - settle)
    stored = _assigned_states(deps, {m.subscription_id.lower() for m in marks}) if marks else {}
    for index, mark in enumerate(marks):
        if deps.clock() - started >= budget:
            outcome.left = len(marks) - index
            log.warning("assignments timer: time budget of %s spent; %d subscription(s) wait for the next run",
                        budget, outcome.left)
            break
        try:
            reevaluate_subscription(deps, lister, mark.subscription_id, outcome,
                                    stored.get(mark.subscription_id.lower(), []))
        except ResourceUnreadable as exc:
            outcome.errors += 1
            log.warning("subscription %s not re-evaluated (%s); its mark stays for the next run", mark.subscription_id,
                        exc)
            continue
        if not deps.store.clear_scope(mark):
            log.info("subscription %s was marked again while re-evaluated; it stays due", mark.subscription_id)
    if outcome.changed or outcome.reevaluated:
        log.info("assignments timer: %d compared, %d changed, %d re-evaluated (%d listed, %d re-checked, %d findings, "
                 "%d errors), %d left", outcome.compared, len(outcome.changed), len(outcome.reevaluated),
                 outcome.listed, outcome.rechecked, outcome.findings, outcome.errors, outcome.left)
    return outcome


def _assigned_states(deps: Dependencies, subscriptions: set[str]) -> dict[str, list[str]]:
    """Per subscription, the stored resources with a decided assigned control: one pass over the store for
    the whole run, however many subscriptions it re-evaluates."""
    found: dict[str, list[str]] = {}
    for state in deps.store.states():
        if state.deleted or not any(cs.policy is not None and cs.status is not None for cs in state.controls.values()):
            continue
        subscription = parse_resource_id(state.resource_id).subscription_id.lower()
        if subscription in subscriptions:
            found.setdefault(subscription, []).append(state.resource_id)
    return found


def reevaluate_subscription(deps: Dependencies, lister: Any, subscription: str, outcome: ScopesOutcome,
                            stored: Iterable[str] | None = None) -> None:
    """One Resource Graph listing of the subscription, each row through the event path; then ``stored``
    (resources with assigned controls: found in the store when not given) that the listing did not reach."""
    run_id = f"assigned-{deps.clock():%Y%m%dT%H%M%S}-{uuid.uuid4().hex[:6]}"
    view = deps.assigned.view(subscription)
    types = sorted(set(covered_types(deps.catalog)) | set(covered_types(view.catalog)), key=str.lower)
    as_of = deps.clock() - GRAPH_LAG  # Resource Graph lags behind ARM: a newer event's verdict stands
    listed: set[str] = set()
    log.info("subscription %s: re-evaluating %d type(s) after an assignments change (%s)", subscription, len(types),
             run_id)
    for page in lister.pages([subscription], types):
        for row in page.resources:
            outcome.listed += 1
            listed.add(str(row.get("id", "")).lower())
            _evaluate(deps, row, run_id, as_of, outcome)
    if stored is None:
        stored = _assigned_states(deps, {subscription.lower()}).get(subscription.lower(), [])
    for resource_id in stored:
        if resource_id.lower() in listed:
            continue
        outcome.rechecked += 1
        _evaluate(deps, None, run_id, deps.clock(), outcome, resource_id=resource_id)
    outcome.reevaluated.append(subscription)


def _evaluate(deps: Dependencies, row: dict | None, run_id: str, at, outcome: ScopesOutcome,
              resource_id: str | None = None) -> None:
    """One resource through the event path; a row an event evaluated after the listing's time is read
    from ARM instead (the event was judged against the old assignments)."""
    try:
        change = _change(resource_id or row["id"], run_id, at, payload=row)
        result = handle_change(change, deps, always=True)
        if row is not None and result.skipped and result.skipped.startswith("stale payload"):
            result = handle_change(_change(row["id"], run_id, deps.clock()), deps, always=True)
    except (EventRejected, InvalidResourceId, KeyError) as exc:
        log.info("assignments re-evaluation skipped %s: %s", resource_id or (row or {}).get("id"), exc)
        return
    except (ConcurrencyConflict, ResourceUnreadable) as exc:
        outcome.errors += 1
        log.warning("assignments re-evaluation could not evaluate %s: %s", resource_id or (row or {}).get("id"), exc)
        return
    outcome.findings += len(result.findings)
