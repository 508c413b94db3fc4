"""``python -m shared`` as a user runs it: a real subprocess, real files, exit codes."""
from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

from shared.catalog import load_catalog

REPO = Path(__file__).resolve().parents[1]
DEMO = REPO / "shared" / "demo"


def run(*args, env=None, cwd=REPO):
    full_env = {k: v for k, v in os.environ.items() if not k.startswith(("STATE_", "FINDINGS_", "CONTROL"))}
    full_env.update(env or {})
    return subprocess.run([sys.executable, "-m", "shared", *args], capture_output=True, text=True, cwd=cwd,
                          env=full_env, timeout=120)


def test_evaluate_json_lists_every_applicable_control_and_exits_1_on_findings():
    proc = run("evaluate", str(DEMO / "resources.json"), "--format", "json")
    assert proc.returncode == 1, proc.stderr
    rows = json.loads(proc.stdout)
    assert {"resourceId", "controlId", "title", "severity", "status", "evidence"} <= set(rows[0])
    noncompliant = {(r["resourceId"].rsplit("/", 1)[-1], r["controlId"]) for r in rows if r["status"] == "NonCompliant"}
    assert {("kv-payments", "keyvault-purge-protection"), ("nsg-web", "nsg-no-ssh-from-internet")} <= noncompliant
    assert not any(name == "stpayments01" for name, _ in noncompliant)  # the hardened account
    catalog = load_catalog()
    resources = json.loads((DEMO / "resources.json").read_text())
    assert len(rows) == sum(len(catalog.evaluate(r)) for r in resources)  # one row per applicable control
    not_evaluated = [r for r in rows if r["status"] == "NotEvaluated"]
    assert all(r["reason"] for r in not_evaluated)


def test_evaluate_accepts_arm_pages_and_resource_graph_results(tmp_path):
    resources = json.loads((DEMO / "resources.json").read_text())
    hardened = [r for r in resources if r["name"] == "stpayments01"]
    (tmp_path / "page.json").write_text(json.dumps({"value": hardened, "nextLink": None}))
    (tmp_path / "graph.json").write_text(json.dumps({"totalRecords": 1, "count": 1, "data": hardened}))
    (tmp_path / "one.json").write_text(json.dumps(hardened[0]))
    proc = run("evaluate", *(str(tmp_path / n) for n in ("page.json", "graph.json", "one.json")))
    assert proc.returncode == 0, proc.stdout + proc.stderr
    evaluations = 3 * len(load_catalog().evaluate(hardened[0]))
    assert f"3 resource(s), {evaluations} control evaluation(s): 0 non-compliant" in proc.stdout


def test_evaluate_bad_input_exits_2_naming_file_and_problem(tmp_path):
    bad = tmp_path / "bad.json"
    bad.write_text('{"value": [{"id": "/subscriptions/x"}]}')
    proc = run("evaluate", str(bad))
    assert proc.returncode == 2
    assert str(bad) in proc.stderr and "value[0]" in proc.stderr and "'type'" in proc.stderr
    broken = tmp_path / "broken.json"
    broken.write_text("{not json")
    proc = run("evaluate", str(broken))
    assert proc.returncode == 2 and "broken.json: not valid JSON" in proc.stderr
    proc = run("evaluate", str(tmp_path / "missing.json"))
    assert proc.returncode == 2 and "missing.json: cannot read" in proc.stderr


def test_replay_prints_findings_as_json_lines_and_reports_rejected_events(tmp_path):
    events = json.loads((DEMO / "events.json").read_text())
    lines = [json.dumps(e) for e in events]
    lines.insert(2, "{this is not json")
    lines.insert(4, json.dumps({"id": "odd-1", "eventType": "Microsoft.Storage.BlobCreated", "subject": "/x",
                                "eventTime": "2026-01-01T00:00:00Z", "data": {}}))
    path = tmp_path / "events.jsonl"
    path.write_text("\n".join(lines))
    proc = run("replay", str(path), "--resources", str(DEMO / "resources.json"))
    assert proc.returncode == 1
    records = [json.loads(line) for line in proc.stdout.splitlines()]
    assert [(r["Transition"], r["ControlId"]) for r in records] == [
        ("Drifted", "storage-no-public-blob-access"),
        ("Resolved", "storage-no-public-blob-access"),
        ("New", "nsg-no-ssh-from-internet"),
        ("New", "keyvault-purge-protection"),
    ]
    assert f"rejected event {path}:3: invalid JSON" in proc.stderr
    assert "rejected event odd-1: unsupported event type 'Microsoft.Storage.BlobCreated'" in proc.stderr
    assert "replayed 8 event(s): 4 finding(s), 2 rejected, 0 failed" in proc.stderr


def test_bad_configuration_exits_2_naming_the_setting():
    proc = run("evaluate", str(DEMO / "resources.json"), env={"CONTROL_PARAMETERS": "{oops"})
    assert proc.returncode == 2 and "CONTROL_PARAMETERS is not valid JSON" in proc.stderr
    proc = run("evaluate", str(DEMO / "resources.json"), env={"DISABLED_CONTROLS": "no-such-control"})
    assert proc.returncode == 2 and "no-such-control" in proc.stderr


def test_control_parameters_from_configuration_change_verdicts():
    proc = run("evaluate", str(DEMO / "resources.json"), "--format", "json",
               env={"CONTROL_PARAMETERS": json.dumps({"required-tags": {"tagNames": ["owner", "costCenter"]}})})
    rows = json.loads(proc.stdout)
    tags = [r for r in rows if r["controlId"] == "required-tags"]
    assert len(tags) == 3 and {r["status"] for r in tags} == {"NonCompliant"}


def test_demo_prints_timeline_and_final_table_and_stops_azurite(tmp_path):
    findings = tmp_path / "findings.jsonl"
    proc = run("demo", "--findings", str(findings))
    assert proc.returncode == 0, proc.stdout + proc.stderr
    out = proc.stdout
    assert "TIMELINE" in out and "FINAL COMPLIANCE" in out and "Azurite stopped." in out
    assert "ana@contoso.com" in out and "Drifted  storage-no-public-blob-access" in out
    assert "Resolved storage-no-public-blob-access" in out and "Deleted  storage-https-only" in out
    records = [json.loads(line) for line in findings.read_text().splitlines()]
    assert [r["Transition"] for r in records] == ["Drifted", "Resolved", "New", "New", "New", "New",
                                                  "Deleted", "Deleted"]
    assert "stscratch01" in out and "(deleted: its findings are closed)" in out
    assert "keyvault-purge-protection" in out.split("FINAL COMPLIANCE")[1]


def test_evaluate_table_shows_why_a_control_was_not_evaluated(tmp_path):
    """The table format carries the NotEvaluated reason the JSON format has, on the control's own line.
    Without their "$related" blocks, controls on child resources (diagnostic settings, ...) are NotEvaluated."""
    resources = json.loads((DEMO / "resources.json").read_text())
    bare = tmp_path / "bare.json"
    bare.write_text(json.dumps([{k: v for k, v in r.items() if k != "$related"} for r in resources]))
    as_json = json.loads(run("evaluate", str(bare), "--format", "json").stdout)
    not_evaluated = [r for r in as_json if r["status"] == "NotEvaluated"]
    assert not_evaluated, "no NotEvaluated control to show"
    proc = run("evaluate", str(bare))
    assert proc.returncode in (0, 1), proc.stderr
    lines = proc.stdout.splitlines()
    assert lines[0].split() == ["RESOURCE", "CONTROL", "SEVERITY", "STATUS", "EVIDENCE", "REASON"]
    for row in not_evaluated:
        name, reason = row["resourceId"].rsplit("/", 1)[-1], " ".join(row["reason"].split())
        line = next(ln for ln in lines if ln.startswith(name + " ") and f" {row['controlId']} " in ln)
        assert "NotEvaluated" in line and line.endswith(reason), (line, reason)
