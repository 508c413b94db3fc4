"""Azure Policy assignments and exemptions as Azure documents them: which resources they reach. Pure.

An assignment (docs "Azure Policy assignment structure") reaches the resources at or below its
``scope``, except those at or below one of its ``notScopes``, and, where it has
``resourceSelectors``, only the resources one of them selects (every selector of that resource
selector true: ``resourceLocation``, ``resourceType``, ``resourceWithoutLocation``, with ``in`` or
``notIn``). ``overrides`` of kind ``policyEffect`` change the effect of the members their
``policyDefinitionReferenceId`` selectors name (all members without selectors); ``Disabled``
means not evaluated. ``enforcementMode: DoNotEnforce`` changes nothing here: compliance is still
reported. ``nonComplianceMessages`` give the message of a member (its reference id) or of all.

An exemption (docs "Azure Policy exemption structure") covers, until ``expiresOn``, the resources
at or below its scope for one assignment, optionally only some of its members
(``policyDefinitionReferenceIds``) and only the resources its ``resourceSelectors`` select.

Documents come as ARM returns them (``{"id", "name", "properties": {...}}``), as ``az policy
assignment list`` prints them (the properties at the top level) or as ARM template resources
(``{"type": "Microsoft.Authorization/policyAssignments", "properties": {...}}``, the shape the
Azure Landing Zones library writes). A document that is not one raises ``AssignmentError`` naming
it. Management-group scopes need the hierarchy, which ``reaches`` takes as ``ancestors``.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime, timezone
from typing import Any, Callable, Iterable, Mapping

ASSIGNMENT_TYPE = "microsoft.authorization/policyassignments"
EXEMPTION_TYPE = "microsoft.authorization/policyexemptions"
MANAGEMENT_GROUP_PREFIX = "/providers/microsoft.management/managementgroups/"
SELECTOR_KINDS = ("resourcelocation", "resourcetype", "resourcewithoutlocation")
# Management groups above a subscription (lower-case names), or None when the hierarchy is unknown.
Ancestors = Callable[[str], "frozenset[str] | None"]


class AssignmentError(ValueError):
    """A document that is not a usable assignment or exemption; the message names it and the problem."""


def _lower_get(mapping: Mapping[str, Any], key: str, default: Any = None) -> Any:
    return next((v for k, v in mapping.items() if str(k).lower() == key.lower()), default)


def _properties(doc: Mapping[str, Any]) -> Mapping[str, Any]:
    props = _lower_get(doc, "properties")
    return props if isinstance(props, Mapping) else doc


def _strings(value: Any, where: str) -> tuple[str, ...]:
    if value is None:
        return ()
    if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
        raise AssignmentError(f"{where} must be a list of strings")
    return tuple(value)


def _normal_location(value: Any) -> str:
    return "".join(str(value).split()).lower()


@dataclass(frozen=True)
class Selector:
    """One selector expression: ``kind`` (lower case) with ``in`` or ``notIn`` values."""

    kind: str
    values: tuple[str, ...]
    negated: bool  # notIn

    def selects(self, resource: Mapping[str, Any], reference_id: str | None = None) -> bool:
        if self.kind == "resourcelocation":
            location = resource.get("location")
            hit = bool(location) and _normal_location(location) in {_normal_location(v) for v in self.values}
        elif self.kind == "resourcetype":
            hit = str(resource.get("type", "")).lower() in {v.lower() for v in self.values}
        elif self.kind == "resourcewithoutlocation":  # the one value is subscriptionLevelResources
            hit = not resource.get("location") or _normal_location(resource.get("location")) == "global"
        else:  # policydefinitionreferenceid (overrides)
            hit = reference_id is not None and reference_id.lower() in {v.lower() for v in self.values}
        return hit != self.negated


def _selector(raw: Any, where: str, kinds: Iterable[str]) -> Selector:
    if not isinstance(raw, Mapping):
        raise AssignmentError(f"{where} must be an object")
    kind = str(_lower_get(raw, "kind", "")).lower()
    if kind not in kinds:
        raise AssignmentError(f"{where}: kind {_lower_get(raw, 'kind')!r} is not one of {', '.join(kinds)}")
    values_in, values_out = _lower_get(raw, "in"), _lower_get(raw, "notIn")
    if (values_in is None) == (values_out is None):
        raise AssignmentError(f"{where}: give exactly one of 'in' and 'notIn'")
    negated = values_in is None
    return Selector(kind, _strings(values_out if negated else values_in, f"{where}/{'notIn' if negated else 'in'}"),
                    negated)


def _resource_selectors(raw: Any, where: str) -> tuple[tuple[Selector, ...], ...]:
    if raw is None:
        return ()
    if not isinstance(raw, list):
        raise AssignmentError(f"{where}: resourceSelectors must be a list")
    groups = []
    for i, group in enumerate(raw):
        selectors = _lower_get(group, "selectors") if isinstance(group, Mapping) else None
        if not isinstance(selectors, list) or not selectors:
            raise AssignmentError(f"{where}: resourceSelectors[{i}] needs a non-empty 'selectors' list")
        groups.append(tuple(_selector(s, f"{where}: resourceSelectors[{i}].selectors[{j}]", SELECTOR_KINDS)
                            for j, s in enumerate(selectors)))
    return tuple(groups)


def _selected(groups: tuple[tuple[Selector, ...], ...], resource: Mapping[str, Any]) -> bool:
    """No resource selectors: every resource; else those that one resource selector selects in full."""
    return not groups or any(all(s.selects(resource) for s in group) for group in groups)


def within(resource_id: str, scope: str) -> bool:
    """Whether ``resource_id`` is ``scope`` or below it (ARM ids compare case-insensitively)."""
    rid, scope = resource_id.lower().rstrip("/"), scope.lower().rstrip("/")
    return not scope or rid == scope or rid.startswith(scope + "/")


def _subscription(resource_id: str) -> str | None:
    parts = resource_id.strip("/").split("/")
    return parts[1].lower() if len(parts) >= 2 and parts[0].lower() == "subscriptions" else None


def reaches_scope(resource_id: str, scope: str, ancestors: Ancestors | None = None) -> bool | None:
    """Whether ``scope`` contains the resource: True, False, or None when a management group's
    members are unknown (no ``ancestors``, or it does not know the subscription)."""
    lowered = scope.lower().rstrip("/")
    if lowered.startswith(MANAGEMENT_GROUP_PREFIX):
        group = lowered[len(MANAGEMENT_GROUP_PREFIX):].split("/", 1)[0]
        subscription = _subscription(resource_id)
        above = ancestors(subscription) if ancestors is not None and subscription else None
        return None if above is None else group in above
    return within(resource_id, scope)


@dataclass(frozen=True)
class Override:
    effect: str
    selectors: tuple[Selector, ...] = ()

    def applies(self, reference_id: str | None) -> bool:
        return all(s.selects({}, reference_id) for s in self.selectors)


@dataclass(frozen=True)
class Assignment:
    id: str
    name: str
    display_name: str
    policy_definition_id: str
    scope: str | None  # None: not given (an ARM template resource); it reaches every resource
    parameters: Mapping[str, Any] = field(default_factory=dict)  # name -> value
    not_scopes: tuple[str, ...] = ()
    enforcement_mode: str = "Default"
    overrides: tuple[Override, ...] = ()
    resource_selectors: tuple[tuple[Selector, ...], ...] = ()
    messages: Mapping[str | None, str] = field(default_factory=dict)  # reference id (lower) or None -> message
    definition_version: str | None = None
    origin: str = ""

    @property
    def is_set(self) -> bool:
        return "/policysetdefinitions/" in self.policy_definition_id.lower()

    def reaches(self, resource: Mapping[str, Any], ancestors: Ancestors | None = None) -> bool | None:
        """Whether the assignment evaluates ``resource``: scope, notScopes, resource selectors.
        None when that depends on a management group whose members are unknown."""
        rid = str(resource.get("id", ""))
        if any(reaches_scope(rid, s, ancestors) for s in self.not_scopes):
            return False
        if not _selected(self.resource_selectors, resource):
            return False
        return True if self.scope is None else reaches_scope(rid, self.scope, ancestors)

    def effect_for(self, reference_id: str | None) -> str | None:
        """The effect an override sets for this member (the last override that names it), else None."""
        chosen = None
        for override in self.overrides:
            if override.applies(reference_id):
                chosen = override.effect
        return chosen

    def message_for(self, reference_id: str | None) -> str | None:
        return self.messages.get(reference_id.lower() if reference_id else None) or self.messages.get(None)


def _kind_of(doc: Mapping[str, Any]) -> str:
    """The ARM type a document names, from ``type`` or its id."""
    declared = str(_lower_get(doc, "type", "") or "").lower()
    if declared:
        return declared
    rid = str(_lower_get(doc, "id", "") or "").lower()
    for kind in (ASSIGNMENT_TYPE, EXEMPTION_TYPE):
        if f"/providers/{kind}/" in rid:
            return kind
    return ""


def _scope_from_id(resource_id: str, kind: str) -> str | None:
    at = resource_id.lower().find(f"/providers/{kind}/")
    return resource_id[:at] or "/" if at >= 0 else None


def _head(doc: Any, origin: str, what: str, kind: str, key: str) -> tuple[Mapping[str, Any], str]:
    """(properties, the id the document must name) of an assignment or exemption document."""
    if not isinstance(doc, Mapping):
        raise AssignmentError(f"{origin}: {what} must be a JSON object, got {type(doc).__name__}")
    declared = _kind_of(doc)
    if declared and declared != kind:
        raise AssignmentError(f"{origin}: type {declared!r} is not {kind}")
    props = _properties(doc)
    named = _lower_get(props, key)
    if not isinstance(named, str) or not named:
        raise AssignmentError(f"{origin}: {what} needs properties.{key}")
    return props, named


def assignment_from_document(doc: Any, origin: str) -> Assignment:
    props, definition_id = _head(doc, origin, "an assignment", ASSIGNMENT_TYPE, "policyDefinitionId")
    rid = str(_lower_get(doc, "id", "") or "")
    name = str(_lower_get(doc, "name", "") or rid.rsplit("/", 1)[-1] or origin)
    scope = _lower_get(props, "scope")
    if not isinstance(scope, str) or not scope:
        scope = _scope_from_id(rid, ASSIGNMENT_TYPE) if rid else None
    params = _lower_get(props, "parameters") or {}
    if not isinstance(params, Mapping):
        raise AssignmentError(f"{origin}: properties.parameters must be an object")
    values = {}
    for pname, spec in params.items():
        if not isinstance(spec, Mapping) or "value" not in spec:
            raise AssignmentError(f"{origin}: parameter {pname!r} must be {{\"value\": ...}}")
        values[pname] = spec["value"]
    overrides = []
    for i, raw in enumerate(_lower_get(props, "overrides") or []):
        where = f"{origin}: overrides[{i}]"
        if not isinstance(raw, Mapping) or str(_lower_get(raw, "kind", "")).lower() != "policyeffect":
            raise AssignmentError(f"{where}: only kind policyEffect is defined")
        value = _lower_get(raw, "value")
        if not isinstance(value, str) or not value:
            raise AssignmentError(f"{where}: an override needs the effect as 'value'")
        selectors = tuple(_selector(s, f"{where}.selectors[{j}]", ("policydefinitionreferenceid",))
                          for j, s in enumerate(_lower_get(raw, "selectors") or []))
        overrides.append(Override(value, selectors))
    messages: dict[str | None, str] = {}
    for i, raw in enumerate(_lower_get(props, "nonComplianceMessages") or []):
        text = _lower_get(raw, "message") if isinstance(raw, Mapping) else None
        if not isinstance(text, str):
            raise AssignmentError(f"{origin}: nonComplianceMessages[{i}] needs a 'message'")
        ref = _lower_get(raw, "policyDefinitionReferenceId")
        messages[ref.lower() if isinstance(ref, str) and ref else None] = text
    return Assignment(
        id=rid or f"/providers/Microsoft.Authorization/policyAssignments/{name}", name=name,
        display_name=str(_lower_get(props, "displayName") or name), policy_definition_id=definition_id, scope=scope,
        parameters=values, not_scopes=_strings(_lower_get(props, "notScopes"), f"{origin}: notScopes"),
        enforcement_mode=str(_lower_get(props, "enforcementMode") or "Default"), overrides=tuple(overrides),
        resource_selectors=_resource_selectors(_lower_get(props, "resourceSelectors"), origin), messages=messages,
        definition_version=_lower_get(props, "definitionVersion"), origin=origin)


def documents(doc: Any) -> list[Any]:
    """The items of a list, an ARM page (``{"value": [...]}``) or one document."""
    if isinstance(doc, Mapping) and isinstance(_lower_get(doc, "value"), list):
        return list(_lower_get(doc, "value"))
    return list(doc) if isinstance(doc, list) else [doc]


def _each(doc: Any, origin: str, parse: Callable[[Any, str], Any]) -> list:
    """``parse`` of every document in ``doc``, each named ``origin[i]`` when there are several."""
    items = documents(doc)
    return [parse(item, f"{origin}[{i}]" if len(items) > 1 or isinstance(doc, list) else origin)
            for i, item in enumerate(items)]


def assignments_in(doc: Any, origin: str) -> list[Assignment]:
    return _each(doc, origin, assignment_from_document)


@dataclass(frozen=True)
class PolicyExemption:
    id: str
    scope: str
    assignment_id: str
    category: str  # Waiver | Mitigated
    reference_ids: tuple[str, ...] = ()  # lower case; empty: every member
    expires: datetime | None = None
    resource_selectors: tuple[tuple[Selector, ...], ...] = ()
    display_name: str = ""

    def covers(self, resource: Mapping[str, Any], assignment_id: str, reference_id: str | None,
               now: datetime) -> bool:
        if self.expires is not None and now >= self.expires:
            return False
        if self.assignment_id.lower() != assignment_id.lower():
            return False
        if self.reference_ids and (reference_id or "").lower() not in self.reference_ids:
            return False
        return within(str(resource.get("id", "")), self.scope) and _selected(self.resource_selectors, resource)


def _when(value: Any, where: str) -> datetime | None:
    if value in (None, ""):
        return None
    try:
        parsed = datetime.fromisoformat(str(value).replace("Z", "+00:00"))
    except ValueError:
        raise AssignmentError(f"{where}: expiresOn {value!r} is not an ISO-8601 time") from None
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=timezone.utc)


def exemption_from_document(doc: Any, origin: str) -> PolicyExemption:
    props, assignment_id = _head(doc, origin, "an exemption", EXEMPTION_TYPE, "policyAssignmentId")
    category = str(_lower_get(props, "exemptionCategory") or "")
    if category.lower() not in ("waiver", "mitigated"):
        raise AssignmentError(f"{origin}: exemptionCategory must be Waiver or Mitigated, got {category!r}")
    rid = str(_lower_get(doc, "id", "") or "")
    scope = _lower_get(props, "scope") or (_scope_from_id(rid, EXEMPTION_TYPE) if rid else None)
    if not isinstance(scope, str) or not scope:
        raise AssignmentError(f"{origin}: an exemption needs its id (or a scope) to know what it covers")
    return PolicyExemption(
        id=rid or f"{scope.rstrip('/')}/providers/Microsoft.Authorization/policyExemptions/{_lower_get(doc, 'name')}",
        scope=scope, assignment_id=assignment_id, category=category.capitalize(),
        reference_ids=tuple(r.lower() for r in _strings(_lower_get(props, "policyDefinitionReferenceIds"),
                                                       f"{origin}: policyDefinitionReferenceIds")),
        expires=_when(_lower_get(props, "expiresOn"), origin),
        resource_selectors=_resource_selectors(_lower_get(props, "resourceSelectors"), origin),
        display_name=str(_lower_get(props, "displayName") or ""))


def exemptions_in(doc: Any, origin: str) -> list[PolicyExemption]:
    return _each(doc, origin, exemption_from_document)


@dataclass(frozen=True)
class SubscriptionPolicy:
    """What ARM lists for one subscription: the assignments and exemptions that apply to it, the
    management groups above it (those their scopes name), and the documents that could not be read."""

    subscription_id: str
    assignments: tuple[Assignment, ...]
    exemptions: tuple[PolicyExemption, ...]
    management_groups: frozenset[str]
    problems: tuple[str, ...] = ()

    def ancestors(self, subscription_id: str) -> frozenset[str] | None:
        """``Ancestors`` for ``reaches``: known for this subscription only."""
        return self.management_groups if subscription_id.lower() == self.subscription_id.lower() else None


def subscription_policy(subscription_id: str, assignment_docs: Iterable[Any], exemption_docs: Iterable[Any]
                        ) -> SubscriptionPolicy:
    """Parse a subscription's listing; one unusable document is a problem named, never the end of the rest."""
    problems: list[str] = []
    where = f"subscription {subscription_id}"

    def usable(docs: Iterable[Any], parse: Callable[[Any, str], Any]) -> list:
        found = []
        for index, doc in enumerate(docs):
            try:
                found.append(parse(doc, f"{where}: {_name_of(doc, index)}"))
            except AssignmentError as exc:
                problems.append(str(exc))
        return found

    assignments = usable(assignment_docs, assignment_from_document)
    exemptions = usable(exemption_docs, exemption_from_document)
    groups = frozenset(
        scope.lower()[len(MANAGEMENT_GROUP_PREFIX):].split("/", 1)[0]
        for scope in [a.scope or "" for a in assignments] + [e.scope for e in exemptions]
        if scope.lower().startswith(MANAGEMENT_GROUP_PREFIX))
    return SubscriptionPolicy(subscription_id, tuple(assignments), tuple(exemptions), groups, tuple(problems))


def _name_of(doc: Any, index: int) -> str:
    rid = doc.get("id") if isinstance(doc, Mapping) else None
    return str(rid) if isinstance(rid, str) and rid else f"item {index}"
