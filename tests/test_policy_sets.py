"""Initiatives (policy set definitions): one control per member, parameters mapped, frameworks from groups,
members that are not available listed with the reason; and an imported initiative through the Event Grid path."""
from __future__ import annotations

import json
from pathlib import Path

import pytest
import yaml

from shared.cli import main
from shared.catalog import load_catalog
from shared.policy.importing import frameworks_from_groups
from tests.control_cases import load_fixture
from tests.test_end_to_end import pipeline  # noqa: F401 - the Event Grid pipeline fixture

POLICIES = Path(__file__).with_name("fixtures") / "policies"
KIT = Path(__file__).resolve().parents[2] / "shared" / "data"
SET = POLICIES / "initiative-corp-baseline.json"


def test_frameworks_come_from_the_group_names():
    assert frameworks_from_groups(["CIS_Azure_Foundations_v3.0.0_3.1.1", "Azure_Security_Benchmark_v3.0_DP-3",
                                   "CIS_Azure_Foundations_v2.1.0_8.3", "Something_else"]) == {
        "cis": ["3.1.1", "v2.1.0 8.3"], "mcsb": ["DP-3"]}


def test_initiative_gives_one_control_per_member_with_mapped_parameters(tmp_path, capsys):
    out = tmp_path / "out"
    code = main(["import-policy", str(SET), "--definitions", str(POLICIES), "--out", str(out),
                 "-p", "costCenterTag=owner"])
    printed = capsys.readouterr().out
    assert code == 1  # one member is not available offline
    assert "refused   vmBackup" in printed and "013e242c-8828-4970-87b3-ab247555486d" in printed \
        and "not available offline" in printed
    assert printed.rstrip().endswith("imported 3 of 4 definitions (3 judged out of the box, 0 templates judged once parameters are given, 1 refused)")
    secure = yaml.safe_load((out / "secure-transfer-to-storage-accounts-should-be-enabled.yaml").read_text())
    assert secure["frameworks"] == {"cis": ["3.1.1"], "mcsb": ["DP-3"]}
    tag = yaml.safe_load((out / "require-a-cost-center-tag-on-resources.yaml").read_text())
    assert tag["parameters"]["tagName"]["defaultValue"] == "owner"  # the set's value, mapped onto the member
    catalog = load_catalog([out])
    resource = load_fixture("storage-hardened")
    got = {r.control_id: r.status.value for r in catalog.evaluate(resource)}
    assert got == {"secure-transfer-to-storage-accounts-should-be-enabled": "Compliant",
                   "require-a-cost-center-tag-on-resources": "Compliant"}
    del resource["tags"]["owner"]
    resource["properties"]["supportsHttpsTrafficOnly"] = False
    got = {r.control_id: r.status.value for r in catalog.evaluate(resource)}
    assert set(got.values()) == {"NonCompliant"}


def test_initiative_parameter_without_value_makes_its_member_a_template(tmp_path, capsys):
    out = tmp_path / "out"
    assert main(["import-policy", str(SET), "--definitions", str(POLICIES), "--out", str(out)]) == 1
    printed = capsys.readouterr().out
    assert "template  Require a cost center tag on resources" in printed and "costCenterTag" in printed
    assert (out / "templates" / "require-a-cost-center-tag-on-resources.yaml").exists()
    assert main(["import-policy", str(SET), "--definitions", str(POLICIES), "--out", str(tmp_path / "o2"),
                 "-p", "secureTransferEffect=Disabled", "-p", "costCenterTag=owner"]) == 1
    printed = capsys.readouterr().out
    assert "refused   Secure transfer to storage accounts should be enabled" in printed and "Disabled" in printed


@pytest.mark.skipif(not (KIT / "azure-policy-initiatives").is_dir(), reason="the built-in initiatives are not here")
@pytest.mark.parametrize("name, members", [("CIS_Azure_Foundations_v3.0.0.json", 53),
                                           ("CIS_Azure_Foundations_v2.1.0.json", 31)])
def test_builtin_cis_initiative_imports_offline(tmp_path, capsys, name, members):
    out = tmp_path / "out"
    main(["import-policy", str(KIT / "azure-policy-initiatives" / name), "--definitions",
          str(KIT / "azure-policy-builtins"), "--out", str(out), "--enable-disabled"])
    lines = capsys.readouterr().out.strip().splitlines()
    total = int(lines[-1].split(" of ")[1].split()[0])
    imported = int(lines[-1].split()[1])
    assert total == members
    unavailable = [line for line in lines if "not available offline" in line]
    assert imported + len(unavailable) + sum(line.startswith("refused") and "not available" not in line for line in lines) \
        == total
    assert imported >= 0.6 * members
    controls = load_catalog([out]).controls
    assert len(controls) == imported - sum(line.startswith("template") for line in lines)
    assert all(c.frameworks.get("cis") for c in controls)  # every member sits in a CIS group


def test_imported_initiative_evaluates_end_to_end_through_the_event_grid_handler(pipeline, tmp_path, monkeypatch):
    """Import the set, point CONTROLS_PATH at it, deliver Event Grid events: findings for its members."""
    from shared import bootstrap
    from tests.test_end_to_end import SA_ID, arm_event, storage

    out = tmp_path / "initiative"
    assert main(["import-policy", str(SET), "--definitions", str(POLICIES), "--out", str(out),
                 "-p", "costCenterTag=costCenter", "--prefix", "corp-"]) == 1  # vmBackup is not available
    monkeypatch.setenv("CONTROLS_PATH", str(out))
    bootstrap.override(None)
    local = pipeline
    weak = storage(supportsHttpsTrafficOnly=False)
    local.put_resource(weak)
    local.deliver(arm_event("set-1", SA_ID))
    corp = sorted((r["Transition"], r["ControlId"]) for r in local.ingested if r["ControlId"].startswith("corp-"))
    assert corp == [("New", "corp-require-a-cost-center-tag-on-resources"),
                    ("New", "corp-secure-transfer-to-storage-accounts-should-be-enabled")]
    before = len(local.ingested)
    weak["properties"]["supportsHttpsTrafficOnly"] = True
    weak["tags"]["costCenter"] = "cc-4711"
    local.put_resource(weak)
    local.deliver(arm_event("set-2", SA_ID, time="2026-05-04T10:10:00Z"))
    corp = sorted((r["Transition"], r["ControlId"]) for r in local.ingested[before:]
                  if r["ControlId"].startswith("corp-"))
    assert corp == [("Resolved", "corp-require-a-cost-center-tag-on-resources"),
                    ("Resolved", "corp-secure-transfer-to-storage-accounts-should-be-enabled")]
