"""``make queue-latency``: what the queue delivery option adds to an event's latency, against Azurite.

No Functions host runs on this machine, so the queue trigger's own poller cannot run. What is measured,
with the real queue trigger (``handlers.queue_events.on_resource_change_queued``) and the real Event
Grid trigger on the same process, state in Azurite's Table service, messages in Azurite's Queue service:

1. the floor: an event put on the queue, got at once (a poller that polls the moment it lands), run
   through the queue trigger, then deleted; beside it, interleaved in the same run, the same kind of
   event handed straight to the Event Grid trigger (the webhook path). The difference is the pure cost
   of the hop: the put, get and delete round trips.
2. the polling model: the queue trigger's polling algorithm as Microsoft documents it, simulated against
   Azurite, not the Functions host: events arrive at random (Poisson) at a few rates, a poller per queue
   follows the algorithm with ``maxPollingInterval`` from host.json, and each event's latency is taken
   from the moment it is put on the queue until the trigger has handled it.

[FN-QUEUE-POLL] "Azure Queue storage trigger for Azure Functions", section "Polling algorithm",
    https://learn.microsoft.com/en-us/azure/azure-functions/functions-bindings-storage-queue-trigger#polling-algorithm
    "random exponential back-off": when a message is found the runtime waits 100 ms and checks for another;
    when none is found it waits about 200 ms; after further failed attempts the wait keeps increasing until
    it reaches the maximum wait time (``maxPollingInterval``, default one minute).
[FN-QUEUE-CONC] the same page, section "Concurrency": messages are got in batches (``batchSize``, 16) and
    run concurrently; another batch is got when the number in flight is down to ``newBatchThreshold``
    (half the batch size by default).
[EXT-BACKOFF] the page does not say by how much the wait grows or how random it is; the storage
    extension's public source does: after a found message, wait = 100 ms + U(0.8, 1.2) x 2^(n-1) x 100 ms
    after the n-th empty poll in a row, capped at the maximum (``RandomizedExponentialBackoffStrategy``,
    ``QueuePollingIntervals``),
    https://github.com/Azure/azure-sdk-for-net/blob/main/sdk/storage/Microsoft.Azure.WebJobs.Extensions.Storage.Common/src/Shared/Timers/RandomizedExponentialBackoffStrategy.cs
    ``PollingDelay`` follows both. (The extension's listener also polls again straight away after a batch
    that found messages, before the same 100 ms, about 200 ms, ... waits: it may pick a message up to 100 ms
    sooner, for one more GET per batch. The documented schedule is the one modelled here.)

The queue client is azure-storage-queue's ``QueueClient`` (a development dependency: the app's queue
trigger is the Functions extension's). The ARM read an ARM write event causes is answered in memory
(``StaticResourceReader``), the same on both paths; findings go to a local JSON-lines sink, as in
bench/load_sim.py. Not in the figures: Event Grid's own delivery time (to the webhook or to the queue),
a scale-from-zero start, Azure Storage's network round trips (Azurite is on localhost).

    .venv/bin/python bench/queue_latency.py [--scale 1.0] [--seed 1] [--write docs/SCALE.md]

Not a test: figures depend on the machine (this one has 2 cores); the default run takes under 2 minutes.
"""
from __future__ import annotations

import argparse
import base64
import dataclasses
import json
import math
import os
import random
import re
import sys
import tempfile
import textwrap
import threading
import time
import uuid
from concurrent.futures import ThreadPoolExecutor
from datetime import datetime, timezone
from pathlib import Path
from typing import Callable, NamedTuple, Sequence

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from bench.load_sim import SUB, account  # noqa: E402  (the load simulation's storage accounts)
from bench.sections import replace_section  # noqa: E402
from shared.devtools.events import resource_write  # noqa: E402
from shared.devtools.azurite import (  # noqa: E402
    ACCOUNT, ACCOUNT_KEY, AzuriteProcess, azurite)

MARK = "queue-latency"  # docs/SCALE.md: <!-- queue-latency --> ... <!-- /queue-latency -->
MINIMUM_INTERVAL = 0.1  # [FN-QUEUE-POLL] the wait after a message is found; QueuePollingIntervals.Minimum
RANDOMIZATION = 0.2  # [EXT-BACKOFF] RandomizationFactor
DEFAULT_MAX_POLLING = 60.0  # [FN-QUEUE-POLL] maxPollingInterval when host.json sets none
RECEIVE_VISIBILITY = 600  # s: a message got once is never seen again within a run


# --- the documented polling algorithm (pure) ---------------------------------------------------------

class QueueSettings(NamedTuple):
    max_polling: float  # seconds
    batch_size: int
    new_batch_threshold: int


def timespan_seconds(text: str) -> float:
    """A host.json TimeSpan ("00:00:02", "1.00:00:00", "00:00:00.500") in seconds."""
    days, _, clock = text.partition(".") if "." in text.split(":")[0] else ("", "", text)
    hours, minutes, seconds = clock.split(":")
    return int(days or 0) * 86400 + int(hours) * 3600 + int(minutes) * 60 + float(seconds)


def host_queue_settings(path: Path = REPO / "host.json") -> QueueSettings:
    queues = json.loads(path.read_text(encoding="utf-8")).get("extensions", {}).get("queues", {})
    maximum = queues.get("maxPollingInterval")
    # host.json v2 takes a TimeSpan string; a bare number is milliseconds
    seconds = DEFAULT_MAX_POLLING if maximum is None else (
        maximum / 1000 if isinstance(maximum, (int, float)) else timespan_seconds(maximum))
    batch = int(queues.get("batchSize", 16))
    return QueueSettings(seconds, batch, int(queues.get("newBatchThreshold", batch // 2)))


class PollingDelay:
    """The wait before the next poll [FN-QUEUE-POLL], [EXT-BACKOFF]: 100 ms after a poll that found a
    message; after the n-th empty poll in a row 100 ms + U(0.8, 1.2) x 2^(n-1) x 100 ms (about 200 ms,
    then about 300, 500, 900 ms, ...), until that reaches ``maximum``, which it then stays at."""

    def __init__(self, maximum: float, uniform: Callable[[float, float], float] = random.uniform,
                 minimum: float = MINIMUM_INTERVAL) -> None:
        if not 0 <= minimum <= maximum:
            raise ValueError(f"need 0 <= minimum ({minimum}) <= maximum ({maximum})")
        self.minimum, self.maximum, self.uniform = minimum, maximum, uniform
        self.current, self.exponent = 0.0, 0

    def after(self, found: bool) -> float:
        if found:
            self.current, self.exponent = self.minimum, 1
        elif self.current != self.maximum:
            wait = self.minimum
            if self.exponent > 0:
                wait += self.uniform(1 - RANDOMIZATION, 1 + RANDOMIZATION) * 2 ** (self.exponent - 1) * self.minimum
            if wait < self.maximum:
                self.current, self.exponent = wait, self.exponent + 1
            else:
                self.current = self.maximum
        return self.current


def poll_queue(receive: Callable[[], Sequence], dispatch: Callable[[object], None], delay: PollingDelay,
               sleep: Callable[[float], None], stop: Callable[[], bool]) -> int:
    """The poller: get a batch, hand each message to ``dispatch`` (which runs it, concurrently or not),
    wait as ``delay`` says, until ``stop()``. Returns the number of GETs sent."""
    polls = 0
    while not stop():
        messages = receive()
        polls += 1
        for message in messages:
            dispatch(message)
        sleep(delay.after(bool(messages)))
    return polls


def polls_per_idle_hour(maximum: float, seed: int = 0, round_trip: float = 0.0) -> int:
    """GETs one poller sends in an hour of an empty queue, the hour starting at the last message."""
    delay, clock, polls = PollingDelay(maximum, random.Random(seed).uniform), 0.0, 0
    clock += delay.after(True)
    while clock < 3600:
        polls += 1
        clock += round_trip + delay.after(False)
    return polls


def ramp_seconds(maximum: float) -> float:
    """How long an empty queue takes to back the poller off to ``maximum`` (nominal waits)."""
    delay, total = PollingDelay(maximum, lambda low, high: (low + high) / 2), 0.0
    while (wait := delay.after(False)) < maximum:
        total += wait
    return total + maximum


# --- Azurite's Queue service and a small REST client -------------------------------------------------

class Message(NamedTuple):
    id: str
    pop_receipt: str
    text: str


class StorageQueue:
    """Put Message, Get Messages (one request) and Delete Message on one queue with azure-storage-queue."""

    def __init__(self, endpoint: str, name: str) -> None:
        from azure.storage.queue import QueueClient

        connection = (f"DefaultEndpointsProtocol=http;AccountName={ACCOUNT};AccountKey={ACCOUNT_KEY};"
                      f"QueueEndpoint={endpoint};")
        self.client = QueueClient.from_connection_string(connection, name)
        self.gets = 0

    def create(self) -> None:
        self.client.create_queue()

    def put(self, text: str) -> None:
        self.client.send_message(text)

    def receive(self, count: int) -> list[Message]:
        self.gets += 1
        page = next(self.client.receive_messages(messages_per_page=count, max_messages=count,
                                                 visibility_timeout=RECEIVE_VISIBILITY).by_page(), [])
        return [Message(m.id, m.pop_receipt, m.content) for m in page]

    def delete(self, message: Message) -> None:
        self.client.delete_message(message.id, message.pop_receipt)


# --- the real handler, events, an estate of storage accounts -----------------------------------------

class Estate:
    """Storage accounts, a ring of ``ring`` per lane; each event flips one between secure and not first
    (in the reader the ARM read is answered from), so every event changes verdicts: a real write."""

    def __init__(self, reader, ring: int = 20) -> None:
        self.reader, self.ring, self.secure, self.sent = reader, ring, {}, {}
        self.lock = threading.Lock()

    def next_event(self, lane: int) -> dict:
        with self.lock:
            seq = self.sent[lane] = self.sent.get(lane, -1) + 1
            index = lane * self.ring + seq % self.ring
            self.secure[index] = not self.secure.get(index, True)
            payload = account(index, self.secure[index])
            self.reader.put(payload)
        return resource_write(f"q{lane:03d}-{seq:05d}", payload["id"], datetime.now(timezone.utc))


class Handler(NamedTuple):
    webhook: Callable[[dict], None]  # the Event Grid trigger, as the worker calls it
    queued: Callable[[str, bytes], None]  # the queue trigger, with the body the host has decoded
    estate: Estate


def wire_handler(conn: str, out: Path) -> Handler:
    """Both triggers on one set of dependencies built by ``bootstrap`` from settings (Azurite tables, a
    JSON-lines sink, the built-in catalog), with the ARM reads answered in memory."""
    import azure.functions as func
    from azure.functions.eventgrid import EventGridEventInConverter
    from azure.functions.meta import Datum

    from handlers.queue_events import on_resource_change_queued
    from handlers.resource_events import on_resource_change
    from shared import bootstrap
    from shared.adapters.memory import StaticResourceReader
    from shared.config import Settings

    token = uuid.uuid4().hex[:10]
    settings = Settings(state_table_name=f"qlstate{token}", exemptions_table_name=f"qlexempt{token}",
                        state_connection_string=conn, findings_sink="jsonl", findings_path=str(out / "findings.jsonl"),
                        monitored_scopes=(f"/subscriptions/{SUB}",), control_sources=("builtin",))
    reader = StaticResourceReader()
    bootstrap.override(dataclasses.replace(bootstrap.build(settings), reader=reader, group_tags=None))
    webhook = on_resource_change.build().get_user_function()
    queued = on_resource_change_queued.build().get_user_function()
    return Handler(
        lambda event: webhook(EventGridEventInConverter.decode(Datum(json.dumps(event), "json"), trigger_metadata={})),
        lambda message_id, body: queued(func.QueueMessage(id=message_id, body=body)),
        Estate(reader))


def encoded(event: dict) -> str:
    return base64.b64encode(json.dumps(event).encode()).decode()  # the host base64-decodes queue messages


# --- the measurements ---------------------------------------------------------------------------------

class Sample(NamedTuple):
    handled_ms: float  # from the put (or the call, for the webhook) until the trigger returned
    handler_ms: float  # the trigger's own time
    deleted_ms: float | None  # until the message was deleted


def run_floor(handler: Handler, queue: StorageQueue, events: int, batch: int) -> tuple[list, list]:
    """Interleaved: one event straight to the webhook trigger, one through put, get at once, trigger, delete."""
    direct, queued = [], []
    for n in range(events + 5):
        event = handler.estate.next_event(0)
        started = time.perf_counter()
        handler.webhook(event)
        handled = time.perf_counter()
        event = handler.estate.next_event(1)
        put = time.perf_counter()
        queue.put(encoded(event))
        (message,) = queue.receive(batch)
        called = time.perf_counter()
        handler.queued(message.id, base64.b64decode(message.text))
        done = time.perf_counter()
        queue.delete(message)
        deleted = time.perf_counter()
        if n >= 5:  # the first few warm the clients and caches
            direct.append(Sample((handled - started) * 1000, (handled - started) * 1000, None))
            queued.append(Sample((done - put) * 1000, (done - called) * 1000, (deleted - put) * 1000))
        if n % 50 == 0:
            print(f"  floor: {n}/{events + 5} pairs", file=sys.stderr, flush=True)
    return direct, queued


class Case(NamedTuple):
    key: str
    label: str
    rate: float  # events per second per queue (Poisson)
    seconds: float
    lanes: int  # independent queue + poller pairs side by side (more samples in the time)


CASES = (
    Case("idle", "polling model, idle: 1 event per 10 s", 0.1, 40, 14),
    Case("steady", "polling model, 1 event/s", 1.0, 12, 4),
    Case("busy", "polling model, busy: 10 events/s", 10.0, 10, 1),
)


def run_case(handler: Handler, endpoint: str, case: Case, settings: QueueSettings, seed: int,
             lane_base: int) -> tuple[list, int, int]:
    """Poisson arrivals on ``case.lanes`` queues, each polled by ``poll_queue`` with the documented delay.
    Events put in the first ``ramp_seconds`` are handled, not counted: the pollers' state is then the one
    the arrivals themselves leave, not the empty queue they started on. Returns the counted samples, the
    GETs sent and the events handled in all."""
    warmup = ramp_seconds(settings.max_polling)
    started = time.perf_counter()
    counted_from, stop_at = started + warmup, started + warmup + case.seconds
    lock, samples, errors = threading.Lock(), [], []
    enqueued: dict[str, float] = {}
    pending, handled = [0], [0]
    producing = [case.lanes]
    queues = [StorageQueue(endpoint, f"ql-{case.key}-{lane}-{uuid.uuid4().hex[:8]}") for lane in range(case.lanes)]
    for queue in queues:
        queue.create()

    def lane_poller(lane: int, queue: StorageQueue) -> None:
        in_flight = threading.Condition()
        running = [0]
        pool = ThreadPoolExecutor(max_workers=settings.batch_size, thread_name_prefix=f"{case.key}{lane}")

        def run(message: Message) -> None:
            body = base64.b64decode(message.text)
            try:
                called = time.perf_counter()
                handler.queued(message.id, body)
                done = time.perf_counter()
                queue.delete(message)
                deleted = time.perf_counter()
                put = enqueued[json.loads(body)["id"]]
                with lock:
                    handled[0] += 1
                    if put >= counted_from:
                        samples.append(Sample((done - put) * 1000, (done - called) * 1000, (deleted - put) * 1000))
            except Exception as exc:  # counted and reported; the run then exits non-zero
                with lock:
                    errors.append(f"{message.id}: {type(exc).__name__}: {exc}")
            finally:
                with lock:
                    pending[0] -= 1
                with in_flight:
                    running[0] -= 1
                    in_flight.notify_all()

        def receive() -> list[Message]:
            with in_flight:  # [FN-QUEUE-CONC] another batch only when in flight is down to the threshold
                in_flight.wait_for(lambda: running[0] <= settings.new_batch_threshold)
            return queue.receive(settings.batch_size)

        def dispatch(message: Message) -> None:
            with in_flight:
                running[0] += 1
            pool.submit(run, message)

        def stop() -> bool:
            with lock:
                return bool(errors) or (producing[0] == 0 and pending[0] == 0)

        delay = PollingDelay(settings.max_polling, random.Random(seed * 1000 + lane).uniform)
        try:
            poll_queue(receive, dispatch, delay, time.sleep, stop)
        except Exception as exc:  # a failed GET ends the case (every poller and producer stops)
            with lock:
                errors.append(f"poller {lane}: {type(exc).__name__}: {exc}")
        pool.shutdown(wait=True)

    def producer(lane: int, queue: StorageQueue) -> None:
        arrivals = random.Random(seed * 7919 + lane)
        at = started
        try:
            while (at := at + arrivals.expovariate(case.rate)) < stop_at and not errors:
                time.sleep(max(0.0, at - time.perf_counter()))
                event = handler.estate.next_event(lane_base + lane)
                with lock:
                    pending[0] += 1
                    enqueued[event["id"]] = time.perf_counter()
                queue.put(encoded(event))
        except Exception as exc:
            with lock:
                errors.append(f"producer {lane}: {type(exc).__name__}: {exc}")
        with lock:
            producing[0] -= 1

    threads = [threading.Thread(target=target, args=(lane, queue), daemon=True)
               for lane, queue in enumerate(queues) for target in (lane_poller, producer)]
    for thread in threads:
        thread.start()
    report = started
    for thread in threads:
        while thread.is_alive():
            thread.join(timeout=0.5)
            if time.perf_counter() - report >= 10:
                report = time.perf_counter()
                print(f"  {case.key}: {min(report - started, warmup + case.seconds):.0f} s of "
                      f"{warmup + case.seconds:.0f}, {handled[0]} events handled", file=sys.stderr, flush=True)
    if errors:
        raise RuntimeError(f"{len(errors)} event(s) failed in case {case.key}: {errors[:3]}")
    return samples, sum(q.gets for q in queues), handled[0]


# --- report -------------------------------------------------------------------------------------------

def percentile(values: Sequence[float], q: float) -> float:
    """Nearest rank: the smallest value with at least ``q`` of the values at or below it."""
    ordered = sorted(values)
    return ordered[max(0, math.ceil(q * len(ordered)) - 1)]


def spread(values: Sequence[float]) -> str:
    """p50 / p95 / max, whole milliseconds from 10 ms up."""
    figures = (percentile(values, q) for q in (0.5, 0.95, 1.0))
    return " / ".join(f"{v:.0f}" if v >= 10 else f"{v:.1f}" for v in figures)


def row(label: str, samples: list[Sample], gets_per_event: float | None) -> str:
    added = [s.handled_ms - s.handler_ms for s in samples]
    deleted = [s.deleted_ms for s in samples if s.deleted_ms is not None]
    return (f"| {label} | {len(samples)} | {spread([s.handled_ms for s in samples])} | "
            f"{spread(added) if deleted else '0'} | {spread(deleted) if deleted else '-'} | "
            f"{f'{gets_per_event:.1f}' if gets_per_event is not None else '-'} |")


def render(results: dict, settings: QueueSettings) -> str:
    direct, floor = results["webhook"], results["floor"]
    p50 = lambda samples, f=lambda s: s.handled_ms: percentile([f(s) for s in samples], 0.5)  # noqa: E731
    idle, _, measured = results["idle"]
    busy = results["busy"][0]
    added = lambda s: s.handled_ms - s.handler_ms  # noqa: E731
    hourly = polls_per_idle_hour(settings.max_polling)
    max_s = f"{settings.max_polling:g} s"
    lines = [
        f"Measured {datetime.now(timezone.utc):%Y-%m-%d} on {os.cpu_count()} cores, Azurite from npm (Table and Queue "
        "services): the real Event Grid trigger and queue trigger in one process, ARM `ResourceWriteSuccess` events for "
        "storage accounts flipped between secure and not before each event, so every event changes verdicts (state and "
        "outbox in Table storage, findings to a local JSON-lines sink; the ARM read is answered in memory, the same on "
        "both paths). The polling-model rows are **the documented polling algorithm, simulated against Azurite**, not "
        "the Functions host (\"Azure Queue storage trigger for Azure Functions\", [Polling algorithm]("
        "https://learn.microsoft.com/en-us/azure/azure-functions/functions-bindings-storage-queue-trigger#polling-algorithm"
        f")), with `maxPollingInterval` {max_s} and `batchSize` {settings.batch_size} from `host.json`; events arrive at "
        "random (Poisson), on several queues side by side for more samples. `bench/queue_latency.py` "
        "(`make queue-latency`) says what it models and where each rule comes from. Each latency cell is p50 / p95 / "
        "max in milliseconds.",
        "",
        "| path | events | put (or call) to handler done | added over the handler | put to message deleted | "
        "queue GETs per event |",
        "|---|---:|---:|---:|---:|---:|",
        row("webhook: the Event Grid trigger, called directly", direct, None),
        row("queue, floor: put, get at once, trigger, delete", floor, 1.0),
        *(row(f"queue, {case.label}", results[case.key][0], results[case.key][1]) for case in CASES),
        "",
        "How to read it: the webhook row is the handler alone, as Event Grid's POST reaches it; each queue row adds the "
        "queue hop and the wait for a poll. The hop itself: with a poller that reads the message the moment it "
        f"lands (the floor), the handler is done {p50(floor) - p50(direct):.1f} ms later at the median than when called "
        f"directly ({p50(floor) / p50(direct):.2f} times {p50(direct):.1f} ms), and the delete after it ends "
        f"{p50(floor, lambda s: s.deleted_ms) - p50(floor):.1f} ms later still; these are localhost round trips to "
        "Azurite, and Azure Storage's over the network are longer. The wait for the next poll is what counts: after a "
        f"quiet spell the documented algorithm has backed off to `maxPollingInterval` ({max_s}), so an event waits up "
        f"to that long (idle row: {p50(idle, added):.0f} ms added at the median, {max(map(added, idle)):.0f} ms at "
        f"most), while a busy queue keeps resetting the back-off (busy row: {p50(busy, added):.0f} ms at the median, "
        f"{percentile([added(s) for s in busy], 0.95):.0f} ms at p95). "
        "`maxPollingInterval` trades that wait against storage transactions when nothing happens: computed from the "
        f"algorithm, one instance sends about {hourly:,} queue GETs in an hour without events at {max_s} (the idle "
        f"row's queues, with an event every 10 s or so, sent {measured:,.0f} an hour each), against about "
        f"{polls_per_idle_hour(DEFAULT_MAX_POLLING):,} at the documented default of one minute, whose waits reach a "
        "minute. Not in these figures: Event Grid's own time to deliver (to the webhook or to the queue), and on a plan "
        "scaled to zero the time an instance takes to start.",
    ]
    return "\n".join(map(_wrapped, lines))


def _wrapped(text: str) -> str:
    """A paragraph wrapped at 100 columns as the rest of the doc is, never inside `code`; table rows as they are."""
    if text.startswith("|"):
        return text
    kept = re.sub(r"`[^`]*`", lambda m: m.group(0).replace(" ", "\0"), text)
    return textwrap.fill(kept, 100, break_long_words=False, break_on_hyphens=False).replace("\0", " ")


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--scale", type=float, default=1.0, help="multiply every case's duration and the floor's events")
    parser.add_argument("--floor-events", type=int, default=100)
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--write", metavar="FILE", help="replace the queue-latency section of FILE (docs/SCALE.md)")
    args = parser.parse_args(argv)
    import logging

    logging.getLogger("azure").setLevel(logging.WARNING)
    settings = host_queue_settings()
    print(f"maxPollingInterval {settings.max_polling:g} s, batchSize {settings.batch_size}, newBatchThreshold "
          f"{settings.new_batch_threshold} (host.json)", file=sys.stderr, flush=True)
    results: dict = {}
    service = AzuriteProcess(service="queue").start()
    try:
        with azurite() as conn, tempfile.TemporaryDirectory(prefix="queue-latency-") as out:
            handler = wire_handler(conn, Path(out))
            floor_queue = StorageQueue(service.endpoint, f"ql-floor-{uuid.uuid4().hex[:8]}")
            floor_queue.create()
            results["webhook"], results["floor"] = run_floor(handler, floor_queue, round(args.floor_events * args.scale),
                                                             settings.batch_size)
            lane_base = 2
            for case in CASES:
                case = case._replace(seconds=case.seconds * args.scale)
                print(f"{case.key}: {case.lanes} queue(s), {case.rate:g} event/s each, {case.seconds:g} s",
                      file=sys.stderr, flush=True)
                samples, gets, handled = run_case(handler, service.endpoint, case, settings, args.seed, lane_base)
                lane_base += case.lanes
                results[case.key] = (samples, gets / handled,
                                     gets / (case.lanes * (ramp_seconds(settings.max_polling) + case.seconds)) * 3600)
    finally:
        service.stop()
        from shared import bootstrap

        bootstrap.override(None)
    section = render(results, settings)
    print(section)
    if args.write:
        replace_section(Path(args.write), MARK, section)
        print(f"wrote {args.write}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
