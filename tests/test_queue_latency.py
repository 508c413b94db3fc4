"""bench/queue_latency.py's polling model is the documented one, checked without a clock: a fake queue, an
injected sleep that only records, no timing assertions.

[FN-QUEUE-POLL] "Azure Queue storage trigger for Azure Functions", "Polling algorithm": 100 ms after a
found message; about 200 ms after an empty poll; the wait keeps growing to maxPollingInterval.
"""
from __future__ import annotations

import json
import random
from pathlib import Path

import pytest

from bench.queue_latency import MARK, PollingDelay, host_queue_settings, poll_queue, polls_per_idle_hour, \
    timespan_seconds

REPO = Path(__file__).resolve().parents[1]
JITTER = {"lowest": lambda low, high: low, "highest": lambda low, high: high, "random": random.Random(7).uniform}


def polled(found: list[int], maximum: float, uniform) -> tuple[list[float], list[str]]:
    """Run the poller over ``found`` (messages each poll finds); the waits it asked for, the messages handed on."""
    script, waits, dispatched = list(found), [], []

    def receive():
        return [f"m{len(dispatched) + i}" for i in range(script.pop(0))]

    polls = poll_queue(receive, dispatched.append, PollingDelay(maximum, uniform), waits.append, lambda: not script)
    assert polls == len(found) == len(waits)
    return waits, dispatched


@pytest.mark.parametrize("jitter", sorted(JITTER))
@pytest.mark.parametrize("maximum", [0.15, 2.0, 60.0])
def test_an_empty_queue_backs_off_up_to_max_polling_interval_and_never_beyond(jitter, maximum):
    waits, dispatched = polled([0] * 40, maximum, JITTER[jitter])
    assert dispatched == []
    assert all(0.1 <= w <= maximum for w in waits)
    assert waits == sorted(waits), "the wait only grows while the queue stays empty"
    assert waits[-1] == maximum and waits[-2] == maximum, "it reaches maxPollingInterval and stays there"


@pytest.mark.parametrize("jitter", sorted(JITTER))
def test_a_found_message_resets_the_back_off(jitter):
    waits, dispatched = polled([0] * 30 + [2] + [0] * 5, 2.0, JITTER[jitter])
    assert waits[29] == 2.0
    assert dispatched == ["m0", "m1"]
    assert waits[30] == pytest.approx(0.1), "100 ms after a poll that found a message"
    assert 0.18 <= waits[31] <= 0.22, "about 200 ms after the first empty poll"
    assert waits[31] < waits[32] < waits[33] < waits[34] <= 2.0, "then growing again"


def test_the_wait_doubles_its_increment_per_empty_poll():
    waits, _ = polled([1] + [0] * 6, 60.0, JITTER["lowest"])
    increments = [round(w - 0.1, 6) for w in waits[1:]]
    assert increments == [round(0.08 * 2 ** n, 6) for n in range(6)]


def test_idle_polls_an_hour_follow_from_the_interval():
    assert 1800 <= polls_per_idle_hour(2.0) <= 1810
    assert 60 <= polls_per_idle_hour(60.0) <= 70
    assert polls_per_idle_hour(2.0, round_trip=0.5) < polls_per_idle_hour(2.0)


def test_max_polling_interval_is_read_from_host_json(tmp_path):
    configured = json.loads((REPO / "host.json").read_text(encoding="utf-8"))["extensions"]["queues"]
    assert host_queue_settings().max_polling == timespan_seconds(configured["maxPollingInterval"])
    assert [timespan_seconds(t) for t in ("00:00:02", "00:01:00", "00:00:00.500", "1.00:00:00")] == [2, 60, 0.5, 86400]
    (tmp_path / "host.json").write_text(json.dumps({"version": "2.0"}), encoding="utf-8")
    assert host_queue_settings(tmp_path / "host.json") == (60.0, 16, 8), "the documented defaults"


def test_scale_md_has_the_queue_latency_section():
    text = (REPO / "docs" / "SCALE.md").read_text(encoding="utf-8")
    start, end = f"<!-- {MARK} -->", f"<!-- /{MARK} -->"
    assert text.count(start) == 1 and text.count(end) == 1
    heading = text.index("## Queue delivery: the added latency")
    assert heading < text.index(start) < text.index(end)
    assert "\n## " not in text[heading + 1:text.index(end)], "the markers sit in that section"
