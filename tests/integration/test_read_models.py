"""The read models over HTTP, on a known mixed workload (tests/integration/
read_models_workload.py): counts with labels, the SLA status of open cases with time left,
cycle-time percentiles, throughput per day, workload per handler and queue, a party's
cases with their source, their CSV exports, and the 422s that say what is allowed."""

from __future__ import annotations

import csv
import io
from datetime import date, timedelta
from typing import Any

import pytest
from fastapi.testclient import TestClient

from infra.bootstrap import Container
from services.api import read_model_exports
from services.auth import Role
from tests.conftest import auth
from tests.integration.read_models_workload import (
    NOW,
    OCT_1,
    T0,
    Workload,
    client,
    container,
    workload,
)

__all__ = ["client", "container", "workload"]  # fixtures

DAY = 86_400.0


@pytest.fixture(scope="module")
def keys(container: Container) -> dict[Role, str]:
    return {role: container.keys.create(role, label=f"rm-{role.value}") for role in Role}


def get(client: TestClient, key: str, path: str, **headers: str) -> Any:
    answer = client.get(path, headers={**auth(key), **headers})
    assert answer.status_code == 200, answer.text
    return answer.json()


def test_counts_by_status_type_and_assignee_carry_labels_in_the_readers_language(
    client: TestClient, keys: dict[Role, str]
) -> None:
    key = keys[Role.AUDITOR]
    by_status = get(client, key, "/read-models/counts?by=status")["items"]
    assert by_status == [
        {"key": "closed", "label": "Closed", "count": 3},
        {"key": "open", "label": "Open", "count": 3},
        {"key": "on_hold", "label": "On hold", "count": 1},
    ]
    french = get(client, key, "/read-models/counts?by=status", **{"Accept-Language": "fr"})
    assert [i["label"] for i in french["items"]] == ["Clôturé", "Ouvert", "En pause"]
    by_type = get(client, key, "/read-models/counts?by=case_type")["items"]
    assert by_type == [
        {"key": "rm_probe", "label": "Probe", "count": 5},
        {"key": "generic", "label": "Generic case", "count": 2},
    ]
    by_assignee = get(client, key, "/read-models/counts?by=assignee")["items"]
    assert by_assignee == [
        {"key": None, "label": "Unassigned", "count": 3},
        {"key": "ann", "label": "ann", "count": 2},
        {"key": "bob", "label": "bob", "count": 2},
    ]
    one_type = get(client, key, "/read-models/counts?by=queue&case_type=generic")["items"]
    assert one_type == [{"key": None, "label": "No queue", "count": 2}]


def test_sla_status_lists_open_cases_by_their_worst_clock_with_time_left(
    client: TestClient, keys: dict[Role, str], workload: Workload
) -> None:
    key = keys[Role.HANDLER]

    def cases(state: str) -> list[tuple[str, str, float]]:
        items = get(client, key, f"/read-models/sla-status?state={state}")["items"]
        return [(workload.letter(i["case_id"]), i["sla"], i["time_left_s"]) for i in items]

    # D's respond clock passed its deadline half an hour ago (its resolve clock just now).
    assert cases("breached") == [("D", "respond", -30 * 60.0)]
    # B's respond clock reached its warning; E's resolve clock has 5 of its 40 minutes left
    # (its respond clock is paused: not judged).
    assert cases("at_risk") == [("B", "respond", 3 * 60.0), ("E", "resolve", 5 * 60.0)]
    assert cases("on_time") == [("C", "respond", 9 * 60.0)]
    [breach] = get(client, key, "/read-models/sla-status?state=breached")["items"]
    assert breach["title"] == "Broken window"
    assert (breach["assignee"], breach["queue"], breach["case_type"]) == (
        "bob",
        "supervisors",
        "rm_probe",
    )
    mine = get(client, key, "/read-models/sla-status?assignee=ann")["items"]
    assert [(workload.letter(i["case_id"]), i["state"]) for i in mine] == [("B", "at_risk")]
    queue = get(client, key, "/read-models/sla-status?queue=supervisors&case_type=rm_probe")
    assert [(i["sla"], i["state"]) for i in queue["items"]] == [("respond", "breached")]


def test_sla_status_pages_by_cursor_and_refuses_a_cursor_of_another_state(
    client: TestClient, keys: dict[Role, str], workload: Workload
) -> None:
    key, seen, cursor = keys[Role.MANAGER], [], ""
    while True:
        page = get(client, key, f"/read-models/sla-status?limit=1{cursor}")
        seen += [(workload.letter(i["case_id"]), i["sla"], i["state"]) for i in page["items"]]
        if page["next_cursor"] is None:
            break
        cursor = f"&cursor={page['next_cursor']}"
    assert seen == [  # by each case's nearest deadline
        ("D", "respond", "breached"),
        ("B", "respond", "at_risk"),
        ("E", "resolve", "at_risk"),
        ("C", "respond", "on_time"),
    ]
    first = get(client, key, "/read-models/sla-status?state=at_risk&limit=1")
    refused = client.get(
        f"/read-models/sla-status?state=breached&cursor={first['next_cursor']}", headers=auth(key)
    )
    assert refused.status_code == 422
    assert "at_risk cases, not of breached" in refused.json()["detail"]


def test_cycle_times_are_percentiles_per_case_type_month_and_state(
    client: TestClient, keys: dict[Role, str]
) -> None:
    key = keys[Role.MANAGER]
    by_type = get(client, key, "/read-models/cycle-times")["items"]
    # generic: G closed after 14 days, F after 31; A (rm_probe) closed again 3 minutes after
    # it opened (its first close, undone by the reopen, does not count).
    assert by_type == [
        {
            "case_type": "generic",
            "state": None,
            "month": None,
            "p50_s": pytest.approx(22.5 * DAY),
            "p90_s": pytest.approx((14 + 0.9 * 17) * DAY),
            "p99_s": pytest.approx((14 + 0.99 * 17) * DAY),
            "count": 2,
        },
        {
            "case_type": "rm_probe",
            "state": None,
            "month": None,
            "p50_s": 180.0,
            "p90_s": 180.0,
            "p99_s": 180.0,
            "count": 1,
        },
    ]
    by_month = get(client, key, "/read-models/cycle-times?by=month&case_type=generic")["items"]
    assert [(i["month"], i["p50_s"], i["count"]) for i in by_month] == [
        ("2026-10", 14 * DAY, 1),
        ("2026-11", 31 * DAY, 1),
    ]
    by_state = get(client, key, "/read-models/cycle-times?by=state&case_type=rm_probe")["items"]
    # Stays left: A in open 30 s then 60 s, E in open 60 s; A in working 30 s, in done 60 s.
    assert [(i["state"], i["p50_s"], i["count"]) for i in by_state] == [
        ("done", 60.0, 1),
        ("open", 60.0, 3),
        ("working", 30.0, 1),
    ]


def test_throughput_counts_each_day_opened_closed_and_reopened(
    client: TestClient, keys: dict[Role, str]
) -> None:
    days = get(client, keys[Role.AUDITOR], "/read-models/throughput?days=40")["items"]
    assert len(days) == 40
    assert days[0]["day"] == (NOW.date() - timedelta(days=39)).isoformat()
    busy = {d["day"]: (d["opened"], d["closed"], d["reopened"]) for d in days if any(d.values())}
    busy = {day: figures for day, figures in busy.items() if figures != (0, 0, 0)}
    # A is closed twice on T0's day (finished, then reopened and closed): two closes.
    assert busy == {
        OCT_1.date().isoformat(): (2, 0, 0),
        date(2026, 10, 15).isoformat(): (0, 1, 0),
        date(2026, 11, 1).isoformat(): (0, 1, 0),
        T0.date().isoformat(): (5, 2, 1),
    }
    generic = get(client, keys[Role.AUDITOR], "/read-models/throughput?days=3&case_type=generic")
    assert [d["closed"] for d in generic["items"]] == [0, 1, 0]


def test_workload_per_handler_and_queue_counts_open_at_risk_and_breached_cases(
    client: TestClient, keys: dict[Role, str]
) -> None:
    key = keys[Role.HANDLER]
    by_assignee = get(client, key, "/read-models/workload?by=assignee")["items"]
    assert by_assignee == [
        {"key": "bob", "label": "bob", "open": 2, "at_risk": 0, "breached": 1},
        {"key": "ann", "label": "ann", "open": 1, "at_risk": 1, "breached": 0},
        {"key": None, "label": "Unassigned", "open": 1, "at_risk": 1, "breached": 0},
    ]
    by_queue = get(client, key, "/read-models/workload?by=queue", **{"Accept-Language": "fr"})
    assert by_queue["items"] == [
        {"key": None, "label": "Sans file", "open": 3, "at_risk": 2, "breached": 0},
        {"key": "supervisors", "label": "supervisors", "open": 1, "at_risk": 0, "breached": 1},
    ]


def test_a_partys_cases_span_case_types_with_their_source_and_the_roles_fields(
    client: TestClient, keys: dict[Role, str], workload: Workload
) -> None:
    seen = get(client, keys[Role.AUDITOR], "/parties/P-42/cases")
    assert seen["party_id"] == "P-42"
    cases = {workload.letter(c["id"]): c for c in seen["cases"]}
    assert list(cases) == ["A", "F"]  # newest first, across case types
    assert cases["F"]["source"] == {"system": "crm", "record_id": "R-1"}
    assert cases["F"]["case_type_label"] == "Generic case"
    assert cases["A"]["source"] is None
    assert (cases["A"]["final"], cases["A"]["status_label"]) == (True, "Closed")
    assert cases["A"]["fields"] == {"damage": "roof"}  # the auditor's view hides "secret"
    admin = get(client, keys[Role.ADMIN], "/parties/P-42/cases?sort=opened_at&order=asc&limit=1")
    assert [workload.letter(c["id"]) for c in admin["cases"]] == ["F"]
    rest = get(
        client, keys[Role.ADMIN], f"/parties/P-42/cases?order=asc&cursor={admin['next_cursor']}"
    )
    assert [(workload.letter(c["id"]), c["fields"]) for c in rest["cases"]] == [
        ("A", {"damage": "roof", "secret": "s3"})
    ]
    assert get(client, keys[Role.ADMIN], "/parties/nobody/cases")["cases"] == []


def test_the_sla_status_exports_as_csv_read_page_by_page(
    client: TestClient, keys: dict[Role, str], monkeypatch: pytest.MonkeyPatch
) -> None:
    key = keys[Role.MANAGER]
    listed = get(client, key, "/read-models/sla-status?limit=500")["items"]
    models = client.app.state.deps.read_models  # type: ignore[attr-defined]
    reads: list[int] = []
    real = models.store.sla_status

    def counted(*args: Any) -> Any:
        reads.append(args[2])
        return real(*args)

    monkeypatch.setattr(read_model_exports, "PAGE_SIZE", 2)
    monkeypatch.setattr(models.store, "sla_status", counted)
    with client.stream("GET", "/exports/sla-status.csv", headers=auth(key)) as answer:
        assert answer.status_code == 200
        assert answer.headers["content-type"].startswith("text/csv")
        text = "".join(answer.iter_text())
    rows = list(csv.DictReader(io.StringIO(text)))
    assert [(r["case_id"], r["sla"], r["state"]) for r in rows] == [
        (i["case_id"], i["sla"], i["state"]) for i in listed
    ]
    assert float(rows[0]["time_left_s"]) == listed[0]["time_left_s"]
    assert reads == [2, 2]  # four cases, two per read: never all at once


def test_every_read_model_exports_as_csv_with_the_same_figures(
    client: TestClient, keys: dict[Role, str]
) -> None:
    key = keys[Role.AUDITOR]
    for name, query in (
        ("counts", "by=case_type"),
        ("workload", "by=queue"),
        ("throughput", "days=3"),
        ("cycle-times", "by=month"),
    ):
        items = get(client, key, f"/read-models/{name}?{query}")["items"]
        answer = client.get(f"/exports/{name}.csv?{query}", headers=auth(key))
        assert answer.status_code == 200, answer.text
        rows = list(csv.reader(io.StringIO(answer.text)))
        assert rows[0] == list(items[0])
        assert len(rows) == len(items) + 1
        assert rows[1] == ["" if v is None else str(v) for v in items[0].values()]


@pytest.mark.parametrize(
    ("path", "says"),
    [
        ("/read-models/counts?by=colour", "status"),
        ("/read-models/sla-status?state=late", "on_time"),
        ("/read-models/sla-status?limit=0", "greater than or equal to 1"),
        ("/read-models/sla-status?cursor=bm9wZQ", "not one this API gave out"),
        ("/read-models/cycle-times?by=week", "case_type"),
        ("/read-models/throughput?days=0", "greater than or equal to 1"),
        ("/read-models/throughput?days=400", "less than or equal to 366"),
        ("/read-models/workload?by=status", "assignee"),
        ("/read-models/workload?by=queue&colour=red", "unknown query parameter"),
        ("/parties/P-42/cases?sort=title", "opened_at"),
        ("/exports/sla-status.csv?state=late", "on_time"),
    ],
)
def test_bad_parameters_answer_422_saying_what_is_allowed(
    client: TestClient, keys: dict[Role, str], path: str, says: str
) -> None:
    answer = client.get(path, headers=auth(keys[Role.HANDLER]))
    assert answer.status_code == 422, answer.text
    assert says in answer.text


def test_read_models_need_a_key(client: TestClient) -> None:
    assert client.get("/read-models/counts").status_code == 401
    assert client.get("/exports/workload.csv").status_code == 401
