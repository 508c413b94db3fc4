"""Parity in Azure: the stored verdicts of assigned controls beside Azure Policy's latest states of the
monitored subscriptions, one ``ComplianceParity_CL`` record per comparison (``shared.domain.parity``).

The monitor's side is the state store: every (resource, assigned control) with its last verdict and
the resource's last change time. Azure's side is PolicyInsights' latest states of each subscription,
read page by page. Records go to the parity sink in batches; a batch that fails is logged and the
run goes on (the next run compares everything again).
"""
from __future__ import annotations

import logging
import uuid
from typing import Any, Callable, Iterable, Iterator

from ..domain.drift import ResourceState
from ..domain.parity import ParityReport, Verdict, azure_states, compare
from ..domain.resource_ids import InvalidResourceId, parse_resource_id
from .ports import FindingsDeliveryError, FindingsSink, ResourceUnreadable, StateStore

log = logging.getLogger(__name__)
BATCH = 5000


def stored_verdicts(states: Iterable[ResourceState], subscriptions: set[str] | None = None) -> Iterator[Verdict]:
    """The verdict of every assigned control of the (not deleted) stored resources."""
    for state in states:
        if state.deleted:
            continue
        try:
            subscription = parse_resource_id(state.resource_id).subscription_id.lower()
        except InvalidResourceId:
            continue
        if subscriptions is not None and subscription not in subscriptions:
            continue
        for cs in state.controls.values():
            if cs.policy is None:
                continue
            yield Verdict(state.resource_id, cs.policy.assignment_id, cs.policy.definition_id,
                          cs.status.value if cs.status else "NotEvaluated", cs.policy.set_id, cs.policy.reference_id,
                          cs.policy.title, tuple(cs.evidence), state.last_event_time)


def run_parity(store: StateStore, latest: Callable[[str], Iterable[dict]], subscriptions: Iterable[str],
               sink: FindingsSink | None, clock: Callable[[], Any]) -> tuple[ParityReport, int]:
    """Compare; send one record per comparison to ``sink`` (None: not sent). Returns (report, records sent)."""
    subscriptions = sorted({s.lower() for s in subscriptions})
    states, problems = [], []
    for subscription in subscriptions:
        try:
            states.extend(azure_states(list(latest(subscription)), f"policy states of subscription {subscription}",
                                       problems))
        except ResourceUnreadable as exc:
            log.warning("parity: %s; subscription %s left out of this run", exc, subscription)
            subscriptions = [s for s in subscriptions if s != subscription]
    for problem in problems[:20]:
        log.warning("parity: %s (left out)", problem)
    report = compare(stored_verdicts(store.states(), set(subscriptions)), states)
    sent = 0
    if sink is not None and report.comparisons:
        now = clock()
        run_id = f"{now:%Y%m%dT%H%M%S}-{uuid.uuid4().hex[:6]}"
        records = [c.as_record(now, run_id) for c in report.comparisons]
        for start in range(0, len(records), BATCH):
            batch = records[start:start + BATCH]
            try:
                sink.send(batch)
            except FindingsDeliveryError as exc:
                log.error("parity: a batch of %d record(s) not delivered: %s", len(batch), exc)
                continue
            sent += len(batch)
    log.info("%s; %d record(s) sent", report.summary(), sent)
    return report, sent
