"""ARM template expressions in rules (``[parameters('x')]``, ``[field('...')]``, ``[concat(...)]``). Pure.

``ExpressionCompiler`` parses an expression once and builds it twice: nested closures and one
generated Python function over the same helpers. The template functions themselves are in
``functions.py``; the few that need the compiler (parameters, field, current, if, and, or) here.
"""
from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any, Callable, Mapping

from .functions import FUNCTIONS, _call_function, _index, _resource_group_of, _subscription_of, _truthy, _utc_now
from .paths import (MISSING, WILDCARD, EvaluationError, FieldResolver, Frame, LexicalScope, RuleError, _as_collection,
                    bind_current, bind_field, _child, _getter, _indexed_getter)


Expr = Callable[[Frame], Any]  # an expression's value, given the frame (resource and count elements)

_TOKEN = re.compile(r"\s*(?:(?P<str>'(?:[^']|'')*')|(?P<num>-?\d+(?:\.\d+)?)|(?P<id>[A-Za-z_][\w]*)|(?P<sym>[(),.\[\]]))")
_NO_FRAME = Frame([{}])  # what a constant sub-expression is evaluated against at load time
GENERATE_EXPRESSIONS = True  # compile each expression to one Python function (False: nested closures only)


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


def compile_value(text: Any, parameters: Mapping[str, Any], resolver: FieldResolver) -> Callable[[Mapping[str, Any]], Any]:
    """A template expression (or literal) outside a condition, e.g. ``details.name``: resource -> value."""
    if not is_expression(text):
        literal = unescape_literal(text)
        return lambda resource: literal
    expr = ExpressionCompiler(parameters, resolver).compile(text)
    return lambda resource: expr(Frame((resource,)))
