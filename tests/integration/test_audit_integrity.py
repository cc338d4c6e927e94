"""Tamper evidence on an honest store: PostgreSQL chains every event as the offline verifier
does, checkpoints are signed, incremental and published, and verify and bundles agree.
(tests/integration/test_audit_tamper.py tampers with the store.)"""

from __future__ import annotations

import json
import uuid
from pathlib import Path
from typing import Any

import pytest
from eventsourcing.persistence import StoredEvent
from kafka import KafkaConsumer
from kafka.structs import TopicPartition
from typer.testing import CliRunner

from domain.evidence import ZERO_HASH, event_hash, leaf_hash, merkle_root, verify_bundle
from infra.audit_ledger import install
from infra.bootstrap import Container
from infra.cli import app
from infra.settings import Settings
from tests.conftest import settings_env
from tests.integration.helpers import CTX, open_cases
from tests.integration.test_event_contracts import toured

EVENTS = "caseledger_events"


def _rows(container: Container, table: str = EVENTS) -> list[dict[str, Any]]:
    with container.pool.connection() as conn:
        return conn.execute(
            f"SELECT notification_id, originator_id, originator_version, topic, state,"
            f" audit_leaf, audit_hash FROM {table} ORDER BY notification_id"
        ).fetchall()


def _check_chain(rows: list[dict[str, Any]]) -> None:
    """Each stored hash is event_hash of its content and its previous version's hash, and
    the leaves are 0, 1, 2, ... in notification order."""
    hashes: dict[tuple[Any, int], bytes] = {}
    for leaf, row in enumerate(rows):
        version = row["originator_version"]
        prev = ZERO_HASH if version == 1 else hashes[(row["originator_id"], version - 1)]
        expected = event_hash(prev, row["originator_id"], version, row["topic"], row["state"])
        assert row["audit_hash"] == expected, row
        assert row["audit_leaf"] == leaf
        hashes[(row["originator_id"], version)] = expected


def test_postgres_chains_every_event_type_as_python_does(
    container: Container, settings: Settings
) -> None:
    toured(container, settings)  # every event type, by real commands
    rows = _rows(container)
    topics = {r["topic"] for r in rows}
    assert len(topics) >= 15, topics
    _check_chain(rows)
    _check_chain(_rows(container, "casetypes_events"))  # configuration history too


def test_events_inserted_in_one_statement_chain_in_order(container: Container) -> None:
    """A save of several events of one case, and a batch of several saves (group commit),
    each go in one INSERT: each row sees the ones before it."""
    case = container.ledger.open_case("generic", "one", {"n": 1}, None, CTX)
    recorder = container.ledger.recorder
    other = uuid.uuid4()
    events = [
        StoredEvent(case.id, 2, "domain.case:Case.NoteAdded", b'{"a":1}'),
        StoredEvent(case.id, 3, "domain.case:Case.NoteAdded", b'{"a":2}'),
        StoredEvent(other, 1, "domain.case:Case.Opened", b"{}"),
        StoredEvent(other, 2, "domain.case:Case.NoteAdded", "é".encode()),
    ]
    recorder.insert_events(events)
    _check_chain([r for r in _rows(container)])


def test_an_older_store_is_backfilled_once(container: Container) -> None:
    open_cases(container, 3, notes=2)
    with container.pool.connection() as conn:
        conn.execute(f"DROP TRIGGER audit_chain ON {EVENTS}")
        conn.execute(f"ALTER TABLE {EVENTS} DROP COLUMN audit_leaf, DROP COLUMN audit_hash")
    install(container.pool, [EVENTS])
    _check_chain(_rows(container))
    open_cases(container, 1, notes=1)  # the trigger is back
    _check_chain(_rows(container))


def _topic(settings: Settings) -> list[dict[str, Any]]:
    consumer = KafkaConsumer(bootstrap_servers=settings.kafka_servers, enable_auto_commit=False)
    try:
        partition = TopicPartition(settings.audit_topic, 0)
        consumer.assign([partition])
        consumer.seek_to_beginning(partition)
        end = consumer.end_offsets([partition])[partition]
        found: list[dict[str, Any]] = []
        while consumer.position(partition) < end:
            for records in consumer.poll(timeout_ms=1_000).values():
                found.extend(json.loads(r.value) for r in records)
        return found
    finally:
        consumer.close()


def test_checkpoints_are_incremental_signed_and_published(
    container: Container, settings: Settings
) -> None:
    open_cases(container, 2, notes=1)
    audit = container.audit
    first = audit.checkpoint(EVENTS)
    assert first is not None and first.size == 4
    assert audit.checkpoint(EVENTS) is None  # nothing new: nothing signed
    open_cases(container, 3)
    second = audit.checkpoint(EVENTS)
    assert second is not None and second.size == 7
    # the incremental root equals one computed over every leaf
    rows = _rows(container)
    leaves = [leaf_hash(r["notification_id"], r["audit_hash"]) for r in rows]
    assert second.root == merkle_root(leaves).hex()
    assert second.position == rows[-1]["notification_id"]
    assert audit.publish_pending() == 2
    published = [m for m in _topic(settings) if m["key_id"] == audit.key.key_id]
    assert published == [first.as_json(), second.as_json()]
    assert audit.unpublished() == []


def test_a_bundle_verifies_offline_and_as_a_script(
    container: Container, settings: Settings, tmp_path: Path
) -> None:
    ids = open_cases(container, 3, notes=2)
    env = settings_env(settings)
    runner = CliRunner()
    bundle_file = tmp_path / "bundle.json"
    result = runner.invoke(app, ["audit", "bundle", ids[1], "-o", str(bundle_file)], env=env)
    assert result.exit_code == 0, result.output
    bundle = json.loads(bundle_file.read_text())
    assert [e["version"] for e in bundle["events"]] == [1, 2, 3]
    assert verify_bundle(bundle, container.audit.key.public_raw) == []
    result = runner.invoke(app, ["audit", "verify"], env=env)
    assert result.exit_code == 0, result.output


@pytest.mark.parametrize("as_json", [False, True])
def test_verify_reports_a_clean_store(
    container: Container, settings: Settings, as_json: bool
) -> None:
    open_cases(container, 2, notes=1)
    container.audit.checkpoint_and_publish()
    args = ["audit", "verify"] + (["--json"] if as_json else [])
    result = CliRunner().invoke(app, args, env=settings_env(settings))
    assert result.exit_code == 0, result.output
    if as_json:
        report = json.loads(result.stdout)
        assert report["problems"] == [] and report["events"] >= 4
