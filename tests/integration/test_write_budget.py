"""No write may freeze the event store: large saves complete or are refused before anything is
sent, and a write that cannot get the event table's lock in time is refused, not queued.

Issue 7, finding 1: a ``POST /cases`` with one field of ~680,000 characters never answered;
its INSERT sat in ``ClientRead`` holding the table's EXCLUSIVE lock and every other write
failed after 100 s. The cause was psycopg's pipeline mode, which stops flushing a query larger
than the socket buffer (see ``infra/recorder.py``); a Unix socket shows it at ~600 KB.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from pathlib import Path
from uuid import uuid4

import psycopg
import pytest
from eventsourcing.persistence import PersistenceError, StoredEvent
from fastapi.testclient import TestClient
from psycopg.conninfo import conninfo_to_dict, make_conninfo

from domain.values import MAX_EVENT_BYTES, MAX_SAVE_BYTES
from infra.bootstrap import Container, bootstrap, build_api
from infra.settings import Settings
from services.auth import Role
from services.errors import SaveTooLarge, StoreBusy
from tests.conftest import auth, stored_event_count
from tests.integration.helpers import CTX, wait_until


def _unix_socket_url(url: str) -> str:
    """``url`` reached through the server's Unix socket when it has one (where the hang
    showed first), else ``url`` itself."""
    parts = conninfo_to_dict(url)
    if str(parts.get("host", "")).startswith("/"):
        return url
    with psycopg.connect(url) as conn:
        row = conn.execute("SHOW unix_socket_directories").fetchone()
    port = parts.get("port", "5432")
    for folder in str(row[0] if row else "").split(","):
        if folder.strip() and (Path(folder.strip()) / f".s.PGSQL.{port}").exists():
            return make_conninfo(url, host=folder.strip())
    return url


@pytest.fixture
def quick(settings: Settings) -> Iterator[Container]:
    """A container on the Unix socket whose writes give up after one second."""
    fast = settings.model_copy(
        update={"database_url": _unix_socket_url(settings.dsn), "db_write_timeout_s": 1}
    )
    container = bootstrap(fast, name="budget")
    yield container
    container.close()


def _blob(size: int, version: int = 1) -> StoredEvent:
    return StoredEvent(
        originator_id=uuid4(), originator_version=version, topic="tests:Blob", state=b"x" * size
    )


def test_a_save_at_the_limits_completes_at_once(quick: Container) -> None:
    # Four events just under the per-event limit: 2 MiB in one save, past any socket buffer.
    events = [_blob(MAX_EVENT_BYTES - 1024) for _ in range(MAX_SAVE_BYTES // MAX_EVENT_BYTES)]
    started = time.monotonic()
    ids = quick.ledger.recorder.insert_events(events)
    assert ids is not None and len(ids) == len(events)
    assert time.monotonic() - started < 5
    assert stored_event_count(quick) == len(events)


def test_a_save_over_a_limit_is_refused_before_anything_is_stored(quick: Container) -> None:
    recorder = quick.ledger.recorder
    with pytest.raises(SaveTooLarge, match=f"at most {MAX_EVENT_BYTES:,} bytes"):
        recorder.insert_events([_blob(MAX_EVENT_BYTES + 1)])
    with pytest.raises(SaveTooLarge, match=f"at most {MAX_SAVE_BYTES:,} bytes"):
        recorder.insert_events([_blob(MAX_EVENT_BYTES - 10) for _ in range(5)])
    with pytest.raises(SaveTooLarge, match="at most 1,000"):
        recorder.insert_events([_blob(10) for _ in range(1_001)])
    assert stored_event_count(quick) == 0


def test_a_huge_field_gets_413_and_other_writes_go_on(quick: Container) -> None:
    key = quick.keys.create(Role.HANDLER, label="big")
    with TestClient(build_api(quick)) as client:
        huge = {"case_type": "generic", "title": "big", "fields": {"notes": "x" * 680_000}}
        answer = client.post("/cases", json=huge, headers=auth(key))
        assert answer.status_code == 413, answer.text
        assert f"at most {MAX_EVENT_BYTES:,} bytes" in answer.json()["detail"]
        assert "POST /documents" in answer.json()["hint"]
        assert stored_event_count(quick) == 0
        started = time.monotonic()
        small = client.post(
            "/cases", json={"case_type": "generic", "title": "ok"}, headers=auth(key)
        )
        assert small.status_code == 201, small.text
        assert time.monotonic() - started < 2


def test_a_write_behind_a_held_lock_is_refused_with_503_and_stores_nothing(
    quick: Container,
) -> None:
    key = quick.keys.create(Role.HANDLER, label="blocked")
    table = quick.reader.sql("LOCK TABLE {events} IN EXCLUSIVE MODE")
    with TestClient(build_api(quick)) as client, psycopg.connect(quick.settings.dsn) as holder:
        holder.execute(table)  # a transaction that holds the lock and does not commit
        started = time.monotonic()
        answer = client.post(
            "/cases", json={"case_type": "generic", "title": "t"}, headers=auth(key)
        )
        waited = time.monotonic() - started
        assert answer.status_code == 503, answer.text
        assert answer.headers["Retry-After"] == "1"
        assert "nothing was stored" in answer.json()["hint"]
        assert waited < 4, f"the write waited {waited:.1f}s for a lock it could not get"
        holder.rollback()
        answer = client.post(
            "/cases", json={"case_type": "generic", "title": "t"}, headers=auth(key)
        )
        assert answer.status_code == 201, answer.text
    assert stored_event_count(quick) == 1


def test_a_stalled_session_holding_the_lock_is_ended_by_the_server(quick: Container) -> None:
    """A process that stops mid-write (a GIL-bound thread, a paused VM) cannot keep the lock:
    the library's sessions end after the write timeout idle in a transaction."""
    datastore = quick.ledger.recorder.datastore  # type: ignore[attr-defined]
    locked, release = threading.Event(), threading.Event()
    outcome: dict[str, Exception | None] = {}

    def stall() -> None:
        try:
            with datastore.get_connection() as conn, conn.transaction():
                conn.execute(quick.reader.sql("LOCK TABLE {events} IN EXCLUSIVE MODE"))
                locked.set()
                release.wait(30)
                conn.execute("SELECT 1")
            outcome["error"] = None
        except (psycopg.Error, PersistenceError) as error:
            outcome["error"] = error

    thread = threading.Thread(target=stall, daemon=True)
    thread.start()
    assert locked.wait(10)

    def written() -> bool:
        try:
            quick.ledger.open_case("generic", "after the stall", {}, None, CTX)
        except StoreBusy:
            return False
        return True

    wait_until(written, timeout=15, what="a write once the stalled session was ended")
    release.set()
    thread.join(10)
    assert "idle-in-transaction" in str(outcome.get("error")), "the stalled session lived on"
