"""A worker stuck in a call that never returns ends its process, so that it is restarted."""

from __future__ import annotations

import logging
import threading

from infra.outage import STALLED_EXIT_CODE, Liveness, watch_liveness


class Clock:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


def test_a_beat_resets_the_stall() -> None:
    clock = Clock()
    liveness = Liveness(clock)
    clock.now = 50.0
    assert liveness.stalled_for() == 50.0
    liveness.beat()
    clock.now = 60.0
    assert liveness.stalled_for() == 10.0


def test_a_stalled_worker_ends_the_process_and_a_live_one_does_not() -> None:
    clock = Clock()
    liveness = Liveness(clock)
    ended: list[int] = []
    done = threading.Event()
    watcher = watch_liveness(
        "relay", liveness, done, logging.getLogger("t"), stall_s=0.2, end=ended.append
    )
    clock.now = 0.1  # within its time: the watcher keeps watching
    assert not done.wait(0.2) and ended == []
    clock.now = 5.0  # no beat for 5 s
    watcher.join(5)
    assert ended == [STALLED_EXIT_CODE]
