"""Control test cases as data: ``tests/control_cases/**/<control-id>.yaml``.

A case file names one control and lists cases; each case starts from a resource
fixture (``tests/fixtures/resources/<name>.json``, a real ARM GET shape), changes
it, and says the verdict it expects::

    control: storage-https-only
    cases:
      - name: secure transfer required
        resource: storage-hardened
        expect: Compliant
      - name: plain HTTP allowed
        resource: storage-hardened
        set: {properties.supportsHttpsTrafficOnly: false}   # dotted paths; digits index lists
        expect: NonCompliant
        evidence: properties.supportsHttpsTrafficOnly       # optional: text the evidence must contain
      - name: property missing
        resource: storage-hardened
        unset: [properties.supportsHttpsTrafficOnly]
        expect: NonCompliant
      - name: no diagnostic settings
        resource: keyvault-hardened
        related: {Microsoft.Insights/diagnosticSettings: []}  # becomes resource["$related"]
        expect: NonCompliant

``expect`` is Compliant, NonCompliant, NotEvaluated, or NotApplicable (the control gives no result
for the resource: its mode or Azure's applicability rules leave it out).
"""
from __future__ import annotations

import copy
import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

HERE = Path(__file__).resolve().parent
CASES_DIR = HERE / "control_cases"
RESOURCES_DIR = HERE / "fixtures" / "resources"
VERDICTS = ("Compliant", "NonCompliant", "NotEvaluated", "NotApplicable")  # NotApplicable: no result at all


@dataclass(frozen=True)
class ControlCase:
    control_id: str
    name: str
    resource: dict
    expect: str
    evidence: str | None
    source: str


def _segments(path: str) -> list:
    return [int(p) if p.isdigit() else p for p in path.split(".")]


def _set(resource: dict, path: str, value: Any) -> None:
    *parents, last = _segments(path)
    node = resource
    for key in parents:
        node = node[key] if isinstance(key, int) else node.setdefault(key, {})
    node[last] = value


def _unset(resource: dict, path: str) -> None:
    *parents, last = _segments(path)
    node = resource
    for key in parents:
        node = node[key]
    if isinstance(last, int):
        del node[last]
    else:
        node.pop(last, None)


def load_fixture(name: str) -> dict:
    return json.loads((RESOURCES_DIR / f"{name}.json").read_text(encoding="utf-8"))


def load_cases() -> list[ControlCase]:
    cases = []
    for path in sorted(CASES_DIR.rglob("*.yaml")):
        doc = yaml.safe_load(path.read_text(encoding="utf-8"))
        where = path.relative_to(HERE)
        if not isinstance(doc, dict) or not isinstance(doc.get("control"), str) or not doc.get("cases"):
            raise ValueError(f"{where}: needs 'control' and a non-empty 'cases' list")
        for index, case in enumerate(doc["cases"]):
            if case.get("expect") not in VERDICTS:
                raise ValueError(f"{where}: cases[{index}]: 'expect' must be one of {VERDICTS}")
            resource = copy.deepcopy(case["resource"]) if isinstance(case.get("resource"), dict) \
                else load_fixture(case["resource"])
            for dotted, value in (case.get("set") or {}).items():
                _set(resource, dotted, value)
            for dotted in case.get("unset") or []:
                _unset(resource, dotted)
            if "related" in case:
                resource["$related"] = case["related"]
            cases.append(ControlCase(doc["control"], case.get("name") or f"case {index}", resource, case["expect"],
                                     case.get("evidence"), str(where)))
    return cases
