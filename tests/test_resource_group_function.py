"""``resourceGroup()`` beyond id and name in Azure: the service reads the group (cached) when a rule asks.

The definition is the shape of the built-in "Inherit a tag from the resource group if missing"
(ea3f2387-9b95-492a-a190-fcdc54f7b070, mode Indexed, effect modify), as Microsoft publishes it.
"""
from __future__ import annotations

from datetime import datetime, timezone

from shared.adapters.memory import InMemoryStateStore, MemorySink, StaticResourceReader
from shared.catalog import Catalog, Status, alias_resolver, control_from_document
from shared.domain.events import ResourceChange
from shared.policy.importing import convert_definition
from shared.domain.resource_ids import parse_resource_id
from shared.service.changes import Dependencies, handle_change

SUB = "3b8e5f21-6c4d-4a9e-8b17-0d2c4e6f8a13"
GROUP_ID = f"/subscriptions/{SUB}/resourceGroups/rg-shop"
SA_ID = f"{GROUP_ID}/providers/Microsoft.Storage/storageAccounts/stshop01"
INHERIT = {
    "name": "ea3f2387-9b95-492a-a190-fcdc54f7b070",
    "properties": {
        "displayName": "Inherit a tag from the resource group if missing", "mode": "Indexed",
        "parameters": {"tagName": {"type": "String", "metadata": {"displayName": "Tag Name"}}},
        "policyRule": {
            "if": {"allOf": [{"field": "[concat('tags[', parameters('tagName'), ']')]", "exists": "false"},
                             {"value": "[resourceGroup().tags[parameters('tagName')]]", "notEquals": ""}]},
            "then": {"effect": "modify", "details": {
                "roleDefinitionIds": ["/providers/microsoft.authorization/roleDefinitions/"
                                      "b24988ac-6180-42a0-ab88-20f7382dd24c"],
                "operations": [{"operation": "add", "field": "[concat('tags[', parameters('tagName'), ']')]",
                                "value": "[resourceGroup().tags[parameters('tagName')]]"}]}}}}}
ACCOUNT = {"id": SA_ID, "name": "stshop01", "type": "Microsoft.Storage/storageAccounts", "location": "westeurope",
           "tags": {"owner": "shop-team"}, "properties": {"supportsHttpsTrafficOnly": True}}


def group(tags):
    return {"id": GROUP_ID, "name": "rg-shop", "type": "Microsoft.Resources/resourceGroups", "location": "westeurope",
            "tags": tags, "properties": {"provisioningState": "Succeeded"}}


def deps(*resources):
    outcome = convert_definition(INHERIT, resolver=alias_resolver(), values={"tagName": "costCenter"})
    control = control_from_document(outcome.control, "inherit.yaml", alias_resolver())
    assert control.uses_group
    return Dependencies(catalog=Catalog([control]), reader=StaticResourceReader(resources),
                        store=InMemoryStateStore(), sink=MemorySink())


def evaluate(d, event_id="e1"):
    rid = parse_resource_id(SA_ID)
    change = ResourceChange(event_id=event_id, event_type="Microsoft.Resources.ResourceWriteSuccess", kind="write",
                            resource=rid, subject=rid, event_time=datetime(2026, 5, 4, 10, tzinfo=timezone.utc))
    return handle_change(change, d)


def test_the_group_tag_the_resource_lacks_makes_it_noncompliant_with_one_group_read():
    d = deps(ACCOUNT, group({"costCenter": "cc-4711"}))
    outcome = evaluate(d)
    assert [r.status for r in outcome.results] == [Status.NONCOMPLIANT]
    # one read of the account, one of the group, shared by the rule and the ownership fallback (cached)
    assert d.reader.reads == 2
    evaluate(d, "e2")
    assert d.reader.reads == 3


def test_compliant_when_the_group_has_no_such_tag_or_the_resource_has_it():
    assert [r.status for r in evaluate(deps(ACCOUNT, group({}))).results] == [Status.COMPLIANT]
    tagged = dict(ACCOUNT, tags={"costCenter": "cc-1"})
    assert [r.status for r in evaluate(deps(tagged, group({"costCenter": "cc-4711"}))).results] == [Status.COMPLIANT]


def test_an_unreadable_group_is_not_evaluated_with_the_reason():
    outcome = evaluate(deps(ACCOUNT))
    assert [r.status for r in outcome.results] == [Status.NOT_EVALUATED]
    assert "rg-shop could not be read" in outcome.results[0].reason


def test_offline_without_the_group_the_rule_names_what_to_give():
    outcome = convert_definition(INHERIT, resolver=alias_resolver(), values={"tagName": "costCenter"})
    catalog = Catalog([control_from_document(outcome.control, "inherit.yaml", alias_resolver())])
    result = catalog.evaluate(ACCOUNT)[0]
    assert result.status == Status.NOT_EVALUATED and "$resourceGroup" in result.reason
    given = dict(ACCOUNT, **{"$resourceGroup": {"tags": {"costCenter": "cc-4711"}}})
    assert catalog.evaluate(given)[0].status == Status.NONCOMPLIANT


# ----------------------------------------------------------------------------- subscription(), the same way

FROM_SUBSCRIPTION = {
    "name": "40df99da-1232-49b1-a39a-6da8d878f469",
    "properties": {
        "displayName": "Inherit a tag from the subscription if missing", "mode": "Indexed",
        "parameters": {"tagName": {"type": "String", "metadata": {"displayName": "Tag Name"}}},
        "policyRule": {
            "if": {"allOf": [{"field": "[concat('tags[', parameters('tagName'), ']')]", "exists": "false"},
                             {"value": "[subscription().tags[parameters('tagName')]]", "notEquals": ""}]},
            "then": {"effect": "modify", "details": {
                "roleDefinitionIds": ["/providers/microsoft.authorization/roleDefinitions/"
                                      "b24988ac-6180-42a0-ab88-20f7382dd24c"],
                "operations": [{"operation": "add", "field": "[concat('tags[', parameters('tagName'), ']')]",
                                "value": "[subscription().tags[parameters('tagName')]]"}]}}}}}


def subscription_deps(*resources):
    outcome = convert_definition(FROM_SUBSCRIPTION, resolver=alias_resolver(), values={"tagName": "costCenter"})
    control = control_from_document(outcome.control, "inherit-sub.yaml", alias_resolver())
    assert control.uses_subscription and not control.uses_group
    return Dependencies(catalog=Catalog([control]), reader=StaticResourceReader(resources),
                        store=InMemoryStateStore(), sink=MemorySink())


def test_subscription_tags_are_read_when_a_rule_asks_for_them():
    subscription = {"id": f"/subscriptions/{SUB}", "name": SUB, "type": "Microsoft.Resources/subscriptions",
                    "tags": {"costCenter": "cc-1"}}
    assert [r.status for r in evaluate(subscription_deps(ACCOUNT, subscription)).results] == [Status.NONCOMPLIANT]
    subscription["tags"] = {}
    assert [r.status for r in evaluate(subscription_deps(ACCOUNT, subscription)).results] == [Status.COMPLIANT]
    gone = evaluate(subscription_deps(ACCOUNT))
    assert [r.status for r in gone.results] == [Status.NOT_EVALUATED]
    assert f"the subscription /subscriptions/{SUB} could not be read" in gone.results[0].reason


def test_the_subscription_is_read_from_arm_with_its_tags():
    from azure.mgmt.resource.resources import ResourceManagementClient

    from shared.adapters.arm import ArmResourceReader
    from tests.support.local_azure import LocalAzure

    with LocalAzure() as local:
        local.set_provider("Microsoft.Resources", {"resourceGroups": ["2024-03-01"],
                                                   "subscriptions": ["2022-12-01", "2016-06-01"]})
        local.put_resource({"id": f"/subscriptions/{SUB}", "name": SUB, "type": "Microsoft.Resources/subscriptions",
                            "tags": {"costCenter": "cc-1"}})
        client = ResourceManagementClient(local.credential(), SUB, base_url=local.url, connection_verify=local.ca_file)
        found = ArmResourceReader(lambda sub: client).get(parse_resource_id(f"/subscriptions/{SUB}"))
        assert found["tags"] == {"costCenter": "cc-1"}
        assert local.calls("arm", f"/subscriptions/{SUB}")[-1].query["api-version"] == "2022-12-01"
