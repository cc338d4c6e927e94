"""The caseledger command: every verb explains itself, keys work, errors say how to fix them."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from infra.bootstrap import Container
from infra.settings import Settings
from tests.conftest import settings_env

VERBS = ["up", "serve", "relay", "project", "status", "contracts", "keys", "keys create"]


def caseledger(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "infra.cli", *args],
        capture_output=True,
        text=True,
        timeout=60,
        env=env,
        check=False,
    )


@pytest.mark.parametrize("verb", VERBS)
def test_every_verb_has_help(verb: str) -> None:
    result = caseledger(*verb.split(), "--help")
    assert result.returncode == 0, result.stderr
    assert "Usage:" in result.stdout
    assert len(result.stdout.splitlines()) > 5


def test_keys_create_prints_a_key_that_the_api_accepts(
    settings: Settings, container: Container
) -> None:
    result = caseledger(
        "keys", "create", "--role", "auditor", "--label", "Ann", env=settings_env(settings)
    )
    assert result.returncode == 0, result.stderr
    key = result.stdout.strip()
    holder = container.keys.holder_of(key)
    assert holder is not None
    assert (holder.role.value, holder.actor_id) == ("auditor", "Ann")


def test_an_unknown_role_is_refused_with_the_choices(settings: Settings) -> None:
    result = caseledger("keys", "create", "--role", "boss", env=settings_env(settings))
    assert result.returncode != 0
    assert "handler" in result.stderr and "boss" in result.stderr


def test_without_a_database_the_error_says_what_to_do(tmp_path: Path) -> None:
    env = {k: v for k, v in os.environ.items() if k != "DATABASE_URL"}
    result = subprocess.run(
        [sys.executable, "-m", "infra.cli", "status"],
        capture_output=True,
        text=True,
        timeout=60,
        env=env,
        cwd=str(tmp_path),
        check=False,
    )
    assert result.returncode == 1
    assert "DATABASE_URL is not set" in result.stderr
    assert "caseledger up" in result.stderr
    assert "Traceback" not in result.stderr
