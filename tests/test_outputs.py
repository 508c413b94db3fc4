"""``evaluate``'s outputs and CI options, through the command as a pipeline runs it.

[SARIF]  OASIS "Static Analysis Results Interchange Format (SARIF) Version 2.1.0"; the published
         JSON schema is tests/fixtures/sarif/sarif-schema-2.1.0.json (see its README).
[GH-CS]  GitHub Docs, "SARIF support for code scanning": rules in tool.driver.rules with id, name,
         shortDescription, fullDescription, help; properties.security-severity (over 9.0 critical,
         7.0-8.9 high, 4.0-6.9 medium, 0.1-3.9 low) and properties.tags; results with ruleId, message,
         locations[].physicalLocation (artifactLocation.uri relative to the repository, region.startLine).
"""
from __future__ import annotations

import csv
import io
import json
import xml.etree.ElementTree as ET
from pathlib import Path

import jsonschema
import pytest

from tests.test_cli import DEMO, REPO, run

SCHEMA = json.loads((Path(__file__).with_name("fixtures") / "sarif" / "sarif-schema-2.1.0.json").read_text())
RESOURCES = json.loads((DEMO / "resources.json").read_text())


@pytest.fixture
def estate(tmp_path):
    """The demo resources in a file of their own, pretty-printed as a repository would hold them."""
    path = tmp_path / "infra" / "resources.json"
    path.parent.mkdir()
    path.write_text(json.dumps(RESOURCES, indent=2))
    return path


def line_of(path: Path, resource_id: str) -> int:
    return next(i for i, line in enumerate(path.read_text().splitlines(), 1) if f'"id": "{resource_id}"' in line)


def test_sarif_is_valid_2_1_0_with_a_rule_per_control_and_a_located_result_per_finding(estate, tmp_path):
    """[SARIF] valid against the published schema; [GH-CS] what code scanning reads."""
    proc = run("evaluate", str(estate), "--format", "sarif", cwd=tmp_path, env={"PYTHONPATH": str(REPO)})
    assert proc.returncode == 1, proc.stderr
    log = json.loads(proc.stdout)
    jsonschema.Draft4Validator(SCHEMA).validate(log)
    [sarif_run] = log["runs"]
    rules = {r["id"]: r for r in sarif_run["tool"]["driver"]["rules"]}
    https = rules["storage-https-only"]
    assert https["shortDescription"]["text"] == "Storage accounts accept secure transfer (HTTPS) only"
    assert "secure transfer" in https["fullDescription"]["text"].lower() and https["help"]["text"]
    assert https["properties"]["security-severity"] == "8.0" and "cis:4.1" in https["properties"]["tags"]
    assert "az storage account update" in https["help"]["markdown"]
    findings = {(r["ruleId"], r["properties"]["resourceId"].rsplit("/", 1)[-1]): r for r in sarif_run["results"]}
    assert set(findings) == {("nsg-no-ssh-from-internet", "nsg-web"), ("keyvault-purge-protection", "kv-payments")}
    kv = findings[("keyvault-purge-protection", "kv-payments")]
    location = kv["locations"][0]["physicalLocation"]
    assert location["artifactLocation"]["uri"] == "infra/resources.json"  # relative to where it runs
    kv_id = next(r["id"] for r in RESOURCES if r["name"] == "kv-payments")
    assert location["region"]["startLine"] == line_of(estate, kv_id)
    assert kv["level"] == "error" and sarif_run["tool"]["driver"]["rules"][kv["ruleIndex"]]["id"] == kv["ruleId"]


def test_junit_has_a_suite_per_control_a_failure_per_finding_and_skips_with_reasons(tmp_path):
    bare = tmp_path / "bare.json"
    hostile = dict(RESOURCES[0], tags={"note": "bell\x07and\x1bescape"})
    bare.write_text(json.dumps([{k: v for k, v in r.items() if k != "$related"} for r in [hostile, *RESOURCES[1:]]]))
    proc = run("evaluate", str(bare), "--format", "junit")
    root = ET.fromstring(proc.stdout.encode())  # well-formed, whatever a resource holds
    cases = root.findall(".//testcase")
    failures = [c for c in cases if c.find("failure") is not None]
    skipped = [c for c in cases if c.find("skipped") is not None]
    as_json = json.loads(run("evaluate", str(bare), "--format", "json").stdout)
    assert len(cases) == len(as_json)
    assert len(failures) == sum(r["status"] == "NonCompliant" for r in as_json) > 0
    assert len(skipped) == sum(r["status"] == "NotEvaluated" for r in as_json) > 0
    assert all(c.find("skipped").get("message") for c in skipped)
    assert {s.get("name") for s in root.findall("testsuite")} == {r["controlId"] for r in as_json}


def test_csv_and_json_carry_remediation_frameworks_and_the_place_of_the_resource(estate):
    rows = list(csv.DictReader(io.StringIO(run("evaluate", str(estate), "--format", "csv").stdout)))
    kv = next(r for r in rows if r["controlId"] == "keyvault-purge-protection")
    assert kv["status"] == "NonCompliant" and kv["file"] == str(estate) and int(kv["line"]) > 1
    assert "mcsb:" in kv["frameworks"] and json.loads(kv["evidence"])
    as_json = json.loads(run("evaluate", str(estate), "--format", "json").stdout)
    row = next(r for r in as_json if r["controlId"] == "storage-https-only")
    assert row["remediation"]["az"].startswith("az storage account update") and row["frameworks"]["cis"] == ["4.1"]


def test_output_goes_to_a_file_with_the_summary_on_stderr(estate, tmp_path):
    out = tmp_path / "reports" / "results.sarif"
    proc = run("evaluate", str(estate), "--format", "sarif", "--output", str(out))
    assert proc.returncode == 1 and proc.stdout == ""
    assert f"wrote {out} (sarif)" in proc.stderr and "2 non-compliant" in proc.stderr
    jsonschema.Draft4Validator(SCHEMA).validate(json.loads(out.read_text()))
    assert run("evaluate", str(estate), "--output", str(tmp_path)).returncode == 2  # a folder: cannot write


@pytest.mark.parametrize("options, code", [
    ((), 1),
    (("--fail-on", "Critical"), 0),  # the two findings are High
    (("--fail-on", "high"), 1),
    (("--soft-fail",), 0),
    (("--severity", "Low,Medium"), 0),  # the High findings are filtered out
    (("--control", "storage-https-only"), 0),
    (("--control", "keyvault-purge-protection"), 1),
    (("--framework", "cis"), None),  # whatever it finds, only rows of controls with CIS references
])
def test_exit_codes_follow_the_options(estate, options, code):
    proc = run("evaluate", str(estate), "--format", "json", *options)
    rows = json.loads(proc.stdout)
    if code is not None:
        assert proc.returncode == code, proc.stderr
    if "--framework" in options:
        assert rows and all("cis" in r["frameworks"] for r in rows)
    if "--severity" in options:
        assert {r["severity"] for r in rows} <= {"Low", "Medium"}


def test_not_evaluated_fails_the_run_only_when_asked(tmp_path):
    bare = tmp_path / "bare.json"
    hardened = [r for r in RESOURCES if r["name"] == "stpayments01"]
    bare.write_text(json.dumps([{k: v for k, v in r.items() if k != "$related"} for r in hardened]))
    assert run("evaluate", str(bare)).returncode == 0
    proc = run("evaluate", str(bare), "--fail-on-not-evaluated", "--quiet")
    assert proc.returncode == 1
    lines = [ln for ln in proc.stdout.splitlines()[1:] if ln.strip() and not ln.startswith("1 resource")]
    assert lines and all("NotEvaluated" in ln for ln in lines)  # --quiet: only what fails the run


@pytest.mark.parametrize("options, message", [
    (("--control", "no-such-control"), "--control: no control no-such-control"),
    (("--framework", "pci"), "--framework: no control references pci"),
    (("--fail-on", "Severe"), "'Severe' is not a severity"),
])
def test_a_filter_that_names_nothing_is_a_usage_error(estate, options, message):
    proc = run("evaluate", str(estate), *options)
    assert proc.returncode == 2 and message in proc.stderr
