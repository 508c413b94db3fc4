"""Controls as data: load YAML control files, compile their rules, evaluate resources.

A control file holds one control. Its ``rule`` is an Azure Policy
``policyRule.if`` condition that is true when the resource is NON-compliant
(the same sense as an ``audit`` or ``deny`` effect). Pure apart from reading the
files at load time.
"""
from __future__ import annotations

import json
from dataclasses import dataclass, field
from enum import Enum
from pathlib import Path
from typing import Any, Callable, Iterable, Mapping

import jsonschema
import yaml

from .redaction import redact
from .policy import CompiledRule, EvaluationError, FieldResolver, RuleError, compile_rule

BUILTIN_DIR = Path(__file__).with_name("controls")
ALIASES_DIR = BUILTIN_DIR / "aliases"
SEVERITIES = ("Critical", "High", "Medium", "Low")

CONTROL_SCHEMA: dict[str, Any] = {
    "type": "object",
    "additionalProperties": False,
    "required": ["id", "title", "severity", "resourceTypes", "rule"],
    "properties": {
        "id": {"type": "string", "pattern": "^[a-z0-9][a-z0-9-]{2,79}$"},
        "title": {"type": "string", "minLength": 5},
        "description": {"type": "string"},
        "severity": {"enum": list(SEVERITIES)},
        "resourceTypes": {
            "type": "array", "minItems": 1, "uniqueItems": True,
            "items": {"type": "string", "pattern": r"^(\*|[A-Za-z0-9.]+/[A-Za-z0-9/]+)$"},
        },
        "mode": {"enum": ["All", "Indexed"]},
        "frameworks": {
            "type": "object", "additionalProperties": False,
            "properties": {
                "cis": {"type": "array", "items": {"type": "string"}},
                "mcsb": {"type": "array", "items": {"type": "string"}},
            },
        },
        "policyDefinitionId": {"type": "string", "pattern": "^/providers/Microsoft.Authorization/policyDefinitions/"},
        "remediation": {
            "type": "object", "additionalProperties": False, "required": ["text"],
            "properties": {"text": {"type": "string"}, "az": {"type": "string"}, "bicep": {"type": "string"}},
        },
        "parameters": {
            "type": "object",
            "additionalProperties": {
                "type": "object", "additionalProperties": False, "required": ["type"],
                "properties": {
                    "type": {"enum": ["String", "Array", "Integer", "Boolean", "Object", "Float", "DateTime"]},
                    "defaultValue": {},
                    "allowedValues": {"type": "array"},
                    "description": {"type": "string"},
                },
            },
        },
        "rule": {"type": "object"},
        "related": {
            "type": "object", "additionalProperties": False, "required": ["type"],
            "properties": {
                "type": {"type": "string", "pattern": r"^[A-Za-z0-9.]+/[A-Za-z0-9/]+$"},
                "name": {"type": "string", "minLength": 1},
                "idsFrom": {"type": "string"},
                "mode": {"enum": ["anyMatches", "noneMatches"]},
                "existenceCondition": {"type": "object"},
                "description": {"type": "string"},
            },
        },
    },
}


class ControlLoadError(ValueError):
    """A control file that cannot be used; the message names the file and field."""


class Status(str, Enum):
    COMPLIANT = "Compliant"
    NONCOMPLIANT = "NonCompliant"
    NOT_EVALUATED = "NotEvaluated"
    EXEMPT = "Exempt"  # non-compliant, with an active exemption (an accepted risk)


class RelatedUnavailable(RuntimeError):
    """Related resources could not be had (offline, or unreadable); the control is NotEvaluated."""


@dataclass(frozen=True)
class RelatedSpec:
    """Resources related to the evaluated one, in the style of auditIfNotExists ``details``.

    * ``type`` a child type of the resource (``Microsoft.Storage/storageAccounts/blobServices``),
      fetched as ``{id}/blobServices[/{name}]``;
    * or an extension type (``Microsoft.Insights/diagnosticSettings``), fetched as
      ``{id}/providers/Microsoft.Insights/diagnosticSettings[/{name}]``;
    * or, with ``ids_from``, the resources whose ids an alias of the resource lists.
    """

    type: str
    name: str | None = None
    ids_from: tuple | None = None  # resolved alias path
    ids_from_alias: str | None = None

    @property
    def key(self) -> str:
        """How offline input names this data: ``$related[key]``."""
        return f"{self.type}/{self.name}" if self.name else self.type

    def referenced_ids(self, resource: Mapping[str, Any]) -> list[str]:
        from .policy import _walk

        values = [v for _, v in _walk(resource, self.ids_from or (), ())]
        flat = [x for v in values for x in (v if isinstance(v, list) else [v])]
        return [x for x in flat if isinstance(x, str) and x]


@dataclass(frozen=True)
class RelatedCheck:
    """``anyMatches`` (auditIfNotExists): compliant when some related resource satisfies the condition.
    ``noneMatches``: non-compliant when any does (e.g. a firewall rule open to the whole Internet)."""

    spec: RelatedSpec
    existence: CompiledRule | None  # None: any related resource will do
    mode: str = "anyMatches"


RelatedSource = Callable[[Mapping[str, Any], RelatedSpec], list]


def offline_related(resource: Mapping[str, Any], spec: RelatedSpec) -> list:
    """Related data given with the resource itself: ``{"$related": {key: [...]}}``."""
    if spec.ids_from is not None and not spec.referenced_ids(resource):
        return []  # the resource references none: nothing to read
    given = resource.get("$related")
    if isinstance(given, Mapping) and spec.key in given:
        value = given[spec.key]
        return list(value) if isinstance(value, list) else [value] if value is not None else []
    raise RelatedUnavailable(f"related resource data {spec.key!r} is not available offline "
                             f"(add it under \"$related\" to evaluate this control)")


@dataclass(frozen=True)
class Control:
    id: str
    title: str
    severity: str
    resource_types: frozenset[str]  # lower case; "*" for any
    rule: CompiledRule
    description: str = ""
    mode: str = "All"
    frameworks: Mapping[str, tuple[str, ...]] = field(default_factory=dict)
    policy_definition_id: str | None = None
    remediation: Mapping[str, str] = field(default_factory=dict)
    parameters: Mapping[str, Any] = field(default_factory=dict)
    source: str = ""
    related: RelatedCheck | None = None

    def applies_to(self, resource: Mapping[str, Any]) -> bool:
        rtype = str(resource.get("type", "")).lower()
        if rtype in self.resource_types:
            return True
        if "*" in self.resource_types:
            # Indexed mode: only resources that carry a location (and so tags), as in Azure Policy.
            return self.mode != "Indexed" or bool(resource.get("location"))
        return False


@dataclass(frozen=True)
class ControlResult:
    control_id: str
    title: str
    severity: str
    status: Status
    evidence: list[dict] = field(default_factory=list)
    reason: str | None = None


@dataclass
class Catalog:
    controls: list[Control]

    def __post_init__(self) -> None:
        self._by_type: dict[str, list[Control]] = {}
        self._any: list[Control] = [c for c in self.controls if "*" in c.resource_types]
        # control id -> (title, severity): describes controls that close on delete; built once, not per event
        self.titles: dict[str, tuple[str, str]] = {c.id: (c.title, c.severity) for c in self.controls}

    def by_id(self) -> dict[str, Control]:
        return {c.id: c for c in self.controls}

    def may_apply(self, resource_type: str) -> bool:
        """Whether any control could apply to a resource of this type."""
        return bool(self._any) or bool(self._for_type(resource_type))

    def _for_type(self, resource_type: str) -> list[Control]:
        key = resource_type.lower()
        if key not in self._by_type:
            self._by_type[key] = [c for c in self.controls if key in c.resource_types]
        return self._by_type[key]

    def not_evaluated(self, resource_type: str, reason: str) -> list[ControlResult]:
        """A NotEvaluated result for each control of ``resource_type`` (the resource could not be read)."""
        return [ControlResult(c.id, c.title, c.severity, Status.NOT_EVALUATED, [], reason)
                for c in self._for_type(resource_type) + self._any]

    def evaluate(self, resource: Mapping[str, Any], related: RelatedSource | None = None) -> list[ControlResult]:
        """Evaluate every applicable control against one ARM resource object.

        ``related(resource, spec)`` fetches related resources for auditIfNotExists-style
        controls; without it they come from ``resource["$related"]`` or are NotEvaluated.
        """
        rtype = str(resource.get("type", ""))
        fetch = related or offline_related
        cache: dict[str, list] = {}
        index: dict = {}  # case-insensitive name lookups, shared by the rules (none changes the resource)
        results = []
        for control in self._for_type(rtype) + [c for c in self._any if c.applies_to(resource)
                                                  and rtype.lower() not in c.resource_types]:
            results.append(self._evaluate_one(control, resource, fetch, cache, index))
        return results

    @staticmethod
    def _evaluate_one(control: Control, resource: Mapping[str, Any], fetch: RelatedSource,
                      cache: dict[str, list], index: dict | None = None) -> ControlResult:
        try:  # the common case first: a compliant verdict from the fast path, nothing else built
            if not control.rule.matches(resource, index):
                return ControlResult(control.id, control.title, control.severity, Status.COMPLIANT)
        except EvaluationError:
            pass  # described below, with its reason

        def verdict(status: Status, evidence: list | None = None, reason: str | None = None) -> ControlResult:
            return ControlResult(control.id, control.title, control.severity, status,
                                 redact(evidence) if evidence else [], reason)

        try:
            matched, evidence = control.rule.evaluate(resource, evidence=True)
        except EvaluationError as exc:
            return verdict(Status.NOT_EVALUATED, reason=f"rule failed on this resource: {exc}")
        if not matched:
            return verdict(Status.COMPLIANT)
        evidence = [e for e in evidence if e.get("result") is not None]
        if control.related is None:
            return verdict(Status.NONCOMPLIANT, evidence)
        spec = control.related.spec
        if spec.key not in cache:  # one read per related spec, shared by the controls that need it
            try:
                cache[spec.key] = fetch(resource, spec)
            except RelatedUnavailable as exc:
                cache[spec.key] = exc
        items = cache[spec.key]
        if isinstance(items, RelatedUnavailable):
            return verdict(Status.NOT_EVALUATED, reason=str(items))
        if control.related.mode == "noneMatches":
            return Catalog._none_may_match(control, items, evidence, verdict)
        checked = []
        for item in items:
            if control.related.existence is None:
                return verdict(Status.COMPLIANT)
            try:
                ok, item_evidence = control.related.existence.evaluate(item, evidence=True)
            except EvaluationError as exc:
                return verdict(Status.NOT_EVALUATED, reason=f"existenceCondition failed on {item.get('id')}: {exc}")
            if ok:
                return verdict(Status.COMPLIANT)
            checked.append({"id": item.get("id") or item.get("name"),
                            "evidence": [e for e in item_evidence if e.get("result") is False][:5]})
        summary = {"related": spec.key, "found": len(items),
                   "reason": "none exists" if not items else "none satisfies the existence condition",
                   "checked": checked[:10]}
        return verdict(Status.NONCOMPLIANT, evidence + [summary])

    @staticmethod
    def _none_may_match(control: Control, items: list, evidence: list, verdict) -> ControlResult:
        offending = []
        for item in items:
            if control.related.existence is None:
                offending.append({"id": item.get("id") or item.get("name"), "evidence": []})
                continue
            try:
                hit, item_evidence = control.related.existence.evaluate(item)
            except EvaluationError as exc:
                return verdict(Status.NOT_EVALUATED, reason=f"condition failed on {item.get('id')}: {exc}")
            if hit:
                offending.append({"id": item.get("id") or item.get("name"), "evidence": item_evidence[:5]})
        if not offending:
            return verdict(Status.COMPLIANT)
        return verdict(Status.NONCOMPLIANT, evidence + [{
            "related": control.related.spec.key, "found": len(items),
            "reason": f"{len(offending)} related resource(s) match the condition", "matching": offending[:10]}])

    def related_specs(self) -> list[RelatedSpec]:
        return list({c.related.spec.key: c.related.spec for c in self.controls if c.related}.values())


def load_aliases(directory: Path = ALIASES_DIR) -> dict[str, str]:
    """The alias table: every ``*.yaml`` in ``directory`` maps alias names to JSON paths."""
    merged: dict[str, str] = {}
    origin: dict[str, Path] = {}
    for path in sorted(Path(directory).glob("*.yaml")):
        try:
            data = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
        except (OSError, yaml.YAMLError) as exc:
            raise ControlLoadError(f"{path}: cannot read alias table: {exc}") from None
        if not isinstance(data, Mapping) or not all(isinstance(k, str) and isinstance(v, str) for k, v in data.items()):
            raise ControlLoadError(f"{path}: an alias table must map alias names to JSON paths")
        for alias, json_path in data.items():
            if alias.lower() in origin:
                raise ControlLoadError(f"{path}: alias {alias!r} is already defined in {origin[alias.lower()]}")
            origin[alias.lower()] = path
            merged[alias] = json_path
    return merged


def _parameter_values(doc: Mapping[str, Any], overrides: Mapping[str, Any], where: str) -> dict[str, Any]:
    values = {}
    declared = doc.get("parameters") or {}
    for name, spec in declared.items():
        if name in overrides:
            value = overrides[name]
        elif "defaultValue" in spec:
            value = spec["defaultValue"]
        else:
            raise ControlLoadError(f"{where}: parameter '{name}' has no defaultValue and no override")
        allowed = spec.get("allowedValues")
        if allowed is not None and value not in allowed:
            raise ControlLoadError(f"{where}: parameter '{name}' value {value!r} is not one of {allowed}")
        values[name] = value
    unknown = set(overrides) - set(declared)
    if unknown:
        raise ControlLoadError(f"{where}: override names unknown parameter(s) {sorted(unknown)}")
    return values


def control_from_document(doc: Any, source: str, resolver: FieldResolver,
                          overrides: Mapping[str, Any] | None = None) -> Control:
    validator = jsonschema.Draft202012Validator(CONTROL_SCHEMA)
    errors = sorted(validator.iter_errors(doc), key=lambda e: list(e.absolute_path))
    if errors:
        first = errors[0]
        location = "/".join(str(p) for p in first.absolute_path) or "(top level)"
        cid = doc.get("id", "?") if isinstance(doc, Mapping) else "?"
        raise ControlLoadError(f"{source}: control {cid}: field '{location}': {first.message}")
    where = f"{source}: control {doc['id']}"
    params = _parameter_values(doc, overrides or {}, where)
    try:
        rule = compile_rule(doc["rule"], params, resolver)
    except RuleError as exc:
        raise ControlLoadError(f"{where}: field 'rule': {exc}") from None
    related = None
    if "related" in doc:
        spec_doc = doc["related"]
        try:
            existence = compile_rule(spec_doc["existenceCondition"], params, resolver) \
                if "existenceCondition" in spec_doc else None
        except RuleError as exc:
            raise ControlLoadError(f"{where}: field 'related/existenceCondition': {exc}") from None
        ids_from = None
        if "idsFrom" in spec_doc:
            try:
                ids_from = resolver.resolve(spec_doc["idsFrom"])
            except RuleError as exc:
                raise ControlLoadError(f"{where}: field 'related/idsFrom': {exc}") from None
        related = RelatedCheck(RelatedSpec(spec_doc["type"], spec_doc.get("name"), ids_from,
                                           spec_doc.get("idsFrom")), existence, spec_doc.get("mode", "anyMatches"))
    frameworks = {k: tuple(v) for k, v in (doc.get("frameworks") or {}).items()}
    return Control(
        id=doc["id"], title=doc["title"], severity=doc["severity"],
        resource_types=frozenset(t.lower() for t in doc["resourceTypes"]), rule=rule,
        description=doc.get("description", ""), mode=doc.get("mode", "All"), frameworks=frameworks,
        policy_definition_id=doc.get("policyDefinitionId"), remediation=doc.get("remediation") or {},
        parameters=params, source=source, related=related,
    )


def control_files(directory: Path) -> list[Path]:
    """Every control file below ``directory`` (sub-folders included), except alias tables."""
    return sorted(p for p in Path(directory).rglob("*.yaml") if "aliases" not in p.relative_to(directory).parts[:-1])


def load_catalog(directories: Iterable[Path] = (BUILTIN_DIR,), *, disabled: Iterable[str] = (),
                 parameters: Mapping[str, Mapping[str, Any]] | None = None,
                 aliases: Mapping[str, str] | None = None,
                 alias_fallback: Callable[[str], str | None] | None = None) -> Catalog:
    """Load and compile every control file in ``directories``.

    ``disabled`` lists control ids to leave out; ``parameters`` maps a control id
    to parameter overrides; ``alias_fallback`` resolves aliases the table lacks
    (from ARM provider metadata in Azure). Raises ``ControlLoadError`` naming file and field.
    """
    resolver = FieldResolver(aliases if aliases is not None else load_aliases(), alias_fallback)
    parameters = parameters or {}
    disabled = set(disabled)
    controls: dict[str, Control] = {}
    for directory in directories:
        directory = Path(directory)
        if not directory.is_dir():
            raise ControlLoadError(f"{directory}: control directory does not exist")
        for path in control_files(directory):
            try:
                doc = yaml.safe_load(path.read_text(encoding="utf-8"))
            except yaml.YAMLError as exc:
                raise ControlLoadError(f"{path}: not valid YAML: {exc}") from None
            if not isinstance(doc, Mapping):
                raise ControlLoadError(f"{path}: a control file must hold one YAML mapping")
            cid = doc.get("id")
            control = control_from_document(doc, str(path), resolver,
                                            parameters.get(cid) if isinstance(cid, str) else None)
            if control.id in controls:
                raise ControlLoadError(
                    f"{path}: control id '{control.id}' is already defined in {controls[control.id].source}")
            controls[control.id] = control
    unknown = (disabled | set(parameters)) - set(controls)
    if unknown:
        raise ControlLoadError(f"configuration names unknown control id(s): {sorted(unknown)}")
    return Catalog([c for cid, c in sorted(controls.items()) if cid not in disabled])


def results_as_json(resource_id: str, results: list[ControlResult]) -> list[dict]:
    return [
        {"resourceId": resource_id, "controlId": r.control_id, "title": r.title, "severity": r.severity,
         "status": r.status.value, "evidence": r.evidence, **({"reason": r.reason} if r.reason else {})}
        for r in results
    ]


def evidence_json(evidence: list[dict], limit: int = 8000) -> str:
    text = json.dumps(evidence, default=str, separators=(",", ":"))
    return text if len(text) <= limit else text[: limit - 14] + '..."truncated"'
