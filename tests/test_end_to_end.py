"""End to end on real components: Event Grid events -> the function -> Azurite -> Logs Ingestion.

The function is configured only through app settings, as in Azure: ARM and the
Logs Ingestion API are local HTTPS servers, identity is DefaultAzureCredential
via a local managed-identity endpoint, state is in Azurite.
"""
from __future__ import annotations

import copy
import json
import logging
import uuid
from contextlib import contextmanager
from datetime import datetime, timezone

import pytest
from azure.data.tables import TableClient
from azure.functions.eventgrid import EventGridEventInConverter
from azure.functions.meta import Datum

from shared import bootstrap
from shared.adapters.table_store import TableStateStore
from shared.domain.resource_ids import parse_resource_id
from tests.conftest import PIPELINE_CONTROLS, disabled_except
from tests.support.local_azure import OTHER_CREDENTIAL_SETTINGS, LocalAzure

SUB = "3b8e5f21-6c4d-4a9e-8b17-0d2c4e6f8a13"
RG = f"/subscriptions/{SUB}/resourceGroups/rg-shop"
SA_ID = f"{RG}/providers/Microsoft.Storage/storageAccounts/stshop01"
NSG_ID = f"{RG}/providers/Microsoft.Network/networkSecurityGroups/nsg-shop"
TAGS = {"owner": "shop-team", "environment": "prod"}
HARDENED = {
    "id": SA_ID, "name": "stshop01", "type": "Microsoft.Storage/storageAccounts", "location": "westeurope",
    "kind": "StorageV2", "sku": {"name": "Standard_LRS", "tier": "Standard"}, "tags": TAGS,
    "properties": {"supportsHttpsTrafficOnly": True, "minimumTlsVersion": "TLS1_2", "allowBlobPublicAccess": False,
                   "networkAcls": {"bypass": "AzureServices", "defaultAction": "Deny"}, "publicNetworkAccess": "Enabled",
                   "provisioningState": "Succeeded"},
}
NSG = {
    "id": NSG_ID, "name": "nsg-shop", "type": "Microsoft.Network/networkSecurityGroups", "location": "westeurope",
    "tags": TAGS, "etag": 'W/"1f2e3d4c"',
    "properties": {"securityRules": [{
        "name": "ops-ssh", "id": NSG_ID + "/securityRules/ops-ssh",
        "properties": {"protocol": "Tcp", "sourcePortRange": "*", "destinationPortRange": "20-25",
                       "sourceAddressPrefix": "Internet", "destinationAddressPrefix": "*", "access": "Allow",
                       "priority": 120, "direction": "Inbound"}}]},
}


def storage(**props):
    resource = copy.deepcopy(HARDENED)
    resource["properties"].update(props)
    return resource


def arm_event(event_id, subject, kind="Write", cloud=False, upn="dana@contoso.com", time="2026-05-04T10:00:00.1234567Z"):
    data = {
        "authorization": {"scope": subject, "action": "write",
                          "evidence": {"role": "Contributor", "principalId": "0c1d2e3f-0000-4000-8000-000000000001"}},
        "claims": {"http://schemas.xmlsoap.org/ws/2005/05/identity/claims/upn": upn, "name": "Dana"},
        "correlationId": f"corr-{event_id}", "resourceProvider": subject.split("/providers/")[1].split("/")[0],
        "resourceUri": subject, "operationName": f"Microsoft.Resources/{kind.lower()}", "status": "Succeeded",
        "subscriptionId": SUB, "tenantId": "9a8b7c6d-0000-4000-8000-00000000000a",
    }
    etype = f"Microsoft.Resources.Resource{kind}Success"
    if cloud:
        return {"specversion": "1.0", "id": event_id, "source": f"/subscriptions/{SUB}", "subject": subject,
                "type": etype, "time": time, "data": data}
    return {"id": event_id, "topic": f"/subscriptions/{SUB}", "subject": subject, "eventType": etype,
            "eventTime": time, "data": data, "dataVersion": "2", "metadataVersion": "1"}


def arn_event(event_id, resource, time):
    info = {k: resource[k] for k in ("id", "name", "type", "location", "tags", "properties")}
    return {"id": event_id, "topic": f"/subscriptions/{SUB}", "subject": resource["id"],
            "eventType": "Microsoft.ResourceNotifications.Resources.CreatedOrUpdated", "eventTime": time,
            "dataVersion": "1", "metadataVersion": "1",
            "data": {"resourceInfo": info, "apiVersion": "2023-05-01",
                     "operationalInfo": {"resourceEventTime": time}}}


def configure_app(monkeypatch, local: LocalAzure, connection_string: str, table_name: str, enabled) -> None:
    """App settings as in Azure: the local endpoints, state in Azurite, only the ``enabled`` controls."""
    for name in OTHER_CREDENTIAL_SETTINGS:
        monkeypatch.delenv(name, raising=False)
    for name, value in local.env().items():
        monkeypatch.setenv(name, value)
    monkeypatch.setenv("STATE_STORE", "table")
    monkeypatch.setenv("MONITORED_SCOPES", f"/subscriptions/{SUB}")
    monkeypatch.setenv("STATE_TABLE_NAME", table_name)
    monkeypatch.setenv("STATE_STORAGE__connectionString", connection_string)
    monkeypatch.setenv("DISABLED_CONTROLS", ",".join(disabled_except(enabled)))
    bootstrap.override(None)


def event_function():
    """The Event Grid function, called with one event exactly as the Functions worker decodes it."""
    from handlers.resource_events import on_resource_change

    function = on_resource_change.build().get_user_function()

    def deliver(event):
        return function(EventGridEventInConverter.decode(Datum(json.dumps(event), "json"), trigger_metadata={}))

    return deliver


@contextmanager
def wired_app(monkeypatch, connection_string: str, prefix: str, **settings: str):
    """The local Azure endpoints with the app's settings pointing at them and at a fresh state table in
    Azurite (``local.table``), plus ``settings``; the app's dependencies and the table go afterwards."""
    table_name = prefix + uuid.uuid4().hex[:12]
    with LocalAzure() as local:
        configure_app(monkeypatch, local, connection_string, table_name, PIPELINE_CONTROLS)
        for name, value in settings.items():
            monkeypatch.setenv(name, value)
        local.table = TableClient.from_connection_string(connection_string, table_name)
        yield local
        bootstrap.override(None)
        local.table.delete_table()


@pytest.fixture
def pipeline(azurite_connection_string, monkeypatch):
    """The function wired from app settings to Azurite and the local Azure endpoints."""
    with wired_app(monkeypatch, azurite_connection_string, "e2e") as local:
        local.deliver = event_function()
        yield local


def seen(local):
    return [(r["Transition"], r["ControlId"], r["ResourceId"].rsplit("/", 1)[-1]) for r in local.ingested]


def test_create_drift_duplicate_resolve_delete_sequence(pipeline, caplog):
    local = pipeline
    local.put_resource(HARDENED)
    local.deliver(arm_event("e1-create", SA_ID.replace("resourceGroups", "resourcegroups")))
    assert seen(local) == []

    local.put_resource(storage(allowBlobPublicAccess=True))
    drift = arm_event("e2-open", SA_ID + "/blobServices/default", cloud=True, time="2026-05-04T10:05:00Z")
    local.deliver(drift)
    assert seen(local) == [("Drifted", "storage-no-public-blob-access", "stshop01")]
    local.deliver(drift)  # at-least-once: the same event again
    assert len(local.ingested) == 1

    gets_before = len(local.calls("arm", SA_ID))
    local.deliver(arn_event("e3-fix", HARDENED, "2026-05-04T10:20:00.5000000Z"))
    assert seen(local)[-1] == ("Resolved", "storage-no-public-blob-access", "stshop01")
    assert len(local.calls("arm", SA_ID)) == gets_before  # the payload was evaluated without an ARM read

    local.put_resource(NSG)
    local.deliver(arm_event("e4-nsg", NSG_ID + "/securityRules/ops-ssh", upn="ops@contoso.com"))
    assert seen(local)[-1] == ("New", "nsg-no-ssh-from-internet", "nsg-shop")

    local.put_resource(storage(minimumTlsVersion="TLS1_0"))
    local.deliver(arm_event("e5-tls", SA_ID, time="2026-05-04T10:30:00Z"))
    local.remove_resource(SA_ID)
    local.deliver(arm_event("e6-delete", SA_ID, kind="Delete", time="2026-05-04T10:40:00Z"))

    assert seen(local) == [
        ("Drifted", "storage-no-public-blob-access", "stshop01"),
        ("Resolved", "storage-no-public-blob-access", "stshop01"),
        ("New", "nsg-no-ssh-from-internet", "nsg-shop"),
        ("Drifted", "storage-min-tls-1-2", "stshop01"),
        ("Deleted", "storage-min-tls-1-2", "stshop01"),
    ]
    assert local.ingestion_errors == []
    assert len({r["FindingId"] for r in local.ingested}) == 5
    nsg_finding = local.ingested[2]
    assert nsg_finding["Caller"] == "ops@contoso.com" and nsg_finding["EventId"] == "e4-nsg"
    assert nsg_finding["Evidence"][0]["matched"][0]["path"] == "properties.securityRules[0]"
    assert local.ingested[0]["ResourceId"] == SA_ID  # canonical casing, though the event said resourcegroups

    store = TableStateStore(local.table)
    gone = store.load(parse_resource_id(SA_ID))
    assert gone.deleted and gone.last_event_id == "e6-delete"
    nsg_state = store.load(parse_resource_id(NSG_ID.upper().replace("SUBSCRIPTIONS", "subscriptions")))
    assert nsg_state.controls["nsg-no-ssh-from-internet"].status.value == "NonCompliant"


def test_rejected_event_is_logged_with_its_id_and_not_redelivered(pipeline, caplog):
    bad = arm_event("bad-1", SA_ID)
    bad["subject"] = bad["data"]["resourceUri"] = "not-an-arm-id"
    with caplog.at_level(logging.ERROR):
        assert pipeline.deliver(bad) is None  # returns normally: Event Grid must not retry it
    assert any("bad-1" in r.getMessage() and "not a valid resource" in r.getMessage().replace("no valid", "not a valid")
               for r in caplog.records)
    assert [r.target for r in pipeline.requests if r.target != "identity"] == ["ingestion"]  # nothing read
    [record] = pipeline.other_ingested["Custom-ComplianceRejections"]  # counted where the alert looks, unsampled
    assert (record["EventId"], record["Kind"]) == ("bad-1", "EventRejected") and record["Subject"] == "not-an-arm-id"


def test_ingestion_outage_keeps_the_finding_until_the_drain_delivers_it_once(pipeline):
    local = pipeline
    local.put_resource(storage(supportsHttpsTrafficOnly=False))
    event = arm_event("o1", SA_ID)
    local.fail_next(50, status=503, retry_after=0, target="ingestion")
    local.deliver(event)  # the state is committed with the finding in the outbox: no redelivery needed
    assert local.ingested == []
    state = TableStateStore(local.table).load(parse_resource_id(SA_ID))
    assert state.controls["storage-https-only"].status.value == "NonCompliant"
    outbox = [e for e in local.table.list_entities() if e["RowKey"].startswith("outbox.")]
    assert len(outbox) == 1
    local.deliver(event)  # a redelivery changes nothing and sends nothing
    assert local.ingested == []
    local._faults["ingestion"].clear()
    from datetime import timedelta

    from azure.functions.timer import TimerRequest

    from handlers.outbox import drain_findings

    deps = bootstrap.dependencies()
    deps.clock = lambda: datetime.now(timezone.utc) + timedelta(hours=2)  # past the retry backoff
    drain_findings.build().get_user_function()(TimerRequest(past_due=False))
    assert seen(local) == [("New", "storage-https-only", "stshop01")]
    assert [e for e in local.table.list_entities() if e["RowKey"].startswith("outbox.")] == []
    drain_findings.build().get_user_function()(TimerRequest(past_due=False))
    assert len(local.ingested) == 1  # delivered exactly once


def test_crash_between_commit_and_send_loses_nothing(pipeline):
    """The process dies after the commit: redelivery finds no change, the outbox still has the finding."""
    local = pipeline
    local.put_resource(storage(minimumTlsVersion="TLS1_0"))
    deps = bootstrap.dependencies()

    class Crash(Exception):
        pass

    real_sink = deps.sink

    class DyingSink:
        def send(self, records):
            raise Crash("process killed")

    deps.sink = DyingSink()
    with pytest.raises(Crash):
        local.deliver(arm_event("k1", SA_ID))
    deps.sink = real_sink
    local.deliver(arm_event("k1", SA_ID))  # Event Grid redelivers: no new transition
    assert local.ingested == []
    from shared.service.ports import OUTBOX_GRACE
    from shared.service.changes import drain_outbox

    assert drain_outbox(deps).sent == 0  # within the grace an inline send may still be running: not taken
    deps.clock = lambda: datetime.now(timezone.utc) + OUTBOX_GRACE  # the timer, once the grace has passed
    assert drain_outbox(deps).sent == 1
    assert seen(local) == [("New", "storage-min-tls-1-2", "stshop01")]


def test_arm_throttling_is_retried_by_the_client(pipeline):
    local = pipeline
    local.put_resource(storage(allowBlobPublicAccess=True))
    local.fail_next(2, status=429, retry_after=0, target="arm")
    local.deliver(arm_event("t1", SA_ID))
    assert seen(local) == [("New", "storage-no-public-blob-access", "stshop01")]
    assert [r.status for r in local.calls("arm")][:2] == [429, 429]
