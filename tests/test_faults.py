"""Faults on real components: Table Storage going away and coming back, ARM 403/5xx through the function."""
from __future__ import annotations

import time
import uuid
from datetime import datetime, timezone

import pytest
from azure.core.exceptions import AzureError
from azure.data.tables import TableClient

from shared.adapters.memory import InMemoryStateStore, MemorySink, StaticResourceReader
from shared.adapters.table_store import TableStateStore
from shared.bootstrap import TABLE_CLIENT_OPTIONS
from tests.conftest import pipeline_catalog
from shared.devtools.azurite import AzuriteProcess
from shared.domain.events import envelope_from_dict, parse_event
from shared.service.ports import OUTBOX_GRACE
from shared.service.changes import Dependencies, drain_outbox, handle_change

SA = ("/subscriptions/c0ffee00-0000-4000-8000-000000000001/resourceGroups/rg/providers/"
      "Microsoft.Storage/storageAccounts/stfault01")


def resource(**props):
    base = {"supportsHttpsTrafficOnly": True, "minimumTlsVersion": "TLS1_2", "allowBlobPublicAccess": False,
            "networkAcls": {"defaultAction": "Deny"}}
    base.update(props)
    return {"id": SA, "name": "stfault01", "type": "Microsoft.Storage/storageAccounts", "location": "westeurope",
            "tags": {"owner": "a", "environment": "b"}, "properties": base}


def change(event_id):
    return parse_event(envelope_from_dict({
        "id": event_id, "subject": SA, "eventType": "Microsoft.Resources.ResourceWriteSuccess",
        "eventTime": "2026-07-01T10:00:00Z", "dataVersion": "2", "data": {"resourceUri": SA}}))


def test_table_storage_outage_raises_for_redelivery_and_recovers_with_state_intact(tmp_path):
    emulator = AzuriteProcess(location=tmp_path / "azurite").start()
    try:
        options = dict(TABLE_CLIENT_OPTIONS, retry_total=1, retry_backoff_factor=0.1, connection_timeout=2)
        table = TableClient.from_connection_string(emulator.connection_string, "t" + uuid.uuid4().hex[:12], **options)
        table.create_table()
        reader = StaticResourceReader([resource()])
        deps = Dependencies(pipeline_catalog(), reader, TableStateStore(table), MemorySink())
        handle_change(change("f1"), deps)  # first seen, compliant
        reader.put(resource(allowBlobPublicAccess=True))
        emulator.stop()
        started = time.monotonic()
        with pytest.raises(AzureError):
            handle_change(change("f2"), deps)  # the handler raises: Event Grid redelivers
        assert time.monotonic() - started < 30  # bounded by retries and timeouts, never hangs
        assert deps.sink.records == []
        emulator.start()  # same port, same data
        outcome = handle_change(change("f2"), deps)  # the redelivery
        assert [(f["Transition"], f["ControlId"]) for f in outcome.findings] == [
            ("Drifted", "storage-no-public-blob-access")]
        assert deps.sink.records == outcome.findings
    finally:
        emulator.stop()


def test_store_failing_after_commit_still_delivers_through_the_outbox():
    """The commit reached the store but its response was lost: redelivery changes nothing; the drain sends."""

    class LostResponse(InMemoryStateStore):
        fail_once = True

        def save(self, previous, new, outbox=()):
            super().save(previous, new, outbox)
            if self.fail_once and outbox:
                self.fail_once = False
                raise AzureError("connection reset after the transaction was applied")

    reader = StaticResourceReader([resource(minimumTlsVersion="TLS1_0")])
    deps = Dependencies(pipeline_catalog(), reader, LostResponse(), MemorySink())
    with pytest.raises(AzureError):
        handle_change(change("l1"), deps)
    assert handle_change(change("l1"), deps).findings == []  # redelivered: already committed
    deps.clock = lambda: datetime.now(timezone.utc) + OUTBOX_GRACE  # the timer, once the grace has passed
    assert drain_outbox(deps).sent == 1
    assert [(r["Transition"], r["ControlId"]) for r in deps.sink.records] == [("New", "storage-min-tls-1-2")]
