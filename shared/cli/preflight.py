"""``python -m shared preflight``: before deploying, find the system topics that are in the way.

It lists the Event Grid system topics of the monitored subscriptions (named with ``--scope`` as
``MONITORED_SCOPES`` names them, management groups listed from ARM; default: ``MONITORED_SCOPES``) from
Resource Graph, says per subscription what the deployment will do with each topic type
(``shared.domain.preflight``), and prints the parameters that reuse the topics other tools made
(``existingArmTopicResourceIds``, and with their options ``existingResourceNotificationsTopicResourceIds``,
``existingPolicyStatesTopicResourceIds``). Reader on the subscriptions (or the groups) covers it; it
changes nothing.

Exit 0 when the listing worked (the deployment can go ahead with the printed parameters), 2 on unusable
input or when Azure cannot be read.
"""
from __future__ import annotations

import argparse
import dataclasses
import json
import sys

from ..config import Settings
from ..domain.preflight import DEFAULT_EVENTS_RESOURCE_GROUP, REUSE, SYSTEM_TOPIC_TYPE, check_topics
from .inputs import EXIT_OK, InputError

HELP = "before deploying: find the system topics in the way, print the parameters that reuse them"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--scope", action="append", metavar="SCOPE",
                        help="a monitored subscription (/subscriptions/<id>) or management group "
                             "(/providers/Microsoft.Management/managementGroups/<id>), repeatable; "
                             "default: MONITORED_SCOPES")
    parser.add_argument("--resource-notifications", action="store_true",
                        help="the deployment sets enableResourceNotifications")
    parser.add_argument("--policy-states", action="store_true", help="the deployment sets enablePolicyStateEvents")
    parser.add_argument("--events-resource-group", default=DEFAULT_EVENTS_RESOURCE_GROUP,
                        help=f"eventResourceGroupName of the deployment (default {DEFAULT_EVENTS_RESOURCE_GROUP})")
    parser.add_argument("--format", choices=("text", "json", "bicepparam"), default="text",
                        help="bicepparam: only the parameter assignment, for infra/main.bicepparam")


def run(args: argparse.Namespace, settings: Settings) -> int:
    from .. import bootstrap

    scopes = tuple(args.scope or settings.monitored_scopes)
    if not scopes:
        raise InputError("name the monitored subscriptions or management groups with --scope (or set MONITORED_SCOPES)")
    if "*" in scopes:
        raise InputError("--scope * names no subscription: name the subscriptions or management groups to deploy to")
    from ..service.ports import ResourceAccessDenied, ResourceUnreadable

    monitored = bootstrap.monitored_scopes(dataclasses.replace(settings, monitored_scopes=scopes))
    try:
        subscriptions = monitored.subscriptions
        if not subscriptions:
            raise InputError(f"no subscription in or below {', '.join(scopes)}")
        topics = [row for page in bootstrap.graph_lister(settings).pages(subscriptions, [SYSTEM_TOPIC_TYPE])
                  for row in page.resources]
    except (ResourceAccessDenied, ResourceUnreadable) as exc:
        raise InputError(f"{exc} (preflight needs Reader on the subscriptions or management groups)") from None
    result = check_topics(topics, subscriptions, resource_notifications=args.resource_notifications,
                          policy_states=args.policy_states, events_resource_group=args.events_resource_group)
    if args.format == "json":
        print(json.dumps(result.as_json(), indent=2))
    elif args.format == "bicepparam":
        print(result.bicepparam(), end="")
    else:
        for check in result.checks:
            print(f"{check.subscription_id}  {check.message}")
        for topic in result.unreadable:
            print(f"warning: system topic {topic} has no readable topic type or source; check it by hand",
                  file=sys.stderr)
        reused = sum(1 for c in result.checks if c.outcome == REUSE)
        print(f"\n{len(subscriptions)} subscriptions, {len(topics)} system topics: {reused} reused")
        print("\nFor infra/main.bicepparam:\n" + result.bicepparam(), end="")
    return EXIT_OK
