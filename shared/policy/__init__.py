"""A compiler for the Azure Policy rule language (``policyRule.if``). Pure.

A rule is compiled once at load; evaluating it against an ARM resource object does
no parsing. It is compiled twice from one walk of the rule:

* the *fast path* answers the verdict alone: one generated Python function per rule
  (fields and ``current()`` bound to frame slots, constant ``in``/``equals`` operands
  prepared as sets and case-folded strings, alias paths pre-split, a ``count`` stopping
  once its verdict is decided, values that depend only on an outer element computed
  once per loop), with the same closures it was generated beside as its fallback;
* the *evidence path* (closures over a ``Context``) records the concrete paths and
  values that decided the verdict. It runs only for a rule that matched, and a count's
  ``where`` inside it is decided by the fast path (evidence there is never described).

Semantics follow Azure Policy:

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

The evidence (the concrete paths and values consulted) explains a verdict.
``tests/test_fast_path.py`` checks that the fast path, its closures and the full
evidence path (``CompiledRule.reference``) always agree.
"""
from __future__ import annotations

import functools
import ipaddress
import math
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


_PLAIN_NAME = re.compile(r"[A-Za-z_$][\w$-]*")


def format_path(segments: Sequence[Any]) -> str:
    return _format_path(tuple(segments))


@functools.lru_cache(maxsize=8192)
def _format_path(segments: tuple) -> str:
    text = ""
    for seg in segments:
        if isinstance(seg, int):
            text += f"[{seg}]"
        elif seg == WILDCARD:
            text += "[*]"
        elif not _PLAIN_NAME.fullmatch(str(seg)):
            text += f"['{seg}']"
        else:
            text += ("." if text else "") + str(seg)
    return text


def _child(obj: Any, key: Any) -> Any:
    if obj.__class__ is dict and key.__class__ is str:  # the common case, first
        value = obj.get(key, MISSING)
        if value is not MISSING:
            return value
    elif isinstance(key, int):
        return obj[key] if isinstance(obj, list) and -len(obj) <= key < len(obj) else MISSING
    elif not isinstance(obj, dict):
        return MISSING
    elif key in obj:
        return obj[key]
    lowered = key.lower()
    # Only a name of the same length lower-cases to an ASCII name (no character lower-cases to several
    # ASCII ones), so the others are skipped without lower-casing them; a non-ASCII name compares them all.
    size = len(lowered) if lowered.isascii() else None
    for k, v in obj.items():
        if isinstance(k, str) and (size is None or len(k) == size) and k.lower() == lowered:
            return v
    if type(obj) is _PartialScope:
        raise EvaluationError(f"{obj.what}.{key} is not known here (only id and name are; give \"{obj.offline}\" "
                              "with the resource to evaluate it offline)")
    return MISSING


class _PartialScope(dict):
    """resourceGroup() / subscription() built from a resource id: a property it lacks is an error, not missing."""

    what = "resourceGroup()"
    offline = "$resourceGroup"


def _as_collection(value: Any) -> list:
    """A counted member as ``field()`` of its array alias returns it: a one-element array."""
    return [] if value is MISSING else [value]


def _full_name(resource: Any) -> Any:
    """``fullName``: the resource name prepended by its parents' names (``myServer/myDatabase``)."""
    rid = resource.get("id") if isinstance(resource, dict) else None
    if not isinstance(rid, str) or "/providers/" not in rid.lower():
        return _child(resource, "name")
    parts = [p for p in rid[rid.lower().rindex("/providers/") + len("/providers/"):].split("/") if p]
    names = parts[2::2]
    return "/".join(names) if names else _child(resource, "name")


KeyIndex = dict  # id(object) -> (object, {lower-cased name: name}): one evaluation's case-insensitive lookups
# (and, under _QUOTED, the objects its evidence quoted)


def _child_miss(obj: dict, key: str, index: KeyIndex | None) -> Any:
    """``_child`` for a name that ``obj`` lacks as spelled: through ``index``, each object's names are
    lower-cased once per evaluation instead of once per lookup (the object is kept, so its id stays its own)."""
    if index is None or obj.__class__ is not dict:  # a dict subclass keeps its own rules for a miss
        return _child(obj, key)
    entry = index.get(id(obj))
    if entry is None or entry[0] is not obj:
        names: dict[str, str] = {}
        for k in obj:
            if isinstance(k, str):
                names.setdefault(k.lower(), k)
        entry = index[id(obj)] = (obj, names)
    name = entry[1].get(key.lower())
    return MISSING if name is None else obj[name]


def _indexed_getter(segments: tuple[str, ...]) -> Callable[[Any, KeyIndex | None], Any]:
    """``_getter`` of a path of names, whose misses go through an evaluation's ``index`` (``_child_miss``)."""
    def walk(obj: Any, ix: KeyIndex | None) -> Any:
        for seg in segments:
            if obj.__class__ is dict:
                obj = obj[seg] if seg in obj else _child_miss(obj, seg, ix)
            else:
                obj = _child(obj, seg)
        return obj

    return walk


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


class Frame(list):
    """What an expression sees: the resource at index 0, then the element of each enclosing ``count``.

    Rules are bound lexically at load time, so ``current()`` and a field inside a count read
    ``frame[depth]`` directly instead of searching the scopes by path on every call.
    """

    __slots__ = ()

    @property
    def resource(self) -> Any:
        return self[0]


@dataclass
class _Scope:
    prefix: tuple  # lower-cased alias path up to and including the counted '*'
    path: tuple  # concrete path of the element
    element: Any
    name: str | None = None  # value count name


@dataclass
class Context:
    """The evidence path's state: concrete paths per scope, and how to describe each condition."""

    resource: Mapping[str, Any]
    scopes: list[_Scope] = dc_field(default_factory=list)
    evidence: list[dict] = dc_field(default_factory=list)
    quiet: int = 0  # > 0 while inside count 'where' clauses
    frame: Frame = dc_field(default_factory=Frame)
    reference: bool = False  # True: 'where' clauses too through the evidence path (for tests), not the fast path
    index: KeyIndex | None = None  # the evaluation's case-insensitive lookups, shared with the fast path

    def __post_init__(self) -> None:
        self.frame.append(self.resource)

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


# Lexical scopes while compiling: (lower-cased prefix, None) for a field count, ((), name) for a value count.
LexicalScope = tuple[tuple, "str | None"]


def bind_field(scopes: Sequence[LexicalScope], segments: tuple) -> tuple[int, tuple]:
    """(frame index, remaining path) of a field inside the given counts: the innermost field count
    whose array the path starts with, else the resource (index 0)."""
    lowered = _lowered(segments)
    for depth in range(len(scopes) - 1, -1, -1):
        prefix, name = scopes[depth]
        if name is None and lowered[: len(prefix)] == prefix:
            return depth + 1, segments[len(prefix):]
    return 0, segments


def bind_current(scopes: Sequence[LexicalScope], key: str | None, segments: tuple | None) -> tuple[int, tuple] | None:
    """(frame index, remaining path) that ``current(key)`` names, or None outside a count that names it."""
    for depth in range(len(scopes) - 1, -1, -1):
        prefix, name = scopes[depth]
        if key is None:
            return depth + 1, ()
        if name is not None and name.lower() == key.lower():
            return depth + 1, ()
        if segments is not None and name is None:
            if _lowered(segments)[: len(prefix)] == prefix:
                return depth + 1, segments[len(prefix):]
    return None


def _getter(segments: tuple) -> Callable[[Any], Any]:
    """A value-only walk compiled for one path: the value (MISSING if absent), or with a ``[*]``
    the list of every value reached (MISSING included), with no concrete paths built."""
    segs = tuple(segments)
    if segs == ("$fullName",):
        return _full_name
    if WILDCARD not in segs:
        if not segs:
            return lambda obj: obj
        if len(segs) == 1:
            (a,) = segs
            return lambda obj: _child(obj, a)
        if len(segs) == 2:
            a, b = segs
            return lambda obj: _child(_child(obj, a), b)

        def walk(obj: Any) -> Any:
            for seg in segs:
                obj = _child(obj, seg)
            return obj

        return walk

    def fan(obj: Any) -> list:
        current = [obj]
        for seg in segs:
            if seg == WILDCARD:
                current = [x for v in current if isinstance(v, list) for x in v]
            else:
                current = [_child(v, seg) for v in current]
        return current

    return fan


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

Expr = Callable[[Frame], Any]  # an expression's value, given the frame (resource and count elements)

_TOKEN = re.compile(r"\s*(?:(?P<str>'(?:[^']|'')*')|(?P<num>-?\d+(?:\.\d+)?)|(?P<id>[A-Za-z_][\w]*)|(?P<sym>[(),.\[\]]))")
_NO_FRAME = Frame([{}])  # what a constant sub-expression is evaluated against at load time
GENERATE_EXPRESSIONS = True  # compile each expression to one Python function (False: nested closures only)
GENERATE_RULES = True  # compile each rule's fast path to one Python function (False: nested closures)


def is_expression(value: Any) -> bool:
    return isinstance(value, str) and value.startswith("[") and value.endswith("]") and not value.startswith("[[")


def unescape_literal(value: Any) -> Any:
    if isinstance(value, str) and value.startswith("[["):
        return value[1:]
    return value


def _blank(value: Any) -> Any:
    """A value condition's operand: what selects nothing is ""."""
    return "" if value is MISSING else value


def constant(value: Any) -> Expr:
    """An expression whose value is known at load time (operators pre-compute against it)."""
    fn = lambda frame: value  # noqa: E731
    fn.constant_value = value  # type: ignore[attr-defined]
    return fn


def constant_of(expr: Expr) -> tuple[bool, Any]:
    return (True, expr.constant_value) if hasattr(expr, "constant_value") else (False, None)


@dataclass
class _Node:
    fn: Expr  # the closure form: always correct, names the failing function in its errors
    constant: bool
    src: str = ""  # the same as one Python expression over the frame ``f`` (names in the compiler's namespace)


class ExpressionCompiler:
    """Compiles ARM template expressions used by Azure Policy rules.

    Each expression is built twice from one parse: nested closures (``_Node.fn``) and one
    generated Python function over the same helpers (``_Node.src``), which saves a call
    frame per node. The generated function is what runs; if it meets a Python error it
    re-runs the closures, whose message names the template function that failed.
    Template functions are registered in ``FUNCTIONS``; ``_call`` handles the few that
    need the compiler (parameters, field, current, if, and, or).
    """

    def __init__(self, parameters: Mapping[str, Any], resolver: FieldResolver):
        self.parameters = {k.lower(): v for k, v in parameters.items()}
        self.resolver = resolver
        self.scopes: list[LexicalScope] = []  # the counts enclosing what is being compiled
        self.ns: dict[str, Any] = {"_truthy": _truthy, "_child": _child, "_index": _index, "M": MISSING,
                                   "_Frame": Frame}
        self.nodes: set[str] = set()  # generated source of every sub-expression that reads the frame
        self._bound_nodes: dict[tuple, _Node] = {}

    def compile(self, text: str) -> Expr:
        node = self._parse(text)
        if node.constant:
            try:
                value = node.fn(_NO_FRAME)
            except EvaluationError as exc:
                raise RuleError(f"expression {text!r} always fails: {exc}") from None
            return constant(value)
        if not GENERATE_EXPRESSIONS:
            expr = node.fn
        else:
            expr = self._generate(node)
        expr.src = node.src  # type: ignore[attr-defined]  # for the generated rule (RuleCompiler)
        return expr

    def constant(self, text: str) -> Any:
        """The value of an expression that does not depend on the resource, else MISSING."""
        node = self._parse(text)
        if not node.constant:
            return MISSING
        try:
            return node.fn(_NO_FRAME)
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

    def _generate(self, node: _Node) -> Expr:
        frame = ", ".join(f"e{i}" for i in range(len(self.scopes) + 1))
        ns = dict(self.ns, _slow=node.fn)
        source = (f"def expression(f, ix=None):\n    try:\n        {frame}, = f\n        return {node.src}\n"
                  "    except (TypeError, ValueError, IndexError, AttributeError):\n        return _slow(f)\n")
        exec(compile(source, f"<expression {self._text[:60]}>", "exec"), ns)  # noqa: S102 - our own source
        return ns["expression"]

    def _name(self, value: Any, prefix: str = "_k") -> str:
        """A namespace name for ``value`` in the generated source."""
        name = f"{prefix}{len(self.ns)}"
        self.ns[name] = value
        return name

    def _node(self, fn: Expr, constant_: bool, src: str) -> _Node:
        if constant_:  # fold a constant sub-expression into one value, unless it fails (then it fails at run time)
            try:
                return _Node(fn, True, self._name(fn(_NO_FRAME)))
            except (EvaluationError, TypeError, ValueError, IndexError, AttributeError):
                pass
        self.nodes.add(src)
        return _Node(fn, constant_, src)

    # recursive descent
    def _peek(self) -> tuple[str, str] | None:
        return self._tokens[self._pos] if self._pos < len(self._tokens) else None

    def _take(self, sym: str | None = None) -> tuple[str, str]:
        tok = self._peek()
        if tok is None or (sym is not None and tok[1] != sym):
            raise RuleError(f"expected {sym or 'a value'} in expression {self._text!r}")
        self._pos += 1
        return tok

    def _literal(self, value: Any) -> _Node:
        return _Node(lambda f: value, True, self._name(value))

    def _expr(self) -> _Node:
        kind, text = self._take()
        if kind == "str":
            node = self._literal(text[1:-1].replace("''", "'"))
        elif kind == "num":
            node = self._literal(float(text) if "." in text else int(text))
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
                if not node.src:  # a function node built without generated source: call its closure
                    frame = ", ".join(f"e{i}" for i in range(len(self.scopes) + 1))
                    node.src = f"{self._name(node.fn)}(_Frame(({frame},)))"
                    self.nodes.add(node.src)
            elif text.lower() in ("true", "false", "null"):
                node = self._literal({"true": True, "false": False, "null": None}[text.lower()])
            else:
                raise RuleError(f"unknown name {text!r} in expression {self._text!r}")
        else:
            raise RuleError(f"unexpected {text!r} in expression {self._text!r}")
        while self._peek() and self._peek()[1] in (".", "["):
            if self._take()[1] == ".":
                prop = self._take()[1]
                base = node
                node = self._node(lambda f, b=base, p=prop: _child(b.fn(f), p), base.constant,
                                  f"_child({base.src}, {self._name(prop)})")
            else:
                index = self._expr()
                self._take("]")
                base = node
                node = self._node(lambda f, b=base, i=index: _index(b.fn(f), i.fn(f)),
                                  base.constant and index.constant, f"_index({base.src}, {index.src})")
        return node

    def _bound(self, index: int, rest: tuple) -> _Node:
        """The value at ``rest`` under frame[index]: a list of the values found if ``rest`` has a [*]."""
        key = (index, rest)
        if key not in self._bound_nodes:  # one node per path: the generated rule computes it once per loop
            self._bound_nodes[key] = self._bind(index, rest)
        return self._bound_nodes[key]

    def _bind(self, index: int, rest: tuple) -> _Node:
        get = _getter(rest)
        if WILDCARD in rest:
            fn = lambda o: [v for v in get(o) if v is not MISSING]  # noqa: E731
            return _Node(lambda f: fn(f[index]), False, f"{self._name(fn)}(e{index})")
        if not rest:
            return _Node(lambda f: f[index], False, f"e{index}")
        if rest != ("$fullName",) and all(seg.__class__ is str for seg in rest):
            src = f"{self._name(_indexed_getter(rest))}(e{index}, ix)"  # misses through the evaluation's index
        else:
            src = f"{self._name(get)}(e{index})"
        self.nodes.add(src)
        return _Node(lambda f: get(f[index]), False, src)

    def _call(self, name: str, args: list[_Node]) -> _Node:
        lname = name.lower()
        arity_ok = lambda lo, hi=None: lo <= len(args) <= (hi if hi is not None else lo)  # noqa: E731
        if lname == "parameters":
            if not arity_ok(1) or not args[0].constant:
                raise RuleError(f"parameters() takes one constant name in {self._text!r}")
            pname = args[0].fn(_NO_FRAME)
            if str(pname).lower() not in self.parameters:
                raise RuleError(f"unknown parameter {pname!r} in {self._text!r}")
            return self._literal(self.parameters[str(pname).lower()])
        if lname == "field":
            if not arity_ok(1) or not args[0].constant:
                raise RuleError(f"field() takes one constant alias in {self._text!r}")
            segments = self.resolver.resolve(args[0].fn(_NO_FRAME))
            index, rest = bind_field(self.scopes, segments)
            node = self._bound(index, rest)
            if WILDCARD in segments and WILDCARD not in rest:
                # an array alias is always a collection, even for the counted member inside 'where'
                listed = _as_collection
                return self._node(lambda f: listed(node.fn(f)), False, f"{self._name(listed)}({node.src})")
            return node
        if lname == "current":
            if len(args) > 1:
                raise RuleError(f"current() takes at most one argument in {self._text!r}")
            key = args[0].fn(_NO_FRAME) if args else None
            segments = None
            if key is not None and ("/" in key or "[*]" in key):
                segments = self.resolver.resolve(key)
            bound = bind_current(self.scopes, key, segments)
            if bound is None:
                def outside(f: Frame) -> Any:
                    raise EvaluationError(f"current({key!r}) used outside a count that names it")

                return _Node(outside, False, f"{self._name(outside)}(None)")
            return self._bound(*bound)
        if lname in ("resourcegroup", "subscription"):
            if args:
                raise RuleError(f"{name}() takes no arguments in {self._text!r}")
            scope_of = _resource_group_of if lname == "resourcegroup" else _subscription_of
            return self._node(lambda f: scope_of(f[0]), False, f"{self._name(scope_of)}(e0)")
        if lname == "utcnow":
            if len(args) > 1:
                raise RuleError(f"utcNow() takes at most one argument in {self._text!r}")
            return self._node(lambda f: _utc_now(), False, f"{self._name(_utc_now)}()")  # never folded at load
        if lname == "if":
            if not arity_ok(3):
                raise RuleError(f"if() takes three arguments in {self._text!r}")
            c, a, b = args
            return self._node(lambda f: a.fn(f) if _truthy(c.fn(f)) else b.fn(f), all(x.constant for x in args),
                              f"({a.src} if _truthy({c.src}) else {b.src})")
        if lname in ("and", "or"):
            fns = tuple(x.fn for x in args)
            want = lname == "or"  # the value that decides early

            def combine(f: Frame) -> bool:
                for fn in fns:
                    if _truthy(fn(f)) == want:
                        return want
                return not want

            src = f" {lname} ".join(f"_truthy({x.src})" for x in args) if args else repr(not want)
            return self._node(combine, all(x.constant for x in args), f"({src})")
        impl = FUNCTIONS.get(lname)
        if impl is None:
            raise RuleError(f"unsupported template function {name!r} in {self._text!r}")
        constant_ = all(x.constant for x in args)
        fns = tuple(x.fn for x in args)
        src = f"{self._name(impl)}({', '.join(x.src for x in args)})"
        if len(fns) == 1:
            (f1,) = fns
            return self._node(lambda f: _call_function(name, impl, (f1(f),)), constant_, src)
        if len(fns) == 2:
            f1, f2 = fns
            return self._node(lambda f: _call_function(name, impl, (f1(f), f2(f))), constant_, src)
        return self._node(lambda f: _call_function(name, impl, [fn(f) for fn in fns]), constant_, src)


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


def compile_value(text: Any, parameters: Mapping[str, Any], resolver: FieldResolver) -> Callable[[Mapping[str, Any]], Any]:
    """A template expression (or literal) outside a condition, e.g. ``details.name``: resource -> value."""
    if not is_expression(text):
        literal = unescape_literal(text)
        return lambda resource: literal
    expr = ExpressionCompiler(parameters, resolver).compile(text)
    return lambda resource: expr(Frame((resource,)))


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


class RuleCompiler:
    """Compiles a ``policyRule.if`` object into a ``Condition``.

    Each condition is compiled twice from one walk of the rule: the *evidence path*
    (``Condition``, over a ``Context``) records concrete paths and describes what
    decided the verdict; the *fast path* (``condition.fast``, over a bare ``Frame``)
    only computes the verdict: no paths, no evidence, fields and ``current()`` bound
    to frame slots at load time, and a ``count`` stops once its verdict is decided.
    ``CompiledRule.evaluate`` runs the fast path and the evidence path only for a
    rule that matched.
    """

    def __init__(self, parameters: Mapping[str, Any], resolver: FieldResolver):
        self.resolver = resolver
        self.expressions = ExpressionCompiler(parameters, resolver)

    def compile(self, node: Any, where: str = "rule") -> Condition:
        condition, fast, plan = self._compile(node, where)
        condition.closures = fast  # type: ignore[attr-defined]
        condition.fast = lambda f, ix=None: fast(f)  # type: ignore[attr-defined]
        if GENERATE_RULES:
            condition.fast = _RuleSource(self.expressions, fast).build(plan)  # type: ignore[attr-defined]
        return condition

    def _compile(self, node: Any, where: str) -> tuple[Condition, FastCondition, tuple]:
        if not isinstance(node, Mapping):
            raise RuleError(f"{where}: a condition must be an object, got {type(node).__name__}")
        keys = {k.lower(): k for k in node}
        if "allof" in keys or "anyof" in keys:
            key = keys.get("allof") or keys.get("anyof")
            items = node[key]
            if len(node) != 1 or not isinstance(items, list) or not items:
                raise RuleError(f"{where}: '{key}' must be the only key and hold a non-empty list")
            compiled = [self._compile(c, f"{where}.{key}[{i}]") for i, c in enumerate(items)]
            parts = tuple(c for c, _, _ in compiled)
            fast_parts = tuple(f for _, f, _ in compiled)
            plan = ("all" if key.lower() == "allof" else "any", [p for _, _, p in compiled])
            if key.lower() == "allof":
                def all_of(ctx: Context) -> bool:  # a plain loop: no generator per evaluation
                    for part in parts:
                        if not part(ctx):
                            return False
                    return True

                def all_of_fast(f: Frame) -> bool:
                    for part in fast_parts:
                        if not part(f):
                            return False
                    return True

                return all_of, all_of_fast, plan

            def any_of(ctx: Context) -> bool:
                for part in parts:
                    if part(ctx):
                        return True
                return False

            def any_of_fast(f: Frame) -> bool:
                for part in fast_parts:
                    if part(f):
                        return True
                return False

            return any_of, any_of_fast, plan
        if "not" in keys:
            if len(node) != 1:
                raise RuleError(f"{where}: 'not' must be the only key")
            inner, inner_fast, inner_plan = self._compile(node[keys["not"]], f"{where}.not")
            return (lambda ctx: not inner(ctx)), (lambda f: not inner_fast(f)), ("not", inner_plan)
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
        return constant(unescape_literal(raw))

    def _field_condition(self, raw: Any, op: str, op_name: str, expected: Expr,
                         where: str) -> tuple[Condition, FastCondition]:
        if not isinstance(raw, str):
            raise RuleError(f"{where}: 'field' must be a string")
        test = fast_operator(op, expected)
        if is_expression(raw):
            name_expr = self.expressions.compile(raw)
            resolver, scopes = self.resolver, tuple(self.expressions.scopes)

            resolved: dict[str, tuple] = {}  # field name -> path: a rule names few fields

            def resolve(f: Frame) -> tuple[str, tuple]:
                name = str(name_expr(f))
                if name not in resolved:
                    try:
                        path = resolver.resolve(name)
                    except RuleError as exc:
                        raise EvaluationError(str(exc)) from None
                    if len(resolved) < 256:
                        resolved[name] = path
                    return name, path
                return name, resolved[name]

            def dynamic(ctx: Context) -> bool:
                name, segments = resolve(ctx.frame)
                return _check_pairs(ctx, name, *ctx.lookup(segments), op, op_name, expected(ctx.frame))

            def dynamic_fast(f: Frame) -> bool:
                index, rest = bind_field(scopes, resolve(f)[1])
                value = _getter(rest)(f[index])
                if WILDCARD not in rest:
                    return test(value, f)
                return all(test(v, f) for v in value)

            return dynamic, dynamic_fast, ("closure", dynamic_fast, len(scopes))
        try:
            segments = self.resolver.resolve(raw)
        except RuleError as exc:
            raise RuleError(f"{where}: {exc}") from None
        scopes = self.expressions.scopes
        if segments == ("$fullName",) or raw.strip().lower() == "location":
            # computed or normalised values (fullName from the id; 'East US 2' equals 'eastus2'): closures only
            key = _location_key if raw.strip().lower() == "location" else (lambda v: v)
            index, rest = bind_field(scopes, segments)
            keyed_expected = lambda f: key(expected(f))  # noqa: E731
            keyed_test = fast_operator(op, keyed_expected)

            def fast_keyed(f: Frame) -> bool:
                pairs = _walk(f[index], rest, ())
                return keyed_test(key(pairs[0][1] if pairs else MISSING), f)

            def slow(ctx: Context) -> bool:
                pairs = [(p, key(v)) for p, v in ctx.lookup(segments)[0]]
                return _check_pairs(ctx, raw, pairs, False, op, op_name, key(expected(ctx.frame)))

            return slow, fast_keyed, ("closure", fast_keyed, len(scopes))
        index, rest = bind_field(self.expressions.scopes, segments)
        get = _getter(rest)
        if WILDCARD not in rest:
            fast = lambda f: test(get(f[index]), f)  # noqa: E731
        else:
            def fast(f: Frame) -> bool:  # [*] outside count: every element (vacuously true for none)
                for value in get(f[index]):
                    if not test(value, f):
                        return False
                return True

        if index == 0 and WILDCARD not in rest:  # a field of the resource itself: one value, its path known now
            path_text = format_path(segments)

            def described(ctx: Context) -> bool:
                return _check_value(ctx, raw, path_text, get(ctx.frame[0]), op, op_name, expected(ctx.frame))

            return described, fast, ("field", index, rest, op, expected)
        return ((lambda ctx: _check_pairs(ctx, raw, *ctx.lookup(segments), op, op_name, expected(ctx.frame))), fast,
                ("field", index, rest, op, expected))

    def _value_condition(self, raw: Any, op: str, op_name: str, expected: Expr,
                         where: str) -> tuple[Condition, FastCondition]:
        actual = self._operand(raw, where)
        if op != "exists" and hasattr(actual, "src") and not hasattr(actual, "constant_value"):
            # A value expression that selects nothing compares as "" (the docs' table gives
            # [field('...missingArray')] as ""; "Inherit a tag from the resource group if missing" relies
            # on resourceGroup().tags[name] of a missing tag being "").
            inner = actual
            actual = lambda f: _blank(inner(f))  # noqa: E731
            actual.src = f"_blank({inner.src})"  # type: ignore[attr-defined]
            self.expressions.ns["_blank"] = _blank
        label = raw if isinstance(raw, str) else repr(raw)
        test = fast_operator(op, expected)

        def check(ctx: Context) -> bool:
            value = actual(ctx.frame)
            result = apply_operator(op, value, expected(ctx.frame))
            ctx.note(lambda: {"value": label, "actual": _evidence_value(value, ctx.index), "operator": op_name,
                              "result": result})
            return result

        return check, (lambda f: test(actual(f), f)), ("value", actual, op, expected)

    def _count_condition(self, raw: Any, op: str, op_name: str, expected: Expr,
                         where: str) -> tuple[Condition, FastCondition]:
        if not isinstance(raw, Mapping):
            raise RuleError(f"{where}: 'count' must be an object")
        keys = {k.lower(): k for k in raw}
        extra = set(keys) - {"field", "value", "name", "where"}
        if extra:
            raise RuleError(f"{where}.count: unknown key(s) {sorted(keys[k] for k in extra)}")
        scopes = self.expressions.scopes
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
            array_index, array_rest = bind_field(scopes, array_path)
            get_arrays = _getter(array_rest)
            fanned = WILDCARD in array_rest

            def scope_of(path: tuple, item: Any) -> _Scope:
                return _Scope(prefix, path, item)

            def arrays(f: Frame) -> Sequence[Any]:
                found = get_arrays(f[array_index])
                return found if fanned else (found,)

            def located(ctx: Context) -> list[tuple[tuple, list]]:  # (the path of an array, the array)
                return [(path, value) for path, value in ctx.lookup(array_path)[0] if isinstance(value, list)]

            label, scope = alias, (prefix, None)
            plan_source = ("field", array_index, array_rest)
        elif "value" in keys:
            source = self._operand(raw[keys["value"]], where)
            name = raw.get(keys["name"]) if "name" in keys else None
            if name is not None and not isinstance(name, str):
                raise RuleError(f"{where}.count: 'name' must be a string")

            def values_of(f: Frame) -> list:
                values = source(f)
                if values is MISSING or values is None:
                    return []
                if not isinstance(values, list):
                    raise EvaluationError(f"count value must be an array, got {type(values).__name__}")
                return values

            def scope_of(path: tuple, item: Any) -> _Scope:
                return _Scope((), path, item, name or "")

            def arrays(f: Frame) -> Sequence[Any]:
                return (values_of(f),)

            def located(ctx: Context) -> list[tuple[tuple, list]]:
                return [(("value",), values_of(ctx.frame))]

            label = raw[keys["value"]] if isinstance(raw[keys["value"]], str) else "value"
            scope = ((), name or "")
            plan_source = ("value", source)
        else:
            raise RuleError(f"{where}.count: needs 'field' or 'value'")
        where_cond = where_fast = where_plan = None
        depth = len(scopes) + 1  # the frame slot of the counted element
        if "where" in keys:
            scopes.append(scope)
            try:
                where_cond, where_fast, where_plan = self._compile(raw[keys["where"]], f"{where}.count.where")
            finally:
                scopes.pop()
            if GENERATE_RULES:  # what decides each element, in the evidence path too
                where_fast = _RuleSource(self.expressions, where_fast).build(where_plan, depth)
        indexed = GENERATE_RULES  # a generated 'where' takes the evaluation's lookup index

        def scan_items(f: Frame, array: list, ix: KeyIndex | None = None) -> list[int]:
            """The positions of the elements of ``array`` that 'where' holds for, one element at a time."""
            hits = []
            for i, item in enumerate(array):
                f.append(item)
                try:
                    if where_fast(f, ix) if indexed else where_fast(f):
                        hits.append(i)
                finally:
                    f.pop()
            return hits

        scans: list = []  # the same as one generated loop over the array, built when first needed
        expressions = self.expressions

        def scan(f: Frame, array: list, ix: KeyIndex | None) -> list[int]:
            if not scans:
                scans.append(_RuleSource(expressions, scan_items).build_scan(where_plan, depth)
                             if indexed else scan_items)
            return scans[0](f, array, ix)

        def check(ctx: Context) -> bool:
            matched, frame = [], ctx.frame
            if where_cond is None or not ctx.reference:
                # evidence inside 'where' is never described: the fast path decides each element, and
                # an element's path is made only for one that matched
                for base, array in located(ctx):
                    hits = range(len(array)) if where_cond is None else scan(frame, array, ctx.index)
                    matched.extend((base + (i,), array[i]) for i in hits)
            else:
                for base, array in located(ctx):  # every condition through the evidence path
                    for i, item in enumerate(array):
                        path = base + (i,)
                        frame.append(item)
                        ctx.scopes.append(scope_of(path, item))
                        ctx.quiet += 1
                        try:
                            if where_cond(ctx):
                                matched.append((path, item))
                        finally:
                            ctx.quiet -= 1
                            ctx.scopes.pop()
                            frame.pop()
            result = apply_operator(op, len(matched), expected(ctx.frame))
            ctx.note(lambda: {
                "count": label,
                "matched": [
                    {"path": format_path(p) if p[0] != "value" else f"value[{p[1]}]",
                     "value": _evidence_value(v, ctx.index)}
                    for p, v in matched[:10]
                ],
                "matchedCount": len(matched),
                "operator": op_name,
                "result": result,
            })
            return result

        test = fast_operator(op, expected)
        cutoff = _count_cutoff(op, expected)
        stop, decided = cutoff if cutoff else (-1, False)

        def count_fast(f: Frame) -> bool:
            n = 0
            for array in arrays(f):
                if not isinstance(array, list):
                    continue
                if where_fast is None:
                    n += len(array)
                    continue
                for item in array:
                    f.append(item)
                    try:
                        hit = where_fast(f)
                    finally:
                        f.pop()
                    if hit:
                        n += 1
                        if n == stop:  # e.g. 'greater: 0' is decided by the first match
                            return decided
            return test(n, f)

        plan = ("count", plan_source, where_plan, depth, op, expected, cutoff)
        if stop == 0:
            return check, (lambda f: decided), plan
        return check, count_fast, plan


FastCondition = Callable[[Frame], bool]


_FRAME_SLOT = re.compile(r"\be(\d+)\b")  # a frame slot in generated source
_FAILED = _Missing()  # a hoisted sub-expression that failed: computed again where it is used


_MEMO_SCALARS = frozenset({str, int, float, bool, type(None), _Missing})


def _memo_key(*values: Any) -> tuple | None:
    """A key for remembered count results: the values with their types (1 and True differ), or None when
    one is an array or an object. A sub-expression that failed (``_FAILED``) is part of the key: had the
    count used it, it would have failed again and nothing would have been remembered."""
    for v in values:
        if v.__class__ not in _MEMO_SCALARS:
            return None
    return tuple((v.__class__, v) for v in values)


class _BoundedMemo(dict):
    """Remembered results of one count site, shared by evaluations (the inputs are plain values, and the
    result a pure function of them); emptied when full, so a stream of distinct inputs stays bounded."""

    limit = 1024  # about 0.6 MB per count site at most

    def put(self, key: tuple, value: int) -> None:
        if len(self) >= self.limit:
            self.clear()
        self[key] = value


def _bad_count_value(values: Any) -> None:
    raise EvaluationError(f"count value must be an array, got {type(values).__name__}")


_INLINE_COMPARE = {"greater": ">", "greaterorequals": ">=", "less": "<", "lessorequals": "<=", "equals": "==",
                   "notequals": "!="}


class _RuleSource:
    """Generates one Python function for a rule's fast path (as template engines and JSON-schema
    compilers do): conditions become statements over locals (``e0`` the resource, ``eN`` the element
    of the N-th enclosing count), constant operands are names prepared at load time, and a count
    breaks out of its loop once its verdict is decided. On a Python error the closures re-run, so
    errors read the same."""

    def __init__(self, expressions: ExpressionCompiler, closures: FastCondition):
        self.x = expressions
        self.closures = closures
        self.lines: list[str] = []
        self.n = 0
        self.hoisted: dict[str, str] = {}  # expression source -> the local computed before the loop
        self.locals: dict[str, str] = {}  # expression source -> the name of that local

    def build(self, plan: tuple, depth: int = 0) -> FastCondition:
        """The function of ``plan`` over a frame of ``depth`` + 1 slots (0: a whole rule)."""
        self.lines = []
        frame = ", ".join(f"e{i}" for i in range(depth + 1))
        self.line(2, f"{frame}, = f")
        result = self.emit(plan, 2)
        return self.function("rule", "f, ix=None", result, "_slow(f)")

    def function(self, name: str, params: str, result: str, fallback: str) -> Callable:
        """The generated lines as ``def name(params)`` returning ``result``; on a Python error it returns
        ``fallback`` (the closures, so errors read the same)."""
        ns = dict(self.x.ns, _slow=self.closures, _Frame=Frame, _apply=apply_operator, _bad=_bad_count_value,
                  _miss=_child_miss, EvaluationError=EvaluationError, _FAILED=_FAILED, _memo_key=_memo_key)
        source = (f"def {name}({params}):\n    try:\n" + "\n".join(self.lines) + f"\n        return {result}\n"
                  f"    except (TypeError, ValueError, IndexError, AttributeError):\n        return {fallback}\n")
        exec(compile(source, f"<{name}>", "exec"), ns)  # noqa: S102 - our own source
        fn = ns[name]
        fn.source = source  # type: ignore[attr-defined]
        return fn

    def build_scan(self, where: tuple, depth: int) -> Callable[[Frame, list, KeyIndex | None], list[int]]:
        """One function ``(frame, array, ix)`` -> the positions of the elements of ``array`` that a count's
        'where' holds for, over a frame of the ``depth`` enclosing slots: the count's own loop, without
        stopping at a decided verdict (the evidence path lists the matches). What reads only the enclosing
        elements is computed once, before the loop. On a Python error ``closures`` (the same, one element
        at a time) runs instead."""
        self.lines = []
        self.line(2, f"{', '.join(f'e{i}' for i in range(depth))}, = f")
        added = self.hoist(2, where, depth)
        self.line(2, "hits = []")
        self.line(2, f"for i, e{depth} in enumerate(a):")
        hit = self.emit(where, 3)
        for ref in added:
            del self.hoisted[ref]
            del self.locals[ref]
        self.line(3, f"if {hit}:")
        self.line(4, "hits.append(i)")
        return self.function("scan", "f, a, ix=None", "hits", "_slow(f, a, ix)")

    def var(self, stem: str = "r") -> str:
        self.n += 1
        return f"{stem}{self.n}"

    def line(self, indent: int, text: str) -> None:
        self.lines.append("    " * indent + text)

    def expr(self, expr: Expr) -> str:
        is_constant, value = constant_of(expr)
        if is_constant:
            return self.x._name(value)
        return f"({self.substitute(expr.src)})"

    def substitute(self, src: str) -> str:
        """``src`` with every hoisted sub-expression replaced by its local (the largest first)."""
        for ref in sorted(self.hoisted, key=len, reverse=True):
            src = src.replace(ref, self.hoisted[ref])
        return src

    def sources(self, plan: tuple | None) -> list[str]:
        """The generated source of every expression under ``plan``."""
        if plan is None:
            return []
        kind = plan[0]
        if kind in ("all", "any"):
            return [src for part in plan[1] for src in self.sources(part)]
        if kind == "not":
            return self.sources(plan[1])
        exprs: list = []
        if kind == "field":
            exprs = [plan[4]]
        elif kind == "value":
            exprs = [plan[1], plan[3]]
        elif kind == "count":
            exprs = [plan[5]] + ([plan[1][1]] if plan[1][0] == "value" else [])
            return [getattr(e, "src", "") for e in exprs] + self.sources(plan[2])
        return [getattr(e, "src", "") for e in exprs]

    def hoist(self, indent: int, where: tuple, depth: int) -> list[str]:
        """Before a count's loop: every sub-expression of the loop's expressions that reads only outer
        elements (``current(...)`` of an enclosing count, a field of the resource, and what is computed
        from them) is computed once, not once per item. Largest first; one that fails is computed
        again where it is used, so it fails there, as it would have."""
        texts = self.sources(where)
        added: list[str] = []
        for src in sorted(self.x.nodes, key=len, reverse=True):
            slots = [int(n) for n in _FRAME_SLOT.findall(src)]
            if not slots or max(slots) >= depth or src in self.hoisted:
                continue
            if not any(src in t for t in texts) or any(src in chosen for chosen in added):
                continue
            local = self.var("h")
            value = self.substitute(src)
            self.guarded(indent, local, value)
            self.hoisted[src] = f"({local} if {local} is not _FAILED else ({value}))"
            self.locals[src] = local
            added.append(src)
        return added

    def guarded(self, indent: int, local: str, value: str) -> str:
        """``local = value``, or ``_FAILED`` if computing it fails (then it fails again where it is used)."""
        self.line(indent, "try:")
        self.line(indent + 1, f"{local} = {value}")
        self.line(indent, "except (EvaluationError, TypeError, ValueError, IndexError, AttributeError):")
        self.line(indent + 1, f"{local} = _FAILED")
        return local

    def clock_names(self) -> list[str]:
        """The names utcNow() has in the generated source: what reads it is not a function of its inputs."""
        return [name for name, v in self.x.ns.items() if v is _utc_now]

    def memo_inputs(self, source: tuple, where: tuple, depth: int) -> list[str] | None:
        """The hoisted sub-expressions a count over a constant array depends on, if nothing else from
        outside it: its result is then a function of their values (e.g. a port-range template over a
        parameter's list of ports, decided by the range of the security rule). None if the count reads
        more than that."""
        if source[0] != "value" or not constant_of(source[1])[0]:
            return None
        texts = self.sources(where)
        impure = self.clock_names()
        used = [src for src in self.hoisted if any(src in t for t in texts)]
        for text in texts:
            for src in sorted(used, key=len, reverse=True):
                text = text.replace(src, "")
            if any(int(slot) < depth for slot in _FRAME_SLOT.findall(text)) or any(n in text for n in impure):
                return None
        if not used or not self.reads_inside(where, depth):
            return None
        return used

    def reads_of(self, used: list[str], depth: int) -> list[str] | None:
        """The reads of enclosing elements (a field's getter, else the element itself) that the hoisted
        sub-expressions ``used`` are computed from: they are functions of these values alone. None if
        one also reads the clock (utcNow()): then only its value can key what the count gave."""
        if any(name in src for src in used for name in self.clock_names()):
            return None
        bound = sorted({node.src for node in self.x._bound_nodes.values()}, key=len, reverse=True)
        reads: list[str] = []
        for src in used:
            for b in bound:
                if b in src and all(int(n) < depth for n in _FRAME_SLOT.findall(b)):
                    src = src.replace(b, "")
                    if b not in reads:
                        reads.append(b)
            for n in _FRAME_SLOT.findall(src):
                if int(n) < depth and f"e{n}" not in reads:
                    reads.append(f"e{n}")
        return reads

    def reads_inside(self, plan: tuple | None, depth: int) -> bool:
        """True if every field condition and field count of ``plan`` reads only the counted element (or deeper)."""
        if plan is None:
            return True
        kind = plan[0]
        if kind in ("all", "any"):
            return all(self.reads_inside(part, depth) for part in plan[1])
        if kind == "not":
            return self.reads_inside(plan[1], depth)
        if kind == "field":
            return plan[1] >= depth
        if kind == "value":
            return True  # its expressions are checked as text
        if kind == "count":
            return (plan[1][0] == "value" or plan[1][1] >= depth) and self.reads_inside(plan[2], depth)
        return False  # a closure reads the whole frame

    def get(self, indent: int, target: str, base: str, rest: tuple) -> None:
        """``target = value at rest under base``, dict lookups inline."""
        self.line(indent, f"{target} = {base}")
        for seg in rest:
            if isinstance(seg, str):
                key = repr(seg)
                self.line(indent, f"if {target}.__class__ is dict:")
                self.line(indent + 1, f"{target} = {target}[{key}] if {key} in {target} else _miss({target}, {key}, ix)")
                self.line(indent, "else:")
                self.line(indent + 1, f"{target} = _child({target}, {key})")
            else:
                self.line(indent, f"{target} = _child({target}, {seg!r})")

    def test(self, indent: int, target: str, value: str, op: str, expected: Expr) -> None:
        """``target = the operator's verdict on value``."""
        is_constant, k = constant_of(expected)
        if not is_constant:
            self.line(indent, f"{target} = _apply({op!r}, {value}, {self.expr(expected)})")
            return
        if op in ("equals", "notequals") and k.__class__ is str:
            neg = " not" if op == "notequals" else ""
            miss = op == "notequals"
            ks, kf = self.x._name(k), self.x._name(k.casefold())
            general = self.x._name(fast_operator(op, expected))
            self.line(indent, f"if {value} is M or {value} is None:")
            self.line(indent + 1, f"{target} = {miss}")
            self.line(indent, f"elif {value}.__class__ is str:")
            self.line(indent + 1, f"{target} ={neg} ({value} == {ks} or {value}.casefold() == {kf})")
            self.line(indent, "else:")
            self.line(indent + 1, f"{target} = {general}({value}, None)")
            return
        if op in ("equals", "notequals") and isinstance(k, bool):  # e.g. a template expression 'equals: true'
            neg = " not" if op == "notequals" else ""
            general = self.x._name(fast_operator(op, expected))
            self.line(indent, f"if {value}.__class__ is bool:")
            self.line(indent + 1, f"{target} ={neg} ({value} is {k!r})")
            self.line(indent, "else:")
            self.line(indent + 1, f"{target} = {general}({value}, None)")
            return
        if op in ("in", "notin") and isinstance(k, list) and all(_eq_key(v) is not None for v in k):
            neg = " not" if op == "notin" else ""
            strings = self.x._name(frozenset(key[1] for key in map(_eq_key, k) if key[0] == "s"))
            general = self.x._name(fast_operator(op, expected))
            self.line(indent, f"if {value}.__class__ is str:")
            self.line(indent + 1, f"{target} = {value}.casefold(){neg} in {strings}")
            self.line(indent, "else:")
            self.line(indent + 1, f"{target} = {general}({value}, None)")
            return
        self.line(indent, f"{target} = {self.x._name(fast_operator(op, expected))}({value}, None)")

    def emit(self, plan: tuple, indent: int) -> str:
        """Statements at ``indent`` that leave the condition's verdict in the returned local."""
        kind = plan[0]
        out = self.var()
        if kind in ("all", "any"):
            want = kind == "all"
            self.line(indent, f"{out} = {not want}")
            level = indent
            for part in plan[1]:
                got = self.emit(part, level)
                self.line(level, f"if {'' if want else 'not '}{got}:")
                level += 1
            self.line(level, f"{out} = {want}")
            return out
        if kind == "not":
            got = self.emit(plan[1], indent)
            self.line(indent, f"{out} = not {got}")
            return out
        if kind == "closure":
            frame = ", ".join(f"e{i}" for i in range(plan[2] + 1))
            self.line(indent, f"{out} = {self.x._name(plan[1])}(_Frame(({frame},)))")
            return out
        if kind == "field":
            _, index, rest, op, expected = plan
            value = self.var("v")
            if WILDCARD not in rest:
                self.get(indent, value, f"e{index}", rest)
                self.test(indent, out, value, op, expected)
                return out
            self.line(indent, f"{out} = True")  # [*] outside count: every element
            self.line(indent, f"for {value} in {self.x._name(_getter(rest))}(e{index}):")
            self.test(indent + 1, out, value, op, expected)
            self.line(indent + 1, f"if not {out}:")
            self.line(indent + 2, "break")
            return out
        if kind == "value":
            _, actual, op, expected = plan
            value = self.var("v")
            self.line(indent, f"{value} = {self.expr(actual)}")
            self.test(indent, out, value, op, expected)
            return out
        _, source, where, depth, op, expected, cutoff = plan
        stop, decided = cutoff if cutoff else (-1, False)
        if stop == 0:
            self.line(indent, f"{out} = {decided}")
            return out
        n, array = self.var("n"), self.var("a")
        self.line(indent, f"{n} = 0")
        if source[0] == "field":
            _, index, rest = source
            if WILDCARD in rest:
                self.line(indent, f"for {array} in {self.x._name(_getter(rest))}(e{index}):")
                level = indent + 1
            else:
                self.get(indent, array, f"e{index}", rest)
                level = indent
        else:
            self.line(indent, f"{array} = {self.expr(source[1])}")
            self.line(indent, f"if {array} is M or {array} is None:")
            self.line(indent + 1, f"{array} = []")
            self.line(indent, f"elif not isinstance({array}, list):")
            self.line(indent + 1, f"_bad({array})")
            level = indent
        self.line(level, f"if isinstance({array}, list):")
        if where is None:
            self.line(level + 1, f"{n} += len({array})")
        else:
            mark = len(self.lines)
            added = self.hoist(level + 1, where, depth)
            hoisted = self.lines[mark:]
            del self.lines[mark:]
            inputs = self.memo_inputs(source, where, depth)
            reads = self.reads_of(inputs, depth) if inputs is not None else None
            body = level + 1
            if reads is None:
                self.lines.extend(hoisted)
            if inputs is not None:
                # The count is a function of the values it reads from enclosing elements (a security rule's
                # port range): remembered by those, and what is computed from them only when not yet known.
                # (With utcNow() in what it computes, by the computed values themselves.)
                if reads is None:
                    keys = [self.locals[src] for src in inputs]
                else:
                    keys = [self.guarded(body, self.var("l"), read) for read in reads]
                memo, key = self.x._name(_BoundedMemo()), self.var("k")
                self.line(body, f"{key} = _memo_key({', '.join(keys)},)")
                self.line(body, f"{n} = {memo}.get({key}, -1) if {key} is not None else -1")
                self.line(body, f"if {n} < 0:")
                self.line(body + 1, f"{n} = 0")
                if reads is not None:
                    self.lines.extend("    " + text for text in hoisted)
                body += 1
            self.line(body, f"for e{depth} in {array}:")
            hit = self.emit(where, body + 1)
            for ref in added:
                del self.hoisted[ref]
                del self.locals[ref]
            self.line(body + 1, f"if {hit}:")
            self.line(body + 2, f"{n} += 1")
            if stop > 0:
                self.line(body + 2, f"if {n} == {stop}:")
                self.line(body + 3, "break")
            if inputs is not None:
                self.line(body, f"if {key} is not None:")
                self.line(body + 1, f"{memo}.put({key}, {n})")
            if stop > 0 and level > indent:  # a fanned-out array path: stop the outer loop too
                self.line(level, f"if {n} == {stop}:")
                self.line(level + 1, "break")
        is_constant, k = constant_of(expected)
        if is_constant and op in _INLINE_COMPARE and isinstance(k, (int, float)) and not isinstance(k, bool):
            self.line(indent, f"{out} = {n} {_INLINE_COMPARE[op]} {k!r}")
        else:
            self.test(indent, out, n, op, expected)
        return out


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


@dataclass(frozen=True)
class CompiledRule:
    condition: Condition  # the evidence path
    fast: FastCondition | None = None  # the verdict alone; the evidence path's own when None

    def __post_init__(self) -> None:
        if self.fast is None:
            object.__setattr__(self, "fast", getattr(self.condition, "fast", None) or
                               (lambda f, ix=None: self.condition(Context(f[0]))))

    def matches(self, resource: Mapping[str, Any], index: KeyIndex | None = None) -> bool:
        """The verdict alone (fast path): True means the resource is non-compliant.

        ``index`` (an empty dict, then passed again) shares case-insensitive name lookups between
        rules evaluated on the same, unchanged resource."""
        return self.fast(Frame((resource,)), index)

    def evaluate(self, resource: Mapping[str, Any], evidence: bool | None = None,
                 index: KeyIndex | None = None) -> tuple[bool, list[dict]]:
        """(matched, evidence). ``matched`` means the resource is non-compliant.

        By default the fast path decides, and only a matched rule is evaluated again to describe
        its evidence; ``evidence=True`` always describes it, ``evidence=False`` never does.
        ``index`` is as for ``matches``.
        """
        if evidence is None:
            if not self.fast(Frame((resource,))):
                return False, []
        elif not evidence:
            return self.fast(Frame((resource,))), []
        ctx = Context(resource, index=index)
        matched = self.condition(ctx)
        return matched, [describe() for describe in ctx.evidence]

    def reference(self, resource: Mapping[str, Any]) -> tuple[bool, list[dict]]:
        """(matched, evidence) with every condition, inside counts too, through the evidence path:
        what the fast path must always agree with."""
        ctx = Context(resource, reference=True)
        matched = self.condition(ctx)
        return matched, [describe() for describe in ctx.evidence]


def compile_rule(rule: Any, parameters: Mapping[str, Any], resolver: FieldResolver) -> CompiledRule:
    return CompiledRule(RuleCompiler(parameters, resolver).compile(rule))
