"""Parameter values in the shape of an assignment's ``parameters``, one ``NAME=VALUE``, and sample values."""
from __future__ import annotations

import json
from typing import Any, Mapping

from .model import UnusableInput


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
