"""What stands in the way of deploying the monitor's system topics, found before the deployment does.

Event Grid allows one system topic per source and topic type ("Only one Azure Event Grid system topic is
allowed per source", https://learn.microsoft.com/azure/event-grid/system-topics), so a subscription where
another tool made a ``Microsoft.Resources.Subscriptions`` topic fails the topic creation with a conflict,
unless the deployment reuses that topic (main.bicep ``existingArmTopicResourceIds``). A Resource
Notifications or Policy states topic of someone else's cannot be reused: it conflicts when the option
that creates ours is on.

Pure: it takes the system topics (ARM or Resource Graph objects) and the monitored subscriptions, and says,
per subscription and topic type, what the deployment will do.
"""
from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any, Iterable, Mapping

ARM_TOPIC_TYPE = "Microsoft.Resources.Subscriptions"
RESOURCE_NOTIFICATIONS_TOPIC_TYPE = "Microsoft.ResourceNotifications.Resources"
POLICY_STATES_TOPIC_TYPE = "Microsoft.PolicyInsights.PolicyStates"
# The topics the templates create (infra/modules/event-topics.bicep), in the events resource group.
OWN_TOPIC_NAMES = {ARM_TOPIC_TYPE: "evgt-compliance-monitor-arm",
                   RESOURCE_NOTIFICATIONS_TOPIC_TYPE: "evgt-compliance-monitor-arn",
                   POLICY_STATES_TOPIC_TYPE: "evgt-compliance-monitor-policy"}
DEFAULT_EVENTS_RESOURCE_GROUP = "rg-compliance-monitor-events"
SYSTEM_TOPIC_TYPE = "Microsoft.EventGrid/systemTopics"

# What the deployment does with a subscription's topic of one type.
OURS = "ours"          # the monitor's own topic from an earlier run: updated in place
REUSE = "reuse"        # another tool's ARM topic: reused when named in existingArmTopicResourceIds
CONFLICT = "conflict"  # another tool's topic the deployment would try to create beside: it fails
UNUSED = "unused"      # another tool's topic of a type whose option is off: nothing is created beside it
CREATE = "create"      # no topic yet: one is created


@dataclass(frozen=True)
class TopicCheck:
    subscription_id: str
    topic_type: str
    outcome: str
    topic_id: str = ""  # the topic found, if any

    @property
    def message(self) -> str:
        what = {ARM_TOPIC_TYPE: "ARM events", RESOURCE_NOTIFICATIONS_TOPIC_TYPE: "Resource Notifications",
                POLICY_STATES_TOPIC_TYPE: "Policy states"}[self.topic_type]
        return {
            OURS: f"{what}: the monitor's own topic, updated in place",
            REUSE: f"{what}: {self.topic_id} exists and is reused (existingArmTopicResourceIds); it must carry the "
                   "identity events are dead-lettered with (docs/DEPLOY.md)",
            CONFLICT: f"{what}: {self.topic_id} exists and cannot be reused; the deployment would fail on this "
                      "subscription: delete that topic or leave the option off",
            UNUSED: f"{what}: {self.topic_id} exists; fine while the option stays off",
            CREATE: f"{what}: none yet, one is created",
        }[self.outcome]


@dataclass(frozen=True)
class Preflight:
    checks: tuple[TopicCheck, ...]
    unreadable: tuple[str, ...] = field(default=())  # topics whose type or source could not be read

    @property
    def existing_arm_topic_resource_ids(self) -> dict[str, str]:
        """main.bicep's ``existingArmTopicResourceIds``: subscription id -> the topic to reuse."""
        return {c.subscription_id: c.topic_id for c in self.checks if c.outcome == REUSE}

    @property
    def conflicts(self) -> list[TopicCheck]:
        return [c for c in self.checks if c.outcome == CONFLICT]

    def as_json(self) -> dict[str, Any]:
        return {"existingArmTopicResourceIds": self.existing_arm_topic_resource_ids,
                "checks": [{"subscriptionId": c.subscription_id, "topicType": c.topic_type, "outcome": c.outcome,
                            "topicId": c.topic_id, "message": c.message} for c in self.checks],
                "conflicts": len(self.conflicts), "unreadableTopics": list(self.unreadable)}

    def bicepparam(self) -> str:
        """The parameter assignment for infra/main.bicepparam (Bicep's string literals: single quotes)."""
        ids = self.existing_arm_topic_resource_ids
        if not ids:
            return "param existingArmTopicResourceIds = {}\n"
        lines = [f"  '{sub}': '{topic}'" for sub, topic in sorted(ids.items())]
        return "param existingArmTopicResourceIds = {\n" + "\n".join(lines) + "\n}\n"


def _source_subscription(topic: Mapping[str, Any]) -> str | None:
    """The subscription a topic takes events from, when its source is a whole subscription."""
    source = (topic.get("properties") or {}).get("source") if isinstance(topic.get("properties"), Mapping) else None
    if not isinstance(source, str):
        return None
    parts = source.strip("/").split("/")
    return parts[1].lower() if len(parts) == 2 and parts[0].lower() == "subscriptions" and parts[1] else None


def _resource_group(resource_id: str) -> str:
    parts = resource_id.split("/")
    return parts[4].lower() if len(parts) > 4 and parts[3].lower() == "resourcegroups" else ""


def check_topics(topics: Iterable[Mapping[str, Any]], subscriptions: Iterable[str], *,
                 resource_notifications: bool = False, policy_states: bool = False,
                 events_resource_group: str = DEFAULT_EVENTS_RESOURCE_GROUP) -> Preflight:
    """Per monitored subscription and topic type the deployment creates (ARM always; Resource Notifications
    and Policy states when their options are on, and reported either way), what it will do."""
    wanted = {ARM_TOPIC_TYPE: True, RESOURCE_NOTIFICATIONS_TOPIC_TYPE: resource_notifications,
              POLICY_STATES_TOPIC_TYPE: policy_states}
    types_by_lower = {t.lower(): t for t in wanted}
    subs = sorted({s.lower() for s in subscriptions})
    found: dict[tuple[str, str], str] = {}
    unreadable: list[str] = []
    for topic in topics:
        topic_id = topic.get("id") if isinstance(topic.get("id"), str) else ""
        if str(topic.get("type", "")).lower() != SYSTEM_TOPIC_TYPE.lower():
            continue
        props = topic.get("properties") if isinstance(topic.get("properties"), Mapping) else {}
        topic_type = types_by_lower.get(str(props.get("topicType", "")).lower())
        subscription = _source_subscription(topic)
        if not topic_id or not props.get("topicType") or not props.get("source"):
            unreadable.append(topic_id or json.dumps(topic, sort_keys=True, default=str)[:200])
            continue
        if topic_type is None or subscription is None or subscription not in subs:
            continue  # another type (storage, ...), another source (a resource group, a resource), or not monitored
        found[(subscription, topic_type)] = topic_id
    checks = []
    for sub in subs:
        for topic_type, enabled in wanted.items():
            topic_id = found.get((sub, topic_type), "")
            if not topic_id:
                if enabled:
                    checks.append(TopicCheck(sub, topic_type, CREATE))
                continue
            name = topic_id.rstrip("/").split("/")[-1].lower()
            ours = name == OWN_TOPIC_NAMES[topic_type] and _resource_group(topic_id) == events_resource_group.lower()
            if ours:
                outcome = OURS
            elif topic_type == ARM_TOPIC_TYPE:
                outcome = REUSE
            else:
                outcome = CONFLICT if enabled else UNUSED
            checks.append(TopicCheck(sub, topic_type, outcome, topic_id))
    return Preflight(tuple(checks), tuple(unreadable))
