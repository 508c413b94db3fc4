"""Every case in tests/control_cases/ gives the verdict it expects (see tests/control_cases.py)."""
from __future__ import annotations

import json

import pytest

from shared.catalog import load_catalog
from tests.control_cases import load_cases

CASES = load_cases()


@pytest.fixture(scope="module")
def catalog():
    return load_catalog()


@pytest.mark.parametrize("case", CASES, ids=[f"{c.control_id}: {c.name}" for c in CASES])
def test_case_verdict(catalog, case):
    results = {r.control_id: r for r in catalog.evaluate(case.resource)}
    if case.expect == "NotApplicable":
        assert case.control_id not in results, (case.source, results.get(case.control_id))
        return
    assert case.control_id in results, f"{case.source}: {case.control_id} does not apply to {case.resource.get('type')}"
    result = results[case.control_id]
    assert result.status.value == case.expect, (case.source, result.evidence, result.reason)
    if case.expect == "NonCompliant":
        assert result.evidence, f"{case.source}: a non-compliant verdict must carry evidence"
        if case.evidence:
            assert case.evidence in json.dumps(result.evidence, default=str), result.evidence
    elif case.expect == "NotEvaluated":
        assert result.reason


def test_every_case_names_a_builtin_control(catalog):
    known = {c.id for c in catalog.controls}
    assert {c.control_id for c in CASES} <= known
