"""GET /exports/cases.csv: the case list as CSV with the filters of GET /cases, read page by
page with the list's cursor, with the reader's columns and read rights, escaped and safe to
open in a spreadsheet. Real PostgreSQL."""

from __future__ import annotations

import csv
import io
from collections.abc import Iterator
from dataclasses import dataclass, field

import pytest
from fastapi.testclient import TestClient

from infra.bootstrap import Container, build_api
from services.api import exports
from services.auth import Role
from services.queries import CaseFilter, CaseListPage, CaseListQueries, PageCursor
from tests.case_types import shipped_document
from tests.conftest import auth
from tests.integration.test_case_types_api import ADMIN_CTX, open_case, project

TITLES = [
    '=HYPERLINK("http://evil.example","click")',
    "+33 1 23 45 67 89",
    "-2+3",
    "@SUM(A1:A2)",
    'Comma, "quotes" and\na new line',
    "Plain leak",
    "Fuite d'eau à Noël",
]
EXPORTED = 11  # cases in the list, over several pages of PAGE_SIZE


@dataclass
class CountingPages:
    """The real case list, counting the pages asked of it (the export must read it a page at
    a time, however long it is)."""

    inner: CaseListQueries
    limits: list[int] = field(default_factory=list)

    def list_cases(self, where: CaseFilter, limit: int, cursor: PageCursor | None) -> CaseListPage:
        self.limits.append(limit)
        return self.inner.list_cases(where, limit, cursor)

    def __getattr__(self, name: str) -> object:
        return getattr(self.inner, name)


@pytest.fixture
def counted(
    container: Container, monkeypatch: pytest.MonkeyPatch
) -> Iterator[tuple[TestClient, CountingPages]]:
    monkeypatch.setattr(exports, "PAGE_SIZE", 3)
    app = build_api(container)
    pages = CountingPages(app.state.deps.cases)
    app.state.deps.cases = pages
    with TestClient(app) as client:
        yield client, pages


def rows_of(text: str) -> list[dict[str, str]]:
    return list(csv.DictReader(io.StringIO(text)))


def test_an_export_streams_every_page_escaped_and_formula_safe(
    counted: tuple[TestClient, CountingPages], container: Container, keys: dict[Role, str]
) -> None:
    client, pages = counted
    handler = auth(keys[Role.HANDLER])
    for n in range(EXPORTED):
        body = {"case_type": "generic", "title": TITLES[n % len(TITLES)], "fields": {"n": n}}
        assert client.post("/cases", json=body, headers=handler).status_code == 201
    project(container)

    answer = client.get("/exports/cases.csv", headers={**handler, "Accept-Language": "fr"})
    assert answer.status_code == 200, answer.text
    assert answer.headers["Content-Type"] == "text/csv; charset=utf-8"
    assert answer.headers["Content-Disposition"] == 'attachment; filename="cases.csv"'
    assert pages.limits == [3, 3, 3, 3]  # 11 cases, read 3 at a time
    listed = client.get("/cases?limit=500", headers=handler).json()["cases"]
    exported = rows_of(answer.text)
    assert [row["id"] for row in exported] == [case["id"] for case in listed]  # newest first
    assert list(exported[0]) == [
        "id", "case_type", "case_type_label", "title", "status", "status_label", "priority",
        "priority_label", "queue", "assignee", "party_id", "escalations", "sla_breaches",
        "version", "opened_at", "updated_at",
    ]  # fmt: skip
    assert (exported[0]["status_label"], exported[0]["case_type_label"]) == (
        "Ouvert",
        "Dossier générique",
    )
    titles = {row["title"] for row in exported}
    assert titles == {
        '\'=HYPERLINK("http://evil.example","click")',
        "'+33 1 23 45 67 89",
        "'-2+3",
        "'@SUM(A1:A2)",
        'Comma, "quotes" and\na new line',  # escaped by the csv module, read back whole
        "Plain leak",
        "Fuite d'eau à Noël",
    }
    assert all(row["escalations"] == "0" for row in exported)  # numbers stay numbers


def test_an_export_takes_the_lists_filters(
    counted: tuple[TestClient, CountingPages], container: Container, keys: dict[Role, str]
) -> None:
    client, _ = counted
    handler = auth(keys[Role.HANDLER])
    ids = [open_case(client, keys[Role.HANDLER], "generic", {}) for _ in range(4)]
    closed = client.post(f"/cases/{ids[1]}/close", json={"reason": "done"}, headers=handler)
    assert closed.status_code == 200
    project(container)
    only_closed = rows_of(client.get("/exports/cases.csv?status=closed", headers=handler).text)
    assert [row["id"] for row in only_closed] == [ids[1]]
    assert only_closed[0]["status_label"] == "Closed"
    nothing = client.get("/exports/cases.csv?queue=nowhere", headers=handler)
    assert nothing.status_code == 200 and len(rows_of(nothing.text)) == 0
    assert nothing.text.startswith("id,case_type,")
    # refused before any line is sent, with a body that says why
    misspelt = client.get("/exports/cases.csv?stauts=closed", headers=handler)
    assert misspelt.status_code == 422 and "stauts" in misspelt.text
    unknown = client.get("/exports/cases.csv?case_type=nope", headers=handler)
    assert 400 <= unknown.status_code < 500 and "nope" in unknown.json()["detail"]


SECRET = "penicillin-SECRET-7"


def test_each_role_exports_its_own_view_columns_and_never_a_hidden_field(
    client: TestClient, container: Container, keys: dict[Role, str]
) -> None:
    document = shipped_document("patient_care")
    document["views"]["handler"]["columns"] = ["title", "priority", "fields.allergies"]
    document["views"]["integrator"]["columns"] = ["title", "fields.allergies", "fields.ward"]
    container.case_types.install(document, "test", ADMIN_CTX)
    fields = {"patient": "P-1", "admission_date": "2026-11-30", "allergies": SECRET}
    open_case(client, keys[Role.HANDLER], "patient_care", {**fields, "ward": "surgery"})
    project(container)
    path = "/exports/cases.csv?case_type=patient_care"

    by_handler = rows_of(client.get(path, headers=auth(keys[Role.HANDLER])).text)
    assert list(by_handler[0]) == ["id", "title", "priority", "priority_label", "fields.allergies"]
    assert by_handler[0]["fields.allergies"] == SECRET
    by_integrator = client.get(path, headers=auth(keys[Role.INTEGRATOR])).text
    assert SECRET not in by_integrator
    assert list(rows_of(by_integrator)[0]) == ["id", "title", "fields.ward", "fields.ward_label"]
    assert rows_of(by_integrator)[0]["fields.ward"] == "surgery"
    assert rows_of(by_integrator)[0]["fields.ward_label"] == "Surgery"  # a choice's label
    every_type = client.get("/exports/cases.csv", headers=auth(keys[Role.INTEGRATOR])).text
    assert SECRET not in every_type and "fields." not in every_type.splitlines()[0]
