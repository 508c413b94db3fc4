"""Deployment artefacts agree with the code: the findings columns are one contract."""
from __future__ import annotations

import json
from pathlib import Path

from shared.config import DEFAULT_STREAM
from shared.findings import FINDING_COLUMNS

INFRA = Path(__file__).resolve().parents[1] / "infra"


def test_dcr_stream_declares_exactly_the_finding_record_fields():
    dcr = json.loads((INFRA / "dcr.json").read_text())
    props = dcr["properties"]
    assert dcr["kind"] == "Direct"
    columns = props["streamDeclarations"][DEFAULT_STREAM]["columns"]
    assert [(c["name"], c["type"]) for c in columns] == list(FINDING_COLUMNS.items())
    flow = props["dataFlows"][0]
    assert flow["streams"] == [DEFAULT_STREAM] and flow["outputStream"] == "Custom-ComplianceFindings_CL"


def test_log_analytics_table_has_the_same_columns():
    table = json.loads((INFRA / "findings-table.json").read_text())["properties"]["schema"]
    assert table["name"] == "ComplianceFindings_CL"
    assert [(c["name"], c["type"]) for c in table["columns"]] == list(FINDING_COLUMNS.items())
