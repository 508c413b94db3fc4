"""Management groups as monitored scopes: ``MONITORED_SCOPES=/providers/Microsoft.Management/managementGroups/<id>``
admits the events of every subscription below the group, at any depth, as ARM lists them now; a
subscription vended into the group later is admitted by its first event, without a redeployment.

[MG-DESC] "Management Groups - Get Descendants" (REST, Microsoft.Management, api-version 2020-05-01,
          https://learn.microsoft.com/rest/api/managementgroups/management-groups/get-descendants): every
          entity below the group, management groups typed ``Microsoft.Management/managementGroups`` and
          subscriptions typed ``/subscriptions``, paged by ``nextLink``.
[MG-ID]   "Management group ID" (https://learn.microsoft.com/azure/governance/management-groups/create-management-group-portal):
          up to 90 characters, letters, digits, hyphens, underscores, periods and parentheses.
[MG-RBAC] "Management groups: Azure role-based access control": a role assigned at a management group is
          inherited by every subscription below it, so Reader at the group covers the reads.
"""
from __future__ import annotations

import json
from datetime import datetime, timedelta, timezone

import pytest
from azure.core.exceptions import HttpResponseError
from azure.mgmt.resource.resources import ResourceManagementClient

from shared import bootstrap
from shared.adapters.arm import ArmManagementGroups
from shared.domain.resource_ids import parse_resource_id
from shared.domain.scopes import InvalidScope, Scopes
from shared.service.monitored_scopes import MonitoredScopes, ScopesUnavailable
from shared.service.ports import ResourceAccessDenied, ResourceUnreadable
from tests.support.local_azure import LocalAzure
from tests.test_end_to_end import SA_ID, SUB, arm_event, event_function, storage, wired_app

MG = "/providers/Microsoft.Management/managementGroups/"
VENDED = "5c0a7e29-8b1d-4f3e-a6c2-7d9e0f1a2b3c"
OUTSIDE = "e7f80912-3a4b-4c5d-8e6f-a1b2c3d4e5f6"


def client(local, **options) -> ResourceManagementClient:
    return ResourceManagementClient(local.credential(), "00000000-0000-0000-0000-000000000000", base_url=local.url,
                                    credential_scopes=["https://management.azure.com/.default"],
                                    connection_verify=local.ca_file, **options)


def resource(subscription: str):
    return parse_resource_id(f"/subscriptions/{subscription}/resourceGroups/rg/providers/Microsoft.Storage/"
                             "storageAccounts/st1")


class Clock:
    def __init__(self) -> None:
        self.now = datetime(2026, 12, 7, 9, 0, tzinfo=timezone.utc)

    def __call__(self) -> datetime:
        return self.now


# ------------------------------------------------------------------ the setting


def test_management_groups_parse_beside_subscriptions_and_a_malformed_id_is_named():
    """[MG-ID] group ids are kept lower case, once; a bad one names the entry and the rule."""
    scopes = Scopes.parse([MG + "Corp", f"/subscriptions/{SUB}", MG + "corp", MG + "Landing.Zones(EU)"])
    assert scopes.management_groups == ("corp", "landing.zones(eu)")
    assert scopes.subscriptions == [SUB] and not scopes.unrestricted
    only_groups = Scopes.parse([MG + "corp"])
    assert not only_groups.unrestricted and not only_groups.allows(resource(SUB)), \
        "a group alone restricts: without knowing its subscriptions, nothing is admitted"
    for bad in (MG + "ends.", MG + "has space", MG + "x" * 91, MG):
        with pytest.raises(InvalidScope, match="management group id"):
            Scopes.parse([bad])
    with pytest.raises(InvalidScope, match="management group"):
        Scopes.parse(["/subscriptions/" + SUB + "/providers/Microsoft.Storage/storageAccounts/st1"])


# ------------------------------------------------------------------ the adapter over HTTPS


@pytest.fixture
def local():
    with LocalAzure() as server:
        server.management_groups[SUB] = ["corp", "landingzones"]  # corp > landingzones > SUB
        server.management_groups["aaaaaaaa-0000-4000-8000-000000000001"] = ["corp"]
        server.management_groups[OUTSIDE] = ["sandbox"]
        yield server


def test_a_groups_subscriptions_are_listed_at_any_depth_across_pages(local):
    """[MG-DESC] subscriptions below child groups count; the child groups themselves are not subscriptions."""
    local.descendants_page = 1  # one entity per page: every page is followed
    below = ArmManagementGroups(client(local)).subscriptions_below("corp")
    assert sorted(below) == sorted([SUB, "aaaaaaaa-0000-4000-8000-000000000001"])
    calls = local.calls("arm", "/managementGroups/corp/descendants")
    assert len(calls) == 3 and all(c.query["api-version"] == "2020-05-01" for c in calls)
    assert ArmManagementGroups(client(local)).subscriptions_below("sandbox") == [OUTSIDE]


def test_an_unknown_group_and_a_refusal_are_errors_not_an_empty_group(local):
    """A 404 is not "no subscriptions" (that would refuse every event quietly); a 403 names the role."""
    groups = ArmManagementGroups(client(local))
    with pytest.raises(ResourceUnreadable, match="'nowhere' does not exist"):
        groups.subscriptions_below("nowhere")
    local.fail_next(1, status=403)
    with pytest.raises(ResourceAccessDenied, match="Reader on the group"):
        groups.subscriptions_below("corp")


# ------------------------------------------------------------------ what the monitor admits


def test_a_vended_subscription_is_admitted_by_its_first_event_and_outsiders_cost_one_listing_a_minute(local):
    """The list is kept (15 min); an unknown subscription asks ARM again at most once a minute."""
    clock = Clock()
    scopes = MonitoredScopes(Scopes.parse([MG + "corp"]), ArmManagementGroups(client(local)), clock)
    assert scopes.allows(resource(SUB)) and scopes.listings == 1
    assert not scopes.allows(resource(OUTSIDE)) and scopes.listings == 1, "listed a moment ago: not again"

    local.management_groups[VENDED] = ["corp"]  # a subscription vended into the group
    clock.now += timedelta(seconds=61)
    assert scopes.allows(resource(VENDED)) and scopes.listings == 2
    for _ in range(50):  # a flood from outside within the minute
        assert not scopes.allows(resource(OUTSIDE))
    assert scopes.listings == 2
    assert VENDED in scopes.subscriptions and OUTSIDE not in scopes.subscriptions

    del local.management_groups[VENDED]  # moved out of the group
    clock.now += timedelta(minutes=15)
    assert not scopes.allows(resource(VENDED)) and scopes.listings == 3


def test_when_arm_cannot_list_members_stay_admitted_and_others_are_redelivered(local):
    """Refusing is permanent; during an outage only a subscription known to be below stays admitted."""
    clock = Clock()
    scopes = MonitoredScopes(Scopes.parse([MG + "corp", f"/subscriptions/{OUTSIDE}"]),
                             ArmManagementGroups(client(local, retry_total=0)), clock)
    assert scopes.allows(resource(SUB))
    clock.now += timedelta(minutes=16)
    local.fail_next(2, status=503)
    assert scopes.allows(resource(SUB)), "below the group at the last listing"
    assert scopes.allows(resource(OUTSIDE)), "named directly: no listing needed"
    with pytest.raises(ScopesUnavailable, match="asked about again in a minute"):
        scopes.allows(resource(VENDED))  # the listing failed a moment ago: no call, and transient
    clock.now += timedelta(seconds=61)
    with pytest.raises(HttpResponseError) as raised:  # asked again, still failing: transient too
        scopes.allows(resource(VENDED))
    assert raised.value.status_code == 503
    assert scopes.allows(resource(SUB)) and scopes.listings == 1
    assert len(local.calls("arm", "/descendants")) == 3, "one listing, then one failed call a minute at most"
    clock.now += timedelta(seconds=61)
    assert scopes.allows(resource(SUB)) and scopes.listings == 2, "ARM answers again: listed afresh"


def test_policy_changes_are_taken_from_subscriptions_below_the_group(local):
    """The subscription test of policy change events asks the same question."""
    scopes = MonitoredScopes(Scopes.parse([MG + "corp"]), ArmManagementGroups(client(local)), Clock())
    assert scopes.allows_subscription(SUB.upper()) and not scopes.allows_subscription(OUTSIDE)


# ------------------------------------------------------------------ through the function


@pytest.fixture
def grouped(azurite_connection_string, monkeypatch):
    with wired_app(monkeypatch, azurite_connection_string, "mg", MONITORED_SCOPES=MG + "corp") as local:
        local.management_groups[SUB] = ["corp", "landingzones"]
        local.deliver = event_function()
        yield local


def test_the_function_evaluates_events_from_below_the_group_and_rejects_others_visibly(grouped):
    """One app setting of one entry monitors the whole group; an outsider's event is a recorded rejection."""
    grouped.put_resource(storage(supportsHttpsTrafficOnly=False))
    grouped.deliver(arm_event("mg-1", SA_ID))
    assert [(r["Transition"], r["ControlId"]) for r in grouped.ingested] == [("New", "storage-https-only")]

    outsider = json.loads(json.dumps(arm_event("mg-2", SA_ID)).replace(SUB, OUTSIDE))  # topic and subject
    grouped.deliver(outsider)
    rejections = grouped.other_ingested["Custom-ComplianceRejections"]
    assert [(r["EventId"], r["Kind"]) for r in rejections] == [("mg-2", "OutOfScope")]
    assert OUTSIDE in json.dumps(rejections[0])
    assert len(grouped.calls("arm", "/descendants")) == 1, "the second event used the kept list"
    assert bootstrap.dependencies().scopes.subscriptions == [SUB]


def test_without_reader_on_the_group_events_are_redelivered_not_refused(grouped):
    """[MG-RBAC] a missing role assignment is fixable: the event raises (Event Grid retries it, then
    dead-letters it), it is not recorded as a permanent rejection."""
    grouped.put_resource(storage(supportsHttpsTrafficOnly=False))
    grouped.fail_next(1, status=403)
    with pytest.raises(ResourceAccessDenied, match="Reader on the group"):
        grouped.deliver(arm_event("mg-3", SA_ID))
    assert "Custom-ComplianceRejections" not in grouped.other_ingested and grouped.ingested == []


def test_the_http_api_answers_503_when_the_groups_cannot_be_listed_and_403_outside_them(grouped):
    """The HTTP API asks the same question; a listing ARM refuses is a 503 naming the role, not a 500."""
    from tests.test_http_api import call
    from handlers.http_api import compliance

    grouped.fail_next(1, status=403)
    status, body = call(compliance, "GET", {"resourceId": SA_ID})
    assert status == 503 and "Reader on each group" in body["error"]
    status, body = call(compliance, "GET", {"resourceId": SA_ID})
    assert status == 503, "asked again within the minute: still unknown, still a 503 (no call to ARM)"
    bootstrap.override(None)  # a new process: the groups are listed afresh
    status, body = call(compliance, "GET", {"resourceId": SA_ID.replace(SUB, OUTSIDE)})
    assert status == 403 and "outside the monitored scopes" in body["error"]
    assert len(grouped.calls("arm", "/descendants")) == 2
