"""Redact evidence values that look like secrets before they are stored or sent. Pure.

Evidence carries actual resource values; a control over, say, app settings or a
connection string must not copy a key, a password or a SAS token into Table
Storage or Log Analytics.
"""
from __future__ import annotations

import functools
import re
from typing import Any

REDACTED = "[REDACTED]"
_SECRET_NAMES = re.compile(
    r"(password|passwd|secret|accountkey|primarykey|secondarykey|connectionstring|sastoken|accesskey|"
    r"apikey|clientsecret|privatekey|token|credential)", re.IGNORECASE)
_SECRET_VALUES = [
    re.compile(r"AccountKey=[^;]+", re.IGNORECASE),
    re.compile(r"SharedAccessKey=[^;]+", re.IGNORECASE),
    re.compile(r"SharedAccessSignature=[^;]+", re.IGNORECASE),
    re.compile(r"([?&]|^)sig=[^&\s]+", re.IGNORECASE),
    re.compile(r"(Password|Pwd)=[^;]+", re.IGNORECASE),
    re.compile(r"-----BEGIN [A-Z ]*PRIVATE KEY-----.*?-----END [A-Z ]*PRIVATE KEY-----", re.DOTALL),
    re.compile(r"\beyJ[A-Za-z0-9_-]{10,}\.[A-Za-z0-9_-]{10,}\.[A-Za-z0-9_-]{10,}"),  # a JWT
    re.compile(r"(?<![A-Za-z0-9+/])[A-Za-z0-9+/]{40,}={0,2}(?![A-Za-z0-9+/=])"),  # a long base64 key
]


# Most evidence strings are short and hold no secret. Below 35 characters only a keyword pattern can match
# (a JWT needs 35, a base64 key 40), so one search for the keywords decides; longer text gets every pattern.
_SHORTEST_KEYLESS = 35
_KEYWORDS = re.compile(r"accountkey=|sharedaccesskey=|sharedaccesssignature=|sig=|password=|pwd=|-----begin",
                       re.IGNORECASE)

_STRUCTURAL_KEYS = {"field", "path", "count", "operator", "related", "id", "reason"}


def _looks_random(token: str) -> bool:
    """A long run of base64 characters is a key only if it mixes digits and both letter cases."""
    return any(c.isdigit() for c in token) and any(c.islower() for c in token) and any(c.isupper() for c in token)


def _replace(match: re.Match) -> str:
    found = match.group(0)
    if found.startswith("-----"):
        return REDACTED
    if "=" in found[:40] and not found.rstrip("=").isalnum():
        return found.split("=", 1)[0] + "=" + REDACTED
    return REDACTED if _looks_random(found) else found


# Evidence quotes the same strings over and over (a rule's type, etag, access and direction). A string
# found free of secrets is remembered, so its next quote is one lookup; only clean strings are kept,
# never one that held a secret. Bounded: emptied when full.
_CLEAN: dict[str, None] = {}
_CLEAN_LIMIT = 8192
_CLEAN_LONGEST = 1024


def redact_text(text: str) -> str:
    if text in _CLEAN:
        return text
    if len(text) < _SHORTEST_KEYLESS and _KEYWORDS.search(text) is None:
        out = text
    else:
        out = _redact_all(text)
    if out == text and len(text) <= _CLEAN_LONGEST:
        if len(_CLEAN) >= _CLEAN_LIMIT:
            _CLEAN.clear()
        _CLEAN[text] = None
    return out


def _redact_all(text: str) -> str:
    for pattern in _SECRET_VALUES:
        text = pattern.sub(_replace, text)
    return text


def redact(value: Any, key: str | None = None, memo: dict | None = None) -> Any:
    """A copy of ``value`` with secret-looking strings replaced; structure and other values kept.

    ``memo`` (an empty dict, then passed again) keeps the copy of each object already redacted, for
    evidence of several controls quoting the same parts of one resource (a security rule that fails
    four NSG controls is copied once). The objects must not change in between, and the copies are shared.
    """
    if isinstance(value, dict):
        if memo is not None:  # a dict's copy does not depend on ``key``: only its own keys decide
            hit = memo.get(id(value))
            if hit is not None and hit[0] is value:
                return hit[1]
        out = {}
        for k, v in value.items():  # scalars and strings without the type tests: evidence is mostly flat records
            if v.__class__ is str and k.__class__ is str:
                out[k] = _redact_string(v, k)
            elif isinstance(v, (dict, list, str)):
                out[k] = redact(v, str(k), memo)
            else:
                out[k] = v
        name = value.get("name")
        if isinstance(name, str) and _SECRET_NAMES.search(name) and isinstance(value.get("value"), str):
            out["value"] = REDACTED  # name/value pairs such as app settings
        if memo is not None:
            memo[id(value)] = (value, out)  # the object is kept, so its id stays its own
        return out
    if isinstance(value, list):
        return [redact(v, key, memo) for v in value]
    if isinstance(value, str):
        return _redact_string(value, key)
    return value


def _redact_string(value: str, key: str | None) -> str:
    if key in _STRUCTURAL_KEYS:
        return value  # names of fields and resources, not values
    if key is not None and value and key != "value" and _secret_name(key):
        return REDACTED
    return redact_text(value)


@functools.lru_cache(maxsize=4096)
def _secret_name(key: str) -> bool:
    return _SECRET_NAMES.search(key) is not None
