"""What is assigned in Azure Policy, per subscription, kept current: read at first use, cached, read again
when older than ``refresh`` (a timer's period, default 10 minutes) or when a policy change event says
so, and never more often than ``settle`` however many events come (a burst of assignment writes costs
one listing per subscription).

The listing of a subscription (``PolicyListing``: ARM's unfiltered list of its assignments and
exemptions) holds what applies to it, management groups' included; definitions and policy sets are
read by id (``definitions``) once and kept, until a definition changes. Pure apart from the ports;
the policy importer is loaded on first use, so the Function App's cold start does not pay for it.
"""
from __future__ import annotations

import logging
from dataclasses import dataclass, replace
from datetime import datetime, timedelta, timezone
from typing import Any, Callable, Iterable, Mapping, Protocol

from ..domain.assignments import SubscriptionPolicy, subscription_policy
from ..domain.results import ControlResult, PolicyRef, Status
from ..policy import FieldResolver

log = logging.getLogger(__name__)

# Writes and deletes of these types change what is assigned (Event Grid, at subscription and
# resource-group scope; management-group changes have no system topic, the refresh covers them).
POLICY_TYPES = frozenset({"microsoft.authorization/policyassignments", "microsoft.authorization/policyexemptions",
                          "microsoft.authorization/policydefinitions",
                          "microsoft.authorization/policysetdefinitions"})
DEFINITION_TYPES = frozenset({"microsoft.authorization/policydefinitions",
                              "microsoft.authorization/policysetdefinitions"})


def is_policy_change(resource_type: str) -> bool:
    return resource_type.lower() in POLICY_TYPES


class PolicyListing(Protocol):
    def assignments(self, subscription_id: str) -> list[dict]:
        """ARM's unfiltered list of the subscription's policy assignments (inherited ones included)."""

    def exemptions(self, subscription_id: str) -> list[dict]:
        """The same for policy exemptions."""


@dataclass(frozen=True)
class AssignedView:
    """One subscription's assignments as controls, and when they were read."""

    policy: SubscriptionPolicy
    assigned: Any  # shared.policy.importing.AssignedCatalog
    read_at: datetime

    @property
    def catalog(self):
        return self.assigned.catalog

    def may_apply(self, resource_type: str) -> bool:
        return bool(self.assigned.controls) and self.assigned.catalog.may_apply(resource_type)

    def reached(self, resource: Mapping[str, Any]) -> set[str]:
        """Ids of the assigned controls whose assignment reaches ``resource``."""
        from ..policy.importing import reached_controls

        return reached_controls(self.assigned, resource, self.policy.ancestors)

    def attributed(self, resource: Mapping[str, Any], results: Iterable[ControlResult],
                   now: datetime) -> list[ControlResult]:
        """The results of assigned controls with their assignment's ids. A non-compliant result an Azure
        Policy exemption covers becomes Exempt, naming the exemption (a compliant one stays Compliant)."""
        from ..policy.importing import exemption_for

        out = []
        for result in results:
            ac = self.assigned.controls[result.control_id]
            message = ac.assignment.message_for(ac.reference_id) if result.status == Status.NONCOMPLIANT else None
            exemption = exemption_for(ac, resource, self.policy.exemptions, now) \
                if result.status == Status.NONCOMPLIANT else None
            policy = PolicyRef(ac.assignment.id, ac.definition_id, ac.set_id, ac.reference_id, result.title,
                               result.severity, message, exemption.id if exemption else None)
            if exemption is not None:
                expiry = f" until {exemption.expires.isoformat()}" if exemption.expires else ""
                result = replace(result, status=Status.EXEMPT, reason=(
                    f"exempted by Azure Policy exemption {exemption.id} ({exemption.category}){expiry}"),
                    evidence=[*result.evidence, {"exemption": exemption.id, "category": exemption.category,
                                                 **({"expires": exemption.expires.isoformat()}
                                                    if exemption.expires else {})}])
            out.append(replace(result, policy=policy))
        return out

    def evaluate(self, resource: Mapping[str, Any], now: datetime, related: Any = None) -> list[dict]:
        from ..policy.importing import evaluate_assigned

        return evaluate_assigned(self.assigned, resource, now=now, exemptions=self.policy.exemptions,
                                 ancestors=self.policy.ancestors, related=related)

    def fingerprint(self) -> str:
        """What is assigned and exempted, as a digest (the timer compares it to notice a change made at a
        management group, which sends no event)."""
        import dataclasses
        import hashlib
        import json

        def keyed(value: Any) -> Any:  # keys as text (a message map has None for "every member")
            if isinstance(value, Mapping):
                return {str(k): keyed(v) for k, v in value.items()}
            return [keyed(v) for v in value] if isinstance(value, (list, tuple)) else value

        def digestible(item: Any) -> str:
            data = dataclasses.asdict(item)
            data.pop("origin", None)
            return json.dumps(keyed(data), sort_keys=True, default=str)

        parts = sorted(digestible(a) for a in self.policy.assignments)
        parts += sorted(digestible(e) for e in self.policy.exemptions)
        return hashlib.sha256("\n".join(parts).encode()).hexdigest()[:32]


class AssignedPolicy:
    def __init__(self, listing: PolicyListing, definitions: Callable[[str], Mapping[str, Any] | None],
                 resolver: FieldResolver, *, refresh: timedelta = timedelta(minutes=10),
                 settle: timedelta = timedelta(seconds=30),
                 clock: Callable[[], datetime] = lambda: datetime.now(timezone.utc)) -> None:
        self._listing, self._definitions, self._resolver = listing, definitions, resolver
        self.refresh, self.settle, self.clock = refresh, settle, clock  # clock: public, tests set it
        self._views: dict[str, AssignedView] = {}
        self._stale: set[str] = set()
        self._library = None
        self._compiled: dict = {}  # conversions shared by every subscription's view (same definition and values)
        self.listings = 0  # how many subscription listings were read (for logs and tests)

    def _policy_library(self):
        if self._library is None:
            from ..policy.importing import PolicyLibrary

            self._library = PolicyLibrary(remote=self._definitions)
        return self._library

    def view(self, subscription_id: str) -> AssignedView:
        """The subscription's view, read again when it is due (see the module docstring)."""
        key = subscription_id.lower()
        now = self.clock()
        current = self._views.get(key)
        if current is not None:
            age = now - current.read_at
            due = age >= self.refresh or (key in self._stale and age >= self.settle)
            if not due:
                return current
        from ..policy.importing import assigned_catalog

        policy = subscription_policy(subscription_id, self._listing.assignments(subscription_id),
                                     self._listing.exemptions(subscription_id))
        self.listings += 1
        for problem in policy.problems:
            log.warning("assignments of subscription %s: %s (left out)", subscription_id, problem)
        assigned = assigned_catalog(policy.assignments, self._policy_library(), resolver=self._resolver,
                                    compiled=self._compiled)
        for line in assigned.problems:
            log.warning("subscription %s: not evaluated: %s", subscription_id, line)
        view = self._views[key] = AssignedView(policy, assigned, now)
        self._stale.discard(key)
        log.info("subscription %s: %d assignment(s), %d (assignment, definition) control(s), %d exemption(s)",
                 subscription_id, len(policy.assignments), len(assigned.controls), len(policy.exemptions))
        return view

    def changed(self, subscription_id: str, resource_type: str) -> None:
        """A policy change event: the subscription's view is read again on its next use (after
        ``settle`` from the last read); a definition change also forgets the definitions read."""
        self._stale.add(subscription_id.lower())
        if resource_type.lower() in DEFINITION_TYPES:
            self._library, self._compiled = None, {}

    def refresh_all(self) -> list[str]:
        """The timer: every subscription seen is due again; returns them (their scopes to reconcile)."""
        self._stale.update(self._views)
        return sorted(self._views)
