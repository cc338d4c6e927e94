"""Benchmark 2: relay events/s, vs a raw KafkaProducer sending the same bytes.

Stores the events (untimed), lets one relay batch warm the producer up, then times
``Relay.publish_next_batch()`` in a loop until it has caught up. The baseline is a
producer built by ``infra.kafka.new_producer`` (same settings) sending the very same
envelope bytes and keys to another topic of the same broker, flushing and checking every
batch of ``relay_batch_size`` messages as the relay does.

Run on its own: ``.venv/bin/python -m bench.relay [--quick]`` (from the project root).
"""

from __future__ import annotations

import time

from bench.common import (
    CONSOLE,
    BenchEnv,
    Figure,
    Scale,
    bench_environment,
    close_quietly,
    count_progress,
    print_figure,
    run_alone,
    seed_events,
)
from infra.kafka import ensure_topic, new_producer
from infra.relay import Relay

NAME = "relay"
Message = tuple[bytes, bytes]  # key, value


def stored_messages(env: BenchEnv) -> list[Message]:
    """Every stored event as the relay would send it: case id and envelope JSON."""
    messages: list[Message] = []
    after = 0
    while True:
        envelopes, last = env.container.reader.read_log(after, 5_000)
        if last == after:
            return messages
        messages.extend((e.case_id.encode(), e.to_json()) for e in envelopes)
        after = last


def time_relay(relay: Relay, total: int) -> tuple[int, float]:
    """Events published by the relay until caught up, and the seconds it took."""
    start = time.perf_counter()
    done = count_progress("relay publish_next_batch", total, relay.publish_next_batch)
    return done, time.perf_counter() - start


def time_raw_producer(env: BenchEnv, messages: list[Message], batch: int) -> float:
    """Seconds a raw producer takes to send ``messages`` in flushed batches of ``batch``."""
    settings = env.raw_settings("raw")
    ensure_topic(settings)
    producer = new_producer(settings)
    cursor = [0]

    def send_batch() -> int:
        chunk = messages[cursor[0] : cursor[0] + batch]
        futures = [producer.send(settings.kafka_topic, key=k, value=v) for k, v in chunk]
        producer.flush(timeout=30)
        for future in futures:
            future.get(timeout=30)
        cursor[0] += len(chunk)
        return len(chunk)

    try:
        send_batch()  # warm-up, as the relay's first batch
        start = time.perf_counter()
        count_progress("raw KafkaProducer", len(messages) - batch, send_batch)
        return time.perf_counter() - start
    finally:
        close_quietly(producer)


def run(scale: Scale) -> list[Figure]:
    CONSOLE.rule("[bold]2. relay events/s: Relay vs raw KafkaProducer")
    with bench_environment(NAME) as env:
        batch = env.settings.relay_batch_size
        seed_events(env.container, scale.relay_events + batch)
        messages = stored_messages(env)
        relay = env.container.relay
        warm = relay.publish_next_batch()  # creates the topic and the producer, untimed
        published, relay_seconds = time_relay(relay, len(messages) - warm)
        raw_seconds = time_raw_producer(env, messages, batch)
        size = sum(len(v) for _, v in messages) / len(messages)
        CONSOLE.print(f"  {published:,} events timed, envelopes of {size:,.0f} bytes on average")
        figure = Figure(
            benchmark=NAME,
            label="relay events/s",
            value=published / relay_seconds,
            unit="/s",
            baseline_label="raw producer msgs/s, same bytes",
            baseline=(len(messages) - batch) / raw_seconds,
        )
        print_figure(figure)
    return [figure]


if __name__ == "__main__":
    run_alone(run)
