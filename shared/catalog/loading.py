"""Loading controls: YAML files validated against the control schema, parameters resolved, rules
compiled, aliases resolved (local table, then the alias snapshot, then ARM). Reads files at load time only.
"""
from __future__ import annotations

import json
import logging
from pathlib import Path
from typing import Any, Callable, Iterable, Mapping

import jsonschema
import yaml

from ..domain.payloads import RuleReads, rule_reads
from ..domain.policy_states import POLICY_STATES_TYPE
from ..policy import (IF_NOT_EXISTS_EFFECTS, FieldResolver, RuleError, applicability_condition, compile_rule,
                      compile_value, is_expression, only_type_tests, parse_path, unescape_literal)
from .evaluation import Catalog
from .model import Control, OuterFields, RelatedCheck, RelatedSpec, outer_field_expressions

log = logging.getLogger(__name__)


BUILTIN_DIR = Path(__file__).resolve().parents[1] / "controls"
ALIASES_DIR = BUILTIN_DIR / "aliases"
SEVERITIES = ("Critical", "High", "Medium", "Low")
EFFECTS = ("Audit", "Deny", "AuditIfNotExists", "DeployIfNotExists", "Modify", "Append")

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
        # the Azure Policy effect a control was imported from: applicability then follows Azure's rules
        "effect": {"enum": list(EFFECTS)},
        "frameworks": {
            "type": "object", "additionalProperties": False,
            "properties": {
                "cis": {"type": "array", "items": {"type": "string"}},
                "mcsb": {"type": "array", "items": {"type": "string"}},
            },
        },
        "policyDefinitionId": {"type": "string", "pattern": (
            r"^(/subscriptions/[^/]+|/providers/Microsoft.Management/managementGroups/[^/]+)?"
            r"/providers/Microsoft.Authorization/policyDefinitions/[^/]+$")},
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
                "resourceGroupName": {"type": "string", "minLength": 1},
                "scope": {"enum": ["child", "extension", "resourceGroup", "subscription"]},
                "idsFrom": {"type": "string"},
                "mode": {"enum": ["anyMatches", "noneMatches", "azurePolicyState"]},
                "existenceCondition": {"type": "object"},
                "inline": {"type": "string", "minLength": 1},
                "description": {"type": "string"},
            },
        },
    },
}

_YAML_LOADER = getattr(yaml, "CSafeLoader", yaml.SafeLoader)  # libyaml when PyYAML has it: ~10x faster


def load_yaml(text: str) -> Any:
    """``yaml.safe_load`` semantics, with the C loader when available (catalog load is on the cold path)."""
    return yaml.load(text, Loader=_YAML_LOADER)  # noqa: S506 - a safe loader


class ControlLoadError(ValueError):
    """A control file that cannot be used; the message names the file and field."""


def load_aliases(directory: Path = ALIASES_DIR) -> dict[str, str]:
    """The local alias table: every ``*.yaml`` in ``directory`` maps alias names to JSON paths.

    An entry is ``alias: path`` or ``alias: {path: ..., reason: ...}``. The built-in table
    holds only what Azure's alias data lacks (each with its reason); everything else
    resolves from the alias snapshot (``shared/policy/aliases.py``).
    """
    merged: dict[str, str] = {}
    origin: dict[str, Path] = {}
    for path in sorted(Path(directory).glob("*.yaml")):
        try:
            data = load_yaml(path.read_text(encoding="utf-8")) or {}
        except (OSError, yaml.YAMLError) as exc:
            raise ControlLoadError(f"{path}: cannot read alias table: {exc}") from None
        if not isinstance(data, Mapping):
            raise ControlLoadError(f"{path}: an alias table must map alias names to JSON paths")
        for alias, entry in data.items():
            json_path = entry.get("path") if isinstance(entry, Mapping) else entry
            if not isinstance(alias, str) or not isinstance(json_path, str) or not json_path:
                raise ControlLoadError(f"{path}: alias {alias!r}: give a JSON path, or {{path: ..., reason: ...}}")
            if alias.lower() in origin:
                raise ControlLoadError(f"{path}: alias {alias!r} is already defined in {origin[alias.lower()]}")
            origin[alias.lower()] = path
            merged[alias] = json_path
    return merged


def alias_resolver(aliases: Mapping[str, str] | None = None,
                   alias_fallback: Callable[[str], str | None] | None = None,
                   alias_snapshot: Callable[[str], str | None] | None | bool = True) -> FieldResolver:
    """Field resolution as the catalog does it: local table -> alias snapshot -> fallback (ARM)."""
    from ..policy.aliases import AliasSnapshotError, chain, default_snapshot

    snapshot = default_snapshot() if alias_snapshot is True else None if alias_snapshot is False else alias_snapshot

    def from_snapshot(alias: str) -> str | None:
        try:
            return snapshot(alias) if snapshot is not None else None
        except AliasSnapshotError as exc:
            raise ControlLoadError(str(exc)) from None

    return FieldResolver(aliases if aliases is not None else load_aliases(), chain(from_snapshot, alias_fallback))


def _allowed(value: Any, allowed: list, ptype: Any) -> bool:
    """Azure's rule: a value is one of ``allowedValues``; an array parameter's value may also be a
    selection of them, element by element (strings compared case-insensitively, as Azure does)."""
    def same(a: Any, b: Any) -> bool:
        return a.lower() == b.lower() if isinstance(a, str) and isinstance(b, str) else a == b

    if any(same(value, option) for option in allowed):
        return True
    return str(ptype).lower() == "array" and isinstance(value, list) and all(
        any(same(v, option) for option in allowed) for v in value)


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
        if allowed is not None and not _allowed(value, allowed, spec.get("type")):
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
    effect = doc["effect"].lower() if "effect" in doc else None
    applicability = None
    condition = applicability_condition(doc["rule"], effect) if effect and effect not in IF_NOT_EXISTS_EFFECTS else None
    if condition is not None and only_type_tests(condition, params) == {t.lower() for t in doc["resourceTypes"]}:
        condition = None  # the type index decides it alone: no check per resource
    if condition is not None:
        try:
            applicability = compile_rule(condition, params, resolver)
        except RuleError as exc:
            raise ControlLoadError(f"{where}: field 'rule' (its applicability): {exc}") from None
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
        inline = None
        if "inline" in spec_doc:
            try:
                inline = parse_path(spec_doc["inline"])
            except RuleError as exc:
                raise ControlLoadError(f"{where}: field 'related/inline': {exc}") from None
            if existence is None or spec_doc.get("mode", "anyMatches") != "anyMatches":
                raise ControlLoadError(f"{where}: field 'related/inline' needs an existenceCondition "
                                       f"and mode anyMatches")
        if spec_doc.get("mode") == "azurePolicyState":
            if "policyDefinitionId" not in doc:
                raise ControlLoadError(f"{where}: field 'related/mode': azurePolicyState takes the verdict of the "
                                       f"control's policyDefinitionId, and the control has none")
            if spec_doc["type"].lower() != POLICY_STATES_TYPE.lower() or set(spec_doc) - {"type", "mode", "description"}:
                raise ControlLoadError(f"{where}: field 'related': mode azurePolicyState reads type "
                                       f"{POLICY_STATES_TYPE} and takes no name, scope or condition")
        outer = None
        expressions = outer_field_expressions(spec_doc.get("existenceCondition")) if effect else []
        if expressions:  # an Azure Policy definition: field() there reads the evaluated resource
            try:
                getters = tuple((text, compile_value(text, params, resolver)) for text in expressions)
            except RuleError as exc:
                raise ControlLoadError(f"{where}: field 'related/existenceCondition': {exc}") from None
            outer = OuterFields(spec_doc["existenceCondition"], getters,
                                lambda condition: compile_rule(condition, params, resolver))
        computed = {}
        for key in ("name", "resourceGroupName"):
            if is_expression(spec_doc.get(key)):
                try:
                    computed[key] = compile_value(spec_doc[key], params, resolver)
                except RuleError as exc:
                    raise ControlLoadError(f"{where}: field 'related/{key}': {exc}") from None
        literal = lambda key: None if key in computed else unescape_literal(spec_doc.get(key))  # noqa: E731
        related = RelatedCheck(RelatedSpec(spec_doc["type"], literal("name"), ids_from, spec_doc.get("idsFrom"),
                                           scope=spec_doc.get("scope"), resource_group=literal("resourceGroupName"),
                                           name_of=computed.get("name"), resource_group_of=computed.get("resourceGroupName")),
                               existence, spec_doc.get("mode", "anyMatches"),
                               inline, rule_reads(spec_doc.get("existenceCondition"), params, resolver),
                               doc.get("policyDefinitionId") if spec_doc.get("mode") == "azurePolicyState" else None,
                               outer)
    reads = rule_reads(doc["rule"], params, resolver)
    if related is not None and related.spec.ids_from is not None:
        reads = reads | RuleReads(paths=frozenset({related.spec.ids_from}))
    frameworks = {k: tuple(v) for k, v in (doc.get("frameworks") or {}).items()}
    return Control(
        id=doc["id"], title=doc["title"], severity=doc["severity"],
        resource_types=frozenset(t.lower() for t in doc["resourceTypes"]), rule=rule,
        description=doc.get("description", ""), mode=doc.get("mode", "All"), frameworks=frameworks,
        policy_definition_id=doc.get("policyDefinitionId"), remediation=doc.get("remediation") or {},
        parameters=params, source=source, related=related, reads=reads,
        uses_group="resourcegroup()" in json.dumps([doc["rule"], doc.get("related")]).lower(),
        uses_subscription="subscription()" in json.dumps([doc["rule"], doc.get("related")]).lower(),
        effect=effect, applicability=applicability,
    )


def _yaml_problem(exc: yaml.YAMLError) -> str:
    """A YAML error on one line: what is wrong and where (line and column, 1-based)."""
    mark = getattr(exc, "problem_mark", None)
    problem = getattr(exc, "problem", None) or str(exc)
    where = f" at line {mark.line + 1} column {mark.column + 1}" if mark is not None else ""
    return " ".join(f"{problem}{where}".split())


def _checked_control_files(directory: Path) -> list[Path]:
    """The control files of a CONTROLS_PATH folder, or an error that says what was given instead."""
    if directory.is_file():
        raise ControlLoadError(f"{directory}: is a file; give the folder that holds control files (*.yaml)")
    if not directory.is_dir():
        raise ControlLoadError(f"{directory}: control directory does not exist")
    files = control_files(directory)
    if not files and directory != BUILTIN_DIR:
        policies = [p for p in directory.rglob("*.json")][:1]
        if policies:
            raise ControlLoadError(f"{directory}: holds JSON ({policies[0].name}), not control files: for Azure "
                                   f"Policy definitions, run 'python -m shared import-policy {directory} --out DIR' "
                                   f"and give DIR")
        if any((directory / "templates").glob("*.yaml")):
            log.warning("%s: only templates (templates/*.yaml: definitions that need parameter values), no "
                        "controls yet; import them again with --parameters", directory)
            return files
        raise ControlLoadError(f"{directory}: no control files (*.yaml) in it")
    return files


def control_files(directory: Path) -> list[Path]:
    """Every control file below ``directory`` (sub-folders included), except alias tables and the
    ``templates/`` folder ``import-policy`` writes definitions that still need parameter values to."""
    return sorted(p for p in Path(directory).rglob("*.yaml")
                  if not {"aliases", "templates"} & set(p.relative_to(directory).parts[:-1]))


def load_catalog(directories: Iterable[Path] = (BUILTIN_DIR,), *, disabled: Iterable[str] = (),
                 parameters: Mapping[str, Mapping[str, Any]] | None = None,
                 aliases: Mapping[str, str] | None = None,
                 alias_fallback: Callable[[str], str | None] | None = None,
                 alias_snapshot: Callable[[str], str | None] | None | bool = True) -> Catalog:
    """Load and compile every control file in ``directories``.

    ``disabled`` lists control ids to leave out; ``parameters`` maps a control id
    to parameter overrides. Aliases resolve from the local table, then ``alias_snapshot``
    (default: the shipped snapshot of Azure's alias data; False: none), then
    ``alias_fallback`` (ARM provider metadata in Azure). Raises ``ControlLoadError``
    naming file and field.
    """
    resolver = alias_resolver(aliases, alias_fallback, alias_snapshot)
    parameters = parameters or {}
    disabled = set(disabled)
    controls: dict[str, Control] = {}
    for directory in directories:
        directory = Path(directory)
        files = _checked_control_files(directory)
        for path in files:
            try:
                doc = load_yaml(path.read_text(encoding="utf-8"))
            except yaml.YAMLError as exc:
                raise ControlLoadError(f"{path}: not valid YAML: {_yaml_problem(exc)}") from None
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
