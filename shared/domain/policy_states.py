"""Azure Policy's own compliance states as a verdict source. Pure: no I/O.

Some definitions cannot be judged from what Resource Manager holds: the data-plane modes
(``Microsoft.Kubernetes.Data``: objects inside a cluster, evaluated by the Azure Policy
add-on; ``Microsoft.KeyVault.Data`` / ``Microsoft.ManagedHSM.Data``: keys, secrets and
certificates). A control made from one of them takes its verdict from Azure Policy's
compliance states for the resource (the cluster, the vault): the PolicyInsights
``policyStates/latest/queryResults`` of the resource in Azure, ``$related`` offline, and
the ``Microsoft.PolicyInsights.PolicyState*`` events that say when one changed.

A state record is what PolicyInsights returns (``policyDefinitionId``, ``policyAssignmentId``,
``complianceState``, ``timestamp``...); an event's ``data`` has the same fields.
"""
from __future__ import annotations

import re
from typing import Any, Iterable, Mapping

POLICY_STATES_TYPE = "Microsoft.PolicyInsights/policyStates"
# PolicyInsights returns the latest states of this window ($from; the service's own default is one day).
# Azure Policy's standard scan runs every 24 hours, so a resource evaluated at all has a state inside it.
STATES_WINDOW_DAYS = 3
DEFINITION_ID = re.compile(
    r"^(/subscriptions/[^/]+|/providers/microsoft\.management/managementgroups/[^/]+)?"
    r"/providers/microsoft\.authorization/policydefinitions/[^/]+$", re.IGNORECASE)
MAX_ID_LENGTH = 1024


def same_definition(a: Any, b: Any) -> bool:
    return isinstance(a, str) and isinstance(b, str) and a.rstrip("/").lower() == b.rstrip("/").lower()


def _state(record: Mapping[str, Any]) -> str:
    state = record.get("complianceState")
    if isinstance(state, str) and state:
        return state
    compliant = record.get("isCompliant")
    return "Compliant" if compliant is True else "NonCompliant" if compliant is False else "Unknown"


def _key(record: Mapping[str, Any]) -> tuple[str, str, str]:
    return (str(record.get("policyAssignmentId") or "").lower(), str(record.get("policyDefinitionId") or "").lower(),
            str(record.get("policyDefinitionReferenceId") or "").lower())


def _when(record: Mapping[str, Any]) -> Any:
    from datetime import datetime, timezone

    from .untrusted import EventRejected, parse_time

    try:
        return parse_time(record.get("timestamp"))
    except EventRejected:
        return datetime.min.replace(tzinfo=timezone.utc)


def overlay(records: Iterable[Mapping[str, Any]], event: Mapping[str, Any] | None, deleted: bool = False) -> list[dict]:
    """``records`` with the state an event reported in place of an older record of the same assignment,
    definition and reference (an event can arrive before the query shows its evaluation); a deleted state
    leaves that record out."""
    out = [dict(r) for r in records if isinstance(r, Mapping)]
    if not event:
        return out
    key = _key(event)
    kept = []
    for record in out:
        if _key(record) != key:
            kept.append(record)
        elif not deleted and _when(record) > _when(event):
            return out  # the query already holds a newer evaluation: keep it as is
    if not deleted:
        kept.append(dict(event))
    return kept


def verdict(records: Iterable[Mapping[str, Any]], definition_id: str) -> tuple[str, list[dict], str | None]:
    """(status, evidence, reason) for ``definition_id`` from a resource's state records.

    NonCompliant when any assignment of the definition reports NonCompliant; Compliant when every one
    reports Compliant; otherwise NotEvaluated with the reason (no state: not assigned at this scope or not
    evaluated yet; Exempt, Conflict, Unknown, Error: what Azure Policy says).
    """
    mine = [r for r in records if isinstance(r, Mapping) and same_definition(r.get("policyDefinitionId"), definition_id)]
    evidence = [{"azurePolicy": {
        "policyAssignmentId": r.get("policyAssignmentId"), "complianceState": _state(r),
        "timestamp": r.get("timestamp"),
        **({"policyDefinitionReferenceId": r["policyDefinitionReferenceId"]} if r.get("policyDefinitionReferenceId") else {}),
        **({"complianceReasonCode": r["complianceReasonCode"]} if r.get("complianceReasonCode") else {}),
    }} for r in mine[:10]]
    if not mine:
        return "NotEvaluated", [], (f"Azure Policy reports no compliance state of {definition_id} for this resource "
                                    f"(the definition is not assigned at its scope, or not evaluated yet)")
    states = [_state(r).lower() for r in mine]
    if "noncompliant" in states:
        return "NonCompliant", evidence, None
    if all(s == "compliant" for s in states):
        return "Compliant", evidence, None
    other = sorted({_state(r) for r in mine if _state(r).lower() != "compliant"})
    return "NotEvaluated", evidence, f"Azure Policy reports {', '.join(other)} for {definition_id} on this resource"
