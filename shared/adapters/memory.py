"""In-memory and file adapters: for unit tests, ``replay`` and the demo."""
from __future__ import annotations

import copy
import itertools
import json
import threading
from dataclasses import replace
from datetime import datetime
from pathlib import Path
from typing import Any, Iterable, Iterator, Mapping, Sequence

from ..domain.drift import ResourceState
from ..service.ports import OUTBOX_GRACE, ConcurrencyConflict, FindingsDeliveryError, PendingFinding, ScopeMark
from ..domain.resource_ids import ResourceId, parse_resource_id


class InMemoryStateStore:
    """A StateStore with the same optimistic-concurrency contract as the table store."""

    def __init__(self) -> None:
        self._rows: dict[str, ResourceState] = {}
        self._outbox: dict[tuple[str, str], PendingFinding] = {}
        self._checkpoint: dict | None = None  # reconciliation bookkeeping
        self._posture: list = []
        self._scopes: dict[str, ScopeMark] = {}
        self._fingerprints: dict[str, str] = {}
        self._etags = itertools.count(1)
        self._lock = threading.Lock()
        self.loads = 0
        self.saves = 0

    def load(self, resource_id: ResourceId) -> ResourceState | None:
        with self._lock:
            self.loads += 1
            return self._rows.get(resource_id.key)

    def save(self, previous: ResourceState | None, new: ResourceState, outbox: Sequence[Mapping[str, Any]] = ()) -> None:
        with self._lock:
            self.saves += 1
            key = new.resource_id.lower()
            current = self._rows.get(key)
            if (current.etag if current else None) != (previous.etag if previous else None):
                raise ConcurrencyConflict(f"state of {new.resource_id} changed since it was read")
            self._rows[key] = replace(new, etag=f"m{next(self._etags)}")
            for record in outbox:
                self._outbox[(key, record["FindingId"])] = PendingFinding(
                    new.resource_id, record["FindingId"], dict(record), 0, new.last_evaluated + OUTBOX_GRACE)

    def pending(self, now: datetime, limit: int) -> list[PendingFinding]:
        with self._lock:
            due = [p for p in self._outbox.values() if p.next_attempt <= now]
        return sorted(due, key=lambda p: p.next_attempt)[:limit]

    def delivered(self, resource_id: str, finding_ids: Sequence[str]) -> None:
        with self._lock:
            for finding_id in finding_ids:
                self._outbox.pop((resource_id.lower(), finding_id), None)

    def defer(self, item: PendingFinding, next_attempt: datetime, error: str) -> None:
        with self._lock:
            key = (item.resource_id.lower(), item.finding_id)
            if key in self._outbox:
                self._outbox[key] = replace(item, attempts=item.attempts + 1, next_attempt=next_attempt,
                                            last_error=error)

    def states(self) -> Iterator[ResourceState]:
        with self._lock:
            snapshot = list(self._rows.values())
        return iter(sorted(snapshot, key=lambda s: s.resource_id.lower()))

    def load_checkpoint(self) -> dict | None:
        return copy.deepcopy(self._checkpoint)

    def save_checkpoint(self, checkpoint: dict) -> None:
        self._checkpoint = copy.deepcopy(checkpoint)

    def clear_checkpoint(self) -> None:
        self._checkpoint = None

    def mark_scope(self, subscription_id: str, at: datetime, reason: str) -> None:
        with self._lock:
            key = subscription_id.lower()
            self._scopes[key] = ScopeMark(key, at, reason, f"m{next(self._etags)}")

    def due_scopes(self, before: datetime) -> list[ScopeMark]:
        with self._lock:
            return sorted((m for m in self._scopes.values() if m.marked_at <= before), key=lambda m: m.subscription_id)

    def clear_scope(self, mark: ScopeMark) -> bool:
        with self._lock:
            current = self._scopes.get(mark.subscription_id)
            if current is not None and current.etag != mark.etag:
                return False
            self._scopes.pop(mark.subscription_id, None)
            return True

    def policy_fingerprint(self, subscription_id: str) -> str | None:
        return self._fingerprints.get(subscription_id.lower())

    def save_policy_fingerprint(self, subscription_id: str, fingerprint: str) -> None:
        self._fingerprints[subscription_id.lower()] = fingerprint

    def record_posture(self, summary) -> None:
        self._posture.append(summary)

    def posture_history(self, limit: int = 1000) -> list:
        return sorted(self._posture, key=lambda p: p.at)[-limit:]


def _body(resource: Mapping[str, Any]) -> str | Any:
    """What a read returns, kept as a response body is: JSON text (a test's own objects that are not
    JSON: a copy of them)."""
    try:
        return json.dumps(resource)
    except (TypeError, ValueError):
        return copy.deepcopy(resource)


def _parse(body: str | Any) -> Any:
    return json.loads(body) if isinstance(body, str) else copy.deepcopy(body)


class StaticResourceReader:
    """Answers ARM reads from a fixed set of resource objects; an id not in it is gone. Each read parses
    the object from its JSON text, as an ARM read parses the response body: a fresh copy every time."""

    def __init__(self, resources: Iterable[Mapping[str, Any]] = ()) -> None:
        self._resources: dict[str, tuple[str | Any, Any]] = {}  # key -> (the body, one parsed copy of it)
        self.reads = 0
        for resource in resources:
            self.put(resource)

    def put(self, resource: Mapping[str, Any]) -> None:
        body = _body(dict(resource))
        self._resources[parse_resource_id(resource.get("id")).key] = (body, _parse(body))

    def remove(self, resource_id: str) -> None:
        self._resources.pop(parse_resource_id(resource_id).key, None)

    def get(self, resource_id: ResourceId) -> Mapping[str, Any] | None:
        self.reads += 1
        found = self._resources.get(resource_id.key)
        return _parse(found[0]) if found is not None else None

    def related(self, resource_id: ResourceId, resource: Mapping[str, Any], spec: Any) -> list[dict]:
        """Related data travels with the resource under ``"$related"`` (as in offline ``evaluate``)."""
        from ..catalog import RelatedUnavailable, offline_related

        try:
            return offline_related(resource, spec)
        except RelatedUnavailable:
            stored = self._resources.get(resource_id.key)
            if stored is None or stored[1] is resource:
                raise
            return offline_related(stored[1], spec)  # read only: the reader's own parsed copy


class MemorySink:
    """Keeps every record sent, in order."""

    def __init__(self) -> None:
        self.records: list[dict[str, Any]] = []
        self.calls = 0

    def send(self, records: Sequence[Mapping[str, Any]]) -> None:
        self.calls += 1
        self.records.extend(dict(r) for r in records)


class JsonLinesSink:
    """Appends each record as one JSON line to a local file (the local alternative to Log Analytics)."""

    def __init__(self, path: str | Path) -> None:
        self.path = Path(path)

    def send(self, records: Sequence[Mapping[str, Any]]) -> None:
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            with self.path.open("a", encoding="utf-8") as handle:
                for record in records:
                    handle.write(json.dumps(record, default=str, separators=(",", ":")) + "\n")
        except OSError as exc:
            raise FindingsDeliveryError(f"cannot append findings to {self.path}: {exc.strerror or exc}") from exc
