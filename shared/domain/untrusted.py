"""Untrusted event fields read safely. Pure.

An event's text, ids and times come from outside: ``printable`` bounds and escapes text for a log
line, ``parse_time`` reads an ISO-8601 time (seven-digit fractions, as Azure writes them), and
``EventRejected`` is what either raises for a field that can never be read, so the event is
acknowledged and logged instead of redelivered. The event parser (``events``) and the Azure Policy
state records (``policy_states``) both read their times here.
"""
from __future__ import annotations

import re
from datetime import datetime, timezone
from typing import Any


class EventRejected(ValueError):
    """An event that can never be processed (malformed or unsupported).

    Redelivery cannot help, so the handler logs it and does not raise.
    """

    def __init__(self, event_id: str | None, reason: str):
        self.event_id = printable(event_id) if event_id else "<no id>"
        self.reason = printable(reason, 600)
        super().__init__(f"event {self.event_id} rejected: {self.reason}")


def printable(text: Any, limit: int = 200) -> str:
    """Untrusted text made safe for one log line: control and bidi characters escaped, length bounded."""
    value = str(text)
    safe = "".join(ch if ch.isprintable() and ch not in "\u202a\u202b\u202c\u202d\u202e\u2066\u2067\u2068\u2069"
                   else ch.encode("unicode_escape").decode("ascii") for ch in value)
    return safe if len(safe) <= limit else safe[:limit] + "..."


def parse_time(value: Any, event_id: str | None = None) -> datetime:
    """An aware UTC datetime from an ISO-8601 text (7-digit fractions allowed)."""
    if isinstance(value, datetime):
        return value if value.tzinfo else value.replace(tzinfo=timezone.utc)
    if not isinstance(value, str) or not value:
        raise EventRejected(event_id, f"event time must be an ISO-8601 string, got {value!r:.60}")
    text = value.strip().replace("Z", "+00:00").replace("z", "+00:00")
    if "." in text:
        head, _, tail = text.partition(".")
        digits = re.match(r"\d*", tail).group(0)
        zone = tail[len(digits):]
        text = f"{head}.{digits[:6].ljust(6, '0')}{zone}"
    try:
        parsed = datetime.fromisoformat(text)
    except ValueError:
        raise EventRejected(event_id, f"event time is not ISO-8601: {value!r:.60}") from None
    if not parsed.tzinfo:
        return parsed.replace(tzinfo=timezone.utc)
    try:
        return parsed.astimezone(timezone.utc)
    except OverflowError:
        raise EventRejected(event_id, f"event time is out of range once converted to UTC: {value!r:.60}") from None
