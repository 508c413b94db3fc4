"""The Bicep templates parse, pass checkov, and keep the house habits (no Bicep CLI here).

Every ``.bicep`` file is parsed with pycep-parser (the parser checkov uses). pycep
has no grammar for ``.bicepparam`` files, so ``main.bicepparam`` is checked another
way: its ``using`` target must be ``main.bicep``, every ``param x = value`` must name
a parameter main.bicep declares, every required parameter must be set, and each value
is parsed by pycep as the default of a parameter of the declared type (so its syntax
and its JSON type are checked). The cross-checks against the code are in test_infra.py.
"""
from __future__ import annotations

import functools
import json
import os
import re
import subprocess
import sys
from pathlib import Path
from typing import Any, Iterator

import pytest
import yaml
from pycep import BicepParser

REPO = Path(__file__).resolve().parents[1]
INFRA = REPO / "infra"
MAIN = INFRA / "main.bicep"
# What is deployed directly: the monitor (one subscription for many), the management-group deployment, and
# one monitored subscription's part of it (docs/DEPLOY.md).
ENTRY_POINTS = ("main.bicep", "management-group.bicep", "subscription.bicep")
PARAMS = INFRA / "main.bicepparam"
CHECKOV_CONFIG = REPO / ".checkov.yaml"

BICEP_FILES = sorted(INFRA.rglob("*.bicep"))


# ----------------------------------------------------------------- helpers (test_infra.py uses them too)

@functools.lru_cache(maxsize=None)
def bicep_parser() -> BicepParser:
    return BicepParser()


@functools.lru_cache(maxsize=None)
def parsed(path: Path) -> dict:
    """pycep's structure of one .bicep file (raises on bad syntax)."""
    return bicep_parser().parse(text=Path(path).read_text(encoding="utf-8"))


def module(name: str) -> dict:
    return parsed(INFRA / "modules" / f"{name}.bicep")


def resources_of_type(tree: dict, resource_type: str) -> list[dict]:
    """The resources of one type a file deploys (`existing` references deploy nothing and are left out)."""
    return [r for r in tree.get("resources", {}).values() if r["type"] == resource_type and not r["existing"]]


def body(resource_or_module: dict) -> dict:
    """The object of a resource or module, through a condition or a loop."""
    config = resource_or_module["config"]
    while isinstance(config, dict) and "config" in config and ("condition" in config or "loop_type" in config):
        config = config["config"]
    return config


def walk(node: Any) -> Iterator[dict]:
    """Every dict in a parsed tree, depth first."""
    if isinstance(node, dict):
        yield node
        for value in node.values():
            yield from walk(value)
    elif isinstance(node, list):
        for value in node:
            yield from walk(value)


def functions_of_type(node: Any, kind: str) -> list[dict]:
    return [d["function"] for d in walk(node) if isinstance(d.get("function"), dict) and d["function"].get("type") == kind]


def variable(tree: dict, name: str) -> Any:
    return tree["variables"][name]["value"]


# ----------------------------------------------------------------- parsing

def test_the_templates_are_where_the_docs_say():
    names = {p.relative_to(INFRA).as_posix() for p in BICEP_FILES}
    assert "main.bicep" in names and PARAMS.exists()
    assert set(ENTRY_POINTS) <= names
    assert all(n in ENTRY_POINTS or n.startswith("modules/") for n in names), names
    assert not (INFRA / "dcr.json").exists() and not (INFRA / "findings-table.json").exists(), \
        "the hand-written DCR and table JSON are replaced by the Bicep"


@pytest.mark.parametrize("path", BICEP_FILES, ids=lambda p: p.relative_to(INFRA).as_posix())
def test_every_bicep_file_parses(path):
    tree = parsed(path)
    assert tree.get("resources") or tree.get("modules"), f"{path.name}: nothing deployed"


def test_main_targets_the_subscription_and_every_module_exists():
    main = parsed(MAIN)
    assert main["globals"]["scope"]["value"] == "subscription"
    referenced = set()
    for path in BICEP_FILES:
        for mod in parsed(path).get("modules", {}).values():
            target = (path.parent / mod["detail"]["path"]).resolve()
            assert target.exists(), f"{path.name} references a missing module {mod['detail']['path']}"
            referenced.add(target)
    orphans = {p.resolve() for p in BICEP_FILES} - referenced - {(INFRA / n).resolve() for n in ENTRY_POINTS}
    assert not orphans, f"modules nothing deploys: {sorted(p.name for p in orphans)}"


def bicepparam_assignments(text: str) -> tuple[list[str], dict[str, str]]:
    """``using`` targets and ``param name = <value text>`` of a .bicepparam file."""
    lines = text.splitlines()
    usings = [m.group(1) for line in lines if (m := re.match(r"\s*using\s+'([^']+)'\s*$", line))]
    starts = [(i, m.group(1)) for i, line in enumerate(lines) if (m := re.match(r"param\s+(\w+)\s*=", line))]
    assignments: dict[str, str] = {}
    for n, (i, name) in enumerate(starts):
        end = starts[n + 1][0] if n + 1 < len(starts) else len(lines)
        chunk = "\n".join(lines[i:end])
        assert name not in assignments, f"main.bicepparam sets {name} twice"
        assignments[name] = re.sub(r"^param\s+\w+\s*=\s*", "", chunk, count=1)
    return usings, assignments


def test_bicepparam_uses_main_and_sets_declared_parameters_of_the_right_type():
    usings, assignments = bicepparam_assignments(PARAMS.read_text(encoding="utf-8"))
    assert len(usings) == 1 and (PARAMS.parent / usings[0]).resolve() == MAIN.resolve(), usings
    declared = parsed(MAIN)["parameters"]
    unknown = set(assignments) - set(declared)
    assert not unknown, f"main.bicepparam sets parameters main.bicep does not declare: {sorted(unknown)}"
    required = {name for name, p in declared.items() if p["default"] is None}
    assert required <= set(assignments), f"required parameters not set: {sorted(required - set(assignments))}"
    # Each value, parsed as the default of a parameter of the declared type.
    typed = "\n\n".join(f"param {name} {declared[name]['type']} = {value.strip()}" for name, value in assignments.items())
    values = bicep_parser().parse(text=typed)["parameters"]
    python_types = {"string": str, "int": int, "bool": bool, "array": list, "object": dict}
    for name, param in values.items():
        expected = python_types[declared[name]["type"]]
        assert isinstance(param["default"], expected), f"main.bicepparam: {name} is not a {declared[name]['type']}"
    assert values["deployEventSubscriptions"]["default"] is False, \
        "step 1 is the default: the event subscriptions need the published function (docs/DEPLOY.md)"


# ----------------------------------------------------------------- checkov

@pytest.fixture(scope="session")
def checkov_report() -> dict:
    """One checkov run over infra/ for the session (a few seconds), offline."""
    env = {**os.environ, "BC_SKIP_MAPPING": "TRUE", "LOG_LEVEL": "WARNING"}
    env.pop("BC_API_KEY", None)
    proc = subprocess.run(
        [sys.executable, "-m", "checkov.main", "--config-file", str(CHECKOV_CONFIG), "-d", str(INFRA),
         "--framework", "bicep", "--skip-download", "-o", "json", "--quiet", "--compact"],
        capture_output=True, text=True, cwd=REPO, env=env, timeout=300)
    assert proc.stdout.strip(), f"checkov printed nothing (exit {proc.returncode}): {proc.stderr[-2000:]}"
    report = json.loads(proc.stdout)
    if isinstance(report, list):  # one report per framework
        (report,) = [r for r in report if r.get("check_type") == "bicep"]
    return report


def test_checkov_parses_every_template_and_finds_nothing(checkov_report):
    summary = checkov_report["summary"]
    failed = [f"{c['check_id']} {c['check_name']} ({c['file_path']} {c['resource']})"
              for c in checkov_report.get("results", {}).get("failed_checks", [])]
    assert summary["parsing_errors"] == 0, f"checkov could not parse: {summary}"
    assert summary["failed"] == 0 and not failed, "\n".join(failed)
    assert summary["passed"] > 0 and summary["resource_count"] > 0, summary


def test_every_skipped_checkov_check_has_a_written_reason():
    text = CHECKOV_CONFIG.read_text(encoding="utf-8")
    skipped = yaml.safe_load(text).get("skip-check", [])
    reasons = dict(re.findall(r"^\s*-\s*(CKV\w+)\s*#\s*(.+)$", text, flags=re.M))
    for check in skipped:
        assert len(reasons.get(check, "").strip()) >= 40, f".checkov.yaml skips {check} without a written reason"


# ----------------------------------------------------------------- house habits (Azure Verified Modules)

@pytest.mark.parametrize("path", BICEP_FILES, ids=lambda p: p.relative_to(INFRA).as_posix())
def test_every_parameter_is_described_as_required_or_optional(path):
    for name, param in parsed(path).get("parameters", {}).items():
        descriptions = [d["argument"] for d in param["decorators"] if d["type"] == "description"]
        assert descriptions, f"{path.name}: parameter {name} has no @description"
        kind = "Required." if param["default"] is None else "Optional."
        assert descriptions[0].startswith(kind), f"{path.name}: {name}'s description must start with {kind!r}"


@pytest.mark.parametrize("path", BICEP_FILES, ids=lambda p: p.relative_to(INFRA).as_posix())
def test_every_template_outputs_name_and_resource_id(path):
    outputs = parsed(path).get("outputs", {})
    assert {"name", "resourceId"} <= set(outputs), f"{path.name} outputs {sorted(outputs)}"
    assert all(any(d["type"] == "description" for d in o["decorators"]) for o in outputs.values()), path.name


def test_role_assignment_names_come_from_scope_principal_and_role():
    """guid(scope id, principal id, role definition id): stable across runs, unique per grant."""
    found = 0
    for path in BICEP_FILES:
        for symbol, res in parsed(path).get("resources", {}).items():
            if res["type"] != "Microsoft.Authorization/roleAssignments":
                continue
            found += 1
            where = f"{path.name}:{symbol}"
            config = body(res)
            name = config["name"]["function"]
            assert name["type"] == "guid", f"{where}: the name is not guid(...)"
            scope_arg, principal_arg, role_arg = name["parameters"].values()
            if "scope" in config:
                assert scope_arg == {"operator": {"type": "property_accessor",
                                                  "operands": {"operand_1": config["scope"], "operand_2": "id"}}}, where
            else:  # a deployment assigns at its own scope: subscription(), managementGroup(), resourceGroup()
                target = parsed(path).get("globals", {}).get("scope", {}).get("value", "resourceGroup")
                call = scope_arg["operator"]["operands"]["operand_1"] if "operator" in scope_arg else scope_arg
                kind = call["function"]["type"].lower().replace("_", "")
                assert kind == target.lower(), f"{where}: assigned at {kind}, the file deploys at {target}"
            assert principal_arg == config["properties"]["principalId"] and "principalid" in json.dumps(
                principal_arg).lower(), where
            assert role_arg == config["properties"]["roleDefinitionId"], where
            assert config["properties"]["principalType"] in ("ServicePrincipal", "principalType"), where
    assert found >= 5


def test_resource_names_derive_from_a_unique_string_token():
    main = parsed(MAIN)
    token = variable(main, "resourceToken")
    assert "unique_string" in json.dumps(token)
    names = variable(main, "names")
    assert all("${resourceToken}" in value for value in names.values()), names


def test_storage_allows_identity_based_access_only():
    (storage,) = resources_of_type(module("storage"), "Microsoft.Storage/storageAccounts")
    props = body(storage)["properties"]
    assert props["allowSharedKeyAccess"] is False
    assert props["minimumTlsVersion"] == "TLS1_2"
    assert props["allowBlobPublicAccess"] is False
    assert props["supportsHttpsTrafficOnly"] is True
    containers = resources_of_type(module("storage"), "Microsoft.Storage/storageAccounts/blobServices/containers")
    # code package, dead letters, and (one loop) the Functions host's containers
    assert all(body(c)["properties"]["publicAccess"] == "None" for c in containers) and len(containers) == 3


def test_function_app_runs_on_flex_consumption_with_a_managed_identity():
    fa = module("function-app")
    (plan,) = resources_of_type(fa, "Microsoft.Web/serverfarms")
    assert body(plan)["sku"] == {"name": "FC1", "tier": "FlexConsumption"}
    (site,) = resources_of_type(fa, "Microsoft.Web/sites")
    site = body(site)
    # System-assigned by default; the user-assigned identity when one is given (its roles outlive the app).
    assert site["identity"]["type"]["operator"]["operands"] == {
        "condition": "useUserAssignedIdentity", "true_value": "UserAssigned", "false_value": "SystemAssigned"}
    assert site["identity"]["userAssignedIdentities"]["operator"]["operands"]["true_value"] == {
        "'${userAssignedIdentityResourceId}'": {}}
    assert variable(fa, "useUserAssignedIdentity") == {"operator": {"type": "not", "operands": {
        "bool_value": {"function": {"type": "empty", "parameters": {"item_to_test": "userAssignedIdentityResourceId"}}}}}}
    config = site["properties"]["functionAppConfig"]
    assert config["runtime"]["name"] == "python"
    assert fa["parameters"]["pythonVersion"]["default"] == "3.11"
    authentication = config["deployment"]["storage"]["authentication"]["operator"]["operands"]
    assert authentication["false_value"] == {"type": "SystemAssignedIdentity"}
    assert authentication["true_value"] == {"type": "UserAssignedIdentity",
                                            "userAssignedIdentityResourceId": "userAssignedIdentityResourceId"}
    assert site["properties"]["httpsOnly"] is True


# ----------------------------------------------------------------- the security baseline

def diagnostic_settings(tree: dict) -> dict[str, dict]:
    """Diagnostic setting symbol -> {scope, categories, metrics, workspace} of one template."""
    found = {}
    for symbol, res in tree.get("resources", {}).items():
        if res["type"] != "Microsoft.Insights/diagnosticSettings":
            continue
        config = body(res)
        props = config["properties"]
        found[symbol] = {"scope": config["scope"], "workspace": props["workspaceId"],
                         "logs": {log["category"] for log in props.get("logs", [])} if isinstance(
                             props.get("logs"), list) else props.get("logs"),
                         "metrics": {m["category"] for m in props.get("metrics", [])},
                         "condition": res["config"].get("condition")}
    return found


def test_the_monitor_sends_its_own_logs_to_the_workspace():
    """Storage (blob and table reads/writes/deletes, transactions), the Function App (FunctionAppLogs), the
    data collection rule (LogErrors) and each system topic (DeliveryFailures) have a diagnostic setting."""
    tree = module("diagnostic-settings")
    settings = diagnostic_settings(tree)
    scopes = {s["scope"]: s for s in settings.values()}
    storage_logs = {log["category"] for log in variable(tree, "storageLogs")}
    assert storage_logs == {"StorageRead", "StorageWrite", "StorageDelete"}
    assert scopes["blobService"]["logs"] == scopes["tableService"]["logs"] == "storageLogs"
    assert scopes["storage"]["metrics"] == {"Transaction"}
    assert scopes["site"]["logs"] == {"FunctionAppLogs"}
    assert scopes["dataCollectionRule"]["logs"] == {"LogErrors"}
    assert all(s["workspace"] == "workspaceResourceId" for s in settings.values())
    targets = {res["type"] for symbol, res in tree["resources"].items() if symbol in scopes}
    assert targets == {"Microsoft.Storage/storageAccounts", "Microsoft.Storage/storageAccounts/blobServices",
                       "Microsoft.Storage/storageAccounts/tableServices", "Microsoft.Web/sites",
                       "Microsoft.Insights/dataCollectionRules"}

    topics = module("event-topics")
    topic_settings = diagnostic_settings(topics)
    assert {s["scope"] for s in topic_settings.values()} == {"armTopic", "arnTopic", "policyTopic"}
    assert {log["category"] for log in variable(topics, "deliveryFailureLogs")} == {"DeliveryFailures"}
    assert all(s["workspace"] == "diagnosticsWorkspaceResourceId" for s in topic_settings.values())

    main = parsed(MAIN)
    params = body(main["modules"]["diagnostics"])["params"]
    assert params["workspaceResourceId"] == "workspaceResourceId"
    assert main["parameters"]["deployDiagnosticSettings"]["default"] is True
    monitored = body(main["modules"]["monitored"])["params"]
    assert "diagnosticsWorkspaceResourceId" in monitored
    inner = body(module("monitored-subscription")["modules"]["topics"])["params"]
    assert inner["diagnosticsWorkspaceResourceId"] == "diagnosticsWorkspaceResourceId"


def test_basic_auth_publishing_is_off_on_ftp_and_scm():
    policies = resources_of_type(module("function-app"), "Microsoft.Web/sites/basicPublishingCredentialsPolicies")
    assert {body(p)["name"]: body(p)["properties"]["allow"] for p in policies} == {"ftp": False, "scm": False}


def test_workspace_and_app_insights_accept_entra_id_only():
    (workspace,) = resources_of_type(module("log-analytics"), "Microsoft.OperationalInsights/workspaces")
    assert body(workspace)["properties"]["features"]["disableLocalAuth"] is True
    (component,) = resources_of_type(module("app-insights"), "Microsoft.Insights/components")
    assert body(component)["properties"]["DisableLocalAuth"] is True


def bounds(param: dict) -> tuple[int, int]:
    decorators = {d["type"]: d["argument"] for d in param["decorators"]}
    return int(decorators["min_value"]), int(decorators["max_value"])


def test_total_retention_is_never_shorter_than_interactive_and_within_the_service_limit():
    """Total = interactive + long-term, by construction; the bounds keep it within 4..4383 days."""
    main = parsed(MAIN)
    interactive = bounds(main["parameters"]["findingsRetentionInDays"])
    long_term = bounds(main["parameters"]["findingsLongTermRetentionInDays"])
    assert long_term[0] == 0 and interactive[0] >= 4
    assert interactive[1] + long_term[1] <= 4383, (interactive, long_term)
    total = variable(main, "findingsTotalRetentionInDays")
    assert total == {"operator": {"type": "add", "operands": {
        "operand_1": "findingsRetentionInDays", "operand_2": "findingsLongTermRetentionInDays"}}}, total
    for table in ("findingsTable", "snapshotTable"):
        params = body(main["modules"][table])["params"]
        assert (params["retentionInDays"], params["totalRetentionInDays"]) == (
            "findingsRetentionInDays", "findingsTotalRetentionInDays"), table
    for name in ("findings-table", "snapshot-table"):
        mod = module(name)
        assert bounds(mod["parameters"]["retentionInDays"]) == interactive
        low, high = bounds(mod["parameters"]["totalRetentionInDays"])
        assert low <= interactive[0] and high >= interactive[1] + long_term[1]


def test_deploy_doc_has_the_pre_flight_checks_and_the_what_if_step():
    """The traps no parameter check catches are checked before step 1 (docs/DEPLOY.md)."""
    text = (REPO / "docs" / "DEPLOY.md").read_text(encoding="utf-8")
    section = text.split("## Pre-flight checks", 1)[1].split("\n## ", 1)[0]
    assert "az eventgrid system-topic list" in section
    topic_types = {body(t)["properties"]["topicType"]
                   for t in resources_of_type(module("event-topics"), "Microsoft.EventGrid/systemTopics")}
    assert topic_types and all(t in section for t in topic_types), topic_types
    assert "az group show" in section and "az deployment sub show" in section  # another location
    assert "findingsLongTermRetentionInDays" in section
    assert "az deployment sub what-if" in section
    step1 = text.split("### Step 1", 1)[1].split("\n### ", 1)[0]
    assert step1.index("what-if") < step1.index("az deployment sub create")
