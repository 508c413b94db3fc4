"""ARM templates checked before deployment: quickstart-shaped templates (tests/fixtures/templates)
expanded as ARM would and judged with the catalog, with and without parameters, through the command.

Cited from Microsoft Learn:
[STRUCTURE]  "Understand the structure and syntax of ARM templates": parameters (defaultValue,
             allowedValues), variables, resources, condition; languageVersion 2.0 symbolic names and
             `existing` resources (referenced, not deployed).
[PARAMFILE]  "Create Resource Manager parameters file": {"parameters": {name: {"value": ...}}}; a Key
             Vault reference gives a secret at deployment.
[COPY]       "Resource iteration", "Property iteration", "Variable iteration": copy {name, count};
             copyIndex() from 0, copyIndex(offset), copyIndex('loop') inside property loops.
[CHILD]      "Set name and type for child resources": nested in `resources`, type and name are
             relative to the parent's.
[NESTED]     "Using linked and nested templates": Microsoft.Resources/deployments with an inline
             template; expressionEvaluationOptions.scope inner (own parameters) or outer (default:
             the parent's); templateLink for a linked template.
[FUNCTIONS]  "ARM template functions": format, resourceId, uniqueString (a hash of its arguments),
             reference (the runtime state of a resource), if, and the string/array/logical functions.
[SCOPE]      "Setting scope for extension resources": `scope` on an extension resource (2.0 / Bicep).
"""
from __future__ import annotations

import json
from pathlib import Path

import jsonschema
import pytest

from shared.templates import TemplateError, Unknown, expand_template, read_json_with_lines
from shared.templates.expressions import Context, evaluate
from tests.test_cli import REPO, run

TEMPLATES = Path(__file__).with_name("fixtures") / "templates"
SCHEMA = json.loads((Path(__file__).with_name("fixtures") / "sarif" / "sarif-schema-2.1.0.json").read_text())


def scan(name: str, *options: str, fmt: str = "json"):
    proc = run("scan-template", str(TEMPLATES / name), "--format", fmt, *options)
    rows = json.loads(proc.stdout) if fmt == "json" and proc.stdout.strip() else []
    return proc, rows


def verdicts(rows) -> dict[tuple[str, str], str]:
    return {(r["resourceId"].rsplit("/", 1)[-1], r["controlId"]): r["status"] for r in rows}


def line_of(name: str, needle: str) -> int:
    return next(i for i, line in enumerate((TEMPLATES / name).read_text().splitlines(), 1) if needle in line)


# ---------------------------------------------------------------- expressions


def ctx(**parameters) -> Context:
    return Context({k.lower(): v for k, v in parameters.items()}, {"tags": {"env": "[parameters('env')]"}},
                   "sub-1", "rg-1", "westeurope")


@pytest.mark.parametrize("expression, expected", [
    ("[format('{0}-{1}', parameters('env'), 'web')]", "dev-web"),
    ("[resourceId('Microsoft.Network/virtualNetworks/subnets', 'vnet', 'default')]",
     "/subscriptions/sub-1/resourceGroups/rg-1/providers/Microsoft.Network/virtualNetworks/vnet/subnets/default"),
    ("[subscriptionResourceId('Microsoft.Authorization/roleDefinitions', 'abc')]",
     "/subscriptions/sub-1/providers/Microsoft.Authorization/roleDefinitions/abc"),
    ("[resourceGroup().location]", "westeurope"),
    ("[variables('tags').env]", "dev"),
    ("[if(equals(parameters('env'), 'dev'), 'small', 'large')]", "small"),
    ("[concat(toUpper(parameters('env')), string(add(1, 2)))]", "DEV3"),
    ("[[not an expression]", "[not an expression]"),  # [STRUCTURE] escaped bracket
    ("[length(createArray(1, 2, 3))]", 3),
    ("[contains(createObject('a', 1), 'a')]", True),
])
def test_template_functions_evaluate_as_documented(expression, expected):
    """[FUNCTIONS]"""
    assert evaluate(expression, ctx(env="dev")) == expected


@pytest.mark.parametrize("expression, why", [
    ("[uniqueString(resourceGroup().id)]", "uniqueString() hashes"),
    ("[reference('vault').id]", "reference() reads a deployed resource"),
    ("[concat('st', uniqueString('x'))]", "uniqueString()"),  # it flows through the functions that take it
    ("[listKeys('sa', '2023-01-01').keys[0].value]", "listKeys() reads"),
    ("[utcNow()]", "the deployment's time"),
])
def test_what_only_the_deployment_knows_is_unknown_with_why(expression, why):
    value = evaluate(expression, ctx())
    assert isinstance(value, Unknown) and why in value.why


def test_property_names_may_be_expressions_as_bicep_writes_user_assigned_identities():
    """[STRUCTURE] Bicep compiles {'${id}': {}} to an expression as the property name; ARM evaluates it."""
    identity = {"type": "UserAssigned", "userAssignedIdentities": {"[parameters('id')]": {}, "[[literal]": 1}}
    assert evaluate(identity, ctx(id="/subscriptions/s/resourceGroups/g/providers/Microsoft.ManagedIdentity/"
                                      "userAssignedIdentities/app"))["userAssignedIdentities"] == {
        "/subscriptions/s/resourceGroups/g/providers/Microsoft.ManagedIdentity/userAssignedIdentities/app": {},
        "[literal]": 1}
    assert evaluate({"[reference('x').id]": 1}, ctx()) == {"[reference('x').id]": 1}, "not known: kept as written"


def test_an_if_with_a_known_condition_does_not_wait_for_the_other_branch():
    assert evaluate("[if(true(), 'ok', reference('x').id)]", ctx()) == "ok"
    assert isinstance(evaluate("[if(equals(reference('x').sku, 'a'), 1, 2)]", ctx()), Unknown)


@pytest.mark.parametrize("expression, message", [
    ("[parameters('missing')]", "no such parameter"),
    ("[variables('nope')]", "no such variable"),
    ("[frobnicate(1)]", "frobnicate() is not an ARM template function"),
    ("[concat('a']", "expected )"),
    ("[copyIndex()]", "outside its copy loop"),
])
def test_an_expression_arm_would_refuse_is_an_error_naming_it(expression, message):
    with pytest.raises(TemplateError, match=message.replace("(", r"\(").replace(")", r"\)")):
        evaluate(expression, ctx())


def test_lines_are_those_the_resources_are_declared_on_comments_allowed():
    text = '{\n  // a comment ARM accepts\n  "resources": [\n    /* one */ {"type": "A.B/c", "name": "x"}\n  ]\n}\n'
    doc, lines, _ = read_json_with_lines(text, "t.json")
    assert lines[id(doc["resources"][0])] == 4
    with pytest.raises(TemplateError, match="line 3"):
        read_json_with_lines('{\n "a": 1,\n "b": ]\n}', "bad.json")


# ---------------------------------------------------------------- the quickstart shapes


def test_storage_account_without_parameters_judges_what_it_can_and_says_what_it_cannot():
    """[STRUCTURE] defaults apply; a parameter without a value and resourceGroup().location are unknown."""
    proc, rows = scan("storage-account.json")
    assert proc.returncode == 1, proc.stderr
    got = {r["controlId"]: r for r in rows}
    assert got["storage-https-only"]["status"] == "NonCompliant"  # httpsOnly defaults to false
    assert got["storage-min-tls-1-2"]["status"] == "Compliant"
    blob = got["storage-no-public-blob-access"]
    assert blob["status"] == "NotEvaluated" and "parameter allowBlobPublicAccess has no value" in blob["reason"]
    assert got["allowed-locations"]["status"] == "NotEvaluated" and "--location" in got["allowed-locations"]["reason"]
    assert rows[0]["resourceId"].endswith("/storageAccounts/{uniqueString}")  # [FUNCTIONS] not guessed
    assert got["storage-https-only"]["file"] == str(TEMPLATES / "storage-account.json")
    assert got["storage-https-only"]["line"] == line_of("storage-account.json", '"type": "Microsoft.Storage') - 1


def test_storage_account_with_a_parameters_file_and_p_overrides():
    """[PARAMFILE] the file's values, and -p over them."""
    params = ("--parameters", str(TEMPLATES / "storage-account.parameters.json"))
    proc, rows = scan("storage-account.json", *params)
    got = verdicts(rows)
    assert got[("stpaymentsdev01", "storage-https-only")] == "Compliant"
    assert got[("stpaymentsdev01", "storage-no-public-blob-access")] == "Compliant"
    assert got[("stpaymentsdev01", "allowed-locations")] != "NotEvaluated"  # location given
    _, rows = scan("storage-account.json", *params, "-p", "httpsOnly=false")
    assert verdicts(rows)[("stpaymentsdev01", "storage-https-only")] == "NonCompliant"


@pytest.mark.parametrize("options, message", [
    (("-p", "httpsOnly=maybe"), "parameter httpsOnly: 'maybe' is not a bool"),
    (("-p", "storageAccountType=Premium_LRS"), "is not one of its allowedValues"),
    (("-p", "notDeclared=1"), "notDeclared given, but the template declares none"),
    (("-p", "novalue"), "-p novalue: give NAME=VALUE"),
])
def test_parameter_mistakes_are_one_line_and_exit_2(options, message):
    proc, _ = scan("storage-account.json", *options)
    assert proc.returncode == 2 and message in proc.stderr and proc.stderr.count("\n") == 1


def test_linux_vm_with_an_nsg_open_to_ssh_then_closed_by_a_parameter():
    _, rows = scan("linux-vm-nsg.json", "-p", "adminUsername=azureuser", "--location", "westeurope")
    got = verdicts(rows)
    assert got[("simpleLinuxVM-nsg", "nsg-no-ssh-from-internet")] == "NonCompliant"
    assert got[("simpleLinuxVM", "vm-managed-disks")] == "Compliant"
    assert {r["resourceId"].rsplit("/", 1)[-1] for r in rows} == {
        "simpleLinuxVM-nsg", "simpleLinuxVM-vnet", "simpleLinuxVMNetInt", "simpleLinuxVM"}
    _, rows = scan("linux-vm-nsg.json", "-p", "adminUsername=azureuser", "-p", "sshSourceAddress=10.0.0.0/8")
    assert verdicts(rows)[("simpleLinuxVM-nsg", "nsg-no-ssh-from-internet")] == "Compliant"


def test_web_app_over_http():
    _, rows = scan("web-app.json", "--location", "westeurope")
    got = {(r["resourceId"].rsplit("/", 2)[-2], r["controlId"]): r["status"] for r in rows}
    assert got[("sites", "appservice-https-only")] == "NonCompliant"


def test_key_vault_and_its_nested_child_secret():
    """[CHILD] the secret nested in the vault is Microsoft.KeyVault/vaults/secrets named vault/secret."""
    proc, rows = scan("key-vault.json", "-p", "keyVaultName=kv-app-01")
    got = verdicts(rows)
    assert got[("kv-app-01", "keyvault-purge-protection")] == "NonCompliant"
    template = json.loads((TEMPLATES / "key-vault.json").read_text())
    expansion = expand_template(template, parameters={"keyVaultName": "kv-app-01"})
    child = next(d for d in expansion.resources if d.resource["type"] == "Microsoft.KeyVault/vaults/secrets")
    assert child.resource["name"] == "kv-app-01/app-secret"
    assert child.resource["id"].endswith("/providers/Microsoft.KeyVault/vaults/kv-app-01/secrets/app-secret")
    assert child.unknowns == [(("properties", "value"), "parameter secretValue has no value (give it in "
                                                         "--parameters or -p secretValue=...)")]
    _, rows = scan("key-vault.json", "-p", "keyVaultName=kv-app-01", "-p", "enablePurgeProtection=true")
    assert verdicts(rows)[("kv-app-01", "keyvault-purge-protection")] == "Compliant"


def test_copy_loops_conditions_and_property_iteration():
    """[COPY] three accounts from copyIndex(1); the second one without HTTPS; a false condition deploys
    nothing; a property loop builds the NSG's rules."""
    proc, rows = scan("copy-loop.json")
    got = verdicts(rows)
    assert [got[(f"stloop{i}", "storage-https-only")] for i in (1, 2, 3)] == ["Compliant", "NonCompliant", "Compliant"]
    assert not any(r["resourceId"].endswith("stlooplogs") for r in rows)
    assert "condition is false: not deployed, not judged" in proc.stderr
    rdp = next(r for r in rows if r["controlId"] == "nsg-no-rdp-from-internet")
    assert rdp["status"] == "NonCompliant" and rdp["evidence"][0]["matched"][0]["path"] == "properties.securityRules[1]"
    assert got[("nsg-loop", "nsg-no-ssh-from-internet")] == "Compliant"
    _, rows = scan("copy-loop.json", "-p", "storageCount=1", "-p", "deployLogs=true")
    names = {r["resourceId"].rsplit("/", 1)[-1] for r in rows if "storageAccounts" in r["resourceId"]}
    assert names == {"stloop1", "stlooplogs"}


def test_nested_deployments_inner_and_outer_scope_and_a_linked_one():
    """[NESTED]"""
    proc, rows = scan("nested-deployment.json")
    got = verdicts(rows)
    assert got[("stnestedinner01", "storage-https-only")] == "NonCompliant"  # inner: its own parameters
    assert got[("stnestedouter01", "storage-min-tls-1-2")] == "NonCompliant"  # outer: the parent's
    linked = next(r for r in rows if r["controlId"] == "template-linked-deployment")
    assert linked["status"] == "NotEvaluated" and "https://example.com/templates/network.json" in linked["reason"]
    assert linked["line"] == line_of("nested-deployment.json", '"name": "linked"') - 3
    assert run("scan-template", str(TEMPLATES / "nested-deployment.json"), "--fail-on", "Critical",
               "--fail-on-not-evaluated").returncode == 1  # the linked template fails the run when asked


def test_symbolic_names_existing_resources_and_an_extension_scope():
    """[STRUCTURE] languageVersion 2.0; [SCOPE] the diagnostic setting on the vault; reference() unknown."""
    proc, rows = scan("symbolic-2.0.json")
    assert "existingStorage" in proc.stderr and "not deployed by the template" in proc.stderr
    assert not any("stexisting01" in r["resourceId"] for r in rows)
    got = verdicts(rows)
    assert got[("kv-symbolic-01", "keyvault-purge-protection")] == "Compliant"
    logs = next(r for r in rows if r["controlId"] == "keyvault-diagnostic-logs")
    assert logs["status"] == "NotEvaluated" and "vaultDiagnostics" in logs["reason"] and "reference()" in logs["reason"]
    expansion = expand_template(json.loads((TEMPLATES / "symbolic-2.0.json").read_text()))
    ids = [d.resource["id"] for d in expansion.resources]
    assert any(i.endswith("/vaults/kv-symbolic-01/providers/Microsoft.Insights/diagnosticSettings/to-workspace")
               for i in ids)


def test_sarif_of_a_template_points_at_the_line_of_each_resource(tmp_path):
    proc = run("scan-template", str(TEMPLATES / "copy-loop.json"), "--format", "sarif", cwd=tmp_path,
               env={"PYTHONPATH": str(REPO)})
    log = json.loads(proc.stdout)
    jsonschema.Draft4Validator(SCHEMA).validate(log)
    https = [r for r in log["runs"][0]["results"] if r["ruleId"] == "storage-https-only"]
    [only] = https
    region = only["locations"][0]["physicalLocation"]
    assert region["region"]["startLine"] == line_of("copy-loop.json", '"type": "Microsoft.Storage') - 1
    assert region["artifactLocation"]["uri"].endswith("tests/fixtures/templates/copy-loop.json")


def test_evaluate_recognises_a_deployment_template():
    proc = run("evaluate", str(TEMPLATES / "copy-loop.json"), "--format", "json")
    assert proc.returncode == 1
    assert verdicts(json.loads(proc.stdout))[("stloop2", "storage-https-only")] == "NonCompliant"


def test_a_file_that_is_not_a_template_or_not_json_is_one_line(tmp_path):
    (tmp_path / "resource.json").write_text(json.dumps({"id": "/subscriptions/x", "type": "A/b"}))
    proc = run("scan-template", str(tmp_path / "resource.json"))
    assert proc.returncode == 2 and "not an ARM deployment template" in proc.stderr and "use evaluate" in proc.stderr
    (tmp_path / "broken.json").write_text('{\n  "$schema": "x/deploymentTemplate.json#",\n  "resources": [,]\n}')
    proc = run("scan-template", str(tmp_path / "broken.json"))
    assert proc.returncode == 2 and "not valid JSON at line 3" in proc.stderr and proc.stderr.count("\n") == 1
