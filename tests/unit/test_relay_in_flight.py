"""The relay saves a position only once the broker acknowledged every message up to it, even
with several batches in flight (``infra.relay.InFlight``), whatever order the answers come in.

The answers are kafka-python's own futures, completed here as its sender thread would.
"""

from __future__ import annotations

import pytest
from kafka.errors import KafkaTimeoutError, NotLeaderForPartitionError
from kafka.producer.future import FutureProduceResult, FutureRecordMetadata
from kafka.structs import TopicPartition

from infra.relay import InFlight

PARTITION = TopicPartition("case-events", 0)


def produce_request() -> FutureProduceResult:
    """One produce request to the broker: every message of it is answered at once."""
    return FutureProduceResult(PARTITION)


def sent(request: FutureProduceResult, messages: int) -> list[FutureRecordMetadata]:
    return [FutureRecordMetadata(request, i, 0, None, 1, 10, -1) for i in range(messages)]


def acknowledge(request: FutureProduceResult) -> None:
    request.success((0, -1, None))


def tracker(saved: list[int]) -> InFlight:
    return InFlight(100, saved.append, timeout_s=0.05)


def test_a_later_batch_acknowledged_first_saves_nothing_until_the_earlier_one_is() -> None:
    saved: list[int] = []
    in_flight = tracker(saved)
    first, second = produce_request(), produce_request()
    in_flight.add(200, sent(first, 3))
    in_flight.add(300, sent(second, 2))
    acknowledge(second)
    with pytest.raises(KafkaTimeoutError):
        in_flight.settle()
    assert (saved, in_flight.saved) == ([], 100)
    acknowledge(first)
    in_flight.settle()
    assert (saved, in_flight.saved, len(in_flight)) == ([300], 300, 0)


def test_settling_down_to_a_window_keeps_the_newest_batches_in_flight() -> None:
    saved: list[int] = []
    in_flight = tracker(saved)
    requests = [produce_request() for _ in range(3)]
    for last, request in zip((200, 300, 400), requests, strict=True):
        in_flight.add(last, sent(request, 2))
    acknowledge(requests[0])
    acknowledge(requests[1])
    in_flight.settle(keep=1)  # does not wait for the newest
    assert (saved, len(in_flight)) == ([300], 1)


def test_a_refused_message_stops_the_position_at_the_batch_before_it() -> None:
    saved: list[int] = []
    in_flight = tracker(saved)
    first, second = produce_request(), produce_request()
    in_flight.add(200, sent(first, 2))
    in_flight.add(300, sent(second, 2))
    acknowledge(first)
    second.failure(NotLeaderForPartitionError())
    with pytest.raises(NotLeaderForPartitionError):
        in_flight.settle()
    assert (saved, in_flight.saved) == ([200], 200)  # batch 300 will be sent again
