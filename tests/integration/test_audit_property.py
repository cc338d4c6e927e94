"""Every flipped bit is caught by `caseledger audit verify` on the server (issue 12: "flips
random bytes of random events and proofs: 100% detected"; the offline side is
tests/unit/test_evidence.py).

One real database with a few cases (and the case-type registry's own log) and a signed
checkpoint of each log. Each example flips one random bit of one random byte, with SQL, of a
random stored event's state or audit_hash, or of a checkpoint's root or signature; verify
must name that event's case and version (or that checkpoint), and nothing else as changed;
the byte is then restored and verify must be clean again. What verify runs is
``infra.audit_verify.Verifier`` (the CLI prints its report); the published copies are left
out (``read_topic=False``): a flip must be caught by the store and the key alone.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from psycopg.sql import SQL, Identifier

from infra.audit_verify import Problem, Verifier
from infra.bootstrap import Container
from tests.integration.helpers import open_cases

LOGS = ("caseledger_events", "casetypes_events")
FEW, MANY = 100, 2_000  # examples per kind of flip: the quick run, and the slow one


@dataclass(frozen=True)
class Event:
    log: str
    notification_id: int
    case_id: str
    version: int
    sizes: dict[str, int]  # column -> its length in bytes
    newest: bool  # the case's newest event


@dataclass
class Store:
    container: Container
    verifier: Verifier
    events: list[Event]
    checkpoints: list[dict[str, Any]]

    def problems(self) -> list[Problem]:
        return self.verifier.verify(read_topic=False).problems

    def flip_event(self, event: Event, column: str, byte: int, bit: int) -> None:
        """XOR one bit of one byte of ``column`` (twice restores it)."""
        statement = SQL(
            "UPDATE {table} SET {column} = set_byte({column}, %(byte)s,"
            " get_byte({column}, %(byte)s) # %(mask)s) WHERE notification_id = %(id)s"
        ).format(table=Identifier(event.log), column=Identifier(column))
        with self.container.pool.connection() as conn:
            conn.execute(statement, {"byte": byte, "mask": 1 << bit, "id": event.notification_id})

    def set_checkpoint(self, checkpoint_id: int, field: str, value: str) -> None:
        statement = SQL("UPDATE audit_checkpoints SET {field} = %s WHERE id = %s").format(
            field=Identifier(field)
        )
        with self.container.pool.connection() as conn:
            conn.execute(statement, (value, checkpoint_id))


@pytest.fixture
def store(container: Container) -> Store:
    open_cases(container, 4, notes=2)
    container.projections.catch_up_from_store(container.reader.head(), 1_000)
    made = container.audit.checkpoint_all()
    assert {c.log for c in made} == set(LOGS)
    open_cases(container, 1, notes=1)  # events after the checkpoint: only their chain guards them
    audit = container.audit
    verifier = Verifier(
        container.pool, audit.tables, container.settings, {audit.key.key_id: audit.key.public_raw}
    )
    events = []
    with container.pool.connection() as conn:
        for log in LOGS:
            rows = conn.execute(
                SQL(
                    "SELECT notification_id, originator_id, originator_version,"
                    " octet_length(state) AS state, octet_length(audit_hash) AS audit_hash,"
                    " originator_version = max(originator_version)"
                    " OVER (PARTITION BY originator_id) AS newest"
                    " FROM {table} ORDER BY notification_id"
                ).format(table=Identifier(log))
            ).fetchall()
            events += [
                Event(
                    log,
                    r["notification_id"],
                    str(r["originator_id"]),
                    r["originator_version"],
                    {"state": r["state"], "audit_hash": r["audit_hash"]},
                    r["newest"],
                )
                for r in rows
            ]
        checkpoints = conn.execute(
            "SELECT id, log, root, signature FROM audit_checkpoints ORDER BY id"
        ).fetchall()
    built = Store(container, verifier, events, checkpoints)
    assert built.problems() == []
    return built


def _check_event_flips(store: Store, data: st.DataObject) -> None:
    event = data.draw(st.sampled_from(store.events), label="event")
    column = data.draw(st.sampled_from(["state", "audit_hash"]), label="column")
    byte = data.draw(st.integers(0, event.sizes[column] - 1), label="byte")
    bit = data.draw(st.integers(0, 7), label="bit")
    store.flip_event(event, column, byte, bit)
    try:
        problems = store.problems()
    finally:
        store.flip_event(event, column, byte, bit)
    named = [p for p in problems if (p.case_id, p.version) == (event.case_id, event.version)]
    assert named and all(p.log == event.log for p in named), problems
    # what was changed, where a later hash tells it
    kind = "hash_changed" if column == "audit_hash" and not event.newest else "content_changed"
    assert [p.kind for p in named] == [kind], problems
    others = [p for p in problems if p.case_id is not None and p not in named]
    assert not others, f"intact events reported: {others}"
    assert store.problems() == []


def _check_checkpoint_flips(store: Store, data: st.DataObject) -> None:
    checkpoint = data.draw(st.sampled_from(store.checkpoints), label="checkpoint")
    field = data.draw(st.sampled_from(["root", "signature"]), label="field")
    raw = bytearray.fromhex(checkpoint[field])
    byte = data.draw(st.integers(0, len(raw) - 1), label="byte")
    raw[byte] ^= 1 << data.draw(st.integers(0, 7), label="bit")
    store.set_checkpoint(checkpoint["id"], field, raw.hex())
    try:
        problems = store.problems()
    finally:
        store.set_checkpoint(checkpoint["id"], field, checkpoint[field])
    forged = [p for p in problems if p.kind == "checkpoint_forged"]
    assert len(forged) == 1 and forged[0].log == checkpoint["log"], problems
    assert f"checkpoint #{checkpoint['id']} " in forged[0].what, problems
    assert store.problems() == []


_QUICK = settings(
    max_examples=FEW,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture],
    database=None,
)
_THOROUGH = settings(_QUICK, max_examples=MANY)


@_QUICK
@given(data=st.data())
def test_a_flipped_bit_in_any_event_is_named(store: Store, data: st.DataObject) -> None:
    _check_event_flips(store, data)


@_QUICK
@given(data=st.data())
def test_a_flipped_bit_in_any_checkpoint_is_named(store: Store, data: st.DataObject) -> None:
    _check_checkpoint_flips(store, data)


@pytest.mark.slow
@_THOROUGH
@given(data=st.data())
def test_many_flipped_bits_in_events_are_all_named(store: Store, data: st.DataObject) -> None:
    _check_event_flips(store, data)


@pytest.mark.slow
@_THOROUGH
@given(data=st.data())
def test_many_flipped_bits_in_checkpoints_are_all_named(store: Store, data: st.DataObject) -> None:
    _check_checkpoint_flips(store, data)
