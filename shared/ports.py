"""The ports the service depends on. Adapters in ``shared.adapters`` implement them."""
from __future__ import annotations

from typing import Any, Iterator, Mapping, Protocol, Sequence

from .drift import ResourceState
from .resource_ids import ResourceId


class ConcurrencyConflict(RuntimeError):
    """Someone else changed the stored state since it was read (ETag mismatch)."""


class FindingsDeliveryError(RuntimeError):
    """Findings could not be delivered; the caller must retry (nothing was lost yet)."""


class ResourceUnreadable(RuntimeError):
    """The resource cannot be read and retrying will not help (its controls are NotEvaluated)."""


class ResourceAccessDenied(ResourceUnreadable):
    """The monitor's identity may not read the resource."""


class ResourceReader(Protocol):
    def get(self, resource_id: ResourceId) -> Mapping[str, Any] | None:
        """The resource's current ARM object, or None when it does not exist."""

    def related(self, resource_id: ResourceId, resource: Mapping[str, Any], spec: Any) -> list[dict]:
        """The related resources a ``shared.controls.RelatedSpec`` names (empty when none exist).

        Raises ``ResourceUnreadable`` when they cannot be read.
        """


class StateStore(Protocol):
    def load(self, resource_id: ResourceId) -> ResourceState | None:
        """The stored state with its concurrency token, or None when never stored."""

    def save(self, previous: ResourceState | None, new: ResourceState) -> None:
        """Write ``new`` atomically if the stored copy is still ``previous``; else ConcurrencyConflict."""

    def states(self) -> Iterator[ResourceState]:
        """Every stored resource state (for reports and the demo)."""


class FindingsSink(Protocol):
    def send(self, records: Sequence[Mapping[str, Any]]) -> None:
        """Deliver finding records, or raise FindingsDeliveryError."""
