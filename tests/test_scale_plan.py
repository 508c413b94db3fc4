"""docs/SCALE.md's scale plan is bench/scale_plan.py's output, and its inputs are the measured costs.

The plan is arithmetic: two inputs a tenant measures (resources and events per subscription) times the
costs per event this repository measures (tests/test_call_counts.py) and documented limits. The doc must
hold exactly what the script prints for its defaults, so the figures never drift from the script."""
from __future__ import annotations

import json
from pathlib import Path

import pytest

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


def test_prices_from_a_file_give_the_monthly_cost_low_to_high(tmp_path):
    """The arithmetic, with round unit prices (1 per unit): every meter's quantity times its price, less its
    free grant; the low end with no changed verdict and the measured time, the high end with the billing
    minimum and every event changing one."""
    prices = dict.fromkeys(scale_plan.PRICE_KEYS, 1.0)
    prices.update(functions_free_executions=0, functions_free_gb_seconds=0, event_grid_free_operations=0)
    cost = scale_plan.monthly_cost(10, 1000, 1000, prices, queue_delivery=True)
    events = 10 * 1000 * 30
    assert cost["functions executions"] == (events / 1e6,) * 2
    assert cost["functions execution time"] == pytest.approx((events * 0.022 * 2, events * 1.0 * 2))
    assert cost["table transactions"] == pytest.approx((events * 2 / 1e4, events * 3 / 1e4))
    assert cost["logs ingestion"] == pytest.approx((0.0, events * 1300 / 1e9))
    assert cost["event grid"] == pytest.approx((events / 1e6,) * 2)
    assert cost["queue transactions"] == pytest.approx((events * 3 / 1e4,) * 2)
    prices["event_grid_free_operations"] = 10 * events
    assert scale_plan.monthly_cost(10, 1000, 1000, prices)["event grid"] == (0.0, 0.0), "a grant never goes below 0"


def test_a_prices_file_that_is_not_filled_in_is_refused_naming_the_keys(tmp_path):
    template = Path(scale_plan.__file__).with_name("prices.template.json")
    assert set(json.loads(template.read_text())) == set(scale_plan.PRICE_KEYS)
    with pytest.raises(scale_plan.PriceError, match="must be non-negative numbers"):
        scale_plan.read_prices(template)
    wrong = tmp_path / "prices.json"
    wrong.write_text(json.dumps({"logs_per_gb": 2, "vm_per_hour": 1}))
    with pytest.raises(scale_plan.PriceError, match="unknown keys vm_per_hour"):
        scale_plan.read_prices(wrong)
    wrong.write_text(json.dumps({"logs_per_gb": 2}))
    with pytest.raises(scale_plan.PriceError, match="missing unit prices for event_grid_per_million_operations"):
        scale_plan.read_prices(wrong)
    assert scale_plan.main(["--prices", str(wrong)]) == 2
