"""Benchmark: records/s ingested from a legacy PostgreSQL table through the SQL source and the
Ingestor (dedup on), beside a raw SELECT of the same rows and beside the write path's own
batched rate (``ledger.save`` of new cases, ~130 cases per save), all in the same run.

Run on its own: ``.venv/bin/python -m bench.ingest [--quick]`` (from the project root).
"""

from __future__ import annotations

import time
from datetime import UTC, datetime
from typing import Any

import psycopg

from adapters.connectors import Access, open_source
from bench.common import CONSOLE, CTX, Figure, Scale, bench_environment, print_figure, run_alone
from domain.case import Case
from services.case_type_document import read_document
from services.connectors import compile_connector
from services.ingestion import RunReport

NAME = "ingest"
PER_SAVE = 130
CASE_TYPE = """
name: legacy_claim
labels: {en: Legacy claim}
states:
  open: {initial: true, labels: {en: Open}}
  approved: {labels: {en: Approved}}
transitions:
  approve: {from: open, to: approved, roles: [integrator], labels: {en: Approve}}
fields:
  claim_no: {type: text, labels: {en: Claim number}}
  amount: {type: money, labels: {en: Amount}}
"""
MAPPING: dict[str, Any] = {
    "case_type": "legacy_claim",
    "record_id": "record.claim_no",
    "fields": {
        "claim_no": "record.claim_no",
        "amount": {"from": "record.amount", "as": "money", "currency": "EUR"},
    },
    "status": {"from": "record.state", "states": {"O": "open", "A": "approved"}},
    "effective_time": "record.changed",
}


def legacy_table(dsn: str, rows: int) -> None:
    with psycopg.connect(dsn, autocommit=True) as conn:
        conn.execute(
            "CREATE SCHEMA legacy; CREATE TABLE legacy.claims (id serial PRIMARY KEY,"
            " claim_no text NOT NULL, amount numeric(10, 2), state text, changed timestamptz)"
        )
        conn.execute(
            "INSERT INTO legacy.claims (claim_no, amount, state, changed)"
            " SELECT 'C-' || n, n %% 1000 + 0.5, 'O', now() - n * interval '1 minute'"
            " FROM generate_series(1, %s) n",
            (rows,),
        )


def raw_select(dsn: str) -> tuple[int, float]:
    start = time.perf_counter()
    with psycopg.connect(dsn) as conn:
        count = len(conn.execute("SELECT * FROM legacy.claims ORDER BY id").fetchall())
    return count, time.perf_counter() - start


def run(scale: Scale) -> list[Figure]:
    rows = 10_000 if scale.quick else 100_000
    CONSOLE.rule(f"[bold]ingest: {rows:,} legacy rows through the SQL source and the Ingestor")
    with bench_environment(NAME) as env:
        container, dsn = env.container, env.settings.dsn
        document = read_document(CASE_TYPE.encode(), "application/yaml")
        container.case_types.install(document, "bench", CTX)
        legacy_table(dsn, rows)
        count, seconds = raw_select(dsn)
        raw_rate = count / seconds
        source_doc = {"dialect": "postgresql", "url": dsn, "table": "legacy.claims"}
        doc = {"name": "claims", "kind": "sql", "source": source_doc, "mapping": MAPPING}
        connector = compile_connector(doc, 1, container.case_types.current)
        report = RunReport(connector.name, connector.version)
        source = open_source(connector, None, Access(secret=lambda name: ""))
        start = time.perf_counter()
        while report.ingested < rows and (batch := source.next_batch(1000)) is not None:
            container.ingestor.ingest(connector, batch.records, batch.batch_id, report)
        ingest_seconds = time.perf_counter() - start
        source.close()
        assert report.ingested == rows and report.adds_up, report
        definition = container.case_types.current("legacy_claim")
        context = CTX.as_dict()
        start = time.perf_counter()
        for first in range(0, rows, PER_SAVE):
            now = datetime.now(UTC)
            cases = [
                Case.open(definition, f"w {n}", {"claim_no": f"W-{n}"}, None, context, now)
                for n in range(first, min(rows, first + PER_SAVE))
            ]
            container.ledger.save(*cases)
        write_rate = rows / (time.perf_counter() - start)
    rate = rows / ingest_seconds
    figures = [
        Figure(NAME, "records/s ingested, dedup on", rate, "/s", "raw SELECT rows/s", raw_rate),
        Figure(
            NAME, "records/s ingested, dedup on", rate, "/s",
            f"ledger.save of new cases/s, {PER_SAVE} per save", write_rate,
        ),
    ]  # fmt: skip
    for figure in figures:
        print_figure(figure)
    return figures


if __name__ == "__main__":
    run_alone(run)
