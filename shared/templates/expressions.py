"""ARM template expressions (``"[concat(parameters('prefix'), 'sa')]"``) evaluated offline, before a
deployment. Pure.

What needs Azure (``reference()``, ``list*()``), what is random or time-based (``newGuid()``,
``utcNow()``) and what hashes the deployment's scope (``uniqueString()``, ``guid()``) evaluates to an
``Unknown`` carrying why: it flows through every function that takes it, so a property built from it
is known to be unknown, and a control that reads it is NotEvaluated with that reason, never a guess.
The string functions, comparisons, logic, arrays and objects the rule engine shares with templates
come from ``shared.policy``'s table; the template-only ones (``parameters``, ``variables``,
``copyIndex``, ``resourceId``, ``format``, ...) are here. Docs: "ARM template functions".
"""
from __future__ import annotations

import json
import re
from dataclasses import dataclass, field
from typing import Any, Callable, Mapping

from ..policy import MISSING, TEMPLATE_FUNCTIONS

_TOKEN = re.compile(r"\s*(?:(?P<str>'(?:[^']|'')*')|(?P<num>-?\d+(?:\.\d+)?)|(?P<id>[A-Za-z_][\w]*)"
                    r"|(?P<sym>[(),.\[\]]))")


class TemplateError(ValueError):
    """A template that cannot be deployed as written (ARM would refuse it); the message says where."""


@dataclass(frozen=True)
class Unknown:
    """A value that is not known before the deployment runs, and why."""

    why: str

    def __str__(self) -> str:
        return f"[unknown: {self.why}]"


@dataclass
class Context:
    """What a template's expressions see: its parameters and variables, the copy loop indexes, the scope."""

    parameters: Mapping[str, Any]  # lower-case name -> value (already evaluated)
    variables: Mapping[str, Any]  # lower-case name -> raw value (evaluated on use)
    subscription_id: str
    resource_group: str
    location: Any  # the resource group's location: given, or Unknown
    deployment: str = "template"
    copy: dict[str, int] = field(default_factory=dict)  # loop name (lower) -> index; "" is the innermost
    _evaluated: dict[str, Any] = field(default_factory=dict)
    _evaluating: set = field(default_factory=set)

    def variable(self, name: str) -> Any:
        key = name.lower()
        if key in self._evaluated:
            return self._evaluated[key]
        if key not in self.variables:
            raise TemplateError(f"variables('{name}'): the template has no such variable")
        if key in self._evaluating:
            raise TemplateError(f"variables('{name}') refers to itself")
        self._evaluating.add(key)
        try:
            value = evaluate(self.variables[key], self)
        finally:
            self._evaluating.discard(key)
        self._evaluated[key] = value
        return value

    def within(self, **copies: int) -> "Context":
        """The same context inside a copy loop (``copyIndex()``)."""
        inner = Context(self.parameters, self.variables, self.subscription_id, self.resource_group, self.location,
                        self.deployment, {**self.copy, **copies}, self._evaluated, self._evaluating)
        return inner


def is_expression(value: Any) -> bool:
    return isinstance(value, str) and value.startswith("[") and value.endswith("]") and not value.startswith("[[")


def evaluate(value: Any, ctx: Context) -> Any:
    """A template value with its expressions evaluated (objects and arrays throughout, property names
    too; ``[[`` escapes)."""
    if isinstance(value, str):
        if is_expression(value):
            return Expression(value).run(ctx)
        return value[1:] if value.startswith("[[") else value
    if isinstance(value, list):
        return [evaluate(v, ctx) for v in value]
    if isinstance(value, Mapping):
        return {property_name(k, ctx): evaluate(v, ctx) for k, v in value.items()}
    return value


def property_name(key: Any, ctx: Context) -> Any:
    """An object's property name, which may be an expression (as Bicep writes ``{'${id}': {}}``: a user-assigned
    identity's resource id as the key); kept as written when its value is not known before deployment."""
    if not isinstance(key, str) or not key.startswith("["):
        return key
    value = evaluate(key, ctx)
    return value if isinstance(value, str) else key


def unknown_in(value: Any) -> Unknown | None:
    """The first Unknown in ``value`` (itself, or inside its arrays and objects)."""
    if isinstance(value, Unknown):
        return value
    if isinstance(value, list):
        return next((u for u in map(unknown_in, value) if u is not None), None)
    if isinstance(value, Mapping):
        return next((u for u in map(unknown_in, value.values()) if u is not None), None)
    return None


# --------------------------------------------------------------------------- the template-only functions

_NEEDS_AZURE = {"reference": "reads a deployed resource", "list": "reads a deployed resource's keys or secrets",
                "listkeys": "reads a deployed resource's keys", "listsecrets": "reads a deployed resource's secrets",
                "pickzones": "asks Azure which zones the region has", "providers": "asks Azure for provider metadata",
                "newguid": "is random", "utcnow": "is the deployment's time",
                "uniquestring": "hashes the deployment's scope", "guid": "hashes its arguments as ARM does",
                "managementgroup": "names the management group of the deployment",
                "filter": "is a lambda function", "map": "is a lambda function", "reduce": "is a lambda function",
                "sort": "is a lambda function", "toobject": "is a lambda function", "lambda": "is a lambda function",
                "mapvalues": "is a lambda function", "groupby": "is a lambda function"}
PUBLIC_CLOUD = {"name": "AzureCloud", "gallery": "https://gallery.azure.com/",
                "graph": "https://graph.windows.net/", "portal": "https://portal.azure.com",
                "resourceManager": "https://management.azure.com/",
                "authentication": {"loginEndpoint": "https://login.microsoftonline.com/",
                                   "audiences": ["https://management.core.windows.net/", "https://management.azure.com/"]},
                "suffixes": {"storage": "core.windows.net", "sqlServerHostname": ".database.windows.net",
                             "keyvaultDns": ".vault.azure.net", "acrLoginServer": ".azurecr.io"}}


def _resource_id(ctx: Context, args: list, scope: str) -> str:
    """``resourceId([subscriptionId], [resourceGroupName], type, name, ...)`` and its siblings."""
    strings = [str(a) for a in args]
    type_at = next((i for i, a in enumerate(strings) if "/" in a and "." in a.split("/")[0]), None)
    if type_at is None:
        raise TemplateError(f"{scope}ResourceId({', '.join(strings)}): no resource type (Namespace/type)")
    prefix, rtype, names = strings[:type_at], strings[type_at], strings[type_at + 1:]
    segments = rtype.split("/")
    if len(segments) - 1 != len(names):
        raise TemplateError(f"{scope}ResourceId: type {rtype} takes {len(segments) - 1} name(s), {len(names)} given")
    tail = "/".join([segments[0]] + [p for pair in zip(segments[1:], names) for p in pair])
    if scope == "tenant":
        return f"/providers/{tail}"
    subscription = prefix[0] if (scope == "subscription" and prefix) or len(prefix) == 2 else ctx.subscription_id
    if scope == "subscription":
        return f"/subscriptions/{subscription}/providers/{tail}"
    group = prefix[-1] if prefix else ctx.resource_group
    return f"/subscriptions/{subscription}/resourceGroups/{group}/providers/{tail}"


def _format(template: str, *args: Any) -> str:
    def one(match: re.Match) -> str:
        index = int(match.group(1))
        if index >= len(args):
            raise TemplateError(f"format('{template}'): no argument {index}")
        value = args[index]
        return ("true" if value else "false") if isinstance(value, bool) else str(value)

    return re.sub(r"\{(\d+)(?::[^}]*)?\}", one, template)


def _items(obj: Any) -> list[dict]:
    if not isinstance(obj, Mapping):
        raise TemplateError("items() takes an object")
    return [{"key": k, "value": v} for k, v in sorted(obj.items(), key=lambda kv: str(kv[0]).lower())]


def _copy_index(ctx: Context, args: list) -> Any:
    loop, offset = "", 0
    for arg in args:
        if isinstance(arg, int) and not isinstance(arg, bool):
            offset = arg
        else:
            loop = str(arg).lower()
    if loop not in ctx.copy:
        raise TemplateError(f"copyIndex({', '.join(map(repr, args))}) outside its copy loop")
    index = ctx.copy[loop]
    return index if isinstance(index, Unknown) else index + offset


def _template_functions(ctx: Context) -> dict[str, Callable[..., Any]]:
    def parameter(name: str) -> Any:
        key = str(name).lower()
        if key not in ctx.parameters:
            raise TemplateError(f"parameters('{name}'): the template has no such parameter")
        return ctx.parameters[key]

    group = {"id": f"/subscriptions/{ctx.subscription_id}/resourceGroups/{ctx.resource_group}",
             "name": ctx.resource_group, "type": "Microsoft.Resources/resourceGroups", "location": ctx.location,
             "properties": {"provisioningState": "Succeeded"}}
    return {
        "parameters": parameter,
        "variables": lambda name: ctx.variable(str(name)),
        "resourcegroup": lambda: group,
        "subscription": lambda: {"id": f"/subscriptions/{ctx.subscription_id}", "subscriptionId": ctx.subscription_id,
                                 "tenantId": Unknown("tenant().tenantId is the deploying tenant's"),
                                 "displayName": Unknown("subscription().displayName is the subscription's name")},
        "tenant": lambda: {"tenantId": Unknown("tenant().tenantId is the deploying tenant's")},
        "deployment": lambda: {"name": ctx.deployment, "properties": {}},
        "environment": lambda: PUBLIC_CLOUD,
        "resourceid": lambda *a: _resource_id(ctx, list(a), "group"),
        "subscriptionresourceid": lambda *a: _resource_id(ctx, list(a), "subscription"),
        "tenantresourceid": lambda *a: _resource_id(ctx, list(a), "tenant"),
        "extensionresourceid": lambda scope, rtype, *names: f"{scope}/providers/" + "/".join(
            [rtype.split("/")[0]] + [p for pair in zip(rtype.split("/")[1:], names) for p in pair]),
        "format": _format,
        "join": lambda items, sep: str(sep).join(str(i) for i in items),
        "json": lambda text: json.loads(text),
        "string": lambda v: v if isinstance(v, str) else json.dumps(v, separators=(",", ":")) if isinstance(
            v, (dict, list)) else ("true" if v else "false") if isinstance(v, bool) else str(v),
        "createobject": lambda *a: {a[i]: a[i + 1] for i in range(0, len(a) - 1, 2)},
        "intersection": lambda *a: [x for x in a[0] if all(x in other for other in a[1:])] if isinstance(a[0], list)
        else {k: v for k, v in a[0].items() if all(o.get(k) == v for o in a[1:])},
        "take": lambda v, n: v[:max(int(n), 0)],
        "skip": lambda v, n: v[max(int(n), 0):],
        "range": lambda start, count: list(range(int(start), int(start) + int(count))),
        "lastindexof": lambda s, sub: str(s).lower().rfind(str(sub).lower()),
        "items": _items,
        "objectkeys": lambda obj: list(obj.keys()),
        "true": lambda: True,
        "false": lambda: False,
        "null": lambda: None,
        "base64": lambda s: __import__("base64").b64encode(str(s).encode()).decode(),
        "base64tostring": lambda s: __import__("base64").b64decode(str(s)).decode(),
        "uri": lambda base, rel: base.rsplit("/", 1)[0] + "/" + rel if not base.endswith("/") else base + rel,
    }


# --------------------------------------------------------------------------- parsing and running


@dataclass
class _Call:
    name: str
    args: list
    accessors: list  # ('.', name) or ('[', expr)


class Expression:
    """One ``[...]`` expression: parsed once, run in a context."""

    def __init__(self, text: str) -> None:
        self.text = text
        body = text[1:-1]
        tokens, pos = [], 0
        while pos < len(body):
            m = _TOKEN.match(body, pos)
            if not m or m.end() == pos:
                if body[pos:].strip() == "":
                    break
                raise TemplateError(f"cannot parse expression {text!r} at {body[pos:pos + 20]!r}")
            tokens.append((m.lastgroup, m.group(m.lastgroup)))
            pos = m.end()
        self._tokens, self._pos = tokens, 0
        self.tree = self._expr()
        if self._pos != len(tokens):
            raise TemplateError(f"unexpected {tokens[self._pos][1]!r} in expression {text!r}")

    def _peek(self) -> tuple | None:
        return self._tokens[self._pos] if self._pos < len(self._tokens) else None

    def _take(self, symbol: str | None = None) -> tuple:
        token = self._peek()
        if token is None or (symbol is not None and token[1] != symbol):
            raise TemplateError(f"expected {symbol or 'more'} in expression {self.text!r}")
        self._pos += 1
        return token

    def _expr(self) -> Any:
        kind, value = self._take()
        if kind == "str":
            node: Any = ("lit", value[1:-1].replace("''", "'"))
        elif kind == "num":
            node = ("lit", float(value) if "." in value else int(value))
        elif kind == "id":
            if self._peek() is not None and self._peek()[1] == "(":
                self._take("(")
                args = []
                while self._peek() is not None and self._peek()[1] != ")":
                    args.append(self._expr())
                    if self._peek() is not None and self._peek()[1] == ",":
                        self._take(",")
                self._take(")")
                node = ("call", value, args)
            elif value.lower() in ("true", "false", "null"):
                node = ("lit", {"true": True, "false": False, "null": None}[value.lower()])
            else:
                raise TemplateError(f"{value!r} is not a function call in expression {self.text!r}")
        else:
            raise TemplateError(f"unexpected {value!r} in expression {self.text!r}")
        while self._peek() is not None and self._peek()[1] in (".", "["):
            if self._take()[1] == ".":
                node = ("get", node, ("lit", self._take()[1]))
            else:
                index = self._expr()
                self._take("]")
                node = ("get", node, index)
        return node

    def run(self, ctx: Context) -> Any:
        return self._run(self.tree, ctx, _template_functions(ctx))

    def _run(self, node: Any, ctx: Context, functions: Mapping[str, Callable]) -> Any:
        kind = node[0]
        if kind == "lit":
            return node[1]
        if kind == "get":
            target, key = self._run(node[1], ctx, functions), self._run(node[2], ctx, functions)
            if isinstance(target, Unknown):
                return target
            if isinstance(key, Unknown):
                return key
            if isinstance(target, Mapping):
                found = next((v for k, v in target.items() if str(k).lower() == str(key).lower()), MISSING)
                if found is MISSING:
                    raise TemplateError(f"{self.text}: the object has no property '{key}'")
                return found
            if isinstance(target, list) and isinstance(key, int) and -len(target) <= key < len(target):
                return target[key]
            raise TemplateError(f"{self.text}: cannot take [{key!r}] of {type(target).__name__}")
        name = node[1].lower()
        args = node[2]
        if name == "if":
            condition = self._run(args[0], ctx, functions)
            if isinstance(condition, Unknown):
                return Unknown(f"the condition of if() is not known: {condition.why}")
            return self._run(args[1] if condition else args[2], ctx, functions)
        if name in ("and", "or"):
            unknown = None
            for arg in args:
                value = self._run(arg, ctx, functions)
                if isinstance(value, Unknown):
                    unknown = unknown or value
                elif bool(value) is (name == "or"):
                    return name == "or"
            return unknown if unknown is not None else name == "and"
        if name == "coalesce":
            for arg in args:
                value = self._run(arg, ctx, functions)
                if isinstance(value, Unknown) or value is not None:
                    return value
            return None
        if name in _NEEDS_AZURE or name.startswith("list"):
            why = _NEEDS_AZURE.get(name, "reads a deployed resource's secrets")
            return Unknown(f"{node[1]}() {why}")
        values = [self._run(a, ctx, functions) for a in args]
        if name == "copyindex":
            return _copy_index(ctx, values)
        unknown = next((v for v in values if isinstance(v, Unknown)), None)
        if unknown is not None:
            return unknown
        impl = functions.get(name) or TEMPLATE_FUNCTIONS.get(name)
        if impl is None:
            raise TemplateError(f"{self.text}: {node[1]}() is not an ARM template function this tool evaluates")
        try:
            result = impl(*values)
        except TemplateError:
            raise
        except (TypeError, ValueError, IndexError, KeyError, AttributeError, ZeroDivisionError) as exc:
            raise TemplateError(f"{self.text}: {node[1]}() failed: {exc}") from None
        return None if result is MISSING else result
