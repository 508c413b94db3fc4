"""One policy definition -> one control document: resource types, effect, related check, remediation."""
from __future__ import annotations

import json
import re
from typing import Any, Mapping

from ...domain.policy_states import DEFINITION_ID, POLICY_STATES_TYPE
from ...catalog import ControlLoadError, control_from_document, related_scope
from .. import FieldResolver, applicability_condition, is_expression, possible_types
from .documents import _properties, definition_name
from .model import (AUDITABLE_EFFECTS, DATA_PLANE_MODES, DEFINITION_PREFIX, DELEGATED, DISABLED_REASON, EFFECT_NAMES,
                    EXISTENCE_EFFECTS, IDENTITY_TYPE_MODIFIABLE, IMPORTED, PARAMETER_TYPES, REFUSED, REFUSED_EFFECTS,
                    TEMPLATE, _PARAMETER_REF, Outcome, PolicyImportError, _lower_get, slug)
from .parameters import sample_value


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
            enable_disabled: bool, forced: str | None = None) -> tuple[str | None, str | None, str | None]:
    """(effect, effect parameter name, why not importable). ``forced``: the effect an override sets."""
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
    if forced:
        raw = forced
    if not isinstance(raw, str) or not raw:
        return None, param, "policyRule.then.effect is missing"
    effect = raw.lower()
    if effect == "disabled":
        if not enable_disabled:
            return None, param, (f"{DISABLED_REASON} (as the assignment would leave it); give an effect "
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


def _modify_rule(rule: Any, operations: Any) -> Any:
    """A modify definition's ``if``, as Azure judges an existing resource: "it marks any resource that
    meets the if condition as non-compliant" (modify effect, skipped modifications: existing resources).
    Only virtual machines and scale sets can have ``identity.type`` modified (modify effect,
    operations), so an operation on it limits the rule, and applicability, to those types."""
    for op in operations if isinstance(operations, list) else []:
        if not isinstance(op, Mapping) or not isinstance(op.get("field"), str):
            raise PolicyImportError(f"modify operation {op!r} has no field")
        if str(op.get("operation", "")).lower() not in ("add", "addorreplace", "remove"):
            raise PolicyImportError(f"modify operation {op.get('operation')!r} is not add, addOrReplace or remove")
    if any(str(op["field"]).lower() == "identity.type" for op in operations or []):
        return {"allOf": [rule, {"field": "type", "in": list(IDENTITY_TYPE_MODIFIABLE)}]}
    return rule


def _declared_spelling(lowered: str, rule: Any, values: Mapping[str, Any]) -> str:
    """A type as the rule (or a parameter value) spells it: possible_types folds case."""
    text = json.dumps([rule, values], default=str)
    at = text.lower().find(f'"{lowered}"')
    return text[at + 1:at + 1 + len(lowered)] if at >= 0 else lowered


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
                       control_id: str | None = None, effect: str | None = None) -> Outcome:
    """One definition -> an Outcome (never raises for a bad definition). ``effect`` forces the effect
    (an assignment's override), whatever the definition's effect parameter says."""
    values = values or {}
    props = _properties(definition)
    display = props.get("displayName") if isinstance(props.get("displayName"), str) else ""
    name = display or definition_name(definition) or origin.rsplit("/", 1)[-1].removesuffix(".json")
    raw_id = definition.get("id") if isinstance(definition.get("id"), str) else ""
    outcome = Outcome(origin, name, REFUSED, definition_id=raw_id)
    try:
        control, missing, samples = _control(definition, props, name, values, severity=severity, prefix=prefix,
                                             enable_disabled=enable_disabled, frameworks=frameworks,
                                             control_id=control_id, effect=effect)
    except PolicyImportError as exc:
        outcome.reason = str(exc)
        return outcome
    outcome.control, outcome.missing, outcome.samples = control, missing, samples
    try:
        compiled = control_from_document(control, origin, resolver, overrides=samples or None)
    except ControlLoadError as exc:
        outcome.reason = str(exc).split(": control ", 1)[-1]
        outcome.control = None
        return outcome
    if isinstance(control.get("related"), Mapping) and control["related"].get("mode") == "azurePolicyState":
        outcome.status = DELEGATED
    else:
        outcome.status = TEMPLATE if missing else IMPORTED
    if not samples:  # compiled with its own values, not sample ones: usable as it is
        outcome.compiled = compiled
    return outcome


def _control(definition: Mapping[str, Any], props: Mapping[str, Any], name: str, values: Mapping[str, Any], *,
             severity: str, prefix: str, enable_disabled: bool, frameworks: Mapping[str, list[str]] | None,
             control_id: str | None, effect: str | None = None
             ) -> tuple[dict[str, Any], tuple[str, ...], dict[str, Any]]:
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
    effect, effect_param, why = _effect(then, declared, values, enable_disabled, effect)
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

    if effect == "modify":
        details = then.get("details") if isinstance(then.get("details"), Mapping) else {}
        rule = _modify_rule(rule, details.get("operations"))
    found = possible_types(applicability_condition(rule, effect), effective)
    types = sorted(found) if found else []
    types = [_declared_spelling(t, rule, effective) for t in types]
    control = _head(props, name, types or ["*"], severity, prefix, frameworks, control_id)
    if not types or mode.lower() == "indexed":
        control["mode"] = "Indexed" if mode.lower() == "indexed" else "All"
    control["effect"] = EFFECT_NAMES[effect]
    if _definition_id(definition):
        control["policyDefinitionId"] = _definition_id(definition)
    control["remediation"] = {"text": _remediation(effect, then, effective, name)}
    if parameters:
        control["parameters"] = parameters
    control["rule"] = rule
    if effect in EXISTENCE_EFFECTS:
        control["related"] = _related(effect, then, types)
    samples = {p: sample_value(declared[p]) for p in missing}
    return control, tuple(missing), samples


SEVERITY_NAMES = {"critical": "Critical", "high": "High", "medium": "Medium", "moderate": "Medium", "low": "Low",
                  "informational": "Low"}


def metadata_severity(props: Mapping[str, Any]) -> str | None:
    """The severity a definition's metadata gives (``metadata.severity``, as custom definitions and some
    publishers write it), or None: Microsoft's built-ins carry none, so ``--severity`` decides for them."""
    metadata = props.get("metadata")
    value = metadata.get("severity") if isinstance(metadata, Mapping) else None
    return SEVERITY_NAMES.get(value.strip().lower()) if isinstance(value, str) else None


def _head(props: Mapping[str, Any], name: str, types: list[str], severity: str, prefix: str,
          frameworks: Mapping[str, list[str]] | None, control_id: str | None) -> dict[str, Any]:
    """The first keys of a control document: id, title, description, severity, types, frameworks."""
    control: dict[str, Any] = {
        "id": (control_id or f"{prefix}{slug(name)}")[:80].rstrip("-"),
        "title": name if len(name) >= 5 else f"Azure Policy {name}",
    }
    if isinstance(props.get("description"), str) and props["description"]:
        control["description"] = props["description"]
    control["severity"] = metadata_severity(props) or severity
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




def control_from_definition(definition: Mapping[str, Any], *, severity: str = "Medium", prefix: str = "",
                            where: str = "definition", resolver: FieldResolver | None = None,
                            values: Mapping[str, Any] | None = None, enable_disabled: bool = False) -> dict[str, Any]:
    """One control document from one definition; raises PolicyImportError naming it and the reason."""
    from ...catalog import alias_resolver

    outcome = convert_definition(definition, resolver=resolver or alias_resolver(), origin=where, values=values,
                                 severity=severity, prefix=prefix, enable_disabled=enable_disabled)
    if outcome.control is None:
        raise PolicyImportError(f"{where} ({outcome.name}): {outcome.reason}")
    return outcome.control
