"""Benchmark 4: command-to-projection latency at a steady rate, vs a raw Kafka round trip.

The relay and the projection worker run as real processes (``python -m infra.cli relay``
and ``... project``). Writer threads issue commands on a fixed schedule (200/s in all:
each case gets an Opened event and NOTES_PER_CASE notes); a latency runs from a command's
return to the moment the ``case_list`` row shows that version, seen through LISTEN on a
trigger that this benchmark adds to its own database. The baseline, measured first on the
same broker at the same rate, is a producer from ``infra.kafka.new_producer`` sending small
messages to a consumer from ``new_consumer`` that polls like the projection worker.
On the embedded Tansu broker a waiting fetch is not woken by new data: it returns after up
to about half of ``fetch_max_wait_ms`` (``new_consumer`` sets 100 ms; kafka-python's default
of 500 ms put the p50 near 125 ms), which dominates both figures; on Apache Kafka both would
be lower.

Run on its own: ``.venv/bin/python -m bench.latency [--quick]`` (from the project root).
"""

from __future__ import annotations

import os
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from uuid import UUID, uuid4

import psycopg

from bench.common import (
    CONSOLE,
    CTX,
    NOTES_PER_CASE,
    BenchEnv,
    Figure,
    Scale,
    Worker,
    bench_environment,
    close_quietly,
    percentile,
    print_figure,
    run_alone,
    run_for,
    timed_progress,
)
from infra.kafka import ensure_topic, new_consumer, new_producer
from infra.settings import Settings
from services.application import CaseLedger

NAME = "latency"
WRITERS = 4
START_TIMEOUT = 60.0
DRAIN_TIMEOUT = 30.0
CHANNEL = "bench_case_list"
PROJECT_ROOT = Path(__file__).resolve().parents[1]
TRIGGER = f"""
CREATE FUNCTION bench_case_list_notify() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    PERFORM pg_notify('{CHANNEL}', NEW.case_id::text || ' ' || NEW.version::text);
    RETURN NEW;
END $$;
CREATE TRIGGER bench_case_list_notify AFTER INSERT OR UPDATE ON case_list
FOR EACH ROW EXECUTE FUNCTION bench_case_list_notify();
"""

Key = tuple[str, int]  # (case id, version) or (message id, 0)


@dataclass
class Clock:
    """When each item was handed over and when it arrived at the other end."""

    sent: dict[Key, float] = field(default_factory=dict)
    seen: dict[Key, float] = field(default_factory=dict)

    def arrived(self, key: Key) -> None:
        self.seen.setdefault(key, time.perf_counter())

    def arrived_upto(self, case_id: str, version: int) -> None:
        """The case reached ``version``: so did every earlier version of it. The projection
        folds a batch's events of one case into one row write, so the versions between two
        writes are never shown on their own (they were counted as never arrived)."""
        now = time.perf_counter()
        for earlier in range(version, 0, -1):
            key = (case_id, earlier)
            if key in self.seen:
                return
            if key in self.sent:
                self.seen[key] = now

    def pending(self) -> int:
        return sum(1 for key in list(self.sent) if key not in self.seen)

    def latencies_ms(self) -> list[float]:
        return [
            max(0.0, self.seen[k] - t) * 1000 for k, t in list(self.sent.items()) if k in self.seen
        ]


@dataclass(frozen=True)
class Latency:
    p50: float
    p99: float
    count: int
    missing: int
    rate: float


def paced(rate: float, seconds: float, action: Callable[[int], None]) -> Worker:
    """A worker that runs ``action(index)`` on a fixed schedule: WRITERS of them share
    ``rate`` actions a second, interleaved (a late action runs at once, none is dropped)."""

    def work(index: int, deadline: float, counts: list[int]) -> None:
        start = deadline - seconds
        for k in range(int(seconds * rate)):
            due = start + (index + k * WRITERS) / rate
            if due >= deadline:
                return
            delay = due - time.perf_counter()
            if delay > 0:
                time.sleep(delay)
            action(index)
            counts[index] += 1

    return work


def wait_for(check: Callable[[], bool], timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while not check():
        if time.monotonic() > deadline:
            raise TimeoutError(f"timed out after {timeout:.0f}s waiting for {what}")
        time.sleep(0.05)


def drain(clock: Clock, what: str) -> None:
    """Wait (with a bar) until everything sent has arrived, or DRAIN_TIMEOUT passed."""
    give_up = time.monotonic() + DRAIN_TIMEOUT
    timed_progress(
        f"waiting for the last {what}",
        DRAIN_TIMEOUT,
        lambda: clock.pending() == 0 or time.monotonic() > give_up,
        lambda: f"{clock.pending():,} pending",
    )


def summarise(clock: Clock, rate: float) -> Latency:
    values = clock.latencies_ms()
    if not values:
        raise RuntimeError("nothing arrived: no latency to report")
    return Latency(
        p50=percentile(values, 50),
        p99=percentile(values, 99),
        count=len(values),
        missing=len(clock.sent) - len(values),
        rate=rate,
    )


def steady_run(
    description: str, scale: Scale, clock: Clock, action: Callable[[int], None]
) -> Latency:
    """Run ``action`` at the benchmark's rate for its duration, then wait for arrivals."""
    worker = paced(scale.latency_rate, scale.latency_seconds, action)
    result = run_for(description, WRITERS, scale.latency_seconds, worker)
    drain(clock, description)
    return summarise(clock, result.rate)


# --- baseline: raw produce -> consume ----------------------------------------------------


@contextmanager
def raw_consumer(settings: Settings, clock: Clock) -> Iterator[None]:
    """A consumer thread that marks every message it receives as arrived."""
    stop = threading.Event()
    consumer = new_consumer(settings, settings.projection_group)

    def loop() -> None:
        while not stop.is_set():
            batches = consumer.poll(timeout_ms=500, max_records=500)
            for records in batches.values():
                for record in records:
                    clock.arrived((record.value.decode(), 0))

    thread = threading.Thread(target=loop, daemon=True)
    thread.start()
    try:
        yield
    finally:
        stop.set()
        thread.join(10)
        close_quietly(consumer)


def raw_round_trip(env: BenchEnv, scale: Scale) -> Latency:
    settings = env.raw_settings("raw")
    ensure_topic(settings)
    producer = new_producer(settings)
    clock = Clock()

    def send(_index: int) -> None:
        message = uuid4().hex
        clock.sent[(message, 0)] = time.perf_counter()
        producer.send(settings.kafka_topic, key=uuid4().bytes, value=message.encode())

    try:
        with raw_consumer(settings, clock):
            send_until_seen(send, clock, "the raw consumer to join its group")
            return steady_run("raw produce -> consume", scale, clock, send)
    finally:
        close_quietly(producer)


def send_until_seen(send: Callable[[int], None], clock: Clock, what: str) -> None:
    """Warm up: send one item every 0.2 s until one arrives, then forget them."""
    deadline = time.monotonic() + START_TIMEOUT
    while not clock.seen:
        if time.monotonic() > deadline:
            raise TimeoutError(f"timed out waiting for {what}")
        send(0)
        time.sleep(0.2)
    clock.sent.clear()
    clock.seen.clear()


# --- caseledger: command -> relay -> Kafka -> projection -> case_list -------------------


def child_env(settings: Settings) -> dict[str, str]:
    """The environment that makes ``python -m infra.cli`` use ``settings``."""
    return {**os.environ, **settings.as_env(), "CASELEDGER_LOG_LEVEL": "WARNING"}


Child = tuple[str, subprocess.Popen[bytes]]


@contextmanager
def processes(env: BenchEnv, verbs: Sequence[str]) -> Iterator[list[Child]]:
    """Run ``python -m infra.cli VERB`` for each verb, logging under the work folder."""
    children: list[Child] = []
    try:
        for verb in verbs:
            with open(env.workdir / f"{verb}.log", "ab") as log:
                children.append(
                    (
                        verb,
                        subprocess.Popen(
                            [sys.executable, "-m", "infra.cli", verb],
                            env=child_env(env.settings),
                            cwd=PROJECT_ROOT,
                            stdout=log,
                            stderr=subprocess.STDOUT,
                        ),
                    )
                )
        yield children
    finally:
        for _, child in children:
            stop_child(child)


def stop_child(child: subprocess.Popen[bytes]) -> None:
    if child.poll() is None:
        child.terminate()
        try:
            child.wait(15)
        except subprocess.TimeoutExpired:
            child.kill()
            child.wait()


@contextmanager
def watching(dsn: str, clock: Clock) -> Iterator[None]:
    """A thread that marks (case id, version) as arrived when case_list shows it."""
    stop = threading.Event()
    conn = psycopg.connect(dsn, autocommit=True)
    conn.execute(f"LISTEN {CHANNEL}")

    def loop() -> None:
        while not stop.is_set():
            for note in conn.notifies(timeout=0.2):
                case_id, version = note.payload.split()
                clock.arrived_upto(case_id, int(version))

    thread = threading.Thread(target=loop, daemon=True)
    thread.start()
    try:
        yield
    finally:
        stop.set()
        thread.join(10)
        conn.close()


def command_action(ledger: CaseLedger, clock: Clock) -> Callable[[int], None]:
    """Writer ``index`` opens a case, adds NOTES_PER_CASE notes to it, then the next."""
    current: dict[int, tuple[UUID, int]] = {}

    def act(index: int) -> None:
        case_id, notes = current.get(index, (None, NOTES_PER_CASE))
        if case_id is None or notes >= NOTES_PER_CASE:
            case = ledger.open_case("generic", f"latency {index}", {"w": index}, None, CTX)
            notes = 0
        else:
            case = ledger.add_note(case_id, f"note {notes}", CTX, None)
            notes += 1
        clock.sent[(str(case.id), case.version)] = time.perf_counter()
        current[index] = (case.id, notes)

    return act


def check_alive(children: Sequence[Child], env: BenchEnv) -> bool:
    """True, or an error with the log's tail when a child process has exited."""
    for verb, child in children:
        if child.poll() is not None:
            log = (env.workdir / f"{verb}.log").read_text()[-2_000:]
            raise RuntimeError(f"caseledger {verb} exited ({child.returncode}):\n{log}")
    return True


def pipeline(env: BenchEnv, scale: Scale) -> Latency:
    with env.container.pool.connection() as conn:
        conn.execute(TRIGGER)
    clock = Clock()
    action = command_action(env.container.ledger, clock)
    with watching(env.settings.dsn, clock), processes(env, ["relay", "project"]) as children:
        action(0)
        wait_for(
            lambda: check_alive(children, env) and not clock.pending(),
            START_TIMEOUT,
            "the relay and the projection worker to start",
        )
        clock.sent.clear()
        clock.seen.clear()
        result = steady_run("commands -> case_list", scale, clock, action)
        check_alive(children, env)
        return result


def figures(raw: Latency, ours: Latency) -> list[Figure]:
    return [
        Figure(
            benchmark=NAME,
            label=f"command -> case_list p{q}",
            value=getattr(ours, f"p{q}"),
            unit="ms",
            baseline_label=f"raw produce -> consume p{q}",
            baseline=getattr(raw, f"p{q}"),
            higher_is_better=False,
        )
        for q in (50, 99)
    ]


def describe(what: str, result: Latency) -> None:
    missing = f", [red]{result.missing} never arrived[/]" if result.missing else ""
    CONSOLE.print(
        f"  {what}: {result.count:,} measured at {result.rate:,.0f}/s"
        f" (p50 {result.p50:,.1f} ms, p99 {result.p99:,.1f} ms){missing}"
    )


def run(scale: Scale) -> list[Figure]:
    CONSOLE.rule(
        f"[bold]4. latency at {scale.latency_rate:.0f} commands/s:"
        " command -> case_list vs raw produce -> consume"
    )
    with bench_environment(NAME) as env:
        raw = raw_round_trip(env, scale)
        describe("raw produce -> consume", raw)
        ours = pipeline(env, scale)
        describe("command -> relay -> projection", ours)
    result = figures(raw, ours)
    for figure in result:
        print_figure(figure)
    return result


if __name__ == "__main__":
    run_alone(run)
