"""Event Grid trigger for resource-change events (EventGrid and CloudEvents schemas).

Parse, call the service, and let transient failures raise so Event Grid
redelivers. An event that can never be processed (malformed, out of scope, or a
state the store can never hold) is a permanent rejection: logged at ERROR with
its id and the reason as "rejected, not retried" (structured fields beside the
text), counted, recorded in ComplianceRejections_CL (not sampled; what the
pipeline-health alert counts, infra/queries/pipeline-permanent-rejections.kql),
and acknowledged.
"""
from __future__ import annotations

import logging
from collections import Counter
from typing import TYPE_CHECKING

import azure.functions as func

if TYPE_CHECKING:
    from shared.domain.events import Envelope, EventRejected

# The parser (shared.domain.events) is imported on the first event, not at `import function_app`: the host's
# cold start pays for azure.functions and the blueprints only (docs/PERFORMANCE.md, "Cold start").

log = logging.getLogger(__name__)
bp = func.Blueprint()
REJECTED: Counter[str] = Counter()  # rejections by kind in this process (EventRejected, OutOfScope, PermanentFailure)


def _rejected(exc: EventRejected, subject: str | None = None) -> None:
    """Log the rejection with structured fields, and record it in ComplianceRejections_CL (not sampled, as
    Application Insights traces are), where the pipeline-health alert counts rejections."""
    kind = type(exc).__name__
    REJECTED[kind] += 1
    log.error("event %s rejected, not retried: %s (%s so far: %d)", exc.event_id, exc.reason, kind, REJECTED[kind],
              extra={"rejection_kind": kind, "event_id": exc.event_id, "rejections_so_far": REJECTED[kind]})
    from datetime import datetime, timezone

    from shared import bootstrap
    from shared.domain.rejections import rejection_record

    try:
        deps = bootstrap.dependencies()
        if deps.rejection_sink is not None:
            deps.rejection_sink.send([rejection_record(exc.event_id, kind, exc.reason, subject,
                                                       datetime.now(timezone.utc))])
    except Exception as failure:  # the event stays acknowledged; the ERROR line above still tells
        log.warning("rejection of event %s not recorded in ComplianceRejections_CL: %s", exc.event_id, failure,
                    extra={"rejection_kind": kind, "event_id": exc.event_id})


def envelope_from_trigger(event: func.EventGridEvent | func.CloudEvent) -> Envelope:
    """The worker decodes a body with ``specversion`` as a CloudEvent, any other as an EventGridEvent."""
    from shared.domain.events import Envelope, EventRejected

    try:
        data = event.get_json()
    except ValueError as exc:
        raise EventRejected(getattr(event, "id", None), f"event data is not valid JSON: {exc}") from None
    if isinstance(event, func.CloudEvent):
        return Envelope(event.id, event.type, event.subject, event.time, data, event.source, "CloudEvents",
                        event.specversion)
    return Envelope(event.id, event.event_type, event.subject, event.event_time, data, event.topic, "EventGrid")


@bp.function_name("on_resource_change")
@bp.event_grid_trigger(arg_name="event")
def on_resource_change(event: func.EventGridEvent) -> None:
    process(lambda: envelope_from_trigger(event), getattr(event, "id", None), getattr(event, "subject", None))


def process(envelope, event_id: str | None, subject: str | None) -> None:
    """One delivered event, whatever delivered it (the Event Grid trigger, or a Storage Queue with queue
    delivery): parse, handle, acknowledge a permanent rejection, raise a transient failure."""
    from shared.domain.events import EventRejected, parse_event

    try:
        change = parse_event(envelope())
    except EventRejected as exc:
        _rejected(exc, subject)
        return
    except (RecursionError, OverflowError, MemoryError, ValueError, TypeError) as exc:
        # Parsing is pure (no I/O): whatever it raises, redelivering the same bytes raises again.
        log.debug("parse failure", exc_info=True)
        _rejected(EventRejected(event_id, f"event cannot be parsed: {type(exc).__name__}: {exc}"), subject)
        return

    from shared import bootstrap
    from shared.service.changes import handle_change

    try:
        outcome = handle_change(change, bootstrap.dependencies())
    except EventRejected as exc:
        _rejected(exc, change.subject.value)
        return
    except Exception:
        log.warning("event %s for %s failed; raising so it is delivered again", change.event_id,
                    change.resource.value, exc_info=True)
        raise
    log.info("event %s (%s %s): %d finding(s)%s", change.event_id, change.kind, change.resource.value,
             len(outcome.findings), f"; skipped: {outcome.skipped}" if outcome.skipped else "")
