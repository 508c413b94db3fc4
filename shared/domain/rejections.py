"""Permanent rejections as records: an event that can never be processed is acknowledged, and one
record per rejection goes to ``ComplianceRejections_CL`` (stream Custom-ComplianceRejections), where
the pipeline-health alert counts them. Application Insights samples traces; this table is not sampled,
so a burst of rejections is counted whole. Pure."""
from __future__ import annotations

from datetime import datetime
from typing import Any

REJECTION_COLUMNS: dict[str, str] = {
    "TimeGenerated": "datetime",
    "EventId": "string",
    "Kind": "string",  # EventRejected (malformed, forged, unsupported), OutOfScope, PermanentFailure
    "Reason": "string",
    "Subject": "string",
}
MAX_TEXT = 2000


def rejection_record(event_id: str | None, kind: str, reason: str, subject: str | None,
                     at: datetime) -> dict[str, Any]:
    from .untrusted import printable

    return {"TimeGenerated": at.isoformat().replace("+00:00", "Z"), "EventId": printable(event_id or ""),
            "Kind": kind, "Reason": printable(reason, MAX_TEXT), "Subject": printable(subject or "", MAX_TEXT)}
