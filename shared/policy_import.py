"""Azure Policy definitions -> control files. Pure apart from the caller's file I/O.

Supported effects: ``audit`` and ``deny`` (the rule's ``if`` becomes the control's
rule), ``auditIfNotExists`` and ``deployIfNotExists`` (their ``details`` become a
``related`` check; nothing is deployed). A parameterized effect takes its default.
Other effects (``modify``, ``append``, ``denyAction``, ``manual``) cannot be
expressed as a verdict and are refused with a message naming the definition.
"""
from __future__ import annotations

import re
from typing import Any, Iterable, Mapping

AUDIT_EFFECTS = {"audit", "deny"}
EXISTENCE_EFFECTS = {"auditifnotexists", "deployifnotexists"}
PARAMETER_TYPES = {"string": "String", "array": "Array", "integer": "Integer", "boolean": "Boolean",
                   "object": "Object", "float": "Float", "datetime": "DateTime"}


class PolicyImportError(ValueError):
    """A definition that cannot become a control; the message names it and the reason."""


def definitions_from_document(doc: Any) -> list[Mapping[str, Any]]:
    """Definitions from one definition, a list of them, or an ARM list page ``{"value": [...]}``."""
    if isinstance(doc, Mapping) and isinstance(doc.get("value"), list):
        items = doc["value"]
    elif isinstance(doc, list):
        items = doc
    else:
        items = [doc]
    for index, item in enumerate(items):
        if not isinstance(item, Mapping):
            raise PolicyImportError(f"[{index}]: a policy definition must be a JSON object")
    return items


def slug(text: str) -> str:
    words = re.sub(r"[^a-z0-9]+", "-", text.lower()).strip("-")
    return words[:70].rstrip("-") or "imported-policy"


def _resource_types(condition: Any) -> list[str]:
    """The types a rule's top level (or top-level allOf) pins with ``field: type``."""
    if not isinstance(condition, Mapping):
        return []
    lowered = {k.lower(): v for k, v in condition.items()}
    if isinstance(lowered.get("field"), str) and lowered["field"].lower() == "type":
        if isinstance(lowered.get("equals"), str):
            return [lowered["equals"]]
        if isinstance(lowered.get("in"), list) and all(isinstance(t, str) for t in lowered["in"]):
            return list(lowered["in"])
    if isinstance(lowered.get("allof"), list):
        for item in lowered["allof"]:
            found = _resource_types(item)
            if found:
                return found
    return []


def _effect(props: Mapping[str, Any], params: Mapping[str, Any], where: str) -> str:
    then = props.get("policyRule", {}).get("then") or {}
    effect = then.get("effect")
    match = re.fullmatch(r"\[parameters\('([^']+)'\)\]", effect or "")
    if match:
        spec = next((v for k, v in params.items() if k.lower() == match.group(1).lower()), None)
        if not isinstance(spec, Mapping) or "defaultValue" not in spec:
            raise PolicyImportError(f"{where}: the effect parameter {match.group(1)!r} has no default value")
        effect = spec["defaultValue"]
    if not isinstance(effect, str):
        raise PolicyImportError(f"{where}: policyRule.then.effect is missing")
    return effect


def control_from_definition(definition: Mapping[str, Any], *, severity: str = "Medium", prefix: str = "",
                            where: str = "definition") -> dict[str, Any]:
    """One control document (ready to dump as YAML) from one Azure Policy definition."""
    props = definition.get("properties", definition)
    if not isinstance(props, Mapping) or not isinstance(props.get("policyRule"), Mapping):
        raise PolicyImportError(f"{where}: not a policy definition (no properties.policyRule)")
    name = props.get("displayName") or definition.get("name") or ""
    where = f"{where} ({name})" if name else where
    rule = props["policyRule"].get("if")
    if not isinstance(rule, Mapping):
        raise PolicyImportError(f"{where}: policyRule.if must be an object")
    params: Mapping[str, Any] = props.get("parameters") or {}
    effect = _effect(props, params, where)
    effect_param = re.fullmatch(r"\[parameters\('([^']+)'\)\]", str(props["policyRule"]["then"].get("effect")))
    if effect.lower() not in AUDIT_EFFECTS | EXISTENCE_EFFECTS:
        raise PolicyImportError(f"{where}: effect {effect!r} cannot be monitored; supported: audit, deny, "
                                "auditIfNotExists, deployIfNotExists")

    control: dict[str, Any] = {
        "id": f"{prefix}{slug(name or definition.get('name', ''))}"[:80].rstrip("-"),
        "title": name or str(definition.get("name")),
    }
    if props.get("description"):
        control["description"] = props["description"]
    control["severity"] = severity
    types = _resource_types(rule)
    control["resourceTypes"] = types or ["*"]
    if not types:
        control["mode"] = "Indexed" if str(props.get("mode", "All")).lower() == "indexed" else "All"
    definition_id = definition.get("id")
    if isinstance(definition_id, str) and definition_id.lower().startswith(
            "/providers/microsoft.authorization/policydefinitions/"):
        control["policyDefinitionId"] = "/providers/Microsoft.Authorization/policyDefinitions/" + \
            definition_id.rsplit("/", 1)[-1]
    control["remediation"] = {"text": f"Bring the resource in line with the Azure Policy definition '{name}'."}
    converted = {}
    for pname, spec in params.items():
        if effect_param and pname.lower() == effect_param.group(1).lower():
            continue
        ptype = PARAMETER_TYPES.get(str(spec.get("type", "")).lower())
        if ptype is None:
            raise PolicyImportError(f"{where}: parameter {pname!r} has unsupported type {spec.get('type')!r}")
        out: dict[str, Any] = {"type": ptype}
        description = (spec.get("metadata") or {}).get("description") or (spec.get("metadata") or {}).get("displayName")
        if description:
            out["description"] = description
        for key in ("defaultValue", "allowedValues"):
            if key in spec:
                out[key] = spec[key]
        converted[pname] = out
    if converted:
        control["parameters"] = converted
    control["rule"] = rule
    if effect.lower() in EXISTENCE_EFFECTS:
        details = props["policyRule"]["then"].get("details") or {}
        if not isinstance(details.get("type"), str):
            raise PolicyImportError(f"{where}: {effect} needs then.details.type")
        unsupported = sorted(k for k in details if k.lower() in ("resourcegroupname", "existencescope"))
        if unsupported:
            raise PolicyImportError(f"{where}: then.details.{unsupported[0]} is not supported")
        related: dict[str, Any] = {"type": details["type"]}
        if "name" in details:
            if not isinstance(details["name"], str) or details["name"].startswith("["):
                raise PolicyImportError(f"{where}: then.details.name must be a constant name, "
                                        f"got {details['name']!r}")
            related["name"] = details["name"]
        if "existenceCondition" in details:
            related["existenceCondition"] = details["existenceCondition"]
        control["related"] = related
    return control


def import_definitions(docs: Iterable[tuple[str, Any]], *, severity: str = "Medium",
                       prefix: str = "") -> list[dict[str, Any]]:
    """Controls from (origin, decoded JSON) pairs; raises PolicyImportError naming the origin."""
    controls = []
    for origin, doc in docs:
        try:
            definitions = definitions_from_document(doc)
        except PolicyImportError as exc:
            raise PolicyImportError(f"{origin}{exc}") from None
        for index, definition in enumerate(definitions):
            label = origin if len(definitions) == 1 else f"{origin}[{index}]"
            controls.append(control_from_definition(definition, severity=severity, prefix=prefix, where=label))
    return controls
