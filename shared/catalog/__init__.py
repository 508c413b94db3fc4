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

from ..domain.redaction import redact
from ..domain.payloads import RuleReads, rule_reads
from ..domain.policy_states import POLICY_STATES_TYPE, verdict as policy_state_verdict
from ..policy import (MISSING, CompiledRule, EvaluationError, FieldResolver, RuleError, compile_rule, compile_value,
                     is_expression, locate, parse_path, unescape_literal)

BUILTIN_DIR = Path(__file__).resolve().parents[1] / "controls"
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


class Status(str, Enum):
    COMPLIANT = "Compliant"
    NONCOMPLIANT = "NonCompliant"
    NOT_EVALUATED = "NotEvaluated"
    EXEMPT = "Exempt"  # non-compliant, with an active exemption (an accepted risk)


class RelatedUnavailable(RuntimeError):
    """Related resources could not be had (offline, or unreadable); the control is NotEvaluated."""


EXTENSION_NAMESPACES = ("microsoft.insights/", "microsoft.authorization/", "microsoft.security/",
                        "microsoft.guestconfiguration/", "microsoft.policyinsights/", "microsoft.maintenance/",
                        "microsoft.resourcehealth/", "microsoft.advisor/", "microsoft.alertsmanagement/")


def related_scope(resource_types: Iterable[str], related_type: str) -> str:
    """Where Azure looks for an auditIfNotExists resource of ``related_type``: a child of the evaluated
    resource, an extension on it, or (any other type) the evaluated resource's resource group."""
    lowered = related_type.lower()
    if any(lowered.startswith(t.lower() + "/") for t in resource_types if t != "*"):
        return "child"
    if lowered.startswith(EXTENSION_NAMESPACES):
        return "extension"
    return "resourceGroup"


@dataclass(frozen=True)
class RelatedSpec:
    """Resources related to the evaluated one, in the style of auditIfNotExists ``details``.

    * ``scope`` child: a child type of the resource (``Microsoft.Storage/storageAccounts/blobServices``),
      fetched as ``{id}/blobServices[/{name}]``;
    * extension: an extension type (``Microsoft.Insights/diagnosticSettings``), fetched as
      ``{id}/providers/Microsoft.Insights/diagnosticSettings[/{name}]``;
    * resourceGroup: resources of the type in the resource's resource group (or ``resource_group``);
    * subscription: resources of the type anywhere in the subscription (``existenceScope``);
    * or, with ``ids_from``, the resources whose ids an alias of the resource lists.

    ``name_of`` / ``resource_group_of`` compute the name or resource group from the resource
    (``[field('name')]``, ``[parameters('x')]``...); ``resolve(resource)`` gives the concrete spec.
    """

    type: str
    name: str | None = None
    ids_from: tuple | None = None  # resolved alias path
    ids_from_alias: str | None = None
    scope: str | None = None  # None: child when the type is a child type, else extension
    resource_group: str | None = None
    name_of: Callable[[Mapping[str, Any]], Any] | None = field(default=None, compare=False, repr=False)
    resource_group_of: Callable[[Mapping[str, Any]], Any] | None = field(default=None, compare=False, repr=False)

    @property
    def key(self) -> str:
        """How offline input names this data: ``$related[key]``."""
        return f"{self.type}/{self.name}" if self.name else self.type

    @property
    def computed(self) -> bool:
        return self.name_of is not None or self.resource_group_of is not None

    def resolve(self, resource: Mapping[str, Any]) -> "RelatedSpec":
        """This spec with its computed name and resource group worked out for ``resource``."""
        if not self.computed:
            return self
        from dataclasses import replace

        def text(compute, what: str) -> str | None:
            value = compute(resource) if compute is not None else None
            if value is None or (isinstance(value, str) and not value):
                return None
            if not isinstance(value, str):
                raise EvaluationError(f"related {what} must be a string, got {value!r}")
            return value

        return replace(self, name=text(self.name_of, "name") or self.name,
                       resource_group=text(self.resource_group_of, "resource group") or self.resource_group,
                       name_of=None, resource_group_of=None)

    def referenced_ids(self, resource: Mapping[str, Any]) -> list[str]:
        values = [v for _, v in locate(resource, self.ids_from or ())]
        flat = [x for v in values for x in (v if isinstance(v, list) else [v])]
        return [x for x in flat if isinstance(x, str) and x]


@dataclass(frozen=True)
class RelatedCheck:
    """``anyMatches`` (auditIfNotExists): compliant when some related resource satisfies the condition.
    ``noneMatches``: non-compliant when any does (e.g. a firewall rule open to the whole Internet).
    ``azurePolicyState``: the verdict is Azure Policy's own for ``definition_id``, from the resource's
    ``Microsoft.PolicyInsights/policyStates`` (``shared.policy_states``)."""

    spec: RelatedSpec
    existence: CompiledRule | None  # None: any related resource will do
    mode: str = "anyMatches"
    # Where the resource carries the related resource's ``properties`` inline (a site's
    # properties.siteConfig for config/web), and the paths the existence condition reads.
    inline: tuple | None = None
    existence_reads: RuleReads = RuleReads()
    definition_id: str | None = None  # azurePolicyState: whose verdict

    def inline_item(self, resource: Mapping[str, Any]) -> dict | None:
        """The related resource built from the inline form, when it holds a non-null value for every
        path the existence condition reads; None means: read the related resource itself."""
        if self.inline is None or self.existence_reads.opaque or not self.existence_reads.paths:
            return None
        found = locate(resource, self.inline)[0][1]
        if not isinstance(found, Mapping):
            return None
        for path in self.existence_reads.paths:
            if not path or str(path[0]).lower() != "properties":
                return None
            cut = path.index("*") if "*" in path else len(path)
            value = locate(found, path[1:cut])[0][1]
            if value is None or value is MISSING:
                return None
        item_id = str(resource.get("id") or "")
        if self.spec.type.lower().startswith(str(resource.get("type", "")).lower() + "/") and self.spec.name:
            item_id = f"{item_id}/{self.spec.type.rsplit('/', 1)[-1]}/{self.spec.name}"
        return {"id": item_id, "name": self.spec.name, "type": self.spec.type, "properties": dict(found)}


RelatedSource = Callable[[Mapping[str, Any], RelatedSpec], list]


def offline_related(resource: Mapping[str, Any], spec: RelatedSpec) -> list:
    """Related data given with the resource itself: ``{"$related": {key: [...]}}``."""
    if spec.ids_from is not None and not spec.referenced_ids(resource):
        return []  # the resource references none: nothing to read
    given = resource.get("$related")
    if isinstance(given, Mapping) and spec.key in given:
        value = given[spec.key]
        return list(value) if isinstance(value, list) else [value] if value is not None else []
    if isinstance(given, Mapping) and spec.name and spec.type in given:  # a computed name: pick it from the type
        value = given[spec.type]
        items = list(value) if isinstance(value, list) else [value] if value is not None else []
        return [i for i in items if isinstance(i, Mapping)
                and str(i.get("name", "")).lower() in (spec.name.lower(), spec.name.rsplit("/", 1)[-1].lower())]
    if spec.type.lower() == POLICY_STATES_TYPE.lower():
        raise RelatedUnavailable(f"this control takes Azure Policy's verdict, and the resource's compliance states "
                                 f"are not available offline (give them as \"$related\": "
                                 f"{{\"{POLICY_STATES_TYPE}\": [...]}})")
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
    reads: RuleReads = RuleReads()  # what the rule (and related.idsFrom) reads from the resource itself
    uses_group: bool = False  # calls resourceGroup(): the service supplies the group's tags and location
    uses_subscription: bool = False  # calls subscription(): the service supplies the subscription's tags

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
        self._any_group = any(c.uses_group for c in self.controls)
        self._any_subscription = any(c.uses_subscription for c in self.controls)
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

    def uses_resource_group(self, resource: Mapping[str, Any]) -> bool:
        """Whether a control that applies to ``resource`` reads ``resourceGroup()`` (its tags, location...)."""
        return self._any_group and any(c.uses_group for c in self.applicable(resource))

    def uses_subscription(self, resource: Mapping[str, Any]) -> bool:
        """Whether a control that applies to ``resource`` reads ``subscription()`` (its tags...)."""
        return self._any_subscription and any(c.uses_subscription for c in self.applicable(resource))

    def delegates(self, resource_type: str, definition_id: str) -> bool:
        """Whether a control of ``resource_type`` takes Azure Policy's verdict for ``definition_id``."""
        from ..domain.policy_states import same_definition

        return any(c.related is not None and c.related.mode == "azurePolicyState"
                   and same_definition(c.related.definition_id, definition_id)
                   for c in self._for_type(resource_type) + self._any)

    def not_evaluated(self, resource_type: str, reason: str) -> list[ControlResult]:
        """A NotEvaluated result for each control of ``resource_type`` (the resource could not be read)."""
        return [ControlResult(c.id, c.title, c.severity, Status.NOT_EVALUATED, [], reason)
                for c in self._for_type(resource_type) + self._any]

    def applicable(self, resource: Mapping[str, Any]) -> list[Control]:
        """The controls that apply to ``resource``, in evaluation order."""
        rtype = str(resource.get("type", ""))
        return self._for_type(rtype) + [c for c in self._any if c.applies_to(resource)
                                        and rtype.lower() not in c.resource_types]

    def evaluate(self, resource: Mapping[str, Any], related: RelatedSource | None = None,
                 only: Callable[[Control], bool] | None = None) -> list[ControlResult]:
        """Evaluate every applicable control (or those ``only`` selects) against one ARM resource object.

        ``related(resource, spec)`` fetches related resources for auditIfNotExists-style
        controls; without it they come from ``resource["$related"]`` or are NotEvaluated.
        """
        fetch = related or offline_related
        cache: dict[str, list] = {}
        index: dict = {}  # case-insensitive name lookups, shared by the rules (none changes the resource)
        redacted: dict = {}  # the redacted copy of each resource object that evidence quotes, made once
        return [self._evaluate_one(control, resource, fetch, cache, index, redacted)
                for control in self.applicable(resource) if only is None or only(control)]

    @staticmethod
    def _evaluate_one(control: Control, resource: Mapping[str, Any], fetch: RelatedSource,
                      cache: dict[str, list], index: dict | None = None,
                      redacted: dict | None = None) -> ControlResult:
        try:  # the common case first: a compliant verdict from the fast path, nothing else built
            if not control.rule.matches(resource, index):
                return ControlResult(control.id, control.title, control.severity, Status.COMPLIANT)
        except EvaluationError:
            pass  # described below, with its reason

        def verdict(status: Status, evidence: list | None = None, reason: str | None = None) -> ControlResult:
            return ControlResult(control.id, control.title, control.severity, status,
                                 redact(evidence, memo=redacted) if evidence else [], reason)

        try:
            matched, evidence = control.rule.evaluate(resource, evidence=True, index=index)
        except EvaluationError as exc:
            return verdict(Status.NOT_EVALUATED, reason=f"rule failed on this resource: {exc}")
        if not matched:
            return verdict(Status.COMPLIANT)
        evidence = [e for e in evidence if e.get("result") is not None]
        if control.related is None:
            return verdict(Status.NONCOMPLIANT, evidence)
        inline = control.related.inline_item(resource) if control.related.mode == "anyMatches" else None
        if inline is not None:  # the setting is carried inline with a value: no related read
            return Catalog._inline_verdict(control, inline, evidence, verdict)
        try:
            spec = control.related.spec.resolve(resource)
        except EvaluationError as exc:
            return verdict(Status.NOT_EVALUATED, reason=f"related resource name failed on this resource: {exc}")
        if spec.key not in cache:  # one read per related spec, shared by the controls that need it
            try:
                cache[spec.key] = fetch(resource, spec)
            except RelatedUnavailable as exc:
                cache[spec.key] = exc
        items = cache[spec.key]
        if isinstance(items, RelatedUnavailable):
            return verdict(Status.NOT_EVALUATED, reason=str(items))
        if control.related.mode == "azurePolicyState":
            status, states, reason = policy_state_verdict(items, control.related.definition_id or "")
            return verdict(Status(status), states, reason)
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
    def _inline_verdict(control: Control, item: dict, evidence: list, verdict) -> ControlResult:
        where = ".".join(str(s) for s in control.related.inline)
        try:
            ok, item_evidence = control.related.existence.evaluate(item, evidence=True)
        except EvaluationError as exc:
            return verdict(Status.NOT_EVALUATED, reason=f"existenceCondition failed on {where}: {exc}")
        if ok:
            return verdict(Status.COMPLIANT)
        shown = []
        for entry in item_evidence:
            if entry.get("result") is not False:
                continue
            path = entry.get("path")
            if isinstance(path, str) and path.lower().startswith("properties"):
                entry = {**entry, "path": where + path[len("properties"):]}
            shown.append(entry)
        return verdict(Status.NONCOMPLIANT, evidence + shown[:5] + [{
            "related": control.related.spec.key, "inline": where,
            "reason": f"the inline setting ({where}) does not satisfy the existence condition"}])

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
    """The local alias table: every ``*.yaml`` in ``directory`` maps alias names to JSON paths.

    An entry is ``alias: path`` or ``alias: {path: ..., reason: ...}``. The built-in table
    holds only what Azure's alias data lacks (each with its reason); everything else
    resolves from the alias snapshot (``shared/aliases.py``).
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
                               doc.get("policyDefinitionId") if spec_doc.get("mode") == "azurePolicyState" else None)
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
    )


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
        if not directory.is_dir():
            raise ControlLoadError(f"{directory}: control directory does not exist")
        for path in control_files(directory):
            try:
                doc = load_yaml(path.read_text(encoding="utf-8"))
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
