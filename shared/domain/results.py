"""Results of evaluating one control on one resource: status, evidence, reason. Pure.

``Status`` and ``ControlResult`` are what the catalog's evaluation returns and what drift, exemptions
and posture read: they live in the domain, so the domain needs nothing from the catalog.
"""
from __future__ import annotations

import json
from dataclasses import dataclass, field
from enum import Enum


class Status(str, Enum):
    COMPLIANT = "Compliant"
    NONCOMPLIANT = "NonCompliant"
    NOT_EVALUATED = "NotEvaluated"
    EXEMPT = "Exempt"  # non-compliant, with an active exemption (an accepted risk)


@dataclass(frozen=True)
class ControlResult:
    control_id: str
    title: str
    severity: str
    status: Status
    evidence: list[dict] = field(default_factory=list)
    reason: str | None = None


def results_as_json(resource_id: str, results: list[ControlResult]) -> list[dict]:
    return [
        {"resourceId": resource_id, "controlId": r.control_id, "title": r.title, "severity": r.severity,
         "status": r.status.value, "evidence": r.evidence, **({"reason": r.reason} if r.reason else {})}
        for r in results
    ]


def evidence_json(evidence: list[dict], limit: int = 8000) -> str:
    text = json.dumps(evidence, default=str, separators=(",", ":"))
    return text if len(text) <= limit else text[: limit - 14] + '..."truncated"'
