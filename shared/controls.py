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
from typing import Any, Iterable, Mapping

import jsonschema
import yaml

from .policy import CompiledRule, EvaluationError, FieldResolver, RuleError, compile_rule

BUILTIN_DIR = Path(__file__).with_name("controls")
ALIASES_FILE = BUILTIN_DIR / "aliases.yaml"
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
                    "type": {"enum": ["String", "Array", "Integer", "Boolean", "Object"]},
                    "defaultValue": {},
                    "allowedValues": {"type": "array"},
                    "description": {"type": "string"},
                },
            },
        },
        "rule": {"type": "object"},
    },
}


class ControlLoadError(ValueError):
    """A control file that cannot be used; the message names the file and field."""


class Status(str, Enum):
    COMPLIANT = "Compliant"
    NONCOMPLIANT = "NonCompliant"
    NOT_EVALUATED = "NotEvaluated"


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

    def evaluate(self, resource: Mapping[str, Any]) -> list[ControlResult]:
        """Evaluate every applicable control against one ARM resource object."""
        rtype = str(resource.get("type", ""))
        results = []
        for control in self._for_type(rtype) + [c for c in self._any if c.applies_to(resource)
                                                  and rtype.lower() not in c.resource_types]:
            try:
                matched, evidence = control.rule.evaluate(resource)
            except EvaluationError as exc:
                results.append(ControlResult(control.id, control.title, control.severity, Status.NOT_EVALUATED,
                                             [], f"rule failed on this resource: {exc}"))
                continue
            if matched:
                results.append(ControlResult(control.id, control.title, control.severity, Status.NONCOMPLIANT,
                                             [e for e in evidence if e.get("result") is not None]))
            else:
                results.append(ControlResult(control.id, control.title, control.severity, Status.COMPLIANT))
        return results


def load_aliases(path: Path = ALIASES_FILE) -> dict[str, str]:
    try:
        data = yaml.safe_load(path.read_text(encoding="utf-8"))
    except (OSError, yaml.YAMLError) as exc:
        raise ControlLoadError(f"{path}: cannot read alias table: {exc}") from None
    if not isinstance(data, Mapping) or not all(isinstance(k, str) and isinstance(v, str) for k, v in data.items()):
        raise ControlLoadError(f"{path}: the alias table must map alias names to JSON paths")
    return dict(data)


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
    frameworks = {k: tuple(v) for k, v in (doc.get("frameworks") or {}).items()}
    return Control(
        id=doc["id"], title=doc["title"], severity=doc["severity"],
        resource_types=frozenset(t.lower() for t in doc["resourceTypes"]), rule=rule,
        description=doc.get("description", ""), mode=doc.get("mode", "All"), frameworks=frameworks,
        policy_definition_id=doc.get("policyDefinitionId"), remediation=doc.get("remediation") or {},
        parameters=params, source=source,
    )


def control_files(directory: Path) -> list[Path]:
    return sorted(p for p in directory.glob("*.yaml") if p.name != ALIASES_FILE.name)


def load_catalog(directories: Iterable[Path] = (BUILTIN_DIR,), *, disabled: Iterable[str] = (),
                 parameters: Mapping[str, Mapping[str, Any]] | None = None,
                 aliases: Mapping[str, str] | None = None) -> Catalog:
    """Load and compile every control file in ``directories``.

    ``disabled`` lists control ids to leave out; ``parameters`` maps a control id
    to parameter overrides. Raises ``ControlLoadError`` naming file and field.
    """
    resolver = FieldResolver(aliases if aliases is not None else load_aliases())
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
