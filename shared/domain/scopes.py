"""Which resources the monitor may evaluate. Pure.

The Function's identity has Reader on the monitored subscriptions (or on the management groups
above them); an event (or a request) naming a resource elsewhere is refused, so the monitor can
never be used to read arbitrary resources. Which subscriptions a management group holds is not
known here: ``shared/service/monitored_scopes.py`` asks ARM.
"""
from __future__ import annotations

import re
from dataclasses import dataclass

from .resource_ids import InvalidResourceId, ResourceId, parse_resource_id


class InvalidScope(ValueError):
    pass


MANAGEMENT_GROUP_PREFIX = "/providers/microsoft.management/managementgroups/"
# "Management group ID": up to 90 letters, digits, hyphens, underscores, periods and parentheses, not
# ending in a period (https://learn.microsoft.com/azure/governance/management-groups/create-management-group-portal)
_GROUP_ID = re.compile(r"[A-Za-z0-9_().-]{0,89}[A-Za-z0-9_()-]")


def management_group_id(entry: str) -> str | None:
    """The group id of ``/providers/Microsoft.Management/managementGroups/<id>`` (lower case), None for
    another kind of scope; a malformed group id raises ``InvalidScope``."""
    if not entry.lower().startswith(MANAGEMENT_GROUP_PREFIX):
        return None
    group = entry[len(MANAGEMENT_GROUP_PREFIX):].rstrip("/")
    if not _GROUP_ID.fullmatch(group):
        raise InvalidScope(f"MONITORED_SCOPES entry {entry!r:.200} does not end in a management group id (up to 90 "
                           "letters, digits, '-', '_', '.', '(' or ')', not ending in '.')")
    return group.lower()


@dataclass(frozen=True)
class Scopes:
    """Subscriptions (``/subscriptions/<id>``), resource groups (``.../resourceGroups/<rg>``) and management
    groups (``/providers/Microsoft.Management/managementGroups/<id>``: every subscription below them).

    No scopes at all means every resource: what tests and offline commands use, and what the Function
    accepts only from an explicit ``MONITORED_SCOPES=*`` (an empty setting is a configuration error).
    """

    prefixes: tuple[str, ...] = ()
    management_groups: tuple[str, ...] = ()  # group ids, lower case

    EVERYTHING = "*"

    @classmethod
    def parse(cls, entries: tuple[str, ...] | list[str]) -> "Scopes":
        """Parse ``MONITORED_SCOPES`` entries; ``["*"]`` alone means every resource, an empty list is refused."""
        if not entries:
            raise InvalidScope("MONITORED_SCOPES is empty: set the subscriptions (/subscriptions/<id>), resource groups "
                               "or management groups (/providers/Microsoft.Management/managementGroups/<id>) to "
                               "monitor, or MONITORED_SCOPES=* to evaluate every resource (development)")
        if cls.EVERYTHING in entries:
            if len(entries) > 1:
                raise InvalidScope("MONITORED_SCOPES=* means every resource and cannot be combined with scopes")
            return cls(())
        prefixes, groups = [], []
        for entry in entries:
            group = management_group_id(entry)
            if group is not None:
                groups.append(group)
                continue
            try:
                rid = parse_resource_id(entry)
            except InvalidResourceId as exc:
                raise InvalidScope(f"MONITORED_SCOPES entry {entry!r} is not a scope: {exc}") from None
            if rid.resource_type not in ("Microsoft.Resources/subscriptions", "Microsoft.Resources/resourceGroups"):
                raise InvalidScope(f"MONITORED_SCOPES entry {entry!r} must be a subscription, a resource group or a "
                                   "management group")
            prefixes.append(rid.key)
        return cls(tuple(prefixes), tuple(dict.fromkeys(groups)))

    @property
    def unrestricted(self) -> bool:
        return not self.prefixes and not self.management_groups

    @property
    def subscriptions(self) -> list[str]:
        """The subscriptions the scopes name (lower case, sorted); none for '*'. Not those below the
        management groups: ``MonitoredScopes`` adds them."""
        return sorted({p.split("/")[2] for p in self.prefixes})

    def allows(self, resource: ResourceId) -> bool:
        """Whether a subscription or resource group scope holds ``resource`` (or there are no scopes)."""
        if self.unrestricted:
            return True
        key = resource.key
        return any(key == p or key.startswith(p + "/") for p in self.prefixes)

    def allows_subscription(self, subscription_id: str) -> bool:
        """Whether the scopes name the subscription or a resource group in it (or there are no scopes)."""
        return self.unrestricted or subscription_id.lower() in self.subscriptions
