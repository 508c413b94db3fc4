"""Azure Policy assignments in the Function App, end to end: the assignments and exemptions of a
subscription read from the local HTTPS ARM endpoint with the real SDK client, Event Grid events through
the function as the worker decodes them, state in Azurite, findings at the local Logs Ingestion endpoint.

Cited from Microsoft's documentation:
[ASSIGN-SCOPE]     "Azure Policy assignment structure", Resource selectors / Excluded scopes (notScopes):
                   a resource outside the scope, in a notScope or not selected is not evaluated.
[ASSIGN-OVERRIDE]  same page, "Overrides": an override changes a member's effect; Disabled: not evaluated.
[ASSIGN-MESSAGE]   same page, "Non-compliance messages": shown for a non-compliant resource.
[EXEMPT]           "Azure Policy exemption structure": an exemption covers the resources below its scope
                   for the assignment (and references) it names; after "expiresOn" it no longer applies.
[POLICY-STATES]    "Get compliance data" / policy states: each record names policyAssignmentId,
                   policyDefinitionId, policySetDefinitionId and policyDefinitionReferenceId.
[EG-RESOURCES]     "Azure Resource Manager as an Event Grid source": write and delete events of
                   Microsoft.Authorization resources at subscription and resource-group scope;
                   management groups have no system topic (the assignments timer compares instead).
"""
from __future__ import annotations

import json
import uuid
from datetime import datetime, timedelta, timezone
from pathlib import Path

import pytest
from azure.data.tables import TableClient
from azure.functions.timer import TimerRequest

from shared import bootstrap
from shared.adapters.table_store import TableStateStore
from shared.domain.resource_ids import parse_resource_id
from tests.support.local_azure import LocalAzure, graph_row
from tests.test_end_to_end import arm_event, configure_app, event_function

SUB = "3b8e5f21-6c4d-4a9e-8b17-0d2c4e6f8a13"  # test_end_to_end's subscription (its arm_event names it)
RG = f"/subscriptions/{SUB}/resourceGroups/rg-shop"
LEGACY = f"/subscriptions/{SUB}/resourceGroups/rg-legacy"
AUTH = "/providers/Microsoft.Authorization"
TRANSFER_DEF = f"{AUTH}/policyDefinitions/404c3081-a854-4457-ae30-26a93ef643f9"
ASSIGNMENT_ID = f"/subscriptions/{SUB}{AUTH}/policyAssignments/secure-transfer"
MG = "/providers/Microsoft.Management/managementGroups/corp"
START = datetime(2026, 5, 4, 11, 0, tzinfo=timezone.utc)
POLICIES = Path(__file__).with_name("fixtures") / "policies"


def account(rid: str, https: bool, location: str = "westeurope") -> dict:
    return {"id": rid, "name": rid.rsplit("/", 1)[-1], "type": "Microsoft.Storage/storageAccounts",
            "location": location, "kind": "StorageV2", "sku": {"name": "Standard_LRS"}, "tags": {"owner": "shop"},
            "properties": {"supportsHttpsTrafficOnly": https, "minimumTlsVersion": "TLS1_2",
                           "allowBlobPublicAccess": False, "provisioningState": "Succeeded"}}


SHOP = f"{RG}/providers/Microsoft.Storage/storageAccounts/stshop01"
OLD = f"{LEGACY}/providers/Microsoft.Storage/storageAccounts/stlegacy01"


def assignment(name: str = "secure-transfer", scope: str = f"/subscriptions/{SUB}", **props) -> dict:
    return {"id": f"{scope}{AUTH}/policyAssignments/{name}", "name": name,
            "type": "Microsoft.Authorization/policyAssignments",
            "properties": {"policyDefinitionId": TRANSFER_DEF, "scope": scope, "displayName": name,
                           "nonComplianceMessages": [{"message": "Turn on secure transfer (HTTPS only)."}],
                           **props}}


class Clock:
    def __init__(self) -> None:
        self.now = START

    def __call__(self) -> datetime:
        return self.now


@pytest.fixture
def app(azurite_connection_string, monkeypatch):
    """The function from app settings (CONTROL_SOURCES default: built-in + custom + assignments)."""
    table_name = "assigned" + uuid.uuid4().hex[:12]
    with LocalAzure() as local:
        configure_app(monkeypatch, local, azurite_connection_string, table_name, ("storage-https-only",))
        local.providers["Microsoft.Authorization"] = {
            t: ["2023-04-01", "2022-07-01-preview"]
            for t in ("policyAssignments", "policyExemptions", "policyDefinitions", "policySetDefinitions")}
        local.put_resource(json.loads((POLICIES / "storage-secure-transfer.json").read_text()))
        from handlers.assignments import refresh_assignments_timer

        deliver = event_function()
        timer = refresh_assignments_timer.build().get_user_function()
        clock = Clock()

        def resources(*items):
            """ARM and Resource Graph hold these resources."""
            for item in items:
                local.put_resource(item)
            local.graph_resources[:] = [graph_row(r) for r in items]

        def tick(**delta):
            clock.now += timedelta(**delta)

        def run_timer():
            deps = bootstrap.dependencies()
            deps.clock = deps.assigned.clock = clock
            timer(TimerRequest(past_due=False))

        local.deliver, local.resources, local.tick, local.run_timer, local.clock = deliver, resources, tick, run_timer, clock
        local.table = TableClient.from_connection_string(azurite_connection_string, table_name)
        deps = bootstrap.dependencies()
        deps.clock = deps.assigned.clock = clock
        yield local
        bootstrap.override(None)
        local.table.delete_table()


def assigned_findings(local):
    return [r for r in local.ingested if r["PolicyAssignmentId"]]


def policy_event(event_id: str, resource_id: str, kind: str = "Write") -> dict:
    event = arm_event(event_id, resource_id, kind=kind)
    event["data"]["operationName"] = f"Microsoft.Authorization/{resource_id.split('/')[-2]}/{kind.lower()}"
    return event


def test_an_assigned_definition_gives_findings_with_azure_policys_ids_beside_the_catalogs(app):
    """[POLICY-STATES] [ASSIGN-MESSAGE] the finding names the assignment and definition, and carries the message."""
    app.put_resource(assignment())
    app.resources(account(SHOP, https=False))
    app.deliver(arm_event("a1", SHOP))
    by_control = {r["ControlId"]: r for r in app.ingested}
    assert set(by_control) >= {"storage-https-only"}  # the built-in catalog still judges it
    [finding] = assigned_findings(app)
    assert finding["Transition"] == "New" and finding["Status"] == "NonCompliant"
    assert finding["PolicyAssignmentId"] == ASSIGNMENT_ID and finding["PolicyDefinitionId"] == TRANSFER_DEF
    assert finding["PolicySetDefinitionId"] == "" and finding["PolicyDefinitionReferenceId"] == ""
    assert finding["NonComplianceMessage"] == "Turn on secure transfer (HTTPS only)."
    assert finding["ControlTitle"] == "Secure transfer to storage accounts should be enabled"
    assert finding["Caller"] == "dana@contoso.com" and finding["Evidence"]
    state = TableStateStore(app.table).load(parse_resource_id(SHOP))
    row = state.controls[finding["ControlId"]]
    assert row.policy.assignment_id == ASSIGNMENT_ID and row.status.value == "NonCompliant"
    listings = app.calls("arm", "policyAssignments")
    app.deliver(arm_event("a2", SHOP, time="2026-05-04T10:01:00Z"))
    assert app.calls("arm", "policyAssignments") == listings  # read at first use, then cached


def test_not_scopes_and_resource_selectors_leave_resources_out(app):
    """[ASSIGN-SCOPE] an account in a notScope, or outside the selected locations, gets no assigned row."""
    app.put_resource(assignment(notScopes=[LEGACY], resourceSelectors=[{
        "name": "europe", "selectors": [{"kind": "resourceLocation", "in": ["westeurope"]}]}]))
    east = f"{RG}/providers/Microsoft.Storage/storageAccounts/steast01"
    app.resources(account(SHOP, https=False), account(OLD, https=False), account(east, https=False, location="eastus"))
    for n, rid in enumerate((SHOP, OLD, east)):
        app.deliver(arm_event(f"s{n}", rid))
    assert [r["ResourceId"] for r in assigned_findings(app)] == [SHOP]
    store = TableStateStore(app.table)
    assert all(c.policy is None for c in store.load(parse_resource_id(OLD)).controls.values())


def test_an_exemption_written_turns_the_finding_exempted_and_its_expiry_reopens_it(app):
    """[EXEMPT] [EG-RESOURCES] the exemption's write event marks the subscription; the timer re-evaluates it."""
    app.put_resource(assignment())
    app.resources(account(SHOP, https=False))
    app.deliver(arm_event("x1", SHOP))
    exemption_id = f"{RG}{AUTH}/policyExemptions/shop-waiver"
    app.put_resource({"id": exemption_id, "name": "shop-waiver", "type": "Microsoft.Authorization/policyExemptions",
                      "properties": {"policyAssignmentId": ASSIGNMENT_ID, "exemptionCategory": "Waiver",
                                     "expiresOn": (START + timedelta(hours=1)).isoformat()}})
    app.deliver(policy_event("x2", exemption_id))
    app.run_timer()  # too soon: the mark settles for 30 s so a burst of writes costs one listing
    assert [r["Transition"] for r in assigned_findings(app)] == ["New"]
    app.tick(minutes=1)
    app.run_timer()
    assert [r["Transition"] for r in assigned_findings(app)] == ["New", "Exempted"]
    exempted = assigned_findings(app)[-1]
    assert exempted["ExemptionId"] == exemption_id and exempted["Status"] == "Exempt"
    app.tick(hours=2)  # past expiresOn
    app.deliver(arm_event("x3", SHOP, time="2026-05-04T13:00:00Z"))
    assert [r["Transition"] for r in assigned_findings(app)] == ["New", "Exempted", "Reopened"]
    assert assigned_findings(app)[-1]["ExemptionId"] == ""


def test_an_override_to_disabled_and_then_a_removed_assignment_close_the_findings(app):
    """[ASSIGN-OVERRIDE] Disabled: not evaluated, so the open finding closes; a deleted assignment closes its own."""
    app.put_resource(assignment())
    app.resources(account(SHOP, https=False))
    app.deliver(arm_event("o1", SHOP))
    [opened] = assigned_findings(app)
    app.put_resource(assignment(overrides=[{"kind": "policyEffect", "value": "Disabled"}]))
    app.deliver(policy_event("o2", ASSIGNMENT_ID))
    app.tick(minutes=1)
    app.run_timer()
    closed = assigned_findings(app)[-1]
    assert (closed["ControlId"], closed["Transition"]) == (opened["ControlId"], "Resolved")
    assert closed["PolicyAssignmentId"] == ASSIGNMENT_ID  # the closing record still names the assignment
    state = TableStateStore(app.table).load(parse_resource_id(SHOP))
    assert state.controls[opened["ControlId"]].status is None  # no compliance state: not evaluated

    app.put_resource(assignment())  # enabled again: open again
    app.deliver(policy_event("o3", ASSIGNMENT_ID))
    app.tick(minutes=1)
    app.run_timer()
    assert assigned_findings(app)[-1]["Transition"] == "New"
    app.remove_resource(ASSIGNMENT_ID)
    app.deliver(policy_event("o4", ASSIGNMENT_ID, kind="Delete"))
    app.tick(minutes=1)
    app.run_timer()
    assert [r["Transition"] for r in assigned_findings(app)] == ["New", "Resolved", "New", "Resolved"]


def test_a_burst_of_assignment_writes_costs_one_listing_and_one_re_evaluation(app):
    """Bounded: 20 events on one subscription, one assignments listing and one Resource Graph query."""
    app.resources(account(SHOP, https=False))
    app.deliver(arm_event("b0", SHOP))
    graph_before = len(app.calls("graph"))
    for n in range(20):
        app.put_resource(assignment(f"burst-{n}"))
        app.deliver(policy_event(f"b{n + 1}", f"/subscriptions/{SUB}{AUTH}/policyAssignments/burst-{n}"))
    listings = len(app.calls("arm", "policyAssignments"))
    app.tick(minutes=1)
    app.run_timer()
    assert len(app.calls("arm", "policyAssignments")) == listings + 1
    assert len(app.calls("graph")) == graph_before + 1
    assert len({r["PolicyAssignmentId"] for r in assigned_findings(app)}) == 20  # one finding per assignment
    app.tick(minutes=1)
    app.run_timer()  # nothing changed: nothing listed again
    assert len(app.calls("graph")) == graph_before + 1


def test_a_management_group_assignment_changed_without_an_event_is_noticed_by_the_timer(app):
    """[EG-RESOURCES] no event for a management group: the timer compares what is assigned after the refresh."""
    app.management_groups[SUB] = ["corp"]
    app.resources(account(SHOP, https=False))
    app.run_timer()  # first sight: the subscription is compared (and its resources evaluated)
    app.tick(minutes=1)
    app.run_timer()
    assert assigned_findings(app) == []
    app.put_resource(assignment("corp-transfer", scope=MG))
    app.tick(minutes=5)
    app.run_timer()  # within the refresh period: the cached view stands
    assert assigned_findings(app) == []
    app.tick(minutes=6)  # past ASSIGNMENTS_REFRESH_MINUTES (10)
    app.run_timer()  # read again, found changed, marked (settled already: taken this run)
    [finding] = assigned_findings(app)
    assert finding["PolicyAssignmentId"] == f"{MG}{AUTH}/policyAssignments/corp-transfer"


def test_an_unreadable_assignments_listing_keeps_assigned_state_and_says_why(app):
    app.put_resource(assignment())
    app.resources(account(SHOP, https=False))
    app.deliver(arm_event("u1", SHOP))
    [opened] = assigned_findings(app)
    deps = bootstrap.dependencies()
    deps.assigned.changed(SUB, "Microsoft.Authorization/policyAssignments")
    app.tick(minutes=1)
    app.fail_next(1, status=403)  # the next ARM request: the listing, read again
    fixed = account(SHOP, https=True)
    app.resources(fixed)
    app.deliver(arm_event("u2", SHOP, time="2026-05-04T10:30:00Z"))
    catalog = [r for r in app.ingested if r["ControlId"] == "storage-https-only"]
    assert [r["Transition"] for r in catalog] == ["New", "Resolved"]  # the catalog's verdict is recorded
    assert [r["Transition"] for r in assigned_findings(app)] == ["New"]  # not closed on a guess
    state = TableStateStore(app.table).load(parse_resource_id(SHOP))
    row = state.controls[opened["ControlId"]]
    assert row.status.value == "NonCompliant" and "could not be read" in row.note and "403" in row.note


def test_the_evaluate_api_shows_the_assigned_results_with_their_ids(app):
    import azure.functions as func

    from handlers.http_api import evaluate

    app.put_resource(assignment())
    app.resources(account(SHOP, https=False))
    request = func.HttpRequest(method="POST", url="/api/evaluate", params={}, headers={},
                               body=json.dumps({"resourceId": SHOP}).encode())
    response = evaluate.build().get_user_function()(request)
    body = json.loads(response.get_body())
    assigned = [r for r in body["results"] if "policyAssignmentId" in r]
    assert response.status_code == 200 and len(assigned) == 1
    assert assigned[0]["status"] == "NonCompliant" and assigned[0]["policyDefinitionId"] == TRANSFER_DEF
    assert assigned[0]["nonComplianceMessage"] == "Turn on secure transfer (HTTPS only)."
    assert {r["controlId"] for r in body["results"]} >= {"storage-https-only"}


def test_the_parity_timer_compares_the_stored_verdicts_with_azure_policys_states(app, capsys):
    """[POLICY-STATES] the subscription's latest states, read with the real client over HTTPS, beside the
    state table's assigned verdicts: one ComplianceParity_CL record per pair."""
    from azure.functions.timer import TimerRequest

    from handlers.parity import parity_timer
    from shared.cli import main

    app.put_resource(assignment())
    fixed = f"{RG}/providers/Microsoft.Storage/storageAccounts/stfixed01"
    app.resources(account(SHOP, https=False), account(fixed, https=True))
    app.deliver(arm_event("p1", SHOP))
    app.deliver(arm_event("p2", fixed))

    def azure(resource_id, compliance):
        return {"timestamp": "2026-05-04T10:30:00Z", "resourceId": resource_id, "policyAssignmentId": ASSIGNMENT_ID,
                "policyDefinitionId": TRANSFER_DEF, "policySetDefinitionId": "", "policyDefinitionReferenceId": "",
                "complianceState": compliance, "isCompliant": compliance == "Compliant"}

    unseen = f"{RG}/providers/Microsoft.Storage/storageAccounts/stunseen01"
    app.policy_states[f"/subscriptions/{SUB}"] = [azure(SHOP, "NonCompliant"), azure(fixed, "NonCompliant"),
                                                  azure(unseen, "NonCompliant")]
    app.policy_states_page = 2  # paged by @odata.nextLink
    parity_timer.build().get_user_function()(TimerRequest(past_due=False))
    records = {r["ResourceId"].rsplit("/", 1)[-1]: r for r in app.other_ingested["Custom-ComplianceParity"]}
    assert {k: r["Outcome"] for k, r in records.items()} == {"stshop01": "agree", "stfixed01": "disagree",
                                                             "stunseen01": "onlyAzure"}
    assert records["stfixed01"]["MonitorStatus"] == "Compliant" and records["stfixed01"]["AzureStatus"] == "NonCompliant"
    assert records["stshop01"]["PolicyAssignmentId"] == ASSIGNMENT_ID and len({r["RunId"] for r in records.values()}) == 1
    calls = app.calls("arm", "policyStates")
    assert [c.method for c in calls] == ["POST", "POST"] and calls[0].path.startswith(f"/subscriptions/{SUB}/")

    assert main(["parity"]) == 1  # the same from the command line, in Azure: a disagreement
    assert capsys.readouterr().out.splitlines()[-1] == (
        "parity: 1 agree, 1 disagree, 0 only monitor, 1 only Azure Policy, 0 Azure older (50.0% agreement)")
