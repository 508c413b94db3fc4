"""bench/graph_scale.py (make graph-scale) on a tiny estate: the real lister and reconcile over the local
HTTPS Graph with a quota of one request per window list everything, waiting for the window instead of
being refused (the figures themselves are in docs/SCALE.md, never asserted: these machines are noisy)."""
from __future__ import annotations

from bench.graph_scale import estate, run, table


def test_the_benchmark_lists_every_resource_within_the_quota_and_reports_it():
    subscriptions = [f"{s:08x}-0000-4000-8000-00000000b0b0" for s in range(3)]
    rows = estate(3, 4)
    result = run(rows, subscriptions, (1, 0.3))
    assert result["listed"] == 12 and result["throttled"] == 0
    assert result["requests"] >= 2 and result["waits"] == result["requests"] - 1
    listing = run(rows, subscriptions, (1, 0.3), evaluate=False)
    assert listing["listed"] == 12 and listing["throttled"] == 0
    text = table([(4, "1/0.3", "reconcile", result), (4, "1/0.3", "listing only", listing)], 3)
    assert "| 4 | 12 | reconcile | 1/0.3 |" in text and "| 4 | 12 | listing only | 1/0.3 |" in text
