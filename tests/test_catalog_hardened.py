"""No false alarms: a hardened resource of every covered type passes every control that applies.

Fixtures named ``tests/fixtures/resources/*-hardened*.json`` are real ARM GET
shapes configured the way a security engineer would; related resources
(diagnostic settings, child settings) ride along under ``"$related"``.
"""
from __future__ import annotations

import json
from pathlib import Path

import pytest

from shared.catalog import load_catalog

RESOURCES = Path(__file__).with_name("fixtures") / "resources"
HARDENED = sorted(RESOURCES.glob("*-hardened*.json"))


@pytest.fixture(scope="module")
def catalog():
    return load_catalog()


@pytest.mark.parametrize("path", HARDENED, ids=lambda p: p.stem)
def test_hardened_resource_passes_every_applicable_control(catalog, path):
    resource = json.loads(path.read_text(encoding="utf-8"))
    results = catalog.evaluate(resource)
    assert results, f"no control applies to {resource.get('type')}"
    failing = {r.control_id: (r.status.value, r.reason or r.evidence) for r in results if r.status.value != "Compliant"}
    assert failing == {}


def test_every_covered_type_has_a_hardened_fixture(catalog):
    covered = {t for c in catalog.controls for t in c.resource_types if t != "*"}
    fixtures = {json.loads(p.read_text(encoding="utf-8"))["type"].lower() for p in HARDENED}
    assert covered <= fixtures, sorted(covered - fixtures)
