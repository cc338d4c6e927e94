"""The tables of a projection in PostgreSQL, in one of three generations.

The live generation carries the tables' own names (``case_list``). A rebuild fills a second
generation beside it (``case_list__next``) and swaps it in by renaming, in one transaction;
a drift check fills a third (``case_list__verify``) and compares it row for row. Each
generation has its own tracking: a versions table (the case version it reflects per case,
and the version a case is held at behind a dead letter), a row in ``projection_state``
(position, store watermark) and its dead letters (``projection_dead_letters``), keyed by
:attr:`Generation.key`.
"""

from __future__ import annotations

import hashlib
import zlib
from collections.abc import Callable
from dataclasses import dataclass

from psycopg import Connection
from psycopg.rows import DictRow
from psycopg.sql import SQL, Identifier

from projections.base import Projection, Table

LIVE, NEXT, VERIFY = "", "__next", "__verify"
_OLD = "__old"
#: What other modules rebuild after a swap (views over these tables: they follow the table
#: they were created on, which a swap drops).
AfterSwap = Callable[[Connection[DictRow]], None]

_STATE_SCHEMA = """
CREATE TABLE IF NOT EXISTS projection_state (
    projection      text PRIMARY KEY,
    applied_events  bigint NOT NULL DEFAULT 0,
    max_position    bigint NOT NULL DEFAULT 0,
    store_watermark bigint NOT NULL DEFAULT 0,
    updated_at      timestamptz NOT NULL DEFAULT now()
);
ALTER TABLE projection_state ADD COLUMN IF NOT EXISTS rebuilt_at timestamptz;
ALTER TABLE projection_state ADD COLUMN IF NOT EXISTS fingerprint text;
CREATE TABLE IF NOT EXISTS projection_dead_letters (
    projection      text NOT NULL,
    case_id         uuid NOT NULL,
    case_version    integer NOT NULL,
    global_position bigint NOT NULL,
    event_type      text NOT NULL,
    error           text NOT NULL,
    recorded_at     timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (projection, case_id, case_version)
);
ALTER TABLE projection_dead_letters ADD COLUMN IF NOT EXISTS retried_at timestamptz;
"""


@dataclass(frozen=True)
class Generation:
    """One generation of a projection's tables: live, being rebuilt, or being verified."""

    projection: Projection
    suffix: str = LIVE

    @property
    def key(self) -> str:
        """Its name in ``projection_state`` and ``projection_dead_letters``."""
        return self.projection.name + {LIVE: "", NEXT: "@next", VERIFY: "@verify"}[self.suffix]

    @property
    def lock_id(self) -> int:
        """The advisory lock a batch holds shared and a swap or check holds exclusive."""
        return 7_120_000 + zlib.crc32(self.projection.name.encode()) % 100_000

    def name(self, table: Table | str) -> str:
        return (table if isinstance(table, str) else table.name) + self.suffix

    def ident(self, table: Table | str) -> Identifier:
        return Identifier(self.name(table))

    @property
    def versions(self) -> str:
        return self.name(f"{self.projection.name}_versions")

    def sibling(self, suffix: str) -> Generation:
        return Generation(self.projection, suffix)


def create_state_tables(conn: Connection[DictRow]) -> None:
    conn.execute(_STATE_SCHEMA)


def create(conn: Connection[DictRow], gen: Generation) -> None:
    """Create the generation's tables, indexes and tracking where missing, and add columns
    a newer projection declares to tables made by an older one."""
    for table in gen.projection.tables:
        _create_table(conn, gen, table)
    versions = Identifier(gen.versions)
    created = not _exists(conn, gen.versions)
    conn.execute(
        SQL(
            "CREATE TABLE IF NOT EXISTS {} (case_id uuid NOT NULL, version integer NOT NULL,"
            " blocked_version integer, CONSTRAINT {} PRIMARY KEY (case_id))"
        ).format(versions, Identifier(f"{gen.versions}_pkey"))
    )
    conn.execute(
        "INSERT INTO projection_state (projection) VALUES (%s) ON CONFLICT DO NOTHING", (gen.key,)
    )
    # Tables built by this very projection (new ones, or a rebuild's) carry its fingerprint;
    # live tables an older one built keep theirs, and wait for a rebuild (needs_rebuild).
    fresh = gen.suffix != LIVE or (created and not _has_rows(conn, gen))
    if created and gen.suffix == LIVE:
        _adopt(conn, gen)
    if fresh:
        conn.execute(
            "UPDATE projection_state SET fingerprint = %s"
            " WHERE projection = %s AND fingerprint IS NULL",
            (fingerprint(gen.projection), gen.key),
        )


def fingerprint(projection: Projection) -> str:
    """What the projection's tables and fold are: its live tables must have been built by
    a projection with the same fingerprint."""
    spec = repr((type(projection).__qualname__, projection.version, projection.tables))
    return hashlib.sha256(spec.encode()).hexdigest()[:16]


def needs_rebuild(conn: Connection[DictRow], gen: Generation) -> bool:
    """Whether the live tables were built by another version of the projection (tables
    from before an upgrade that changed its columns or its fold)."""
    row = conn.execute(
        "SELECT fingerprint FROM projection_state WHERE projection = %s", (gen.key,)
    ).fetchone()
    return row is not None and row["fingerprint"] != fingerprint(gen.projection)


def _has_rows(conn: Connection[DictRow], gen: Generation) -> bool:
    return any(
        conn.execute(SQL("SELECT 1 FROM {} LIMIT 1").format(gen.ident(t))).fetchone()
        for t in gen.projection.tables
    )


def _create_table(conn: Connection[DictRow], gen: Generation, table: Table) -> None:
    name = gen.ident(table)
    columns = [*table.columns, *table.derived, *table.kept]
    body = SQL(", ").join(SQL("{} {}").format(Identifier(c.name), SQL(c.sql)) for c in columns)
    key = SQL(", ").join(Identifier(c) for c in table.key)
    conn.execute(
        SQL("CREATE TABLE IF NOT EXISTS {} ({}, CONSTRAINT {} PRIMARY KEY ({}))").format(
            name, body, Identifier(f"{gen.name(table)}_pkey"), key
        )
    )
    for column in columns:
        conn.execute(
            SQL("ALTER TABLE {} ADD COLUMN IF NOT EXISTS {} {}").format(
                name, Identifier(column.name), SQL(column.sql)
            )
        )
    if table.storage:
        conn.execute(SQL("ALTER TABLE {} SET ({})").format(name, SQL(table.storage)))
    for suffix, spec in table.indexes:
        # "a, b" indexes those columns; "USING gin (x)" or "(a) INCLUDE (b) WHERE c" is
        # taken as written.
        raw = spec.startswith(("USING", "("))
        on = SQL(spec) if raw else SQL("({})").format(SQL(spec))
        conn.execute(
            SQL("CREATE INDEX IF NOT EXISTS {} ON {} {}").format(
                Identifier(f"{gen.name(table)}_{suffix}"), name, on
            )
        )
    if not any(c == "case_id" for c in table.key[:1]) and not any(
        spec.split(",")[0].strip() == "case_id" for _, spec in table.indexes
    ):
        raise AssertionError(f"{table.name}: its rows are read by case_id; index it")


def _adopt(conn: Connection[DictRow], gen: Generation) -> None:
    """Tables written before projections had versions tables: their ``case_list`` rows say
    which version each case reflects, and the older worker kept every table in step."""
    if not _exists(conn, "case_list") or gen.projection.name not in ("case_list", "work_queues"):
        return
    conn.execute(
        SQL("INSERT INTO {} (case_id, version) SELECT case_id, version FROM case_list").format(
            Identifier(gen.versions)
        )
    )


def _exists(conn: Connection[DictRow], name: str) -> bool:
    row = conn.execute("SELECT to_regclass(%s) IS NOT NULL AS found", (name,)).fetchone()
    return bool(row and row["found"])


def exists(conn: Connection[DictRow], gen: Generation) -> bool:
    """Whether the generation has its tables (a rebuild killed midway left them)."""
    return _exists(conn, gen.versions)


def drop(conn: Connection[DictRow], gen: Generation) -> None:
    """Drop the generation's tables and tracking (never the live one's)."""
    assert gen.suffix != LIVE, "the live tables are replaced by a swap, never dropped"
    for name in [gen.name(t) for t in gen.projection.tables] + [gen.versions]:
        conn.execute(SQL("DROP TABLE IF EXISTS {} CASCADE").format(Identifier(name)))
    conn.execute("DELETE FROM projection_state WHERE projection = %s", (gen.key,))
    conn.execute("DELETE FROM projection_dead_letters WHERE projection = %s", (gen.key,))


def swap(conn: Connection[DictRow], new: Generation, after: list[AfterSwap]) -> None:
    """Make ``new`` the live generation, in the caller's transaction (which holds the
    projection's lock exclusively): rename its tables, indexes and keys to the live names,
    drop the old ones, move its tracking, and let ``after`` recreate views over them."""
    live = new.sibling(LIVE)
    tables: list[Table | str] = [*new.projection.tables, new.versions.removesuffix(new.suffix)]
    for table in tables:
        base = table if isinstance(table, str) else table.name
        _rename(conn, base, LIVE, _OLD, table)
        _rename(conn, base, new.suffix, LIVE, table)
        conn.execute(SQL("DROP TABLE {} CASCADE").format(Identifier(base + _OLD)))
    conn.execute("DELETE FROM projection_state WHERE projection = %s", (live.key,))
    conn.execute(
        "UPDATE projection_state SET projection = %s, rebuilt_at = now() WHERE projection = %s",
        (live.key, new.key),
    )
    conn.execute("DELETE FROM projection_dead_letters WHERE projection = %s", (live.key,))
    conn.execute(
        "UPDATE projection_dead_letters SET projection = %s WHERE projection = %s",
        (live.key, new.key),
    )
    for recreate in after:
        recreate(conn)


def _rename(conn: Connection[DictRow], base: str, old: str, new: str, table: Table | str) -> None:
    conn.execute(
        SQL("ALTER TABLE {} RENAME TO {}").format(Identifier(base + old), Identifier(base + new))
    )
    conn.execute(
        SQL("ALTER TABLE {} RENAME CONSTRAINT {} TO {}").format(
            Identifier(base + new), Identifier(f"{base}{old}_pkey"), Identifier(f"{base}{new}_pkey")
        )
    )
    for suffix, _ in table.indexes if isinstance(table, Table) else ():
        conn.execute(
            SQL("ALTER INDEX {} RENAME TO {}").format(
                Identifier(f"{base}{old}_{suffix}"), Identifier(f"{base}{new}_{suffix}")
            )
        )


@dataclass(frozen=True)
class Drift:
    """A row that one generation holds and the other does not hold alike."""

    table: str
    side: str  # "live" or "rebuilt"
    row: dict[str, object]


def compare(conn: Connection[DictRow], live: Generation, rebuilt: Generation) -> list[Drift]:
    """Every row of ``live`` without an equal row in ``rebuilt``, and the other way round,
    over the columns the projection writes (not the owner's ``kept`` columns)."""
    drifts: list[Drift] = []
    for table in live.projection.tables:
        columns = SQL(", ").join(Identifier(c) for c in table.written)
        order = SQL(", ").join(Identifier(c) for c in table.key)
        for side, first, second in (("live", live, rebuilt), ("rebuilt", rebuilt, live)):
            rows = conn.execute(
                SQL("SELECT {c} FROM {a} EXCEPT ALL SELECT {c} FROM {b} ORDER BY {o}").format(
                    c=columns, a=first.ident(table), b=second.ident(table), o=order
                )
            ).fetchall()
            drifts += [Drift(table.name, side, dict(row)) for row in rows]
    return drifts
