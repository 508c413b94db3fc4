"""``python -m shared preflight`` (docs/DEPLOY.md "Pre-flight checks"): the system topics in the way of a
deployment, found before it fails on them.

Event Grid allows one system topic per source ("Only one Azure Event Grid system topic is allowed per
source", https://learn.microsoft.com/azure/event-grid/system-topics): another tool's topic of a type the
deployment creates is reused (main.bicep ``existingArmTopicResourceIds`` and, with their options,
``existingResourceNotificationsTopicResourceIds``, ``existingPolicyStatesTopicResourceIds``, which this
prints). The domain is tested on topics shaped as ARM returns them; the command against the local HTTPS
Resource Graph and ARM endpoints with the real SDK clients.
"""
from __future__ import annotations

import json

import pytest

from shared import bootstrap
from shared.cli import main
from shared.domain.preflight import (ARM_TOPIC_TYPE, CREATE, OURS, POLICY_STATES_TOPIC_TYPE,
                                     RESOURCE_NOTIFICATIONS_TOPIC_TYPE, REUSE, UNUSED, check_topics)
from tests.support.local_azure import OTHER_CREDENTIAL_SETTINGS, LocalAzure, graph_row

SUB_A = "11111111-aaaa-4000-8000-000000000001"
SUB_B = "22222222-bbbb-4000-8000-000000000002"
SUB_C = "33333333-cccc-4000-8000-000000000003"
OUTSIDE = "44444444-dddd-4000-8000-000000000004"
MG = "/providers/Microsoft.Management/managementGroups/"


def topic(subscription: str, group: str, name: str, topic_type: str, source: str | None = None) -> dict:
    """A system topic as ARM returns it (the shape of the docs' GET response)."""
    return {"id": f"/subscriptions/{subscription}/resourceGroups/{group}/providers/Microsoft.EventGrid/systemTopics/{name}",
            "name": name, "type": "Microsoft.EventGrid/systemTopics", "location": "global",
            "properties": {"source": source or f"/subscriptions/{subscription}", "topicType": topic_type,
                           "metricResourceId": "00000000-0000-0000-0000-000000000000",
                           "provisioningState": "Succeeded"}}


OURS_A = topic(SUB_A, "rg-compliance-monitor-events", "evgt-compliance-monitor-arm", ARM_TOPIC_TYPE)
THEIRS_B = topic(SUB_B, "rg-platform-events", "subscription-events", ARM_TOPIC_TYPE)
THEIR_ARN_B = topic(SUB_B, "rg-platform-events", "resource-notifications", RESOURCE_NOTIFICATIONS_TOPIC_TYPE)
STORAGE_TOPIC_C = topic(SUB_C, "rg-data", "st-events", "Microsoft.Storage.StorageAccounts",
                        source=f"/subscriptions/{SUB_C}/resourceGroups/rg-data/providers/Microsoft.Storage/storageAccounts/st1")
GROUP_TOPIC_C = topic(SUB_C, "rg-data", "rg-events", "Microsoft.Resources.ResourceGroups",
                      source=f"/subscriptions/{SUB_C}/resourceGroups/rg-data")
OUTSIDE_TOPIC = topic(OUTSIDE, "rg-x", "theirs", ARM_TOPIC_TYPE)
ESTATE = [OURS_A, THEIRS_B, THEIR_ARN_B, STORAGE_TOPIC_C, GROUP_TOPIC_C, OUTSIDE_TOPIC]


def outcomes(result) -> dict[tuple[str, str], str]:
    return {(c.subscription_id, c.topic_type): c.outcome for c in result.checks}


# ------------------------------------------------------------------ the domain


def test_each_subscription_and_topic_type_gets_what_the_deployment_will_do():
    result = check_topics(ESTATE, [SUB_A, SUB_B.upper(), SUB_C])
    assert outcomes(result) == {
        (SUB_A, ARM_TOPIC_TYPE): OURS,   # an earlier run's topic: updated in place
        (SUB_B, ARM_TOPIC_TYPE): REUSE,  # another tool's: reused
        (SUB_B, RESOURCE_NOTIFICATIONS_TOPIC_TYPE): UNUSED,  # in the way only with the option on
        (SUB_C, ARM_TOPIC_TYPE): CREATE,  # a storage or resource group topic is another source
    }
    assert result.parameters == {"existingArmTopicResourceIds": {SUB_B: THEIRS_B["id"]}}
    assert result.unreadable == ()
    assert "reused by existingResourceNotificationsTopicResourceIds if you turn the option on" in [
        c.message for c in result.checks if c.outcome == UNUSED][0]


def test_another_tool_s_resource_notifications_or_policy_topic_is_reused_with_its_option_on():
    their_policy = topic(SUB_A, "rg-governance", "policy-events", POLICY_STATES_TOPIC_TYPE)
    result = check_topics([*ESTATE, their_policy], [SUB_A, SUB_B], resource_notifications=True, policy_states=True)
    assert outcomes(result) == {
        (SUB_A, ARM_TOPIC_TYPE): OURS, (SUB_A, RESOURCE_NOTIFICATIONS_TOPIC_TYPE): CREATE,
        (SUB_A, POLICY_STATES_TOPIC_TYPE): REUSE,
        (SUB_B, ARM_TOPIC_TYPE): REUSE, (SUB_B, RESOURCE_NOTIFICATIONS_TOPIC_TYPE): REUSE,
        (SUB_B, POLICY_STATES_TOPIC_TYPE): CREATE}
    assert result.parameters == {"existingArmTopicResourceIds": {SUB_B: THEIRS_B["id"]},
                                 "existingResourceNotificationsTopicResourceIds": {SUB_B: THEIR_ARN_B["id"]},
                                 "existingPolicyStatesTopicResourceIds": {SUB_A: their_policy["id"]}}


def test_the_own_topic_is_recognised_only_in_the_events_resource_group():
    """The name alone is not enough: the same name in another group is another tool's (or a copy's)."""
    assert outcomes(check_topics([OURS_A], [SUB_A], events_resource_group="rg-cm-events")) == {
        (SUB_A, ARM_TOPIC_TYPE): REUSE}
    assert outcomes(check_topics([OURS_A], [SUB_A], events_resource_group="RG-Compliance-Monitor-Events")) == {
        (SUB_A, ARM_TOPIC_TYPE): OURS}


def test_a_topic_that_cannot_be_read_is_reported_not_skipped():
    broken = {"id": THEIRS_B["id"], "type": "Microsoft.EventGrid/systemTopics", "properties": {"topicType": None}}
    result = check_topics([broken, {"type": "Microsoft.EventGrid/systemTopics"}], [SUB_B])
    assert result.unreadable[0] == THEIRS_B["id"] and len(result.unreadable) == 2
    assert outcomes(result) == {(SUB_B, ARM_TOPIC_TYPE): CREATE}


def test_a_topic_whose_id_or_source_is_not_an_arm_id_is_reported_not_trusted():
    """Ids and sources go through the monitor's own resource id parser: a forged or broken one (a '..'
    segment, no subscription) is reported, and never taken as a subscription's topic."""
    forged_source = topic(SUB_B, "rg-platform-events", "forged", ARM_TOPIC_TYPE, source=f"/subscriptions/{SUB_B}/..")
    broken_id = {**THEIRS_B, "id": "systemTopics/subscription-events"}
    result = check_topics([forged_source, broken_id], [SUB_B])
    assert result.unreadable == (forged_source["id"], "systemTopics/subscription-events")
    assert outcomes(result) == {(SUB_B, ARM_TOPIC_TYPE): CREATE}


def test_the_parameter_is_printed_as_bicepparam_and_json():
    result = check_topics(ESTATE, [SUB_A, SUB_B])
    assert result.bicepparam() == (
        "param existingArmTopicResourceIds = {\n"
        f"  '{SUB_B}': '/subscriptions/{SUB_B}/resourceGroups/rg-platform-events/providers/"
        "Microsoft.EventGrid/systemTopics/subscription-events'\n}\n")
    assert check_topics([], [SUB_A]).bicepparam() == "param existingArmTopicResourceIds = {}\n"
    body = result.as_json()
    assert body["existingArmTopicResourceIds"] == {SUB_B: THEIRS_B["id"]} and body["unreadableTopics"] == []
    assert "existingResourceNotificationsTopicResourceIds" not in body  # its option is off
    assert {(c["subscriptionId"], c["outcome"]) for c in body["checks"]} == {
        (SUB_A, OURS), (SUB_B, REUSE), (SUB_B, UNUSED)}


# ------------------------------------------------------------------ the command, against local Azure


@pytest.fixture
def azure(monkeypatch):
    with LocalAzure() as server:
        for name in OTHER_CREDENTIAL_SETTINGS:
            monkeypatch.delenv(name, raising=False)
        for name, value in server.env().items():
            monkeypatch.setenv(name, value)
        monkeypatch.delenv("MONITORED_SCOPES", raising=False)
        bootstrap.override(None)
        server.graph_resources = [graph_row(t) for t in ESTATE]
        server.management_groups[SUB_A] = ["corp"]
        server.management_groups[SUB_B] = ["corp", "online"]
        yield server
        bootstrap.override(None)


def test_the_command_lists_the_groups_topics_and_prints_the_parameter(azure, capsys):
    code = main(["preflight", "--scope", MG + "corp", "--format", "bicepparam"])
    out = capsys.readouterr().out
    assert code == 0
    assert out == check_topics(ESTATE, [SUB_A, SUB_B]).bicepparam()
    (query,) = [c.body for c in azure.calls("graph")]
    assert sorted(query["subscriptions"]) == sorted([SUB_A, SUB_B])  # below the group, and no other
    assert "microsoft.eventgrid/systemtopics" in query["query"].lower()
    assert azure.calls("arm", "/managementGroups/corp/descendants")


def test_the_text_report_names_each_subscription_and_prints_every_option_s_parameter(azure, capsys):
    code = main(["preflight", "--scope", f"/subscriptions/{SUB_B}", "--scope", f"/subscriptions/{SUB_C}",
                 "--resource-notifications"])
    captured = capsys.readouterr()
    assert code == 0 and captured.err == ""
    assert f"{SUB_B}  ARM events: {THEIRS_B['id']} exists and is reused (existingArmTopicResourceIds)" in captured.out
    assert f"{SUB_B}  Resource Notifications: {THEIR_ARN_B['id']} exists and is reused" in captured.out
    assert f"{SUB_C}  ARM events: none yet, one is created" in captured.out
    assert "2 subscriptions, 4 system topics: 2 reused" in captured.out
    assert captured.out.endswith(
        f"param existingArmTopicResourceIds = {{\n  '{SUB_B}': '{THEIRS_B['id']}'\n}}\n"
        f"param existingResourceNotificationsTopicResourceIds = {{\n  '{SUB_B}': '{THEIR_ARN_B['id']}'\n}}\n")


def test_json_output_and_monitored_scopes_as_the_default(azure, capsys, monkeypatch):
    monkeypatch.setenv("MONITORED_SCOPES", f"/subscriptions/{SUB_A},/subscriptions/{SUB_B}")
    assert main(["preflight", "--format", "json"]) == 0
    body = json.loads(capsys.readouterr().out)
    assert body["existingArmTopicResourceIds"] == {SUB_B: THEIRS_B["id"]}


def test_no_scope_a_star_or_an_unreadable_graph_exit_2_naming_the_problem(azure, capsys):
    assert main(["preflight"]) == 2
    assert "--scope" in capsys.readouterr().err
    assert main(["preflight", "--scope", "*"]) == 2
    assert "names no subscription" in capsys.readouterr().err
    assert main(["preflight", "--scope", "/subscriptions/not-a-guid/x"]) == 2
    assert "is not a scope" in capsys.readouterr().err
    azure.fail_next(1, status=403, target="graph")
    assert main(["preflight", "--scope", f"/subscriptions/{SUB_A}"]) == 2
    err = capsys.readouterr().err
    assert err.startswith("error: Resource Graph refused") and "403" in err and "needs Reader" in err
