"""`caseledger audit` as an auditor meets it: each command's --help says what it does, its
exit codes and what to do on failure; verify's report of a badly damaged store stays
readable (a bounded list, a count per kind, what to do); public-key never makes a key."""

from __future__ import annotations

import json
import re

import pytest
from typer.testing import CliRunner

from infra.audit_verify import Problem, Report
from infra.bootstrap import Container
from infra.cli import app
from infra.settings import Settings
from tests.conftest import settings_env
from tests.integration.helpers import open_cases

EVENTS = "caseledger_events"


@pytest.mark.parametrize(
    ("command", "says"),
    [
        ("verify", ["changed, deleted, inserted, reordered or moved", "Exit codes: 0 intact"]),
        ("bundle", ["inclusion proofs", "offline", "Exit codes: 0 written"]),
        ("checkpoint", ["Sign a checkpoint", "Exit codes: 0 signed", "audit verify"]),
        ("verifier", ["standard library", "--public-key", "exits 0", "1 when it found"]),
        ("public-key", ["auditors", "refuses"]),
    ],
)
def test_each_command_explains_itself(command: str, says: list[str]) -> None:
    result = CliRunner().invoke(app, ["audit", command, "--help"], env={"COLUMNS": "200"})
    assert result.exit_code == 0, result.output
    text = " ".join(result.output.split())
    for phrase in says:
        assert phrase in text, (phrase, result.output)


def test_public_key_refuses_to_make_a_key(container: Container, settings: Settings) -> None:
    env = settings_env(settings)
    result = CliRunner().invoke(app, ["audit", "public-key"], env=env)
    assert result.exit_code == 1
    assert "no checkpoint signing key" in result.output and "how to fix it" in result.output
    assert not (settings.data_dir / "audit").exists()
    key = container.audit.key  # made by the first checkpoint
    result = CliRunner().invoke(app, ["audit", "public-key"], env=env)
    assert result.exit_code == 0 and key.public_hex in result.output, result.output


def test_a_badly_damaged_store_gets_a_bounded_readable_report(
    container: Container, settings: Settings
) -> None:
    open_cases(container, 20, notes=2)
    assert container.audit.checkpoint(EVENTS) is not None
    with container.pool.connection() as conn:
        conn.execute(
            f"UPDATE {EVENTS} SET state = state || ' '::bytea WHERE originator_version > 1"
        )
    env = settings_env(settings)
    runner = CliRunner()
    result = runner.invoke(app, ["audit", "verify", "--skip-topic", "--show", "10"], env=env)
    assert result.exit_code == 1
    lines = result.stdout.splitlines()
    assert len([line for line in lines if line.startswith("PROBLEM ")]) == 10
    assert "... and 30 more problems (use --show 0 or --json for the rest)" in lines
    summary = next(line for line in lines if line.startswith("NOT INTACT"))
    assert "40 problems (content_changed 40); 60 in caseledger_events" in summary, summary
    advice = result.stdout[result.stdout.index("What to do:") :]
    for step in ("security incident", "copy the database", "Report it", "restore a backup"):
        assert step in advice, advice
    everything = runner.invoke(app, ["audit", "verify", "--skip-topic", "--show", "0"], env=env)
    assert len(re.findall(r"^PROBLEM ", everything.stdout, re.MULTILINE)) == 40
    as_json = json.loads(
        runner.invoke(app, ["audit", "verify", "--skip-topic", "--json"], env=env).stdout
    )
    assert as_json["problems_by_kind"] == {"content_changed": 40}
    assert len(as_json["problems"]) == 40 and as_json["what_to_do"]


def test_an_unreadable_topic_alone_says_to_fix_the_broker() -> None:
    report = Report()
    assert report.what_to_do() == []
    report.add(Problem("witness_unavailable", "audit-checkpoints", "no answer"))
    (advice,) = report.what_to_do()
    assert "KAFKA_BOOTSTRAP_SERVERS" in advice and "--skip-topic" in advice
    report.add(Problem("content_changed", EVENTS, "changed", "a-case", 2))
    assert "security incident" in report.what_to_do()[0]
