"""Benchmark: `caseledger audit verify` events/s, vs a raw read of the same rows.

Stores the events (untimed) and signs a checkpoint of them, then times ``Verifier.verify``:
the chain pass (every event's hash recomputed from its content, in case and version order),
the tree pass (every leaf hashed into the Merkle tree, in log order, every checkpoint's root
compared), the checkpoints' signatures, their published copies read back from the topic, and
the case list's versions. The baseline reads the same rows once, over psycopg with a
server-side binary cursor: notification_id, originator_id, originator_version, topic, state,
audit_hash, ordered by (originator_id, originator_version) as the chain pass reads them. Verify
reads the log twice (the tree pass's columns are small), so 0.5x would be a raw read per pass.

Run on its own: ``.venv/bin/python -m bench.audit_verify [--quick]`` (from the project root).
"""

from __future__ import annotations

import time

from psycopg.rows import tuple_row

from bench.common import (
    CONSOLE,
    BenchEnv,
    Figure,
    Scale,
    bench_environment,
    print_figure,
    run_alone,
    seed_events,
)
from infra.audit_verify import Verifier

NAME = "audit-verify"
_RAW = """
SELECT notification_id, originator_id, originator_version, topic, state, audit_hash
FROM caseledger_events ORDER BY originator_id, originator_version
"""


def raw_read(env: BenchEnv) -> tuple[int, float]:
    """Rows read and seconds taken by a plain server-side cursor over the chain pass's rows."""
    start = time.perf_counter()
    rows = 0
    with (
        env.container.pool.connection() as conn,
        conn.transaction(),
        conn.cursor(name="raw", row_factory=tuple_row, binary=True) as cursor,
    ):
        cursor.itersize = 20_000
        cursor.execute(_RAW)
        for _ in cursor:
            rows += 1
    return rows, time.perf_counter() - start


def time_verify(env: BenchEnv) -> tuple[int, float]:
    audit = env.container.audit
    verifier = Verifier(
        env.container.pool, audit.tables, env.settings, {audit.key.key_id: audit.key.public_raw}
    )
    start = time.perf_counter()
    report = verifier.verify()
    seconds = time.perf_counter() - start
    assert report.ok, [str(p) for p in report.problems[:5]]
    return report.events[audit.tables[0]], seconds


def run(scale: Scale) -> list[Figure]:
    CONSOLE.rule("[bold]audit verify events/s: caseledger audit verify vs a raw read")
    with bench_environment(NAME) as env:
        seed_events(env.container, 10_000 if scale.quick else 50_000)
        env.container.audit.checkpoint_and_publish()  # untimed: what verify checks against
        raw_read(env)  # warm the cache: both timed reads find the rows in memory
        rows, raw_seconds = raw_read(env)
        events, verify_seconds = time_verify(env)
        CONSOLE.print(
            f"  {events:,} case events verified in {verify_seconds:.2f} s; raw read of "
            f"{rows:,} rows in {raw_seconds:.2f} s"
        )
        figure = Figure(
            benchmark=NAME,
            label="audit verify events/s",
            value=events / verify_seconds,
            unit="/s",
            baseline_label="raw psycopg read rows/s, same rows and order",
            baseline=rows / raw_seconds,
        )
        print_figure(figure)
    return [figure]


if __name__ == "__main__":
    run_alone(run)
