"""Event Grid envelopes -> ``ResourceChange``. Pure: no I/O, no SDK clients.

Two sources are understood, in the EventGrid schema and in CloudEvents 1.0:

* Azure Resource Manager events from the subscription / resource group system
  topics (``Microsoft.Resources.Resource{Write,Delete,Action}Success``). They
  carry no resource properties: the resource is re-read.
* Azure Resource Notifications (``Microsoft.ResourceNotifications.Resources.
  CreatedOrUpdated`` / ``Deleted``). ``CreatedOrUpdated`` carries the resource
  in ``data.resourceInfo`` and its shape's ``data.apiVersion``; how far it is
  trusted is decided in ``shared.domain.payloads``.
* Azure Policy state changes (``Microsoft.PolicyInsights.PolicyState{Created,Changed,Deleted}``
  from a ``Microsoft.PolicyInsights.PolicyStates`` system topic): the subject is the resource
  and ``data`` one compliance state; they matter to controls that take Azure Policy's verdict
  (``shared.domain.policy_states``), and the resource is re-evaluated with that state.
"""
from __future__ import annotations

import json
import re
from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone
from typing import Any, Iterator, Mapping

from .policy_states import DEFINITION_ID, MAX_ID_LENGTH
from .resource_ids import InvalidResourceId, ResourceId, parse_resource_id, tracked_resource
from .untrusted import EventRejected, parse_time, printable

ARM_WRITE = "Microsoft.Resources.ResourceWriteSuccess"
ARM_DELETE = "Microsoft.Resources.ResourceDeleteSuccess"
ARM_ACTION = "Microsoft.Resources.ResourceActionSuccess"
ARN_UPSERT = "Microsoft.ResourceNotifications.Resources.CreatedOrUpdated"
ARN_DELETE = "Microsoft.ResourceNotifications.Resources.Deleted"
POLICY_STATE_CREATED = "Microsoft.PolicyInsights.PolicyStateCreated"
POLICY_STATE_CHANGED = "Microsoft.PolicyInsights.PolicyStateChanged"
POLICY_STATE_DELETED = "Microsoft.PolicyInsights.PolicyStateDeleted"
POLICY_STATE_FIELDS = ("policyAssignmentId", "policyDefinitionId", "policyDefinitionReferenceId", "complianceState",
                       "complianceReasonCode", "subscriptionId", "timestamp")

EVENT_KINDS = {
    ARM_WRITE.lower(): "write",
    ARM_DELETE.lower(): "delete",
    ARM_ACTION.lower(): "action",
    ARN_UPSERT.lower(): "write",
    ARN_DELETE.lower(): "delete",
    POLICY_STATE_CREATED.lower(): "policyState",
    POLICY_STATE_CHANGED.lower(): "policyState",
    POLICY_STATE_DELETED.lower(): "policyState",
}
SUPPORTED_EVENT_TYPES = (ARM_WRITE, ARM_DELETE, ARM_ACTION, ARN_UPSERT, ARN_DELETE,
                         POLICY_STATE_CREATED, POLICY_STATE_CHANGED, POLICY_STATE_DELETED)

# Largest event Event Grid delivers.
MAX_EVENT_BYTES = 1024 * 1024
# Deepest nesting of ``data`` accepted (ARM resources nest a few levels; thousands only come from a forger).
MAX_DATA_DEPTH = 64
# Clock skew tolerated: an event time up to this far ahead of the clock is kept; one further ahead is
# replaced by the clock's time (the raw text is kept in ``raw_event_time`` and in the finding).
MAX_CLOCK_SKEW = timedelta(minutes=5)
# Earliest event time accepted (Table Storage stores no date before 1601; nothing in Azure predates 1970).
EARLIEST_EVENT_TIME = datetime(1970, 1, 1, tzinfo=timezone.utc)


@dataclass(frozen=True)
class Envelope:
    """The schema-independent fields of one Event Grid delivery."""

    id: str | None
    type: str | None
    subject: str | None
    time: Any  # str or datetime as delivered
    data: Any
    source: str | None  # EventGrid 'topic' or CloudEvents 'source'
    schema: str  # "EventGrid" | "CloudEvents"
    spec_version: str | None = None  # CloudEvents 'specversion'


@dataclass(frozen=True)
class Caller:
    """Who made the change, from the event's claims and authorization evidence."""

    upn: str | None = None
    app_id: str | None = None
    name: str | None = None
    principal_id: str | None = None

    @property
    def display(self) -> str:
        return self.upn or self.name or (f"app:{self.app_id}" if self.app_id else None) or (
            f"principal:{self.principal_id}" if self.principal_id else "unknown"
        )


@dataclass(frozen=True)
class ResourceChange:
    """One resource-change hint: what changed, how, when and by whom."""

    event_id: str
    event_type: str
    kind: str  # "write" | "delete" | "action" | "policyState"
    resource: ResourceId  # the tracked resource to (re-)evaluate
    subject: ResourceId  # the id the event names (may be a child / extension)
    event_time: datetime
    caller: Caller = field(default_factory=Caller)
    operation_name: str | None = None
    correlation_id: str | None = None
    payload: Mapping[str, Any] | None = None  # ARM resource object, when the event carries it
    schema: str = "EventGrid"
    raw_event_time: str | None = field(default=None, compare=False)  # as delivered (``event_time`` may be clamped)
    payload_api_version: str | None = None  # Resource Notifications data.apiVersion: the payload's shape
    # the payload is a whole ARM representation (a Resource Graph row in reconciliation), not a notification
    # that may lack properties: it is judged as is, never completed by an ARM re-read
    payload_complete: bool = False
    # Azure Policy state events: the compliance state reported (``POLICY_STATE_FIELDS``) and whether it was deleted
    policy_state: Mapping[str, Any] | None = None
    policy_state_deleted: bool = False

    @property
    def is_resource_deleted(self) -> bool:
        """A delete of the tracked resource itself (not of one of its settings)."""
        return self.kind == "delete" and self.subject.key == self.resource.key


# --------------------------------------------------------------------------- parsing


def envelope_from_dict(obj: Any) -> Envelope:
    """Detect the schema of one decoded JSON event (``specversion`` means CloudEvents) and map its fields.

    Validation happens in ``parse_event``, the same for every entry point.
    """
    if not isinstance(obj, Mapping):
        raise EventRejected(None, f"an event must be a JSON object, got {type(obj).__name__}")
    if "specversion" in obj:
        return Envelope(obj.get("id"), obj.get("type"), obj.get("subject"), obj.get("time"), obj.get("data"),
                        obj.get("source"), "CloudEvents", str(obj.get("specversion")))
    return Envelope(obj.get("id"), obj.get("eventType"), obj.get("subject"), obj.get("eventTime"), obj.get("data"),
                    obj.get("topic"), "EventGrid")


def _checked(envelope: Envelope) -> Envelope:
    _check_envelope(envelope)
    return envelope


def _check_envelope(envelope: Envelope) -> None:
    """The attributes each schema requires, whichever way the event arrived."""
    event_id = envelope.id if isinstance(envelope.id, str) else None
    if envelope.schema == "CloudEvents":
        required = {"id": envelope.id, "source": envelope.source, "type": envelope.type}
        if envelope.spec_version not in (None, "1.0"):
            raise EventRejected(event_id, f"unsupported CloudEvents specversion {envelope.spec_version!r}")
        what = "CloudEvent is missing the required attribute"
    else:
        required = {"id": envelope.id, "eventType": envelope.type, "subject": envelope.subject,
                    "eventTime": envelope.time}
        what = "Event Grid event is missing the required field"
    for key, value in required.items():
        if not value or not isinstance(value, (str, datetime)):
            raise EventRejected(event_id, f"{what} '{key}'")


def iter_envelopes(text: str, origin: str = "input") -> Iterator[Envelope | EventRejected]:
    """Events from a JSON array, a single JSON object or JSON lines.

    Yields an ``EventRejected`` in place of each event that cannot be decoded,
    so one bad line never hides the others.
    """
    stripped = text.strip()
    if not stripped:
        return
    try:
        decoded = json.loads(stripped)
    except (json.JSONDecodeError, RecursionError):
        decoded = None
        lines = stripped.splitlines()
    else:
        lines = None
    if lines is None:
        items = decoded if isinstance(decoded, list) else [decoded]
        for index, item in enumerate(items):
            try:
                yield _checked(envelope_from_dict(item))
            except EventRejected as exc:
                yield EventRejected(exc.event_id if exc.event_id != "<no id>" else f"{origin}[{index}]", exc.reason)
        return
    for number, line in enumerate(lines, start=1):
        if not line.strip():
            continue
        try:
            item = json.loads(line)
        except json.JSONDecodeError as exc:
            yield EventRejected(f"{origin}:{number}", f"invalid JSON: {exc.msg} at column {exc.colno}")
            continue
        except RecursionError:
            yield EventRejected(f"{origin}:{number}", "JSON nests too deeply to be read")
            continue
        try:
            yield _checked(envelope_from_dict(item))
        except EventRejected as exc:
            yield EventRejected(exc.event_id if exc.event_id != "<no id>" else f"{origin}:{number}", exc.reason)


def bounded_time(parsed: datetime, now: datetime, event_id: str | None = None) -> datetime:
    """An event time that later arithmetic can trust: never after ``now + MAX_CLOCK_SKEW``.

    A time further ahead becomes ``now``: it would otherwise make every later payload look stale (and
    overflow due dates). A time before 1970 is refused, since nothing in Azure happened then.
    """
    if parsed < EARLIEST_EVENT_TIME:
        raise EventRejected(event_id, f"event time {parsed.isoformat()} is before {EARLIEST_EVENT_TIME.year}")
    return now if parsed > now + MAX_CLOCK_SKEW else parsed


def data_depth(value: Any, limit: int = MAX_DATA_DEPTH) -> int:
    """How deeply ``value`` nests (iteratively, so no depth can exhaust the stack); stops counting at ``limit + 1``."""
    deepest, stack = 0, [(value, 1)]
    while stack:
        item, depth = stack.pop()
        if not isinstance(item, (Mapping, list, tuple)):
            continue
        deepest = max(deepest, depth)
        if deepest > limit:
            return deepest
        stack.extend((child, depth + 1) for child in (item.values() if isinstance(item, Mapping) else item))
    return deepest


def _caller(data: Mapping[str, Any]) -> Caller:
    claims = data.get("claims") if isinstance(data.get("claims"), Mapping) else {}
    upn = claims.get("http://schemas.xmlsoap.org/ws/2005/05/identity/claims/upn") or claims.get("upn")
    name = claims.get("name")
    app_id = claims.get("appid") or claims.get("azp")
    auth = data.get("authorization") if isinstance(data.get("authorization"), Mapping) else {}
    evidence = auth.get("evidence") if isinstance(auth.get("evidence"), Mapping) else {}
    principal = evidence.get("principalId") or claims.get("http://schemas.microsoft.com/identity/claims/objectidentifier")
    as_text = lambda v: v if isinstance(v, str) and v else None  # noqa: E731
    return Caller(as_text(upn), as_text(app_id), as_text(name), as_text(principal))


def _scope_of(text: Any, what: str, event_id: str | None) -> ResourceId:
    try:
        return parse_resource_id(text)
    except InvalidResourceId as exc:
        raise EventRejected(event_id, f"{what} is not an Azure scope: {exc}") from None


def _check_identity(envelope: Envelope, named: ResourceId, event_id: str | None, is_arn: bool,
                    info_id: Any) -> None:
    """Subject, ``data.resourceInfo.id`` / ``data.resourceUri`` and topic / source must name the same resource.

    A system topic's ``topic`` (CloudEvents ``source``) is the subscription or resource group it watches:
    the resource must lie inside it.
    """
    if is_arn and envelope.subject and info_id:
        subject = _scope_of(envelope.subject, "subject", event_id)
        if subject.key != named.key:
            raise EventRejected(event_id, f"subject {envelope.subject!r:.200} and data.resourceInfo.id "
                                          f"{info_id!r:.200} disagree")
    if envelope.source:
        where = "source" if envelope.schema == "CloudEvents" else "topic"
        scope = _scope_of(envelope.source, where, event_id)
        if scope.subscription_id.lower() != named.subscription_id.lower() or (
                scope.resource_group and (named.resource_group or "").lower() != scope.resource_group.lower()):
            raise EventRejected(event_id, f"{where} {envelope.source!r:.200} is not the scope of the resource "
                                          f"{named.value!r:.200}")


def parse_event(envelope: Envelope, now: datetime | None = None) -> ResourceChange:
    """Turn one envelope into a ``ResourceChange`` or raise ``EventRejected``.

    ``now`` (default: the clock) bounds the event time: see ``bounded_time``.
    """
    _check_envelope(envelope)
    event_id = envelope.id
    event_type = envelope.type or ""
    kind = EVENT_KINDS.get(event_type.lower())
    if kind is None:
        raise EventRejected(
            event_id, f"unsupported event type {event_type!r}; supported: {', '.join(SUPPORTED_EVENT_TYPES)}"
        )
    data = envelope.data
    if isinstance(data, (str, bytes)):
        try:
            data = json.loads(data)
        except (json.JSONDecodeError, UnicodeDecodeError):
            raise EventRejected(event_id, "event data is not valid JSON") from None
    if not isinstance(data, Mapping):
        raise EventRejected(event_id, f"event data must be a JSON object, got {type(data).__name__}")
    if data_depth(data) > MAX_DATA_DEPTH:
        raise EventRejected(event_id, f"event data nests deeper than {MAX_DATA_DEPTH} levels")
    size = len(json.dumps(data, default=str))
    if size > MAX_EVENT_BYTES:
        raise EventRejected(event_id, f"event data is {size} bytes; Event Grid events are at most {MAX_EVENT_BYTES}")

    is_arn = event_type.lower().startswith("microsoft.resourcenotifications.")
    payload = None
    policy_state = None
    event_time_text = envelope.time
    if kind == "policyState":
        info_id = None
        policy_state = _policy_state(data, event_id, event_type.lower() == POLICY_STATE_DELETED.lower())
        id_text = envelope.subject
        event_time_text = policy_state.get("timestamp") or envelope.time
    elif is_arn:
        info = data.get("resourceInfo")
        if not isinstance(info, Mapping):
            raise EventRejected(event_id, "Resource Notifications event has no 'data.resourceInfo' object")
        info_id = info.get("id")
        id_text = info_id or envelope.subject
        operational = data.get("operationalInfo") if isinstance(data.get("operationalInfo"), Mapping) else {}
        event_time_text = operational.get("resourceEventTime") or envelope.time
        if kind == "write":
            if not isinstance(info.get("properties"), Mapping):
                raise EventRejected(event_id, "CreatedOrUpdated event has no 'data.resourceInfo.properties' object")
            payload = dict(info)
    else:
        info_id = None
        id_text = data.get("resourceUri") or envelope.subject
    try:
        subject = parse_resource_id(id_text)
    except InvalidResourceId as exc:
        raise EventRejected(event_id, f"event names no valid resource: {exc}") from None
    _check_identity(envelope, subject, event_id, is_arn, info_id)
    if envelope.subject and not is_arn:
        try:
            named = parse_resource_id(envelope.subject)
        except InvalidResourceId:
            named = None
        if named is not None and named.key != subject.key:
            raise EventRejected(event_id, f"subject {envelope.subject!r:.200} and data.resourceUri disagree")
    try:
        tracked = tracked_resource(subject)
    except InvalidResourceId as exc:
        raise EventRejected(event_id, f"cannot tell which resource the event belongs to: {exc}") from None
    if payload is not None:
        if tracked.key != subject.key:
            payload = None  # the payload is a child resource: re-read the tracked parent
        else:
            payload.setdefault("id", subject.value)
    if event_time_text is None:
        raise EventRejected(event_id, "event has no time")
    event_time = bounded_time(parse_time(event_time_text, event_id), now or datetime.now(timezone.utc), event_id)
    return ResourceChange(
        event_id=event_id,
        event_type=event_type,
        kind=kind,
        resource=tracked,
        subject=subject,
        event_time=event_time,
        caller=_caller(data),
        operation_name=data.get("operationName") if isinstance(data.get("operationName"), str) else None,
        correlation_id=data.get("correlationId") if isinstance(data.get("correlationId"), str) else None,
        payload=payload,
        schema=envelope.schema,
        raw_event_time=event_time_text if isinstance(event_time_text, str) else event_time_text.isoformat(),
        payload_api_version=data.get("apiVersion") if payload is not None and isinstance(data.get("apiVersion"), str)
        else None,
        policy_state=policy_state,
        policy_state_deleted=event_type.lower() == POLICY_STATE_DELETED.lower(),
    )


def _policy_state(data: Mapping[str, Any], event_id: str | None, deleted: bool) -> dict[str, Any]:
    """The compliance state an Azure Policy event reports, checked field by field (ids, state, time)."""
    state: dict[str, Any] = {}
    for key in POLICY_STATE_FIELDS:
        value = data.get(key)
        if value is None or value == "":
            continue
        if not isinstance(value, str) or len(value) > MAX_ID_LENGTH:
            raise EventRejected(event_id, f"Azure Policy event data.{key} must be a string of at most "
                                          f"{MAX_ID_LENGTH} characters, got {value!r:.80}")
        state[key] = value
    definition = state.get("policyDefinitionId")
    if not definition or not DEFINITION_ID.match(definition):
        raise EventRejected(event_id, f"Azure Policy event data.policyDefinitionId is not a policy definition id: "
                                      f"{definition!r:.200}")
    assignment = state.get("policyAssignmentId", "")
    if "/providers/microsoft.authorization/policyassignments/" not in assignment.lower():
        raise EventRejected(event_id, f"Azure Policy event data.policyAssignmentId is not a policy assignment id: "
                                      f"{assignment!r:.200}")
    if not (deleted and "complianceState" not in state) and not re.fullmatch(r"[A-Za-z]{1,40}",
                                                                              state.get("complianceState", "")):
        raise EventRejected(event_id, f"Azure Policy event data.complianceState must be a state name such as "
                                      f"Compliant or NonCompliant, got {state.get('complianceState')!r:.60}")
    if "timestamp" in state:
        parse_time(state["timestamp"], event_id)  # an unreadable scan time is refused here, not later
    return state
