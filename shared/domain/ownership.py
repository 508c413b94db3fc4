"""Who owns a resource: owner and team from configurable tag names, falling back to the resource group. Pure."""
from __future__ import annotations

from dataclasses import dataclass
from typing import Mapping


@dataclass(frozen=True)
class OwnershipPolicy:
    owner_tags: tuple[str, ...] = ("owner",)
    team_tags: tuple[str, ...] = ("team",)

    @staticmethod
    def _first(tags: Mapping[str, str] | None, names: tuple[str, ...]) -> str | None:
        if not tags:
            return None
        lowered = {str(k).lower(): v for k, v in tags.items()}
        for name in names:
            value = lowered.get(name.lower())
            if isinstance(value, str) and value.strip():
                return value.strip()
        return None

    def pick(self, tags: Mapping[str, str] | None) -> tuple[str | None, str | None]:
        return self._first(tags, self.owner_tags), self._first(tags, self.team_tags)

    def resolve(self, tags: Mapping[str, str] | None,
                group_tags: Mapping[str, str] | None) -> tuple[str | None, str | None]:
        """The resource's own tags first, then its resource group's, field by field."""
        owner, team = self.pick(tags)
        group_owner, group_team = self.pick(group_tags)
        return owner or group_owner, team or group_team
