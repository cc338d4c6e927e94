"""Bad input: a clear 4xx ``{detail, code, hint}``, never a 500, and nothing stored.

Every refusal is checked against the real PostgreSQL event store: the number of rows in
``stored_events`` must not change (design decision 5).
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any
from uuid import uuid4

import pytest
from fastapi.testclient import TestClient
from starlette.types import Message

from infra.bootstrap import Container, build_api
from services.auth import Role
from tests.conftest import auth, stored_event_count
from tests.shared_stack import container, keys

__all__ = ["container", "keys"]  # fixtures: one stack for the module

CASE = "{case}"  # replaced by the id of a case opened for the test
UNKNOWN = str(uuid4())
MAX_BODY = 1_048_576  # Settings.max_body_bytes as the tests' settings leave it
VALID = {"case_type": "generic", "title": "Broken window"}
_NO_BODY = object()


@dataclass(frozen=True)
class Bad:
    """One bad request and what its refusal must say."""

    method: str
    path: str
    status: int
    mentions: tuple[str, ...] = ()  # each must appear in detail or hint (case-insensitive)
    json: Any = _NO_BODY
    content: bytes | None = None
    role: Role | None = Role.ADMIN  # None: no Authorization header at all
    headers: dict[str, str] = field(default_factory=dict)
    code: str | None = None


def post(path: str, body: Any, status: int = 422, *mentions: str, **kw: Any) -> Bad:
    return Bad("POST", path, status, mentions, json=body, **kw)


def raw(path: str, content: bytes, status: int, *mentions: str, **kw: Any) -> Bad:
    headers = {"Content-Type": "application/json", **kw.pop("headers", {})}
    return Bad("POST", path, status, mentions, content=content, headers=headers, **kw)


def get(path: str, status: int, *mentions: str, **kw: Any) -> Bad:
    return Bad("GET", path, status, mentions, **kw)


def note(text: Any = "ok", **extra: Any) -> dict[str, Any]:
    return {"text": text, **extra}


def nested(depth: int) -> bytes:
    lists = b"[" * depth + b"]" * depth
    return b'{"case_type":"generic","title":"t","fields":{"a":' + lists + b"}}"


BAD = [
    # -- the body is not JSON, or not an object ------------------------------------------------
    pytest.param(
        raw(
            "/cases",
            b'{"case_type": "generic", "title": ',
            400,
            "not valid JSON",
            code="malformed_json",
        ),
        id="json-truncated",
    ),
    pytest.param(
        raw("/cases", b'{"case_type": "generic",}', 400, "JSON", code="malformed_json"),
        id="json-trailing-comma",
    ),
    pytest.param(
        raw("/cases", b"{'case_type': 'generic'}", 400, "JSON", code="malformed_json"),
        id="json-single-quotes",
    ),
    pytest.param(raw("/cases", b'{"title": "\xff\xfe"}', 400, "body"), id="json-not-utf8"),
    pytest.param(raw("/cases", nested(100_000), 400, "body"), id="json-nested-100k-deep"),
    pytest.param(raw("/cases", b"", 422, "body", "required"), id="body-empty"),
    pytest.param(post("/cases", [VALID], 422, "body"), id="body-a-list"),
    pytest.param(post("/cases", "generic", 422, "body"), id="body-a-string"),
    pytest.param(post("/cases", None, 422, "body"), id="body-null"),
    pytest.param(post("/cases", 42, 422, "body"), id="body-a-number"),
    pytest.param(
        raw(
            "/cases",
            json.dumps(VALID).encode(),
            422,
            "body",
            headers={"Content-Type": "text/plain"},
        ),
        id="body-not-declared-json",
    ),
    # -- wrong types ----------------------------------------------------------------------------
    pytest.param(post("/cases", {**VALID, "title": 42}, 422, "title", "string"), id="title-number"),
    pytest.param(post("/cases", {**VALID, "title": ["a"]}, 422, "title"), id="title-list"),
    pytest.param(post("/cases", {**VALID, "title": None}, 422, "title"), id="title-null"),
    pytest.param(post("/cases", {**VALID, "case_type": 1}, 422, "case_type"), id="case-type-num"),
    pytest.param(
        post("/cases", {**VALID, "fields": [1, 2]}, 422, "fields", "dict"), id="fields-list"
    ),
    pytest.param(post("/cases", {**VALID, "fields": "x"}, 422, "fields"), id="fields-string"),
    pytest.param(post("/cases", {**VALID, "party_id": 17}, 422, "party_id"), id="party-id-num"),
    pytest.param(
        post(f"/cases/{CASE}/notes", note(expected_version="abc"), 422, "expected_version"),
        id="expected-version-word",
    ),
    pytest.param(
        post(f"/cases/{CASE}/notes", note(expected_version="1"), 422, "expected_version"),
        id="expected-version-numeric-string",
    ),
    pytest.param(
        post(
            f"/cases/{CASE}/notes",
            note(expected_version=0),
            422,
            "expected_version",
            "greater than or equal to 1",
        ),
        id="expected-version-0",
    ),
    pytest.param(
        post(f"/cases/{CASE}/notes", note(expected_version=-3), 422, "expected_version"),
        id="expected-version-negative",
    ),
    pytest.param(
        post(f"/cases/{CASE}/notes", note(expected_version=1.5), 422, "expected_version"),
        id="expected-version-float",
    ),
    pytest.param(
        post(f"/cases/{CASE}/notes", note(expected_version=True), 422, "expected_version"),
        id="expected-version-bool",
    ),
    pytest.param(
        post(
            f"/cases/{CASE}/notes",
            note(expected_version=10**30),
            409,
            "version 1",
            code="version_conflict",
        ),
        id="expected-version-huge",
    ),
    pytest.param(post(f"/cases/{CASE}/notes", note(42), 422, "text"), id="note-text-number"),
    pytest.param(
        post(f"/cases/{CASE}/assign", {"assignee": ["bob"]}, 422, "assignee"), id="assignee-list"
    ),
    # -- unknown and missing fields -------------------------------------------------------------
    pytest.param(
        post("/cases", {**VALID, "colour": "red"}, 422, "colour", "extra"), id="unknown-field-open"
    ),
    pytest.param(
        post(f"/cases/{CASE}/notes", note(author="eve"), 422, "author", "extra"),
        id="unknown-field-note",
    ),
    pytest.param(
        post(f"/cases/{CASE}/close", {"reason": "x", "version": 1}, 422, "version"),
        id="unknown-field-close",
    ),
    pytest.param(
        post("/cases", {"case_type": "generic"}, 422, "title", "required"), id="missing-title"
    ),
    pytest.param(
        post("/cases", {"title": "t"}, 422, "case_type", "required"), id="missing-case-type"
    ),
    pytest.param(post("/cases", {}, 422, "title", "case_type"), id="missing-everything"),
    pytest.param(
        post(f"/cases/{CASE}/assign", {}, 422, "assignee", "required"), id="missing-assignee"
    ),
    pytest.param(
        post(f"/cases/{CASE}/transitions", {"reason": "x"}, 422, "transition", "required"),
        id="missing-transition",
    ),
    pytest.param(
        post(f"/cases/{CASE}/close", {}, 422, "reason", "required"), id="missing-close-reason"
    ),
    pytest.param(
        post(f"/cases/{CASE}/reopen", {}, 422, "reason", "required"), id="missing-reopen-reason"
    ),
    # -- values the rules refuse ----------------------------------------------------------------
    pytest.param(
        post(
            "/cases",
            {**VALID, "case_type": "claimz"},
            422,
            "claimz",
            "generic",
            code="unknown_case_type",
        ),
        id="unknown-case-type",
    ),
    pytest.param(post("/cases", {**VALID, "title": ""}, 422, "title"), id="title-empty"),
    pytest.param(
        post("/cases", {**VALID, "title": " \t\n "}, 422, "title", "blank", code="invalid_command"),
        id="title-whitespace",
    ),
    pytest.param(
        post("/cases", {**VALID, "title": "\u3000\u00a0"}, 422, "title", "blank"),
        id="title-unicode-whitespace",
    ),
    pytest.param(
        post(f"/cases/{CASE}/notes", note("   "), 422, "text", "blank"), id="note-whitespace"
    ),
    pytest.param(
        post(f"/cases/{CASE}/close", {"reason": "\n"}, 422, "reason", "blank"),
        id="close-reason-whitespace",
    ),
    pytest.param(
        post(f"/cases/{CASE}/assign", {"assignee": "  "}, 422, "assignee", "blank"),
        id="assignee-whitespace",
    ),
    pytest.param(
        post(
            f"/cases/{CASE}/transitions",
            {"transition": "finish"},
            422,
            "no transition 'finish'",
            "start_work, wait, resolve",
            code="invalid_command",
        ),
        id="unknown-transition",
    ),
    pytest.param(
        post(
            f"/cases/{CASE}/transitions",
            {"transition": "start_work", "fields": "x"},
            422,
            "fields",
        ),
        id="transition-fields-not-an-object",
    ),
    pytest.param(
        Bad("PATCH", f"/cases/{CASE}/fields", 422, ("fields",), json={"fields": []}),
        id="fields-not-an-object",
    ),
    pytest.param(
        post(f"/cases/{CASE}/reopen", {"reason": "x"}, 409, "not closed"), id="reopen-an-open-case"
    ),
    # -- unknown or malformed case ids ----------------------------------------------------------
    pytest.param(
        get(f"/cases/{UNKNOWN}", 404, UNKNOWN, code="case_not_found"), id="unknown-case-get"
    ),
    pytest.param(get(f"/cases/{UNKNOWN}/history", 404, UNKNOWN), id="unknown-case-history"),
    pytest.param(
        post(f"/cases/{UNKNOWN}/notes", note(), 404, UNKNOWN, code="case_not_found"),
        id="unknown-case-note",
    ),
    pytest.param(
        post(f"/cases/{UNKNOWN}/assign", {"assignee": "bob"}, 404, UNKNOWN),
        id="unknown-case-assign",
    ),
    pytest.param(
        post(f"/cases/{UNKNOWN}/close", {"reason": "x"}, 404, UNKNOWN), id="unknown-case-close"
    ),
    pytest.param(get("/cases/not-a-uuid", 422, "case_id", "UUID"), id="path-id-not-uuid"),
    pytest.param(get("/cases/12345/history", 422, "case_id"), id="path-id-number"),
    pytest.param(post("/cases/%00/notes", note(), 422, "case_id"), id="path-id-nul"),
    pytest.param(post(f"/cases/{UNKNOWN}x/notes", note(), 422, "case_id"), id="path-id-long"),
    # -- authentication and roles ---------------------------------------------------------------
    pytest.param(
        post("/cases", VALID, 401, "missing API key", "Authorization", role=None), id="no-key-open"
    ),
    pytest.param(get("/cases", 401, "missing API key", role=None), id="no-key-list"),
    pytest.param(get(f"/cases/{CASE}", 401, "missing API key", role=None), id="no-key-get"),
    pytest.param(
        post(
            "/cases",
            VALID,
            401,
            "unknown API key",
            role=None,
            headers={"Authorization": "Bearer cl_admin_not-a-real-key"},
        ),
        id="bad-key",
    ),
    pytest.param(
        post(
            "/cases",
            VALID,
            401,
            "API key",
            role=None,
            headers={"Authorization": "Basic YWRtaW46YWRtaW4="},
        ),
        id="basic-auth",
    ),
    pytest.param(
        post("/cases", VALID, 401, "API key", role=None, headers={"Authorization": "Bearer "}),
        id="empty-bearer",
    ),
    pytest.param(post("/cases", {"title": 5}, 401, "API key", role=None), id="no-key-and-bad-body"),
    pytest.param(
        post(
            "/cases",
            VALID,
            403,
            "auditor",
            "admin, handler, integrator, manager",
            role=Role.AUDITOR,
            code="http_403",
        ),
        id="auditor-opens-case",
    ),
    pytest.param(
        post(f"/cases/{CASE}/notes", note(), 403, "auditor", role=Role.AUDITOR),
        id="auditor-adds-note",
    ),
    pytest.param(
        post(
            f"/cases/{CASE}/reopen",
            {"reason": "x"},
            403,
            "handler",
            "admin, manager",
            role=Role.HANDLER,
        ),
        id="handler-reopens",
    ),
    pytest.param(
        post(
            f"/cases/{CASE}/assign",
            {"assignee": "bob"},
            403,
            "integrator",
            "admin, handler, manager",
            role=Role.INTEGRATOR,
        ),
        id="integrator-assigns",
    ),
    pytest.param(
        post(f"/cases/{CASE}/close", {"reason": "x"}, 403, "integrator", role=Role.INTEGRATOR),
        id="integrator-closes",
    ),
    # -- the case list: pagination and filters --------------------------------------------------
    pytest.param(
        get("/cases?cursor=garbage", 422, "cursor", code="invalid_command"), id="cursor-garbage"
    ),
    pytest.param(get("/cases?cursor=eyJhIjoxfQ", 422, "cursor"), id="cursor-an-object"),
    pytest.param(
        get("/cases?cursor=WyJub3QtYS1kYXRlIiwieCJd", 422, "cursor"), id="cursor-bad-date"
    ),
    pytest.param(get("/cases?cursor=%C3%A9t%C3%A9", 422, "cursor"), id="cursor-non-ascii"),
    pytest.param(get("/cases?cursor=" + "A" * 501, 422, "cursor"), id="cursor-too-long"),
    pytest.param(get("/cases?limit=0", 422, "limit", "greater than or equal to 1"), id="limit-0"),
    pytest.param(get("/cases?limit=-1", 422, "limit"), id="limit-negative"),
    pytest.param(
        get("/cases?limit=501", 422, "limit", "less than or equal to 500"), id="limit-501"
    ),
    pytest.param(get("/cases?limit=ten", 422, "limit", "integer"), id="limit-word"),
    pytest.param(get("/cases?limit=" + "9" * 40, 422, "limit"), id="limit-huge"),
    pytest.param(get("/cases?status=" + "x" * 101, 422, "status"), id="filter-too-long"),
    pytest.param(
        get(
            "/cases?stauts=open",
            422,
            "stauts",
            "unknown query parameter",
            "assignee, case_type, closed_from, closed_to, cursor, final, limit, opened_from,"
            " opened_to, order, party_id, priority, q, queue, sla_state, sort, status",
        ),
        id="filter-misspelt",
    ),
    pytest.param(get("/cases?=1", 422, "unknown query parameter"), id="query-empty-name"),
    pytest.param(
        get("/cases?status=open&status=waiting", 422, "status", "2 times"), id="filter-repeated"
    ),
    pytest.param(get("/cases?limit=5&limit=6", 422, "limit", "give it once"), id="limit-repeated"),
    pytest.param(
        get(f"/cases/{CASE}?verbose=1", 422, "verbose", "unknown query parameter"),
        id="query-on-get-case",
    ),
    pytest.param(
        post(
            f"/cases/{CASE}/notes?expected_version=1",
            note(),
            422,
            "expected_version",
            "unknown query parameter",
        ),
        id="query-on-command",
    ),
    pytest.param(
        get("/cases?stauts=open", 401, "API key", role=None), id="no-key-and-unknown-query"
    ),
    pytest.param(get("/health?verbose=1", 422, "verbose", role=None), id="query-on-health"),
    pytest.param(get("/cases?status=open%00", 422, "status", "NUL"), id="filter-nul"),
    pytest.param(get("/cases?assignee=%00", 422, "assignee", "NUL"), id="filter-assignee-nul"),
    # -- huge values ----------------------------------------------------------------------------
    pytest.param(
        post("/cases", {**VALID, "title": "x" * 100_000}, 422, "title", "500"),
        id="title-100k-chars",
    ),
    pytest.param(
        post("/cases", {**VALID, "party_id": "p" * 201}, 422, "party_id"), id="party-id-too-long"
    ),
    pytest.param(
        post(f"/cases/{CASE}/notes", note("n" * 20_001), 422, "text", "20000"), id="note-too-long"
    ),
    pytest.param(
        post(f"/cases/{CASE}/assign", {"assignee": "a" * 201}, 422, "assignee"),
        id="assignee-too-long",
    ),
    pytest.param(
        raw(
            "/cases",
            b'{"case_type":"generic","title":"t","fields":{"n":' + b"9" * 5_000 + b"}}",
            400,
            "body",
        ),
        id="number-5000-digits",
    ),
    pytest.param(
        post(
            "/cases",
            {**VALID, "fields": {"blob": "x" * MAX_BODY}},
            413,
            str(MAX_BODY),
            code="body_too_large",
        ),
        id="fields-over-body-limit",
    ),
    pytest.param(
        Bad(
            "POST",
            f"/cases/{CASE}/notes",
            413,
            (str(MAX_BODY),),
            content=b"{" + b" " * MAX_BODY + b"}",
            headers={"Content-Type": "application/json"},
            code="body_too_large",
        ),
        id="note-over-body-limit",
    ),
    pytest.param(
        post(
            f"/cases/{CASE}/notes",
            note(),
            422,
            "X-Correlation-ID",
            headers={"X-Correlation-ID": "c" * 201},
        ),
        id="correlation-id-too-long",
    ),
    # -- text that cannot be stored -------------------------------------------------------------
    pytest.param(
        post("/cases", {**VALID, "title": "bad\x00title"}, 422, "title", "NUL"), id="title-nul"
    ),
    pytest.param(
        post("/cases", {**VALID, "case_type": "generic\x00"}, 422, "case_type"), id="case-type-nul"
    ),
    pytest.param(
        post("/cases", {**VALID, "party_id": "\x00"}, 422, "party_id", "NUL"), id="party-id-nul"
    ),
    pytest.param(
        post("/cases", {**VALID, "fields": {"k": "v\x00"}}, 422, "fields", "NUL"),
        id="fields-value-nul",
    ),
    pytest.param(
        post("/cases", {**VALID, "fields": {"k\x00": 1}}, 422, "fields", "NUL"), id="fields-key-nul"
    ),
    pytest.param(
        post("/cases", {**VALID, "fields": {"k": [{"deep": ["\x00"]}]}}, 422, "fields", "NUL"),
        id="fields-nested-nul",
    ),
    pytest.param(
        raw(
            "/cases",
            b'{"case_type":"generic","title":"t","fields":{"x":NaN}}',
            422,
            "fields",
            "finite",
        ),
        id="fields-nan",
    ),
    pytest.param(
        raw(
            "/cases",
            b'{"case_type":"generic","title":"t","fields":{"x":[-Infinity]}}',
            422,
            "fields",
            "finite",
        ),
        id="fields-infinity",
    ),
    pytest.param(
        raw("/cases", nested(40), 422, "fields", "deeper than 32"), id="fields-nested-40-deep"
    ),
    pytest.param(
        raw("/cases", nested(900), 422, "fields", "deeper than 32"), id="fields-nested-900-deep"
    ),
    pytest.param(post(f"/cases/{CASE}/notes", note("a\x00b"), 422, "text", "NUL"), id="note-nul"),
    pytest.param(
        post(f"/cases/{CASE}/assign", {"assignee": "bob\x00"}, 422, "assignee"), id="assignee-nul"
    ),
    pytest.param(
        post(
            f"/cases/{CASE}/transitions",
            {"transition": "wait", "reason": "\x00"},
            422,
            "reason",
            "NUL",
        ),
        id="transition-reason-nul",
    ),
    pytest.param(
        post(f"/cases/{CASE}/close", {"reason": "\x00\x00"}, 422, "reason"), id="close-reason-nul"
    ),
    pytest.param(
        raw("/cases", b'{"case_type":"generic","title":"half \\ud800 pair"}', 422, "title"),
        id="title-lone-surrogate",
    ),
    pytest.param(
        raw("/cases", b'{"case_type":"generic","title":"t","fields":{"\\udfff":1}}', 422, "fields"),
        id="fields-key-lone-surrogate",
    ),
    pytest.param(
        raw(f"/cases/{CASE}/notes", b'{"text":"\\ud83d"}', 422, "text"), id="note-lone-surrogate"
    ),
]


@pytest.fixture(scope="module")
def client(container: Container) -> Iterator[TestClient]:
    with TestClient(build_api(container)) as test_client:
        yield test_client


@pytest.fixture(scope="module")
def case_id(client: TestClient, keys: dict[Role, str]) -> str:
    answer = client.post("/cases", json=VALID, headers=auth(keys[Role.ADMIN]))
    assert answer.status_code == 201, answer.text
    return str(answer.json()["id"])


def assert_clear_refusal(answer: Any, status: int, mentions: tuple[str, ...] = ()) -> None:
    assert answer.status_code == status, answer.text
    assert answer.headers["content-type"] == "application/json"
    body = answer.json()
    assert set(body) == {"detail", "code", "hint"}, body
    assert isinstance(body["detail"], str)
    assert body["detail"].strip()
    assert body["code"].strip()
    said = f"{body['detail']} {body['hint']}".lower()
    for words in mentions:
        assert words.lower() in said, f"{words!r} not in {body}"


@pytest.mark.parametrize("bad", BAD)
def test_bad_input_is_refused_clearly_and_stores_nothing(
    bad: Bad, client: TestClient, keys: dict[Role, str], container: Container, case_id: str
) -> None:
    assert container.settings.max_body_bytes == MAX_BODY
    headers = {**(auth(keys[bad.role]) if bad.role else {}), **bad.headers}
    request: dict[str, Any] = {"headers": headers}
    if bad.json is not _NO_BODY:
        request["json"] = bad.json
    if bad.content is not None:
        request["content"] = bad.content
    before = stored_event_count(container)

    answer = client.request(bad.method, bad.path.replace(CASE, case_id), **request)

    assert_clear_refusal(answer, bad.status, bad.mentions)
    if bad.code:
        assert answer.json()["code"] == bad.code
    if bad.status == 401:
        assert answer.headers["www-authenticate"] == "Bearer"
    assert stored_event_count(container) == before


def chunks(total: int, size: int = 64 * 1024) -> Iterator[bytes]:
    yield b'{"case_type": "generic", "title": "t", "fields": {"blob": "'
    for _ in range(total // size + 1):
        yield b"x" * size
    yield b'"}}'


def test_oversized_streamed_body_without_content_length_is_413(
    client: TestClient, keys: dict[Role, str], container: Container
) -> None:
    before = stored_event_count(container)
    headers = {**auth(keys[Role.ADMIN]), "Content-Type": "application/json"}
    answer = client.post("/cases", content=chunks(MAX_BODY), headers=headers)
    assert "content-length" not in answer.request.headers
    assert answer.request.headers["transfer-encoding"] == "chunked"
    assert_clear_refusal(answer, 413, (str(MAX_BODY),))
    assert answer.json()["code"] == "body_too_large"
    assert stored_event_count(container) == before


def test_oversized_body_in_many_asgi_messages_is_413(
    container: Container, keys: dict[Role, str]
) -> None:
    """What a server hands the app for a chunked upload: many ``http.request`` messages."""
    app = build_api(container)
    parts = list(chunks(MAX_BODY, size=8 * 1024))
    messages: list[Message] = [
        {"type": "http.request", "body": part, "more_body": i < len(parts) - 1}
        for i, part in enumerate(parts)
    ]
    sent: list[Message] = []

    async def receive() -> Message:
        return messages.pop(0) if messages else {"type": "http.disconnect"}

    async def send(message: Message) -> None:
        sent.append(message)

    scope = {
        "type": "http",
        "asgi": {"version": "3.0"},
        "http_version": "1.1",
        "method": "POST",
        "scheme": "http",
        "path": "/cases",
        "raw_path": b"/cases",
        "root_path": "",
        "query_string": b"",
        "headers": [
            (b"host", b"testserver"),
            (b"content-type", b"application/json"),
            (b"transfer-encoding", b"chunked"),
            (b"authorization", f"Bearer {keys[Role.ADMIN]}".encode()),
        ],
        "client": ("127.0.0.1", 50000),
        "server": ("testserver", 80),
        "app": app,
    }
    before = stored_event_count(container)
    asyncio.run(app(scope, receive, send))
    start = next(m for m in sent if m["type"] == "http.response.start")
    assert start["status"] == 413
    body = json.loads(b"".join(m.get("body", b"") for m in sent[1:]))
    assert body["code"] == "body_too_large"
    assert stored_event_count(container) == before


def test_a_body_of_exactly_the_limit_is_accepted(
    client: TestClient, keys: dict[Role, str], container: Container
) -> None:
    # Padded with JSON whitespace: the body is at the limit, the event it makes is small
    # (a single event has its own, lower limit: test_write_budget.py).
    head = b'{"case_type":"generic","title":"t","fields":{"pad":"p"}'
    tail = b"}"
    body = head + b" " * (MAX_BODY - len(head) - len(tail)) + tail
    assert len(body) == MAX_BODY
    before = stored_event_count(container)
    headers = {**auth(keys[Role.ADMIN]), "Content-Type": "application/json"}
    answer = client.post("/cases", content=body, headers=headers)
    assert answer.status_code == 201, answer.text[:300]
    assert stored_event_count(container) == before + 1


TEXTS = [
    pytest.param("Rückerstattung, Zürich: €120 «ça va»", id="latin-accents"),
    pytest.param("東京の窓が壊れた", id="cjk"),
    pytest.param("نافذة مكسورة", id="rtl"),
    pytest.param("Broken 🪟 window 👩‍🔧", id="emoji-zwj"),
    pytest.param("e\u0301 combining \u200b zero-width \ufeff bom", id="combining-invisible"),
    pytest.param("tab\there, bell\x07, escape\x1b[31m, delete\x7f", id="control-chars"),
    pytest.param("\U0010ffff last code point", id="max-code-point"),
]


@pytest.mark.parametrize("text", TEXTS)
def test_unicode_and_control_characters_are_kept_exactly(
    text: str, client: TestClient, keys: dict[Role, str], container: Container
) -> None:
    headers = auth(keys[Role.HANDLER])
    before = stored_event_count(container)
    body = {"case_type": "generic", "title": text, "fields": {text: text}, "party_id": text}
    opened = client.post("/cases", json=body, headers=headers)
    assert opened.status_code == 201, opened.text
    case_id = opened.json()["id"]
    commands = [("notes", {"text": f"{text}\nsecond line"}), ("assign", {"assignee": text})]
    for verb, command in commands:
        answer = client.post(f"/cases/{case_id}/{verb}", json=command, headers=headers)
        assert answer.status_code == 200, answer.text
    assert stored_event_count(container) == before + 3

    case = client.get(f"/cases/{case_id}", headers=headers).json()
    assert case["title"] == text.strip()
    assert case["fields"] == {text: text}
    assert case["party_id"] == text
    assert case["assignee"] == text
    assert case["notes"][0]["text"] == f"{text}\nsecond line"
    history = client.get(f"/cases/{case_id}/history", headers=headers)
    assert history.status_code == 200
    assert history.json()[0]["data"]["title"] == text.strip()


def test_a_wrong_method_names_every_method_of_the_path(
    client: TestClient, keys: dict[Role, str], container: Container
) -> None:
    before = stored_event_count(container)
    for method, path, allowed in [
        ("DELETE", "/cases", "GET, POST"),
        ("PATCH", f"/cases/{UNKNOWN}", "GET"),
        ("GET", f"/cases/{UNKNOWN}/notes", "POST"),
    ]:
        answer = client.request(method, path, headers=auth(keys[Role.ADMIN]))
        assert_clear_refusal(answer, 405, (method, allowed))
        assert answer.headers["allow"] == allowed
        assert answer.json()["code"] == "method_not_allowed"
    assert stored_event_count(container) == before


def test_path_traversal_and_unknown_routes_are_plain_404s(
    client: TestClient, keys: dict[Role, str], container: Container
) -> None:
    before = stored_event_count(container)
    for method, path in [
        ("GET", "/cases/../../etc/passwd"),
        ("POST", f"/cases/{UNKNOWN}/delete"),
        ("DELETE", f"/cases/{UNKNOWN}"),
        ("PUT", "/cases"),
    ]:
        answer = client.request(method, path, headers=auth(keys[Role.ADMIN]), json={})
        assert answer.status_code in (404, 405), (method, path, answer.text)
        assert set(answer.json()) == {"detail", "code", "hint"}
    assert stored_event_count(container) == before
