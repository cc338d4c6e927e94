"""Benchmark 3: projection events/s, vs a raw consumer that only reads and decodes JSON.

Stores and relays the events (untimed). Then a consumer from ``infra.kafka.new_consumer``
feeds every projection (``ProjectionSet.apply_batch``) as ``ProjectionWorker._consume_once``
does (poll up to 2,000, parse envelopes, apply in one transaction per projection, commit
offsets) until every event is applied. The baseline is a consumer with the same settings in
another group that polls the same messages and only ``json.loads`` them. Each consumer first
joins its group and is rewound to the topic's start, untimed; the clock then runs from its
first poll.

Run on its own: ``.venv/bin/python -m bench.projection [--quick]`` (from the project root).
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from typing import Any

from bench.common import (
    CONSOLE,
    BenchEnv,
    Figure,
    Scale,
    bench_environment,
    close_quietly,
    count_progress,
    print_figure,
    relay_everything,
    run_alone,
    seed_events,
)
from infra.kafka import new_consumer
from infra.projection_rebuild import CHUNK, Rebuilder
from infra.projector import parse

NAME = "projection"
POLL_TIMEOUT_MS = 500
#: As many as the worker polls at most (CASELEDGER_PROJECTION_BATCH_SIZE's default).
MAX_RECORDS = 2_000
GIVE_UP_SECONDS = 180.0

Handler = Callable[[list[bytes]], None]


def project_handler(env: BenchEnv, consumer: Any) -> Handler:
    """What the projection worker does with one poll's messages."""
    view = env.container.projections

    def handle(values: list[bytes]) -> None:
        view.apply_batch([e for v in values if (e := parse(v))])
        consumer.commit()

    return handle


def decode_handler(values: list[bytes]) -> None:
    for value in values:
        json.loads(value)


def join_and_rewind(consumer: Any, description: str) -> None:
    """Join the group and get a partition assignment (untimed), then rewind to the start,
    dropping whatever the first fetch brought, so the timed run fetches every message."""
    give_up = time.monotonic() + GIVE_UP_SECONDS
    while not consumer.poll(timeout_ms=POLL_TIMEOUT_MS, max_records=1):
        if time.monotonic() > give_up:
            raise TimeoutError(f"{description}: no messages for {GIVE_UP_SECONDS}s")
    consumer.seek_to_beginning()


def time_consumer(
    description: str, consumer: Any, total: int, make_handler: Callable[[Any], Handler]
) -> float:
    """Seconds to poll and handle ``total`` messages once the consumer has joined."""
    handle = make_handler(consumer)
    give_up = time.monotonic() + GIVE_UP_SECONDS

    def step() -> int:
        while time.monotonic() < give_up:
            batches = consumer.poll(timeout_ms=POLL_TIMEOUT_MS, max_records=MAX_RECORDS)
            values = [r.value for records in batches.values() for r in records]
            if values:
                handle(values)
                return len(values)
        raise TimeoutError(f"{description}: no messages for {GIVE_UP_SECONDS}s")

    try:
        join_and_rewind(consumer, description)
        start = time.perf_counter()
        count_progress(description, total, step)
        return time.perf_counter() - start
    finally:
        close_quietly(consumer)


def applied_events(env: BenchEnv) -> int:
    return int(env.container.projections.state("case_list").get("applied_events", 0))


def relayed_and_raw_consumed(env: BenchEnv, scale: Scale) -> tuple[int, float]:
    """Store and relay the run's events (untimed), then time the raw baseline: a consumer
    that polls them all and only decodes their JSON. Answers the count and the seconds."""
    seed_events(env.container, scale.projection_events)
    total = relay_everything(env.container)
    settings = env.settings
    raw_seconds = time_consumer(
        "raw consumer (json.loads only)",
        new_consumer(settings, f"{settings.projection_group}-raw"),
        total,
        lambda _consumer: decode_handler,
    )
    return total, raw_seconds


def run(scale: Scale) -> list[Figure]:
    CONSOLE.rule("[bold]3. projection events/s: every projection vs raw consume")
    with bench_environment(NAME) as env:
        total, raw_seconds = relayed_and_raw_consumed(env, scale)
        settings = env.settings
        project_seconds = time_consumer(
            "apply_batch + commit",
            new_consumer(settings, settings.projection_group),
            total,
            lambda consumer: project_handler(env, consumer),
        )
        applied = applied_events(env)
        CONSOLE.print(f"  {total:,} events on the topic, {applied:,} applied to case_list")
        if applied != total:
            CONSOLE.print(f"  [red]the view applied {applied:,} of {total:,} events[/]")
        figure = Figure(
            benchmark=NAME,
            label="projected events/s",
            value=total / project_seconds,
            unit="/s",
            baseline_label="raw consume + json.loads msgs/s",
            baseline=total / raw_seconds,
        )
        print_figure(figure)
        figures = [figure, *rebuild_figures(env, total)]
    return figures


def raw_read_and_copy(env: BenchEnv) -> float:
    """Seconds to read every stored event in order, CHUNK rows at a time, and COPY the rows
    into a table: the floor under any rebuild from the store."""
    reader = env.container.reader
    select = reader.sql(
        "SELECT notification_id, originator_id, originator_version, topic, state FROM {events}"
        " WHERE notification_id > %s ORDER BY notification_id LIMIT %s"
    )
    start = time.perf_counter()
    with env.container.pool.connection() as conn:
        conn.execute(
            "CREATE TEMP TABLE raw_copy (id bigint, case_id uuid, version int, topic text,"
            " state bytea)"
        )
        position = 0
        while rows := conn.execute(select, (position, CHUNK)).fetchall():
            with conn.cursor().copy("COPY raw_copy FROM STDIN") as copy:
                for row in rows:
                    copy.write_row(tuple(row.values()))
            conn.commit()
            position = rows[-1]["notification_id"]
    return time.perf_counter() - start


def rebuild_figures(env: BenchEnv, total: int) -> list[Figure]:
    """Each projection rebuilt from the store (beside the live one, then swapped in)."""
    raw_seconds = raw_read_and_copy(env)
    CONSOLE.print(f"  raw read + COPY of {total:,} stored events: {raw_seconds:.2f} s")
    figures = []
    projections = env.container.projections
    for name, runner in projections.runners.items():
        start = time.perf_counter()
        report = Rebuilder(runner, projections.after_swap, CHUNK).rebuild()
        seconds = time.perf_counter() - start
        CONSOLE.print(f"  rebuilt {name}: {report.applied:,} events in {seconds:.2f} s")
        figure = Figure(
            benchmark=NAME,
            label=f"rebuild {name} events/s",
            value=total / seconds,
            unit="/s",
            baseline_label="raw read + COPY events/s",
            baseline=total / raw_seconds,
        )
        print_figure(figure)
        figures.append(figure)
    return figures


if __name__ == "__main__":
    run_alone(run)
