"""The fast path's code generator: one Python function per rule (``_RuleSource``). Pure.

Conditions become statements over locals (``e0`` the resource, ``eN`` the element of the N-th
enclosing count), constant operands are names prepared at load time, a count stops once its verdict
is decided, values that depend only on an outer element are computed once per loop, and a count's
result over plain values is remembered (``_BoundedMemo``). On a Python error the closures the
source was generated beside re-run, so errors read the same on both paths.
"""
from __future__ import annotations

import re
from typing import Any, Callable

from .expressions import Expr, ExpressionCompiler, constant_of
from .functions import _utc_now
from .operators import apply_operator, _eq_key, fast_operator
from .paths import WILDCARD, EvaluationError, Frame, KeyIndex, _Missing, _child_miss, _getter


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
