"""Evidence: the concrete paths and values that decided a verdict, as recorded by the evidence path.
Values are quoted at most ``_MAX_EVIDENCE_VALUE`` characters long, each object measured once per
evaluation. Pure.
"""
from __future__ import annotations

from typing import Any

from .operators import apply_operator
from .paths import MISSING, Context, KeyIndex, format_path


_MAX_EVIDENCE_VALUE = 2000


_SHORT_SCALARS = frozenset({bool, int, float, type(None)})  # a repr far below the limit
_SHORT_TEXT = _MAX_EVIDENCE_VALUE // 10 - 1  # a string at most this long has a short repr (10 per character at most)
_QUOTED = object()  # the key in a KeyIndex of {id: (object, as quoted)}: each quoted object measured once


def _evidence_value(value: Any, index: KeyIndex | None = None) -> Any:
    """``value`` as evidence quotes it: itself, or its repr cut short when that is longer than the limit.
    With the evaluation's ``index``, an object quoted again (a security rule that fails several NSG
    controls) is not measured again."""
    cls = value.__class__
    if cls in _SHORT_SCALARS or (cls is str and len(value) <= _SHORT_TEXT):
        return value
    if value is MISSING:
        return None
    if index is None or (cls is not dict and cls is not list):
        return _quoted(value)
    quoted = index.get(_QUOTED)
    if quoted is None:
        quoted = index[_QUOTED] = {}
    hit = quoted.get(id(value))
    if hit is None or hit[0] is not value:
        hit = quoted[id(value)] = (value, _quoted(value))  # the object is kept, so its id stays its own
    return hit[1]


def _quoted(value: Any) -> Any:
    text = repr(value)
    if len(text) > _MAX_EVIDENCE_VALUE:
        return text[:_MAX_EVIDENCE_VALUE] + "...(truncated)"
    return value


def _location_key(value: Any) -> Any:
    if isinstance(value, str):
        return value.replace(" ", "").lower()
    if isinstance(value, list):
        return [_location_key(v) for v in value]
    return value


def _check_value(ctx: Context, label: str, path: str, value: Any, op: str, op_name: str, expected: Any) -> bool:
    """One field's value against the operator, described as evidence."""
    result = apply_operator(op, value, expected)
    ctx.note(lambda: {"field": label, "path": path, "actual": _evidence_value(value, ctx.index),
                      "operator": op_name, "result": result})
    return result


def _check_pairs(ctx: Context, label: str, pairs: list[tuple[tuple, Any]], fanned: bool, op: str, op_name: str,
                 expected: Any) -> bool:
    if not fanned:
        path, value = pairs[0]
        return _check_value(ctx, label, format_path(path), value, op, op_name, expected)
    # [*] outside count: true only if it holds for every element (vacuously true for none)
    failing = [(p, v) for p, v in pairs if not apply_operator(op, v, expected)]
    result = not failing
    ctx.note(lambda: {"field": label, "actual": [
        {"path": format_path(p), "value": _evidence_value(v, ctx.index)} for p, v in pairs[:10]
    ], "operator": op_name, "result": result})
    return result
