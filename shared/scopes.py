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

    Empty means every resource (development only; the Function logs a warning).
    """

    prefixes: tuple[str, ...] = ()

    @classmethod
    def parse(cls, entries: tuple[str, ...] | list[str]) -> "Scopes":
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

    def allows(self, resource: ResourceId) -> bool:
        if not self.prefixes:
            return True
        key = resource.key
        return any(key == p or key.startswith(p + "/") for p in self.prefixes)
