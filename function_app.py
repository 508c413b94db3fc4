"""Azure Functions entry point (Python v2 programming model).

Only builds the app and registers one blueprint per handler module; heavy SDK
imports happen lazily on the first event (see ``shared/bootstrap.py``).
"""
import os

import azure.functions as func

from handlers.assignments import bp as assignments
from handlers.http_api import bp as http_api
from handlers.outbox import bp as outbox
from handlers.parity import bp as parity
from handlers.queue_events import bp as queue_events
from handlers.reconciliation import bp as reconciliation
from handlers.resource_events import bp as resource_events

app = func.FunctionApp()
app.register_functions(resource_events)
app.register_functions(outbox)
app.register_functions(http_api)
app.register_functions(reconciliation)
app.register_functions(assignments)
app.register_functions(parity)
# EVENT_DELIVERY=queue: Event Grid delivers to a Storage Queue, read by this trigger (docs/DEPLOY.md).
if os.environ.get("EVENT_DELIVERY", "webhook").strip().lower() == "queue":
    app.register_functions(queue_events)
