"""Parity with Azure Policy: the monitor's verdicts beside Azure Policy's own latest policy states for
the same (resource, assignment, definition reference). Pure.

A policy state is what PolicyInsights' ``policyStates/latest/queryResults`` returns (and
``az policy state list`` prints): ``resourceId``, ``policyAssignmentId``, ``policyDefinitionId``,
``policySetDefinitionId`` and ``policyDefinitionReferenceId`` (empty outside a set),
``complianceState`` (or the older ``isCompliant``) and ``timestamp`` (when Azure Policy evaluated it).

Each pair gets one outcome:

- ``agree``: both decided the same (``Exempt`` in Azure and ``Compliant`` here agree too: the monitor
  records an exemption only on a non-compliant result, which alone it changes);
- ``disagree``: both decided, differently, and Azure's state is not older than the last change;
- ``azureOlder``: they differ and the resource changed after Azure Policy's evaluation (its next scan,
  or the change's own evaluation, has not caught up);
- ``onlyMonitor``: the monitor decided, Azure Policy has no decided state for the pair;
- ``onlyAzure``: Azure Policy decided, the monitor has no verdict (not converted, not evaluated...).

The agreement is ``agree / (agree + disagree)``: the pairs both sides judged on the same resource.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime, timezone
from typing import Any, Iterable, Mapping

AGREE, DISAGREE, AZURE_OLDER, ONLY_MONITOR, ONLY_AZURE = "agree", "disagree", "azureOlder", "onlyMonitor", "onlyAzure"
OUTCOMES = (AGREE, DISAGREE, ONLY_MONITOR, ONLY_AZURE, AZURE_OLDER)
DECIDED = ("Compliant", "NonCompliant", "Exempt")


class StatesError(ValueError):
    """Policy states that cannot be read; the message names the record and the field."""


@dataclass(frozen=True)
class Verdict:
    """One verdict of the monitor on an (assignment, definition reference) for a resource."""

    resource_id: str
    assignment_id: str
    definition_id: str
    status: str  # Compliant | NonCompliant | Exempt | NotEvaluated
    set_id: str | None = None
    reference_id: str | None = None
    title: str = ""
    evidence: tuple = ()
    changed_at: datetime | None = None  # the resource's last change the monitor saw


@dataclass(frozen=True)
class AzureState:
    resource_id: str
    assignment_id: str
    definition_id: str
    status: str  # complianceState as given (Compliant, NonCompliant, Exempt, Unknown, ...)
    timestamp: datetime | None
    set_id: str | None = None
    reference_id: str | None = None


def pair_key(resource_id: str, assignment_id: str, definition_id: str, reference_id: str | None) -> tuple:
    """One (resource, assignment, member): a set's member by its reference id, else by its definition."""
    member = reference_id if reference_id else definition_id.rstrip("/").rsplit("/", 1)[-1]
    return resource_id.rstrip("/").lower(), assignment_id.rstrip("/").lower(), member.lower()


@dataclass(frozen=True)
class Comparison:
    outcome: str
    resource_id: str
    assignment_id: str
    definition_id: str
    monitor_status: str | None
    azure_status: str | None
    set_id: str | None = None
    reference_id: str | None = None
    azure_timestamp: datetime | None = None
    changed_at: datetime | None = None
    title: str = ""
    evidence: tuple = ()

    def as_record(self, generated: datetime, run_id: str) -> dict[str, Any]:
        """A ``ComplianceParity_CL`` record (see PARITY_COLUMNS)."""
        from .resource_ids import InvalidResourceId, parse_resource_id

        try:
            subscription = parse_resource_id(self.resource_id).subscription_id
        except InvalidResourceId:
            subscription = ""
        return {"TimeGenerated": _iso(generated), "RunId": run_id, "Outcome": self.outcome,
                "ResourceId": self.resource_id, "SubscriptionId": subscription,
                "PolicyAssignmentId": self.assignment_id, "PolicyDefinitionId": self.definition_id,
                "PolicySetDefinitionId": self.set_id or "", "PolicyDefinitionReferenceId": self.reference_id or "",
                "MonitorStatus": self.monitor_status or "", "AzureStatus": self.azure_status or "",
                "AzureTimestamp": _iso(self.azure_timestamp) if self.azure_timestamp else None,
                "ResourceChangeTime": _iso(self.changed_at) if self.changed_at else None,
                "ControlTitle": self.title, "Evidence": list(self.evidence)}


# Field name -> Log Analytics column type of ComplianceParity_CL (stream Custom-ComplianceParity).
PARITY_COLUMNS: dict[str, str] = {
    "TimeGenerated": "datetime", "RunId": "string", "Outcome": "string", "ResourceId": "string",
    "SubscriptionId": "string", "PolicyAssignmentId": "string", "PolicyDefinitionId": "string",
    "PolicySetDefinitionId": "string", "PolicyDefinitionReferenceId": "string", "MonitorStatus": "string",
    "AzureStatus": "string", "AzureTimestamp": "datetime", "ResourceChangeTime": "datetime",
    "ControlTitle": "string", "Evidence": "dynamic",
}


def _iso(value: datetime) -> str:
    return value.isoformat().replace("+00:00", "Z")


def _text(record: Mapping[str, Any], name: str, where: str, required: bool = True) -> str | None:
    value = record.get(name)
    if value in (None, ""):
        if required:
            raise StatesError(f"{where}: '{name}' is missing")
        return None
    if not isinstance(value, str):
        raise StatesError(f"{where}: '{name}' is {type(value).__name__}, not text")
    return value


def _time(value: Any, where: str) -> datetime | None:
    if value in (None, ""):
        return None
    if not isinstance(value, str):
        raise StatesError(f"{where}: 'timestamp' is {type(value).__name__}, not an ISO 8601 time")
    try:
        parsed = datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        raise StatesError(f"{where}: 'timestamp' {value[:40]!r} is not an ISO 8601 time") from None
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=timezone.utc)


def azure_states(document: Any, origin: str, problems: list[str] | None = None) -> list[AzureState]:
    """The states of a queryResults response (``{"value": [...]}``), a list of them (``az policy state
    list``), or one record. A bad record raises with its position and field, or, given ``problems``,
    is left out and described there."""
    if isinstance(document, Mapping) and isinstance(document.get("value"), list):
        records = document["value"]
    elif isinstance(document, list):
        records = document
    elif isinstance(document, Mapping) and "policyAssignmentId" in document:
        records = [document]
    else:
        raise StatesError(f"{origin}: not policy states (a queryResults response {{\"value\": [...]}}, "
                          f"`az policy state list` output, or one state record)")
    out = []
    for index, record in enumerate(records):
        try:
            out.append(_state(record, f"{origin}: state {index + 1}"))
        except StatesError as exc:
            if problems is None:
                raise
            problems.append(str(exc))
    return out


def _state(record: Any, where: str) -> AzureState:
    if not isinstance(record, Mapping):
        raise StatesError(f"{where}: not an object")
    ids = [_text(record, name, where) for name in ("resourceId", "policyAssignmentId", "policyDefinitionId")]
    status = record.get("complianceState")
    if status in (None, ""):
        compliant = record.get("isCompliant")
        status = "Compliant" if compliant is True else "NonCompliant" if compliant is False else None
    if not isinstance(status, str):
        raise StatesError(f"{where}: neither 'complianceState' nor 'isCompliant' says its state")
    return AzureState(*ids, status, _time(record.get("timestamp"), where),
                      _text(record, "policySetDefinitionId", where, required=False),
                      _text(record, "policyDefinitionReferenceId", where, required=False))


@dataclass
class ParityReport:
    comparisons: list[Comparison] = field(default_factory=list)

    def count(self, outcome: str) -> int:
        return sum(1 for c in self.comparisons if c.outcome == outcome)

    @property
    def agreement(self) -> float | None:
        judged = self.count(AGREE) + self.count(DISAGREE)
        return 100.0 * self.count(AGREE) / judged if judged else None

    def summary(self) -> str:
        percent = self.agreement
        share = f"{percent:.1f}% agreement" if percent is not None else "no pair judged by both"
        return (f"parity: {self.count(AGREE)} agree, {self.count(DISAGREE)} disagree, {self.count(ONLY_MONITOR)} only "
                f"monitor, {self.count(ONLY_AZURE)} only Azure Policy, {self.count(AZURE_OLDER)} Azure older ({share})")


def _same(monitor: str, azure: str) -> bool:
    return monitor == azure or (monitor == "Compliant" and azure == "Exempt")


def compare(verdicts: Iterable[Verdict], states: Iterable[AzureState]) -> ParityReport:
    """One comparison per (resource, assignment, member) that either side decided."""
    mine: dict[tuple, Verdict] = {}
    for v in verdicts:
        mine[pair_key(v.resource_id, v.assignment_id, v.definition_id, v.reference_id)] = v
    theirs: dict[tuple, AzureState] = {}
    for s in states:
        key = pair_key(s.resource_id, s.assignment_id, s.definition_id, s.reference_id)
        kept = theirs.get(key)
        if kept is None or (s.timestamp or datetime.min.replace(tzinfo=timezone.utc)) > (
                kept.timestamp or datetime.min.replace(tzinfo=timezone.utc)):
            theirs[key] = s  # the latest state of the pair
    report = ParityReport()
    for key in sorted(set(mine) | set(theirs)):
        v, s = mine.get(key), theirs.get(key)
        monitor = v.status if v is not None and v.status in DECIDED else None
        azure = s.status if s is not None and s.status in DECIDED else None
        if monitor is None and azure is None:
            continue
        if monitor is None:
            outcome = ONLY_AZURE
        elif azure is None:
            outcome = ONLY_MONITOR
        elif _same(monitor, azure):
            outcome = AGREE
        elif v.changed_at is not None and s.timestamp is not None and s.timestamp < v.changed_at:
            outcome = AZURE_OLDER
        else:
            outcome = DISAGREE
        source = v if v is not None else s
        report.comparisons.append(Comparison(
            outcome, source.resource_id, source.assignment_id, source.definition_id,
            v.status if v is not None else None, s.status if s is not None else None,
            source.set_id or None, source.reference_id or None, s.timestamp if s is not None else None,
            v.changed_at if v is not None else None, v.title if v is not None else "",
            tuple(v.evidence) if v is not None else ()))
    return report
