"""The Function App as the Functions host indexes it."""
from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import azure.functions as func

REPO = Path(__file__).resolve().parents[1]


def test_app_indexes_the_expected_functions_and_triggers():
    import function_app

    functions = {f.get_function_name(): f for f in function_app.app.get_functions()}
    assert set(functions) == {"on_resource_change", "drain_findings", "evaluate", "compliance", "reconcile",
                              "refresh_assignments", "parity"}
    (parity_timer,) = [b.get_dict_repr() for b in functions["parity"].get_bindings()]
    assert parity_timer["type"] == "timerTrigger" and parity_timer["schedule"] == "%PARITY_SCHEDULE%"
    (reconcile_timer,) = [b.get_dict_repr() for b in functions["reconcile"].get_bindings()]
    assert reconcile_timer["type"] == "timerTrigger" and reconcile_timer["schedule"] == "%RECONCILE_SCHEDULE%"
    (assignments_timer,) = [b.get_dict_repr() for b in functions["refresh_assignments"].get_bindings()]
    assert assignments_timer["type"] == "timerTrigger" and assignments_timer["schedule"] == "%ASSIGNMENTS_SCHEDULE%"
    for name, method in (("evaluate", "POST"), ("compliance", "GET")):
        trigger = functions[name].get_bindings()[0].get_dict_repr()
        assert trigger["type"] == "httpTrigger" and str(trigger["authLevel"]).endswith("FUNCTION")
        assert [str(m).split(".")[-1] for m in trigger["methods"]] == [method] and trigger["route"] == name
    (event,) = [b.get_dict_repr() for b in functions["on_resource_change"].get_bindings()]
    assert event["type"] == "eventGridTrigger" and event["name"] == "event"
    assert str(event["direction"]).endswith("IN")
    (timer,) = [b.get_dict_repr() for b in functions["drain_findings"].get_bindings()]
    assert timer["type"] == "timerTrigger" and timer["schedule"] == "%OUTBOX_DRAIN_SCHEDULE%"
    assert isinstance(function_app.app, func.FunctionApp)


def test_drain_function_delivers_pending_findings():
    from azure.functions.timer import TimerRequest

    from handlers.outbox import DEFAULT_SCHEDULE, drain_findings
    from shared import bootstrap
    from shared.adapters.memory import InMemoryStateStore, MemorySink, StaticResourceReader
    from shared.catalog import load_catalog
    from shared.domain.drift import ResourceState
    from shared.service.changes import Dependencies

    store, sink = InMemoryStateStore(), MemorySink()
    from datetime import datetime, timezone

    from shared.service.ports import OUTBOX_GRACE

    now = datetime.now(timezone.utc)
    rid = "/subscriptions/s/resourceGroups/rg/providers/Microsoft.Storage/storageAccounts/a"
    committed = now - OUTBOX_GRACE  # rows are due for the drain once the grace after their commit has passed
    store.save(None, ResourceState(rid, "Microsoft.Storage/storageAccounts", last_evaluated=committed),
               outbox=[{"FindingId": "f1", "ControlId": "c"}])
    bootstrap.override(Dependencies(load_catalog(), StaticResourceReader(), store, sink))
    try:
        drain_findings.build().get_user_function()(TimerRequest(past_due=True))
    finally:
        bootstrap.override(None)
    assert sink.records == [{"FindingId": "f1", "ControlId": "c"}]
    assert store.pending(now, 10) == []
    assert DEFAULT_SCHEDULE.count(" ") == 5  # NCRONTAB with seconds


def test_importing_the_app_builds_no_client_and_imports_no_sdk():
    """Cold start: nothing heavy and nothing that calls Azure happens at import time."""
    code = ("import sys, function_app; heavy = [m for m in ('azure.data.tables', 'azure.mgmt.resource', "
            "'azure.monitor.ingestion', 'azure.identity', 'yaml', 'jsonschema', 'gzip') if m in sys.modules]; "
            "heavy += sorted(m for m in sys.modules if m.split('.')[0] == 'shared'); print(heavy)")
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=REPO, timeout=60)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.strip() == "[]"  # not even the event parser: the first event imports it


def test_the_app_registers_every_function():
    code = "import json, function_app; print(json.dumps(sorted(f.get_function_name() for f in function_app.app.get_functions())))"
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=REPO, timeout=60)
    assert proc.returncode == 0, proc.stderr
    names = json.loads(proc.stdout.strip())
    assert "on_resource_change" in names and len(names) >= 4, names


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
