"""An ARM deployment template expanded as ARM would for the resources it declares. Pure.

Handled, as "Template structure and syntax" and "Resource iteration" (Microsoft Learn) describe:
parameters (a parameters file, ``-p NAME=VALUE``, defaults; allowedValues checked), variables
(``copy`` arrays too), resource ``copy`` loops and ``condition``, property ``copy`` loops, child
resources nested in ``resources`` (type and name joined to the parent's), ``languageVersion`` 2.0
symbolic resources (``existing`` ones are not deployed, so not judged), extension resources with
``scope``, and nested deployments (``Microsoft.Resources/deployments``) with an inline template,
``expressionEvaluationOptions.scope`` inner or outer. A linked template (``templateLink``) is not
read: its deployment is reported as not evaluated. Each resource keeps the line it is declared on.
"""
from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any, Mapping

from .expressions import Context, TemplateError, Unknown, evaluate, property_name, unknown_in

DEPLOYMENTS = "microsoft.resources/deployments"
PLACEHOLDER_SUBSCRIPTION = "00000000-0000-0000-0000-000000000000"
PLACEHOLDER_GROUP = "resource-group"
# Keys of a resource declaration that describe the deployment, not the resource.
_NOT_THE_RESOURCE = {"copy", "condition", "dependson", "resources", "comments", "metadata", "existing", "scope",
                     "import", "asserts"}


def is_template(doc: Any) -> bool:
    """A deployment template: ``$schema`` says so, or it has ``resources`` beside ``contentVersion``."""
    if not isinstance(doc, Mapping):
        return False
    schema = str(doc.get("$schema", "")).lower()
    return "deploymenttemplate.json" in schema or ("resources" in doc and "contentVersion" in doc)


@dataclass
class Declared:
    """One resource the template deploys, evaluated as far as the template says."""

    resource: dict  # id, name, type, apiVersion, location, kind, sku, tags, properties, ... (Unknowns replaced)
    line: int
    label: str  # where it is declared: resources[2], a symbolic name, a copy index
    unknowns: list[tuple[tuple, str]] = field(default_factory=list)  # (path, why) not known before deployment
    note: str | None = None  # e.g. a condition not known before deployment
    not_evaluated: str | None = None  # set for a deployment whose template is not read (templateLink)


@dataclass
class Expansion:
    resources: list[Declared] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)  # resources left out, and why


def _typed(name: str, declared: Mapping[str, Any], value: Any) -> Any:
    """A ``-p NAME=VALUE`` text as the declared type (a parameters file gives JSON values already)."""
    kind = str(declared.get("type", "string")).lower()
    if not isinstance(value, str) or kind in ("string", "securestring"):
        return value
    try:
        if kind == "int":
            return int(value)
        if kind == "bool":
            if value.lower() not in ("true", "false"):
                raise ValueError("true or false")
            return value.lower() == "true"
        return json.loads(value)
    except ValueError as exc:
        raise TemplateError(f"parameter {name}: {value!r} is not a {kind} ({exc})") from None


def parameter_values(document: Any, origin: str) -> dict[str, Any]:
    """A parameters file: ``{"parameters": {name: {"value": ...}}}`` (the deploymentParameters schema) or
    the inner object alone. A Key Vault ``reference`` is not known offline."""
    if not isinstance(document, Mapping):
        raise TemplateError(f"{origin}: a parameters file holds a JSON object")
    items = document.get("parameters", document)
    if not isinstance(items, Mapping):
        raise TemplateError(f"{origin}: 'parameters' must be an object of name -> {{\"value\": ...}}")
    out: dict[str, Any] = {}
    for name, entry in items.items():
        if name.startswith("$"):
            continue
        if isinstance(entry, Mapping) and "value" in entry:
            out[name] = entry["value"]
        elif isinstance(entry, Mapping) and "reference" in entry:
            out[name] = Unknown(f"parameter {name} is a Key Vault secret reference")
        else:
            raise TemplateError(f"{origin}: parameter {name}: give it as {{\"value\": ...}}")
    return out


def _parameters(template: Mapping[str, Any], given: Mapping[str, Any], scope: Context) -> dict[str, Any]:
    declared = template.get("parameters") or {}
    if not isinstance(declared, Mapping):
        raise TemplateError("'parameters' of the template must be an object")
    lowered = {k.lower(): (k, v) for k, v in given.items()}
    unknown = sorted(k for k in lowered if k not in {d.lower() for d in declared})
    if unknown:
        raise TemplateError(f"parameter(s) {', '.join(lowered[k][0] for k in unknown)} given, but the template "
                            f"declares none of that name (it has: {', '.join(declared) or 'none'})")
    values: dict[str, Any] = {}
    ctx = Context(values, {}, scope.subscription_id, scope.resource_group, scope.location, scope.deployment)
    for name, spec in declared.items():
        spec = spec if isinstance(spec, Mapping) else {}
        if name.lower() in lowered:
            value = _typed(name, spec, lowered[name.lower()][1])
        elif "defaultValue" in spec:
            value = evaluate(spec["defaultValue"], ctx)
        else:
            value = Unknown(f"parameter {name} has no value (give it in --parameters or -p {name}=...)")
        allowed = spec.get("allowedValues")
        if isinstance(allowed, list) and not isinstance(value, Unknown) and not (
                value in allowed or (isinstance(value, list) and all(v in allowed for v in value))):
            raise TemplateError(f"parameter {name}: {value!r} is not one of its allowedValues {allowed}")
        values[name.lower()] = value
    return values


def _context(template: Mapping[str, Any], given: Mapping[str, Any], scope: Context) -> Context:
    variables = template.get("variables") or {}
    if not isinstance(variables, Mapping):
        raise TemplateError("'variables' of the template must be an object")
    plain = {k.lower(): v for k, v in variables.items() if k.lower() != "copy"}
    ctx = Context(_parameters(template, given, scope), plain, scope.subscription_id, scope.resource_group,
                  scope.location, scope.deployment)
    for loop in variables.get("copy") or []:  # variable iteration: one array variable per loop
        if not isinstance(loop, Mapping) or "name" not in loop:
            raise TemplateError("each variables.copy entry needs a name, a count and an input")
        count = evaluate(loop.get("count"), ctx)
        if isinstance(count, Unknown):
            ctx._evaluated[str(loop["name"]).lower()] = Unknown(f"the count of variable {loop['name']} is not known: "
                                                                 f"{count.why}")
            continue
        ctx._evaluated[str(loop["name"]).lower()] = [
            evaluate_copies(loop.get("input"), ctx.within(**{str(loop["name"]).lower(): i})) for i in range(int(count))]
    return ctx


def evaluate_copies(value: Any, ctx: Context) -> Any:
    """``evaluate`` with property iteration: ``"copy": [{"name", "count", "input"}]`` in an object
    becomes the property ``name``, an array of ``input`` for each index."""
    if isinstance(value, Mapping) and isinstance(value.get("copy"), list):
        out = {property_name(k, ctx): evaluate_copies(v, ctx) for k, v in value.items() if k != "copy"}
        for loop in value["copy"]:
            if not isinstance(loop, Mapping) or "name" not in loop or "input" not in loop:
                raise TemplateError("each property copy entry needs a name, a count and an input")
            count = evaluate(loop.get("count"), ctx)
            name = str(loop["name"])
            if isinstance(count, Unknown):
                out[name] = Unknown(f"the count of {name} is not known: {count.why}")
            else:
                out[name] = [evaluate_copies(loop["input"], ctx.within(**{name.lower(): i})) for i in range(int(count))]
        return out
    if isinstance(value, Mapping):
        return {property_name(k, ctx): evaluate_copies(v, ctx) for k, v in value.items()}
    if isinstance(value, list):
        return [evaluate_copies(v, ctx) for v in value]
    return evaluate(value, ctx)


def _unknowns(value: Any, path: tuple = ()) -> tuple[Any, list[tuple[tuple, str]]]:
    """``value`` with each Unknown replaced by its text, and where they were."""
    if isinstance(value, Unknown):
        return str(value), [(path, value.why)]
    if isinstance(value, list):
        items, found = [], []
        for i, v in enumerate(value):
            clean, inner = _unknowns(v, path + (i,))
            items.append(clean)
            found += inner
        return items, found
    if isinstance(value, Mapping):
        out, found = {}, []
        for k, v in value.items():
            clean, inner = _unknowns(v, path + (k,))
            out[k] = clean
            found += inner
        return out, found
    return value, []


def _segment(value: Any) -> str:
    """A name (or scope) as it goes into an id: one not known shows what it waits for, ``{uniqueString}``."""
    unknown = value if isinstance(value, Unknown) else unknown_in(value)
    if unknown is None:
        return str(value)
    import re

    what = re.split(r"[(:]", unknown.why, maxsplit=1)[0].strip()
    return "{" + re.sub(r"[^A-Za-z0-9.-]+", "-", what)[:40].strip("-") + "}"


class _Expander:
    def __init__(self, lines: Mapping[int, int], out: Expansion) -> None:
        self.lines, self.out = lines, out

    def template(self, template: Mapping[str, Any], ctx: Context, where: str) -> None:
        resources = template.get("resources", [])
        if isinstance(resources, Mapping):  # languageVersion 2.0: symbolic name -> resource
            items = [(str(name), r) for name, r in resources.items()]
        elif isinstance(resources, list):
            items = [(f"{where}resources[{i}]", r) for i, r in enumerate(resources)]
        else:
            raise TemplateError(f"{where}'resources' must be an array (or, with languageVersion 2.0, an object)")
        for label, raw in items:
            if not isinstance(raw, Mapping):
                raise TemplateError(f"{label}: a resource must be an object")
            self.resource(raw, ctx, label, parent=None)

    def resource(self, raw: Mapping[str, Any], ctx: Context, label: str, parent: tuple[str, str] | None) -> None:
        line = self.lines.get(id(raw), 1)
        if raw.get("existing") is True:
            self.out.notes.append(f"{label} (line {line}): an existing resource, not deployed by the template: "
                                  f"not judged")
            return
        loop = raw.get("copy")
        if isinstance(loop, Mapping):
            name = str(loop.get("name", "")).lower()
            count = evaluate(loop.get("count"), ctx)
            if isinstance(count, Unknown):
                self.out.notes.append(f"{label} (line {line}): copy count not known ({count.why}): one instance judged")
                instances = [(f"{label}[?]", ctx.within(**{name: Unknown(f'copyIndex() of {label}: '
                                                                          f'{count.why}'), "": 0}))]
            else:
                instances = [(f"{label}[{i}]", ctx.within(**{name: i, "": i})) for i in range(int(count))]
        else:
            instances = [(label, ctx)]
        for where, inner in instances:
            self.instance(raw, inner, where, line, parent)

    def instance(self, raw: Mapping[str, Any], ctx: Context, label: str, line: int,
                 parent: tuple[str, str] | None) -> None:
        note = None
        if "condition" in raw:
            condition = evaluate(raw["condition"], ctx)
            if isinstance(condition, Unknown):
                note = f"its condition is not known before deployment ({condition.why}): judged as if deployed"
            elif not condition:
                self.out.notes.append(f"{label} (line {line}): condition is false: not deployed, not judged")
                return
        rtype = evaluate(raw.get("type"), ctx)
        if not isinstance(rtype, str) or "/" not in rtype and parent is None:
            raise TemplateError(f"{label} (line {line}): 'type' must be a resource type (Namespace/type)")
        name = evaluate(raw.get("name"), ctx)
        if parent is not None and rtype.count("/") == 0:  # a child nested in its parent: relative type and name
            rtype = f"{parent[0]}/{rtype}"
            name = f"{parent[1]}/{_segment(name)}" if not isinstance(name, Unknown) else name
        if rtype.lower() == DEPLOYMENTS:
            self.deployment(raw, ctx, label, line)
            return
        body = {k: evaluate_copies(v, ctx) for k, v in raw.items() if k.lower() not in _NOT_THE_RESOURCE}
        body["type"], body["name"] = rtype, name
        scope = evaluate(raw.get("scope"), ctx) if "scope" in raw else None
        body["id"] = self.resource_id(ctx, rtype, name, scope)
        clean, unknowns = _unknowns(body)
        clean["id"] = body["id"]
        self.out.resources.append(Declared(clean, line, label, unknowns, note))
        for i, child in enumerate(raw.get("resources") or []):
            if isinstance(child, Mapping):
                self.resource(child, ctx, f"{label}.resources[{i}]", (rtype, _segment(name)))

    @staticmethod
    def resource_id(ctx: Context, rtype: str, name: Any, scope: Any) -> str:
        types = rtype.split("/")
        names = _segment(name).split("/")
        tail = "/".join([types[0]] + [p for pair in zip(types[1:], names) for p in pair])
        if scope is not None:
            base = _segment(scope)
            if not base.startswith("/"):  # a resource of the same group, by type and name (Bicep's scope:)
                base = f"/subscriptions/{ctx.subscription_id}/resourceGroups/{ctx.resource_group}/providers/{base}"
            return f"{base.rstrip('/')}/providers/{tail}"
        return f"/subscriptions/{ctx.subscription_id}/resourceGroups/{ctx.resource_group}/providers/{tail}"

    def deployment(self, raw: Mapping[str, Any], ctx: Context, label: str, line: int) -> None:
        props = raw.get("properties") or {}
        name = evaluate(raw.get("name"), ctx)
        group = evaluate(raw.get("resourceGroup"), ctx) if "resourceGroup" in raw else ctx.resource_group
        subscription = evaluate(raw.get("subscriptionId"), ctx) if "subscriptionId" in raw else ctx.subscription_id
        if "templateLink" in props or not isinstance(props.get("template"), Mapping):
            link = props.get("templateLink", {}) if isinstance(props.get("templateLink"), Mapping) else {}
            what = link.get("uri") or link.get("id") or link.get("relativePath") or "no inline template"
            self.out.resources.append(Declared(
                {"id": self.resource_id(ctx, "Microsoft.Resources/deployments", name, None),
                 "type": "Microsoft.Resources/deployments", "name": _segment(name)}, line, label,
                not_evaluated=f"the nested deployment links a template ({_segment(what)}), which is not read offline: "
                              f"scan that template on its own"))
            return
        inner_scope = str(((props.get("expressionEvaluationOptions") or {}).get("scope") or "outer")).lower()
        scope = Context({}, {}, _segment(subscription), _segment(group), ctx.location, _segment(name))
        if inner_scope == "inner":
            given = {k: v.get("value") if isinstance(v, Mapping) and "value" in v else Unknown(
                f"parameter {k} of nested deployment {_segment(name)} is a reference") for k, v in
                (evaluate(props.get("parameters") or {}, ctx)).items()}
            nested = _context(props["template"], given, scope)
        else:  # outer: the nested template's expressions are the parent's (its own parameters and variables unused)
            nested = Context(ctx.parameters, ctx.variables, scope.subscription_id, scope.resource_group, ctx.location,
                             scope.deployment, dict(ctx.copy), ctx._evaluated, ctx._evaluating)
        self.template(props["template"], nested, f"{label}.template.")


def expand_template(template: Mapping[str, Any], *, parameters: Mapping[str, Any] | None = None,
                    lines: Mapping[int, int] | None = None, subscription_id: str = PLACEHOLDER_SUBSCRIPTION,
                    resource_group: str = PLACEHOLDER_GROUP, location: Any = None) -> Expansion:
    """The resources ``template`` deploys with ``parameters``, at a resource group of that name and
    location (not given: every ``resourceGroup().location`` is not known before deployment)."""
    if not is_template(template):
        raise TemplateError("not an ARM deployment template (no $schema .../deploymentTemplate.json#, no resources)")
    rg_location = location if location else Unknown("resourceGroup().location is the deployment resource group's "
                                                    "(give --location)")
    scope = Context({}, {}, subscription_id, resource_group, rg_location)
    out = Expansion()
    ctx = _context(template, parameters or {}, scope)
    _Expander(lines or {}, out).template(template, ctx, "")
    return out
