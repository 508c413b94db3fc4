"""Finding records: one per transition. Pure.

The record is a contract shared with the Log Analytics table
``ComplianceFindings_CL`` (see README, "Reading the findings").
"""
from __future__ import annotations

import hashlib
import json
from datetime import datetime
from typing import Any

from .drift import ControlTransition, ResourceState
from .events import ResourceChange

# Field name -> Log Analytics column type. The order is the documented order.
FINDING_COLUMNS: dict[str, str] = {
    "TimeGenerated": "datetime",
    "FindingId": "string",
    "ResourceId": "string",
    "ResourceType": "string",
    "SubscriptionId": "string",
    "ResourceGroup": "string",
    "Location": "string",
    "ControlId": "string",
    "ControlTitle": "string",
    "Severity": "string",
    "Status": "string",
    "PreviousStatus": "string",
    "Transition": "string",
    "Caller": "string",
    "OperationName": "string",
    "CorrelationId": "string",
    "EventId": "string",
    "ChangeTime": "datetime",
    "Evidence": "dynamic",
    "Tags": "dynamic",
    "Owner": "string",
    "Team": "string",
    "DueDate": "datetime",
    "RawChangeTime": "string",
    # An assigned control's ids, as Azure Policy's policy states name them (empty for catalog controls).
    "PolicyAssignmentId": "string",
    "PolicyDefinitionId": "string",
    "PolicySetDefinitionId": "string",
    "PolicyDefinitionReferenceId": "string",
    "NonComplianceMessage": "string",
    "ExemptionId": "string",
}
MAX_EVIDENCE_CHARS = 16000  # well under the 64 KB field limit of the Logs Ingestion API


def finding_id(resource_key: str, control_id: str, transition: str, version: int) -> str:
    """Deterministic: the same transition of the same control always gets the same id."""
    digest = hashlib.sha256(f"{resource_key.lower()}|{control_id}|{transition}|{version}".encode()).hexdigest()
    return digest[:32]


def bounded_evidence(evidence: Any, limit: int = MAX_EVIDENCE_CHARS) -> list[dict]:
    """Evidence that serialises to at most ``limit`` characters, saying what it left out."""
    items = list(evidence)
    if len(json.dumps(items, default=str, separators=(",", ":"))) <= limit - 60:
        return items  # the common case: it fits
    kept: list = []
    size = 2
    for index, item in enumerate(items):
        text = json.dumps(item, default=str, separators=(",", ":"))
        if size + len(text) + 1 > limit - 60:
            kept.append({"truncated": f"{len(items) - index} more evidence item(s) left out"})
            break
        kept.append(item)
        size += len(text) + 1
    return kept


def _iso(value: datetime) -> str:
    return value.isoformat().replace("+00:00", "Z")


def finding_record(transition: ControlTransition, state: ResourceState, change: ResourceChange,
                   generated: datetime) -> dict[str, Any]:
    rid = change.resource
    return {
        "TimeGenerated": _iso(generated),
        "FindingId": finding_id(rid.key, transition.control_id, transition.transition.value, transition.version),
        "ResourceId": state.resource_id,
        "ResourceType": state.resource_type,
        "SubscriptionId": rid.subscription_id,
        "ResourceGroup": rid.resource_group or "",
        "Location": state.location or "",
        "ControlId": transition.control_id,
        "ControlTitle": transition.title,
        "Severity": transition.severity,
        "Status": transition.status.value,
        "PreviousStatus": transition.previous_status.value if transition.previous_status else "",
        "Transition": transition.transition.value,
        "Caller": change.caller.display,
        "OperationName": change.operation_name or change.event_type,
        "CorrelationId": change.correlation_id or "",
        "EventId": change.event_id,
        "ChangeTime": _iso(change.event_time),
        "Evidence": bounded_evidence(transition.evidence),
        "Tags": dict(state.tags),
        "Owner": state.owner or "",
        "Team": state.team or "",
        "DueDate": _iso(transition.due) if transition.due else None,
        "RawChangeTime": change.raw_event_time or "",
        **_policy_columns(transition),
    }


def _policy_columns(transition: ControlTransition) -> dict[str, str]:
    policy = transition.policy
    exemption = (policy.exemption_id if policy else None) or next(
        (str(e["exemption"]) for e in transition.evidence if isinstance(e, dict) and e.get("exemption")), None) \
        if transition.status.value == "Exempt" else None
    message = policy.message if policy and transition.status.value == "NonCompliant" else None
    return {"PolicyAssignmentId": policy.assignment_id if policy else "",
            "PolicyDefinitionId": policy.definition_id if policy else "",
            "PolicySetDefinitionId": (policy.set_id or "") if policy else "",
            "PolicyDefinitionReferenceId": (policy.reference_id or "") if policy else "",
            "NonComplianceMessage": message or "", "ExemptionId": exemption or ""}


# The posture snapshot: the current status of every (resource, control), sent by each reconciliation run
# to the table ComplianceSnapshot_CL (stream Custom-ComplianceSnapshot).
SNAPSHOT_COLUMNS: dict[str, str] = {
    "TimeGenerated": "datetime",
    "RunId": "string",
    "ResourceId": "string",
    "ResourceType": "string",
    "SubscriptionId": "string",
    "ResourceGroup": "string",
    "ControlId": "string",
    "Severity": "string",
    "Status": "string",
    "Since": "datetime",
    "DueDate": "datetime",
    "Owner": "string",
    "Team": "string",
}


def snapshot_records(state: ResourceState, run_id: str, generated: datetime,
                     severities: dict[str, str]) -> list[dict[str, Any]]:
    """One record per control of a (not deleted) resource: its current status."""
    from .resource_ids import parse_resource_id

    rid = parse_resource_id(state.resource_id)
    return [{
        "TimeGenerated": _iso(generated), "RunId": run_id, "ResourceId": state.resource_id,
        "ResourceType": state.resource_type, "SubscriptionId": rid.subscription_id,
        "ResourceGroup": rid.resource_group or "", "ControlId": cid,
        "Severity": severities.get(cid) or (cs.policy.severity if cs.policy else "Unknown"),
        "Status": cs.status.value if cs.status else "NotEvaluated", "Since": _iso(cs.since) if cs.since else None,
        "DueDate": _iso(cs.due) if cs.due else None, "Owner": state.owner or "", "Team": state.team or "",
    } for cid, cs in sorted(state.controls.items())]
