"""Benchmark 2: relay events/s, vs a raw KafkaProducer sending the same bytes.

Stores the events (untimed), lets one relay batch warm the producer up, then times
``Relay.publish_available()``: it reads, encodes and sends until it has caught up, with
batches in flight while it reads the next ones, and saves its position as they are
acknowledged. The baseline is a producer built by ``infra.kafka.new_producer`` (same
settings) sending the very same envelope bytes, keys and headers to another topic of the same
broker, timed two ways: flushing and checking every batch of ``relay_batch_size`` messages, and
sending everything before one flush; the faster of the two is the baseline.

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
from infra.event_store import Message
from infra.kafka import ensure_topic, new_producer
from infra.relay import Relay

NAME = "relay"


def stored_messages(env: BenchEnv) -> list[Message]:
    """Every stored event as the relay sends it: case id, envelope JSON and headers."""
    messages: list[Message] = []
    after = 0
    while True:
        read, last = env.container.reader.read_messages(after, 5_000)
        if last == after:
            return messages
        messages.extend(read)
        after = last


def time_relay(relay: Relay, total: int) -> tuple[int, float]:
    """Events published by the relay until caught up, and the seconds it took."""
    start = time.perf_counter()
    done = count_progress("relay publish_available", total, relay.publish_available)
    return done, time.perf_counter() - start


def time_raw_producer(env: BenchEnv, messages: list[Message], batch: int, flushed: bool) -> float:
    """Seconds a raw producer takes to send ``messages`` after a warm-up batch, flushing and
    checking every ``batch`` messages when ``flushed``, else all of them before one flush."""
    settings = env.raw_settings("raw-flushed" if flushed else "raw-streamed")
    ensure_topic(settings)
    producer = new_producer(settings)
    cursor = [0]

    def send(count: int) -> int:
        chunk = messages[cursor[0] : cursor[0] + count]
        futures = [
            producer.send(settings.kafka_topic, key=k, value=v, headers=h) for k, v, h in chunk
        ]
        producer.flush(timeout=30)
        for future in futures:
            future.get(timeout=30)
        cursor[0] += len(chunk)
        return len(chunk)

    try:
        send(batch)  # warm-up, as the relay's first batch
        start = time.perf_counter()
        step = batch if flushed else len(messages)
        label = f"raw KafkaProducer, {'flush per batch' if flushed else 'one flush'}"
        count_progress(label, len(messages) - batch, lambda: send(step))
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
        raw_rates = {
            flushed: (len(messages) - batch) / time_raw_producer(env, messages, batch, flushed)
            for flushed in (True, False)
        }
        size = sum(len(v) for _, v, _ in messages) / len(messages)
        CONSOLE.print(f"  {published:,} events timed, envelopes of {size:,.0f} bytes on average")
        CONSOLE.print(
            f"  raw producer: {raw_rates[True]:,.0f} msgs/s flushing every {batch:,},"
            f" {raw_rates[False]:,.0f} msgs/s with one flush; the faster is the baseline"
        )
        figure = Figure(
            benchmark=NAME,
            label="relay events/s",
            value=published / relay_seconds,
            unit="/s",
            baseline_label="raw producer msgs/s, same bytes",
            baseline=max(raw_rates.values()),
        )
        print_figure(figure)
    return [figure]


if __name__ == "__main__":
    run_alone(run)
