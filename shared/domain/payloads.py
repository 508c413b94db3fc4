"""Resource Notifications payloads, trusted only as far as they go. Pure: no I/O.

A ``Microsoft.ResourceNotifications.Resources.CreatedOrUpdated`` event carries the
resource in ``data.resourceInfo`` (id, name, type, location, tags, properties) and
the API version of that shape in ``data.apiVersion``. Two things keep it from being
an ARM GET body of today's API version:

* **types**: Microsoft's documented example carries booleans as numbers
  (``"allowBlobPublicAccess": 1``, ``"requireInfrastructureEncryption": 0``).
  ``normalise`` turns 1/0 and "true"/"false" into booleans where the property is
  boolean (the controls compare it with true/false, or ``KNOWN_BOOLEANS`` says so);
  every other number stays a number. What was coerced is kept, with its raw value,
  so the evidence can show it.
* **coverage**: the payload has no ``identity``, ``kind`` or ``sku``, and an older
  ``apiVersion`` (the documented example has ``2019-06-01``) lacks properties added
  since. ``plan`` names, per control, the properties it reads that the payload lacks;
  such a control is not judged from the payload (the service re-reads the resource
  from ARM for it), because a property the payload does not carry is unknown, not
  "missing".
"""
from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any, Iterable, Mapping

from ..policy import WILDCARD, FieldResolver, RuleError, format_path, is_expression

# Top-level fields a CreatedOrUpdated payload always carries (``tags`` may be omitted when
# there are none, which is what an ARM GET does too): a control reading only these and
# ``properties`` can be judged from the payload.
PAYLOAD_FIELDS = frozenset({"id", "name", "type", "location", "tags"})

# Boolean properties that no control compares with true/false but that a payload is
# documented to carry as numbers (the storage example's encryption services). Per resource
# type, JSON paths in the ARM GET shape; '*' stands for any key or array index.
KNOWN_BOOLEANS: dict[str, tuple[str, ...]] = {
    "microsoft.storage/storageaccounts": (
        "properties.encryption.services.*.enabled",
        "properties.isHnsEnabled",
        "properties.isSftpEnabled",
        "properties.isLocalUserEnabled",
        "properties.isNfsV3Enabled",
    ),
}

_BOOLEAN_OPERATORS = ("equals", "notequals", "in", "notin")
_TAG_EXPRESSION = re.compile(r"^\[\s*concat\(\s*'tags[\[.]", re.IGNORECASE)


@dataclass(frozen=True)
class RuleReads:
    """What a rule reads from the resource it judges.

    ``paths`` are JSON paths (tuples, '*' for array elements); ``booleans`` the paths it
    compares with true or false; ``opaque`` is set when a field name is computed by an
    expression, so the paths are not all known.
    """

    paths: frozenset = frozenset()
    booleans: frozenset = frozenset()
    opaque: bool = False

    def __or__(self, other: "RuleReads") -> "RuleReads":
        return RuleReads(self.paths | other.paths, self.booleans | other.booleans, self.opaque or other.opaque)


def rule_reads(node: Any, parameters: Mapping[str, Any], resolver: FieldResolver, prefix: tuple = ()) -> RuleReads:
    """The paths a compiled-valid ``policyRule.if`` reads (call it after ``compile_rule`` accepted the rule).

    ``prefix`` is the array path a ``count.field`` binds, for the fields of its ``where``.
    """
    if isinstance(node, list):
        out = RuleReads()
        for item in node:
            out = out | rule_reads(item, parameters, resolver, prefix)
        return out
    if not isinstance(node, Mapping):
        return RuleReads()
    keys = {str(k).lower(): k for k in node}
    for group in ("allof", "anyof", "not"):
        if group in keys:
            return rule_reads(node[keys[group]], parameters, resolver, prefix)
    out = RuleReads()
    if "count" in keys and isinstance(node[keys["count"]], Mapping):
        count = node[keys["count"]]
        ckeys = {str(k).lower(): k for k in count}
        bound = prefix
        if "field" in ckeys:
            path = _resolve(count[ckeys["field"]], resolver)
            if path is None:
                return RuleReads(opaque=True)
            out = out | RuleReads(paths=frozenset({path}))
            bound = path
        elif "value" in ckeys:
            out = out | _value_reads(count[ckeys["value"]], resolver)
        if "where" in ckeys:
            out = out | rule_reads(count[ckeys["where"]], parameters, resolver, bound)
        return out
    if "field" in keys:
        raw = node[keys["field"]]
        path = _resolve(raw, resolver) if isinstance(raw, str) and not is_expression(raw) else None
        if path is None and isinstance(raw, str) and _TAG_EXPRESSION.match(raw):
            path = ("tags",)  # [concat('tags[', ...)]: a tag whose name is computed
        if path is None:
            return RuleReads(opaque=True)
        booleans = frozenset({path}) if _compares_with_boolean(node, keys, parameters) else frozenset()
        out = RuleReads(paths=frozenset({path}), booleans=booleans)
    elif "value" in keys:
        out = _value_reads(node[keys["value"]], resolver)
    for op in _BOOLEAN_OPERATORS:  # an operand may read fields too: [field('...')]
        if op in keys:
            out = out | _value_reads(node[keys[op]], resolver)
    return out


def _resolve(name: Any, resolver: FieldResolver) -> tuple | None:
    if not isinstance(name, str) or is_expression(name):
        return None
    try:
        return resolver.resolve(name)
    except RuleError:
        return None


def _value_reads(raw: Any, resolver: FieldResolver) -> RuleReads:
    """Fields named inside a template expression (``[field('alias')]``), when they are literal."""
    if not isinstance(raw, str) or not is_expression(raw) or "field(" not in raw.replace(" ", "").lower():
        return RuleReads()
    paths = set()
    for name in re.findall(r"field\(\s*'([^']*)'\s*\)", raw, re.IGNORECASE):
        path = _resolve(name, resolver)
        if path is None:
            return RuleReads(opaque=True)
        paths.add(path)
    return RuleReads(paths=frozenset(paths))


def _compares_with_boolean(node: Mapping, keys: Mapping[str, Any], parameters: Mapping[str, Any]) -> bool:
    for op in _BOOLEAN_OPERATORS:
        if op not in keys:
            continue
        expected = node[keys[op]]
        if isinstance(expected, str) and is_expression(expected):
            m = re.fullmatch(r"\[\s*parameters\(\s*'([^']*)'\s*\)\s*\]", expected.strip(), re.IGNORECASE)
            expected = parameters.get(m.group(1)) if m else None
        values = expected if isinstance(expected, list) else [expected]
        if any(isinstance(v, bool) for v in values):
            return True
    return False


# ----------------------------------------------------------------------------- typing


def _coerce(value: Any) -> tuple[bool, Any]:
    """(changed, typed value) for a value found at a boolean path."""
    if isinstance(value, bool):
        return False, value
    if isinstance(value, int) and value in (0, 1):
        return True, value == 1
    if isinstance(value, float) and value in (0.0, 1.0):
        return True, value == 1.0
    if isinstance(value, str) and value.strip().lower() in ("true", "false"):
        return True, value.strip().lower() == "true"
    return False, value  # any other number or text stays what it is


def _key(obj: Mapping, name: str) -> Any:
    if name in obj:
        return name
    lowered = name.lower()
    return next((k for k in obj if isinstance(k, str) and k.lower() == lowered), None)


def _retype(obj: Any, segments: tuple, done: tuple, coerced: dict[str, Any]) -> Any:
    """``obj`` with the values at ``segments`` coerced, copying only what changes."""
    if not segments:
        changed, typed = _coerce(obj)
        if changed:
            coerced[format_path(done)] = obj
            return typed
        return obj
    head, rest = segments[0], segments[1:]
    if head == WILDCARD:
        if isinstance(obj, list):
            items = [_retype(v, rest, done + (i,), coerced) for i, v in enumerate(obj)]
            return items if any(a is not b for a, b in zip(items, obj)) else obj
        if isinstance(obj, dict):
            new = {k: _retype(v, rest, done + (k,), coerced) for k, v in obj.items()}
            return new if any(new[k] is not obj[k] for k in obj) else obj
        return obj
    if isinstance(head, int):
        if isinstance(obj, list) and -len(obj) <= head < len(obj):
            item = _retype(obj[head], rest, done + (head,), coerced)
            if item is not obj[head]:
                copy = list(obj)
                copy[head] = item
                return copy
        return obj
    if not isinstance(obj, dict):
        return obj
    key = _key(obj, str(head))
    if key is None:
        return obj
    item = _retype(obj[key], rest, done + (key,), coerced)
    if item is obj[key]:
        return obj
    copy = dict(obj)
    copy[key] = item
    return copy


def normalise(payload: Mapping[str, Any], boolean_paths: Iterable[tuple]) -> tuple[Mapping[str, Any], dict[str, Any]]:
    """(typed payload, {concrete path: raw value}) with booleans made booleans at ``boolean_paths``.

    The input is never modified; only the containers on a coerced path are copied.
    """
    coerced: dict[str, Any] = {}
    typed: Any = payload
    for path in boolean_paths:
        typed = _retype(typed, tuple(path), (), coerced)
    return typed, coerced


# ----------------------------------------------------------------------------- coverage


def lacks(payload: Mapping[str, Any], path: tuple) -> bool:
    """Whether ``payload`` does not carry ``path`` at all (an explicit null counts as carried).

    Paths under the fields every payload carries (``PAYLOAD_FIELDS``) are never lacking:
    an absent tag is an absent tag. Only the part before the first '*' is checked: an
    array that is there is the whole array.
    """
    if not path or str(path[0]).lower() in PAYLOAD_FIELDS:
        return False
    node: Any = payload
    for segment in path:
        if segment == WILDCARD or node is None:
            return False
        if isinstance(segment, int):
            if not isinstance(node, list):
                return True
            if not -len(node) <= segment < len(node):
                return True
            node = node[segment]
            continue
        if not isinstance(node, dict):
            return True
        key = _key(node, str(segment))
        if key is None:
            return True
        node = node[key]
    return False


@dataclass(frozen=True)
class PayloadPlan:
    """How far one payload goes: the typed resource, what was coerced, and what it cannot judge."""

    resource: Mapping[str, Any]
    coerced: Mapping[str, Any] = field(default_factory=dict)  # concrete path -> raw value
    api_version: str | None = None
    missing: Mapping[str, tuple[str, ...]] = field(default_factory=dict)  # control id -> paths the payload lacks

    @property
    def complete(self) -> bool:
        return not self.missing

    def reason(self) -> str:
        """Why controls are re-read, for logs and NotEvaluated reasons."""
        paths = sorted({p for ps in self.missing.values() for p in ps})
        shown = ", ".join(paths[:6]) + (f" and {len(paths) - 6} more" if len(paths) > 6 else "")
        version = f" (apiVersion {self.api_version})" if self.api_version else ""
        return f"the Resource Notifications payload{version} does not carry {shown}"


_SHAPES: dict[tuple, tuple] = {}  # ids of a control list -> (the controls, boolean paths, reads per control)


def _shape(controls: list, extra_booleans: tuple) -> tuple[tuple, list]:
    """What a list of controls reads, worked out once per list (the value keeps the controls alive,
    so their ids cannot be reused while cached)."""
    key = (tuple(id(c) for c in controls), extra_booleans)
    cached = _SHAPES.get(key)
    if cached is None:
        booleans = set(extra_booleans)
        for control in controls:
            booleans |= control.reads.booleans
            related = getattr(control, "related", None)
            if related is not None and related.inline is not None:  # the inline form of a related setting
                booleans |= {related.inline + p[1:] for p in related.existence_reads.booleans
                             if p and str(p[0]).lower() == "properties"}
        reads = [(c.id, c.reads.opaque, tuple(sorted(c.reads.paths, key=repr))) for c in controls]
        if len(_SHAPES) > 1024:
            _SHAPES.clear()
        cached = _SHAPES[key] = (tuple(controls), tuple(sorted(booleans, key=repr)), reads)
    return cached[1], cached[2]


def plan(payload: Mapping[str, Any], controls: Iterable[Any], api_version: str | None = None,
         extra_booleans: Iterable[tuple] = ()) -> PayloadPlan:
    """Type ``payload`` and name, per control (anything with ``id`` and ``reads``), what it lacks."""
    booleans, reads = _shape(list(controls), tuple(extra_booleans))
    typed, coerced = normalise(payload, booleans)
    missing: dict[str, tuple[str, ...]] = {}
    absent: dict[tuple, bool] = {}  # controls share paths: each is looked up once
    for control_id, opaque, paths in reads:
        if opaque:
            missing[control_id] = ("a field computed by an expression",)
            continue
        lacking = []
        for path in paths:
            if path not in absent:
                absent[path] = lacks(typed, path)
            if absent[path]:
                lacking.append(format_path(path))
        if lacking:
            missing[control_id] = tuple(sorted(lacking))
    return PayloadPlan(typed, coerced, api_version, missing)


def annotate(evidence: list[dict], coerced: Mapping[str, Any]) -> list[dict]:
    """Evidence entries that name a coerced path get its raw payload value as ``raw``."""
    if not coerced:
        return evidence
    lowered = {k.lower(): v for k, v in coerced.items()}
    out = []
    for entry in evidence:
        if not isinstance(entry, dict):
            out.append(entry)
            continue
        path = entry.get("path")
        if isinstance(path, str) and path.lower() in lowered:
            entry = {**entry, "raw": lowered[path.lower()], "source": "Resource Notifications payload"}
        elif isinstance(entry.get("actual"), list) and "field" in entry:
            items = [{**i, "raw": lowered[i["path"].lower()]} if isinstance(i, dict) and isinstance(i.get("path"), str)
                     and i["path"].lower() in lowered else i for i in entry["actual"]]
            entry = {**entry, "actual": items}
        out.append(entry)
    return out
