"""Who runs what, and where events go: the log alert rules' own identities and their read grants, and the
queue delivery option's queue, topics, roles and trigger (the templates parsed with pycep, as in
tests/test_infra.py)."""
from __future__ import annotations

import json

from tests.test_bicep import INFRA, MAIN, body, parsed, resources_of_type, variable
from tests.test_infra import dotted, module, template_app_settings


def test_every_log_alert_rule_runs_as_its_own_identity_with_read_on_what_it_queries():
    """[issue: the rules ran as their last editor] Each scheduled query rule has a system-assigned identity;
    main.bicep grants each one Log Analytics Reader on its scope: the workspace's rules on the workspace (at
    its resource group, which may be another subscription's), Application Insights' rules on the component."""
    path = INFRA / "modules" / "alerts.bicep"
    tree = parsed(path)
    rules = resources_of_type(tree, "Microsoft.Insights/scheduledQueryRules")
    assert len(rules) == 5
    for rule in rules:
        assert body(rule)["identity"]["type"] == "SystemAssigned"
    scopes = {}
    for rule in rules:
        (scope,) = body(rule)["properties"]["scopes"]
        scopes.setdefault(scope, 0)
        scopes[scope] += 2 if rule["config"].get("loop_type") else 1
    outputs = tree["outputs"]
    assert len(outputs["workspaceRulePrincipalIds"]["value"]) == scopes["workspaceResourceId"] == 4
    assert len(outputs["appInsightsRulePrincipalIds"]["value"]) == scopes["appInsightsResourceId"] == 2
    main = parsed(MAIN)
    workspace = body(main["modules"]["alertRuleWorkspaceReaders"])
    app = body(main["modules"]["alertRuleAppInsightsReaders"])
    assert dotted(workspace["params"]["principalIds"]) == "alerts.outputs.workspaceRulePrincipalIds"
    assert dotted(app["params"]["principalIds"]) == "alerts.outputs.appInsightsRulePrincipalIds"
    module = parsed(INFRA / "modules" / "role-assignments-alert-rules.bicep")
    assert "73c42c96-874c-492b-b04d-ab87d138a893" in json.dumps(module["variables"])  # Log Analytics Reader


def test_queue_delivery_wires_the_queue_the_topics_the_roles_and_the_trigger():
    """eventDelivery=queue: the storage account gets compliance-events and its poison queue; each topic sends
    with its identity (Storage Queue Data Message Sender on the queue); the app reads and processes the queue
    and may move a failing message to -poison; its settings name the queue the trigger binds."""
    main = parsed(MAIN)
    assert main["parameters"]["eventDelivery"]["default"] == "webhook"
    assert variable(main, "eventsQueueName")["operator"]["operands"] == {
        "condition": "useQueueDelivery", "true_value": "compliance-events", "false_value": ""}
    subs = module("event-subscriptions")
    queue = variable(subs, "queueDelivery")
    assert queue["destination"]["endpointType"] == "StorageQueue" and queue["identity"] == "deliveryIdentity"
    assert queue["destination"]["properties"]["queueName"] == "eventsQueueName"
    grants = {(g["queueName"], g["roleDefinitionId"])
              for g in body(main["modules"]["storageRoles"])["params"]["queueRoles"]["operator"]["operands"]["true_value"]}
    assert grants == {("eventsQueueName", "storageQueueDataReader"), ("eventsQueueName", "storageQueueDataMessageProcessor"),
                      ("${eventsQueueName}-poison", "storageQueueDataReader"),
                      ("${eventsQueueName}-poison", "storageQueueDataMessageSender")}
    assert (variable(main, "storageQueueDataReader"), variable(main, "storageQueueDataMessageProcessor"),
            variable(main, "storageQueueDataMessageSender")) == (
        "19e7f393-937e-4f77-808e-94535e297925", "8a0f0c08-91a1-4084-bc3d-661d67233fed",
        "c6a89b2d-59bc-44d0-9896-0f6e12d7b80a")
    sender = variable(module("role-assignments-dead-letter"), "queueMessageSender")
    assert sender["function"]["parameters"]["resource_name_1"] == "c6a89b2d-59bc-44d0-9896-0f6e12d7b80a"
    settings = template_app_settings()
    assert settings["EVENTS_QUEUE__queueServiceUri"] == "eventsQueueServiceUri"
    from handlers.queue_events import on_resource_change_queued

    (binding,) = [b.get_dict_repr() for b in on_resource_change_queued.build().get_bindings()]
    assert binding["queueName"] == "%EVENTS_QUEUE_NAME%" and binding["connection"] == "EVENTS_QUEUE"


def test_resource_locks_are_a_parameter_on_the_storage_account_and_every_topic():
    """enableResourceLocks (off by default): CanNotDelete on the storage account and on each system topic."""
    main = parsed(MAIN)
    assert main["parameters"]["enableResourceLocks"]["default"] is False
    assert body(main["modules"]["storage"])["params"]["enableResourceLocks"] == "enableResourceLocks"
    assert body(main["modules"]["monitored"])["params"]["enableResourceLocks"] == "enableResourceLocks"
    for name, targets in (("storage", {"storage"}), ("event-topics", {"armTopic", "arnTopic", "policyTopic"})):
        locks = resources_of_type(module(name), "Microsoft.Authorization/locks")
        assert {body(lock)["scope"] for lock in locks} == targets, name
        assert all(body(lock)["properties"]["level"] == "CanNotDelete" for lock in locks)
