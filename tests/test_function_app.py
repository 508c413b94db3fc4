"""The Function App as the Functions host indexes it."""
from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import azure.functions as func

REPO = Path(__file__).resolve().parents[1]


def test_app_indexes_the_event_grid_function():
    import function_app

    functions = {f.get_function_name(): f for f in function_app.app.get_functions()}
    assert set(functions) == {"on_resource_change"}
    bindings = [b.get_dict_repr() for b in functions["on_resource_change"].get_bindings()]
    assert len(bindings) == 1
    assert bindings[0]["type"] == "eventGridTrigger" and bindings[0]["name"] == "event"
    assert str(bindings[0]["direction"]).endswith("IN")
    assert isinstance(function_app.app, func.FunctionApp)


def test_importing_the_app_builds_no_client_and_imports_no_sdk():
    """Cold start: nothing heavy and nothing that calls Azure happens at import time."""
    code = ("import sys, function_app; heavy = [m for m in ('azure.data.tables', 'azure.mgmt.resource', "
            "'azure.monitor.ingestion', 'azure.identity', 'yaml', 'jsonschema') if m in sys.modules]; print(heavy)")
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=REPO, timeout=60)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.strip() == "[]"


def test_every_setting_the_code_reads_is_in_the_sample_settings():
    sample = json.loads((REPO / "local.settings.sample.json").read_text())["Values"]
    source = (REPO / "shared" / "config.py").read_text()
    import re

    read = set(re.findall(r'get\("([A-Z][A-Za-z_]+)"', source)) | set(re.findall(r'choice\("([A-Z_]+)"', source)) \
        | set(re.findall(r'split\("([A-Z_]+)"', source))
    assert read, "no settings found in config.py"
    assert read - {"STATE_STORAGE"} <= set(sample), sorted(read - set(sample))
    readme = (REPO / "README.md").read_text()
    assert all(name in readme for name in read), sorted(n for n in read if n not in readme)


def test_host_json_is_functions_v4_with_extension_bundle():
    host = json.loads((REPO / "host.json").read_text())
    assert host["version"] == "2.0"
    assert host["extensionBundle"]["id"] == "Microsoft.Azure.Functions.ExtensionBundle"
