"""Parameter values in the shape of an assignment's ``parameters``, one ``NAME=VALUE``, and sample values."""
from __future__ import annotations

import hashlib
import json
from typing import Any, Mapping

from .model import UnusableInput


SAMPLES_KEY = "$samples"  # marks a parameters file that import-policy filled with sample values


def samples_fingerprint(entries: Mapping[str, Any]) -> str:
    """A short digest of parameter entries (the marker says which values are still the samples)."""
    text = json.dumps({k: v for k, v in entries.items() if k != SAMPLES_KEY}, sort_keys=True, default=str)
    return hashlib.sha256(text.encode()).hexdigest()[:16]


def samples_document(samples: Mapping[str, Any]) -> dict[str, Any]:
    """What ``--parameters-template`` writes: the sample values, and a marker a loader refuses while
    the values are still those samples (a template is no verdict until its values are real)."""
    entries = {k: {"value": v} for k, v in sorted(samples.items())}
    marker = {"note": "sample values written by import-policy --parameters-template: edit them; while they are "
                      "unchanged this file is refused (or pass --accept-samples)",
              "fingerprint": samples_fingerprint(entries)}
    return {SAMPLES_KEY: marker, **entries}


def parameter_values(doc: Any, origin: str = "parameters", accept_samples: bool = False) -> dict[str, Any]:
    """Values from an assignment's ``parameters`` (``{"p": {"value": v}}``), an ARM parameters file
    (``{"parameters": {...}}``) or a plain ``{"p": v}`` map. A file ``--parameters-template`` wrote whose
    values are still the samples raises ``UnusableInput`` unless ``accept_samples``."""
    if isinstance(doc, Mapping) and SAMPLES_KEY in doc:
        marker = doc[SAMPLES_KEY]
        unedited = isinstance(marker, Mapping) and marker.get("fingerprint") == samples_fingerprint(doc)
        if unedited and not accept_samples:
            raise UnusableInput(f"{origin}: still holds the sample values import-policy --parameters-template wrote; "
                                f"edit them (or pass --accept-samples to use them as they are)")
        doc = {k: v for k, v in doc.items() if k != SAMPLES_KEY}
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
