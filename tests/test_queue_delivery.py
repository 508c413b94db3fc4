"""The queue delivery option: Event Grid writes events to a Storage Queue and a queue trigger runs them
through the same path as the Event Grid trigger. Messages as the Functions host hands them over (the
host decodes the base64 Event Grid writes), against Azurite and the local Azure endpoints.

[EG-QUEUE] "Storage queue as an event handler for Event Grid events": each event is one message.
[FN-QUEUE] "Azure Queue storage trigger for Azure Functions": a function that fails leaves the message
           to be retried; after maxDequeueCount tries it moves to <queue>-poison.
"""
from __future__ import annotations

import base64
import json
import subprocess
import sys
from pathlib import Path

import azure.functions as func
import pytest

from tests.test_end_to_end import SA_ID, arm_event, storage, wired_app

REPO = Path(__file__).resolve().parents[1]


@pytest.fixture
def queued(azurite_connection_string, monkeypatch):
    with wired_app(monkeypatch, azurite_connection_string, "queued") as local:
        from handlers.queue_events import on_resource_change_queued

        function = on_resource_change_queued.build().get_user_function()
        local.deliver = lambda body, message_id="m-1": function(func.QueueMessage(id=message_id, body=body))
        yield local


def test_a_queued_event_is_evaluated_as_the_webhook_would(queued):
    """[EG-QUEUE] the message is the event's JSON, in either schema."""
    queued.put_resource(storage(supportsHttpsTrafficOnly=False))
    queued.deliver(json.dumps(arm_event("q1", SA_ID)).encode())
    assert [(r["Transition"], r["ControlId"]) for r in queued.ingested] == [("New", "storage-https-only")]
    queued.put_resource(storage())
    cloud = arm_event("q2", SA_ID, cloud=True, time="2026-05-04T10:10:00Z")
    queued.deliver(base64.b64encode(json.dumps(cloud).encode()))  # encoded once more: decoded too
    assert queued.ingested[-1]["Transition"] == "Resolved" and queued.ingested[-1]["EventId"] == "q2"


def test_a_message_that_is_no_event_is_acknowledged_and_recorded(queued):
    """A permanent rejection returns normally (the message is deleted, never retried) and is counted."""
    assert queued.deliver(b"certainly not json", "m-bad") is None
    assert queued.deliver(json.dumps([1, 2]).encode(), "m-list") is None
    kinds = [(r["EventId"], r["Kind"]) for r in queued.other_ingested["Custom-ComplianceRejections"]]
    assert kinds == [("m-bad", "EventRejected"), ("m-list", "EventRejected")]


def test_a_transient_failure_raises_so_the_message_is_retried(queued):
    """[FN-QUEUE] raising leaves the message for another try (and the poison queue after maxDequeueCount)."""
    queued.put_resource(storage(supportsHttpsTrafficOnly=False))
    queued.fail_next(20, status=503, retry_after=0)
    with pytest.raises(Exception):
        queued.deliver(json.dumps(arm_event("q3", SA_ID)).encode())
    assert queued.ingested == []


def test_the_queue_trigger_is_registered_only_with_queue_delivery():
    code = ("import json, function_app; print(json.dumps({f.get_function_name(): [b.get_dict_repr() for b in "
            "f.get_bindings()] for f in function_app.app.get_functions()}, default=str))")
    def indexed(delivery):
        env = {"EVENT_DELIVERY": delivery, "PATH": "/usr/bin:/bin"}
        proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=str(REPO), env=env,
                              timeout=120)
        assert proc.returncode == 0, proc.stderr
        return json.loads(proc.stdout.strip().splitlines()[-1])
    assert "on_resource_change_queued" not in indexed("webhook")
    functions = indexed("queue")
    (binding,) = functions["on_resource_change_queued"]
    assert binding["type"] == "queueTrigger" and binding["queueName"] == "%EVENTS_QUEUE_NAME%"
    assert binding["connection"] == "EVENTS_QUEUE"
    assert "on_resource_change" in functions  # the webhook trigger stays: both paths share one handler

