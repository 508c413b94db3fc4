"""Which resources the monitor may evaluate. Pure.

The Function's identity has Reader on the monitored subscriptions; an event (or
a request) naming a resource elsewhere is refused, so the monitor can never be
used to read arbitrary resources.
"""
from __future__ import annotations

from dataclasses import dataclass

from .resource_ids import InvalidResourceId, ResourceId, parse_resource_id


class InvalidScope(ValueError):
    pass


@dataclass(frozen=True)
class Scopes:
    """Subscriptions (``/subscriptions/<id>``) and resource groups (``.../resourceGroups/<rg>``).

    No prefixes means every resource: what tests and offline commands use, and what the Function
    accepts only from an explicit ``MONITORED_SCOPES=*`` (an empty setting is a configuration error).
    """

    prefixes: tuple[str, ...] = ()

    EVERYTHING = "*"

    @classmethod
    def parse(cls, entries: tuple[str, ...] | list[str]) -> "Scopes":
        """Parse ``MONITORED_SCOPES`` entries; ``["*"]`` alone means every resource, an empty list is refused."""
        if not entries:
            raise InvalidScope("MONITORED_SCOPES is empty: set the subscriptions (/subscriptions/<id>) or resource "
                               "groups to monitor, or MONITORED_SCOPES=* to evaluate every resource (development)")
        if cls.EVERYTHING in entries:
            if len(entries) > 1:
                raise InvalidScope("MONITORED_SCOPES=* means every resource and cannot be combined with scopes")
            return cls(())
        prefixes = []
        for entry in entries:
            try:
                rid = parse_resource_id(entry)
            except InvalidResourceId as exc:
                raise InvalidScope(f"MONITORED_SCOPES entry {entry!r} is not a scope: {exc}") from None
            if rid.resource_type not in ("Microsoft.Resources/subscriptions", "Microsoft.Resources/resourceGroups"):
                raise InvalidScope(f"MONITORED_SCOPES entry {entry!r} must be a subscription or a resource group")
            prefixes.append(rid.key)
        return cls(tuple(prefixes))

    @property
    def unrestricted(self) -> bool:
        return not self.prefixes

    @property
    def subscriptions(self) -> list[str]:
        """The subscriptions the scopes name (lower case, sorted); none for '*'."""
        return sorted({p.split("/")[2] for p in self.prefixes})

    def allows(self, resource: ResourceId) -> bool:
        if not self.prefixes:
            return True
        key = resource.key
        return any(key == p or key.startswith(p + "/") for p in self.prefixes)
