"""Exemptions: accepted risks, scoped to a subscription, a resource group or a resource, optionally to
one control, with a justification, a requester and an expiry. Pure.

An exempted non-compliant result is recorded as ``Exempt`` (visible, never
hidden); when the exemption expires or is removed, the next evaluation re-opens
the finding.
"""
from __future__ import annotations

import uuid
from dataclasses import dataclass, replace
from datetime import datetime, timedelta, timezone
from typing import Iterable

from .results import ControlResult, Status
from .resource_ids import InvalidResourceId, ResourceId, parse_resource_id

MAX_DURATION = timedelta(days=366)


class InvalidExemption(ValueError):
    """An exemption that cannot be recorded; the message names the field."""


@dataclass(frozen=True)
class Exemption:
    id: str
    scope: str  # normalised id of a subscription, resource group or resource
    control_id: str | None  # None: every control
    justification: str
    requester: str
    expires: datetime
    created: datetime

    @property
    def subscription_id(self) -> str:
        return parse_resource_id(self.scope).subscription_id

    def active(self, now: datetime) -> bool:
        return now < self.expires

    def covers(self, resource: ResourceId, control_id: str, now: datetime) -> bool:
        scope = self.scope.lower()
        key = resource.key
        in_scope = key == scope or key.startswith(scope + "/")
        return in_scope and self.active(now) and (self.control_id is None or self.control_id == control_id)


def new_exemption(scope: str, justification: str, requester: str, expires: datetime, now: datetime,
                  control_id: str | None = None, known_controls: Iterable[str] | None = None) -> Exemption:
    """Validate and build an exemption (each error names the field)."""
    try:
        rid = parse_resource_id(scope)
    except InvalidResourceId as exc:
        raise InvalidExemption(f"scope: {exc}") from None
    if not justification or not justification.strip():
        raise InvalidExemption("justification: say why the risk is accepted")
    if not requester or not requester.strip():
        raise InvalidExemption("requester: say who asked for the exemption")
    if expires.tzinfo is None:
        expires = expires.replace(tzinfo=timezone.utc)
    if expires <= now:
        raise InvalidExemption(f"expires: {expires.isoformat()} is not in the future")
    if expires - now > MAX_DURATION:
        raise InvalidExemption(f"expires: at most {MAX_DURATION.days} days ahead; review the risk again then")
    if control_id is not None and known_controls is not None and control_id not in set(known_controls):
        raise InvalidExemption(f"control: unknown control id {control_id!r}")
    return Exemption(uuid.uuid4().hex, rid.value, control_id, justification.strip(), requester.strip(), expires, now)


def apply_exemptions(resource: ResourceId, results: Iterable[ControlResult], exemptions: Iterable[Exemption],
                     now: datetime) -> tuple[ControlResult, ...]:
    """Non-compliant results that an active exemption covers become Exempt, saying which and why."""
    exemptions = list(exemptions)
    out = []
    for result in results:
        if result.status == Status.NONCOMPLIANT:
            match = next((e for e in exemptions if e.covers(resource, result.control_id, now)), None)
            if match is not None:
                result = replace(result, status=Status.EXEMPT, reason=(
                    f"exempted by {match.id} until {match.expires.isoformat()} ({match.requester}): "
                    f"{match.justification}"), evidence=[*result.evidence, {
                        "exemption": match.id, "scope": match.scope, "requester": match.requester,
                        "justification": match.justification, "expires": match.expires.isoformat()}])
        out.append(result)
    return tuple(out)
