"""ARM template functions available to rules (``FUNCTIONS``: name -> implementation), with the
helpers they share with the expression compiler. Pure, except ``utcNow()`` which reads the clock.
"""
from __future__ import annotations

import ipaddress
import re
from datetime import datetime, timezone
from typing import Any, Callable, Mapping

from .paths import CURRENT_API_VERSION, MISSING, EvaluationError, _Missing, _PartialScope, _child
from .values import _as_datetime, _cmp, _template_contains, values_equal


def _call_function(name: str, impl: Callable[..., Any], values: list[Any]) -> Any:
    try:
        return impl(*values)
    except EvaluationError:
        raise
    except (TypeError, ValueError, IndexError, AttributeError) as exc:
        raise EvaluationError(f"{name}() failed: {exc}") from None


def _index(obj: Any, key: Any) -> Any:
    if isinstance(obj, list) and isinstance(key, int):
        if not -len(obj) <= key < len(obj):
            raise EvaluationError(f"index {key} out of range for an array of {len(obj)}")
        return obj[key]
    return _child(obj, key)


def _truthy(v: Any) -> bool:
    if isinstance(v, str):
        return v.lower() == "true"
    return bool(v) and v is not MISSING


def _length(v: Any) -> int:
    if v is MISSING or v is None:
        return 0
    return len(v)


def _int(v: Any) -> int:
    if isinstance(v, bool):
        raise EvaluationError("int() of a boolean")
    try:
        return int(str(v).strip()) if not isinstance(v, float) else int(v)
    except ValueError:
        raise EvaluationError(f"int() of {v!r}") from None


def _ip_range(text: Any) -> tuple[int, int, int]:
    """(version, first, last) of a single address, a CIDR range or a 'start-end' range."""
    text = str(text).strip()
    try:
        if "-" in text:
            start, end = (ipaddress.ip_address(part.strip()) for part in text.split("-", 1))
            if start.version != end.version or int(start) > int(end):
                raise ValueError(f"{text!r} is not a range from a lower to a higher address of one family")
            return start.version, int(start), int(end)
        network = ipaddress.ip_network(text, strict=False)
    except ValueError as exc:
        raise EvaluationError(f"ipRangeContains(): {exc}") from None
    return network.version, int(network.network_address), int(network.broadcast_address)


def _ip_range_contains(outer: str, inner: str) -> bool:
    a, b = _ip_range(outer), _ip_range(inner)
    if a[0] != b[0]:  # documented: mixing IP families is an evaluation failure
        raise EvaluationError(f"ipRangeContains(): {outer!r} and {inner!r} are of different IP families")
    return a[1] <= b[1] and b[2] <= a[2]


def _substring(text: Any, start: int, length: int | None = None) -> str:
    text = str(text)
    end = len(text) if length is None else start + length
    if start < 0 or end < start or end > len(text):  # ARM fails rather than clipping
        raise EvaluationError(f"substring(): start {start} and length {length} are outside a string of {len(text)}")
    return text[start:end]


def _id_segments(resource: Mapping[str, Any]) -> list[str]:
    return [p for p in str(resource.get("id") or "").split("/") if p]


def _resource_group_of(resource: Mapping[str, Any]) -> dict[str, Any]:
    """``resourceGroup()`` for the evaluated resource: id and name from its id (location, tags: unknown)."""
    if str(resource.get("type", "")).lower() in ("microsoft.resources/subscriptions/resourcegroups",
                                                 "microsoft.resources/resourcegroups"):
        return dict(resource)
    parts = _id_segments(resource)
    lowered = [p.lower() for p in parts]
    if len(parts) < 4 or lowered[0] != "subscriptions" or lowered[2] != "resourcegroups":
        raise EvaluationError("resourceGroup() used on a resource outside a resource group")
    given = resource.get("$resourceGroup")
    if isinstance(given, Mapping):
        return {"id": f"/subscriptions/{parts[1]}/resourceGroups/{parts[3]}", "name": parts[3], **given}
    return _PartialScope(id=f"/subscriptions/{parts[1]}/resourceGroups/{parts[3]}", name=parts[3],
                         type="Microsoft.Resources/resourceGroups")


def _subscription_of(resource: Mapping[str, Any]) -> dict[str, Any]:
    """``subscription()`` for the evaluated resource: id and subscriptionId from its id."""
    parts = _id_segments(resource)
    if len(parts) < 2 or parts[0].lower() != "subscriptions":
        raise EvaluationError("subscription() used on a resource outside a subscription")
    scope = _PartialScope(id=f"/subscriptions/{parts[1]}", subscriptionId=parts[1])
    scope.what, scope.offline = "subscription()", "$subscription"
    given = resource.get("$subscription")
    return {**scope, **given} if isinstance(given, Mapping) else scope


def _iso_7(moment: datetime) -> str:
    """Azure Policy's date format: yyyy-MM-ddTHH:mm:ss.fffffffZ."""
    return moment.astimezone(timezone.utc).strftime("%Y-%m-%dT%H:%M:%S.%f") + "0Z"


def _utc_now() -> str:
    return _iso_7(datetime.now(timezone.utc))


def _add_days(moment: Any, days: Any) -> str:
    from datetime import timedelta

    parsed = _as_datetime(str(moment)) if not isinstance(moment, datetime) else moment
    if parsed is None:
        raise EvaluationError(f"addDays(): {moment!r} is not a date and time")
    try:
        return _iso_7((parsed if parsed.tzinfo else parsed.replace(tzinfo=timezone.utc)) + timedelta(days=_int(days)))
    except OverflowError:
        raise EvaluationError(f"addDays(): {moment!r} plus {days!r} days is out of range") from None


def _int_div(a: int, b: int) -> int:
    if b == 0:
        raise EvaluationError("div() by zero")
    return int(a / b)  # ARM truncates toward zero


def _int_mod(a: int, b: int) -> int:
    if b == 0:
        raise EvaluationError("mod() by zero")
    return a - b * int(a / b)


def _numbers(args: tuple) -> list[int]:
    values = list(args[0]) if len(args) == 1 and isinstance(args[0], list) else list(args)
    if not values:
        raise EvaluationError("min()/max() of nothing")
    return [_int(v) for v in values]


def _pad_left(value: Any, total: Any, pad: Any = " ") -> str:
    text, fill = ("" if value is MISSING else str(value)), str(pad)
    if len(fill) != 1:
        raise EvaluationError(f"padLeft(): the padding must be one character, got {pad!r}")
    return text.rjust(min(_int(total), 16384), fill)


def _try_get(obj: Any, *keys: Any) -> Any:
    """``tryGet(object, key, ...)``: the value at the keys (indexes for arrays), or null when absent."""
    for key in keys:
        if isinstance(obj, list) and isinstance(key, int) and not isinstance(key, bool):
            obj = obj[key] if -len(obj) <= key < len(obj) else None
        elif isinstance(obj, Mapping):
            obj = next((v for k, v in obj.items() if str(k).lower() == str(key).lower()), None)
        else:
            return None
        if obj is None:
            return None
    return obj


FUNCTIONS: dict[str, Callable[..., Any]] = {
    "concat": lambda *a: [x for v in a for x in v] if a and all(isinstance(v, list) for v in a) else "".join(
        "" if v is None or v is MISSING else (str(v).lower() if isinstance(v, bool) else str(v)) for v in a),
    "tolower": lambda s: str(s).lower(),
    "toupper": lambda s: str(s).upper(),
    "not": lambda v: not _truthy(v),
    "equals": values_equal,
    "less": _cmp(lambda a, b: a < b),
    "lessorequals": _cmp(lambda a, b: a <= b),
    "greater": _cmp(lambda a, b: a > b),
    "greaterorequals": _cmp(lambda a, b: a >= b),
    "contains": _template_contains,
    "empty": lambda v: v is None or v is MISSING or (hasattr(v, "__len__") and len(v) == 0),
    "length": _length,
    "split": lambda s, sep: str(s).split(sep) if isinstance(sep, str) else _split_any(str(s), sep),
    "int": _int,
    "string": lambda v: ("true" if v else "false") if isinstance(v, bool) else ("" if v is MISSING else str(v)),
    "bool": _truthy,
    "first": lambda v: (v[0] if v else MISSING) if not isinstance(v, _Missing) else MISSING,
    "last": lambda v: (v[-1] if v else MISSING) if not isinstance(v, _Missing) else MISSING,
    "startswith": lambda s, p: str(s).lower().startswith(str(p).lower()),
    "endswith": lambda s, p: str(s).lower().endswith(str(p).lower()),
    "replace": lambda s, old, new: str(s).replace(str(old), str(new)),
    "trim": lambda s: str(s).strip(),
    "coalesce": lambda *a: next((v for v in a if v is not None and v is not MISSING), None),
    "substring": _substring,
    "indexof": lambda s, sub: str(s).lower().find(str(sub).lower()),
    "union": lambda *a: list(dict.fromkeys(x for v in a for x in v)) if all(isinstance(v, list) for v in a) else {
        k: v for d in a for k, v in d.items()},
    "createarray": lambda *a: list(a),
    # The monitor evaluates a resource's current state, as read with a current API version.
    "requestcontext": lambda: {"apiVersion": CURRENT_API_VERSION},
    "iprangecontains": _ip_range_contains,
    "add": lambda a, b: _int(a) + _int(b),
    "sub": lambda a, b: _int(a) - _int(b),
    "mul": lambda a, b: _int(a) * _int(b),
    "div": lambda a, b: _int_div(_int(a), _int(b)),
    "mod": lambda a, b: _int_mod(_int(a), _int(b)),
    "min": lambda *a: min(_numbers(a)),
    "max": lambda *a: max(_numbers(a)),
    "padleft": _pad_left,
    "adddays": _add_days,
    "tryget": _try_get,
}


def _split_any(s: str, separators: list[str]) -> list[str]:
    pattern = "|".join(re.escape(x) for x in separators)
    return re.split(pattern, s)
