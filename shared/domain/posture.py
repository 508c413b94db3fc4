"""Posture summaries: counts of the current status of every (resource, control), over time. Pure."""
from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field
from datetime import datetime
from typing import Iterable

from .results import Status
from .drift import ResourceState


@dataclass(frozen=True)
class PostureSummary:
    """One point in time: how many (resource, control) pairs had each status."""

    at: datetime
    counts: dict = field(default_factory=dict)  # status value -> count
    by_severity: dict = field(default_factory=dict)  # severity -> {status value -> count}

    @property
    def decided(self) -> int:
        return sum(v for k, v in self.counts.items() if k in (Status.COMPLIANT.value, Status.NONCOMPLIANT.value,
                                                                Status.EXEMPT.value))

    @property
    def compliance_percent(self) -> float | None:
        """Compliant share of the decided pairs (Exempt counts as not compliant); None when nothing is decided."""
        return 100.0 * self.counts.get(Status.COMPLIANT.value, 0) / self.decided if self.decided else None


def summarize(states: Iterable[ResourceState], at: datetime, severities: dict[str, str]) -> PostureSummary:
    """``severities`` maps control id -> severity (from the catalog)."""
    counts: Counter = Counter()
    by_severity: dict[str, Counter] = {}
    for state in states:
        if state.deleted:
            continue
        for cid, cs in state.controls.items():
            status = cs.status.value if cs.status else Status.NOT_EVALUATED.value
            counts[status] += 1
            severity = severities.get(cid) or (cs.policy.severity if cs.policy else "Unknown")
            by_severity.setdefault(severity, Counter())[status] += 1
    return PostureSummary(at, dict(counts), {k: dict(v) for k, v in by_severity.items()})
