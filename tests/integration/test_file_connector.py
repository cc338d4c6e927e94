"""File drops on a real folder and the real event store: finished files are archived,
unreadable ones quarantined with a reason, bad lines rejected beside a reason, and a big file
resumes inside after a restart without a second event."""

from __future__ import annotations

import os
import time
from pathlib import Path
from typing import Any
from uuid import UUID

import pytest

from adapters.connectors import Access, Source, open_source
from domain.context import CommandContext
from infra.bootstrap import Container
from services.case_type_document import read_document
from services.connectors import Connector, compile_connector
from services.ingestion import RecordOutcome
from tests.integration.test_ingestion import LEGACY_CLAIM

HEADER = "claim_no;amount;state\n"
NO_ACCESS = Access(secret=lambda name: "")


def file_connector(folder: Path, **source: Any) -> dict[str, Any]:
    return {
        "name": "claims_drop",
        "kind": "file",
        "source": {"folder": str(folder), "delimiter": ";", "settle": "1m"} | source,
        "mapping": {
            "case_type": "legacy_claim",
            "record_id": "record.claim_no",
            "fields": {
                "claim_no": "record.claim_no",
                "amount": {"from": "record.amount", "as": "money", "currency": "EUR"},
            },
            "status": {"from": "record.state", "states": {"O": "open", "A": "approved"}},
        },
    }


@pytest.fixture
def installed(container: Container) -> Container:
    document = read_document(LEGACY_CLAIM.encode(), "application/yaml")
    container.case_types.install(document, "test", CommandContext("tester", "admin"))
    return container


def drop(folder: Path, name: str, text: str | bytes, age: float = 120) -> Path:
    """A file written ``age`` seconds ago (older than the connector's settle time)."""
    path = folder / name
    if isinstance(text, bytes):
        path.write_bytes(text)
    else:
        path.write_text(text, encoding="utf-8")
    then = time.time() - age
    os.utime(path, (then, then))
    return path


def drain(
    container: Container, connector: Connector, source: Source, limit: int = 100
) -> tuple[list[RecordOutcome], Any]:
    """What the runner does: ingest, settle, keep the position; until nothing is new."""
    outcomes, position = [], None
    while (batch := source.next_batch(limit)) is not None:
        stored = container.ingestor.ingest(connector, batch.records, batch.batch_id)
        batch.settle(stored)
        outcomes += stored
        position = batch.position
    return outcomes, position


def test_a_settled_csv_file_is_ingested_and_archived_and_a_fresh_one_left_alone(
    installed: Container, tmp_path: Path
) -> None:
    connector = compile_connector(file_connector(tmp_path), 1, installed.case_types.current)
    drop(tmp_path, "claims.csv", HEADER + "F-1;100,50;O\nF-2;20;A\n")
    fresh = drop(tmp_path, "tomorrow.csv", HEADER + "F-3;1;O\n", age=0)  # still being written
    outcomes, _ = drain(installed, connector, open_source(connector, None, NO_ACCESS))
    assert [o.verdict for o in outcomes] == ["ingested", "ingested"]
    assert (tmp_path / "archive" / "claims.csv").exists() and fresh.exists()
    assert not (tmp_path / "claims.csv").exists()
    case = installed.ledger.get_case(UUID(outcomes[1].case_id or ""))
    assert case.status == "approved" and case.fields["amount"]["amount"] == 20
    opened: Any = installed.ledger.history(case.id)[0]
    assert opened.context["source_position"] == "claims.csv:3"

    drop(tmp_path, "claims.csv", HEADER + "F-1;100,50;O\n")  # the same export dropped again
    again, _ = drain(installed, connector, open_source(connector, None, NO_ACCESS))
    assert [o.verdict for o in again] == ["duplicate"]
    assert not (tmp_path / "claims.csv").exists()  # archived beside the first one
    assert len(list((tmp_path / "archive").iterdir())) == 2


@pytest.mark.parametrize(
    ("name", "content", "reason"),
    [
        ("latin.csv", HEADER.encode() + "F-1;é;O\n".encode("latin-1"), "line 2 is not utf-8"),
        ("empty.csv", b"", "the file is empty"),
        ("blank.csv", b"claim_no;;state\nF-1;1;O\n", "empty column name (column 2)"),
        ("commas.csv", b"claim_no,amount,state\nF-1,1,O\n", "set source.delimiter"),
        ("array.jsonl", b'[{"claim_no": "F-1"},\n {"claim_no": "F-2"}]\n', "not JSON"),
        ("export.xlsx", b"PK\x03\x04", "cannot tell its format"),
    ],
)
def test_an_unreadable_file_is_quarantined_with_a_reason_beside_it(
    tmp_path: Path, name: str, content: bytes, reason: str
) -> None:
    connector = compile_connector(file_connector(tmp_path), 1)
    drop(tmp_path, name, content)
    source = open_source(connector, None, NO_ACCESS)
    assert source.next_batch(100) is None
    assert (tmp_path / "quarantine" / name).read_bytes() == content
    assert reason in (tmp_path / "quarantine" / f"{name}.reason.txt").read_text()
    assert not (tmp_path / name).exists()


def test_a_partly_bad_file_ingests_its_good_lines_and_rejects_the_bad_ones(
    installed: Container, tmp_path: Path
) -> None:
    connector = compile_connector(file_connector(tmp_path), 1, installed.case_types.current)
    lines = ["B-1;10;O", "B-2;10", "B-3;lots;O", "B-3;10;A", "B-4;10;O"]
    drop(tmp_path, "claims.csv", HEADER + "\n".join(lines) + "\n")
    outcomes, _ = drain(installed, connector, open_source(connector, None, NO_ACCESS))
    verdicts = [o.verdict for o in outcomes]
    assert verdicts == ["ingested", "quarantined", "quarantined", "held", "ingested"]
    assert (tmp_path / "archive" / "claims.csv").exists()
    rejected = (tmp_path / "quarantine" / "claims.rejected.csv").read_text()
    assert rejected == HEADER + "B-2;10\nB-3;lots;O\nB-3;10;A\n"
    reason = (tmp_path / "quarantine" / "claims.rejected.csv.reason.txt").read_text()
    assert "line 3: 2 values for the 3 columns" in reason
    assert "line 4: mapping.fields.amount: 'lots' cannot be read as money" in reason
    assert "line 5: waits behind" in reason
    waiting = installed.quarantine.waiting("claims_drop")
    assert [(w["position"], w["raw"]) for w in waiting][:2] == [
        ("claims.csv:3", "B-2;10\n"),
        ("claims.csv:4", "B-3;lots;O\n"),
    ]


def test_a_big_file_resumes_inside_after_a_crash_without_a_second_event(
    installed: Container, tmp_path: Path
) -> None:
    connector = compile_connector(
        file_connector(tmp_path, format="jsonl"), 1, installed.case_types.current
    )
    rows = [f'{{"claim_no": "J-{n}", "amount": 5, "state": "O"}}' for n in range(1, 6)]
    drop(tmp_path, "claims.ndjson", "\n".join([*rows[:2], "{oops", *rows[2:]]) + "\n")
    source = open_source(connector, None, NO_ACCESS)
    first = source.next_batch(2)
    assert first is not None and first.position["line"] == 2
    first.settle(installed.ingestor.ingest(connector, first.records, first.batch_id))
    second = source.next_batch(2)  # stored, then the adapter dies before settling it
    assert second is not None
    stored = installed.ingestor.ingest(connector, second.records, second.batch_id)
    source.close()

    restarted = open_source(connector, first.position, NO_ACCESS)
    outcomes, _ = drain(installed, connector, restarted, limit=2)
    assert [o.verdict for o in outcomes] == ["quarantined", "duplicate", "ingested", "ingested"]
    assert (tmp_path / "archive" / "claims.ndjson").exists()
    rejected = tmp_path / "quarantine" / "claims.rejected.ndjson"
    assert rejected.read_text() == "{oops\n"  # journaled twice, written once
    case = installed.ledger.get_case(UUID(stored[1].case_id or ""))
    assert case.version == stored[1].version  # the re-read record made no event
