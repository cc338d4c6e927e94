"""The one retry loop: work that lost a race runs again, within its attempts and deadline."""

from __future__ import annotations

import pytest
from eventsourcing.persistence import IntegrityError

from services.deadline import deadline_in
from services.errors import VersionConflict
from services.retry import Retry


class Racer:
    """Work that loses ``losses`` races, then wins; counts its attempts."""

    def __init__(self, losses: int, error: Exception | None = None) -> None:
        self.losses, self.error, self.attempts = losses, error, 0

    def __call__(self) -> str:
        self.attempts += 1
        if self.attempts <= self.losses:
            raise self.error or IntegrityError("lost the race")
        return "saved"


def conflict() -> VersionConflict:
    return VersionConflict("gave up")


def test_work_that_loses_runs_again_until_it_wins() -> None:
    racer = Racer(losses=3)
    assert Retry(attempts=5).run(racer, gave_up=conflict) == "saved"
    assert racer.attempts == 4


def test_after_its_last_attempt_it_gives_up_with_the_callers_error() -> None:
    racer = Racer(losses=10)
    with pytest.raises(VersionConflict, match="gave up"):
        Retry(attempts=3).run(racer, gave_up=conflict)
    assert racer.attempts == 3


def test_without_a_gave_up_error_the_last_lost_race_is_raised() -> None:
    with pytest.raises(IntegrityError):
        Retry(attempts=2).run(Racer(losses=2))


def test_an_error_that_is_not_a_lost_race_is_not_retried() -> None:
    racer = Racer(losses=1, error=ValueError("bad input"))
    with pytest.raises(ValueError, match="bad input"):
        Retry(attempts=5).run(racer, gave_up=conflict)
    assert racer.attempts == 1


def test_the_errors_that_mean_a_lost_race_are_the_callers_choice() -> None:
    racer = Racer(losses=1, error=VersionConflict("another process installed it"))
    assert Retry(attempts=2, lost=(VersionConflict,)).run(racer) == "saved"


def test_no_further_attempt_starts_once_the_deadline_has_passed() -> None:
    racer = Racer(losses=1)
    with deadline_in(0.0), pytest.raises(VersionConflict):
        Retry(attempts=30).run(racer, gave_up=conflict)
    assert racer.attempts == 1
