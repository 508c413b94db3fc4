"""Value semantics of the rule language: equality, ordering, ``like``/``match``, ``contains``, ``in``. Pure.

Strings compare case-insensitively (``match`` is the exception), a number equals its string form,
ordering values of different types is an evaluation error, and dates compare as dates.
"""
from __future__ import annotations

import re
from datetime import datetime, timezone
from typing import Any, Callable

from .paths import MISSING, EvaluationError


def _norm_scalar(v: Any) -> Any:
    if isinstance(v, bool):
        return "true" if v else "false"
    if isinstance(v, str):
        return v.casefold()
    return v


def values_equal(a: Any, b: Any) -> bool:
    if a.__class__ is str and b.__class__ is str:  # the common case, first
        return a == b or a.casefold() == b.casefold()
    if a is MISSING or b is MISSING:
        return False
    if isinstance(a, dict) and isinstance(b, dict):
        if len(a) != len(b):
            return False
        bl = {str(k).lower(): v for k, v in b.items()}
        return all(str(k).lower() in bl and values_equal(v, bl[str(k).lower()]) for k, v in a.items())
    if isinstance(a, list) and isinstance(b, list):
        return len(a) == len(b) and all(values_equal(x, y) for x, y in zip(a, b))
    if isinstance(a, (dict, list)) or isinstance(b, (dict, list)):
        return False
    if _is_number(a) and _is_number(b):
        return a == b
    if _is_number(a) and isinstance(b, str) or _is_number(b) and isinstance(a, str):
        # a number equals its string form: Azure compares a parameter's 22 with ARM's "22"
        return _number_text(a if _is_number(a) else b) == (b if _is_number(a) else a).strip()
    return _norm_scalar(a) == _norm_scalar(b)


def _is_number(v: Any) -> bool:
    return isinstance(v, (int, float)) and not isinstance(v, bool)


def _number_text(v: int | float) -> str:
    return str(int(v)) if isinstance(v, float) and v.is_integer() else str(v)


def _ordered(a: Any, b: Any) -> tuple[Any, Any] | None:
    num = lambda v: isinstance(v, (int, float)) and not isinstance(v, bool)  # noqa: E731
    if num(a) and num(b):
        return a, b
    if isinstance(a, str) and isinstance(b, str):
        for conv in (_as_datetime,):
            x, y = conv(a), conv(b)
            if x is not None and y is not None:
                return x, y
        return a.casefold(), b.casefold()
    return None


def _as_datetime(text: str) -> datetime | None:
    if len(text) < 10 or not text[:4].isdigit() or text[4] != "-":
        return None
    try:
        parsed = datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError:
        return None
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=timezone.utc)


def _fold(text: str) -> str:
    """Case-folded one character for one (so positions agree with the original text)."""
    lowered = text.lower()
    if len(lowered) == len(text):
        return lowered
    return "".join(low if len(low := ch.lower()) == 1 else ch for ch in text)


def _like(value: Any, pattern: Any) -> bool:
    """Azure Policy ``like``: ``*`` matches any run of characters (none included), everything else itself,
    case-insensitively, over the whole value. Several wildcards are allowed.

    Linear, never backtracking: the text before the first ``*`` must start the value, the text after the
    last must end it, and each piece in between is found leftmost after the previous one (taking the
    earliest match never loses one, so there is nothing to undo). A tag value chosen by a resource's
    owner therefore cannot make an evaluation hang.
    """
    if not isinstance(value, str) or not isinstance(pattern, str):
        return False
    text, pieces = _fold(value), _fold(pattern).split("*")
    if len(pieces) == 1:
        return text == pieces[0]
    first, *middle, last = pieces
    if len(first) + len(last) > len(text) or not text.startswith(first) or not text.endswith(last):
        return False
    position, end = len(first), len(text) - len(last)
    for piece in middle:
        found = text.find(piece, position, end)
        if found < 0:
            return False
        position = found + len(piece)
    return True


def _match(value: Any, pattern: Any, insensitive: bool) -> bool:
    if not isinstance(value, str) or not isinstance(pattern, str):
        return False
    parts = []
    for ch in pattern:
        parts.append({"#": "[0-9]", "?": "[A-Za-z]", ".": "."}.get(ch, re.escape(ch)))
    return re.fullmatch("".join(parts), value, re.IGNORECASE if insensitive else 0) is not None


def _template_contains(container: Any, item: Any) -> bool:
    """ARM template ``contains()``: case-sensitive for strings and array items, not for object keys."""
    if isinstance(container, str):
        return isinstance(item, str) and item in container
    if isinstance(container, list):
        return item in container
    if isinstance(container, dict):
        return isinstance(item, str) and any(str(k).lower() == item.lower() for k in container)
    return False


def _contains(container: Any, item: Any) -> bool:
    if isinstance(container, str):
        return isinstance(item, str) and item.casefold() in container.casefold()
    if isinstance(container, list):
        return any(values_equal(x, item) for x in container)
    if isinstance(container, dict):
        return isinstance(item, str) and any(str(k).lower() == item.lower() for k in container)
    return False


def _contains_key(obj: Any, key: Any) -> bool:
    return isinstance(obj, dict) and isinstance(key, str) and any(str(k).lower() == key.lower() for k in obj)


def _cmp(test: Callable[[Any, Any], bool]) -> Callable[[Any, Any], bool]:
    def run(a: Any, b: Any) -> bool:
        pair = _ordered(a, b)
        if pair is None:  # Azure Policy: a type mismatch throws, it is not a verdict
            raise EvaluationError(f"cannot compare {type(a).__name__} {a!r:.40} with {type(b).__name__} {b!r:.40}")
        try:
            return test(*pair)
        except TypeError as exc:
            raise EvaluationError(f"cannot compare {a!r:.40} with {b!r:.40}: {exc}") from None

    return run


def _in(value: Any, options: Any) -> bool:
    if not isinstance(options, list):
        raise EvaluationError(f"'in' needs an array, got {type(options).__name__}")
    return any(values_equal(value, o) for o in options)


def _as_bool(expected: Any) -> bool:
    if isinstance(expected, bool):
        return expected
    if isinstance(expected, str) and expected.lower() in ("true", "false"):
        return expected.lower() == "true"
    raise EvaluationError(f"'exists' takes true or false, got {expected!r}")
