"""StateStore over Azure Table Storage (``azure-data-tables``).

One partition per resource; a ``resource`` row, one row per control, and one
``outbox.<FindingId>`` row per finding not yet delivered. One evaluation is one
partition query and one entity-group transaction (state and outbox together).
The resource row's ETag guards the whole partition: the transaction updates it
with ``IfNotModified`` (or creates it), so a concurrent writer makes it fail
with 412 / 409 and the caller re-reads. Outbox rows are deleted once delivered.
"""
from __future__ import annotations

import hashlib
import json
import logging
from datetime import datetime
from typing import Any, Iterator
from urllib.parse import quote

from azure.core import MatchConditions
from azure.core.exceptions import HttpResponseError, ResourceExistsError, ResourceNotFoundError
from azure.data.tables import TableClient, TableTransactionError, UpdateMode

from ..catalog import Status
from ..domain.drift import ControlState, ResourceState, changed_controls
from ..domain.results import PolicyRef
from ..domain.findings import bounded_evidence
from ..service.ports import OUTBOX_GRACE, ConcurrencyConflict, PendingFinding, ScopeMark, StateUnstorable
from ..domain.resource_ids import ResourceId

log = logging.getLogger(__name__)
RESOURCE_ROW = "resource"
CONTROL_PREFIX = "control."
OUTBOX_PREFIX = "outbox."
OUTBOX_END = "outbox/"  # the first key after every "outbox." key
MAX_BATCH = 100  # entity-group transaction limit
# Keys: Azure allows 1 KiB, Azurite 512 characters; longer keys end in a hash of the whole key.
_MAX_KEY = 512
# Strings are stored as UTF-16: a 64 KiB property holds 32,768 characters. Stay well under it.
MAX_PROPERTY_CHARS = 30_000
MAX_TEXT_CHARS = 1_000  # type, location, owner, team, event id: anything longer is a forgery, bounded
MAX_RECORD_CHARS = 450_000  # an outbox record, split over properties, within the 1 MiB entity
_CONFLICT_CODES = {"UpdateConditionNotSatisfied", "EntityAlreadyExists", "ConditionNotMet"}
# What Table Storage answers to an entity it can never hold: a permanent rejection, not a transient failure.
_PERMANENT_CODES = {"PropertyValueTooLarge", "EntityTooLarge", "KeyValueTooLarge", "InvalidInput", "OutOfRangeInput",
                    "PropertyNameTooLong", "TooManyProperties", "InvalidValueType", "RequestBodyTooLarge",
                    "InvalidDuplicateRow"}


def partition_key(resource_id: ResourceId | str) -> str:
    """A PartitionKey for a resource id: lower case, with '/', '\\', '#', '?' and '%' escaped."""
    key = str(getattr(resource_id, "key", resource_id)).lower()
    encoded = quote(key, safe="-_.~!$&'()*+,;=:@ ")
    if len(encoded) > _MAX_KEY:
        encoded = encoded[:_MAX_KEY - 80] + "~" + hashlib.sha256(key.encode()).hexdigest()
    return encoded


def bounded_text(text: str, limit: int = MAX_TEXT_CHARS) -> str:
    """``text`` if it fits, else its start, a marker and a hash of the whole (the full value is in the finding)."""
    if len(text) <= limit:
        return text
    return f"{text[:limit - 90]}...[truncated {len(text)} chars, sha256 {hashlib.sha256(text.encode()).hexdigest()}]"


def bounded_tags(tags: dict, limit: int = MAX_PROPERTY_CHARS) -> dict:
    """Tags that serialise within ``limit`` characters; what is left out is named by a ``~truncated`` entry."""
    if len(json.dumps(tags, separators=(",", ":"))) <= limit:
        return tags
    kept: dict = {}
    size = 2
    for key, value in tags.items():
        item = {bounded_text(str(key), 512): bounded_text(str(value), 512)}
        length = len(json.dumps(item, separators=(",", ":")))
        if size + length > limit - 200:
            break
        kept.update(item)
        size += length
    digest = hashlib.sha256(json.dumps(tags, sort_keys=True).encode()).hexdigest()
    kept["~truncated"] = f"{len(tags) - len(kept)} of {len(tags)} tags left out (sha256 {digest}); see the finding"
    return kept


def _split_record(text: str) -> dict:
    """An outbox record over as many properties as it needs (Record, Record1, ...), each within the limit."""
    parts = [text[i:i + MAX_PROPERTY_CHARS] for i in range(0, len(text), MAX_PROPERTY_CHARS)] or [""]
    return {("Record" if i == 0 else f"Record{i}"): part for i, part in enumerate(parts)}


def _joined_record(entity) -> str:
    text, index = entity["Record"], 1
    while f"Record{index}" in entity:
        text += entity[f"Record{index}"]
        index += 1
    return text


def _stored_record(record: dict) -> str:
    text = json.dumps(record, default=str, separators=(",", ":"))
    if len(text) <= MAX_RECORD_CHARS:
        return text
    bounded = dict(record)
    bounded["EventId"] = bounded_text(str(record.get("EventId", "")))
    bounded["Tags"] = bounded_tags(dict(record.get("Tags") or {}), MAX_RECORD_CHARS // 4)
    return json.dumps(bounded, default=str, separators=(",", ":"))


def _policy_text(policy: PolicyRef | None) -> str | None:
    """An assigned control's ids, within the property limit (a long message is cut, the ids never are)."""
    if policy is None:
        return None
    data = policy.as_dict()
    if data.get("message"):
        data["message"] = bounded_text(data["message"], 4000)
    data["title"] = bounded_text(data.get("title", ""), 1000)
    return json.dumps(data, separators=(",", ":"))


def _dt(value: Any) -> datetime | None:
    return value if isinstance(value, datetime) else None


class TableBacked:
    """A store over one table; ``create_table`` makes the table if it is missing."""

    def __init__(self, table: TableClient) -> None:
        self.table = table

    @classmethod
    def create_table(cls, table: TableClient):
        try:
            table.create_table()
        except ResourceExistsError:
            pass
        return cls(table)


class TableStateStore(TableBacked):

    # ---------------------------------------------------------------- reading
    def load(self, resource_id: ResourceId) -> ResourceState | None:
        entities = list(self.table.query_entities("PartitionKey eq @pk", parameters={"pk": partition_key(resource_id)}))
        return self._to_state(entities)

    def states(self) -> Iterator[ResourceState]:
        partition: list = []
        current = None
        for entity in self.table.list_entities():
            if entity["PartitionKey"] != current and partition:
                state = self._to_state(partition)
                if state is not None:
                    yield state
                partition = []
            current = entity["PartitionKey"]
            partition.append(entity)
        if partition:
            state = self._to_state(partition)
            if state is not None:
                yield state

    @staticmethod
    def _to_state(entities: list) -> ResourceState | None:
        head = next((e for e in entities if e["RowKey"] == RESOURCE_ROW), None)
        if head is None:
            return None
        controls = {}
        for e in entities:
            if not e["RowKey"].startswith(CONTROL_PREFIX):
                continue
            status = e.get("Status") or None
            controls[e["ControlId"]] = ControlState(
                control_id=e["ControlId"], status=Status(status) if status else None,
                version=int(e.get("Version", 0)), since=_dt(e.get("Since")),
                evidence=tuple(json.loads(e.get("Evidence") or "[]")), note=e.get("Note") or None,
                due=_dt(e.get("Due")), overdue_notified=bool(e.get("OverdueNotified", False)),
                policy=PolicyRef.from_dict(json.loads(e["Policy"])) if e.get("Policy") else None,
            )
        return ResourceState(
            resource_id=head["ResourceId"], resource_type=head.get("ResourceType", ""),
            deleted=bool(head.get("Deleted", False)), location=head.get("Location") or None,
            tags=json.loads(head.get("Tags") or "{}"), last_event_id=head.get("LastEventId") or None,
            last_event_time=_dt(head.get("LastEventTime")), last_evaluated=_dt(head.get("LastEvaluated")),
            controls=controls, etag=head.metadata["etag"], owner=head.get("Owner") or None,
            team=head.get("Team") or None,
        )

    # ---------------------------------------------------------------- writing
    @staticmethod
    def _head(pk: str, new: ResourceState) -> dict:
        """The resource row, every value within the Table limits (oversized values bounded, see ``bounded_text``)."""
        head = {
            "PartitionKey": pk, "RowKey": RESOURCE_ROW, "ResourceId": new.resource_id,
            "ResourceType": bounded_text(new.resource_type), "Deleted": new.deleted,
            "Location": bounded_text(new.location or ""),
            "Tags": json.dumps(bounded_tags(dict(new.tags)), separators=(",", ":")),
            "LastEventId": bounded_text(new.last_event_id or "", 512),
            "LastEventTime": new.last_event_time, "LastEvaluated": new.last_evaluated,
            "OpenFindings": sum(1 for c in new.controls.values() if c.status == Status.NONCOMPLIANT),
            "Owner": bounded_text(new.owner or ""), "Team": bounded_text(new.team or ""),
        }
        return {k: v for k, v in head.items() if v is not None}

    def save(self, previous: ResourceState | None, new: ResourceState, outbox=()) -> None:
        pk = partition_key(new.resource_id)
        head = self._head(pk, new)
        if previous is None or previous.etag is None:
            operations: list = [("create", head)]
        else:
            operations = [("update", head, {"mode": UpdateMode.REPLACE, "etag": previous.etag,
                                            "match_condition": MatchConditions.IfNotModified})]
        for cid in changed_controls(previous, new):
            cs = new.controls[cid]
            row = {
                "PartitionKey": pk, "RowKey": CONTROL_PREFIX + cid, "ResourceId": new.resource_id, "ControlId": cid,
                "Status": cs.status.value if cs.status else "", "Version": cs.version, "Since": cs.since,
                "Evidence": json.dumps(bounded_evidence(cs.evidence, 15000), default=str, separators=(",", ":")),
                "Note": bounded_text(cs.note or "", 4000), "Due": cs.due, "OverdueNotified": cs.overdue_notified,
                "Policy": _policy_text(cs.policy),
            }
            operations.append(("upsert", {k: v for k, v in row.items() if v is not None}, {"mode": UpdateMode.REPLACE}))
        for record in outbox:
            operations.append(("upsert", {
                "PartitionKey": pk, "RowKey": OUTBOX_PREFIX + record["FindingId"], "ResourceId": new.resource_id,
                **_split_record(_stored_record(record)), "Attempts": 0,
                "NextAttempt": new.last_evaluated + OUTBOX_GRACE, "LastError": "",
            }, {"mode": UpdateMode.REPLACE}))
        if len(operations) > MAX_BATCH:
            raise StateUnstorable(
                f"{new.resource_id}: {len(operations) - 1} control rows changed at once; an entity-group "
                f"transaction holds at most {MAX_BATCH} entities"
            )
        try:
            self.table.submit_transaction(operations)
        except TableTransactionError as exc:
            if exc.error_code in _CONFLICT_CODES or exc.status_code in (409, 412):
                raise ConcurrencyConflict(f"state of {new.resource_id} changed since it was read") from exc
            if exc.status_code == 400 and getattr(exc.error_code, "value", exc.error_code) in _PERMANENT_CODES:
                raise StateUnstorable(f"Table Storage refused the state of {new.resource_id}: "
                                      f"{exc.error_code}") from exc
            raise

    # ---------------------------------------------------------------- outbox
    def pending(self, now: datetime, limit: int) -> list[PendingFinding]:
        query = self.table.query_entities(
            "RowKey ge @lo and RowKey lt @hi and NextAttempt le @now",
            parameters={"lo": OUTBOX_PREFIX, "hi": OUTBOX_END, "now": now}, results_per_page=min(limit, 1000))
        found = []
        for entity in query:
            found.append(PendingFinding(entity["ResourceId"], entity["RowKey"][len(OUTBOX_PREFIX):],
                                        json.loads(_joined_record(entity)), int(entity.get("Attempts", 0)),
                                        entity["NextAttempt"], entity.get("LastError") or None))
            if len(found) >= limit:
                break
        return sorted(found, key=lambda p: p.next_attempt)

    def delivered(self, resource_id: str, finding_ids) -> None:
        pk = partition_key(resource_id)
        ids = list(finding_ids)
        for start in range(0, len(ids), MAX_BATCH):
            chunk = ids[start:start + MAX_BATCH]
            try:
                self.table.submit_transaction(
                    [("delete", {"PartitionKey": pk, "RowKey": OUTBOX_PREFIX + fid}) for fid in chunk])
            except TableTransactionError as exc:
                if exc.status_code != 404 and exc.error_code != "ResourceNotFound":
                    raise
                for fid in chunk:  # someone else delivered part of it: delete the rest one by one
                    try:
                        self.table.delete_entity(pk, OUTBOX_PREFIX + fid)
                    except ResourceNotFoundError:
                        pass

    def defer(self, item: PendingFinding, next_attempt: datetime, error: str) -> None:
        try:
            self.table.update_entity({
                "PartitionKey": partition_key(item.resource_id), "RowKey": OUTBOX_PREFIX + item.finding_id,
                "Attempts": item.attempts + 1, "NextAttempt": next_attempt, "LastError": error[:2000],
            }, mode=UpdateMode.MERGE)
        except ResourceNotFoundError:
            log.info("finding %s was delivered meanwhile", item.finding_id)

    # ---------------------------------------------------------------- reconciliation bookkeeping
    _META = "~reconciliation"  # a partition no resource id can produce (ids start with '%2f')

    def load_checkpoint(self) -> dict | None:
        try:
            entity = self.table.get_entity(self._META, "checkpoint")
        except ResourceNotFoundError:
            return None
        return json.loads(entity["Body"])

    def save_checkpoint(self, checkpoint: dict) -> None:
        self.table.upsert_entity({"PartitionKey": self._META, "RowKey": "checkpoint",
                                  "Body": json.dumps(checkpoint, default=str)}, mode=UpdateMode.REPLACE)

    def clear_checkpoint(self) -> None:
        try:
            self.table.delete_entity(self._META, "checkpoint")
        except ResourceNotFoundError:
            pass

    # ---------------------------------------------------------------- assignments changed: scopes due
    _SCOPES = "~scopes"

    def mark_scope(self, subscription_id: str, at: datetime, reason: str) -> None:
        """Upsert: a burst of changes leaves one row per subscription (the latest time and reason)."""
        self.table.upsert_entity({"PartitionKey": self._SCOPES, "RowKey": "due." + subscription_id.lower(),
                                  "MarkedAt": at, "Reason": bounded_text(reason, 2000)}, mode=UpdateMode.REPLACE)

    def due_scopes(self, before: datetime) -> list[ScopeMark]:
        rows = self.table.query_entities("PartitionKey eq @pk and MarkedAt le @before",
                                         parameters={"pk": self._SCOPES, "before": before})
        return [ScopeMark(r["RowKey"][4:], r["MarkedAt"], r.get("Reason", ""), r.metadata["etag"])
                for r in rows if r["RowKey"].startswith("due.")]

    def clear_scope(self, mark: ScopeMark) -> bool:
        """Delete the mark unless it was marked again meanwhile (False: it stays due)."""
        try:
            self.table.delete_entity(self._SCOPES, "due." + mark.subscription_id, etag=mark.etag,
                                     match_condition=MatchConditions.IfNotModified)
        except ResourceNotFoundError:
            return True
        except HttpResponseError as exc:
            if exc.status_code == 412:
                return False
            raise
        return True

    def policy_fingerprint(self, subscription_id: str) -> str | None:
        try:
            return self.table.get_entity(self._SCOPES, "fp." + subscription_id.lower())["Fingerprint"]
        except ResourceNotFoundError:
            return None

    def save_policy_fingerprint(self, subscription_id: str, fingerprint: str) -> None:
        self.table.upsert_entity({"PartitionKey": self._SCOPES, "RowKey": "fp." + subscription_id.lower(),
                                  "Fingerprint": fingerprint}, mode=UpdateMode.REPLACE)

    def record_posture(self, summary) -> None:
        self.table.upsert_entity({"PartitionKey": "~posture", "RowKey": summary.at.strftime("%Y%m%dT%H%M%S"),
                                  "At": summary.at, "Counts": json.dumps(summary.counts),
                                  "BySeverity": json.dumps(summary.by_severity)}, mode=UpdateMode.REPLACE)

    def posture_history(self, limit: int = 1000) -> list:
        from ..domain.posture import PostureSummary

        rows = self.table.query_entities("PartitionKey eq @pk", parameters={"pk": "~posture"})
        points = [PostureSummary(r["At"], json.loads(r["Counts"]), json.loads(r["BySeverity"])) for r in rows]
        return sorted(points, key=lambda p: p.at)[-limit:]
