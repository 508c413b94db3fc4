"""Events as Event Grid delivers them, for the soak test and the load simulation: a Resource
Notifications ``CreatedOrUpdated`` event carrying a resource's payload (EventGrid schema)."""
from __future__ import annotations

from datetime import datetime
from typing import Any, Mapping


def notification(event_id: str, payload: Mapping[str, Any], at: datetime) -> dict:
    """The event for ``payload`` changed at ``at``; the topic is the payload's subscription."""
    when = at.isoformat().replace("+00:00", "Z")
    subscription = "/".join(str(payload["id"]).split("/")[:3])
    return {"id": event_id, "topic": subscription, "subject": payload["id"],
            "eventType": "Microsoft.ResourceNotifications.Resources.CreatedOrUpdated", "eventTime": when,
            "dataVersion": "1", "data": {"resourceInfo": payload, "apiVersion": "2023-05-01",
                                         "operationalInfo": {"resourceEventTime": when}}}
