"""Condition operators: ``OPERATORS`` (the test on a present value, the result on a missing one),
``apply_operator``, and ``fast_operator``, the same test with a constant operand prepared at load
time (``in`` lists as sets of normalised values, ``equals`` strings case-folded once). Pure.
"""
from __future__ import annotations

import math
from typing import Any, Callable

from .expressions import Expr, constant_of
from .paths import MISSING, EvaluationError, Frame
from .values import _as_bool, _cmp, _contains, _contains_key, _in, _like, _match, _number_text, values_equal


# operator -> (test on a present value, result on a missing value)
OPERATORS: dict[str, tuple[Callable[[Any, Any], bool], bool]] = {
    "equals": (values_equal, False),
    "notequals": (lambda a, b: not values_equal(a, b), True),
    "like": (_like, False),
    "notlike": (lambda a, b: not _like(a, b), True),
    "match": (lambda a, b: _match(a, b, False), False),
    "matchinsensitively": (lambda a, b: _match(a, b, True), False),
    "notmatch": (lambda a, b: not _match(a, b, False), True),
    "notmatchinsensitively": (lambda a, b: not _match(a, b, True), True),
    "contains": (_contains, False),
    "notcontains": (lambda a, b: not _contains(a, b), True),
    "in": (_in, False),
    "notin": (lambda a, b: not _in(a, b), True),
    "containskey": (_contains_key, False),
    "notcontainskey": (lambda a, b: not _contains_key(a, b), True),
    "less": (_cmp(lambda a, b: a < b), False),
    "lessorequals": (_cmp(lambda a, b: a <= b), False),
    "greater": (_cmp(lambda a, b: a > b), False),
    "greaterorequals": (_cmp(lambda a, b: a >= b), False),
}
OPERATOR_NAMES = {name.lower(): name for name in (
    "equals notEquals like notLike match matchInsensitively notMatch notMatchInsensitively contains "
    "notContains in notIn containsKey notContainsKey less lessOrEquals greater greaterOrEquals exists"
).split()}


def apply_operator(op: str, actual: Any, expected: Any) -> bool:
    if op == "exists":
        return (actual is not MISSING and actual is not None) == _as_bool(expected)
    test, on_missing = OPERATORS[op]
    if actual is MISSING or actual is None:
        if op in ("in", "notin"):
            _in(None, expected)  # still validate the operand
        return on_missing
    return test(actual, expected)


def _eq_key(value: Any) -> Any:
    """A hashable key with ``values_equal``'s equality for a scalar; None for arrays and objects."""
    if value.__class__ is str:
        return ("s", value.casefold())
    if isinstance(value, bool):
        return ("s", "true" if value else "false")
    if isinstance(value, (int, float)):
        return ("s", _number_text(value))  # a number equals its string form, as in values_equal
    if value is None:
        return ("z",)
    if isinstance(value, str):
        return ("s", value.casefold())
    return None


FastTest = Callable[[Any, Frame], bool]  # (actual, frame) -> the operator's verdict


def fast_operator(op: str, expected: Expr) -> FastTest:
    """``apply_operator(op, actual, expected(frame))``, with a constant operand prepared once at load
    time: ``in``/``notIn`` lists as sets of normalised values, ``equals`` strings case-folded once."""
    is_constant, value = constant_of(expected)
    if not is_constant:
        return lambda actual, f: apply_operator(op, actual, expected(f))
    general = lambda actual, f: apply_operator(op, actual, value)  # noqa: E731
    if op == "exists":
        try:
            want = _as_bool(value)
        except EvaluationError:
            return general  # fails when evaluated, as before
        return lambda actual, f: (actual is not MISSING and actual is not None) == want
    test, on_missing = OPERATORS[op]
    if op in ("in", "notin"):
        if not isinstance(value, list):
            return general
        keys = [_eq_key(v) for v in value]
        if any(k is None for k in keys):
            return general
        members, negate = frozenset(keys), op == "notin"

        def member(actual: Any, f: Frame) -> bool:
            if actual is MISSING or actual is None:
                return on_missing
            key = _eq_key(actual)
            if key is None:  # an array or object is equal to no scalar option
                return negate
            return (key in members) != negate

        return member
    if op in ("equals", "notequals") and value.__class__ is str:
        folded, negate = value.casefold(), op == "notequals"

        def equals(actual: Any, f: Frame) -> bool:
            if actual is MISSING or actual is None:
                return on_missing
            if actual.__class__ is str:
                return (actual == value or actual.casefold() == folded) != negate
            return test(actual, value)

        return equals
    return lambda actual, f: on_missing if actual is MISSING or actual is None else test(actual, value)


def _count_cutoff(op: str, expected: Expr) -> tuple[int, bool] | None:
    """(n, verdict) when every count of n or more gives the same verdict: counting can stop there."""
    is_constant, n = constant_of(expected)
    if not is_constant or isinstance(n, bool) or not isinstance(n, (int, float)):
        return None
    if op in ("greater", "lessorequals", "equals", "notequals"):
        cut = math.floor(n) + 1
    elif op in ("greaterorequals", "less"):
        cut = math.ceil(n)
    else:
        return None
    cut = max(cut, 0)
    return cut, apply_operator(op, cut, n)
