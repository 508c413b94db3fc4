"""A compiler for the Azure Policy rule language (``policyRule.if``). Pure.

A rule is compiled once into plain Python closures; evaluating it against an ARM
resource object does no parsing. Semantics follow Azure Policy:

* string comparisons are case-insensitive (``match`` is the exception); a number
  equals its string form; ordering values of different types is an evaluation
  error; ``location`` is normalized (``East US 2`` equals ``eastus2``);
* a missing field is never equal to anything, so ``notEquals``/``notIn``/
  ``notLike``/``notContains`` are true for it and ``exists: false`` matches it;
* a field with ``[*]`` outside ``count`` is true only if the condition holds for
  every element (true for an empty array);
* ``count`` counts array elements (``field``) or values (``value`` + ``name``)
  that satisfy ``where``; ``current()`` names the element being counted;
  ``field()`` of a ``[*]`` alias is always an array (of one inside ``where``);
* ``value`` and ``field`` may be template expressions: ``[parameters('x')]``,
  ``[concat(...)]``, ``[if(...)]``, ``[split(...)]`` and so on.

Evaluation also records *evidence*: the concrete paths and values consulted,
so a verdict can be explained.
"""
from __future__ import annotations

import functools
import ipaddress
import re
from dataclasses import dataclass, field as dc_field
from datetime import datetime, timezone
from typing import Any, Callable, Mapping, Sequence


class RuleError(ValueError):
    """A rule that cannot be compiled; the message names the problem."""


class EvaluationError(ValueError):
    """A rule that failed on a resource (for example ``int('abc')``)."""


class _Missing:
    __slots__ = ()

    def __repr__(self) -> str:
        return "<missing>"

    def __bool__(self) -> bool:
        return False


MISSING = _Missing()
WILDCARD = "*"
CURRENT_API_VERSION = "9999-12-31"  # what requestContext().apiVersion answers

# ----------------------------------------------------------------------------- paths

_SEGMENT = re.compile(r"([^.\[\]]+)|\[\*\]|\[(\d+)\]|\['([^']*)'\]|\[([^\]'*]+)\]|\.")


def parse_path(text: str) -> tuple[Any, ...]:
    """``properties.rules[*].ports[0]`` -> ('properties', 'rules', '*', 'ports', 0)."""
    out: list[Any] = []
    pos = 0
    while pos < len(text):
        m = _SEGMENT.match(text, pos)
        if not m or m.end() == pos:
            raise RuleError(f"cannot parse field path {text!r} at position {pos}")
        pos = m.end()
        if m.group(0) == ".":
            continue
        if m.group(0) == "[*]":
            out.append(WILDCARD)
        elif m.group(2) is not None:
            out.append(int(m.group(2)))
        elif m.group(3) is not None:
            out.append(m.group(3))
        elif m.group(4) is not None:
            out.append(m.group(4))
        else:
            out.append(m.group(1))
    return tuple(out)


def format_path(segments: Sequence[Any]) -> str:
    text = ""
    for seg in segments:
        if isinstance(seg, int):
            text += f"[{seg}]"
        elif seg == WILDCARD:
            text += "[*]"
        elif not re.fullmatch(r"[A-Za-z_$][\w$-]*", str(seg)):
            text += f"['{seg}']"
        else:
            text += ("." if text else "") + str(seg)
    return text


def _child(obj: Any, key: Any) -> Any:
    if isinstance(key, int):
        return obj[key] if isinstance(obj, list) and -len(obj) <= key < len(obj) else MISSING
    if not isinstance(obj, dict):
        return MISSING
    if key in obj:
        return obj[key]
    lowered = key.lower()
    for k, v in obj.items():
        if isinstance(k, str) and k.lower() == lowered:
            return v
    if type(obj) is _PartialScope:
        raise EvaluationError(f"{obj.what}.{key} is not known here (only id and name are; give \"{obj.offline}\" "
                              "with the resource to evaluate it offline)")
    return MISSING


class _PartialScope(dict):
    """resourceGroup() / subscription() built from a resource id: a property it lacks is an error, not missing."""

    what = "resourceGroup()"
    offline = "$resourceGroup"


def _full_name(resource: Any) -> Any:
    """``fullName``: the resource name prepended by its parents' names (``myServer/myDatabase``)."""
    rid = resource.get("id") if isinstance(resource, dict) else None
    if not isinstance(rid, str) or "/providers/" not in rid.lower():
        return _child(resource, "name")
    parts = [p for p in rid[rid.lower().rindex("/providers/") + len("/providers/"):].split("/") if p]
    names = parts[2::2]
    return "/".join(names) if names else _child(resource, "name")


def _walk(obj: Any, segments: Sequence[Any], prefix: tuple) -> list[tuple[tuple, Any]]:
    """All (concrete path, value) pairs a path reaches; '*' fans out."""
    if segments == ("$fullName",):
        return [(("name",), _full_name(obj))]
    current = [(prefix, obj)]
    for seg in segments:
        nxt = []
        for path, value in current:
            if seg == WILDCARD:
                if isinstance(value, list):
                    nxt.extend((path + (i,), item) for i, item in enumerate(value))
            else:
                nxt.append((path + (seg,), _child(value, seg)))
        current = nxt
    return current


# ----------------------------------------------------------------------------- aliases


class FieldResolver:
    """Maps a policy ``field`` (alias or built-in field) to a JSON path."""

    BUILTIN = {
        "name": ("name",),
        "fullname": ("$fullName",),  # computed from the id: parent names, then the name
        "type": ("type",),
        "location": ("location",),
        "id": ("id",),
        "kind": ("kind",),
        "tags": ("tags",),
        "identity.type": ("identity", "type"),
        "identity.userassignedidentities": ("identity", "userAssignedIdentities"),
    }
    _TAG = re.compile(r"^tags(?:\['(?P<q>(?:[^']|'')+)'\]|\[['\"]?(?P<a>[^'\"\]]+)['\"]?\]|\.(?P<b>.+))$",
                      re.IGNORECASE)

    def __init__(self, aliases: Mapping[str, str], fallback: Callable[[str], str | None] | None = None):
        """``fallback(alias)`` returns the JSON path of an alias the table lacks (e.g. from ARM metadata)."""
        self._aliases = {k.lower(): parse_path(v) for k, v in aliases.items()}
        self._fallback = fallback

    def resolve(self, field_name: str) -> tuple[Any, ...]:
        lowered = field_name.strip().lower()
        if lowered in self.BUILTIN:
            return self.BUILTIN[lowered]
        m = self._TAG.match(field_name.strip())
        if m:
            quoted = m.group("q")
            return ("tags", quoted.replace("''", "'") if quoted is not None else m.group("a") or m.group("b"))
        if lowered in self._aliases:
            return self._aliases[lowered]
        if self._fallback is not None and "/" in field_name:
            path = self._fallback(field_name.strip())
            if path:
                self._aliases[lowered] = parse_path(path)
                return self._aliases[lowered]
        raise RuleError(f"unknown field or alias {field_name!r}")


# ----------------------------------------------------------------------------- context


@functools.lru_cache(maxsize=4096)
def _lowered(segments: tuple) -> tuple:
    return tuple(s.lower() if isinstance(s, str) else s for s in segments)


@dataclass
class _Scope:
    prefix: tuple  # lower-cased alias path up to and including the counted '*'
    path: tuple  # concrete path of the element
    element: Any
    name: str | None = None  # value count name


@dataclass
class Context:
    resource: Mapping[str, Any]
    scopes: list[_Scope] = dc_field(default_factory=list)
    evidence: list[dict] = dc_field(default_factory=list)
    quiet: int = 0  # > 0 while inside count 'where' clauses

    def note(self, record: Callable[[], dict]) -> None:
        """Remember how to describe a condition; built only if the verdict needs evidence."""
        if not self.quiet:
            self.evidence.append(record)

    def lookup(self, segments: tuple) -> tuple[list[tuple[tuple, Any]], bool]:
        """(concrete path, value) pairs, and whether an unbound [*] fanned out."""
        if not self.scopes:
            return _walk(self.resource, segments, ()), WILDCARD in segments
        lowered = _lowered(segments)
        for scope in reversed(self.scopes):
            if scope.name is None and lowered[: len(scope.prefix)] == scope.prefix:
                rest = segments[len(scope.prefix):]
                return _walk(scope.element, rest, scope.path), WILDCARD in rest
        return _walk(self.resource, segments, ()), WILDCARD in segments


# ----------------------------------------------------------------------------- values


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


def _like(value: Any, pattern: Any) -> bool:
    if not isinstance(value, str) or not isinstance(pattern, str):
        return False
    regex = "^" + ".*".join(re.escape(p) for p in pattern.split("*")) + "$"
    return re.match(regex, value, re.IGNORECASE | re.DOTALL) is not None


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


# ----------------------------------------------------------------------------- template expressions

Expr = Callable[[Context], Any]

_TOKEN = re.compile(r"\s*(?:(?P<str>'(?:[^']|'')*')|(?P<num>-?\d+(?:\.\d+)?)|(?P<id>[A-Za-z_][\w]*)|(?P<sym>[(),.\[\]]))")


def is_expression(value: Any) -> bool:
    return isinstance(value, str) and value.startswith("[") and value.endswith("]") and not value.startswith("[[")


def unescape_literal(value: Any) -> Any:
    if isinstance(value, str) and value.startswith("[["):
        return value[1:]
    return value


@dataclass
class _Node:
    fn: Expr
    constant: bool


class ExpressionCompiler:
    """Compiles ARM template expressions used by Azure Policy rules."""

    def __init__(self, parameters: Mapping[str, Any], resolver: FieldResolver):
        self.parameters = {k.lower(): v for k, v in parameters.items()}
        self.resolver = resolver

    def compile(self, text: str) -> Expr:
        node = self._parse(text)
        if node.constant:
            try:
                value = node.fn(Context({}))
            except EvaluationError as exc:
                raise RuleError(f"expression {text!r} always fails: {exc}") from None
            return lambda ctx: value
        return node.fn

    def constant(self, text: str) -> Any:
        """The value of an expression that does not depend on the resource, else MISSING."""
        node = self._parse(text)
        if not node.constant:
            return MISSING
        try:
            return node.fn(Context({}))
        except EvaluationError:
            return MISSING

    def _parse(self, text: str) -> _Node:
        body = text[1:-1]
        tokens = []
        pos = 0
        while pos < len(body):
            m = _TOKEN.match(body, pos)
            if not m or m.end() == pos:
                if body[pos:].strip() == "":
                    break
                raise RuleError(f"cannot parse expression {text!r} at {body[pos:pos + 20]!r}")
            tokens.append((m.lastgroup, m.group(m.lastgroup)))
            pos = m.end()
        self._tokens, self._pos, self._text = tokens, 0, text
        node = self._expr()
        if self._pos != len(tokens):
            raise RuleError(f"unexpected {tokens[self._pos][1]!r} in expression {text!r}")
        return node

    # recursive descent
    def _peek(self) -> tuple[str, str] | None:
        return self._tokens[self._pos] if self._pos < len(self._tokens) else None

    def _take(self, sym: str | None = None) -> tuple[str, str]:
        tok = self._peek()
        if tok is None or (sym is not None and tok[1] != sym):
            raise RuleError(f"expected {sym or 'a value'} in expression {self._text!r}")
        self._pos += 1
        return tok

    def _expr(self) -> _Node:
        kind, text = self._take()
        if kind == "str":
            value = text[1:-1].replace("''", "'")
            node = _Node(lambda ctx: value, True)
        elif kind == "num":
            number = float(text) if "." in text else int(text)
            node = _Node(lambda ctx: number, True)
        elif kind == "id":
            if self._peek() and self._peek()[1] == "(":
                self._take("(")
                args: list[_Node] = []
                while self._peek() and self._peek()[1] != ")":
                    args.append(self._expr())
                    if self._peek() and self._peek()[1] == ",":
                        self._take(",")
                self._take(")")
                node = self._call(text, args)
            elif text.lower() in ("true", "false", "null"):
                literal = {"true": True, "false": False, "null": None}[text.lower()]
                node = _Node(lambda ctx: literal, True)
            else:
                raise RuleError(f"unknown name {text!r} in expression {self._text!r}")
        else:
            raise RuleError(f"unexpected {text!r} in expression {self._text!r}")
        while self._peek() and self._peek()[1] in (".", "["):
            if self._take()[1] == ".":
                prop = self._take()[1]
                base = node
                node = _Node(lambda ctx, b=base, p=prop: _child(b.fn(ctx), p), base.constant)
            else:
                index = self._expr()
                self._take("]")
                base = node
                node = _Node(lambda ctx, b=base, i=index: _index(b.fn(ctx), i.fn(ctx)), base.constant and index.constant)
        return node

    def _call(self, name: str, args: list[_Node]) -> _Node:
        lname = name.lower()
        arity_ok = lambda lo, hi=None: lo <= len(args) <= (hi if hi is not None else lo)  # noqa: E731
        if lname == "parameters":
            if not arity_ok(1) or not args[0].constant:
                raise RuleError(f"parameters() takes one constant name in {self._text!r}")
            pname = args[0].fn(Context({}))
            if str(pname).lower() not in self.parameters:
                raise RuleError(f"unknown parameter {pname!r} in {self._text!r}")
            value = self.parameters[str(pname).lower()]
            return _Node(lambda ctx: value, True)
        if lname == "field":
            if not arity_ok(1) or not args[0].constant:
                raise RuleError(f"field() takes one constant alias in {self._text!r}")
            segments = self.resolver.resolve(args[0].fn(Context({})))
            if WILDCARD in segments:  # an array alias is always a collection, even for the counted member
                return _Node(lambda ctx: [v for _, v in ctx.lookup(segments)[0] if v is not MISSING], False)
            return _Node(lambda ctx: _single(*ctx.lookup(segments)), False)
        if lname == "current":
            if len(args) > 1:
                raise RuleError(f"current() takes at most one argument in {self._text!r}")
            key = args[0].fn(Context({})) if args else None
            segments = None
            if key is not None and ("/" in key or "[*]" in key):
                segments = self.resolver.resolve(key)
            return _Node(lambda ctx: _current(ctx, key, segments), False)
        if lname in ("resourcegroup", "subscription"):
            if args:
                raise RuleError(f"{name}() takes no arguments in {self._text!r}")
            scope_of = _resource_group_of if lname == "resourcegroup" else _subscription_of
            return _Node(lambda ctx: scope_of(ctx.resource), False)
        if lname == "utcnow":
            if len(args) > 1:
                raise RuleError(f"utcNow() takes at most one argument in {self._text!r}")
            return _Node(lambda ctx: _utc_now(), False)  # never folded at load time
        if lname == "if":
            if not arity_ok(3):
                raise RuleError(f"if() takes three arguments in {self._text!r}")
            c, a, b = args
            return _Node(lambda ctx: a.fn(ctx) if _truthy(c.fn(ctx)) else b.fn(ctx), all(x.constant for x in args))
        if lname in ("and", "or"):
            fns = tuple(x.fn for x in args)
            want = lname == "or"  # the value that decides early

            def combine(ctx: Context) -> bool:
                for f in fns:
                    if _truthy(f(ctx)) == want:
                        return want
                return not want

            return _Node(combine, all(x.constant for x in args))
        impl = FUNCTIONS.get(lname)
        if impl is None:
            raise RuleError(f"unsupported template function {name!r} in {self._text!r}")
        constant = all(x.constant for x in args)
        fns = tuple(x.fn for x in args)
        if len(fns) == 1:
            (f1,) = fns
            return _Node(lambda ctx: _call_function(name, impl, (f1(ctx),)), constant)
        if len(fns) == 2:
            f1, f2 = fns
            return _Node(lambda ctx: _call_function(name, impl, (f1(ctx), f2(ctx))), constant)
        return _Node(lambda ctx: _call_function(name, impl, [f(ctx) for f in fns]), constant)


def _call_function(name: str, impl: Callable[..., Any], values: list[Any]) -> Any:
    try:
        return impl(*values)
    except EvaluationError:
        raise
    except (TypeError, ValueError, IndexError, AttributeError) as exc:
        raise EvaluationError(f"{name}() failed: {exc}") from None


def _single(pairs: list[tuple[tuple, Any]], fanned: bool) -> Any:
    if not fanned:
        return pairs[0][1] if pairs else MISSING
    return [v for _, v in pairs if v is not MISSING]


def _current(ctx: Context, key: str | None, segments: tuple | None) -> Any:
    for scope in reversed(ctx.scopes):
        if key is None:
            return scope.element
        if scope.name is not None and scope.name.lower() == key.lower():
            return scope.element
        if segments is not None and scope.name is None:
            lowered = _lowered(segments)
            if lowered[: len(scope.prefix)] == scope.prefix:
                rest = segments[len(scope.prefix):]
                return _single(_walk(scope.element, rest, scope.path), WILDCARD in rest)
    raise EvaluationError(f"current({key!r}) used outside a count that names it")


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


def compile_value(text: Any, parameters: Mapping[str, Any], resolver: FieldResolver) -> Callable[[Mapping[str, Any]], Any]:
    """A template expression (or literal) outside a condition, e.g. ``details.name``: resource -> value."""
    if not is_expression(text):
        literal = unescape_literal(text)
        return lambda resource: literal
    expr = ExpressionCompiler(parameters, resolver).compile(text)
    return lambda resource: expr(Context(resource))


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


# ----------------------------------------------------------------------------- conditions

Condition = Callable[[Context], bool]
_MAX_EVIDENCE_VALUE = 2000


def _evidence_value(value: Any) -> Any:
    if value is MISSING:
        return None
    text = repr(value)
    if len(text) > _MAX_EVIDENCE_VALUE:
        return text[:_MAX_EVIDENCE_VALUE] + "...(truncated)"
    return value


class RuleCompiler:
    """Compiles a ``policyRule.if`` object into a ``Condition``."""

    def __init__(self, parameters: Mapping[str, Any], resolver: FieldResolver):
        self.resolver = resolver
        self.expressions = ExpressionCompiler(parameters, resolver)

    def compile(self, node: Any, where: str = "rule") -> Condition:
        if not isinstance(node, Mapping):
            raise RuleError(f"{where}: a condition must be an object, got {type(node).__name__}")
        keys = {k.lower(): k for k in node}
        if "allof" in keys or "anyof" in keys:
            key = keys.get("allof") or keys.get("anyof")
            items = node[key]
            if len(node) != 1 or not isinstance(items, list) or not items:
                raise RuleError(f"{where}: '{key}' must be the only key and hold a non-empty list")
            parts = tuple(self.compile(c, f"{where}.{key}[{i}]") for i, c in enumerate(items))
            if key.lower() == "allof":
                def all_of(ctx: Context) -> bool:  # a plain loop: no generator per evaluation
                    for part in parts:
                        if not part(ctx):
                            return False
                    return True

                return all_of

            def any_of(ctx: Context) -> bool:
                for part in parts:
                    if part(ctx):
                        return True
                return False

            return any_of
        if "not" in keys:
            if len(node) != 1:
                raise RuleError(f"{where}: 'not' must be the only key")
            inner = self.compile(node[keys["not"]], f"{where}.not")
            return lambda ctx: not inner(ctx)
        ops = [k for k in keys if k in OPERATOR_NAMES]
        subjects = [k for k in keys if k in ("field", "value", "count")]
        unknown = [node_key for k, node_key in keys.items() if k not in OPERATOR_NAMES and k not in ("field", "value", "count")]
        if unknown:
            raise RuleError(f"{where}: unknown key(s) {', '.join(map(repr, unknown))}")
        if len(subjects) != 1:
            raise RuleError(f"{where}: a condition needs exactly one of 'field', 'value' or 'count'")
        if len(ops) != 1:
            raise RuleError(
                f"{where}: a condition needs exactly one operator ({', '.join(sorted(OPERATOR_NAMES.values()))})"
            )
        op = ops[0]
        expected = self._operand(node[keys[op]], where)
        raw = node[keys[op]]
        if op not in ("in", "notin") and is_expression(raw):
            # an array parameter outside in/notIn: Azure refuses the definition ("is type 'Array', expected
            # type is 'String'"); literal arrays are left alone
            if isinstance(self.expressions.constant(raw), list):
                raise RuleError(f"{where}: '{keys[op]}' takes a single value, got an array; use 'in' or 'notIn'")
        subject = subjects[0]
        if subject == "field":
            return self._field_condition(node[keys["field"]], op, OPERATOR_NAMES[op], expected, where)
        if subject == "value":
            return self._value_condition(node[keys["value"]], op, OPERATOR_NAMES[op], expected, where)
        return self._count_condition(node[keys["count"]], op, OPERATOR_NAMES[op], expected, where)

    def _operand(self, raw: Any, where: str) -> Expr:
        if is_expression(raw):
            try:
                return self.expressions.compile(raw)
            except RuleError as exc:
                raise RuleError(f"{where}: {exc}") from None
        value = unescape_literal(raw)
        return lambda ctx: value

    def _field_condition(self, raw: Any, op: str, op_name: str, expected: Expr, where: str) -> Condition:
        if not isinstance(raw, str):
            raise RuleError(f"{where}: 'field' must be a string")
        if is_expression(raw):
            name_expr = self.expressions.compile(raw)
            resolver = self.resolver

            def dynamic(ctx: Context) -> bool:
                name = name_expr(ctx)
                try:
                    segments = resolver.resolve(str(name))
                except RuleError as exc:
                    raise EvaluationError(str(exc)) from None
                return _check_pairs(ctx, str(name), *ctx.lookup(segments), op, op_name, expected(ctx))

            return dynamic
        try:
            segments = self.resolver.resolve(raw)
        except RuleError as exc:
            raise RuleError(f"{where}: {exc}") from None
        if raw.strip().lower() == "location":  # Azure normalizes locations: 'East US 2' equals 'eastus2'
            return lambda ctx: _check_pairs(ctx, raw, [(p, _location_key(v)) for p, v in ctx.lookup(segments)[0]],
                                            False, op, op_name, _location_key(expected(ctx)))
        return lambda ctx: _check_pairs(ctx, raw, *ctx.lookup(segments), op, op_name, expected(ctx))

    def _value_condition(self, raw: Any, op: str, op_name: str, expected: Expr, where: str) -> Condition:
        actual = self._operand(raw, where)
        label = raw if isinstance(raw, str) else repr(raw)

        def check(ctx: Context) -> bool:
            value = actual(ctx)
            result = apply_operator(op, value, expected(ctx))
            ctx.note(lambda: {"value": label, "actual": _evidence_value(value), "operator": op_name, "result": result})
            return result

        return check

    def _count_condition(self, raw: Any, op: str, op_name: str, expected: Expr, where: str) -> Condition:
        if not isinstance(raw, Mapping):
            raise RuleError(f"{where}: 'count' must be an object")
        keys = {k.lower(): k for k in raw}
        extra = set(keys) - {"field", "value", "name", "where"}
        if extra:
            raise RuleError(f"{where}.count: unknown key(s) {sorted(keys[k] for k in extra)}")
        where_cond = self.compile(raw[keys["where"]], f"{where}.count.where") if "where" in keys else None
        if "field" in keys:
            alias = raw[keys["field"]]
            try:
                segments = self.resolver.resolve(alias)
            except (RuleError, AttributeError) as exc:
                raise RuleError(f"{where}.count: {exc}") from None
            if WILDCARD not in segments:
                raise RuleError(f"{where}.count: field {alias!r} must be an array alias ending in [*]")
            cut = len(segments) - list(reversed(segments)).index(WILDCARD)
            array_path, prefix = segments[: cut - 1], tuple(s.lower() if isinstance(s, str) else s for s in segments[:cut])

            def items(ctx: Context) -> list[tuple[tuple, Any, _Scope]]:
                out = []
                for path, value in ctx.lookup(array_path)[0]:
                    if isinstance(value, list):
                        out.extend((path + (i,), item, _Scope(prefix, path + (i,), item)) for i, item in enumerate(value))
                return out

            label = alias
        elif "value" in keys:
            source = self._operand(raw[keys["value"]], where)
            name = raw.get(keys["name"]) if "name" in keys else None
            if name is not None and not isinstance(name, str):
                raise RuleError(f"{where}.count: 'name' must be a string")

            def items(ctx: Context) -> list[tuple[tuple, Any, _Scope]]:
                values = source(ctx)
                if values is MISSING or values is None:
                    values = []
                if not isinstance(values, list):
                    raise EvaluationError(f"count value must be an array, got {type(values).__name__}")
                return [(("value", i), v, _Scope((), ("value", i), v, name or "")) for i, v in enumerate(values)]

            label = raw[keys["value"]] if isinstance(raw[keys["value"]], str) else "value"
        else:
            raise RuleError(f"{where}.count: needs 'field' or 'value'")

        def check(ctx: Context) -> bool:
            matched = []
            for path, item, scope in items(ctx):
                if where_cond is None:
                    matched.append((path, item))
                    continue
                ctx.scopes.append(scope)
                ctx.quiet += 1
                try:
                    if where_cond(ctx):
                        matched.append((path, item))
                finally:
                    ctx.quiet -= 1
                    ctx.scopes.pop()
            result = apply_operator(op, len(matched), expected(ctx))
            ctx.note(lambda: {
                "count": label,
                "matched": [
                    {"path": format_path(p) if p[0] != "value" else f"value[{p[1]}]", "value": _evidence_value(v)}
                    for p, v in matched[:10]
                ],
                "matchedCount": len(matched),
                "operator": op_name,
                "result": result,
            })
            return result

        return check


def _location_key(value: Any) -> Any:
    if isinstance(value, str):
        return value.replace(" ", "").lower()
    if isinstance(value, list):
        return [_location_key(v) for v in value]
    return value


def _check_pairs(ctx: Context, label: str, pairs: list[tuple[tuple, Any]], fanned: bool, op: str, op_name: str,
                 expected: Any) -> bool:
    if not fanned:
        path, value = pairs[0]
        result = apply_operator(op, value, expected)
        ctx.note(lambda: {"field": label, "path": format_path(path), "actual": _evidence_value(value),
                  "operator": op_name, "result": result})
        return result
    # [*] outside count: true only if it holds for every element (vacuously true for none)
    failing = [(p, v) for p, v in pairs if not apply_operator(op, v, expected)]
    result = not failing
    ctx.note(lambda: {"field": label, "actual": [
        {"path": format_path(p), "value": _evidence_value(v)} for p, v in pairs[:10]
    ], "operator": op_name, "result": result})
    return result


@dataclass(frozen=True)
class CompiledRule:
    condition: Condition

    def evaluate(self, resource: Mapping[str, Any], evidence: bool | None = None) -> tuple[bool, list[dict]]:
        """(matched, evidence). ``matched`` means the resource is non-compliant.

        Evidence is described only when ``evidence`` is True, or (by default) when the rule matched.
        """
        ctx = Context(resource)
        matched = self.condition(ctx)
        if evidence or (evidence is None and matched):
            return matched, [describe() for describe in ctx.evidence]
        return matched, []


def compile_rule(rule: Any, parameters: Mapping[str, Any], resolver: FieldResolver) -> CompiledRule:
    return CompiledRule(RuleCompiler(parameters, resolver).compile(rule))
