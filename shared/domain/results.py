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
class PolicyRef:
    """Where an assigned control comes from: the ids Azure Policy's own policy states carry, with the
    title and severity it had (so a finding can still be described once its assignment is gone)."""

    assignment_id: str
    definition_id: str
    set_id: str | None = None
    reference_id: str | None = None
    title: str = ""
    severity: str = "Medium"
    message: str | None = None  # the assignment's nonComplianceMessage for this reference, if it has one
    exemption_id: str | None = None  # the Azure Policy exemption that covers the result, if one does

    def as_dict(self) -> dict:
        return {k: v for k, v in (("assignmentId", self.assignment_id), ("definitionId", self.definition_id),
                                  ("setId", self.set_id), ("referenceId", self.reference_id),
                                  ("title", self.title), ("severity", self.severity), ("message", self.message),
                                  ("exemptionId", self.exemption_id)) if v is not None}

    @classmethod
    def from_dict(cls, data: dict) -> "PolicyRef":
        return cls(str(data["assignmentId"]), str(data["definitionId"]), data.get("setId"), data.get("referenceId"),
                   str(data.get("title") or ""), str(data.get("severity") or "Medium"), data.get("message"),
                   data.get("exemptionId"))


@dataclass(frozen=True)
class ControlResult:
    control_id: str
    title: str
    severity: str
    status: Status
    evidence: list[dict] = field(default_factory=list)
    reason: str | None = None
    policy: PolicyRef | None = None  # set on the result of an assigned control (an Azure Policy assignment)


def results_as_json(resource_id: str, results: list[ControlResult]) -> list[dict]:
    return [
        {"resourceId": resource_id, "controlId": r.control_id, "title": r.title, "severity": r.severity,
         "status": r.status.value, "evidence": r.evidence, **({"reason": r.reason} if r.reason else {}),
         **(_policy_json(r.policy) if r.policy else {})}
        for r in results
    ]


def _policy_json(policy: PolicyRef) -> dict:
    """The ids an assigned control's result carries, named as ``evaluate --assignments`` names them."""
    out = {"policyAssignmentId": policy.assignment_id, "policyDefinitionId": policy.definition_id}
    if policy.set_id:
        out.update(policySetDefinitionId=policy.set_id, policyDefinitionReferenceId=policy.reference_id)
    if policy.message:
        out["nonComplianceMessage"] = policy.message
    if policy.exemption_id:
        out["exemptionId"] = policy.exemption_id
    return out


def evidence_json(evidence: list[dict], limit: int = 8000) -> str:
    text = json.dumps(evidence, default=str, separators=(",", ":"))
    return text if len(text) <= limit else text[: limit - 14] + '..."truncated"'
