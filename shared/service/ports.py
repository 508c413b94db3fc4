"""The ports the service depends on. Adapters in ``shared.adapters`` implement them."""
from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any, Iterator, Mapping, Protocol, Sequence

from ..domain.drift import ResourceState
from ..domain.resource_ids import ResourceId


class ConcurrencyConflict(RuntimeError):
    """Someone else changed the stored state since it was read (ETag mismatch)."""


class StateUnstorable(RuntimeError):
    """The store can never hold this state (a Table Storage limit refused it): retrying cannot help."""


# An outbox row becomes due for the drain only this long after its commit. The inline send that follows
# the commit is bounded well below it (client timeouts and retries, see shared/bootstrap.py), so a drain
# never picks up a row whose inline send may still be in flight.
OUTBOX_GRACE = timedelta(minutes=10)


class FindingsDeliveryError(RuntimeError):
    """Findings could not be delivered; they stay pending and are retried (nothing is lost).

    ``failed_ids`` names the FindingIds that failed when the sink knows; None means all of them.
    """

    def __init__(self, message: str, failed_ids: set[str] | None = None):
        super().__init__(message)
        self.failed_ids = failed_ids


@dataclass(frozen=True)
class PendingFinding:
    """A finding recorded in the outbox (with its state change) and not yet delivered."""

    resource_id: str
    finding_id: str
    record: dict
    attempts: int
    next_attempt: datetime
    last_error: str | None = None


@dataclass(frozen=True)
class ScopeMark:
    """A subscription whose assignments changed: its resources are due for re-evaluation (one row per
    subscription, however many changes were marked; ``etag`` guards the clearing)."""

    subscription_id: str
    marked_at: datetime
    reason: str
    etag: str | None = None


class ResourceUnreadable(RuntimeError):
    """The resource cannot be read and retrying will not help (its controls are NotEvaluated)."""


class ResourceAccessDenied(ResourceUnreadable):
    """The monitor's identity may not read the resource."""


class ResourceReader(Protocol):
    def get(self, resource_id: ResourceId) -> Mapping[str, Any] | None:
        """The resource's current ARM object, or None when it does not exist."""

    def related(self, resource_id: ResourceId, resource: Mapping[str, Any], spec: Any) -> list[dict]:
        """The related resources a ``shared.catalog.RelatedSpec`` names (empty when none exist).

        Raises ``ResourceUnreadable`` when they cannot be read.
        """


class ManagementGroupDirectory(Protocol):
    def subscriptions_below(self, group_id: str) -> list[str]:
        """The ids of every subscription below the management group, at any depth.

        Raises ``ResourceAccessDenied`` when the identity may not read the group, ``ResourceUnreadable``
        when it does not exist; other errors are transient.
        """


class StateStore(Protocol):
    def load(self, resource_id: ResourceId) -> ResourceState | None:
        """The stored state with its concurrency token, or None when never stored."""

    def save(self, previous: ResourceState | None, new: ResourceState, outbox: Sequence[Mapping[str, Any]] = ()) -> None:
        """Write ``new`` and the ``outbox`` finding records in one atomic step, if the stored copy is
        still ``previous``; else raise ConcurrencyConflict and write nothing."""

    def pending(self, now: datetime, limit: int) -> list[PendingFinding]:
        """Outbox findings due for (re)delivery at ``now``, oldest first, at most ``limit``."""

    def delivered(self, resource_id: str, finding_ids: Sequence[str]) -> None:
        """Remove delivered findings from the outbox (already-removed ones are fine)."""

    def defer(self, item: PendingFinding, next_attempt: datetime, error: str) -> None:
        """Record a failed delivery; the finding is due again at ``next_attempt``."""

    def states(self) -> Iterator[ResourceState]:
        """Every stored resource state (for reports and the demo)."""

    def mark_scope(self, subscription_id: str, at: datetime, reason: str) -> None:
        """The subscription's assignments changed: its resources are due for re-evaluation (upsert)."""

    def due_scopes(self, before: datetime) -> list[ScopeMark]:
        """Subscriptions marked at or before ``before``."""

    def clear_scope(self, mark: ScopeMark) -> bool:
        """Remove the mark unless it was marked again since it was read (then False)."""

    def policy_fingerprint(self, subscription_id: str) -> str | None:
        """What the subscription's assignments were when last compared (the refresh timer's)."""

    def save_policy_fingerprint(self, subscription_id: str, fingerprint: str) -> None: ...


class FindingsSink(Protocol):
    def send(self, records: Sequence[Mapping[str, Any]]) -> None:
        """Deliver finding records, or raise FindingsDeliveryError."""
