"""docs/SCALE.md's scale plan is bench/scale_plan.py's output, and its inputs are the measured costs.

The plan is arithmetic: two inputs a tenant measures (resources and events per subscription) times the
costs per event this repository measures (tests/test_call_counts.py) and documented limits. The doc must
hold exactly what the script prints for its defaults, so the figures never drift from the script."""
from __future__ import annotations

from pathlib import Path

from bench import scale_plan
from bench.sections import section as generated

DOC = Path(__file__).resolve().parents[1] / "docs" / "SCALE.md"


def section(mark: str) -> str:
    return generated(DOC, mark)


def test_the_document_holds_the_scripts_output_for_its_defaults():
    assert section("scale-plan") == scale_plan.table(1000, 1000)
    assert section("scale-meters") == scale_plan.meters(1000, 1000)


def test_the_plan_scales_linearly_with_events_and_follows_the_documented_limits():
    small, large = scale_plan.plan(10, 1000, 1000), scale_plan.plan(10_000, 1000, 1000)
    assert large["events"] == 1000 * small["events"] and large["table"] == (20_000_000, 30_000_000)
    # 10,000 subscriptions: ten requests of 1,000 subscriptions, each with one resource-group listing.
    assert large["graph_requests"] == 10_000 + 10
    assert round(large["graph_minutes"]) == 56  # 10,010 requests at 15 per 5 s
    assert scale_plan.plan(10_000, 1000, 2000)["events"] == 2 * large["events"]
    assert large["table_share"] < 0.02
