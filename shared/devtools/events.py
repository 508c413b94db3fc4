"""Events as Event Grid delivers them (EventGrid schema), for the soak test and the benchmarks: a Resource
Notifications ``CreatedOrUpdated`` event carrying a resource's payload, and an ARM ``ResourceWriteSuccess``
event that names the resource (the handler re-reads it)."""
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


def resource_write(event_id: str, resource_id: str, at: datetime) -> dict:
    """An ARM ``ResourceWriteSuccess`` as the Microsoft.Resources.Subscriptions system topic delivers it: no
    properties, a hint to re-read; the operation is the resource type's write."""
    parts = resource_id.split("/")
    subscription, provider = parts[2], parts[6]
    operation = f"{provider}/{parts[7]}/write"
    return {"id": event_id, "topic": f"/subscriptions/{subscription}", "subject": resource_id,
            "eventType": "Microsoft.Resources.ResourceWriteSuccess", "eventTime": at.isoformat().replace("+00:00", "Z"),
            "dataVersion": "2", "metadataVersion": "1",
            "data": {"authorization": {"scope": resource_id, "action": operation,
                                       "evidence": {"role": "Contributor",
                                                    "principalId": "0c1d2e3f-0000-4000-8000-000000000001"}},
                     "claims": {"appid": "1950a258-227b-4e31-a9cf-717495945fc2"}, "correlationId": f"corr-{event_id}",
                     "resourceProvider": provider, "resourceUri": resource_id, "operationName": operation,
                     "status": "Succeeded", "subscriptionId": subscription,
                     "tenantId": "9a8b7c6d-0000-4000-8000-00000000000a"}}
