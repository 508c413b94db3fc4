"""Exemptions in Azure Table Storage (one partition per subscription), and in memory for tests and the CLI."""
from __future__ import annotations

import threading
from datetime import datetime, timedelta
from typing import Iterator

from azure.core.exceptions import ResourceNotFoundError

from ..domain.exemptions import Exemption
from .table_store import TableBacked


def _entity(e: Exemption) -> dict:
    return {"PartitionKey": e.subscription_id.lower(), "RowKey": e.id, "Scope": e.scope,
            "ControlId": e.control_id or "", "Justification": e.justification, "Requester": e.requester,
            "Expires": e.expires, "Created": e.created}


def _exemption(entity) -> Exemption:
    return Exemption(entity["RowKey"], entity["Scope"], entity.get("ControlId") or None, entity["Justification"],
                     entity["Requester"], entity["Expires"], entity["Created"])


class TableExemptionStore(TableBacked):

    def add(self, exemption: Exemption) -> None:
        self.table.create_entity(_entity(exemption))

    def remove(self, exemption_id: str) -> Exemption | None:
        for entity in self.table.query_entities("RowKey eq @id", parameters={"id": exemption_id}):
            try:
                self.table.delete_entity(entity["PartitionKey"], entity["RowKey"])
            except ResourceNotFoundError:
                return None
            return _exemption(entity)
        return None

    def for_subscription(self, subscription_id: str) -> list[Exemption]:
        return [_exemption(e) for e in self.table.query_entities(
            "PartitionKey eq @pk", parameters={"pk": subscription_id.lower()})]

    def all(self) -> Iterator[Exemption]:
        return (_exemption(e) for e in self.table.list_entities())


class InMemoryExemptionStore:
    def __init__(self) -> None:
        self._items: dict[str, Exemption] = {}
        self.queries = 0

    def add(self, exemption: Exemption) -> None:
        self._items[exemption.id] = exemption

    def remove(self, exemption_id: str) -> Exemption | None:
        return self._items.pop(exemption_id, None)

    def for_subscription(self, subscription_id: str) -> list[Exemption]:
        self.queries += 1
        return [e for e in self._items.values() if e.subscription_id.lower() == subscription_id.lower()]

    def all(self) -> Iterator[Exemption]:
        return iter(list(self._items.values()))


class CachedExemptions:
    """Exemptions per subscription, re-read at most every ``ttl``: one table query a minute, not one per event."""

    def __init__(self, store, ttl: timedelta = timedelta(seconds=60)) -> None:
        self.store, self.ttl = store, ttl
        self._cache: dict[str, tuple[datetime, list[Exemption]]] = {}
        self._lock = threading.Lock()

    def for_subscription(self, subscription_id: str, now: datetime) -> list[Exemption]:
        key = subscription_id.lower()
        with self._lock:
            hit = self._cache.get(key)
            if hit and now - hit[0] < self.ttl:
                return hit[1]
        found = self.store.for_subscription(subscription_id)
        with self._lock:
            self._cache[key] = (now, found)
        return found
