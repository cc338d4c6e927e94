"""The SQL table source: polls a PostgreSQL or MariaDB table incrementally, restart-safe, and
without losing a row whose transaction commits late (after newer rows were read).

Registered as ``OPENERS["sql"]``; the runner saves each batch's ``position`` (JSON) after the
batch is stored, and a restart resumes from it. A row read twice is harmless: its dedup claim
(record id and content hash) makes the second reading a duplicate, and an updated row is a new
fact. So every rule below errs on the side of reading again.

PostgreSQL, by transaction snapshot (no id or timestamp high-water mark): each row is read with
the 64-bit id of the transaction that wrote it (its ``xmin``, widened with the epoch of the
poll's snapshot) and ordered by (xid, key). Every transaction older than the poll snapshot's
xmin has finished, so once a poll has caught up (a batch that is not full) the next one reads
from that xmin on; while catching up in full batches it goes on after the last row read and
remembers the lowest snapshot xmin it saw, to come back to once caught up. Assumptions:
``xmin`` is widened relative to the snapshot's xmax, which is right for any row written fewer
than 2^32 transactions before the poll (a connector that polls at least once per ~4 billion
transactions; rows frozen before PostgreSQL 9.4 read as very old, and are read on a first
poll only). Each poll scans the table (``xmin`` has no index); views have no ``xmin``.

MariaDB, by an increasing ``cursor`` column:
- an AUTO_INCREMENT id: ids taken by transactions still running at the poll can commit later,
  below the highest id read. The saved position stays below the first gap in the ids read while
  any transaction begun before the gap was seen (``information_schema.INNODB_TRX``, asked
  before the next poll's snapshot) still runs, or until ``gap_timeout`` passes (then it moves
  on, logs it and records it in the position). A settled gap is read once more, then its ids
  are final (rolled back, or deleted);
- a timestamp the database sets: a row of a running transaction is stamped no earlier than that
  transaction's start, so the position never passes the start of the oldest transaction running
  at the poll, less a second (the same catching up and coming back as on PostgreSQL).
"""

from __future__ import annotations

import base64
import logging
import math
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import date, datetime, time, timedelta
from decimal import Decimal
from typing import Any, Protocol
from urllib.parse import unquote, urlsplit
from uuid import UUID, uuid4

import psycopg
import psycopg.conninfo
import pymysql  # type: ignore[import-untyped]  # no stubs pinned (types-PyMySQL)
from psycopg import sql

from adapters.connectors import OPENERS, Access, Batch
from domain.calendar import parse_duration
from services.connectors import Connector, SqlSource
from services.ingestion import SourceRecord

log = logging.getLogger(__name__)
_WRAP = 1 << 32
_READ_AHEAD = 10  # batches per PostgreSQL poll
_MARGIN = timedelta(seconds=1)
_INTEGERS = ("tinyint", "smallint", "mediumint", "int", "bigint", "decimal")


def _number(value: float) -> Any:
    return value if math.isfinite(value) else str(value)


def _binary(value: bytes | bytearray | memoryview) -> str:
    return base64.b64encode(bytes(value)).decode("ascii")


_AS_JSON: tuple[tuple[type | tuple[type, ...], Callable[[Any], Any]], ...] = (
    (float, _number),
    ((Decimal, UUID), str),
    ((datetime, date, time), lambda value: value.isoformat()),
    (timedelta, lambda value: value.total_seconds()),
    ((bytes, bytearray, memoryview), _binary),
    (Mapping, lambda value: {str(k): json_value(v) for k, v in value.items()}),
    ((list, tuple, set), lambda value: [json_value(v) for v in value]),
)


def json_value(value: Any) -> Any:
    """``value`` as JSON can hold it: decimals as exact text, times as ISO 8601 text, binary
    as base64 text, and containers converted inside."""
    if value is None or isinstance(value, str | bool | int):
        return value
    for kinds, convert in _AS_JSON:
        if isinstance(value, kinds):
            return convert(value)
    return str(value)


@dataclass
class Window:
    """Where a catch-up-and-come-back poll stands: rows ordered by (order, key) are read from
    ``low`` (inclusive) and after ``after`` (exclusive); ``back`` is the lowest bound seen while
    catching up, where the next pass starts once caught up."""

    low: Any = None
    after: list[Any] | None = None
    back: Any = None

    @classmethod
    def of(cls, position: Any) -> Window:
        data = position if isinstance(position, Mapping) else {}
        return cls(data.get("low"), data.get("after"), data.get("back"))

    def advance(self, last: list[Any] | None, full: bool, bound: Any) -> None:
        """After a poll that read up to ``last`` (a full batch or not), with ``bound`` the
        order value below which every row is settled at that poll."""
        self.back = bound if self.back is None else min(self.back, bound)
        if full and last is not None:
            self.after = last
            return
        self.low = self.back if self.low is None else max(self.low, self.back)
        self.after, self.back = None, None

    def as_json(self) -> dict[str, Any]:
        return {"low": self.low, "after": self.after, "back": self.back}


class SqlTableSource:
    """A :class:`~adapters.connectors.Source` over one table; see the module's docstring."""

    def __init__(self, connector: Connector, position: Any, access: Access) -> None:
        self.connector = connector
        self.spec: SqlSource = connector.source
        self.password = (
            access.secret(self.spec.password_secret) if self.spec.password_secret else None
        )
        self.position: dict[str, Any] = dict(position) if isinstance(position, Mapping) else {}
        self._reader: _Reader | None = None
        #: Batches read by one poll and not handed out yet, each with its position.
        self._ahead: list[tuple[list[SourceRecord], dict[str, Any]]] = []

    def next_batch(self, limit: int) -> Batch | None:
        size = max(1, min(limit, self.spec.batch_size))
        if not self._ahead:
            try:
                if self._reader is None:
                    self._reader = _READERS[self.spec.dialect](self)
                self._ahead = self._reader.poll(size, self.position)
            except Exception:
                self.close()  # reconnect on the next batch; the runner backs off and retries
                raise
        records, position = self._ahead.pop(0)
        self.position = position
        if not records:
            return None
        return Batch(records, f"{self.connector.name}:{uuid4().hex}", position)

    def close(self) -> None:
        reader, self._reader, self._ahead = self._reader, None, []
        if reader is not None:
            reader.close()

    # -- shared by the readers -----------------------------------------------------------

    def record(self, names: Sequence[str], values: Sequence[Any], where: str) -> SourceRecord:
        return SourceRecord({n: json_value(v) for n, v in zip(names, values, strict=True)}, where)

    def key_columns(self) -> list[str]:
        return list(self.spec.key)

    def table_parts(self) -> list[str]:
        return self.spec.table.split(".")


class _Reader(Protocol):
    """One dialect's way of reading the next rows after ``position``."""

    def poll(
        self, size: int, position: dict[str, Any]
    ) -> list[tuple[list[SourceRecord], dict[str, Any]]]:
        """The next batches of at most ``size`` records, each with the position after it
        (at least one, maybe empty)."""
        ...

    def close(self) -> None: ...


def _key_text(keys: Sequence[str], values: Sequence[Any]) -> str:
    return ",".join(f"{k}:{json_value(v)}" for k, v in zip(keys, values, strict=True))


# -- PostgreSQL ----------------------------------------------------------------------------


class _Postgres(_Reader):
    """Reads by (64-bit xid, key) under one repeatable-read snapshot per poll."""

    def __init__(self, source: SqlTableSource) -> None:
        self.source = source
        url = source.spec.url
        if source.password:
            url = psycopg.conninfo.make_conninfo(url, password=source.password)
        self.conn = psycopg.connect(url, autocommit=False)
        self.conn.isolation_level = psycopg.IsolationLevel.REPEATABLE_READ
        self.conn.read_only = True

    def close(self) -> None:
        self.conn.close()

    def poll(
        self, size: int, position: dict[str, Any]
    ) -> list[tuple[list[SourceRecord], dict[str, Any]]]:
        """Up to :data:`_READ_AHEAD` batches in one query: each poll scans the table (there is
        no index on ``xmin``), so reading one batch per scan made a large import quadratic."""
        window = Window.of(position)
        wanted = size * _READ_AHEAD
        with self.conn.transaction():
            snapshot = self.conn.execute(
                "SELECT pg_snapshot_xmin(s)::text::bigint, pg_snapshot_xmax(s)::text::bigint"
                " FROM pg_current_snapshot() s"
            ).fetchone()
            assert snapshot is not None
            xmin, xmax = snapshot
            query, params = self._query(window, xmax, wanted)
            cursor = self.conn.execute(query, params)
            rows = cursor.fetchall()
            names = [d.name for d in (cursor.description or [])]
        keys = self.source.key_columns()
        width = 1 + len(keys)
        records = [
            self.source.record(
                names[width:], row[width:], f"xid:{row[0]}/{_key_text(keys, row[1:width])}"
            )
            for row in rows
        ]
        batches = []
        for start in range(0, max(len(rows), 1), size):
            chunk = rows[start : start + size]
            last = [json_value(v) for v in chunk[-1][:width]] if chunk else None
            final = start + size >= len(rows)
            window.advance(last, len(rows) == wanted if final else True, xmin)
            batches.append((records[start : start + size], window.as_json()))
        return batches

    def _query(self, window: Window, xmax: int, size: int) -> tuple[sql.Composed, dict[str, Any]]:
        xid = sql.SQL(
            "(%(xmax)s::bigint - ((%(xmax)s::bigint - xmin::text::bigint) %% {w} + {w}) %% {w})"
        ).format(w=sql.Literal(_WRAP))
        keys = [sql.Identifier(k) for k in self.source.key_columns()]
        columns = self.source.spec.columns
        chosen = sql.SQL(", ").join(map(sql.Identifier, columns)) if columns else sql.SQL("t.*")
        conditions: list[sql.Composable] = [sql.SQL("TRUE")]
        params: dict[str, Any] = {"xmax": xmax, "size": size}
        if window.low is not None:
            conditions.append(sql.SQL("{xid} >= %(low)s").format(xid=xid))
            params["low"] = window.low
        if window.after is not None:
            marks = sql.SQL(", ").join(sql.Placeholder(f"a{i}") for i in range(len(window.after)))
            conditions.append(
                sql.SQL("({}) > ({})").format(sql.SQL(", ").join([xid, *keys]), marks)
            )
            params |= {f"a{i}": v for i, v in enumerate(window.after)}
        query = sql.SQL(
            "SELECT {xid}, {keys}, {chosen} FROM {table} t WHERE {where}"
            " ORDER BY 1, {keys} LIMIT %(size)s"
        ).format(
            xid=xid,
            keys=sql.SQL(", ").join(keys),
            chosen=chosen,
            table=sql.Identifier(*self.source.table_parts()),
            where=sql.SQL(" AND ").join(conditions),
        )
        return query, params


# -- MariaDB -------------------------------------------------------------------------------


class _MariaDB(_Reader):
    """Reads by (cursor, key); holds back at id gaps or at the oldest running transaction."""

    def __init__(self, source: SqlTableSource) -> None:
        self.source = source
        self.spec = source.spec
        self.cursor_column = self.spec.cursor or self.spec.key[0]
        self.gap_timeout = parse_duration(self.spec.gap_timeout, timedelta(hours=24))
        self.conn = _mariadb_connect(self.spec.url, source.password)
        self.by_id = self._cursor_type() in _INTEGERS
        self.keys = [self.cursor_column, *(k for k in self.spec.key if k != self.cursor_column)]
        self.width = len(self.keys)

    def close(self) -> None:
        self.conn.close()

    def _run(self, query: str, params: Sequence[Any] = ()) -> tuple[list[str], list[Any]]:
        with self.conn.cursor() as cursor:
            cursor.execute(query, params)
            names = [d[0] for d in cursor.description or []]
            return names, list(cursor.fetchall())

    def _cursor_type(self) -> str:
        parts = self.source.table_parts()
        schema = parts[0] if len(parts) > 1 else None
        _, rows = self._run(
            "SELECT DATA_TYPE FROM information_schema.COLUMNS WHERE TABLE_NAME = %s"
            " AND COLUMN_NAME = %s AND TABLE_SCHEMA = COALESCE(%s, DATABASE())",
            (parts[-1], self.cursor_column, schema),
        )
        if not rows:
            raise LookupError(
                f"connector {self.source.connector.name!r}: the table {self.spec.table} has no "
                f"column {self.cursor_column!r} (source.cursor); name an AUTO_INCREMENT id or "
                "a timestamp the database sets"
            )
        return str(rows[0][0]).lower()

    def _running(self) -> tuple[bool, datetime | None, datetime]:
        """Whether INNODB_TRX is fresh, the start of the oldest transaction running (not ours)
        and the server's time. INNODB_TRX is a cache, refreshed only after 0.1 s without a
        read: our own transaction, begun for the question, is listed only in a fresh one (a
        stale one could miss a transaction that began since, or show one that ended)."""
        try:
            self._run("START TRANSACTION WITH CONSISTENT SNAPSHOT, READ ONLY")
            _, rows = self._run(
                "SELECT trx_mysql_thread_id = CONNECTION_ID(), trx_started, NOW(6)"
                " FROM information_schema.INNODB_TRX"
            )
            _, now = self._run("SELECT NOW(6)")
        finally:
            self.conn.commit()
        others = [started for mine, started, _ in rows if not mine]
        fresh = len(others) < len(rows)
        return fresh, (min(others) if others else None), now[0][0]

    def _select(
        self, low: Any, after: list[Any] | None, size: int
    ) -> tuple[list[str], list[Any], datetime]:
        """Rows after ``after`` (from ``low``) in one consistent snapshot, and the server's
        time just after the snapshot began."""
        quoted = [_quote(k) for k in self.keys]
        columns = self.spec.columns
        chosen = ", ".join(_quote(c) for c in columns) if columns else "t.*"
        where, params = ["TRUE"], []
        if low is not None:
            where.append(f"{quoted[0]} >= %s")
            params.append(low)
        if after is not None:
            where.append(f"({', '.join(quoted)}) > ({', '.join(['%s'] * len(after))})")
            params += after
        table = ".".join(_quote(p) for p in self.source.table_parts())
        try:
            self._run("START TRANSACTION WITH CONSISTENT SNAPSHOT, READ ONLY")
            _, seen = self._run("SELECT NOW(6)")
            names, rows = self._run(
                f"SELECT {', '.join(quoted)}, {chosen} FROM {table} t"
                f" WHERE {' AND '.join(where)} ORDER BY {', '.join(quoted)} LIMIT %s",
                (*params, size),
            )
        finally:
            self.conn.commit()
        return names, rows, seen[0][0]

    def _records(self, names: list[str], rows: list[Any]) -> list[SourceRecord]:
        width, keys = self.width, self.keys
        label = "id" if self.by_id else "at"
        return [
            self.source.record(
                names[width:],
                row[width:],
                f"{label}:{json_value(row[0])}"
                + (f"/{_key_text(keys[1:], row[1:width])}" if width > 1 else ""),
            )
            for row in rows
        ]

    def poll(
        self, size: int, position: dict[str, Any]
    ) -> list[tuple[list[SourceRecord], dict[str, Any]]]:
        if self.by_id:
            return [self._poll_ids(size, position)]
        return [self._poll_times(size, position)]

    # -- a timestamp cursor: never past the oldest running transaction's start -----------

    def _poll_times(
        self, size: int, position: dict[str, Any]
    ) -> tuple[list[SourceRecord], dict[str, Any]]:
        window = Window.of(position)
        fresh, oldest, now = self._running()  # before the snapshot: see the module's docstring
        start = min(oldest, now) if oldest is not None else now
        bound = json_value(start - _MARGIN)  # trx_started has whole seconds
        if not fresh:  # not known: stay where we are
            bound = window.low if window.low is not None else json_value(datetime.min)
        names, rows, _ = self._select(window.low, window.after, size)
        last = [json_value(v) for v in rows[-1][: self.width]] if rows else None
        window.advance(last, len(rows) == size, bound)
        return self._records(names, rows), window.as_json()

    # -- an AUTO_INCREMENT cursor: held below the first gap while it may still fill ------

    def _poll_ids(
        self, size: int, position: dict[str, Any]
    ) -> tuple[list[SourceRecord], dict[str, Any]]:
        state = _IdState.of(position)
        low, after = None, state.after
        if state.hold is not None and self._gap_settled(state):
            low, after = (state.safe or 0) + 1, None  # read the gap again, now settled
            state.hold = None
        names, rows, seen = self._select(low, after, size)
        state.walk([int(r[0]) for r in rows], seen)
        if rows:
            state.after = [json_value(v) for v in rows[-1][: self.width]]
        return self._records(names, rows), state.as_json()

    def _gap_settled(self, state: _IdState) -> bool:
        """Whether every transaction that began before the gap was seen has ended (asked
        before this poll's snapshot, so their rows are visible in it), or the gap has waited
        longer than ``gap_timeout``."""
        assert state.hold is not None
        fresh, oldest, now = self._running()
        seen = datetime.fromisoformat(state.hold["seen"])
        if fresh and (oldest is None or oldest > seen):
            return True
        if now - datetime.fromisoformat(state.hold["since"]) < self.gap_timeout:
            return False
        log.warning(
            "connector %s: ids after %s stayed missing for %s while a transaction begun at %s"
            " ran; moving on (source.gap_timeout)",
            self.source.connector.name, state.safe, self.gap_timeout, oldest,
        )  # fmt: skip
        skipped = {"after": state.safe, "up_to": state.checked, "at": json_value(now)}
        state.skipped = [*state.skipped, skipped][-20:]
        return True


@dataclass
class _IdState:
    """An id cursor's position: ``safe``, every id up to it is read or will never appear;
    ``checked``, ids up to it were looked at for gaps; ``after``, the last (id, key) read;
    ``hold``, when the latest gap was seen (a transaction begun before may still fill it) and
    since when ``safe`` is held; ``skipped``, gaps given up after ``gap_timeout``."""

    safe: int | None
    checked: int | None
    after: list[Any] | None
    hold: dict[str, Any] | None
    skipped: list[dict[str, Any]]

    @classmethod
    def of(cls, position: Any) -> _IdState:
        data = position if isinstance(position, Mapping) else {}
        return cls(
            data.get("safe"), data.get("checked"), data.get("after"), data.get("hold"),
            list(data.get("skipped", [])),
        )  # fmt: skip

    def walk(self, ids: list[int], seen: datetime) -> None:
        """Look at the ids read for gaps. Ids up to ``checked`` are final (read before, or
        their gap settled); a new gap, ``seen`` at that time, holds ``safe`` while a
        transaction begun before it may still fill it. Ids start at 1 on a first poll."""
        frontier, gap = self.safe or 0, False
        for value in ids:
            if not gap and value > max(frontier, self.checked or 0) + 1:
                gap = value > (self.checked or 0)
            if not gap:
                frontier = value
        if ids:
            self.checked = max(ids[-1], self.checked or 0)
        if gap:
            since = self.hold["since"] if self.hold else seen.isoformat()
            self.hold = {"seen": seen.isoformat(), "since": since}
        if self.hold is None and ids:
            self.safe = max(frontier, self.safe or 0)

    def as_json(self) -> dict[str, Any]:
        return {
            "safe": self.safe, "checked": self.checked, "after": self.after,
            "hold": self.hold, "skipped": self.skipped,
        }  # fmt: skip


def _quote(name: str) -> str:
    return "`" + name.replace("`", "``") + "`"


def _mariadb_connect(url: str, password: str | None) -> Any:
    """A connection from ``mariadb://user[:password]@host[:port]/database`` (or ``mysql://``)."""
    parts = urlsplit(url)
    if parts.scheme not in ("mariadb", "mysql", "mysql+pymysql") or not parts.path.strip("/"):
        raise ValueError(
            f"source.url {url!r} is not a MariaDB address; write "
            "mariadb://user@host:3306/database (the password by source.password_secret)"
        )
    return pymysql.connect(
        host=parts.hostname or "127.0.0.1",
        port=parts.port or 3306,
        user=unquote(parts.username or "root"),
        password=password if password is not None else unquote(parts.password or ""),
        database=unquote(parts.path.strip("/")),
        autocommit=True,
        connect_timeout=10,
    )


_READERS: dict[str, Callable[[SqlTableSource], _Reader]] = {
    "postgresql": _Postgres,
    "mariadb": _MariaDB,
}


def open_sql(connector: Connector, position: Any, access: Access) -> SqlTableSource:
    """The source of a ``kind: sql`` connector, resuming at ``position``."""
    return SqlTableSource(connector, position, access)


OPENERS["sql"] = open_sql
