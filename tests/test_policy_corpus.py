"""Verdicts equal to Azure Policy's: a corpus of definition + resource + expected compliance.

Each file in ``tests/policy_corpus/`` holds cases taken from Microsoft Learn: the
definition (``policyRule.if`` and ``parameters``), the resource, the verdict the
documentation gives, and the URL of the section that defines it. A case runs
through the path a user's definition takes: ``control_from_definition`` (the
``import-policy`` conversion), a YAML round trip, ``control_from_document`` (the
catalog loader) and ``Catalog.evaluate``.

``expected`` is one of:

* ``NonCompliant`` - the ``if`` matches (an ``audit`` effect fires);
* ``Compliant`` - it does not;
* ``NotApplicable`` - Azure's applicability rules leave the resource out (no compliance state at
  all): a rule of only ``type`` conditions that are false for it (concepts/policy-applicability);
* ``Error`` - the docs say evaluation fails; the monitor reports NotEvaluated with the reason;
* ``Refused`` - the docs say Azure refuses the definition; the import or load fails naming it.

A case with ``requires: [functions]`` uses template functions the engine may not
support yet: while the compiler refuses them as unsupported the case is an
expected failure, and it runs for real as soon as they land.
"""
from __future__ import annotations

import json
import re
from functools import lru_cache
from pathlib import Path
from typing import Any

import pytest
import yaml

from shared.catalog import Catalog, ControlLoadError, Status, alias_resolver, control_from_document, load_aliases
from shared.policy import FieldResolver
from shared.policy.importing import PolicyImportError, control_from_definition

CORPUS = Path(__file__).with_name("policy_corpus")
OUTCOMES = {"Compliant", "NonCompliant", "NotApplicable", "Error", "Refused"}
DOC_URL = re.compile(r"^https://learn\.microsoft\.com/azure/[a-z0-9/-]+(#[a-z0-9-]+)?$")
# Microsoft's placeholder alias namespace in the docs' own examples (author-policies-for-arrays).
DOC_ALIAS_PREFIX = "microsoft.test/"


def _files() -> list[Path]:
    return sorted(CORPUS.glob("*.json"))


@lru_cache(maxsize=None)
def _corpus(name: str) -> dict[str, Any]:
    return json.loads((CORPUS / name).read_text(encoding="utf-8"))


def _cases() -> list[tuple[str, dict]]:
    return [(path.name, case) for path in _files() for case in _corpus(path.name)["cases"]]


@lru_cache(maxsize=None)
def _resolver(name: str) -> FieldResolver:
    """As the catalog resolves fields (local table, then Azure's alias snapshot), plus the file's aliases."""
    return alias_resolver({**load_aliases(), **_corpus(name).get("aliases", {})})


def _resource(name: str, case: dict) -> dict:
    resource = case["resource"]
    if isinstance(resource, str):
        resource = _corpus(name)["resources"][resource]
    return json.loads(json.dumps(resource))  # a fresh copy per case


def _definition(case: dict) -> dict:
    definition = case["definition"]
    rule = {"if": definition["if"], "then": {"effect": definition.get("effect", "audit")}}
    return {"name": case["id"], "properties": {
        "displayName": f"corpus case {case['id']}", "mode": definition.get("mode", "All"),
        "parameters": definition.get("parameters", {}), "policyRule": rule}}


def outcome(name: str, case: dict) -> tuple[str, str]:
    """(outcome, detail) of one case through import + load + evaluate."""
    source = f"{name}:{case['id']}"
    try:
        doc = control_from_definition(_definition(case), where=source, resolver=_resolver(name),
                                      values=case.get("values"))  # as import-policy -p name=value
        doc = yaml.safe_load(yaml.safe_dump(doc, sort_keys=False, allow_unicode=True))
        control = control_from_document(doc, source, _resolver(name))
    except (PolicyImportError, ControlLoadError) as exc:
        return "Refused", str(exc)
    results = Catalog([control]).evaluate(_resource(name, case))
    if not results:
        return "NotApplicable", "no result: the control does not apply to the resource"
    assert len(results) == 1, f"{source}: one control, {len(results)} results"
    result = results[0]
    if result.status is Status.NOT_EVALUATED:
        return "Error", result.reason or ""
    return result.status.value, json.dumps(result.evidence, default=str)[:600]


CASES = _cases()


@pytest.mark.parametrize("name, case", CASES, ids=[f"{n[:-5]}:{c['id']}" for n, c in CASES])
def test_verdict_equals_azure_policy(name, case):
    if case.get("xfail"):
        pytest.xfail(case["xfail"])
    got, detail = outcome(name, case)
    if case.get("requires") and got == "Refused" and "unsupported template function" in detail:
        pytest.xfail(f"function not yet supported: {', '.join(case['requires'])}")
    assert got == case["expected"], f"{case['doc']}\n{case.get('note', '')}\n{detail}"


# --------------------------------------------------------------------------- the corpus itself


def test_every_case_is_well_formed_and_cites_its_doc():
    ids = set()
    for name, case in CASES:
        where = f"{name}:{case.get('id')}"
        assert {"id", "doc", "definition", "resource", "expected"} <= set(case), where
        assert case["id"] not in ids, f"{where}: duplicate id"
        ids.add(case["id"])
        assert case["expected"] in OUTCOMES, where
        assert DOC_URL.match(case["doc"]), f"{where}: doc must be a Microsoft Learn URL, got {case['doc']!r}"
        assert isinstance(case["resource"], dict) or case["resource"] in _corpus(name)["resources"], where
    assert len(ids) >= 150


def _walk(node: Any):
    if isinstance(node, dict):
        yield node
        for value in node.values():
            yield from _walk(value)
    elif isinstance(node, list):
        for value in node:
            yield from _walk(value)


def _strings(node: Any):
    if isinstance(node, str):
        yield node
    elif isinstance(node, dict):
        for key, value in node.items():
            yield from _strings(value)
    elif isinstance(node, list):
        for value in node:
            yield from _strings(value)


DOCUMENTED_CONDITIONS = (
    "equals notEquals like notLike match matchInsensitively notMatch notMatchInsensitively contains notContains "
    "in notIn containsKey notContainsKey less lessOrEquals greater greaterOrEquals exists").split()


def test_every_documented_condition_has_a_matching_and_a_non_matching_case():
    seen: dict[str, set[str]] = {op.lower(): set() for op in DOCUMENTED_CONDITIONS}
    for _, case in CASES:
        for node in _walk(case["definition"]["if"]):
            for key in node:
                if key.lower() in seen and ("field" in node or "value" in node):
                    seen[key.lower()].add(case["expected"])
    missing = {op: got for op, got in seen.items() if not {"Compliant", "NonCompliant"} <= got}
    assert not missing, f"conditions without both verdicts in the corpus: {missing}"


def test_every_count_form_is_covered():
    forms = set()
    for _, case in CASES:
        rule = case["definition"]["if"]
        for node in _walk(rule):
            count = node.get("count")
            if not isinstance(count, dict):
                continue
            kind = "field" if "field" in count else "value"
            forms.add(f"{kind} count {'with' if 'where' in count else 'without'} where")
            if kind == "value":
                forms.add(f"value count {'with' if 'name' in count else 'without'} name")
            if any(isinstance(inner.get("count"), dict) for inner in _walk(count.get("where", {}))):
                forms.add(f"nested count in {kind} count")
        for text in _strings(rule):
            for arg in re.findall(r"current\(([^)]*)\)", text):
                forms.add("current()" if not arg else "current(alias)" if "/" in arg else "current(name)")
            if "count" in json.dumps(rule) and "field(" in text:
                forms.add("field() in a count")
    expected = {"field count with where", "field count without where", "value count with where",
                "value count without where", "value count with name", "value count without name",
                "nested count in field count", "nested count in value count",
                "current()", "current(alias)", "current(name)", "field() in a count"}
    assert expected <= forms, f"count forms missing from the corpus: {sorted(expected - forms)}"


# The template functions the engine supports; each needs at least one corpus case.
COVERED_FUNCTIONS = (
    "parameters field current if and or not concat toLower toUpper equals less lessOrEquals greater "
    "greaterOrEquals contains empty length split int string bool first last startsWith endsWith replace trim "
    "coalesce substring indexOf union createArray requestContext ipRangeContains "
    "resourceGroup subscription padLeft utcNow addDays tryGet").split()


def test_every_supported_template_function_is_covered():
    used = set()
    for _, case in CASES:
        for text in _strings(case["definition"]):
            if text.startswith("["):
                used.update(name.lower() for name in re.findall(r"([A-Za-z]\w*)\(", text))
    missing = sorted(f for f in COVERED_FUNCTIONS if f.lower() not in used)
    assert not missing, f"template functions without a corpus case: {missing}"


def test_real_aliases_in_the_corpus_exist_in_azure_with_that_path():
    """Aliases a file adds (beyond the docs' Microsoft.Test placeholders) are Azure's own, with Azure's path."""
    from shared.policy.aliases import default_snapshot

    checked = 0
    for path in _files():
        for alias, json_path in _corpus(path.name).get("aliases", {}).items():
            if alias.lower().startswith(DOC_ALIAS_PREFIX):
                continue
            known = default_snapshot().get(alias)
            assert known is not None and known.lower() == json_path.lower(), \
                f"{path.name}: alias {alias!r} -> {json_path!r}; Azure's alias data says {known!r}"
            checked += 1
    assert checked > 0
