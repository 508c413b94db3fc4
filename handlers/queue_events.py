"""Storage Queue trigger for the queue delivery option: Event Grid writes each event to a queue
(``deliveryWithResourceIdentity``), and this trigger runs it through the same path as the Event Grid
trigger (``handlers/resource_events.process``). No webhook, so no validation handshake and no
dependency on the function being indexed first, and it works with private networking.

A permanent rejection is acknowledged (the message is deleted) and recorded as with the webhook; a
transient failure raises, so the message becomes visible again and is retried, and after the host's
``maxDequeueCount`` tries it moves to the ``<queue>-poison`` queue, which plays the dead-letter
container's part. Registered by ``function_app`` only when ``EVENT_DELIVERY=queue``.
"""
from __future__ import annotations

import base64
import binascii
import json
import logging

import azure.functions as func

from handlers.resource_events import process

log = logging.getLogger(__name__)
bp = func.Blueprint()


def envelope_from_message(message: func.QueueMessage):
    """The event in a queue message: the JSON Event Grid wrote (EventGrid or CloudEvents schema), which
    the host has base64-decoded already; a body base64-encoded once more is decoded too."""
    from shared.domain.events import EventRejected, envelope_from_dict

    body = message.get_body()
    text = body.decode("utf-8", errors="replace") if isinstance(body, bytes) else str(body)
    try:
        document = json.loads(text)
    except ValueError:
        try:
            document = json.loads(base64.b64decode(text, validate=True).decode("utf-8"))
        except (binascii.Error, ValueError, UnicodeDecodeError):
            raise EventRejected(message.id, "queue message is not an event (neither JSON nor base64 JSON)") from None
    if isinstance(document, list) and len(document) == 1:
        document = document[0]  # an EventGrid-schema batch of one
    if not isinstance(document, dict):
        raise EventRejected(message.id, f"queue message holds a JSON {type(document).__name__}, not one event")
    return envelope_from_dict(document)


@bp.function_name("on_resource_change_queued")
@bp.queue_trigger(arg_name="message", queue_name="%EVENTS_QUEUE_NAME%", connection="EVENTS_QUEUE")
def on_resource_change_queued(message: func.QueueMessage) -> None:
    process(lambda: envelope_from_message(message), message.id, None)
