"""The deployment agrees with the code: the Bicep templates are cross-checked against it.

* the findings table and the DCR stream declaration have exactly the finding record's
  columns (shared/domain/findings.py FINDING_COLUMNS, via the generated infra/finding-columns.json);
* every app setting the code reads is set by the template or listed here as optional with
  a reason, and every setting the template sets is read by the code or by the Functions host;
* the function the event subscriptions target is one the Function App indexes;
* the event subscriptions deliver exactly the event types the code understands;
* every column an alert or workbook query uses exists in its table, and every value it
  compares Severity / Transition / Status with is one the code emits;
* the code package (infra/package.py) holds the app and, unpacked alone, indexes the same functions.
"""
from __future__ import annotations

import json
import re
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from shared.config import DEFAULT_STREAM, DEFAULT_TABLE, Settings
from shared.catalog import SEVERITIES, Status
from shared.domain.drift import Transition
from shared.domain.events import (ARM_ACTION, ARM_DELETE, ARM_WRITE, ARN_DELETE, ARN_UPSERT, POLICY_STATE_CHANGED,
                           POLICY_STATE_CREATED, POLICY_STATE_DELETED, SUPPORTED_EVENT_TYPES)
from shared.domain.findings import FINDING_COLUMNS, SNAPSHOT_COLUMNS
from shared.domain.parity import PARITY_COLUMNS
from shared.domain.rejections import REJECTION_COLUMNS
from tests.test_bicep import (BICEP_FILES, INFRA, MAIN, PARAMS, REPO, bicep_parser, bicepparam_assignments, body,
                              functions_of_type, module, parsed, resources_of_type, variable, walk)

COLUMNS_FILE = INFRA / "finding-columns.json"
QUERIES = INFRA / "queries"
FINDINGS_TABLE = "ComplianceFindings_CL"
SNAPSHOT_TABLE = "ComplianceSnapshot_CL"


def dotted(expr: Any) -> str:
    """``a.b.c`` for pycep's nested property accessors (a bare identifier stays as is)."""
    if isinstance(expr, (str, int)):
        return str(expr)
    operator = expr["operator"]
    operands = operator["operands"]
    if operator["type"] == "index_accessor":
        return f"{dotted(operands['operand_1'])}[{dotted(operands['operand_2'])}]"
    assert operator["type"] == "property_accessor", expr
    return f"{dotted(operands['operand_1'])}.{dotted(operands['operand_2'])}"


def resolve(tree: dict, expr: Any) -> Any:
    """An identifier that names a variable of the file, replaced by the variable's value."""
    while isinstance(expr, str) and expr in tree.get("variables", {}):
        expr = variable(tree, expr)
    return expr


def expand(tree: dict, expr: Any, _seen: frozenset = frozenset()) -> Any:
    """``expr`` with every variable it names (at any depth) replaced by the variable's value."""
    if isinstance(expr, str):
        if expr in tree.get("variables", {}) and expr not in _seen:
            return expand(tree, variable(tree, expr), _seen | {expr})
        return expr
    if isinstance(expr, dict):
        return {key: expand(tree, value, _seen) for key, value in expr.items()}
    if isinstance(expr, list):
        return [expand(tree, value, _seen) for value in expr]
    return expr


def loaded_file(path: Path, tree: dict, expr: Any, kind: str) -> Path:
    """The file a ``loadJsonContent`` / ``loadTextContent`` expression (or a variable holding one) reads."""
    (function,) = functions_of_type(resolve(tree, expr), kind)
    return (path.parent / function["parameters"]["file_path"]).resolve()


# ----------------------------------------------------------------- the finding record: one column list

def test_generated_column_file_is_the_finding_record():
    columns = json.loads(COLUMNS_FILE.read_text(encoding="utf-8"))
    assert [(c["name"], c["type"]) for c in columns] == list(FINDING_COLUMNS.items()), \
        "infra/finding-columns.json is stale: run .venv/bin/python infra/generate.py"
    proc = subprocess.run([sys.executable, str(INFRA / "generate.py"), "--check"], capture_output=True, text=True,
                          cwd=REPO, timeout=60)
    assert proc.returncode == 0, proc.stderr


def test_column_types_are_valid_for_both_the_table_and_the_dcr_stream():
    dcr_types = {"string", "int", "long", "real", "boolean", "dynamic", "datetime"}
    table_types = {"string", "int", "long", "real", "boolean", "datetime", "guid", "dynamic"}  # case-insensitive
    assert set(FINDING_COLUMNS.values()) <= dcr_types & table_types
    assert FINDING_COLUMNS.get("TimeGenerated") == "datetime", "a custom table needs TimeGenerated"


def test_findings_table_columns_are_the_generated_list():
    path = INFRA / "modules" / "findings-table.bicep"
    tree = parsed(path)
    (table,) = resources_of_type(tree, "Microsoft.OperationalInsights/workspaces/tables")
    schema = body(table)["properties"]["schema"]
    assert loaded_file(path, tree, schema["columns"], "load_json_content") == COLUMNS_FILE
    assert schema["name"] == "tableName" and body(table)["name"] == "tableName"
    main = parsed(MAIN)
    assert variable(main, "findingsTableName") == FINDINGS_TABLE
    assert body(main["modules"]["findingsTable"])["params"]["tableName"] == "findingsTableName"


def test_dcr_stream_declares_the_finding_record_and_flows_to_the_table():
    path = INFRA / "modules" / "data-collection-rule.bicep"
    tree = parsed(path)
    (dcr,) = resources_of_type(tree, "Microsoft.Insights/dataCollectionRules")
    config = body(dcr)
    # kind Direct (the rule's own ingestion endpoint), but not with private ingestion through a DCE
    assert config["kind"]["operator"]["operands"] == {"condition": "privateIngestion", "true_value": None,
                                                      "false_value": "Direct"}
    props = config["properties"]
    assert list(props["streamDeclarations"]) == ["'${streamName}'", "'${snapshotStreamName}'", "'${parityStreamName}'",
                                                 "'${rejectionsStreamName}'"]
    stream_key = "'${streamName}'"
    assert loaded_file(path, tree, props["streamDeclarations"][stream_key]["columns"], "load_json_content") == COLUMNS_FILE
    flow, snapshot_flow, parity_flow, rejections_flow = props["dataFlows"]
    assert flow["streams"] == ["streamName"] and flow["transformKql"] == "source"
    assert flow["outputStream"] == "Custom-${tableName}"
    assert flow["destinations"] == [d["name"] for d in props["destinations"]["logAnalytics"]]
    assert snapshot_flow["streams"] == ["snapshotStreamName"]
    assert snapshot_flow["outputStream"] == "Custom-${snapshotTableName}"
    assert parity_flow["streams"] == ["parityStreamName"]
    assert parity_flow["outputStream"] == "Custom-${parityTableName}"
    assert rejections_flow["outputStream"] == "Custom-${rejectionsTableName}"
    assert tree["parameters"]["streamName"]["default"] == DEFAULT_STREAM
    main = parsed(MAIN)
    assert variable(main, "findingsStreamName") == DEFAULT_STREAM
    params = body(main["modules"]["dataCollectionRule"])["params"]
    assert params["streamName"] == "findingsStreamName"
    assert dotted(params["tableName"]) == "findingsTable.outputs.name"
    endpoint = tree["outputs"]["logsIngestionEndpoint"]["value"]["operator"]["operands"]  # the rule's, or the DCE's
    assert endpoint["condition"] == "privateIngestion"
    assert dotted(endpoint["false_value"]) == "dcr.properties.endpoints.logsIngestion"
    assert dotted(endpoint["true_value"]) == "endpoint.properties.logsIngestion.endpoint"
    assert dotted(tree["outputs"]["immutableId"]["value"]) == "dcr.properties.immutableId"


# ----------------------------------------------------------------- app settings

@pytest.fixture(scope="module")
def indexed_functions() -> dict[str, list[dict]]:
    """Function name -> bindings, as the Functions host indexes function_app (in a fresh process:
    ``app.get_functions()`` may be called only once per app object)."""
    code = ("import json, function_app; print(json.dumps({f.get_function_name(): "
            "[b.get_dict_repr() for b in f.get_bindings()] for f in function_app.app.get_functions()}, default=str))")
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=REPO, timeout=120)
    assert proc.returncode == 0, proc.stderr
    return json.loads(proc.stdout.strip().splitlines()[-1])


def binding_settings(indexed_functions: dict[str, list[dict]]) -> set[str]:
    """App settings the host resolves in trigger bindings (``%NAME%``)."""
    return set(re.findall(r"%(\w+)%", json.dumps(indexed_functions)))

class _RecordingEnv(dict):
    """An empty environment that remembers every name the code asks for."""

    def __init__(self) -> None:
        super().__init__()
        self.asked: list[str] = []

    def get(self, name, default=None):  # noqa: D401 - dict.get
        self.asked.append(name)
        return default


def settings_the_code_reads() -> set[str]:
    env = _RecordingEnv()
    Settings.from_env(env)
    return set(env.asked)


# Settings the code reads that the template leaves unset on purpose.
OPTIONAL_SETTINGS = {
    "STATE_STORAGE__connectionString": "a connection string carries the account key; the account disallows shared "
                                       "keys and the app uses STATE_STORAGE__tableServiceUri with its identity",
    "STATE_STORAGE": "older name of STATE_STORAGE__connectionString (Azurite, development): same reason",
    "STATE_STORAGE__clientId": "only for a user-assigned identity; the Function App uses its system-assigned one",
    "FINDINGS_JSONL_PATH": "only for FINDINGS_SINK=jsonl (local runs); the template sets FINDINGS_SINK=logsIngestion",
    "ARM_TOKEN_SCOPE": "only for sovereign clouds; the default is the public cloud's Resource Manager audience",
}
# Settings the template sets for the Functions host rather than for the code.
HOST_SETTINGS = {
    "AzureWebJobsStorage__accountName": "identity-based host storage",
    "EVENT_DELIVERY": "read by function_app.py: queue registers the queue trigger (tests/test_queue_delivery.py)",
    "EVENTS_QUEUE_NAME": "the queue trigger's %EVENTS_QUEUE_NAME% (indexed with EVENT_DELIVERY=queue)",
    "EVENTS_QUEUE__queueServiceUri": "the queue trigger's identity-based connection EVENTS_QUEUE",
    "APPLICATIONINSIGHTS_CONNECTION_STRING": "telemetry destination",
    "APPLICATIONINSIGHTS_AUTHENTICATION_STRING": "telemetry with the managed identity (local auth is off)",
    "AzureWebJobsStorage__credential": "the host storage connection uses a managed identity (user-assigned)",
    "AzureWebJobsStorage__clientId": "... the user-assigned one with this client id",
    "EVENTS_QUEUE__credential": "the queue trigger's connection uses a managed identity (user-assigned)",
    "EVENTS_QUEUE__clientId": "... the user-assigned one with this client id",
}


def template_app_settings(user_assigned: bool = True) -> dict[str, Any]:
    """The app settings the template sets: ``appSettings``, and with a user-assigned identity the settings
    that name it (``userAssignedIdentitySettings``, merged in by the loop)."""
    tree = module("function-app")
    (site,) = resources_of_type(tree, "Microsoft.Web/sites")
    loop = body(site)["properties"]["siteConfig"]["appSettings"]
    assert loop["loop_type"]["detail"]["item_name"] == "setting"
    assert loop["loop_type"]["detail"]["object_name"] == str(
        {"function": {"type": "union", "parameters": {"arg_1": "appSettings", "arg_2": "userAssignedIdentitySettings"}}})
    assert loop["config"] == {"name": dotted_expr("setting", "key"), "value": dotted_expr("setting", "value")}
    settings = dict(variable(tree, "appSettings"))
    identity = variable(tree, "userAssignedIdentitySettings")["operator"]["operands"]
    assert identity["condition"] == "useUserAssignedIdentity" and identity["false_value"] == {}
    return {**settings, **identity["true_value"]} if user_assigned else settings


def dotted_expr(a: str, b: str) -> dict:
    return {"operator": {"type": "property_accessor", "operands": {"operand_1": a, "operand_2": b}}}


def test_the_code_reads_settings_and_the_recorder_sees_them(indexed_functions):
    read = settings_the_code_reads()
    assert {"STATE_TABLE_NAME", "LOGS_INGESTION__endpoint", "LOGS_INGESTION__ruleId"} <= read, read
    assert binding_settings(indexed_functions), "no %SETTING% in any binding: is the timer's schedule no longer a setting?"


def test_every_setting_the_code_reads_is_set_by_the_template_or_documented_optional(indexed_functions):
    template = set(template_app_settings())
    read = settings_the_code_reads()
    missing = read - template - set(OPTIONAL_SETTINGS)
    assert not missing, f"settings the code reads that the template neither sets nor documents: {sorted(missing)}"
    assert set(OPTIONAL_SETTINGS) <= read, "OPTIONAL_SETTINGS names a setting the code no longer reads"
    assert not set(OPTIONAL_SETTINGS) & template
    # A binding setting the host cannot resolve keeps the function from starting: never optional.
    unresolved = binding_settings(indexed_functions) - template
    assert not unresolved, f"trigger bindings use settings the template does not set: {sorted(unresolved)}"


def test_every_setting_the_template_sets_is_read_by_the_code_or_the_host(indexed_functions):
    unknown = set(template_app_settings()) - settings_the_code_reads() - binding_settings(indexed_functions) \
        - set(HOST_SETTINGS)
    assert not unknown, f"the template sets settings nothing reads: {sorted(unknown)}"


def test_monitored_scopes_and_drain_schedule_are_values_the_code_accepts():
    from handlers.outbox import DEFAULT_SCHEDULE
    from shared.domain.scopes import Scopes

    main = parsed(MAIN)
    loop = variable(main, "monitoredSubscriptionScopes")
    assert loop["loop_type"]["detail"] == {"item_name": "subscriptionId", "array_name": "monitoredSubscriptionIds"}
    scope = loop["config"].replace("${subscriptionId}", "00000000-0000-0000-0000-000000000000")
    assert Scopes.parse([scope]).prefixes, scope  # management groups: tests/test_infra_scale.py
    assert body(main["modules"]["functionApp"])["params"]["monitoredScopes"] == "monitoredScopes"
    settings = template_app_settings()
    assert settings["MONITORED_SCOPES"]["function"]["type"] == "join"
    assert settings["OUTBOX_DRAIN_SCHEDULE"] == "outboxDrainSchedule"
    assert main["parameters"]["outboxDrainSchedule"]["default"] == DEFAULT_SCHEDULE
    assert module("function-app")["parameters"]["outboxDrainSchedule"]["default"] == DEFAULT_SCHEDULE


def test_template_settings_point_the_code_at_the_deployed_resources():
    settings = template_app_settings()
    assert settings["STATE_STORE"] == "table" and settings["FINDINGS_SINK"] == "logsIngestion"
    auth = settings["APPLICATIONINSIGHTS_AUTHENTICATION_STRING"]["operator"]["operands"]
    assert auth["false_value"] == "Authorization=AAD"
    assert auth["true_value"] == "Authorization=AAD;ClientId=${userAssignedIdentityClientId}"
    assert dotted(settings["AzureWebJobsStorage__accountName"]) == "storage.name"
    # The values the code gets are accepted by it.
    parsed_settings = Settings.from_env({"STATE_STORE": "table", "FINDINGS_SINK": "logsIngestion",
                                         "CONTROL_PARAMETERS": "{}", "DISABLED_CONTROLS": "",
                                         "LOGS_INGESTION__endpoint": "https://x", "LOGS_INGESTION__ruleId": "dcr-1"})
    parsed_settings.require("ingestion_endpoint", "ingestion_rule_id")
    # Each setting comes from the module parameter that main.bicep feeds from the right output.
    wiring = {
        "STATE_STORAGE__tableServiceUri": ("stateTableServiceUri", "storage.outputs.tableServiceUri"),
        "STATE_TABLE_NAME": ("stateTableName", "storage.outputs.stateTableName"),
        "LOGS_INGESTION__endpoint": ("logsIngestionEndpoint", "dataCollectionRule.outputs.logsIngestionEndpoint"),
        "LOGS_INGESTION__ruleId": ("dataCollectionRuleImmutableId", "dataCollectionRule.outputs.immutableId"),
        "LOGS_INGESTION__streamName": ("logsIngestionStreamName", "dataCollectionRule.outputs.streamName"),
        "APPLICATIONINSIGHTS_CONNECTION_STRING": ("appInsightsConnectionString", "appInsights.outputs.connectionString"),
    }
    main = parsed(MAIN)
    params = body(main["modules"]["functionApp"])["params"]
    for setting, (param, source) in wiring.items():
        assert settings[setting] == param, setting
        assert dotted(params[param]) == source, setting
    assert variable(main, "stateTableName") == DEFAULT_TABLE
    assert body(main["modules"]["storage"])["params"]["stateTableName"] == "stateTableName"
    tables = resources_of_type(module("storage"), "Microsoft.Storage/storageAccounts/tableServices/tables")
    assert sorted(body(t)["name"] for t in tables) == ["exemptionsTableName", "stateTableName"]
    assert settings["EXEMPTIONS_TABLE_NAME"] == "exemptionsTableName"
    assert dotted(params["exemptionsTableName"]) == "storage.outputs.exemptionsTableName"


def test_function_app_roles_cover_what_the_host_and_the_state_need():
    main = parsed(MAIN)
    owner, contributor, table = (variable(main, name) for name in (
        "storageBlobDataOwner", "storageBlobDataContributor", "storageTableDataContributor"))
    assert (owner, contributor, table) == ("b7e6dc6d-f1e8-4753-8033-0f276bb0955b",  # Storage Blob Data Owner
                                           "ba92f5b4-2d11-453d-a403-e96b0029c9fe",  # Storage Blob Data Contributor
                                           "0a9a7e1f-b9d0-4cc4-a60d-0319b160aaa3")  # Storage Table Data Contributor
    params = body(main["modules"]["storageRoles"])["params"]
    grants = {(dotted(g["containerName"]), g["roleDefinitionId"]) for g in params["containerRoles"]}
    assert grants == {("storage.outputs.hostContainerNames[0]", "storageBlobDataOwner"),
                      ("storage.outputs.hostContainerNames[1]", "storageBlobDataOwner"),
                      ("storage.outputs.deploymentContainerName", "storageBlobDataContributor")}, grants
    host_containers = module("storage")["parameters"]["hostContainerNames"]["default"]
    assert host_containers == ["azure-webjobs-hosts", "azure-webjobs-secrets"]
    tables = {(dotted(g["tableName"]), g["roleDefinitionId"]) for g in params["tableRoles"]}
    assert tables == {("storage.outputs.stateTableName", "storageTableDataContributor"),
                      ("storage.outputs.exemptionsTableName", "storageTableDataContributor")}, tables
    # nothing on the account itself (the dead-letter container, queues): every assignment is scoped below it
    roles = module("role-assignments-storage")
    scopes = {symbol: body(res)["scope"] for symbol, res in roles["resources"].items()
              if res["type"] == "Microsoft.Authorization/roleAssignments"}
    assert set(scopes) == {"containerAssignments", "tableAssignments", "queueAssignments"}
    assert {dotted(s["operator"]["operands"]["operand_1"]) for s in scopes.values()} == {"containers", "tables",
                                                                                        "queues"}
    assert variable(module("role-assignments-monitoring"), "monitoringMetricsPublisher")["function"]["parameters"][
        "resource_name_1"] == "3913510d-42f4-4e42-8a64-420c390055eb"
    reader = variable(module("monitored-subscription"), "readerRoleId")
    assert reader["function"]["parameters"]["resource_name_1"] == "acdd72a7-3385-48ef-bd42-f606fba81ae7"


# ----------------------------------------------------------------- the event wiring and the function

def test_the_event_subscriptions_target_a_function_the_app_indexes(indexed_functions):
    main = parsed(MAIN)
    name = variable(main, "eventFunctionName")
    assert [b["type"] for b in indexed_functions.get(name, [])] == ["eventGridTrigger"], \
        f"the templates deliver events to {name!r}; the app indexes {indexed_functions}"
    monitored = body(main["modules"]["monitored"])["params"]
    assert monitored["functionResourceId"] == "${functionApp.outputs.resourceId}/functions/${eventFunctionName}"
    assert body(main["modules"]["alerts"])["params"]["functionName"] == "eventFunctionName"
    wiring = module("monitored-subscription")
    assert body(wiring["modules"]["eventSubscriptions"])["params"]["functionResourceId"] == "functionResourceId"
    subs = module("event-subscriptions")
    destination = variable(subs, "destination")
    assert destination["endpointType"] == "AzureFunction"
    assert destination["properties"]["resourceId"] == "functionResourceId"
    for sub in resources_of_type(subs, "Microsoft.EventGrid/systemTopics/eventSubscriptions"):
        props = body(sub)["properties"]
        # the webhook by default; with queue delivery, the queue with the topic's identity instead
        assert props["destination"]["operator"]["operands"] == {"condition": "useQueue", "true_value": None,
                                                                 "false_value": "destination"}
        assert props["deliveryWithResourceIdentity"]["operator"]["operands"] == {
            "condition": "useQueue", "true_value": "queueDelivery", "false_value": None}


def test_the_event_subscriptions_deliver_exactly_the_event_types_the_code_understands():
    subs = module("event-subscriptions")
    delivered = {symbol: set(body(res)["properties"]["filter"]["includedEventTypes"])
                 for symbol, res in subs["resources"].items()
                 if res["type"] == "Microsoft.EventGrid/systemTopics/eventSubscriptions"}
    assert delivered == {"armToFunction": {ARM_WRITE, ARM_DELETE, ARM_ACTION}, "arnToFunction": {ARN_UPSERT, ARN_DELETE},
                         "policyToFunction": {POLICY_STATE_CREATED, POLICY_STATE_CHANGED, POLICY_STATE_DELETED}}
    assert set().union(*delivered.values()) == set(SUPPORTED_EVENT_TYPES)
    topics = {symbol: body(res)["properties"]["topicType"]
              for symbol, res in module("event-topics")["resources"].items()
              if res["type"] == "Microsoft.EventGrid/systemTopics" and not res["existing"]}
    assert topics == {"armTopic": "Microsoft.Resources.Subscriptions",
                      "arnTopic": "Microsoft.ResourceNotifications.Resources",
                      "policyTopic": "Microsoft.PolicyInsights.PolicyStates"}


def test_the_event_subscriptions_retry_and_dead_letter_with_the_topic_identity():
    subs = module("event-subscriptions")
    assert set(variable(subs, "retryPolicy")) == {"maxDeliveryAttempts", "eventTimeToLiveInMinutes"}
    dead_letter = variable(subs, "deadLetter")
    assert dead_letter["identity"] == "deliveryIdentity"
    assert variable(subs, "deliveryIdentity")["operator"]["operands"] == {
        "condition": {"function": {"type": "empty", "parameters": {"item_to_test": "topicIdentityResourceId"}}},
        "true_value": {"type": "SystemAssigned"},
        "false_value": {"type": "UserAssigned", "userAssignedIdentity": "topicIdentityResourceId"}}
    assert dead_letter["deadLetterDestination"]["endpointType"] == "StorageBlob"
    for sub in resources_of_type(subs, "Microsoft.EventGrid/systemTopics/eventSubscriptions"):
        props = body(sub)["properties"]
        assert props["retryPolicy"] == "retryPolicy" and props["deadLetterWithResourceIdentity"] == "deadLetter"
    topics = module("event-topics")
    for topic in resources_of_type(topics, "Microsoft.EventGrid/systemTopics"):
        assert body(topic)["identity"] == "topicIdentity"
    assert variable(topics, "topicIdentity")["operator"]["operands"]["true_value"] == {"type": "SystemAssigned"}
    role = variable(module("role-assignments-dead-letter"), "blobDataContributor")
    assert role["function"]["parameters"]["resource_name_1"] == "ba92f5b4-2d11-453d-a403-e96b0029c9fe"
    wiring = module("monitored-subscription")
    assert dotted(body(wiring["modules"]["deadLetterRole"])["params"]["principalIds"]) == "topics.outputs.principalIds"
    assert wiring["modules"]["eventSubscriptions"]["config"]["condition"] == "deployEventSubscriptions"


def test_noise_filters_stay_within_event_grid_limits():
    """Event Grid allows 25 filter values in all per event subscription, 512 characters each."""
    main = parsed(MAIN)["parameters"]
    _, overrides = bicepparam_assignments(PARAMS.read_text(encoding="utf-8"))
    values = {}
    for name in ("ignoredOperationNamePrefixes", "ignoredOperationNameSuffixes"):
        values[name] = main[name]["default"]
        if name in overrides:
            text = f"param {name} array = {overrides[name]}"
            values[name] = bicep_parser().parse(text=text)["parameters"][name]["default"]
    total = sum(len(v) for v in values.values())
    assert 0 < total <= 25 and all(len(v) <= 512 for vs in values.values() for v in vs), values
    assert "Microsoft.Resources/deployments/" in values["ignoredOperationNamePrefixes"]
    # Only read-only actions are dropped: never a write or a delete.
    assert all(s.endswith("/action") and ("/list" in s.lower() or "publishxml" in s.lower())
               for s in values["ignoredOperationNameSuffixes"]), values["ignoredOperationNameSuffixes"]
    filters = variable(module("event-subscriptions"), "noiseFilters")
    assert {f["key"] for f in walk(filters) if "operatorType" in f} == {"data.operationName"}


# ----------------------------------------------------------------- queries: alerts and workbook

KQL_WORDS = {
    "where", "project", "summarize", "by", "extend", "order", "sort", "asc", "desc", "top", "take", "limit",
    "and", "or", "not", "in", "true", "false", "render", "let", "distinct", "count", "union", "join", "kind",
    "leftanti", "on", "has",
}
# Columns of Application Insights' requests table (the pipeline-health alerts).
APP_INSIGHTS_REQUESTS = {
    "timestamp", "id", "name", "url", "success", "resultCode", "duration", "performanceBucket", "itemType",
    "customDimensions", "customMeasurements", "operation_Name", "operation_Id", "operation_ParentId",
    "cloud_RoleName", "cloud_RoleInstance", "appId", "appName", "itemCount", "source",
}
# Columns of Application Insights' traces table (log lines: the permanent-rejection alert).
APP_INSIGHTS_TRACES = {
    "timestamp", "message", "severityLevel", "itemType", "customDimensions", "operation_Name", "operation_Id",
    "cloud_RoleName", "cloud_RoleInstance", "appId", "appName", "itemCount",
}
TABLE_COLUMNS = {FINDINGS_TABLE: set(FINDING_COLUMNS), SNAPSHOT_TABLE: set(SNAPSHOT_COLUMNS),
                 "ComplianceParity_CL": set(PARITY_COLUMNS), "ComplianceRejections_CL": set(REJECTION_COLUMNS),
                 "requests": APP_INSIGHTS_REQUESTS, "traces": APP_INSIGHTS_TRACES}
QUERY_FILES = sorted(QUERIES.glob("*.kql"))
PLACEHOLDER = re.compile(r"@[A-Z_]+@")
STRING_LITERAL = re.compile(r'"(?:[^"\\]|\\.)*"|\'(?:[^\'\\]|\\.)*\'')


def kql_columns(query: str) -> tuple[tuple[str, ...], set[str]]:
    """The source tables of a query (one, or those of a leading ``union``) and the names it uses that it does
    not define itself."""
    text = re.sub(r"//[^\n]*", "", query)
    text = STRING_LITERAL.sub('""', text)
    union = re.match(r"\s*union\s+((?:[A-Za-z_]\w*\s*,\s*)+[A-Za-z_]\w*)", text)
    tables = tuple(t.strip() for t in union.group(1).split(",")) if union else \
        (re.match(r"\s*([A-Za-z_]\w*)", text).group(1),)
    defined = set(re.findall(r"([A-Za-z_]\w*)\s*=(?!=)", text))
    used = {m.group(1) for m in re.finditer(r"(?<![\w.@$])([A-Za-z_]\w*)", text)
            if not re.match(r"\s*\(", text[m.end():])}  # a function call is not a column
    return tables, used - defined - KQL_WORDS - set(tables)


def loaded_texts() -> dict[Path, list[tuple[Path, dict]]]:
    """Query file -> (template, loadTextContent call) for every loadTextContent in the templates."""
    found: dict[Path, list] = {}
    for path in BICEP_FILES:
        for call in functions_of_type(parsed(path), "load_text_content"):
            found.setdefault((path.parent / call["parameters"]["file_path"]).resolve(), []).append((path, call))
    return found


def replacements() -> dict[Path, dict[str, set]]:
    """Query file -> placeholder -> the values the templates replace it with."""
    found: dict[Path, dict[str, set]] = {}
    for path in BICEP_FILES:
        tree = parsed(path)
        for call in functions_of_type(tree, "replace"):
            original = expand(tree, call["parameters"]["original_string"])
            for load in functions_of_type(original, "load_text_content"):
                target = (path.parent / load["parameters"]["file_path"]).resolve()
                found.setdefault(target, {}).setdefault(call["parameters"]["old_string"], set()).add(
                    dotted(call["parameters"]["new_string"]))
    return found


def test_every_query_file_exists_and_is_used():
    loaded = set(loaded_texts())
    assert loaded, "no query is loaded from infra/queries"
    assert all(p.exists() for p in loaded), sorted(str(p) for p in loaded if not p.exists())
    assert {p.resolve() for p in QUERY_FILES} == loaded, "infra/queries/*.kql and the templates' loadTextContent differ"


def test_every_alert_and_workbook_query_comes_from_a_query_file():
    for path in BICEP_FILES:
        tree = parsed(path)
        for symbol, res in tree.get("resources", {}).items():
            if res["type"] == "Microsoft.Insights/scheduledQueryRules":
                for criterion in body(res)["properties"]["criteria"]["allOf"]:
                    assert functions_of_type(expand(tree, criterion["query"]), "load_text_content"), \
                        f"{path.name}:{symbol} has an inline query"
    workbook = module("workbook")
    items = [i for i in variable(workbook, "workbookContent")["items"] if i["type"] == 3]
    assert len(items) >= 6
    for item in items:
        assert functions_of_type(item["content"]["query"], "load_text_content"), item["name"]


@pytest.mark.parametrize("path", QUERY_FILES, ids=lambda p: p.name)
def test_every_column_a_query_uses_exists(path):
    tables, used = kql_columns(path.read_text(encoding="utf-8"))
    for table in tables:
        assert table in TABLE_COLUMNS, f"{path.name} reads {table}, not a table the monitor knows"
    unknown = used - set().union(*(TABLE_COLUMNS[table] for table in tables))  # union: the columns of all
    assert not unknown, f"{path.name} uses {sorted(unknown)}: not columns of {tables} (nor KQL words this test knows)"


@pytest.mark.parametrize("path", QUERY_FILES, ids=lambda p: p.name)
def test_query_compares_with_values_the_code_emits(path):
    allowed = {"Severity": set(SEVERITIES), "Transition": {t.value for t in Transition},
               "Status": {s.value for s in Status}, "PreviousStatus": {s.value for s in Status} | {""}}
    text = re.sub(r"//[^\n]*", "", path.read_text(encoding="utf-8"))
    for column, _, operand in re.findall(r"\b(Severity|Transition|Status|PreviousStatus)\s*(==|!=|in)\s*"
                                         r"(\([^)]*\)|\"[^\"]*\")", text):
        for literal in re.findall(r'"([^"]*)"', operand):
            if PLACEHOLDER.fullmatch(literal):
                continue
            assert literal in allowed[column], f"{path.name}: {column} is never {literal!r}"


def test_query_placeholders_are_filled_by_the_templates_with_valid_values():
    filled = replacements()
    for path in QUERY_FILES:
        text = re.sub(r"//[^\n]*", "", path.read_text(encoding="utf-8"))
        assert not PLACEHOLDER.search(STRING_LITERAL.sub('""', text)), f"{path.name}: a placeholder outside a string"
        for placeholder in set(PLACEHOLDER.findall(text)):
            assert placeholder in filled.get(path.resolve(), {}), f"{path.name}: {placeholder} is never replaced"
    alerts = module("alerts")
    severities = {level["severity"] for level in variable(alerts, "driftLevels")}
    assert severities == {"Critical", "High"} and severities <= set(SEVERITIES)
    assert filled[(QUERIES / "alert-new-or-drifted.kql").resolve()]["@SEVERITY@"] == {"level.severity"}
    assert filled[(QUERIES / "pipeline-no-events.kql").resolve()]["@FUNCTION_NAME@"] == {"functionName"}


def test_alert_dimensions_are_columns_the_query_projects():
    alerts = module("alerts")
    rules = {"driftAlerts": "alert-new-or-drifted.kql", "functionFailures": "pipeline-function-failures.kql"}
    for symbol, query_file in rules.items():
        query = (QUERIES / query_file).read_text(encoding="utf-8")
        (table,), _ = kql_columns(query)
        projected = {c.strip() for c in re.findall(r"^\|\s*project\s+([^\n|]+)", query, re.M)[-1].split(",")}
        (criterion,) = body(alerts["resources"][symbol])["properties"]["criteria"]["allOf"]
        assert criterion["dimensions"], symbol
        for dimension in criterion["dimensions"]:
            assert dimension["name"] in TABLE_COLUMNS[table] and dimension["name"] in projected, (symbol, dimension)


# ----------------------------------------------------------------- the code package

def test_the_code_package_holds_the_app_and_nothing_else(tmp_path, indexed_functions):
    """infra/package.py builds what docs/DEPLOY.md publishes; unpacked alone, it indexes the same functions."""
    import zipfile

    out = tmp_path / "app.zip"
    proc = subprocess.run([sys.executable, str(INFRA / "package.py"), "--out", str(out)], capture_output=True,
                          text=True, cwd=REPO, timeout=60)
    assert proc.returncode == 0, proc.stderr
    names = zipfile.ZipFile(out).namelist()
    tops = {name.split("/")[0] for name in names}
    assert tops == {"function_app.py", "host.json", "requirements.txt", "handlers", "shared"}, tops
    assert not [n for n in names if "__pycache__" in n or n.endswith(".pyc")]
    assert any(n.startswith("shared/controls/") and n.endswith(".yaml") for n in names)
    assert not [n for n in names if n.startswith(("shared/cli/", "shared/demo/", "shared/devtools/"))
                or n == "shared/__main__.py"]  # lean: what only the command line uses stays out
    unpacked = tmp_path / "app"
    zipfile.ZipFile(out).extractall(unpacked)
    code = ("import json, sys, function_app, shared; "
            "assert function_app.__file__.startswith(sys.argv[1]) and shared.__file__.startswith(sys.argv[1]); "
            "print(json.dumps(sorted(f.get_function_name() for f in function_app.app.get_functions())))")
    proc = subprocess.run([sys.executable, "-c", code, str(unpacked)], capture_output=True, text=True,
                          cwd=unpacked, timeout=120)
    assert proc.returncode == 0, proc.stderr
    assert json.loads(proc.stdout.strip().splitlines()[-1]) == sorted(indexed_functions)


@pytest.mark.parametrize("kind, table_name", [("snapshot", "ComplianceSnapshot_CL"), ("parity", "ComplianceParity_CL"),
                                              ("rejections", "ComplianceRejections_CL")])
def test_snapshot_and_parity_tables_and_streams_are_their_records(kind, table_name):
    """ComplianceSnapshot_CL (SNAPSHOT_COLUMNS) and ComplianceParity_CL (shared/domain/parity.py
    PARITY_COLUMNS): the generated columns in the table, the DCR stream and the app setting naming it."""
    from shared.domain.findings import SNAPSHOT_COLUMNS

    expected = {"snapshot": SNAPSHOT_COLUMNS, "parity": PARITY_COLUMNS, "rejections": REJECTION_COLUMNS}[kind]
    columns_file = INFRA / f"{kind}-columns.json"
    columns = json.loads(columns_file.read_text(encoding="utf-8"))
    assert [(c["name"], c["type"]) for c in columns] == list(expected.items())
    path = INFRA / "modules" / f"{kind}-table.bicep"
    tree = parsed(path)
    (table,) = resources_of_type(tree, "Microsoft.OperationalInsights/workspaces/tables")
    assert loaded_file(path, tree, body(table)["properties"]["schema"]["columns"], "load_json_content") == columns_file
    dcr_path = INFRA / "modules" / "data-collection-rule.bicep"
    assert loaded_file(dcr_path, parsed(dcr_path), f"{kind}Columns", "load_json_content") == columns_file
    setting = {"rejections": "rejection"}.get(kind, kind)
    assert template_app_settings()[f"LOGS_INGESTION__{setting}StreamName"] == \
        f"logsIngestion{setting.capitalize()}StreamName"
    main = parsed(MAIN)
    assert body(main["modules"][f"{kind}Table"])["params"]["tableName"] == table_name
    assert dotted(body(main["modules"]["dataCollectionRule"])["params"][f"{kind}TableName"]) == f"{kind}Table.outputs.name"
    if kind == "parity":
        assert template_app_settings()["PARITY_SCHEDULE"] == "paritySchedule"
