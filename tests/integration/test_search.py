"""Case search over HTTP (``GET /cases``) on the read models' known workload: full-text
search in notes and titles, by party and by id; filters on every common attribute and on
the SLA state; each sort paged by cursor across ties; and the 422s of bad parameters."""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime
from typing import Any
from urllib.parse import urlencode

import pytest
from fastapi.testclient import TestClient

from infra.bootstrap import Container
from services.auth import Role
from tests.conftest import auth
from tests.integration.read_models_workload import T0, Workload, client, container, workload

__all__ = ["client", "container", "workload"]  # fixtures

RANK = {"low": 0, "normal": 1, "high": 2, "urgent": 3}


@pytest.fixture(scope="module")
def key(container: Container) -> str:
    return container.keys.create(Role.MANAGER, label="search")


def search(client: TestClient, key: str, workload: Workload, **params: Any) -> list[str]:
    """The letters of the cases found, in the order listed (one page)."""
    answer = client.get(f"/cases?{urlencode(params)}", headers=auth(key))
    assert answer.status_code == 200, answer.text
    return workload.letters(c["id"] for c in answer.json()["cases"])


def test_full_text_search_reads_notes_titles_and_finds_ids_and_parties(
    client: TestClient, key: str, workload: Workload
) -> None:
    assert search(client, key, workload, q="drums") == ["G"]  # a word of a note
    assert search(client, key, workload, q="DRUMS night") == ["G"]  # every word, any case
    assert search(client, key, workload, q='"water leak"') == ["F"]  # a phrase of a title
    assert search(client, key, workload, q="pipe or window") == ["E", "D"]
    assert search(client, key, workload, q="roof -hail") == ["A"]
    assert search(client, key, workload, q="P-42") == ["A", "F"]  # a party's id
    assert search(client, key, workload, q=workload.ids["D"]) == ["D"]  # a case's id
    assert search(client, key, workload, q="nothing-like-this") == []


def test_filters_on_every_common_attribute_and_on_sla_state(
    client: TestClient, key: str, workload: Workload
) -> None:
    def found(**params: Any) -> set[str]:
        return set(search(client, key, workload, **params))

    assert found(unassigned="true") == {"E", "F", "G"}
    assert found(final="false") == {"B", "C", "D", "E"}
    assert found(final="true", case_type="generic") == {"F", "G"}
    assert found(party_id="P-42") == {"A", "F"}
    assert found(priority="urgent") == {"D"}  # set by the breach
    assert found(queue="supervisors") == {"D"}
    assert found(status="on_hold") == {"E"}
    assert found(assignee="bob") == {"C", "D"}
    assert found(opened_from=T0.isoformat()) == {"A", "B", "C", "D", "E"}
    assert found(opened_to=T0.isoformat()) == {"F", "G"}
    assert found(closed_from="2026-10-10T00:00:00Z", closed_to="2026-10-20T00:00:00Z") == {"G"}
    assert found(sla_state="breached") == {"D"}
    assert found(sla_state="at_risk") == {"B", "E"}  # B warned; E: 5 of 40 minutes left
    assert found(sla_state="on_time") == {"C"}
    assert found(sla_state="at_risk", assignee="ann", q="hail") == {"B"}


SORTS: dict[str, Callable[[dict[str, Any]], Any]] = {
    "opened_at": lambda r: (r["opened_at"], r["case_id"]),
    "updated_at": lambda r: (r["updated_at"], r["case_id"]),
    "priority": lambda r: (RANK[r["priority"]], r["opened_at"], r["case_id"]),
}


def expected_order(container: Container, sort: str, order: str) -> list[str]:
    """Every case in the order the sort promises (ties broken by case id)."""
    with container.pool.connection() as conn:
        rows = conn.execute("SELECT * FROM case_list").fetchall()
    if sort == "sla_deadline":  # cases without a deadline last, in either order
        dated = sorted(
            (r for r in rows if r["sla_deadline"]),
            key=lambda r: (r["sla_deadline"], r["case_id"]),
            reverse=order == "desc",
        )
        undated = sorted(
            (r for r in rows if not r["sla_deadline"]),
            key=lambda r: r["case_id"],
            reverse=order == "desc",
        )
        return [str(r["case_id"]) for r in dated + undated]
    ordered = sorted(rows, key=SORTS[sort], reverse=order == "desc")
    return [str(r["case_id"]) for r in ordered]


@pytest.mark.parametrize(
    ("sort", "order"),
    [
        ("opened_at", "desc"),
        ("opened_at", "asc"),
        ("updated_at", "desc"),
        ("sla_deadline", "asc"),
        ("sla_deadline", "desc"),
        ("priority", "desc"),
        ("priority", "asc"),
    ],
)
def test_each_sort_pages_by_cursor_through_every_case_once_across_ties(
    client: TestClient, key: str, container: Container, sort: str, order: str
) -> None:
    listed, cursor = [], None
    for _ in range(10):
        params = {"sort": sort, "order": order, "limit": 2} | ({"cursor": cursor} if cursor else {})
        answer = client.get(f"/cases?{urlencode(params)}", headers=auth(key))
        assert answer.status_code == 200, answer.text
        listed += [c["id"] for c in answer.json()["cases"]]
        cursor = answer.json()["next_cursor"]
        if cursor is None:
            break
    assert listed == expected_order(container, sort, order)


def test_the_default_order_is_newest_first_and_urgency_is_the_nearest_deadline(
    client: TestClient, key: str, workload: Workload
) -> None:
    newest = search(client, key, workload)
    assert newest[:1] == ["C"] and set(newest[-2:]) == {"F", "G"}
    urgent = search(client, key, workload, sort="sla_deadline", limit=4)
    assert urgent == ["D", "B", "E", "C"]  # D past due, then B (T0+43m), E (45m), C (49m)


def test_a_cursor_continues_only_the_sort_that_gave_it(client: TestClient, key: str) -> None:
    first = client.get("/cases?limit=1", headers=auth(key)).json()
    other = client.get(f"/cases?sort=updated_at&cursor={first['next_cursor']}", headers=auth(key))
    assert other.status_code == 422
    assert "sorted by opened_at desc, not by updated_at desc" in other.json()["detail"]
    flipped = client.get(f"/cases?order=asc&cursor={first['next_cursor']}", headers=auth(key))
    assert flipped.status_code == 422


@pytest.mark.parametrize(
    ("query", "says"),
    [
        ("assignee=ann&unassigned=true", "give one of them"),
        ("opened_from=2026-11-02T00:00:00Z&opened_to=2026-11-01T00:00:00Z", "not before"),
        ("opened_from=2026-11-02T00:00:00", "should match pattern"),  # no offset
        ("opened_to=1700000000", "should match pattern"),  # not seconds since 1970
        ("closed_from=2026-13-02T00:00:00Z", "not a date and time that exists"),
        ("sort=title", "opened_at"),
        ("order=up", "asc"),
        ("sla_state=late", "at_risk"),
        ("final=maybe", "bool"),
        ("q=" + "x" * 201, "at most 200"),
        ("cursor=bm9wZQ", "not one this API gave out"),
    ],
)
def test_bad_search_parameters_answer_422_saying_what_is_allowed(
    client: TestClient, key: str, query: str, says: str
) -> None:
    answer = client.get(f"/cases?{query}", headers=auth(key))
    assert answer.status_code == 422, answer.text
    assert says in answer.text


def test_the_csv_export_takes_the_search(client: TestClient, key: str, workload: Workload) -> None:
    answer = client.get("/exports/cases.csv?q=drums", headers=auth(key))
    assert answer.status_code == 200, answer.text
    lines = answer.text.strip().splitlines()
    assert len(lines) == 2 and lines[1].startswith(workload.ids["G"])


def test_an_opened_instant_is_kept_with_its_offset(
    client: TestClient, key: str, workload: Workload
) -> None:
    paris = datetime.fromisoformat("2026-11-02T10:00:00+01:00")  # T0 in Paris
    assert set(search(client, key, workload, opened_from=paris.isoformat())) == set("ABCDE")
