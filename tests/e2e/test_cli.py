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

VERBS = [
    "up",
    "serve",
    "relay",
    "project",
    "sla-watch",
    "notify",
    "status",
    "contracts",
    "keys",
    "keys create",
    "keys list",
    "keys revoke",
    "case-types",
    "case-types load",
    "case-types list",
    "case-types migrate",
    "case-types discard",
    "case-types submit",
    "case-types approve",
    "case-types reject",
    "case-types publish",
    "secrets",
    "secrets set",
    "secrets list",
    "secrets delete",
]


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


def test_case_types_load_publishes_refuses_with_each_problem_and_migrates_as_a_dry_run(
    settings: Settings, container: Container, tmp_path: Path
) -> None:
    env = settings_env(settings)
    shipped = Path(__file__).resolve().parents[2] / "casetypes"
    complaint = str(shipped / "customer_complaint.yaml")
    loaded = caseledger("case-types", "load", "--no-review", "--as", "ops", complaint, env=env)
    assert loaded.returncode == 0, loaded.stderr
    assert "customer_complaint v1 is current" in loaded.stdout
    again = caseledger("case-types", "load", str(shipped / "customer_complaint.yaml"), env=env)
    assert "customer_complaint v1 is current" in again.stdout  # unchanged: not republished
    broken = tmp_path / "broken.yaml"
    text = (shipped / "customer_complaint.yaml").read_text()
    broken.write_text(text.replace("deadline: 10d", "deadline: 10 days"))
    refused = caseledger("case-types", "load", str(broken), env=env)
    assert refused.returncode == 1
    assert "'10 days' is not a duration" in refused.stderr
    assert "Traceback" not in refused.stderr
    listed = caseledger("case-types", "list", env=env)
    assert "customer_complaint       current v1" in listed.stdout
    dry = caseledger("case-types", "migrate", "customer_complaint", "--to", "1", env=env)
    assert dry.returncode == 0, dry.stderr
    assert "no open cases" in dry.stdout
    missing = caseledger("case-types", "migrate", "customer_complaint", "--to", "2", env=env)
    assert missing.returncode == 1
    assert "has no version 2" in missing.stderr  # the refused document left no draft
    assert "versions: 1" in missing.stderr
