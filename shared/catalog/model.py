"""What a control is: its compiled rule, the resources it applies to, and the related resources it
reads (auditIfNotExists style). Pure.
"""
from __future__ import annotations

import dataclasses
import json
from dataclasses import dataclass, field
from typing import Any, Callable, Iterable, Mapping

from ..domain.payloads import RuleReads
from ..domain.policy_states import POLICY_STATES_TYPE
from ..policy import IF_NOT_EXISTS_EFFECTS, MISSING, CompiledRule, EvaluationError, RuleError, locate


CONTAINER_TYPES = frozenset({  # subscriptions and resource groups (a group's type is spelt both ways)
    "microsoft.resources/subscriptions", "microsoft.resources/subscriptions/resourcegroups",
    "microsoft.resources/resourcegroups"})


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
class OuterFields:
    """An existence condition whose template expressions call ``field()``. In Azure Policy those read
    the resource of the ``if`` (the evaluated resource), not the related one: "[field()] ... to check
    equivalence with values in the if condition" (auditIfNotExists, existenceCondition). They are
    computed on the evaluated resource, and the condition is compiled with their values in their
    place, once per distinct set of values (a bounded cache)."""

    condition: Any  # the existenceCondition as written
    expressions: tuple[tuple[str, Callable[[Mapping[str, Any]], Any]], ...]  # (text, value on the resource)
    compile: Callable[[Any], CompiledRule]  # the control's parameters and aliases bound
    cache: dict = field(default_factory=dict, compare=False, hash=False)

    LIMIT = 256

    def for_resource(self, resource: Mapping[str, Any]) -> CompiledRule:
        values = tuple(_literal(value(resource)) for _, value in self.expressions)
        key = json.dumps(values, default=str, sort_keys=True)
        compiled = self.cache.get(key)
        if compiled is None:
            if len(self.cache) >= self.LIMIT:
                self.cache.pop(next(iter(self.cache)))
            given = {text: value for (text, _), value in zip(self.expressions, values)}
            try:
                compiled = self.compile(_substitute(self.condition, given))
            except RuleError as exc:  # a value of the resource the condition cannot take: NotEvaluated
                raise EvaluationError(f"existenceCondition with this resource's field() values: {exc}") from None
            self.cache[key] = compiled
        return compiled


def _literal(value: Any) -> Any:
    """A value as a rule literal: a missing field is null; a string that looks like an expression is escaped."""
    if value is MISSING:
        return None
    return "[" + value if isinstance(value, str) and value.startswith("[") else value


def _substitute(node: Any, given: Mapping[str, Any]) -> Any:
    if isinstance(node, Mapping):
        return {k: _substitute(v, given) for k, v in node.items()}
    if isinstance(node, list):
        return [_substitute(v, given) for v in node]
    return given.get(node, node) if isinstance(node, str) else node


def outer_field_expressions(condition: Any) -> list[str]:
    """The template expressions (values, not keys) of ``condition`` that call ``field()``."""
    found: list[str] = []

    def walk(node: Any) -> None:
        if isinstance(node, Mapping):
            for value in node.values():
                walk(value)
        elif isinstance(node, list):
            for value in node:
                walk(value)
        elif isinstance(node, str) and node.startswith("[") and not node.startswith("[[") \
                and "field(" in node.replace(" ", "").lower() and node not in found:
            found.append(node)

    walk(condition)
    return found


@dataclass(frozen=True)
class RelatedCheck:
    """``anyMatches`` (auditIfNotExists): compliant when some related resource satisfies the condition.
    ``noneMatches``: non-compliant when any does (e.g. a firewall rule open to the whole Internet).
    ``azurePolicyState``: the verdict is Azure Policy's own for ``definition_id``, from the resource's
    ``Microsoft.PolicyInsights/policyStates`` (``shared.domain.policy_states``)."""

    spec: RelatedSpec
    existence: CompiledRule | None  # None: any related resource will do
    mode: str = "anyMatches"
    # Where the resource carries the related resource's ``properties`` inline (a site's
    # properties.siteConfig for config/web), and the paths the existence condition reads.
    inline: tuple | None = None
    existence_reads: RuleReads = RuleReads()
    definition_id: str | None = None  # azurePolicyState: whose verdict
    outer: OuterFields | None = None  # the existence condition's field() calls read the evaluated resource

    def existence_for(self, resource: Mapping[str, Any]) -> CompiledRule | None:
        """The existence condition to judge ``resource``'s related resources with."""
        return self.outer.for_resource(resource) if self.outer is not None else self.existence

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
    # The Azure Policy effect of an imported definition (lower case). With one, applicability is Azure's
    # (shared.policy.applicability): ``applicability`` decides beyond the type index, an IfNotExists
    # rule that does not match means not applicable, and Microsoft.Resources types other than resource
    # groups and subscriptions are not evaluated. None: a hand-written control (its resourceTypes decide).
    effect: str | None = None
    applicability: CompiledRule | None = None
    # A view of a control on a child type (networkSecurityGroups/securityRules) from its parent: events
    # on a child re-read the parent, so the control is judged on the parent's inline children.
    child_control: Control | None = None

    def parent_view(self, parent_type: str) -> Control:
        """This child-type control as judged on a parent of ``parent_type`` (lower case)."""
        return dataclasses.replace(self, resource_types=frozenset({parent_type}), mode="All", effect=None,
                                   applicability=None, reads=RuleReads(opaque=True), child_control=self)

    @property
    def child_types(self) -> frozenset[str]:
        """The types of this control that are children of another type (three segments or more)."""
        return frozenset(t for t in self.resource_types if t != "*" and t.count("/") >= 2)

    @property
    def if_not_exists(self) -> bool:
        """The whole rule decides applicability (auditIfNotExists, deployIfNotExists)."""
        return self.effect in IF_NOT_EXISTS_EFFECTS

    @property
    def checks_each_resource(self) -> bool:
        """Whether ``admits`` can refuse a resource of a type the control names."""
        return self.mode == "Indexed" or self.effect is not None

    def applies_to(self, resource: Mapping[str, Any]) -> bool:
        rtype = str(resource.get("type", "")).lower()
        if rtype not in self.resource_types and "*" not in self.resource_types:
            return False
        return not self.checks_each_resource or self.admits(resource)

    def admits(self, resource: Mapping[str, Any]) -> bool:
        """Whether the control applies to ``resource`` beyond its type (mode, applicability)."""
        rtype = str(resource.get("type", "")).lower()
        # "Indexed: only evaluate resource types that support tags and location" (definition structure
        # basics, mode); resource groups and subscriptions need mode All.
        if self.mode == "Indexed" and (not resource.get("location") or rtype in CONTAINER_TYPES):
            return False
        if self.effect is None:
            return True
        # "Azure Policy doesn't evaluate resources under the Microsoft.Resources resource provider (except
        # subscriptions and resource groups)" (policy applicability).
        if rtype.startswith("microsoft.resources/") and rtype not in CONTAINER_TYPES:
            return False
        if self.applicability is None:
            return True
        try:
            return self.applicability.matches(resource)
        except EvaluationError:
            return True  # the rule itself then says NotEvaluated, with its reason
