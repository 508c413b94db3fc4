"""The management-group deployment: past ARM's 800-resource limit, one subscription at a time.

infra/management-group.bicep deploys the monitor once (infra/main.bicep, user-assigned identities, queue
delivery, MONITORED_SCOPES naming management groups), Reader at each monitored group, and either a
deployIfNotExists policy or a vending pipeline deploys each subscription's part on its own
(infra/policy/subscription-events.json, the ARM JSON twin of infra/subscription.bicep).

[ARM-LIMITS] "Azure subscription and service limits: Azure Resource Manager" (resources per template: 800).
[DINE]       "Azure Policy deployIfNotExists effect": the if condition is evaluated for each subscription; the
             details' existenceCondition decides compliance; a subscription-level deployment needs
             deploymentScope subscription and a location; roleDefinitionIds give the assignment's identity.
[MG-RBAC]    "Management groups: Azure role-based access control": a role at a group is inherited below.
[EG-MSI]     "Event delivery with a managed identity": a system topic delivers and dead-letters with its
             system-assigned identity or a user-assigned identity assigned to it.
[EG-QUEUE]   "Storage queue as an event handler": behind a storage firewall only the system-assigned
             identity delivers (https://learn.microsoft.com/azure/event-grid/handler-storage-queues).
"""
from __future__ import annotations

import json
from pathlib import Path

import pytest

from shared.catalog import alias_resolver
from shared.domain.scopes import Scopes
from shared.policy.conditions import compile_rule
from shared.templates.expand import expand_template
from tests.test_bicep import INFRA, MAIN, body, module, parsed, resources_of_type, variable
from tests.test_infra import dotted

MG_TEMPLATE = INFRA / "management-group.bicep"
SUBSCRIPTION_TEMPLATE = INFRA / "subscription.bicep"
POLICY_TEMPLATE = INFRA / "policy" / "subscription-events.json"
SUB = "5c0a7e29-8b1d-4f3e-a6c2-7d9e0f1a2b3c"
HUB = f"/subscriptions/{'1' * 8}-0000-4000-8000-000000000000/resourceGroups/rg-compliance-monitor/providers"
STORAGE_ID = f"{HUB}/Microsoft.Storage/storageAccounts/stcm1"
TOPIC_IDENTITY = f"{HUB}/Microsoft.ManagedIdentity/userAssignedIdentities/id-cm-topics-1"
READER = "acdd72a7-3385-48ef-bd42-f606fba81ae7"


def unquote(value):
    """pycep keeps a Bicep string's escaped quotes (\\'); Bicep emits them as plain quotes."""
    if isinstance(value, str):
        return value.replace("\\'", "'")
    if isinstance(value, dict):
        return {k: unquote(v) for k, v in value.items()}
    if isinstance(value, list):
        return [unquote(v) for v in value]
    return value


def policy_definition() -> dict:
    return unquote(body(parsed(MG_TEMPLATE)["resources"]["onboardingPolicy"])["properties"])


def expanded(**parameters) -> dict[str, dict]:
    """What the policy's deployment creates in a subscription, by type (lower case)."""
    given = {"location": "westeurope", "storageAccountResourceId": STORAGE_ID,
             "topicIdentityResourceId": TOPIC_IDENTITY, **parameters}
    out = expand_template(json.loads(POLICY_TEMPLATE.read_text()), parameters=given, subscription_id=SUB,
                          location="westeurope")
    found: dict[str, list] = {}
    for declared in out.resources:
        assert not declared.unknowns, (declared.label, declared.unknowns)
        found.setdefault(declared.resource["type"].lower(), []).append(declared.resource)
    return found


# ------------------------------------------------------------------ the shape of the deployment


def test_the_management_group_deployment_grows_with_groups_never_with_subscriptions():
    """[ARM-LIMITS] nothing in it loops over subscriptions: 10 or 10,000 below the groups, the same template."""
    tree = parsed(MG_TEMPLATE)
    assert tree["globals"]["scope"]["value"] == "managementGroup"
    loops = {name: m["config"]["loop_type"]["detail"]["array_name"]
             for name, m in tree["modules"].items() if "loop_type" in m["config"]}
    assert loops == {"readers": "monitoredManagementGroupIds", "onboarding": "monitoredManagementGroupIds"}
    assert not [p for p in tree["parameters"] if "subscriptionids" in p.lower()]
    monitor = body(tree["modules"]["monitor"])
    assert monitor["scope"] == {"function": {"type": "subscription", "parameters": {"subscription_id": "monitorSubscriptionId"}}}
    params = monitor["params"]
    assert params["identityType"] == "UserAssigned" and params["eventDelivery"] == "queue"
    assert params["monitoredManagementGroupIds"] == "monitoredManagementGroupIds"
    assert "monitoredSubscriptionIds" not in params
    # [EG-QUEUE] private networking with either onboarding: behind a storage firewall the topics need their
    # own system-assigned identities, whose roles each subscription's deployment assigns
    # (tests/test_infra_policy_private.py).
    assert params["enablePrivateNetworking"] == "usePrivateNetworking"
    assert variable(tree, "usePrivateNetworking")["function"]["parameters"]["container"] == [
        "policyPrivate", "pipelinePrivate"]
    assert variable(tree, "usePolicy")["function"]["parameters"]["container"] == ["policy", "policyPrivate"]
    assert tree["parameters"]["subscriptionOnboarding"]["decorators"][1]["argument"] == [
        "policy", "policyPrivate", "pipeline", "pipelinePrivate"]


def test_reader_is_assigned_once_per_management_group_to_the_apps_user_assigned_identity():
    """[MG-RBAC] Reader at the group reaches every subscription below it, those created later too."""
    tree = parsed(MG_TEMPLATE)
    assert body(tree["modules"]["readers"])["scope"]["function"]["type"] == "management_group"
    assert dotted(body(tree["modules"]["readers"])["params"]["principalId"]) == "monitor.outputs.appPrincipalId"
    assert READER in json.dumps(variable(tree, "readerRoleId"))
    (assignment,) = resources_of_type(module("role-assignments-management-group"), "Microsoft.Authorization/roleAssignments")
    assert parsed(INFRA / "modules" / "role-assignments-management-group.bicep")["globals"]["scope"]["value"] == \
        "managementGroup" and body(assignment)["properties"]["principalType"] == "ServicePrincipal"


def test_the_app_identity_is_user_assigned_and_the_topics_share_one_identity():
    """Recreating the app orphans no role assignment; the topics' storage roles are assigned once, centrally."""
    main = parsed(MAIN)
    assert main["parameters"]["identityType"]["default"] == "SystemAssigned", "the quick start is unchanged"
    identities = resources_of_type(module("identities"), "Microsoft.ManagedIdentity/userAssignedIdentities")
    assert len(identities) == 2
    app = body(main["modules"]["functionApp"])["params"]
    assert "identities" in json.dumps(app["userAssignedIdentityResourceId"])
    roles = body(main["modules"]["topicRoles"])["params"]
    assert "topicPrincipalId" in json.dumps(roles["principalIds"]) and roles["queueName"] == "eventsQueueName"
    assert main["modules"]["topicRoles"]["config"]["condition"] == "shareTopicIdentity"
    # [EG-QUEUE] with a storage firewall (private networking) only system-assigned topic identities deliver.
    assert variable(main, "shareTopicIdentity") == {"operator": {"type": "and", "operands": {
        "operand_1": "useUserAssignedIdentities",
        "operand_2": {"operator": {"type": "not", "operands": {"bool_value": "enablePrivateNetworking"}}}}}}
    wiring = module("monitored-subscription")
    assert wiring["modules"]["deadLetterRole"]["config"]["condition"] == {
        "operator": {"type": "not", "operands": {"bool_value": "sharedTopicIdentity"}}}
    assert wiring["resources"]["reader"]["config"]["condition"] == "assignReader"


def test_management_groups_reach_monitored_scopes_and_an_empty_deployment_is_refused():
    main = parsed(MAIN)
    groups = variable(main, "monitoredGroupScopes")
    assert groups["loop_type"]["detail"] == {"item_name": "groupId", "array_name": "monitoredManagementGroupIds"}
    assert Scopes.parse([groups["config"].replace("${groupId}", "Corp-Landing_Zones")]).management_groups == (
        "corp-landing_zones",)
    assert variable(main, "monitoredScopes") == {"function": {"type": "concat", "parameters": {
        "arg_1": "monitoredSubscriptionScopes", "arg_2": "monitoredGroupScopes"}}}
    # Neither subscriptions nor groups: the function-app module's @minLength(1) fails the deployment.
    assert {"type": "min_length", "argument": 1} in module("function-app")["parameters"]["monitoredScopes"]["decorators"]
    five_hundred = ",".join(f"/subscriptions/{i:08d}-0000-4000-8000-000000000000" for i in range(500))
    two_groups = "/providers/Microsoft.Management/managementGroups/corp,/providers/Microsoft.Management/managementGroups/online"
    assert len(five_hundred) > 25_000 and len(two_groups) < 120  # docs/SCALE.md


# ------------------------------------------------------------------ one subscription's part


def test_the_policy_deployment_creates_the_topic_and_the_queue_delivery_with_the_shared_identity():
    """[EG-MSI] one system topic of the subscription's ARM events, delivering to the central queue and
    dead-lettering to the central container with the shared user-assigned identity."""
    found = expanded(enableResourceLocks=True)
    (group,) = found["microsoft.resources/resourcegroups"]
    assert group["name"] == "rg-compliance-monitor-events"
    (topic,) = found["microsoft.eventgrid/systemtopics"]
    assert topic["properties"] == {"source": f"/subscriptions/{SUB}", "topicType": "Microsoft.Resources.Subscriptions"}
    assert topic["identity"] == {"type": "UserAssigned", "userAssignedIdentities": {TOPIC_IDENTITY: {}}}
    (sub,) = found["microsoft.eventgrid/systemtopics/eventsubscriptions"]
    delivery = sub["properties"]["deliveryWithResourceIdentity"]
    assert delivery["identity"] == {"type": "UserAssigned", "userAssignedIdentity": TOPIC_IDENTITY}
    assert delivery["destination"]["endpointType"] == "StorageQueue"
    assert delivery["destination"]["properties"]["resourceId"] == STORAGE_ID
    dead = sub["properties"]["deadLetterWithResourceIdentity"]
    assert dead["identity"] == delivery["identity"] and dead["deadLetterDestination"]["endpointType"] == "StorageBlob"
    assert "destination" not in sub["properties"], "no webhook: nothing to publish before a subscription joins"
    assert found["microsoft.authorization/locks"][0]["properties"]["level"] == "CanNotDelete"
    assert "microsoft.authorization/roleassignments" not in found, "no role per subscription"
    with_arn = expanded(enableResourceNotifications=True)
    assert len(with_arn["microsoft.eventgrid/systemtopics"]) == 2 and "microsoft.authorization/locks" not in with_arn
    everything = expanded(enableResourceNotifications=True, enablePolicyStateEvents=True)
    assert sorted(t["properties"]["topicType"] for t in everything["microsoft.eventgrid/systemtopics"]) == [
        "Microsoft.PolicyInsights.PolicyStates", "Microsoft.ResourceNotifications.Resources",
        "Microsoft.Resources.Subscriptions"]
    assert len(everything["microsoft.eventgrid/systemtopics/eventsubscriptions"]) == 3


def conforms(model, value, path: str = "") -> list[str]:
    """Property names (and discriminators) of ``value`` the REST API's model does not know: the models of
    azure-mgmt-eventgrid, generated from the API's specification, with their flattened ``properties.x`` keys
    and polymorphic types chosen by their discriminator, as the service reads them."""
    from azure.mgmt.eventgrid import models

    subtypes = getattr(model, "_subtype_map", None) or {}
    for discriminator, kinds in subtypes.items():
        key = model._attribute_map[discriminator]["key"]
        if value.get(key) not in kinds:
            return [f"{path}.{key}: {value.get(key)!r} is not one of {sorted(kinds)}"]
        model = getattr(models, kinds[value[key]])
    tree: dict = {}
    for spec in model._attribute_map.values():
        node = tree
        *parents, leaf = spec["key"].split(".")
        for part in parents:
            node = node.setdefault(part, {})
        node[leaf] = spec["type"]
    return _against(tree, value, path, models)


def _against(tree: dict, value: dict, path: str, models) -> list[str]:
    wrong = []
    for key, item in value.items():
        where = f"{path}.{key}"
        if key not in tree:
            wrong.append(f"{where}: not a property of the API")
        elif isinstance(tree[key], dict):
            wrong += _against(tree[key], item, where, models)
        elif tree[key].startswith("[") and hasattr(models, tree[key][1:-1]):
            wrong += [w for i, x in enumerate(item) for w in conforms(getattr(models, tree[key][1:-1]), x, f"{where}[{i}]")]
        elif hasattr(models, tree[key]) and isinstance(item, dict):
            wrong += conforms(getattr(models, tree[key]), item, where)
    return wrong


def test_what_the_policy_deploys_is_what_the_event_grid_api_defines():
    """[EG-MSI] every property of the topic and the event subscription (and identity types) is the Event Grid
    REST API's, API version 2022-06-15's models in azure-mgmt-eventgrid; the destinations are its types."""
    from azure.mgmt.eventgrid import models

    found = expanded(enableResourceNotifications=True, enablePolicyStateEvents=True)
    for topic in found["microsoft.eventgrid/systemtopics"]:
        body_ = {k: v for k, v in topic.items() if k not in ("apiVersion", "id")}
        assert conforms(models.SystemTopic, body_) == [], topic["name"]
        assert topic["identity"]["type"] in {t.value for t in models.IdentityType}
    for sub in found["microsoft.eventgrid/systemtopics/eventsubscriptions"]:
        assert conforms(models.EventSubscription, {k: v for k, v in sub.items() if k not in ("apiVersion", "id")}) == []
        for route in ("deliveryWithResourceIdentity", "deadLetterWithResourceIdentity"):
            assert sub["properties"][route]["identity"]["type"] in {t.value for t in models.EventSubscriptionIdentityType}
    broken = json.loads(json.dumps(found["microsoft.eventgrid/systemtopics/eventsubscriptions"][0]))
    broken["properties"]["deliveryWithResourceIdentity"]["destination"]["properties"]["queue"] = "x"
    broken["properties"]["filter"]["advancedFilters"][0]["operatorType"] = "StringNotStartsWith"
    assert len(conforms(models.EventSubscription, {k: v for k, v in broken.items() if k not in ("apiVersion", "id")})) == 2


def test_the_policy_template_and_the_bicep_modules_deliver_the_same_events_the_same_way():
    """The ARM JSON twin keeps what event-subscriptions.bicep and event-topics.bicep deploy: the event types,
    the noise filters (same defaults as main.bicep and subscription.bicep), retry, names and queue TTL."""
    subs = expanded(enableResourceNotifications=True, enablePolicyStateEvents=True)[
        "microsoft.eventgrid/systemtopics/eventsubscriptions"]
    bicep_subs = module("event-subscriptions")
    kinds = {"arm": "armToFunction", "arn": "arnToFunction", "policy": "policyToFunction"}
    for each in subs:  # evgt-compliance-monitor-<kind>/compliance-monitor
        bicep = body(bicep_subs["resources"][kinds[each["name"].split("/")[0].rsplit("-", 1)[1]]])["properties"]
        assert each["properties"]["filter"]["includedEventTypes"] == bicep["filter"]["includedEventTypes"]
    (sub,) = [s for s in subs if s["name"].startswith("evgt-compliance-monitor-arm/")]
    arm = body(bicep_subs["resources"]["armToFunction"])["properties"]
    assert sub["properties"]["filter"]["includedEventTypes"] == arm["filter"]["includedEventTypes"]
    assert sub["properties"]["filter"]["enableAdvancedFilteringOnArrays"] is arm["filter"]["enableAdvancedFilteringOnArrays"]
    filters = sub["properties"]["filter"]["advancedFilters"]
    defaults = {name: parsed(path)["parameters"][name]["default"]
                for path in (MAIN, SUBSCRIPTION_TEMPLATE)
                for name in ("ignoredOperationNamePrefixes", "ignoredOperationNameSuffixes")}
    assert filters[0]["values"] == defaults["ignoredOperationNamePrefixes"]
    assert filters[1]["values"] == defaults["ignoredOperationNameSuffixes"]
    assert [f["operatorType"] for f in filters] == ["StringNotBeginsWith", "StringNotEndsWith"]
    queue = variable(bicep_subs, "queueDelivery")["destination"]["properties"]
    assert sub["properties"]["deliveryWithResourceIdentity"]["destination"]["properties"]["queueMessageTimeToLiveInSeconds"] \
        == queue["queueMessageTimeToLiveInSeconds"]
    assert sub["name"].split("/") == [module("event-topics")["parameters"]["armTopicName"]["default"],
                                      bicep_subs["parameters"]["eventSubscriptionName"]["default"]]
    assert sub["properties"]["retryPolicy"] == {"maxDeliveryAttempts": 30, "eventTimeToLiveInMinutes": 1440}
    api = {r["type"]: r["apiVersion"] for r in json.loads(POLICY_TEMPLATE.read_text())["resources"][1]["properties"]
           ["template"]["resources"]}
    bicep_api = {r["type"]: r["api_version"] for r in module("event-topics")["resources"].values()}
    assert all(api[t] == bicep_api[t] for t in api if t in bicep_api) and "Microsoft.EventGrid/systemTopics" in api


def test_the_policy_finds_what_its_deployment_creates_compliant_and_anything_else_not():
    """[DINE] evaluated with the monitor's own Azure Policy engine: the event subscription the deployment
    creates (as ARM returns it: a child's name is its own) satisfies the existenceCondition, so a remediated
    subscription is compliant and never deployed to again; a webhook or another identity is not."""
    details = policy_definition()["policyRule"]["then"]["details"]
    assert details["deploymentScope"] == "subscription" and details["existenceScope"] == "subscription"
    assert details["type"] == "Microsoft.EventGrid/systemTopics/eventSubscriptions"
    assert details["deployment"]["location"] == "[parameters('location')]"
    exists = compile_rule(details["existenceCondition"], {"topicIdentityResourceId": TOPIC_IDENTITY}, alias_resolver())
    (created,) = expanded()["microsoft.eventgrid/systemtopics/eventsubscriptions"]
    as_read = {**created, "name": created["name"].rsplit("/", 1)[-1]}
    assert exists.matches(as_read)
    webhook = json.loads(json.dumps(as_read))
    webhook["properties"]["deliveryWithResourceIdentity"]["destination"]["endpointType"] = "AzureFunction"
    assert not exists.matches(webhook)
    stranger = json.loads(json.dumps(as_read))
    stranger["properties"]["deliveryWithResourceIdentity"]["identity"]["userAssignedIdentity"] = TOPIC_IDENTITY + "-old"
    assert not exists.matches(stranger)
    applies = compile_rule(policy_definition()["policyRule"]["if"], {}, alias_resolver())
    assert applies.matches({"id": f"/subscriptions/{SUB}", "type": "Microsoft.Resources/subscriptions"})
    assert not applies.matches(created)


def test_the_policy_passes_every_template_parameter_it_declares_and_the_assignment_sets_them():
    """Every value the deployment needs has a definition parameter, and each assignment gives each one."""
    definition = policy_definition()
    declared = set(definition["parameters"]) - {"effect"}
    deployment = definition["policyRule"]["then"]["details"]["deployment"]["properties"]
    assert deployment["template"]["function"]["parameters"]["file_path"] == "policy/subscription-events.json"
    assert set(deployment["parameters"]) == declared
    assert all(v == {"value": f"[parameters('{k}')]"} for k, v in deployment["parameters"].items())
    template = json.loads(POLICY_TEMPLATE.read_text())["parameters"]
    assert declared <= set(template)
    assert {k for k, p in template.items() if "defaultValue" not in p} <= declared
    given = body(parsed(MG_TEMPLATE)["modules"]["onboarding"])["params"]["policyParameters"]
    assert set(given) == declared
    assert definition["policyRule"]["then"]["details"]["roleDefinitionIds"] == ["onboardingRoleId"]


def test_the_onboarding_role_can_deploy_the_subscription_part_and_nothing_more():
    """Least privilege: the deployment's resource types, assigning the shared identity, and Event Grid's write
    check on a non-webhook destination (https://learn.microsoft.com/azure/event-grid/security-authorization)."""
    role = body(parsed(MG_TEMPLATE)["resources"]["onboardingRole"])["properties"]
    (permissions,) = role["permissions"]
    actions = set(permissions["actions"])
    assert "*" not in actions and not any(a.startswith("Microsoft.Authorization/roleAssignments") for a in actions)
    assert {"Microsoft.ManagedIdentity/userAssignedIdentities/assign/action", "Microsoft.Storage/storageAccounts/write",
            "Microsoft.EventGrid/systemTopics/*", "Microsoft.Resources/deployments/*"} <= actions
    for resource_type in expanded(enableResourceLocks=True):
        namespace, kind = resource_type.split("/", 1)
        assert any(a.lower().startswith(resource_type.split("/eventsubscriptions")[0]) or
                   a.lower() == f"microsoft.resources/subscriptions/{kind}/write" for a in actions), resource_type


def test_the_subscription_template_takes_what_the_monitor_outputs():
    """A vending pipeline passes the monitor's subscriptionParameters output to infra/subscription.bicep as it is."""
    outputs = body(parsed(MAIN)["outputs"]["subscriptionParameters"]) if "config" in parsed(MAIN)["outputs"][
        "subscriptionParameters"] else parsed(MAIN)["outputs"]["subscriptionParameters"]["value"]
    declared = parsed(SUBSCRIPTION_TEMPLATE)["parameters"]
    # all but what only the subscription itself knows: the system topic it may already have
    own = {"existingArmTopicResourceId", "existingResourceNotificationsTopicResourceId",
           "existingPolicyStatesTopicResourceId"}
    assert set(declared) - set(outputs) == own and set(outputs) <= set(declared)
    assert all(declared[name]["default"] == "" for name in own)
    required = {name for name, p in declared.items() if p["default"] is None}
    assert required == {"location", "storageAccountResourceId", "topicIdentityResourceId"}
    monitored = body(parsed(SUBSCRIPTION_TEMPLATE)["modules"]["monitored"])["params"]
    assert monitored["assignReader"] is False and monitored["deployEventSubscriptions"] is True
    assert monitored["topicIdentityResourceId"] == "topicIdentityResourceId"


@pytest.mark.parametrize("doc", ["docs/DEPLOY.md"])
def test_the_deploy_guide_walks_the_500_subscription_path(doc):
    text = (Path(__file__).resolve().parents[1] / doc).read_text(encoding="utf-8")
    section = text.split("## Management groups: 500 subscriptions and more", 1)[1].split("\n## ", 1)[0]
    for step in ("az deployment mg create", "infra/management-group.bicep", "az policy remediation create",
                 "infra/subscription.bicep", "subscriptionParameters", "monitorSubscriptionId", "az functionapp"):
        assert step in section, step
