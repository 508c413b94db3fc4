"""The monitored scopes, with the subscriptions below the monitored management groups.

``MONITORED_SCOPES`` may name management groups (``/providers/Microsoft.Management/managementGroups/<id>``)
instead of a list of subscriptions: at a thousand subscriptions the list no longer fits an app setting,
and a new subscription would need a redeployment. Which subscriptions a group holds comes from ARM
("Management Groups - Get Descendants", covered by Reader on the group) and is kept for ``ttl``.

An event from a subscription that is not in the kept list asks ARM again, at most once per ``recheck``:
a subscription created (or moved) into a monitored group is admitted by its first events, while a flood
of events from outside costs one listing a minute. When ARM cannot be asked, a subscription that was
below a group keeps being admitted (with a warning) and any other raises, so its event is redelivered
rather than refused: refusing is permanent, and the subscription may well belong.
"""
from __future__ import annotations

import logging
import threading
from datetime import datetime, timedelta, timezone
from typing import Callable

from ..domain.resource_ids import ResourceId
from ..domain.scopes import Scopes
from .ports import ManagementGroupDirectory

log = logging.getLogger(__name__)

class ScopesUnavailable(RuntimeError):
    """The management groups could not be listed a moment ago and a subscription not known to be below them
    asks: transient (the event is redelivered), never a refusal."""


TTL = timedelta(minutes=15)
RECHECK = timedelta(minutes=1)


class MonitoredScopes:
    """``Scopes`` (what it names directly) plus the subscriptions below its management groups; the same
    questions (``unrestricted``, ``subscriptions``, ``allows``, ``allows_subscription``), thread-safe."""

    def __init__(self, scopes: Scopes, directory: ManagementGroupDirectory,
                 clock: Callable[[], datetime] | None = None, ttl: timedelta = TTL, recheck: timedelta = RECHECK) -> None:
        self._scopes = scopes
        self._directory = directory
        self._clock = clock or (lambda: datetime.now(timezone.utc))
        self._ttl, self._recheck = ttl, recheck
        self._members: frozenset[str] = frozenset()
        self._listed_at: datetime | None = None
        self._failed_at: datetime | None = None  # the last failed listing (none since the last success)
        self._failure = ""
        self._lock = threading.Lock()
        self.listings = 0  # how many times the groups were listed (logs, tests)

    @property
    def unrestricted(self) -> bool:
        return self._scopes.unrestricted

    @property
    def management_groups(self) -> tuple[str, ...]:
        return self._scopes.management_groups

    @property
    def subscriptions(self) -> list[str]:
        """Every monitored subscription (lower case, sorted): named ones and those below the groups, listed
        again when the kept list is older than ``ttl``. A failed listing raises (the timers fail visibly)."""
        with self._lock:
            if self._listed_at is None or self._clock() - self._listed_at >= self._ttl:
                self._list()
            members = self._members
        return sorted(set(self._scopes.subscriptions) | members)

    def allows(self, resource: ResourceId) -> bool:
        return self._scopes.allows(resource) or self._below_groups(resource.subscription_id or "")

    def allows_subscription(self, subscription_id: str) -> bool:
        return self._scopes.allows_subscription(subscription_id) or self._below_groups(subscription_id)

    def _below_groups(self, subscription_id: str) -> bool:
        subscription = subscription_id.lower()
        if not subscription or not self._scopes.management_groups:
            return False
        with self._lock:
            now = self._clock()
            known = subscription in self._members
            due = (self._listed_at is None or now - self._listed_at >= self._ttl
                   or not known and now - self._listed_at >= self._recheck)
            if not due:
                return known
            if self._failed_at is not None and now - self._failed_at < self._recheck:
                if known:
                    return True
                raise ScopesUnavailable(f"the subscriptions below management groups {', '.join(self.management_groups)} "
                                        f"could not be listed ({self._failure}); subscription {subscription} is "
                                        "asked about again in a minute")
            try:
                self._list()
            except Exception as exc:
                # Not on every event of an outage: again after ``recheck``.
                self._failed_at, self._failure = now, f"{type(exc).__name__}: {str(exc).splitlines()[0][:300]}"
                if not known:
                    raise
                log.warning("management groups %s could not be listed (%s); subscription %s stays monitored as "
                            "it was below them at the last listing", ", ".join(self.management_groups),
                            self._failure, subscription)
                return True
            return subscription in self._members

    def _list(self) -> None:
        """List every group (the lock is held: one listing serves every waiting event)."""
        members: set[str] = set()
        for group in self._scopes.management_groups:
            below = {s.lower() for s in self._directory.subscriptions_below(group)}
            if not below:
                log.warning("management group %s holds no subscription the monitor can see", group)
            members |= below
        added, removed = members - self._members, self._members - members
        if self._listed_at is not None and (added or removed):
            log.info("monitored subscriptions below %s: %d added, %d removed (%d in all)",
                     ", ".join(self.management_groups), len(added), len(removed), len(members))
        self._members, self._listed_at, self._failed_at = frozenset(members), self._clock(), None
        self.listings += 1
