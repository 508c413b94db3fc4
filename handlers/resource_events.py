"""Event Grid trigger for resource-change events (EventGrid and CloudEvents schemas).

Parse, call the service, and let transient failures raise so Event Grid
redelivers. An event that can never be processed is logged with its id and the
reason and acknowledged.
"""
from __future__ import annotations

import logging
from collections import Counter

import azure.functions as func

from shared.events import Envelope, EventRejected, parse_event

log = logging.getLogger(__name__)
bp = func.Blueprint()
REJECTED: Counter[str] = Counter()  # rejections by kind in this process (EventRejected, OutOfScope)


def envelope_from_trigger(event: func.EventGridEvent | func.CloudEvent) -> Envelope:
    """The worker decodes a body with ``specversion`` as a CloudEvent, any other as an EventGridEvent."""
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
    try:
        change = parse_event(envelope_from_trigger(event))
    except EventRejected as exc:
        REJECTED[type(exc).__name__] += 1
        log.error("event %s rejected, not retried: %s", exc.event_id, exc.reason)
        return

    from shared import bootstrap
    from shared.service import handle_change

    try:
        outcome = handle_change(change, bootstrap.dependencies())
    except EventRejected as exc:
        REJECTED[type(exc).__name__] += 1
        log.error("event %s rejected, not retried: %s (%s so far: %d)", exc.event_id, exc.reason,
                  type(exc).__name__, REJECTED[type(exc).__name__])
        return
    except Exception:
        log.warning("event %s for %s failed; raising so Event Grid redelivers", change.event_id,
                    change.resource.value, exc_info=True)
        raise
    log.info("event %s (%s %s): %d finding(s)%s", change.event_id, change.kind, change.resource.value,
             len(outcome.findings), f"; skipped: {outcome.skipped}" if outcome.skipped else "")
