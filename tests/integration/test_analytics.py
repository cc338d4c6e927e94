"""The ``analytics`` schema on the read models' known workload: its views answer what the
API answers, with labels beside the keys; they survive a rebuild's swap (recreated in its
transaction, still granted); labels follow a newly published case-type version; and an
analyst role (``caseledger analysts grant``) reads the views and nothing else, and cannot
write."""

from __future__ import annotations

import re
import subprocess
import sys
from collections.abc import Iterator
from datetime import date
from typing import Any
from uuid import uuid4

import psycopg
import pytest
from psycopg.rows import dict_row

from domain.errors import DomainError
from infra.analyst_roles import grant_analyst, revoke_analyst
from infra.analytics import VIEWS
from infra.bootstrap import Container
from infra.projection_rebuild import Rebuilder
from tests.conftest import settings_env
from tests.integration.read_models_workload import (
    ADMIN,
    PROBE,
    T0,
    Workload,
    build_workload,
    container,
)
from tests.integration.test_analytics_doc import DOC

__all__ = ["container"]  # fixture

DAY = 86_400.0


@pytest.fixture(scope="module")
def workload(container: Container) -> Workload:
    built = build_workload(container)
    # The workload published rm_probe after this process started: its labels reach
    # analytics.labels at the next look (the read-model API looks before each answer).
    container.analytics.refresh_labels(force=True)
    return built


def rows(container: Container, sql: str, *params: Any) -> list[dict[str, Any]]:
    with container.pool.connection() as conn:
        return [dict(r) for r in conn.execute(sql.encode(), params).fetchall()]


@pytest.fixture
def analyst(container: Container, pg_admin_dsn: str) -> Iterator[tuple[str, str]]:
    """A role granted as ``caseledger analysts grant`` does: its name and its URL."""
    name = f"analyst_{uuid4().hex[:8]}"
    try:
        granted = grant_analyst(container.pool, container.settings.dsn, name, "s3cret pass")
        yield name, granted.url
    finally:
        with psycopg.connect(pg_admin_dsn, autocommit=True) as conn:
            exists = conn.execute("SELECT 1 FROM pg_roles WHERE rolname = %s", (name,))
            if exists.fetchone():
                revoke_analyst(container.pool, name)


def test_the_cases_view_has_labels_closing_and_cycle_time(
    container: Container, workload: Workload
) -> None:
    seen = {
        workload.letter(r["case_id"]): r for r in rows(container, "SELECT * FROM analytics.cases")
    }
    assert len(seen) == 7
    a, e, f = seen["A"], seen["E"], seen["F"]
    assert (a["case_type_label"], a["status_label"], a["final"], a["cycle_time_s"]) == (
        "Probe",
        "Closed",
        True,
        180.0,
    )
    assert (a["reopen_count"], a["closed_at"]) == (1, T0.replace(minute=3))
    assert (e["status_label"], e["final"], e["closed_at"], e["cycle_time_s"]) == (
        "On hold",
        False,
        None,
        None,
    )
    assert (f["source_system"], f["source_record_id"], f["case_type_label"]) == (
        "crm",
        "R-1",
        "Generic case",
    )
    assert seen["D"]["priority_label"] == "Urgent"


def test_the_status_history_view_tells_each_stay_with_labels_and_duration(
    container: Container, workload: Workload
) -> None:
    stays = rows(
        container,
        "SELECT seq, status_label, from_status_label, kind, transition, transition_label,"
        " duration_s, final FROM analytics.status_history WHERE case_id = %s ORDER BY seq",
        workload.ids["A"],
    )
    assert stays == [
        {"seq": 1, "status_label": "Open", "from_status_label": None, "kind": "opened",
         "transition": None, "transition_label": None, "duration_s": 30.0, "final": False},
        {"seq": 2, "status_label": "Working", "from_status_label": "Open", "kind": "transition",
         "transition": "start", "transition_label": "Start", "duration_s": 30.0, "final": False},
        {"seq": 3, "status_label": "Done", "from_status_label": "Working", "kind": "transition",
         "transition": "finish", "transition_label": "finish", "duration_s": 60.0, "final": True},
        {"seq": 4, "status_label": "Open", "from_status_label": "Done", "kind": "reopened",
         "transition": None, "transition_label": None, "duration_s": 60.0, "final": False},
        {"seq": 5, "status_label": "Closed", "from_status_label": "Open", "kind": "closed",
         "transition": None, "transition_label": None, "duration_s": None, "final": True},
    ]  # fmt: skip


def test_sla_outcomes_answer_breaches_per_queue(container: Container, workload: Workload) -> None:
    """The document's sample: SLA breaches in a week, per queue."""
    breaches = rows(
        container,
        "SELECT queue, count(*) AS breaches FROM analytics.sla_outcomes"
        " WHERE outcome = 'breached' AND at >= %s AND at < %s GROUP BY queue",
        T0,
        T0.replace(day=9),
    )
    assert breaches == [{"queue": "supervisors", "breaches": 2}]
    started = rows(
        container,
        "SELECT sla, outcome, milestone FROM analytics.sla_outcomes WHERE case_id = %s"
        " ORDER BY at, sla, milestone",
        workload.ids["B"],
    )
    assert started == [
        {"sla": "resolve", "outcome": "started", "milestone": "started"},
        {"sla": "respond", "outcome": "started", "milestone": "started"},
        {"sla": "respond", "outcome": "warned", "milestone": "warning:50"},
    ]


def test_the_aggregate_views_agree_with_the_api_figures(
    container: Container, workload: Workload
) -> None:
    cycle = rows(
        container,
        "SELECT month, p50_s, count FROM analytics.cycle_times"
        " WHERE case_type = 'generic' AND state IS NULL ORDER BY month NULLS FIRST",
    )
    assert cycle == [
        {"month": None, "p50_s": pytest.approx(22.5 * DAY), "count": 2},
        {"month": date(2026, 10, 1), "p50_s": 14 * DAY, "count": 1},
        {"month": date(2026, 11, 1), "p50_s": 31 * DAY, "count": 1},
    ]
    daily = rows(
        container,
        "SELECT day, opened, closed, reopened FROM analytics.throughput_daily"
        " WHERE case_type = 'rm_probe'",
    )
    assert daily == [{"day": T0.date(), "opened": 5, "closed": 2, "reopened": 1}]
    # The views judge SLA clocks at the database's now(), long after the workload's day:
    # every running clock is past its deadline by then.
    clocks = rows(container, "SELECT case_id, sla, state FROM analytics.sla_status")
    assert sorted((workload.letter(c["case_id"]), c["sla"], c["state"]) for c in clocks) == [
        ("B", "resolve", "breached"),
        ("B", "respond", "breached"),
        ("C", "resolve", "breached"),
        ("C", "respond", "breached"),
        ("D", "resolve", "breached"),
        ("D", "respond", "breached"),
        ("E", "resolve", "breached"),
    ]
    queues = rows(
        container,
        "SELECT key, sum(open_cases)::int AS open, sum(breached)::int AS breached"
        " FROM analytics.workload WHERE dimension = 'queue' GROUP BY key ORDER BY key",
    )
    assert queues == [
        {"key": "supervisors", "open": 1, "breached": 1},
        {"key": None, "open": 3, "breached": 3},
    ]


def test_the_views_survive_a_rebuild_swap_still_granted(
    container: Container, workload: Workload, analyst: tuple[str, str]
) -> None:
    before = rows(container, "SELECT * FROM analytics.cases ORDER BY case_id")
    for name in ("case_list", "case_history"):
        runner = container.projections.runner(name)
        Rebuilder(runner, container.projections.after_swap).rebuild()
    assert rows(container, "SELECT * FROM analytics.cases ORDER BY case_id") == before
    _, url = analyst
    with psycopg.connect(url, row_factory=dict_row) as conn:
        for view in VIEWS:
            conn.execute(f"SELECT * FROM analytics.{view} LIMIT 1".encode()).fetchall()
        (found,) = conn.execute("SELECT count(*) AS n FROM analytics.status_history").fetchall()
        assert found["n"] > 0


def test_an_analyst_reads_the_analytics_views_and_nothing_else_and_cannot_write(
    container: Container, workload: Workload, analyst: tuple[str, str]
) -> None:
    _, url = analyst
    with psycopg.connect(url, autocommit=True) as conn:
        for view in [*VIEWS, "labels"]:
            conn.execute(f"SELECT * FROM analytics.{view} LIMIT 1".encode()).fetchall()
        assert conn.execute("SHOW default_transaction_read_only").fetchone() == ("on",)
        conn.execute("SET default_transaction_read_only = off")  # it may; it still cannot:
        for table in ("case_list", "status_history", "caseledger_events", "api_keys", "secrets"):
            with pytest.raises(psycopg.errors.InsufficientPrivilege):
                conn.execute(f"SELECT * FROM public.{table} LIMIT 1".encode())
        for statement in (
            "INSERT INTO analytics.labels VALUES ('x', 1, 'state', 'x', 'en', 'X')",
            "DELETE FROM analytics.labels",
            "CREATE TABLE analytics.mine (x int)",
            "CREATE TABLE public.mine (x int)",
            "CREATE VIEW analytics.mine AS SELECT 1",
            "DROP VIEW analytics.cases",
        ):
            with pytest.raises(psycopg.errors.InsufficientPrivilege):
                conn.execute(statement.encode())


def test_the_cli_grants_and_revokes_a_role_whose_url_connects(
    container: Container, workload: Workload, pg_admin_dsn: str
) -> None:
    name = f"bi_{uuid4().hex[:8]}"
    env = settings_env(container.settings)

    def cli(*args: str, stdin: str = "") -> subprocess.CompletedProcess[str]:
        command = [sys.executable, "-m", "infra.cli", "analysts", *args]
        return subprocess.run(
            command, env=env, input=stdin, text=True, capture_output=True, check=False
        )

    try:
        granted = cli("grant", name, "--password-from-stdin", stdin="p@ss:w/rd\n")
        assert granted.returncode == 0, granted.stderr
        url = granted.stdout.strip().splitlines()[-1]
        assert url.startswith(f"postgresql://{name}:p%40ss%3Aw%2Frd@")
        with psycopg.connect(url) as conn:
            assert conn.execute("SELECT count(*) FROM analytics.cases").fetchone() == (7,)
        revoked = cli("revoke", name)
        assert revoked.returncode == 0, revoked.stderr
        assert f"role {name} dropped" in revoked.stdout
    finally:
        with psycopg.connect(pg_admin_dsn, autocommit=True) as conn:
            left = conn.execute("SELECT 1 FROM pg_roles WHERE rolname = %s", (name,)).fetchone()
            if left:
                revoke_analyst(container.pool, name)
            assert left is None, "the CLI left the role behind"


def test_a_grant_again_updates_the_role_and_other_roles_are_never_touched(
    container: Container, analyst: tuple[str, str]
) -> None:
    name, _ = analyst
    again = grant_analyst(container.pool, container.settings.dsn, name, None)
    assert not again.created and f"postgresql://{name}:" in again.url
    for other in ("postgres", "pg_monitor"):
        with pytest.raises(DomainError, match=r"was not made by|cannot name"):
            grant_analyst(container.pool, container.settings.dsn, other, "x")
        with pytest.raises(DomainError):
            revoke_analyst(container.pool, other)
    with pytest.raises(DomainError, match="cannot name"):
        grant_analyst(container.pool, container.settings.dsn, 'x"; DROP TABLE case_list; --', "x")


def test_labels_of_a_newly_published_version_reach_the_views(
    container: Container, workload: Workload
) -> None:
    states = {**PROBE["states"], "on_hold": {"labels": {"en": "Paused", "fr": "Suspendu"}}}
    relabelled = {**PROBE, "states": states}
    version = container.case_types.install(relabelled, "new label", ADMIN)
    assert container.analytics.refresh_labels(force=True) == 1
    labels = rows(
        container,
        "SELECT case_type_version, language, label FROM analytics.labels"
        " WHERE case_type = 'rm_probe' AND kind = 'state' AND key = 'on_hold'"
        " ORDER BY 1, 2",
    )
    assert labels == [
        {"case_type_version": 1, "language": "en", "label": "On hold"},
        {"case_type_version": 1, "language": "fr", "label": "En pause"},
        {"case_type_version": version, "language": "en", "label": "Paused"},
        {"case_type_version": version, "language": "fr", "label": "Suspendu"},
    ]
    # Cases keep the labels of the version they run under; the latest is in current_labels.
    [e] = rows(
        container, "SELECT status_label FROM analytics.cases WHERE case_id = %s", workload.ids["E"]
    )
    assert e["status_label"] == "On hold"
    [latest] = rows(
        container,
        "SELECT label FROM analytics.current_labels WHERE case_type = 'rm_probe'"
        " AND kind = 'state' AND key = 'on_hold' AND language = 'en'",
    )
    assert latest["label"] == "Paused"
    assert container.analytics.refresh_labels(force=True) == 0  # nothing new


def doc_samples() -> list[str]:
    """The sample queries of docs/read-models.md that read the analytics schema."""
    text = DOC.read_text()
    fenced = re.findall(r"```sql\n(.*?)```", text, re.DOTALL)
    inline = re.findall(r"`(SELECT [^`]+)`", text)
    return [" ".join(q.split()) for q in fenced + inline if "analytics." in q]


def test_the_documents_sample_queries_run_as_an_analyst(
    workload: Workload, analyst: tuple[str, str]
) -> None:
    samples = doc_samples()
    shown = {view for view in [*VIEWS, "labels"] if any(f"analytics.{view} " in q for q in samples)}
    assert shown >= set(VIEWS) - {"current_labels"} | {"labels"}, "a view without a sample"
    _, url = analyst
    with psycopg.connect(url, autocommit=True) as conn:
        for sample in samples:
            conn.execute(sample.encode()).fetchall()


def test_views_are_replaced_only_when_their_sql_changed(container: Container) -> None:
    """A process start leaves the views alone (a BI query reading them is not waited for),
    and recreates one that is missing."""

    def oids() -> dict[str, int]:
        found = rows(
            container,
            "SELECT c.relname, c.oid::int AS oid FROM pg_class c"
            " JOIN pg_namespace n ON n.oid = c.relnamespace WHERE n.nspname = 'analytics'",
        )
        return {r["relname"]: r["oid"] for r in found}

    before = oids()
    container.analytics.create()
    assert oids() == before
    with container.pool.connection() as conn:
        conn.execute("DROP VIEW analytics.workload")
    container.analytics.create()
    after = oids()
    assert set(after) == set(before) and after["workload"] != before["workload"]
    assert {k: v for k, v in after.items() if k != "workload"} == {
        k: v for k, v in before.items() if k != "workload"
    }
