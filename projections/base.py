"""What a projection is: a pure fold from one case's events to rows of the tables it owns.

A projection declares its tables (:class:`Table`) and one function, ``apply``, that changes
the rows one case holds in those tables as one event of that case does. It does no I/O: the
projection runner (``infra.projection_runner``) reads the rows of every case in a batch
together, folds the batch's events over them in memory, and writes only what changed, in
bulk, with the versions the projection reflects. A rebuild runs the same fold over the
event store, so a rebuilt table equals the live one row for row.

Rows are plain dicts of column values. ``apply`` must not change a row dict in place: it
puts a new dict (:func:`put`, :func:`update`) or removes the key (:func:`drop`), because the
runner finds what to write by comparing the rows it read with the rows ``apply`` left.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from domain.envelope import EventEnvelope

Row = dict[str, Any]
Key = tuple[Any, ...]
#: The rows one case holds in a projection's tables: table name -> primary key -> row.
CaseRows = dict[str, dict[Key, Row]]
#: Whether a state of a case type version is final: (case type, version, status) -> bool.
FinalStates = Callable[[str, int, str], bool]


@dataclass(frozen=True)
class Column:
    """A column and its SQL type (with constraints), as in ``CREATE TABLE``."""

    name: str
    sql: str


@dataclass(frozen=True)
class Table:
    """A table a projection owns.

    ``key`` is the primary key; every table has a ``case_id`` column, and the runner reads a
    case's rows by it. ``indexes`` are (name suffix, indexed columns), or (name suffix, the
    rest of a ``CREATE INDEX`` after the table: ``USING gin (x)``, ``(a) INCLUDE (b) WHERE
    c``). ``derived`` columns
    are computed by PostgreSQL (``GENERATED ALWAYS AS ... STORED``); ``kept`` columns are
    written by the table's owner outside the projection (e.g. the notifier's attempts): the
    projection never writes them, a rebuild carries them over, and a drift check ignores
    them.
    """

    name: str
    columns: tuple[Column, ...]
    key: tuple[str, ...]
    indexes: tuple[tuple[str, str], ...] = ()
    derived: tuple[Column, ...] = ()
    kept: tuple[Column, ...] = ()
    #: Storage parameters (``fillfactor=70`` leaves room for updates that stay on the page).
    storage: str = ""
    written: tuple[str, ...] = field(init=False)

    def __post_init__(self) -> None:
        names = tuple(c.name for c in self.columns)
        assert "case_id" in names, f"{self.name} has no case_id column"
        assert set(self.key) <= set(names), f"{self.name}: its key names unknown columns"
        object.__setattr__(self, "written", names)

    def key_of(self, row: Row) -> Key:
        return tuple(row[c] for c in self.key)


class Projection(ABC):
    """A read model: its name, its tables, and how one event changes a case's rows."""

    name: str
    tables: tuple[Table, ...]
    #: Raise it when the fold changes what it writes: a projection whose tables or version
    #: differ from those its live tables were built with is rebuilt by the worker.
    version: int = 1

    @abstractmethod
    def apply(self, rows: CaseRows, event: EventEnvelope) -> None:
        """Change ``rows`` (the case's rows after its version ``event.case_version - 1``) as
        ``event`` does. Raise ``ValueError`` (or ``KeyError``, ``TypeError``) for an event
        that cannot be applied: the runner sets it aside and holds the case behind it."""

    def table(self, name: str) -> Table:
        return next(t for t in self.tables if t.name == name)


def put(rows: CaseRows, table: Table, row: Row) -> None:
    """Add ``row`` to ``table``, or replace the row with its key."""
    rows[table.name][table.key_of(row)] = row


def update(rows: CaseRows, table: Table, key: Key, **changes: Any) -> None:
    """Replace the row of ``table`` with ``key`` by a copy with ``changes``."""
    rows[table.name][key] = {**rows[table.name][key], **changes}


def drop(rows: CaseRows, table: Table, key: Key) -> None:
    rows[table.name].pop(key, None)


def only(rows: CaseRows, table: Table) -> Row | None:
    """The row of a table that holds one row per case, if the case has it."""
    found = rows[table.name]
    return next(iter(found.values())) if found else None
