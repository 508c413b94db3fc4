"""Private networking with policy onboarding (infra/management-group.bicep ``subscriptionOnboarding:
'policyPrivate'``, docs/DEPLOY.md "Management groups: 500 subscriptions and more").

Behind the storage firewall Event Grid delivers and dead-letters only with a topic's *system-assigned*
identity ("If a firewall or virtual network rule is configured for the Azure Storage account, you can use only
the system-assigned managed identity", https://learn.microsoft.com/azure/event-grid/handler-storage-queues).
So with no shared identity the policy's deployment (infra/policy/subscription-events.json) gives each topic
its own identity and assigns that identity its two storage roles at the central account, before the event
subscriptions are created (Event Grid checks the destination's role then). The policy's identity may do that
through Role Based Access Control Administrator on the storage account, with a condition that allows
assigning and removing exactly those two roles to service principals
(https://learn.microsoft.com/azure/role-based-access-control/delegate-role-assignments-examples, "Example:
Constrain roles"); the condition is evaluated here as the conditions' syntax defines it.
"""
from __future__ import annotations

import json
import re
from typing import Any

import pytest

from shared.catalog import alias_resolver
from shared.policy.conditions import compile_rule
from shared.templates.expand import expand_template
from tests.test_bicep import INFRA, body, module, parsed
from tests.test_infra_private import module_scope, created
from tests.test_infra_scale import (MG_TEMPLATE, POLICY_TEMPLATE, STORAGE_ID, SUB, TOPIC_IDENTITY, conforms, expanded,
                                    policy_definition, unquote)

ONBOARDING = INFRA / "modules" / "role-assignments-onboarding.bicep"
DEAD_LETTER = INFRA / "modules" / "role-assignments-dead-letter.bicep"
RBAC_ADMINISTRATOR = "f58310d9-a9f6-439a-9e8d-f62e7b41a168"
BLOB_DATA_CONTRIBUTOR = "ba92f5b4-2d11-453d-a403-e96b0029c9fe"
QUEUE_MESSAGE_SENDER = "c6a89b2d-59bc-44d0-9896-0f6e12d7b80a"
OWNER = "8e3af657-a8ff-443c-a75c-2fe8c4bcb635"
EVENT_SUBSCRIPTIONS = "microsoft.eventgrid/systemtopics/eventsubscriptions"
ROLES_DEPLOYMENT = "compliance-monitor-topic-storage-roles"


def private(**parameters: Any) -> dict[str, list[dict]]:
    """What the policy's deployment creates with no shared identity, by type (lower case). The only values not
    known before deployment are the topics' principal ids (reference() to the topics) and the role assignment
    names hashed from them."""
    given = {"location": "westeurope", "storageAccountResourceId": STORAGE_ID, "topicIdentityResourceId": "",
             **parameters}
    out = expand_template(json.loads(POLICY_TEMPLATE.read_text()), parameters=given, subscription_id=SUB,
                          location="westeurope")
    found: dict[str, list] = {}
    for declared in out.resources:
        kind = declared.resource["type"].lower()
        if kind == "microsoft.authorization/roleassignments":
            assert {path for path, _ in declared.unknowns} == {("name",), ("properties", "principalId")}
            assert "reference() reads a deployed resource" in declared.resource["properties"]["principalId"]
        else:
            assert not declared.unknowns, (declared.label, declared.unknowns)
        found.setdefault(kind, []).append(declared.resource)
    return found


def inner_template() -> dict:
    return json.loads(POLICY_TEMPLATE.read_text())["resources"][1]["properties"]["template"]


# ------------------------------------------------------------------ the policy's deployment


def test_with_no_shared_identity_every_topic_delivers_and_dead_letters_with_its_own_identity():
    found = private(enableResourceNotifications=True, enablePolicyStateEvents=True)
    from azure.mgmt.eventgrid import models

    topics = found["microsoft.eventgrid/systemtopics"]
    assert len(topics) == 3 and all(t["identity"] == {"type": "SystemAssigned"} for t in topics)
    for topic in topics:
        assert conforms(models.SystemTopic, {k: v for k, v in topic.items() if k not in ("apiVersion", "id")}) == []
    for sub in found[EVENT_SUBSCRIPTIONS]:
        delivery, dead = sub["properties"]["deliveryWithResourceIdentity"], sub["properties"]["deadLetterWithResourceIdentity"]
        assert delivery["identity"] == dead["identity"] == {"type": "SystemAssigned"}
        assert delivery["destination"]["properties"]["resourceId"] == STORAGE_ID
        assert conforms(models.EventSubscription, {k: v for k, v in sub.items() if k not in ("apiVersion", "id")}) == []
    shared = expanded(enableResourceNotifications=True)  # the default (policy): the shared identity, no role here
    assert all(t["identity"]["type"] == "UserAssigned" for t in shared["microsoft.eventgrid/systemtopics"])
    assert "microsoft.authorization/roleassignments" not in shared


def test_the_topics_get_the_two_storage_roles_at_the_central_account_as_the_bicep_module_gives_them():
    """The same two roles, at the same scopes, as modules/role-assignments-dead-letter.bicep: Storage Blob Data
    Contributor on the dead-letter container, Storage Queue Data Message Sender on the events queue, each to the
    topics' service principals, deployed in the storage account's own subscription and resource group."""
    roles = private()["microsoft.authorization/roleassignments"]
    hub = STORAGE_ID.split("/providers/")[0].split("/resourceGroups/")[0]
    by_role = {r["properties"]["roleDefinitionId"].rsplit("/", 1)[1]: r for r in roles}
    assert set(by_role) == {BLOB_DATA_CONTRIBUTOR, QUEUE_MESSAGE_SENDER}
    assert all(r["properties"]["roleDefinitionId"].startswith(f"{hub}/providers/Microsoft.Authorization/") for r in roles)
    assert all(r["properties"]["principalType"] == "ServicePrincipal" for r in roles)
    scope = lambda r: r["id"].split("/providers/Microsoft.Authorization/")[0]  # noqa: E731
    assert scope(by_role[BLOB_DATA_CONTRIBUTOR]) == f"{STORAGE_ID}/blobServices/default/containers/eventgrid-deadletter"
    assert scope(by_role[QUEUE_MESSAGE_SENDER]) == f"{STORAGE_ID}/queueServices/default/queues/compliance-events"
    bicep = module("role-assignments-dead-letter")["variables"]
    assert {bicep[v]["value"]["function"]["parameters"]["resource_name_1"] for v in ("blobDataContributor",
                                                                                     "queueMessageSender")} == set(by_role)


def test_the_roles_are_assigned_after_the_topics_exist_and_before_their_event_subscriptions():
    resources = inner_template()["resources"]
    (deployment,) = [r for r in resources if r["type"] == "Microsoft.Resources/deployments"]
    assert deployment["name"] == ROLES_DEPLOYMENT and deployment["condition"] == "[not(variables('sharedIdentity'))]"
    assert (deployment["subscriptionId"], deployment["resourceGroup"]) == ("[variables('storage')[2]]",
                                                                         "[variables('storage')[4]]")
    topics = {r["name"]: r.get("condition") for r in resources if r["type"] == "Microsoft.EventGrid/systemTopics"}
    assert deployment["dependsOn"] == [f"[resourceId('Microsoft.EventGrid/systemTopics', {n[1:-1]})]" for n in topics]
    principals = deployment["properties"]["parameters"]["principalIds"]["value"]
    for name, condition in topics.items():  # each topic's principal, the optional ones with their own switch
        read = f"reference(resourceId('Microsoft.EventGrid/systemTopics', {name[1:-1]}), '2022-06-15', 'full').identity.principalId"
        assert read in principals, name
        if condition:
            assert f"if({condition[1:-1]}, createArray({read})" in principals, name
    after = f"[resourceId(variables('storage')[2], variables('storage')[4], 'Microsoft.Resources/deployments', '{ROLES_DEPLOYMENT}')]"
    subscriptions = [r for r in resources if r["type"] == "Microsoft.EventGrid/systemTopics/eventSubscriptions"]
    assert len(subscriptions) == 3 and all(after in r["dependsOn"] for r in subscriptions)


@pytest.mark.parametrize("identity", ["", TOPIC_IDENTITY])
def test_the_policy_finds_each_mode_s_event_subscription_compliant_and_the_other_not(identity):
    """existenceCondition with the assignment's topicIdentityResourceId: the shared identity, or with private
    networking (empty) the topic's own; the definition's parameter defaults to empty."""
    definition = policy_definition()
    assert definition["parameters"]["topicIdentityResourceId"]["defaultValue"] == ""
    exists = compile_rule(definition["policyRule"]["then"]["details"]["existenceCondition"],
                          {"topicIdentityResourceId": identity}, alias_resolver())
    as_read = lambda sub: {**sub, "name": sub["name"].rsplit("/", 1)[-1]}  # noqa: E731
    (own,) = private()[EVENT_SUBSCRIPTIONS]
    (shared,) = expanded()[EVENT_SUBSCRIPTIONS]
    assert exists.matches(as_read(own)) is (identity == "")
    assert exists.matches(as_read(shared)) is (identity == TOPIC_IDENTITY)


# ------------------------------------------------------------------ who may assign them


def _tokens(text: str) -> list[str]:
    return re.findall(r"\(|\)|!|\bAND\b|\bOR\b|ActionMatches\{'[^']*'\}|@\w+\[[^\]]+\]\s+\S+\s+\{[^}]*\}", text)


def condition_allows(condition: str, action: str, attributes: dict[str, dict[str, str]]) -> bool:
    """A role assignment condition (https://learn.microsoft.com/azure/role-based-access-control/conditions-format):
    ``!``, ``AND`` before ``OR``, parentheses, ``ActionMatches{'...'}`` and ``@<Source>[<attribute>]
    ForAnyOfAnyValues:<GuidEquals|StringEqualsIgnoreCase> {values}``. ``attributes`` by source (Request,
    Resource); an attribute the action lacks matches nothing."""
    tokens = _tokens(condition)
    assert "".join(tokens).replace(" ", "") == re.sub(r"\s+", "", condition), "condition has unparsed text"
    pos = 0

    def primary() -> bool:
        nonlocal pos
        token = tokens[pos]
        pos += 1
        if token == "(":
            value = either()
            assert tokens[pos] == ")"
            pos += 1
            return value
        if token == "!":
            return not primary()
        if token.startswith("ActionMatches"):
            return action == token[len("ActionMatches{'"):-2]
        source, attribute, operator, values = re.fullmatch(r"@(\w+)\[([^\]]+)\]\s+(\S+)\s+\{([^}]*)\}", token).groups()
        assert operator in ("ForAnyOfAnyValues:GuidEquals", "ForAnyOfAnyValues:StringEqualsIgnoreCase"), operator
        allowed = {v.strip().strip("'").lower() for v in values.split(",")}
        value = attributes.get(source, {}).get(attribute)
        return value is not None and value.lower() in allowed

    def chain(word: str, operand, combine) -> bool:  # AND binds tighter than OR
        nonlocal pos
        value = operand()
        while pos < len(tokens) and tokens[pos] == word:
            pos += 1
            value = combine(value, operand())
        return value

    def both() -> bool:
        return chain("AND", primary, lambda a, b: a and b)

    def either() -> bool:
        return chain("OR", both, lambda a, b: a or b)

    result = either()
    assert pos == len(tokens)
    return result


def _request(action: str, role: str, principal_type: str) -> tuple[str, dict]:
    source = "Request" if action.endswith("/write") else "Resource"
    return action, {source: {"Microsoft.Authorization/roleAssignments:RoleDefinitionId": role,
                             "Microsoft.Authorization/roleAssignments:PrincipalType": principal_type}}


def delegations(delegate: bool) -> list[dict]:
    scope = module_scope(ONBOARDING, {"roleDefinitionId": "onboarding", "principalIds": ["policy-a", "policy-b"],
                                      "storageAccountName": "stcm1", "delegateTopicStorageRoles": delegate})
    return [unquote(a) for a in created(scope, "Microsoft.Authorization/roleAssignments")]


def test_the_policy_identity_may_assign_exactly_the_topics_two_storage_roles_to_service_principals():
    made = delegations(True)
    delegated = [a for a in made if a["properties"]["roleDefinitionId"] != "onboarding"]
    assert len(made) == 4 and [a["properties"]["principalId"] for a in delegated] == ["policy-a", "policy-b"]
    for assignment in delegated:
        props = assignment["properties"]
        assert assignment["scope"] == "storage" and props["conditionVersion"] == "2.0"
        assert props["roleDefinitionId"] == "subscription_resource_id()"  # rbacAdministrator, known at deployment
        assert props["principalType"] == "ServicePrincipal"
        condition = props["condition"]
        for action in ("Microsoft.Authorization/roleAssignments/write", "Microsoft.Authorization/roleAssignments/delete"):
            for role in (BLOB_DATA_CONTRIBUTOR, QUEUE_MESSAGE_SENDER):
                assert condition_allows(condition, *_request(action, role, "ServicePrincipal")), (action, role)
                assert not condition_allows(condition, *_request(action, role, "User")), (action, role)
            assert not condition_allows(condition, *_request(action, OWNER, "ServicePrincipal")), action
            assert not condition_allows(condition, *_request(action, RBAC_ADMINISTRATOR, "ServicePrincipal")), action
        assert condition_allows(condition, "Microsoft.Authorization/roleAssignments/read", {})  # reading is not limited
    # what the condition admits is what the policy's deployment assigns
    assigned = {r["properties"]["roleDefinitionId"].rsplit("/", 1)[1] for r in private()["microsoft.authorization/roleassignments"]}
    admitted = set(re.findall(r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}", delegated[0]["properties"]["condition"]))
    assert admitted == assigned
    assert [a["properties"]["roleDefinitionId"] for a in delegations(False)] == ["onboarding", "onboarding"]
    tree = module("role-assignments-onboarding")
    assert body(tree["resources"]["topicRoleDelegation"])["properties"]["roleDefinitionId"] == "rbacAdministrator"
    assert tree["variables"]["rbacAdministrator"]["value"]["function"]["parameters"]["resource_name_1"] == RBAC_ADMINISTRATOR


def test_the_condition_evaluator_reads_the_docs_example_as_the_docs_explain_it():
    """The docs' "Constrain roles" example: Backup Contributor or Backup Reader may be added or removed, no other."""
    example = ("((!(ActionMatches{'Microsoft.Authorization/roleAssignments/write'})) OR "
               "(@Request[Microsoft.Authorization/roleAssignments:RoleDefinitionId] ForAnyOfAnyValues:GuidEquals "
               "{5e467623-bb1f-42f4-a55d-6e525e11384b, a795c7a0-d4a2-40c1-ae25-d81f01202912})) AND "
               "((!(ActionMatches{'Microsoft.Authorization/roleAssignments/delete'})) OR "
               "(@Resource[Microsoft.Authorization/roleAssignments:RoleDefinitionId] ForAnyOfAnyValues:GuidEquals "
               "{5e467623-bb1f-42f4-a55d-6e525e11384b, a795c7a0-d4a2-40c1-ae25-d81f01202912}))")
    write, delete = "Microsoft.Authorization/roleAssignments/write", "Microsoft.Authorization/roleAssignments/delete"
    assert condition_allows(example, *_request(write, "5E467623-BB1F-42F4-A55D-6E525E11384B", "User"))
    assert condition_allows(example, *_request(delete, "a795c7a0-d4a2-40c1-ae25-d81f01202912", "Group"))
    assert not condition_allows(example, *_request(write, OWNER, "User"))
    assert not condition_allows(example, *_request(delete, OWNER, "User"))


# ------------------------------------------------------------------ the management-group deployment


@pytest.mark.parametrize("onboarding, policy, private_network", [
    ("policy", True, False), ("policyPrivate", True, True), ("pipeline", False, False), ("pipelinePrivate", False, True)])
def test_each_onboarding_mode_deploys_what_it_names(onboarding, policy, private_network):
    scope = module_scope(MG_TEMPLATE, {"monitorSubscriptionId": SUB, "subscriptionOnboarding": onboarding})
    assert (scope("usePolicy"), scope("usePrivateNetworking")) == (policy, private_network)
    tree = parsed(MG_TEMPLATE)
    assert scope(body(tree["modules"]["monitor"])["params"]["enablePrivateNetworking"]) is private_network
    access = tree["modules"]["onboardingMonitorAccess"]
    assert scope(access["config"]["condition"]) is policy
    assert scope(body(access)["params"]["delegateTopicStorageRoles"]) is private_network
    for symbol in ("onboardingRole", "onboardingPolicy"):
        assert scope(tree["resources"][symbol]["config"]["condition"]) is policy


def test_the_deploy_guide_offers_private_networking_with_policy_onboarding():
    from tests.test_bicep import REPO

    text = (REPO / "docs" / "DEPLOY.md").read_text(encoding="utf-8")
    section = text.split("## Management groups: 500 subscriptions and more", 1)[1].split("\n## ", 1)[0]
    for needed in ("policyPrivate", "pipelinePrivate", "Role Based Access Control Administrator", "service principals",
                   "delegate-role-assignments-examples"):
        assert needed in section, needed
    assert "Private networking with policy onboarding" not in text.split("## Not there yet", 1)[1]
