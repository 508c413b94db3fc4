"""Azure round trips per event, counted on the wire (not timed): a regression here fails the suite.

ARM and Logs Ingestion requests are counted by the local HTTPS endpoints, Table
Storage requests by a response hook on the real TableClient.
"""
from __future__ import annotations

import copy
import json
import uuid
from pathlib import Path

import pytest
from azure.data.tables import TableClient
from azure.mgmt.resource.resources import ResourceManagementClient
from azure.monitor.ingestion import LogsIngestionClient

from shared.adapters.arm import ArmResourceReader
from shared.adapters.logs_ingestion import LogsIngestionSink
from shared.adapters.table_store import TableStateStore
from shared.catalog import load_catalog
from shared.domain.events import envelope_from_dict, parse_event
from shared.domain.resource_ids import parse_resource_id
from shared.service.changes import Dependencies, handle_change
from tests.conftest import PIPELINE_CONTROLS, disabled_except
from tests.control_cases import load_fixture
from tests.support.local_azure import LocalAzure

SUB = "ca11ca11-0000-4000-8000-000000000001"
FIXTURES = Path(__file__).resolve().parent / "fixtures"
BASE = load_fixture("storage-hardened")  # compliant with every storage control
BASE.pop("$related", None)


def account(name, **props):
    resource = copy.deepcopy(BASE)
    resource["id"] = f"/subscriptions/{SUB}/resourceGroups/rg/providers/Microsoft.Storage/storageAccounts/{name}"
    resource["name"] = name
    resource["properties"].update(props)
    return resource


def write(resource, event_id):
    return parse_event(envelope_from_dict({
        "id": event_id, "subject": resource["id"], "eventType": "Microsoft.Resources.ResourceWriteSuccess",
        "eventTime": "2026-09-01T10:00:00Z", "dataVersion": "2", "data": {"resourceUri": resource["id"]}}))


def notification(resource, event_id):
    info = {k: resource[k] for k in ("id", "name", "type", "location", "tags", "properties")}
    return parse_event(envelope_from_dict({
        "id": event_id, "subject": resource["id"], "eventTime": "2026-09-01T11:00:00Z", "dataVersion": "1",
        "eventType": "Microsoft.ResourceNotifications.Resources.CreatedOrUpdated",
        "data": {"resourceInfo": info, "operationalInfo": {"resourceEventTime": "2026-09-01T11:00:00Z"}}}))


@pytest.fixture
def wire(azurite_connection_string):
    with LocalAzure() as local:
        table_calls = []
        table = TableClient.from_connection_string(azurite_connection_string, "calls" + uuid.uuid4().hex[:10],
                                                   raw_response_hook=lambda response: table_calls.append(
                                                       response.http_request.method))
        table.create_table()
        options = dict(base_url=local.url, credential_scopes=["https://management.azure.com/.default"],
                       connection_verify=local.ca_file)
        reader = ArmResourceReader(lambda sub: ResourceManagementClient(local.credential(), sub, **options))
        sink = LogsIngestionSink(LogsIngestionClient(local.url, local.credential(), connection_verify=local.ca_file),
                                 local.rule_id, local.stream_name)
        local.table_calls = table_calls
        local.make = lambda catalog: Dependencies(catalog, reader, TableStateStore(table), sink)
        yield local
        table.delete_table()


def counted(local, deps, change):
    local.requests.clear()
    local.table_calls.clear()
    handle_change(change, deps)
    arm = [r for r in local.calls("arm")]
    return {"arm": len(arm), "table": len(local.table_calls), "ingestion": len(local.calls("ingestion"))}


@pytest.mark.parametrize("catalog_name", ["pinned", "every rule-only control"])
def test_round_trips_per_event_do_not_depend_on_the_number_of_controls(wire, catalog_name):
    full = load_catalog()
    if catalog_name == "pinned":
        catalog = load_catalog(disabled=disabled_except(PIPELINE_CONTROLS))
    else:  # related checks read more by design; every other control costs no call
        catalog = load_catalog(disabled=[c.id for c in full.controls if c.related is not None])
    deps = wire.make(catalog)
    warm = account("stwarm")
    wire.put_resource(warm)
    handle_change(write(warm, "warm"), deps)  # first use resolves the api-version (one provider call)

    quiet = account("stquiet")
    wire.put_resource(quiet)
    assert counted(wire, deps, write(quiet, "q1")) == {"arm": 1, "table": 2, "ingestion": 0}
    assert counted(wire, deps, write(quiet, "q1")) == {"arm": 1, "table": 2, "ingestion": 0}  # duplicate

    wire.put_resource(account("stquiet", allowBlobPublicAccess=True))
    # drift: one read, one query, one transaction (state + outbox), one upload, one outbox clean-up
    assert counted(wire, deps, write(quiet, "q2")) == {"arm": 1, "table": 3, "ingestion": 1}

    payload = account("stquiet", allowBlobPublicAccess=False)
    assert counted(wire, deps, notification(payload, "q3")) == {"arm": 0, "table": 3, "ingestion": 1}
    assert len(catalog.controls) >= 10


def documented_payload_event(resource_id: str, event_id: str) -> object:
    """Microsoft's documented CreatedOrUpdated example (apiVersion 2019-06-01, booleans as 1/0) for ``resource_id``."""
    body = json.loads((FIXTURES / "documented" / "arn-documented-storage.eventgrid.json").read_text(encoding="utf-8"))
    body["id"] = event_id
    body["subject"] = body["data"]["resourceInfo"]["id"] = resource_id
    body["topic"] = "/".join(resource_id.split("/")[:3])  # the subscription the resource is in
    body["data"]["resourceInfo"]["name"] = resource_id.rsplit("/", 1)[-1]
    return parse_event(envelope_from_dict(body))


def test_a_payload_without_a_property_a_control_reads_costs_one_arm_read(wire):
    full = load_catalog()
    catalog = load_catalog(disabled=[c.id for c in full.controls if c.related is not None
                                     or "microsoft.storage/storageaccounts" not in c.resource_types])
    deps = wire.make(catalog)
    warm = account("stwarm2")
    wire.put_resource(warm)
    handle_change(write(warm, "warm"), deps)  # api-version and resource-group tags resolved once

    current = account("stdocumented", allowBlobPublicAccess=True, allowSharedKeyAccess=True)
    wire.put_resource(current)
    change = documented_payload_event(current["id"], "doc-1")
    assert change.payload_api_version == "2019-06-01"
    calls = counted(wire, deps, change)
    # the payload lacks publicNetworkAccess, keyPolicy, ...: exactly one GET of the account completes it
    assert calls["arm"] == 1
    assert [r.method for r in wire.calls("arm", current["id"])] == ["GET"]
    # a payload that carries everything the controls read costs no read at all
    assert counted(wire, deps, notification(account("stdocumented", allowBlobPublicAccess=False), "doc-2"))["arm"] == 0


SQL = f"/subscriptions/{SUB}/resourceGroups/rg/providers/Microsoft.Sql/servers"


def test_inline_sql_administrators_spare_the_child_reads(wire):
    wire.set_provider("Microsoft.Sql", {"servers": ["2023-08-01"], "servers/administrators": ["2023-08-01"],
                                        "servers/azureADOnlyAuthentications": ["2023-08-01"]})
    catalog = load_catalog(disabled=disabled_except(("sql-server-entra-admin", "sql-server-entra-only-auth")))
    deps = wire.make(catalog)
    server = load_fixture("sqlserver-hardened")
    children = server.pop("$related")
    tags = {"owner": "data", "team": "data"}

    def put_server(name, **props):
        resource = {**copy.deepcopy(server), "id": f"{SQL}/{name}", "name": name, "tags": tags}
        resource["properties"].update(props)
        wire.put_resource(resource)
        for key in ("Microsoft.Sql/servers/administrators/ActiveDirectory",
                    "Microsoft.Sql/servers/azureADOnlyAuthentications/Default"):
            for child in children[key]:
                wire.put_resource({**child, "id": f"{SQL}/{name}/{key.split('/', 2)[2]}"})
        return resource

    handle_change(write(put_server("sqlwarm"), "warm"), deps)  # api-versions resolved once
    without = put_server("sqlchild")
    assert counted(wire, deps, write(without, "s1"))["arm"] == 3  # the server and its two children
    inline = put_server("sqlinline", administrators={
        "administratorType": "ActiveDirectory", "principalType": "Group", "login": "grp-sql-admins",
        "sid": "9a8b7c6d-5e4f-4a3b-8c2d-1e0f9a8b7c6d", "azureADOnlyAuthentication": True})
    assert counted(wire, deps, write(inline, "s2"))["arm"] == 1  # the server carries both settings inline
    for resource in (without, inline):  # both judged on real settings: one from the children, one inline
        state = deps.store.load(parse_resource_id(resource["id"]))
        assert {cid: cs.status.value for cid, cs in state.controls.items()} == {
            "sql-server-entra-admin": "Compliant", "sql-server-entra-only-auth": "Compliant"}
