"""Reusing a subscription's existing Microsoft.Resources.Subscriptions system topic (docs/DEPLOY.md "A
subscription that already has a system topic").

Event Grid allows one system topic per source ("Only one Azure Event Grid system topic is allowed per source",
https://learn.microsoft.com/azure/event-grid/system-topics), so a subscription where another tool made one
fails the topic creation with a conflict. Named in ``existingArmTopicResourceIds`` (main.bicep) or
``existingArmTopicResourceId`` (subscription.bicep), the topic is reused as it is: nothing is created, locked,
diagnosed or changed on it; the monitor's event subscription is deployed in the topic's own resource group
(a child resource deploys only at its parent's scope), delivering and dead-lettering exactly as on a topic of
its own. The templates are evaluated with the small Bicep evaluator of tests/test_infra_private.py.
"""
from __future__ import annotations

import json
from typing import Any

from shared.catalog import alias_resolver
from shared.policy.conditions import compile_rule
from tests.test_bicep import INFRA, MAIN, REPO, body, parsed
from tests.test_infra_private import Runtime, Scope, _loop, created, ev, main_modules, module_scope
from tests.test_infra_scale import SUBSCRIPTION_TEMPLATE, TOPIC_IDENTITY, expanded, policy_definition

TOPICS = INFRA / "modules" / "event-topics.bicep"
MONITORED = INFRA / "modules" / "monitored-subscription.bicep"
SUBSCRIPTIONS = INFRA / "modules" / "event-subscriptions.bicep"
SUB = "00000000-0000-4000-8000-000000000001"
OTHER_SUB = "00000000-0000-4000-8000-000000000002"
EXISTING = (f"/subscriptions/{SUB}/resourceGroups/rg-platform-events/providers/Microsoft.EventGrid/systemTopics/"
            "subscription-events")
EXISTING_ARN = EXISTING.replace("rg-platform-events", "rg-notifications").replace("subscription-events", "notifications")
EXISTING_POLICY = EXISTING.replace("rg-platform-events", "rg-governance").replace("subscription-events", "policy-states")
WORKSPACE = f"/subscriptions/{SUB}/resourceGroups/rg-logs/providers/Microsoft.OperationalInsights/workspaces/log-1"
STORAGE_ID = f"/subscriptions/{SUB}/resourceGroups/rg-compliance-monitor/providers/Microsoft.Storage/storageAccounts/st1"
SYSTEM_TOPIC = "Microsoft.EventGrid/systemTopics"
EVENT_SUBSCRIPTION = "Microsoft.EventGrid/systemTopics/eventSubscriptions"


def topics(**params: Any) -> Scope:
    return module_scope(TOPICS, {"subscriptionId": SUB, "enableResourceLocks": True,
                                 "diagnosticsWorkspaceResourceId": WORKSPACE, **params})


def output(scope: Scope, name: str) -> Any:
    return scope(scope.tree["outputs"][name]["value"])


def _instance(config: dict, condition: Any, scope: Scope) -> dict:
    target = config.get("scope")
    group = None
    if isinstance(target, dict) and target.get("function", {}).get("type") == "resource_group":
        group = scope(target["function"]["parameters"]["resource_group_name"])
    return {"deployed": condition is None or scope(condition) is True, "group": group,
            "params": {k: scope(v) for k, v in config["params"].items()}, "dependsOn": config.get("dependsOn", [])}


def modules(scope: Scope) -> dict[str, Any]:
    """Each module of a file: deployed or not, the resource group it deploys to, its inputs, what it waits for;
    a module loop gives a list of them, one per item."""
    found: dict[str, Any] = {}
    for symbol, mod in scope.tree["modules"].items():
        config = mod["config"]
        if "loop_type" in config:
            detail = config["loop_type"]["detail"]
            found[symbol] = [_instance(config["config"], config.get("condition"), scope.bound(**{detail["item_name"]: item}))
                             for item in scope(detail["array_name"])]
        else:
            found[symbol] = _instance(body(mod), config.get("condition"), scope)
    return found


def monitored(**params: Any) -> dict[str, dict]:
    return modules(module_scope(MONITORED, {
        "functionPrincipalId": "principal", "functionResourceId": "function", "resourceGroupName": "rg-cm-events",
        "location": "westeurope", "storageSubscriptionId": SUB, "storageResourceGroupName": "rg-compliance-monitor",
        "storageAccountName": "st1", "deadLetterContainerName": "eventgrid-deadletter",
        "deployEventSubscriptions": True, **params}))


def event_subscriptions(params: dict[str, Any], arm_topic_name: str | None = None) -> list[dict]:
    """What one deployment of event-subscriptions.bicep creates, the ARM topic's name given as ARM would."""
    given = dict(params)
    if isinstance(given.get("armTopicName"), Runtime):
        given["armTopicName"] = arm_topic_name
    for key, value in given.items():
        if isinstance(value, Runtime) and key.endswith("TopicName"):
            given[key] = ""  # the Resource Notifications / Policy topics are not enabled in these tests
    given["deadLetterStorageAccountResourceId"] = STORAGE_ID
    return created(module_scope(SUBSCRIPTIONS, given), EVENT_SUBSCRIPTION)


# ------------------------------------------------------------------ event-topics.bicep


def test_by_default_the_subscription_gets_an_arm_topic_of_its_own_locked_and_diagnosed():
    scope = topics()
    made = created(scope, SYSTEM_TOPIC)
    assert [t["properties"]["topicType"] for t in made] == ["Microsoft.Resources.Subscriptions"]
    assert made[0]["properties"]["source"] == f"/subscriptions/{SUB}"
    assert [lock["scope"] for lock in created(scope, "Microsoft.Authorization/locks")] == ["armTopic"]
    assert [d["scope"] for d in created(scope, "Microsoft.Insights/diagnosticSettings")] == ["armTopic"]
    (alert,) = created(scope, "Microsoft.Insights/metricAlerts")
    assert alert["properties"]["scopes"] == ["armTopic.id"]
    assert output(scope, "armTopicResourceGroupName") == "resourceGroup().name"
    assert output(scope, "principalIds") == ["armTopic.identity.principalId"]


def test_a_named_existing_topic_is_reused_as_it_is_and_still_watched_for_dead_letters():
    """Nothing is created, locked or given a diagnostic setting on a topic the monitor did not create (its
    owner's locks and settings stay theirs); the dead-letter alert watches it all the same, and its own
    system-assigned identity is the one given the dead-letter role. The other topics are unaffected."""
    scope = topics(existingArmTopicResourceId=EXISTING, enableResourceNotifications=True)
    made = created(scope, SYSTEM_TOPIC)
    assert [t["properties"]["topicType"] for t in made] == ["Microsoft.ResourceNotifications.Resources"]
    assert [lock["scope"] for lock in created(scope, "Microsoft.Authorization/locks")] == ["arnTopic"]
    assert [d["scope"] for d in created(scope, "Microsoft.Insights/diagnosticSettings")] == ["arnTopic"]
    alerts = {a["name"]: a["properties"]["scopes"] for a in created(scope, "Microsoft.Insights/metricAlerts")}
    assert alerts == {"alert-compliance-dead-lettered-arm": [EXISTING],
                      "alert-compliance-dead-lettered-arn": ["arnTopic.id"]}
    reference = scope.tree["resources"]["reusedArmTopic"]
    assert reference["existing"] and reference["type"] == SYSTEM_TOPIC
    config = body(reference)
    assert scope(config["name"]) == "subscription-events"
    assert scope(config["scope"]["function"]["parameters"]["resource_group_name"]) == "rg-platform-events"
    assert (output(scope, "armTopicName"), output(scope, "armTopicResourceGroupName"),
            output(scope, "armTopicResourceId")) == ("subscription-events", "rg-platform-events", EXISTING)
    assert output(scope, "principalIds") == ["reusedArmTopic.identity.principalId", "arnTopic.identity.principalId"]
    shared = topics(existingArmTopicResourceId=EXISTING, identityResourceId=TOPIC_IDENTITY)
    assert output(shared, "principalIds") == []  # the shared identity's roles are assigned once, centrally


# ------------------------------------------------------------------ monitored-subscription.bicep


def test_the_reused_topic_gets_the_same_event_subscription_in_its_own_resource_group():
    own = monitored()
    assert own["reusedTopicSubscriptions"] == []
    (own_arm,) = event_subscriptions(own["eventSubscriptions"]["params"], arm_topic_name="evgt-compliance-monitor-arm")

    reused = monitored(existingArmTopicResourceId=EXISTING)
    assert reused["topics"]["params"]["existingArmTopicResourceId"] == EXISTING
    events_group = reused["eventSubscriptions"]
    (topic_group,) = reused["reusedTopicSubscriptions"]
    assert events_group["deployed"] and events_group["params"]["armTopicName"] == ""
    assert event_subscriptions(events_group["params"]) == []  # no second ARM subscription in the monitor's group
    assert topic_group["deployed"] and topic_group["group"] == "rg-platform-events"
    assert topic_group["params"]["armTopicName"] == "subscription-events"
    (reused_arm,) = event_subscriptions(topic_group["params"])
    assert reused_arm == {**own_arm, "parent": "armTopic"}  # same name, filter, delivery, retries, dead-letter
    assert reused_arm["properties"]["deadLetterWithResourceIdentity"]["deadLetterDestination"]["properties"][
        "resourceId"] == STORAGE_ID
    common = {k: v for k, v in events_group["params"].items() if not k.endswith("TopicName")}
    assert {k: v for k, v in topic_group["params"].items() if not k.endswith("TopicName")} == common
    # Event Grid checks the dead-letter destination's role when the subscription is created
    assert events_group["dependsOn"] == topic_group["dependsOn"] == ["deadLetterRole"]
    assert reused["deadLetterRole"]["params"]["principalIds"] == "topics.outputs.principalIds"
    step1 = monitored(existingArmTopicResourceId=EXISTING, deployEventSubscriptions=False)
    assert [t["deployed"] for t in step1["reusedTopicSubscriptions"]] == [False]
    assert not step1["eventSubscriptions"]["deployed"]


def test_resource_notifications_and_policy_states_topics_are_reused_the_same_way_each_in_its_group():
    """Each reused topic gets its own event subscription deployment in its own group, naming only that topic;
    an id given for an option that is off reuses nothing; the topics module creates neither topic."""
    every = {"enableResourceNotifications": True, "enablePolicyStateEvents": True,
             "existingArmTopicResourceId": EXISTING, "existingResourceNotificationsTopicResourceId": EXISTING_ARN,
             "existingPolicyStatesTopicResourceId": EXISTING_POLICY}
    mods = monitored(**every)
    made = {t["group"]: event_subscriptions(t["params"]) for t in mods["reusedTopicSubscriptions"]}
    assert sorted(made) == ["rg-governance", "rg-notifications", "rg-platform-events"]
    kinds = {group: [s["properties"]["filter"]["includedEventTypes"][0].rsplit(".", 1)[0] for s in subs]
             for group, subs in made.items()}
    assert kinds == {"rg-platform-events": ["Microsoft.Resources"],
                     "rg-notifications": ["Microsoft.ResourceNotifications.Resources"],
                     "rg-governance": ["Microsoft.PolicyInsights"]}
    assert event_subscriptions(mods["eventSubscriptions"]["params"]) == []
    scope = topics(**{k: v for k, v in every.items()})
    assert created(scope, SYSTEM_TOPIC) == [] and created(scope, "Microsoft.Authorization/locks") == []
    alerts = {a["name"]: a["properties"]["scopes"] for a in created(scope, "Microsoft.Insights/metricAlerts")}
    assert alerts == {"alert-compliance-dead-lettered-arm": [EXISTING], "alert-compliance-dead-lettered-arn": [EXISTING_ARN],
                      "alert-compliance-dead-lettered-policy": [EXISTING_POLICY]}
    assert output(scope, "principalIds") == ["reusedArmTopic.identity.principalId", "reusedArnTopic.identity.principalId",
                                             "reusedPolicyTopic.identity.principalId"]
    off = monitored(existingResourceNotificationsTopicResourceId=EXISTING_ARN)  # the option is off
    assert off["reusedTopicSubscriptions"] == []
    assert created(topics(existingResourceNotificationsTopicResourceId=EXISTING_ARN), SYSTEM_TOPIC)[0]["properties"][
        "topicType"] == "Microsoft.Resources.Subscriptions"


# ------------------------------------------------------------------ the entry points


def test_main_reuses_topics_by_subscription_and_creates_them_everywhere_else():
    main = parsed(MAIN)
    assert main["parameters"]["existingArmTopicResourceIds"]["default"] == {}
    env = {name: ev(p["default"], Scope(main, {})) for name, p in main["parameters"].items()
           if p["default"] is not None}
    scope = Scope(main, {**env, "location": "westeurope", "monitoredSubscriptionIds": [SUB, OTHER_SUB],
                         "existingArmTopicResourceIds": {SUB: EXISTING}})
    per_subscription = [m["params"]["existingArmTopicResourceId"] for m in _loop(main["modules"]["monitored"]["config"], scope)]
    assert per_subscription == [EXISTING, ""]
    scope = scope.bound(existingResourceNotificationsTopicResourceIds={OTHER_SUB: EXISTING_ARN},
                        existingPolicyStatesTopicResourceIds={SUB: EXISTING_POLICY})
    given = [(m["params"]["existingResourceNotificationsTopicResourceId"], m["params"]["existingPolicyStatesTopicResourceId"])
             for m in _loop(main["modules"]["monitored"]["config"], scope)]
    assert given == [("", EXISTING_POLICY), (EXISTING_ARN, "")]
    assert main_modules()["monitored"]["deployed"]  # the quick start's defaults still deploy as before


def test_the_vending_template_passes_the_subscription_s_own_topic_through():
    tree = parsed(SUBSCRIPTION_TEMPLATE)
    assert tree["parameters"]["existingArmTopicResourceId"]["default"] == ""
    scope = module_scope(SUBSCRIPTION_TEMPLATE, {"location": "westeurope", "storageAccountResourceId": STORAGE_ID,
                                                 "topicIdentityResourceId": TOPIC_IDENTITY,
                                                 "existingArmTopicResourceId": EXISTING})
    params = modules(scope)["monitored"]["params"]
    assert params["existingArmTopicResourceId"] == EXISTING and params["topicIdentityResourceId"] == TOPIC_IDENTITY
    scope = scope.bound(existingResourceNotificationsTopicResourceId=EXISTING_ARN,
                        existingPolicyStatesTopicResourceId=EXISTING_POLICY)
    params = modules(scope)["monitored"]["params"]
    assert (params["existingResourceNotificationsTopicResourceId"], params["existingPolicyStatesTopicResourceId"]) == (
        EXISTING_ARN, EXISTING_POLICY)


def test_the_onboarding_policy_counts_a_subscription_onboarded_on_its_reused_topic_as_compliant():
    """deployIfNotExists looks for the event subscription anywhere in the subscription (existenceScope
    subscription, no resourceGroupName or name in the details), so one made on a reused topic in another
    resource group satisfies it: remediation does not try to create a second topic there and fail."""
    details = policy_definition()["policyRule"]["then"]["details"]
    assert details["existenceScope"] == "subscription"
    assert "resourceGroupName" not in details and "name" not in details
    exists = compile_rule(details["existenceCondition"], {"topicIdentityResourceId": TOPIC_IDENTITY}, alias_resolver())
    (made,) = expanded()["microsoft.eventgrid/systemtopics/eventsubscriptions"]
    on_reused = json.loads(json.dumps({**made, "name": made["name"].rsplit("/", 1)[-1]}))
    on_reused["id"] = f"{EXISTING}/eventSubscriptions/{on_reused['name']}"
    assert exists.matches(on_reused)


def test_the_deploy_guide_says_how_to_reuse_a_topic_and_what_it_must_carry():
    text = (REPO / "docs" / "DEPLOY.md").read_text(encoding="utf-8")
    section = text.split("### A subscription that already has a system topic", 1)[1].split("\n## ", 1)[0]
    for needed in ("existingArmTopicResourceIds", "existingArmTopicResourceId", "system-assigned",
                   "existingResourceNotificationsTopicResourceIds", "existingPolicyStatesTopicResourceIds",
                   "python -m shared preflight",
                   "Update-AzEventGridSystemTopic", "subscription.bicep", "az eventgrid system-topic list"):
        assert needed in section, needed
    preflight = text.split("## Pre-flight checks", 1)[1].split("\n## ", 1)[0]
    assert "not supported" not in preflight and "existingArmTopicResourceIds" in preflight
    missing = text.split("## Not there yet", 1)[1]
    assert "**Reusing an existing" not in missing  # what this adds
    assert "Reusing a topic with `deployIfNotExists`" in missing  # what it does not
