"""Assignments kept current in the service: read at first use, cached, read again when due or after a
policy change event, at most once per ``settle`` however many events arrive. Ports are in-memory."""
from __future__ import annotations

import json
from datetime import datetime, timedelta, timezone
from pathlib import Path

from shared.catalog import alias_resolver
from shared.service.assigned_policy import AssignedPolicy, is_policy_change
from tests.control_cases import load_fixture

POLICIES = Path(__file__).with_name("fixtures") / "policies"
SUB = "7d2f4b1e-3c5a-4e8b-9f60-1a2b3c4d5e6f"
TRANSFER = "/providers/Microsoft.Authorization/policyDefinitions/404c3081-a854-4457-ae30-26a93ef643f9"


class Listing:
    def __init__(self) -> None:
        self.items = {"assignments": [], "exemptions": []}
        self.reads = 0

    def assignments(self, subscription_id):
        self.reads += 1
        return [a for a in self.items["assignments"] if SUB in a["id"]]

    def exemptions(self, subscription_id):
        return list(self.items["exemptions"])


class Definitions:
    def __init__(self) -> None:
        self.docs = {json.loads((POLICIES / "storage-secure-transfer.json").read_text())["id"].lower():
                     json.loads((POLICIES / "storage-secure-transfer.json").read_text())}
        self.reads = 0

    def __call__(self, definition_id):
        self.reads += 1
        return self.docs.get(definition_id.lower())


class Clock:
    def __init__(self) -> None:
        self.now = datetime(2026, 6, 1, 8, 0, tzinfo=timezone.utc)

    def __call__(self):
        return self.now


def world():
    listing, definitions, clock = Listing(), Definitions(), Clock()
    listing.items["assignments"].append(
        {"id": f"/subscriptions/{SUB}/providers/Microsoft.Authorization/policyAssignments/transfer", "name": "transfer",
         "properties": {"policyDefinitionId": TRANSFER, "scope": f"/subscriptions/{SUB}"}})
    policy = AssignedPolicy(listing, definitions, alias_resolver(), clock=clock)
    return policy, listing, definitions, clock


def test_read_at_first_use_then_cached_until_the_refresh_period():
    policy, listing, definitions, clock = world()
    view = policy.view(SUB)
    rows = view.evaluate(load_fixture("storage-weak"), clock.now)
    assert [(r["policyAssignmentName"], r["status"]) for r in rows] == [("transfer", "NonCompliant")]
    clock.now += timedelta(minutes=9)
    assert policy.view(SUB) is view and listing.reads == 1
    clock.now += timedelta(minutes=1)
    assert policy.view(SUB) is not view and listing.reads == 2
    assert definitions.reads == 1  # definitions are read once and kept


def test_a_burst_of_policy_events_costs_one_listing():
    policy, listing, _, clock = world()
    policy.view(SUB)
    for i in range(50):
        policy.changed(SUB, "Microsoft.Authorization/policyAssignments")
        clock.now += timedelta(seconds=1)
        policy.view(SUB)  # within settle of the last read: the cached view
    assert listing.reads == 2  # the first read, and one more once 30 s had passed


def test_a_removed_assignment_gives_no_more_rows_once_read_again():
    policy, listing, _, clock = world()
    storage = load_fixture("storage-weak")
    assert policy.view(SUB).evaluate(storage, clock.now)
    listing.items["assignments"].clear()
    policy.changed(SUB, "Microsoft.Authorization/policyAssignments")
    clock.now += timedelta(seconds=31)
    assert policy.view(SUB).evaluate(storage, clock.now) == []


def test_a_definition_change_forgets_the_definitions_read():
    policy, _, definitions, clock = world()
    policy.view(SUB)
    policy.changed(SUB, "Microsoft.Authorization/policyDefinitions")
    clock.now += timedelta(seconds=31)
    policy.view(SUB)
    assert definitions.reads == 2


def test_the_timer_makes_every_subscription_seen_due():
    policy, listing, _, clock = world()
    policy.view(SUB)
    assert policy.refresh_all() == [SUB]
    clock.now += timedelta(seconds=31)
    policy.view(SUB)
    assert listing.reads == 2


def test_policy_change_types():
    assert is_policy_change("Microsoft.Authorization/POLICYASSIGNMENTS")
    assert is_policy_change("microsoft.authorization/policySetDefinitions")
    assert not is_policy_change("Microsoft.Authorization/roleAssignments")


def test_a_management_group_assignment_seen_from_many_subscriptions_is_converted_once():
    """One definition compiled once and shared by every assignment with the same parameter values,
    whichever subscription's view holds it; a definition change forgets the conversions."""
    other = "11111111-2222-3333-4444-555555555555"

    class Tenant(Listing):
        def assignments(self, subscription_id):
            self.reads += 1
            return [{"id": "/providers/Microsoft.Management/managementGroups/corp/providers/Microsoft.Authorization/"
                           "policyAssignments/transfer", "name": "transfer",
                     "properties": {"policyDefinitionId": TRANSFER,
                                    "scope": "/providers/Microsoft.Management/managementGroups/corp"}}]

    definitions = Definitions()
    policy = AssignedPolicy(Tenant(), definitions, alias_resolver(), clock=Clock())
    first, second = policy.view(SUB), policy.view(other)
    [a], [b] = first.catalog.controls, second.catalog.controls
    assert a.rule is b.rule and definitions.reads == 1
    policy.changed(SUB, "Microsoft.Authorization/policyDefinitions")
    policy.clock.now += timedelta(minutes=1)
    [c] = policy.view(SUB).catalog.controls
    assert c.rule is not a.rule and definitions.reads == 2
