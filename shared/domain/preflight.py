"""What stands in the way of deploying the monitor's system topics, found before the deployment does.

Event Grid allows one system topic per source and topic type ("Only one Azure Event Grid system topic is
allowed per source", https://learn.microsoft.com/azure/event-grid/system-topics), so a subscription where
another tool made a topic of a type the monitor uses fails the topic creation with a conflict, unless the
deployment reuses that topic (main.bicep ``existingArmTopicResourceIds``,
``existingResourceNotificationsTopicResourceIds``, ``existingPolicyStatesTopicResourceIds``).

Pure: it takes the system topics (ARM or Resource Graph objects) and the monitored subscriptions, and says,
per subscription and topic type, what the deployment will do.
"""
from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any, Iterable, Mapping

from .resource_ids import InvalidResourceId, ResourceId, parse_resource_id

ARM_TOPIC_TYPE = "Microsoft.Resources.Subscriptions"
RESOURCE_NOTIFICATIONS_TOPIC_TYPE = "Microsoft.ResourceNotifications.Resources"
POLICY_STATES_TOPIC_TYPE = "Microsoft.PolicyInsights.PolicyStates"
# The topics the templates create (infra/modules/event-topics.bicep), in the events resource group.
OWN_TOPIC_NAMES = {ARM_TOPIC_TYPE: "evgt-compliance-monitor-arm",
                   RESOURCE_NOTIFICATIONS_TOPIC_TYPE: "evgt-compliance-monitor-arn",
                   POLICY_STATES_TOPIC_TYPE: "evgt-compliance-monitor-policy"}
DEFAULT_EVENTS_RESOURCE_GROUP = "rg-compliance-monitor-events"
SYSTEM_TOPIC_TYPE = "Microsoft.EventGrid/systemTopics"

# main.bicep's parameter that reuses a topic of each type, by subscription id.
REUSE_PARAMETERS = {ARM_TOPIC_TYPE: "existingArmTopicResourceIds",
                    RESOURCE_NOTIFICATIONS_TOPIC_TYPE: "existingResourceNotificationsTopicResourceIds",
                    POLICY_STATES_TOPIC_TYPE: "existingPolicyStatesTopicResourceIds"}

# What the deployment does with a subscription's topic of one type.
OURS = "ours"          # the monitor's own topic from an earlier run: updated in place
REUSE = "reuse"        # another tool's topic: reused when named in the type's parameter (REUSE_PARAMETERS)
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
            REUSE: f"{what}: {self.topic_id} exists and is reused ({REUSE_PARAMETERS[self.topic_type]}); it must "
                   "carry the identity events are dead-lettered with (docs/DEPLOY.md)",
            UNUSED: f"{what}: {self.topic_id} exists; reused by {REUSE_PARAMETERS[self.topic_type]} if you turn "
                    "the option on",
            CREATE: f"{what}: none yet, one is created",
        }[self.outcome]


@dataclass(frozen=True)
class Preflight:
    checks: tuple[TopicCheck, ...]
    unreadable: tuple[str, ...] = field(default=())  # topics whose type or source could not be read
    topic_types: tuple[str, ...] = (ARM_TOPIC_TYPE,)  # the types the deployment creates (its options)

    def reused(self, topic_type: str) -> dict[str, str]:
        """The type's reuse parameter (REUSE_PARAMETERS): subscription id -> the topic to reuse."""
        return {c.subscription_id: c.topic_id for c in self.checks if c.outcome == REUSE and c.topic_type == topic_type}

    @property
    def parameters(self) -> dict[str, dict[str, str]]:
        """main.bicep's reuse parameters for the types the deployment creates."""
        return {REUSE_PARAMETERS[t]: self.reused(t) for t in self.topic_types}

    def as_json(self) -> dict[str, Any]:
        return {**self.parameters,
                "checks": [{"subscriptionId": c.subscription_id, "topicType": c.topic_type, "outcome": c.outcome,
                            "topicId": c.topic_id, "message": c.message} for c in self.checks],
                "unreadableTopics": list(self.unreadable)}

    def bicepparam(self) -> str:
        """The parameter assignments for infra/main.bicepparam (Bicep's string literals: single quotes)."""
        out = []
        for name, ids in self.parameters.items():
            if not ids:
                out.append(f"param {name} = {{}}\n")
                continue
            lines = [f"  '{sub}': '{topic}'" for sub, topic in sorted(ids.items())]
            out.append(f"param {name} = {{\n" + "\n".join(lines) + "\n}\n")
        return "".join(out)


def _source_subscription(source: str) -> str | None:
    """The subscription a topic takes events from, when its source is a whole subscription."""
    rid = parse_resource_id(source)
    return rid.subscription_id.lower() if rid.resource_type == "Microsoft.Resources/subscriptions" else None


def check_topics(topics: Iterable[Mapping[str, Any]], subscriptions: Iterable[str], *,
                 resource_notifications: bool = False, policy_states: bool = False,
                 events_resource_group: str = DEFAULT_EVENTS_RESOURCE_GROUP) -> Preflight:
    """Per monitored subscription and topic type the deployment creates (ARM always; Resource Notifications
    and Policy states when their options are on, and reported either way), what it will do."""
    wanted = {ARM_TOPIC_TYPE: True, RESOURCE_NOTIFICATIONS_TOPIC_TYPE: resource_notifications,
              POLICY_STATES_TOPIC_TYPE: policy_states}
    types_by_lower = {t.lower(): t for t in wanted}
    subs = sorted({s.lower() for s in subscriptions})
    found: dict[tuple[str, str], ResourceId] = {}
    unreadable: list[str] = []
    for topic in topics:
        if str(topic.get("type", "")).lower() != SYSTEM_TOPIC_TYPE.lower():
            continue
        props = topic.get("properties") if isinstance(topic.get("properties"), Mapping) else {}
        try:
            if not props.get("topicType") or not props.get("source"):
                raise InvalidResourceId("no topic type or source")
            topic_id = parse_resource_id(topic.get("id"))
            subscription = _source_subscription(props["source"])
        except InvalidResourceId:
            unreadable.append(topic["id"] if isinstance(topic.get("id"), str) and topic["id"]
                              else json.dumps(topic, sort_keys=True, default=str)[:200])
            continue
        topic_type = types_by_lower.get(str(props["topicType"]).lower())
        if topic_type is None or subscription is None or subscription not in subs:
            continue  # another type (storage, ...), another source (a resource group, a resource), or not monitored
        found[(subscription, topic_type)] = topic_id
    checks = []
    for sub in subs:
        for topic_type, enabled in wanted.items():
            topic = found.get((sub, topic_type))
            if topic is None:
                if enabled:
                    checks.append(TopicCheck(sub, topic_type, CREATE))
                continue
            ours = (topic.name.lower() == OWN_TOPIC_NAMES[topic_type]
                    and (topic.resource_group or "").lower() == events_resource_group.lower())
            outcome = OURS if ours else REUSE if enabled else UNUSED
            checks.append(TopicCheck(sub, topic_type, outcome, topic.value))
    return Preflight(tuple(checks), tuple(unreadable), tuple(t for t, enabled in wanted.items() if enabled))
