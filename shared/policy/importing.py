"""Azure Policy definitions and initiatives -> control documents. Pure apart from the caller's file I/O.

Every definition gets an ``Outcome``: ``imported`` (a control that loads as is),
``template`` (a control whose parameters still need values: it loads once they are
given, with ``--parameters`` or ``CONTROL_PARAMETERS``) or ``refused`` (with the
reason). One bad definition never stops the others.

Effects, as the monitor evaluates them (the rule's ``if`` true means non-compliant):

* ``audit``, ``deny``: the ``if`` is the control's rule;
* ``auditIfNotExists``, ``deployIfNotExists``: the ``details`` become a ``related``
  check (nothing is deployed): constant or computed ``name`` and ``resourceGroupName``,
  ``existenceScope``;
* ``modify``: the ``if`` and "some operation would change the resource"; the
  operations are shown as the remediation; ``append``: the ``if``, values shown;
* ``Disabled`` (as the default or the value given): not imported unless asked
  (``enable_disabled``), then with the first auditable allowed effect;
* the data-plane modes (``Microsoft.Kubernetes.Data``, ``Microsoft.KeyVault.Data``,
  ``Microsoft.ManagedHSM.Data``) are *delegated*: the control takes Azure Policy's own verdict
  for the cluster or vault from its compliance states (``shared.policy_states``);
* ``denyAction``, ``auditAction``, ``manual`` and ``mutate`` are refused: they have no verdict to keep
  (see docs/POLICY-COMPATIBILITY.md).

Values for parameters come in the shape of an assignment's ``parameters``
(``{"name": {"value": ...}}``); an initiative maps its own parameters onto its
members' (``[parameters('x')]``) as Azure does.
"""
from __future__ import annotations

import hashlib
import json
import re
from dataclasses import dataclass, field
from typing import Any, Callable, Iterable, Mapping

from ..catalog import ControlLoadError, control_from_document, related_scope
from . import FieldResolver, is_expression
from ..domain.policy_states import DEFINITION_ID, POLICY_STATES_TYPE

AUDIT_EFFECTS = {"audit", "deny"}
EXISTENCE_EFFECTS = {"auditifnotexists", "deployifnotexists"}
CONDITION_EFFECTS = {"modify", "append"}
AUDITABLE_EFFECTS = AUDIT_EFFECTS | EXISTENCE_EFFECTS | CONDITION_EFFECTS
REFUSED_EFFECTS = {
    "denyaction": "effect denyAction blocks delete requests at the API; it leaves no resource state to monitor",
    "manual": "effect manual: compliance is attested by people, not computed from the resource",
    "auditaction": "effect auditAction records API requests (actions), not resource state; there is no verdict to keep",
    "mutate": "effect mutate changes Kubernetes objects at admission inside the cluster; it has no ARM verdict",
}
# Data-plane modes: Azure Policy judges objects Resource Manager does not hold, and reports its verdict per
# cluster or vault. Such a definition becomes a control that takes Azure Policy's own verdict for the
# resource (shared.policy_states); (where it is evaluated, the types whose policy states carry the verdict).
DATA_PLANE_MODES = {
    "microsoft.kubernetes.data": ("inside the cluster by the Azure Policy add-on (Gatekeeper)",
                                  ["Microsoft.ContainerService/managedClusters", "Microsoft.Kubernetes/connectedClusters"]),
    "microsoft.keyvault.data": ("in the vault's data plane (keys, secrets, certificates)", ["Microsoft.KeyVault/vaults"]),
    "microsoft.managedhsm.data": ("in the Managed HSM's data plane (keys)", ["Microsoft.KeyVault/managedHSMs"]),
}
PARAMETER_TYPES = {"string": "String", "array": "Array", "integer": "Integer", "boolean": "Boolean",
                   "object": "Object", "float": "Float", "datetime": "DateTime"}
DEFINITION_PREFIX = "/providers/microsoft.authorization/policydefinitions/"
_PARAMETER_REF = re.compile(r"\[parameters\('([^']+)'\)\]", re.IGNORECASE)

IMPORTED, TEMPLATE, DELEGATED, REFUSED = "imported", "template", "delegated", "refused"


class PolicyImportError(ValueError):
    """A definition that cannot become a control; the message names it and the reason."""


class UnusableInput(ValueError):
    """An input that is not a policy document at all (the message names it)."""


@dataclass
class Outcome:
    """What became of one definition (or one initiative member)."""

    origin: str  # file, with [index] or member reference
    name: str  # display name, else definition name
    status: str  # imported | template | delegated (verdict read from Azure Policy) | refused
    reason: str = ""
    control: dict[str, Any] | None = None
    missing: tuple[str, ...] = ()  # template: parameters that still need values
    definition_id: str = ""
    samples: dict[str, Any] = field(default_factory=dict)  # template: values it was checked with


def slug(text: str) -> str:
    words = re.sub(r"[^a-z0-9]+", "-", text.lower()).strip("-")
    return words[:70].rstrip("-") or "imported-policy"


def _lower_get(mapping: Mapping[str, Any], key: str, default: Any = None) -> Any:
    return next((v for k, v in mapping.items() if k.lower() == key.lower()), default)


# ----------------------------------------------------------------------------- parameter values


def parameter_values(doc: Any, origin: str = "parameters") -> dict[str, Any]:
    """Values from an assignment's ``parameters`` (``{"p": {"value": v}}``), an ARM parameters file
    (``{"parameters": {...}}``) or a plain ``{"p": v}`` map."""
    if isinstance(doc, Mapping) and isinstance(doc.get("properties"), Mapping) and "parameters" in doc["properties"]:
        doc = doc["properties"]["parameters"]  # a whole assignment
    elif isinstance(doc, Mapping) and isinstance(doc.get("parameters"), Mapping) and (
            "$schema" in doc or "contentVersion" in doc or len(doc) == 1):
        doc = doc["parameters"]
    if not isinstance(doc, Mapping):
        raise UnusableInput(f"{origin}: parameter values must be a JSON object of name -> {{\"value\": ...}}")
    values = {}
    for name, entry in doc.items():
        values[name] = entry["value"] if isinstance(entry, Mapping) and set(entry) == {"value"} else entry
    return values


def parse_assignment(text: str) -> tuple[str, Any]:
    """``name=value`` from ``-p``: the value is JSON when it parses (numbers, arrays, booleans), else a string."""
    name, sep, raw = text.partition("=")
    if not sep or not name.strip():
        raise UnusableInput(f"-p {text!r}: give name=value")
    try:
        value = json.loads(raw)
    except json.JSONDecodeError:
        value = raw
    return name.strip(), value


def sample_value(spec: Mapping[str, Any]) -> Any:
    """A value of the parameter's type, to check that a template compiles (never written as a value)."""
    allowed = spec.get("allowedValues")
    ptype = str(spec.get("type", "String")).lower()
    if isinstance(allowed, list) and allowed:
        return list(allowed[:1]) if ptype == "array" and not isinstance(allowed[0], list) else allowed[0]
    strong = str((spec.get("metadata") or {}).get("strongType", "")).lower()
    return {"string": "westeurope" if strong == "location" else "example", "array": [], "integer": 1,
            "float": 1.0, "boolean": False, "object": {}, "datetime": "2024-01-01T00:00:00Z"}.get(ptype, "example")


# ----------------------------------------------------------------------------- documents


def _properties(doc: Mapping[str, Any]) -> Mapping[str, Any]:
    props = doc.get("properties", doc)
    return props if isinstance(props, Mapping) else {}


def is_policy_set(doc: Any) -> bool:
    return isinstance(doc, Mapping) and isinstance(_properties(doc).get("policyDefinitions"), list)


def documents_in(doc: Any, origin: str) -> list[tuple[str, Mapping[str, Any]]]:
    """(label, definition or set) from one document, a list of them, or an ARM page ``{"value": [...]}``."""
    if isinstance(doc, Mapping) and isinstance(doc.get("value"), list):
        items = doc["value"]
    elif isinstance(doc, list):
        items = doc
    elif isinstance(doc, Mapping):
        return [(origin, doc)]
    else:
        raise UnusableInput(f"{origin}: expected a policy definition, a policy set definition, a list of them or "
                            f'{{"value": [...]}}, got {type(doc).__name__}')
    out = []
    for index, item in enumerate(items):
        if not isinstance(item, Mapping):
            raise UnusableInput(f"{origin}[{index}]: a policy definition must be a JSON object")
        out.append((f"{origin}[{index}]", item))
    return out


def definition_name(doc: Mapping[str, Any]) -> str:
    """The definition's name (a GUID for built-ins), from ``name`` or the last segment of ``id``."""
    if isinstance(doc.get("name"), str) and doc["name"]:
        return doc["name"]
    return str(doc.get("id") or "").rsplit("/", 1)[-1]


class DefinitionLibrary:
    """Definitions an initiative's members are looked up in: by name (GUID), offline first, then ``remote``."""

    def __init__(self, remote: Callable[[str], Mapping[str, Any] | None] | None = None) -> None:
        self._by_name: dict[str, tuple[str, Mapping[str, Any]]] = {}
        self.remote = remote

    def add(self, origin: str, doc: Mapping[str, Any]) -> None:
        name = definition_name(doc).lower()
        if name and not is_policy_set(doc):
            self._by_name.setdefault(name, (origin, doc))

    def __len__(self) -> int:
        return len(self._by_name)

    def find(self, definition_id: str) -> tuple[str, Mapping[str, Any]] | None:
        name = definition_id.rstrip("/").rsplit("/", 1)[-1].lower()
        if name in self._by_name:
            return self._by_name[name]
        if self.remote is not None:
            doc = self.remote(definition_id)
            if doc is not None:
                self._by_name[name] = (definition_id, doc)
                return self._by_name[name]
        return None


# ----------------------------------------------------------------------------- one definition


def _resource_types(condition: Any, params: Mapping[str, Any]) -> list[str]:
    """The types a rule's top level (or top-level allOf) pins with ``field: type``."""
    if not isinstance(condition, Mapping):
        return []
    lowered = {k.lower(): v for k, v in condition.items()}
    if isinstance(lowered.get("field"), str) and lowered["field"].lower() == "type":
        for op in ("equals", "in"):
            value = lowered.get(op)
            ref = _PARAMETER_REF.fullmatch(value) if isinstance(value, str) else None
            if ref:
                value = _lower_get(params, ref.group(1))
            if op == "equals" and isinstance(value, str) and not is_expression(value):
                return [value]
            if op == "in" and isinstance(value, list) and value and all(
                    isinstance(t, str) and not is_expression(t) for t in value):
                return list(dict.fromkeys(value))
    if isinstance(lowered.get("allof"), list):
        for item in lowered["allof"]:
            found = _resource_types(item, params)
            if found:
                return found
    return []


def _effect(then: Mapping[str, Any], declared: Mapping[str, Any], values: Mapping[str, Any],
            enable_disabled: bool) -> tuple[str | None, str | None, str | None]:
    """(effect, effect parameter name, why not importable)."""
    raw = then.get("effect")
    ref = _PARAMETER_REF.fullmatch(raw) if isinstance(raw, str) else None
    param = None
    allowed: list = []
    if ref:
        param = next((k for k in declared if k.lower() == ref.group(1).lower()), ref.group(1))
        spec = declared.get(param)
        if not isinstance(spec, Mapping):
            return None, param, f"the effect parameter {ref.group(1)!r} is not declared"
        allowed = [a for a in spec.get("allowedValues") or [] if isinstance(a, str)]
        given = _lower_get(values, param, _lower_get(spec, "defaultValue"))
        if given is None:
            given = next((a for a in allowed if a.lower() in AUDITABLE_EFFECTS), None) or "audit"
        raw = given
    if not isinstance(raw, str) or not raw:
        return None, param, "policyRule.then.effect is missing"
    effect = raw.lower()
    if effect == "disabled":
        if not enable_disabled:
            return None, param, ("its effect is Disabled (as the assignment would leave it); give an effect "
                                 "(-p NAME=Audit) or --enable-disabled to import it with the first auditable one")
        choice = next((a for a in allowed if a.lower() in AUDITABLE_EFFECTS), None)
        if choice is None:
            return None, param, "its effect is Disabled and it allows no auditable effect"
        effect = choice.lower()
    if effect in REFUSED_EFFECTS:
        return None, param, REFUSED_EFFECTS[effect]
    if effect not in AUDITABLE_EFFECTS:
        return None, param, f"effect {raw!r} is not an Azure Policy effect the monitor knows"
    return effect, param, None


def _modify_condition(rule: Any, operations: Any) -> Any:
    """``if`` and "some operation would change the resource" (add: field absent; addOrReplace: other value;
    remove: field present); an operation's ``condition`` expression gates it."""
    checks = []
    for op in operations if isinstance(operations, list) else []:
        if not isinstance(op, Mapping) or not isinstance(op.get("field"), str):
            raise PolicyImportError(f"modify operation {op!r} has no field")
        kind = str(op.get("operation", "")).lower()
        if kind == "add":
            check: dict = {"field": op["field"], "exists": False}
        elif kind == "addorreplace":
            check = {"field": op["field"], "notEquals": op.get("value")}
        elif kind == "remove":
            check = {"field": op["field"], "exists": True}
        else:
            raise PolicyImportError(f"modify operation {op.get('operation')!r} is not add, addOrReplace or remove")
        if isinstance(op.get("condition"), str) and is_expression(op["condition"]):
            check = {"allOf": [{"value": op["condition"], "equals": True}, check]}
        checks.append(check)
    return {"allOf": [rule, {"anyOf": checks}]} if checks else rule


def _show(value: Any, params: Mapping[str, Any]) -> str:
    ref = _PARAMETER_REF.fullmatch(value) if isinstance(value, str) else None
    if ref and _lower_get(params, ref.group(1)) is not None:
        value = _lower_get(params, ref.group(1))
    return json.dumps(value) if not isinstance(value, str) else value


def _remediation(effect: str, then: Mapping[str, Any], params: Mapping[str, Any], name: str) -> str:
    details = then.get("details")
    if effect == "modify" and isinstance(details, Mapping):
        ops = [f"{o.get('operation')} {o.get('field')}" + (f" = {_show(o['value'], params)}" if "value" in o else "")
               for o in details.get("operations") or [] if isinstance(o, Mapping)]
        return f"Azure Policy's modify effect of '{name}' would apply: " + "; ".join(ops) + "."
    if effect == "append" and isinstance(details, list):
        ops = [f"{d.get('field')} = {_show(d.get('value'), params)}" for d in details if isinstance(d, Mapping)]
        return f"Azure Policy's append effect of '{name}' would set: " + "; ".join(ops) + "."
    if effect == "deployifnotexists":
        return f"Deploy what the Azure Policy definition '{name}' deploys (its deployIfNotExists template)."
    return f"Bring the resource in line with the Azure Policy definition '{name}'."


def _related(effect: str, then: Mapping[str, Any], types: list[str]) -> dict[str, Any]:
    details = then.get("details")
    if not isinstance(details, Mapping) or not isinstance(details.get("type"), str):
        raise PolicyImportError(f"{effect} needs then.details.type")
    related: dict[str, Any] = {"type": details["type"]}
    scope_text = str(_lower_get(details, "existenceScope", "") or "").lower()
    group = _lower_get(details, "resourceGroupName")
    if scope_text == "subscription":
        related["scope"] = "subscription"
    elif scope_text == "resourcegroup" or group is not None:
        related["scope"] = "resourceGroup"
    elif scope_text:
        raise PolicyImportError(f"then.details.existenceScope {scope_text!r} is not resourceGroup or subscription")
    else:
        related["scope"] = related_scope(types, details["type"])
    name = _lower_get(details, "name")
    if name is not None:
        if not isinstance(name, str) or not name:
            raise PolicyImportError(f"then.details.name must be a string, got {name!r}")
        related["name"] = name
    if group is not None:
        if not isinstance(group, str) or not group:
            raise PolicyImportError(f"then.details.resourceGroupName must be a string, got {group!r}")
        related["resourceGroupName"] = group
    condition = _lower_get(details, "existenceCondition")
    if condition is not None:
        related["existenceCondition"] = condition
    return related


def convert_definition(definition: Mapping[str, Any], *, resolver: FieldResolver, origin: str = "definition",
                       values: Mapping[str, Any] | None = None, severity: str = "Medium", prefix: str = "",
                       enable_disabled: bool = False, frameworks: Mapping[str, list[str]] | None = None,
                       control_id: str | None = None) -> Outcome:
    """One definition -> an Outcome (never raises for a bad definition)."""
    values = values or {}
    props = _properties(definition)
    display = props.get("displayName") if isinstance(props.get("displayName"), str) else ""
    name = display or definition_name(definition) or origin.rsplit("/", 1)[-1].removesuffix(".json")
    raw_id = definition.get("id") if isinstance(definition.get("id"), str) else ""
    outcome = Outcome(origin, name, REFUSED, definition_id=raw_id)
    try:
        control, missing, samples = _control(definition, props, name, values, severity=severity, prefix=prefix,
                                             enable_disabled=enable_disabled, frameworks=frameworks,
                                             control_id=control_id)
    except PolicyImportError as exc:
        outcome.reason = str(exc)
        return outcome
    outcome.control, outcome.missing, outcome.samples = control, missing, samples
    try:
        control_from_document(control, origin, resolver, overrides=samples or None)
    except ControlLoadError as exc:
        outcome.reason = str(exc).split(": control ", 1)[-1]
        outcome.control = None
        return outcome
    if isinstance(control.get("related"), Mapping) and control["related"].get("mode") == "azurePolicyState":
        outcome.status = DELEGATED
    else:
        outcome.status = TEMPLATE if missing else IMPORTED
    return outcome


def _control(definition: Mapping[str, Any], props: Mapping[str, Any], name: str, values: Mapping[str, Any], *,
             severity: str, prefix: str, enable_disabled: bool, frameworks: Mapping[str, list[str]] | None,
             control_id: str | None) -> tuple[dict[str, Any], tuple[str, ...], dict[str, Any]]:
    policy_rule = props.get("policyRule")
    if not isinstance(policy_rule, Mapping):
        raise PolicyImportError("not a policy definition (no properties.policyRule)")
    rule = _lower_get(policy_rule, "if")
    then = _lower_get(policy_rule, "then")
    if not isinstance(rule, Mapping):
        raise PolicyImportError("policyRule.if must be an object")
    if not isinstance(then, Mapping):
        raise PolicyImportError("policyRule.then must be an object")
    mode = str(props.get("mode") or "All")
    declared: Mapping[str, Any] = props.get("parameters") or {}
    if not isinstance(declared, Mapping):
        raise PolicyImportError("properties.parameters must be an object")
    effect, effect_param, why = _effect(then, declared, values, enable_disabled)
    if why:
        raise PolicyImportError(why)
    if mode.lower() in DATA_PLANE_MODES:
        return _delegated(definition, props, name, mode, rule, severity=severity, prefix=prefix,
                          frameworks=frameworks, control_id=control_id), (), {}
    rule_text = json.dumps(policy_rule.get("if")) + json.dumps(then.get("details"))
    keep_effect = effect_param is not None and f"parameters('{effect_param.lower()}')" in rule_text.lower()

    parameters: dict[str, Any] = {}
    effective: dict[str, Any] = {}
    missing: list[str] = []
    for pname, spec in declared.items():
        if effect_param and pname.lower() == effect_param.lower() and not keep_effect:
            continue
        if not isinstance(spec, Mapping):
            raise PolicyImportError(f"parameter {pname!r} must be an object")
        ptype = PARAMETER_TYPES.get(str(spec.get("type", "")).lower())
        if ptype is None:
            raise PolicyImportError(f"parameter {pname!r} has unsupported type {spec.get('type')!r}")
        out: dict[str, Any] = {"type": ptype}
        meta = spec.get("metadata") if isinstance(spec.get("metadata"), Mapping) else {}
        description = meta.get("description") or meta.get("displayName")
        if isinstance(description, str) and description:
            out["description"] = description
        given = _lower_get(values, pname, _MISSING)
        if given is not _MISSING:
            out["defaultValue"] = given
        elif "defaultValue" in spec:
            out["defaultValue"] = spec["defaultValue"]
        else:
            missing.append(pname)
        if isinstance(spec.get("allowedValues"), list):
            out["allowedValues"] = spec["allowedValues"]
        parameters[pname] = out
        effective[pname] = out.get("defaultValue")
    if effect_param and keep_effect:
        parameters[effect_param]["defaultValue"] = effect

    types = _resource_types(rule, effective)
    control = _head(props, name, types or ["*"], severity, prefix, frameworks, control_id)
    if not types:
        control["mode"] = "Indexed" if mode.lower() == "indexed" else "All"
    if _definition_id(definition):
        control["policyDefinitionId"] = _definition_id(definition)
    control["remediation"] = {"text": _remediation(effect, then, effective, name)}
    if parameters:
        control["parameters"] = parameters
    if effect == "modify":
        details = then.get("details") if isinstance(then.get("details"), Mapping) else {}
        control["rule"] = _modify_condition(rule, details.get("operations"))
    else:
        control["rule"] = rule
    if effect in EXISTENCE_EFFECTS:
        control["related"] = _related(effect, then, types)
    samples = {p: sample_value(declared[p]) for p in missing}
    return control, tuple(missing), samples


def _head(props: Mapping[str, Any], name: str, types: list[str], severity: str, prefix: str,
          frameworks: Mapping[str, list[str]] | None, control_id: str | None) -> dict[str, Any]:
    """The first keys of a control document: id, title, description, severity, types, frameworks."""
    control: dict[str, Any] = {
        "id": (control_id or f"{prefix}{slug(name)}")[:80].rstrip("-"),
        "title": name if len(name) >= 5 else f"Azure Policy {name}",
    }
    if isinstance(props.get("description"), str) and props["description"]:
        control["description"] = props["description"]
    control["severity"] = severity
    control["resourceTypes"] = types
    if frameworks:
        control["frameworks"] = {k: list(v) for k, v in frameworks.items() if v}
    return control


def _definition_id(definition: Mapping[str, Any]) -> str | None:
    raw_id = str(definition.get("id") or "")
    raw_name = definition_name(definition)
    if raw_id.lower().startswith(DEFINITION_PREFIX):
        return "/providers/Microsoft.Authorization/policyDefinitions/" + raw_id.rsplit("/", 1)[-1]
    if raw_id and DEFINITION_ID.match(raw_id):
        return raw_id  # a custom definition of a subscription or management group
    if raw_name and not raw_id and re.fullmatch(r"[0-9a-f-]{36}", raw_name.lower()):
        return f"/providers/Microsoft.Authorization/policyDefinitions/{raw_name}"
    return None


def _delegated(definition: Mapping[str, Any], props: Mapping[str, Any], name: str, mode: str, rule: Any, *,
               severity: str, prefix: str, frameworks: Mapping[str, list[str]] | None,
               control_id: str | None) -> dict[str, Any]:
    """A data-plane definition as a control that takes Azure Policy's verdict for the cluster or vault."""
    where, default_types = DATA_PLANE_MODES[mode.lower()]
    definition_id = _definition_id(definition)
    if definition_id is None:
        raise PolicyImportError(f"mode {mode} is evaluated {where}; the monitor takes Azure Policy's verdict, "
                                f"which names the definition by id, and this definition has no id or name")
    types = [t for t in _resource_types(rule, {}) if "/" in t and ".data/" not in t.lower()] or default_types
    control = _head(props, name, types, severity, prefix, frameworks, control_id)
    control["policyDefinitionId"] = definition_id
    control["remediation"] = {"text": (
        f"Azure Policy evaluates '{name}' {where}: its compliance details for this resource list the "
        f"objects (components) that fail; bring those in line.")}
    control["rule"] = {"field": "type", "in": types}
    control["related"] = {"type": POLICY_STATES_TYPE, "mode": "azurePolicyState",
                          "description": f"Azure Policy's own verdict (mode {mode}, evaluated {where})"}
    return control


class _Missing:
    pass


_MISSING = _Missing()


# ----------------------------------------------------------------------------- initiatives


def frameworks_from_groups(group_names: Iterable[str]) -> dict[str, list[str]]:
    """CIS and MCSB references from an initiative's group names
    (``CIS_Azure_Foundations_v3.0.0_3.1.3.1`` -> cis 3.1.3.1; ``Azure_Security_Benchmark_v3.0_NS-1`` -> mcsb NS-1)."""
    cis: list[str] = []
    mcsb: list[str] = []
    for group in group_names:
        if not isinstance(group, str):
            continue
        m = re.fullmatch(r"CIS_Azure_(?:Foundations_)?v?([\d.]+)_(.+)", group, re.IGNORECASE)
        if m:
            cis.append(m.group(2) if m.group(1).startswith("3.0") else f"v{m.group(1)} {m.group(2)}")
            continue
        m = re.fullmatch(r"(?:Azure_Security_Benchmark|MCSB)_v?[\d.]+_(.+)", group, re.IGNORECASE)
        if m:
            mcsb.append(m.group(1))
    return {k: list(dict.fromkeys(v)) for k, v in (("cis", cis), ("mcsb", mcsb)) if v}


def _member_values(member: Mapping[str, Any], set_values: Mapping[str, Any]) -> tuple[dict[str, Any], list[str]]:
    """A member's parameter values with the set's parameters substituted; names the set parameters lacking one."""
    out: dict[str, Any] = {}
    lacking: list[str] = []
    for pname, entry in (member.get("parameters") or {}).items():
        value = entry.get("value") if isinstance(entry, Mapping) else entry
        ref = _PARAMETER_REF.fullmatch(value) if isinstance(value, str) else None
        if ref:
            found = _lower_get(set_values, ref.group(1), _MISSING)
            if found is _MISSING:
                lacking.append(ref.group(1))
                continue
            value = found
        out[pname] = value
    return out, lacking


def convert_set(policy_set: Mapping[str, Any], *, resolver: FieldResolver, library: DefinitionLibrary,
                origin: str = "initiative", values: Mapping[str, Any] | None = None, severity: str = "Medium",
                prefix: str = "", enable_disabled: bool = False) -> list[Outcome]:
    """One outcome per member of a policy set definition (initiative)."""
    props = _properties(policy_set)
    set_name = props.get("displayName") or definition_name(policy_set) or origin
    declared = props.get("parameters") or {}
    set_values = {k: v.get("defaultValue") for k, v in declared.items() if isinstance(v, Mapping) and "defaultValue" in v}
    for k, v in (values or {}).items():
        real = next((d for d in declared if d.lower() == k.lower()), k)
        set_values[real] = v
    outcomes = []
    for index, member in enumerate(props.get("policyDefinitions") or []):
        ref = member.get("policyDefinitionReferenceId") if isinstance(member, Mapping) else None
        label = f"{origin}: {ref or f'policyDefinitions[{index}]'}"
        if not isinstance(member, Mapping) or not isinstance(member.get("policyDefinitionId"), str):
            outcomes.append(Outcome(label, str(ref or index), REFUSED, "member has no policyDefinitionId"))
            continue
        member_id = member["policyDefinitionId"]
        if "/policysetdefinitions/" in member_id.lower():
            outcomes.append(Outcome(label, str(ref), REFUSED, "a nested policy set is not a member Azure allows",
                                    definition_id=member_id))
            continue
        found = library.find(member_id)
        if found is None:
            where = "offline or in ARM" if library.remote else "offline (give --definitions DIR, or --from-arm in Azure)"
            outcomes.append(Outcome(label, str(ref or member_id.rsplit('/', 1)[-1]), REFUSED,
                                    f"member definition {member_id} is not available {where}",
                                    definition_id=member_id))
            continue
        source, definition = found
        member_values, lacking = _member_values(member, set_values)
        frameworks = frameworks_from_groups(member.get("groupNames") or [])
        outcome = convert_definition(definition, resolver=resolver, origin=label, values=member_values,
                                     severity=severity, prefix=prefix, enable_disabled=enable_disabled,
                                     frameworks=frameworks)
        outcome.definition_id = outcome.definition_id or member_id
        if lacking and outcome.status != REFUSED:
            outcome.status = TEMPLATE
            outcome.missing = tuple(dict.fromkeys((*outcome.missing, *lacking)))
            outcome.reason = f"set parameter(s) {', '.join(lacking)} of '{set_name}' have no value"
        outcomes.append(outcome)
    if not outcomes:
        outcomes.append(Outcome(origin, str(set_name), REFUSED, "the policy set has no policyDefinitions"))
    return outcomes


# ----------------------------------------------------------------------------- many documents


def import_documents(docs: Iterable[tuple[str, Any]], *, resolver: FieldResolver,
                     library: DefinitionLibrary | None = None, values: Mapping[str, Any] | None = None,
                     severity: str = "Medium", prefix: str = "", enable_disabled: bool = False,
                     progress: Callable[[int], None] | None = None) -> tuple[list[Outcome], list[str]]:
    """Outcomes for every definition (and initiative member) in ``docs`` ((origin, decoded JSON) pairs),
    and the inputs that could not be used at all. Control ids are unique across the run."""
    library = library if library is not None else DefinitionLibrary()
    items: list[tuple[str, Mapping[str, Any]]] = []
    unusable: list[str] = []
    for origin, doc in docs:
        try:
            found = documents_in(doc, origin)
        except UnusableInput as exc:
            unusable.append(str(exc))
            continue
        for label, item in found:
            library.add(label, item)
            items.append((label, item))
    outcomes: list[Outcome] = []
    for label, item in items:
        if is_policy_set(item):
            outcomes.extend(convert_set(item, resolver=resolver, library=library, origin=label, values=values,
                                        severity=severity, prefix=prefix, enable_disabled=enable_disabled))
        else:
            outcomes.append(convert_definition(item, resolver=resolver, origin=label, values=values,
                                               severity=severity, prefix=prefix, enable_disabled=enable_disabled))
        if progress is not None:
            progress(len(outcomes))
    _unique_ids(outcomes)
    return outcomes, unusable


def _unique_ids(outcomes: list[Outcome]) -> None:
    """Two definitions with one display name get distinct ids (a short hash of the definition name)."""
    seen: dict[str, str] = {}
    for outcome in outcomes:
        control = outcome.control
        if control is None:
            continue
        key = (outcome.definition_id or outcome.origin).lower()
        cid = control["id"]
        if cid in seen and seen[cid] != key:
            suffix = hashlib.sha256(key.encode()).hexdigest()[:8]
            control["id"] = f"{cid[:71].rstrip('-')}-{suffix}"
        seen.setdefault(control["id"], key)


def control_from_definition(definition: Mapping[str, Any], *, severity: str = "Medium", prefix: str = "",
                            where: str = "definition", resolver: FieldResolver | None = None,
                            values: Mapping[str, Any] | None = None, enable_disabled: bool = False) -> dict[str, Any]:
    """One control document from one definition; raises PolicyImportError naming it and the reason."""
    from ..catalog import alias_resolver

    outcome = convert_definition(definition, resolver=resolver or alias_resolver(), origin=where, values=values,
                                 severity=severity, prefix=prefix, enable_disabled=enable_disabled)
    if outcome.control is None:
        raise PolicyImportError(f"{where} ({outcome.name}): {outcome.reason}")
    return outcome.control
