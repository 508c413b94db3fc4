"""The command line in a pipeline: exit codes that hold through a pipe, one clear line for every error a
user can cause (never a traceback), folders as input, an installable command with --version."""
from __future__ import annotations

import json
import os
import shutil
import socket
import subprocess
import sys

import pytest

from tests.test_cli import DEMO, REPO, run

FIXTURES = REPO / "tests" / "fixtures"


def one_error_line(proc) -> str:
    """stderr is one line starting 'error: ' (no traceback)."""
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: "), proc.stderr
    assert "Traceback" not in proc.stderr
    return lines[0]


def closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_a_broken_pipe_keeps_the_real_exit_code():
    """`evaluate --format json ... | head -1` on non-compliant input still fails the step (exit 1)."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("STATE_", "CONTROL"))}
    proc = subprocess.Popen([sys.executable, "-m", "shared", "evaluate", "--format", "json", str(DEMO / "resources.json")],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, cwd=REPO, env=env)
    proc.stdout.readline()
    proc.stdout.close()  # the reader stops, as head does
    _, err = proc.communicate(timeout=120)
    assert proc.returncode == 1, err
    assert b"Traceback" not in err


def test_storage_that_nothing_listens_on_is_one_line_for_report_and_demo():
    conn = (f"DefaultEndpointsProtocol=http;AccountName=devstoreaccount1;AccountKey="
            f"Eby8vdM02xNOcqFlqUwJPLlmEtlCDXJ1OUzFT50uSRZ6IFsuFq2UVErCz4I6tq/K1SZFPTOtr/KBHBeksoGMGw==;"
            f"TableEndpoint=http://127.0.0.1:{closed_port()}/devstoreaccount1;")
    for command in (["report"], ["exempt", "list"]):
        proc = run(*command, env={"STATE_STORAGE__connectionString": conn})
        assert proc.returncode == 2
        line = one_error_line(proc)
        assert "cannot reach 127.0.0.1:" in line and "STATE_STORAGE__connectionString" in line


def test_storage_that_refuses_the_key_is_one_line(azurite_connection_string):
    wrong = ";".join("AccountKey=" + "A" * 86 + "==" if part.startswith("AccountKey=") else part
                     for part in azurite_connection_string.split(";"))
    proc = run("report", env={"STATE_STORAGE__connectionString": wrong})
    assert proc.returncode == 2
    line = one_error_line(proc)
    assert "refused the request (403" in line and "key" in line


def test_the_demo_with_unreachable_storage_is_one_line():
    conn = (f"DefaultEndpointsProtocol=http;AccountName=devstoreaccount1;AccountKey="
            f"Eby8vdM02xNOcqFlqUwJPLlmEtlCDXJ1OUzFT50uSRZ6IFsuFq2UVErCz4I6tq/K1SZFPTOtr/KBHBeksoGMGw==;"
            f"TableEndpoint=http://127.0.0.1:{closed_port()}/devstoreaccount1;")
    proc = run("demo", env={"STATE_STORAGE__connectionString": conn})
    assert proc.returncode == 2 and "cannot reach" in one_error_line(proc)


def test_controls_path_at_azure_policy_json_says_use_import_policy(tmp_path):
    policies = tmp_path / "policies"
    policies.mkdir()
    shutil.copy(FIXTURES / "policies" / "storage-secure-transfer.json", policies)
    proc = run("evaluate", str(DEMO / "resources.json"), env={"CONTROLS_PATH": str(policies)})
    assert proc.returncode == 2
    assert "import-policy" in one_error_line(proc) and "not control files" in proc.stderr
    a_file = policies / "storage-secure-transfer.json"
    proc = run("evaluate", str(DEMO / "resources.json"), env={"CONTROLS_PATH": str(a_file)})
    assert proc.returncode == 2 and "is a file; give the folder" in one_error_line(proc)


def test_a_yaml_error_is_one_line_with_its_place(tmp_path):
    (tmp_path / "bad.yaml").write_text("id: x\ntitle: [unclosed\nseverity: High\n")
    proc = run("catalog", env={"CONTROLS_PATH": str(tmp_path)})
    assert proc.returncode == 2
    line = one_error_line(proc)
    assert "bad.yaml: not valid YAML" in line and "line 3" in line


def test_replay_of_a_file_that_is_not_json_is_a_usage_error(tmp_path):
    notes = tmp_path / "notes.txt"
    notes.write_text("these are not events\nnor is this\n")
    proc = run("replay", str(notes))
    assert proc.returncode == 2 and "neither JSON nor JSON lines" in one_error_line(proc)


def test_import_policy_with_nothing_readable_says_so_once(tmp_path):
    proc = run("import-policy", str(tmp_path / "missing.json"), "--out", str(tmp_path / "out"))
    assert proc.returncode == 2 and "cannot read" in one_error_line(proc)
    assert "imported 0 of 0" not in proc.stdout


def test_evaluate_takes_folders_and_refuses_an_empty_input(tmp_path):
    resources = json.loads((DEMO / "resources.json").read_text())
    (tmp_path / "estate" / "deep").mkdir(parents=True)
    (tmp_path / "estate" / "a.json").write_text(json.dumps(resources[:2]))
    (tmp_path / "estate" / "deep" / "b.json").write_text(json.dumps(resources[2:]))
    proc = run("evaluate", str(tmp_path / "estate"))
    assert proc.returncode == 1 and f"{len(resources)} resource(s)" in proc.stdout
    (tmp_path / "empty.json").write_text("[]")
    proc = run("evaluate", str(tmp_path / "empty.json"))
    assert proc.returncode == 2 and "no resources to evaluate" in one_error_line(proc)


def test_imported_controls_have_no_yaml_anchors(tmp_path):
    """A value the converter shares between keys (the rule of several controls) is written out in full."""
    proc = run("import-policy", str(FIXTURES / "policies"), "--out", str(tmp_path / "out"))
    written = list((tmp_path / "out").rglob("*.yaml"))
    assert written, proc.stdout + proc.stderr
    for path in written:
        text = path.read_text()
        assert "&id0" not in text and "*id0" not in text, path


@pytest.fixture(scope="module")
def installed(tmp_path_factory):
    """`pip install .` of a copy of the project (no network: the venv's setuptools and wheel)."""
    source, target = tmp_path_factory.mktemp("src"), tmp_path_factory.mktemp("site")
    for name in ("pyproject.toml", "README.md", "requirements.txt"):
        shutil.copy(REPO / name, source)
    shutil.copytree(REPO / "shared", source / "shared", ignore=shutil.ignore_patterns("__pycache__"))
    proc = subprocess.run([sys.executable, "-m", "pip", "install", "--quiet", "--no-deps", "--no-build-isolation",
                           "--no-index", "--target", str(target), str(source)], capture_output=True, text=True,
                          timeout=300)
    assert proc.returncode == 0, proc.stderr
    return target


def test_the_installed_command_runs_from_anywhere_and_says_its_version(installed, tmp_path):
    from shared import __version__

    env = {**{k: v for k, v in os.environ.items() if not k.startswith(("STATE_", "CONTROL"))},
           "PYTHONPATH": str(installed)}
    command = installed / "bin" / "azure-compliance-monitor"
    proc = subprocess.run([str(command), "--version"], capture_output=True, text=True, cwd=tmp_path, env=env)
    assert proc.returncode == 0 and proc.stdout.strip() == f"azure-compliance-monitor {__version__}"
    shutil.copy(DEMO / "resources.json", tmp_path)
    proc = subprocess.run([str(command), "evaluate", "resources.json"], capture_output=True, text=True,
                          cwd=tmp_path, env=env, timeout=120)
    assert proc.returncode == 1 and "non-compliant" in proc.stdout, proc.stderr  # the built-ins came with it
    proc = subprocess.run([str(command), "evaluate"], capture_output=True, text=True, cwd=tmp_path, env=env)
    assert proc.returncode == 2 and proc.stderr.startswith("usage: azure-compliance-monitor evaluate")
    assert run("--version").stdout.strip() == f"azure-compliance-monitor {__version__}"  # python -m shared too


def test_imported_severity_comes_from_the_definitions_metadata_else_the_one_given(tmp_path):
    """A definition whose metadata names a severity keeps it; Microsoft's built-ins name none, so --severity
    (default Medium) decides for them; an initiative's group names stay as framework references."""
    definition = json.loads((FIXTURES / "policies" / "storage-secure-transfer.json").read_text())
    rated = json.loads(json.dumps(definition))
    rated["name"] = rated["id"] = "custom-transfer"
    rated["properties"]["displayName"] = "Custom secure transfer"
    rated["properties"]["metadata"]["severity"] = "high"
    (tmp_path / "in").mkdir()
    (tmp_path / "in" / "builtin.json").write_text(json.dumps(definition))
    (tmp_path / "in" / "rated.json").write_text(json.dumps(rated))
    proc = run("import-policy", str(tmp_path / "in"), "--out", str(tmp_path / "out"), "--severity", "Low")
    assert proc.returncode == 0, proc.stdout + proc.stderr
    import yaml

    severities = {doc["title"]: doc["severity"] for doc in
                  (yaml.safe_load(p.read_text()) for p in (tmp_path / "out").glob("*.yaml"))}
    assert severities == {"Secure transfer to storage accounts should be enabled": "Low",
                          "Custom secure transfer": "High"}
