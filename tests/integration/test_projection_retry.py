"""A poison event holds its case, in order, until it is retried after a fix (issue 11)."""

from __future__ import annotations

import json
from typing import Any
from uuid import UUID

from fastapi.testclient import TestClient
from typer.testing import CliRunner

from domain.envelope import EventEnvelope
from infra.bootstrap import Container
from infra.cli import app
from infra.projection_set import ProjectionSet, final_states
from infra.settings import Settings
from projections.base import CaseRows, Table
from projections.case_list import CASE_LIST, CaseListProjection
from services.auth import Role
from services.projection_admin import RetryOutcome
from tests.integration.helpers import CTX, open_cases
from tests.integration.test_poison_events import _poisoned_notification

FLAKY = Table(
    name="flaky_list",
    columns=CASE_LIST.columns,
    key=CASE_LIST.key,
    indexes=(("order", "opened_at DESC, case_id DESC"),),
)


class FlakyList(CaseListProjection):
    """The case list under another name, failing on notes that say "boom" while broken."""

    name = "flaky_list"
    tables = (FLAKY,)
    broken = True

    def apply(self, rows: CaseRows, event: EventEnvelope) -> None:
        if self.broken and event.data.get("text") == "boom":
            raise ValueError("cannot read a boom note")
        renamed: CaseRows = {CASE_LIST.name: rows[FLAKY.name]}
        super().apply(renamed, event)
        rows[FLAKY.name] = renamed[CASE_LIST.name]


def _flaky(container: Container) -> tuple[ProjectionSet, FlakyList]:
    projection = FlakyList(final_states(container.ledger))
    projections = ProjectionSet(container.pool, container.reader, [projection])
    projections.create_tables()
    return projections, projection


def _row(container: Container, case_id: str) -> dict[str, Any]:
    with container.pool.connection() as conn:
        row = conn.execute(
            "SELECT f.version, f.notes, f.note_text, v.blocked_version FROM flaky_list f"
            " JOIN flaky_list_versions v USING (case_id) WHERE case_id = %s",
            (case_id,),
        ).fetchone()
    assert row is not None
    return dict(row)


def test_later_events_wait_behind_the_poison_and_follow_in_order_after_a_retry(
    container: Container,
) -> None:
    projections, projection = _flaky(container)
    [held, other] = open_cases(container, 2)
    for text in ("first", "boom", "third", "fourth"):
        container.ledger.add_note(UUID(held), text, CTX, None)
    container.ledger.add_note(UUID(other), "boom? no", CTX, None)
    events, _ = container.reader.read_log(0, 1_000)

    projections.apply_batch(events)

    assert _row(container, held) == {
        "version": 2,
        "notes": 1,
        "note_text": "first",
        "blocked_version": 3,
    }
    assert _row(container, other)["version"] == 2
    with container.pool.connection() as conn:
        [letter] = projections.dead_letters(conn, "flaky_list")
    assert (letter.case_id, letter.case_version) == (held, 3)
    assert "cannot read a boom note" in letter.error

    assert projections.retry("flaky_list") == RetryOutcome(retried=1, moved_on=0, applied=0)
    assert _row(container, held)["blocked_version"] == 3  # not fixed yet: held again

    projection.broken = False
    assert projections.retry("flaky_list", UUID(held)) == RetryOutcome(
        retried=1, moved_on=1, applied=3
    )
    assert _row(container, held) == {
        "version": 5,
        "notes": 4,
        "note_text": "first\nboom\nthird\nfourth",
        "blocked_version": None,
    }
    with container.pool.connection() as conn:
        assert projections.dead_letters(conn, "flaky_list") == []


def test_the_cli_names_the_projections_and_shows_held_cases(
    container: Container, settings: Settings
) -> None:
    runner = CliRunner()
    env = settings.as_env()
    result = runner.invoke(app, ["projections", "retry", "nonesuch"], env=env)
    assert result.exit_code == 2
    assert "no projection called 'nonesuch'" in result.output
    assert "case_list" in result.output
    result = runner.invoke(app, ["projections", "status", "case_list"], env=env)
    assert result.exit_code == 0, result.output
    assert "held cases 0" in result.output


def test_the_cli_rebuilds_verifies_and_lists_with_what_it_found(
    container: Container, settings: Settings
) -> None:
    [case_id] = open_cases(container, 1, notes=2)
    container.projections.catch_up_from_store(container.reader.head(), 1_000)
    runner, env = CliRunner(), settings.as_env()

    rebuilt = runner.invoke(app, ["projections", "rebuild", "case_history"], env=env)
    assert rebuilt.exit_code == 0, rebuilt.output
    assert "case_history rebuilt: 3 events applied" in rebuilt.output
    assert "swapped in" in rebuilt.output
    verified = runner.invoke(app, ["projections", "verify", "case_list"], env=env)
    assert verified.exit_code == 0, verified.output
    assert "equal a rebuild from the store, row for row" in verified.output

    with container.pool.connection() as conn:
        conn.execute("UPDATE case_list SET notes = 7 WHERE case_id = %s", (case_id,))
    drifted = runner.invoke(app, ["projections", "verify", "case_list"], env=env)
    assert drifted.exit_code == 1
    assert "case_list: only in live:" in drifted.output
    assert '"notes": 7' in drifted.output
    assert "2 rows differ; `caseledger projections rebuild case_list`" in drifted.output

    listed = runner.invoke(app, ["projections", "list", "--json"], env=env)
    assert listed.exit_code == 0, listed.output
    rows = json.loads(listed.output)
    assert rows["case_history"]["rebuilt_at"] is not None
    assert rows["case_list"]["tables"] == ["case_list"]
    assert not rows["case_list"]["outdated"]


def test_the_api_shows_held_events_and_retries_them(
    container: Container, client: TestClient, keys: dict[Role, str]
) -> None:
    admin = {"Authorization": f"Bearer {keys[Role.ADMIN]}"}
    handler = {"Authorization": f"Bearer {keys[Role.HANDLER]}"}
    [case_id] = open_cases(container, 1)
    _poisoned_notification(container, UUID(case_id))
    container.projections.catch_up_from_store(container.reader.head(), 1_000)

    listed = client.get("/projections", headers=admin)
    assert listed.status_code == 200
    states = {p["name"]: p for p in listed.json()}
    assert set(states) == {"case_list", "case_history", "work_queues"}
    assert (states["work_queues"]["held_cases"], states["case_list"]["held_cases"]) == (1, 0)
    assert states["case_list"]["lag"] == 0
    assert client.get("/projections", headers=handler).status_code == 403

    [held] = client.get("/projections/work_queues/held", headers=admin).json()
    assert (held["case_id"], held["case_version"]) == (case_id, 2)
    assert held["event_type"] == "CaseNotificationRequested"

    refused = client.post("/projections/work_queues/retry", json={}, headers=handler)
    assert refused.status_code == 403
    missing = client.post("/projections/nonesuch/retry", json={}, headers=admin)
    assert missing.status_code == 404
    assert "work_queues" in missing.json()["hint"]
    bad = client.post("/projections/work_queues/retry", json={"case_id": "x"}, headers=admin)
    assert bad.status_code == 422
    again = client.post("/projections/work_queues/retry", json={"case_id": case_id}, headers=admin)
    assert again.status_code == 200
    assert again.json() == {"retried": 1, "moved_on": 0, "applied": 0}  # still poisoned
