"""Which resources a policy rule applies to, as Azure Policy decides it. Pure: rewrites JSON.

Azure's "What is applicability in Azure Policy?" (concepts/policy-applicability), Resource
Manager modes:

* ``auditIfNotExists`` and ``deployIfNotExists``: the whole ``if`` decides; where it is false
  the policy is not applicable (no compliance state at all, not Compliant);
* every other effect: only the ``type``, ``name`` and ``kind`` conditions of the ``if`` are
  evaluated; every other condition is taken as true (false under a ``not``, so that it is true
  where it stands). Where the result is true the policy applies;
* the special cases of that page: an ``if`` of only ``kind`` (or only ``name``) conditions
  applies to every resource; of only ``type`` and ``kind`` (or ``type`` and ``name``) conditions,
  only the ``type`` conditions count; with other conditions as well, ``type``, ``name`` and
  ``kind`` all count. One rule covers the whole table: without other conditions only ``type``
  conditions count. (The page lists no case of ``name`` and ``kind`` alone, or of all three
  alone; the one rule treats them alike.)

``applicability_condition`` returns the condition that decides applicability, to be compiled
like any rule (``None``: applies to every resource its mode admits). ``possible_types`` names
the types such a condition can be true for, so a catalog can index it by type (``None``: any
type). Mode (``Indexed``), excluded scopes and the like are the caller's.
"""
from __future__ import annotations

from typing import Any, Mapping

from .expressions import is_expression

IF_NOT_EXISTS_EFFECTS = frozenset({"auditifnotexists", "deployifnotexists"})
_LOGICAL = ("allof", "anyof", "not")
_TRUE = {"value": True, "equals": True}  # a condition that is always true
_FALSE = {"value": True, "equals": False}  # and one that is always false


def _lowered(node: Mapping[str, Any]) -> dict[str, Any]:
    return {str(k).lower(): v for k, v in node.items()}


def condition_kind(node: Any) -> str:
    """``type``, ``name`` or ``kind`` for a condition on that field, else ``other``."""
    if not isinstance(node, Mapping):
        return "other"
    field = _lowered(node).get("field")
    if isinstance(field, str) and field.lower() in ("type", "name", "kind"):
        return field.lower()
    return "other"


def _leaf_kinds(node: Any, found: set[str]) -> set[str]:
    if isinstance(node, Mapping):
        lowered = _lowered(node)
        logical = next((k for k in _LOGICAL if k in lowered), None)
        if logical == "not":
            return _leaf_kinds(lowered["not"], found)
        if logical is not None:
            for item in lowered[logical] if isinstance(lowered[logical], list) else []:
                _leaf_kinds(item, found)
            return found
    found.add(condition_kind(node))
    return found


def applicability_condition(condition: Any, effect: str) -> Any | None:
    """The condition a resource must meet for the rule to apply to it, or None for every resource."""
    if str(effect).lower() in IF_NOT_EXISTS_EFFECTS:
        return condition
    kinds = _leaf_kinds(condition, set())
    counted = {"type", "name", "kind"} if "other" in kinds else {"type"}
    if not kinds & counted:
        return None
    projected = _simplify(_project(condition, counted, negated=False))
    return None if projected is _TRUE else projected


def _simplify(node: Any) -> Any:
    """Fold the constants the rewrite left: allOf without its true members (false if one is false),
    anyOf without its false ones (true if one is true), not of a constant."""
    if not isinstance(node, Mapping) or len(node) != 1:
        return node
    (key, value), = node.items()
    if key == "not":
        inner = _simplify(value)
        return _FALSE if inner is _TRUE else _TRUE if inner is _FALSE else {"not": inner}
    if key in ("allOf", "anyOf") and isinstance(value, list):
        absorbing, neutral = (_FALSE, _TRUE) if key == "allOf" else (_TRUE, _FALSE)
        items = [_simplify(v) for v in value]
        if any(i is absorbing for i in items):
            return absorbing
        items = [i for i in items if i is not neutral]
        return neutral if not items else items[0] if len(items) == 1 else {key: items}
    return node


def only_type_tests(condition: Any, parameters: Mapping[str, Any] | None = None) -> frozenset[str] | None:
    """The types (lower case) when ``condition`` is nothing but ``type`` equals/in tests joined by
    ``anyOf``: then it holds exactly for those types, and a type index decides it alone. Else None."""
    if not isinstance(condition, Mapping):
        return None
    lowered = _lowered(condition)
    if isinstance(lowered.get("anyof"), list) and len(lowered) == 1:
        found = [only_type_tests(item, parameters) for item in lowered["anyof"]]
        return None if any(f is None for f in found) else frozenset().union(*found)
    if condition_kind(condition) != "type" or len(lowered) != 2:
        return None
    return possible_types(condition, parameters)


def _project(node: Any, counted: set[str], negated: bool) -> Any:
    if isinstance(node, Mapping):
        lowered = _lowered(node)
        if "not" in lowered:
            return {"not": _project(lowered["not"], counted, not negated)}
        for logical, name in (("allof", "allOf"), ("anyof", "anyOf")):
            if logical in lowered and isinstance(lowered[logical], list):
                return {name: [_project(item, counted, negated) for item in lowered[logical]]}
    if condition_kind(node) in counted:
        return node
    return _FALSE if negated else _TRUE


def possible_types(condition: Any, parameters: Mapping[str, Any] | None = None) -> frozenset[str] | None:
    """The resource types (lower case) ``condition`` can be true for, or None when it may be true for any.

    An over-approximation: ``field: type`` with ``equals`` or ``in`` (a literal, or a parameter whose
    value is given) names types; ``allOf`` intersects, ``anyOf`` unites; anything else, ``not``
    included, may be true for any type."""
    return _types(condition, {str(k).lower(): v for k, v in (parameters or {}).items()})


def _types(node: Any, params: Mapping[str, Any]) -> frozenset[str] | None:
    if not isinstance(node, Mapping):
        return None
    lowered = _lowered(node)
    if isinstance(lowered.get("allof"), list):
        known = [t for t in (_types(item, params) for item in lowered["allof"]) if t is not None]
        return frozenset.intersection(*known) if known else None
    if isinstance(lowered.get("anyof"), list):
        found = [_types(item, params) for item in lowered["anyof"]]
        return None if not found or any(t is None for t in found) else frozenset().union(*found)
    if condition_kind(node) != "type":
        return None
    for op in ("equals", "in"):
        if op not in lowered:
            continue
        value = _parameter_value(lowered[op], params)
        if op == "equals" and isinstance(value, str) and not is_expression(value):
            return frozenset({value.lower()})
        if op == "in" and isinstance(value, list) and all(isinstance(t, str) and not is_expression(t)
                                                             for t in value):
            return frozenset(t.lower() for t in value)
    return None


def _parameter_value(value: Any, params: Mapping[str, Any]) -> Any:
    """The value of ``[parameters('x')]`` where it is given; any other value unchanged."""
    if isinstance(value, str) and value.lower().startswith("[parameters('") and value.endswith("')]"):
        name = value[len("[parameters('"):-len("')]")].lower()
        return params.get(name, value)
    return value
