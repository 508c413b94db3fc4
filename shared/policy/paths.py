"""Paths, fields and frames: how the rule language reads a resource. Pure.

An alias resolves to a parsed path (``parse_path``: name segments, ``*`` for ``[*]``, indices);
``_walk``/``locate`` yield every (concrete path, value) it reaches. A missing key is ``MISSING``
(never equal to anything), names match case-insensitively (``KeyIndex`` remembers one evaluation's
lookups), and ``Frame``/``Context`` hold the resource and the elements of the enclosing counts.
"""
from __future__ import annotations

import functools
import re
from dataclasses import dataclass, field as dc_field
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


def locate(obj: Any, segments: Sequence[Any]) -> list[tuple[tuple, Any]]:
    """Every (concrete path, value) a parsed path reaches in ``obj``; ``*`` fans out, a miss is MISSING."""
    return _walk(obj, segments, ())


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
