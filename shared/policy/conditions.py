"""Conditions and counts: ``RuleCompiler`` walks a ``policyRule.if`` once and builds the evidence path
(closures over a ``Context``) and the fast path (closures, then one generated function) side by side;
``CompiledRule`` runs them. Pure.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Callable, Mapping, Sequence

from .codegen import FastCondition, _RuleSource
from .evidence import _check_pairs, _check_value, _evidence_value, _location_key
from .expressions import Expr, ExpressionCompiler, _blank, constant, is_expression, unescape_literal
from .operators import OPERATOR_NAMES, apply_operator, _count_cutoff, fast_operator
from .paths import (MISSING, WILDCARD, Context, EvaluationError, FieldResolver, Frame, KeyIndex, RuleError, _Scope,
                    bind_field, format_path, _getter, _walk)


Condition = Callable[[Context], bool]
GENERATE_RULES = True  # compile each rule's fast path to one Python function (False: nested closures)


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
