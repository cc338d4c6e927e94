"""``caseledger audit verify``: recompute the event store's tamper evidence and report every
problem, naming the case and version where it can.

Per event log (the case ledger's and the case-type registry's):
1. the chain, streamed in (originator_id, originator_version) order: each event's hash
   recomputed from its content and its previous version's stored hash; versions 1..N with
   none missing; versions stored in the order they were made. A hash that fits another case
   (or version) names the event as moved there;
2. the tree, streamed in audit_leaf order: leaves 0, 1, 2, ... with none missing, in
   notification order, none inserted behind a checkpoint; the Merkle root at every
   checkpoint's size equal to the root it signed;
3. the checkpoints: each signed by a trusted key, and each published copy on the
   ``audit-checkpoints`` topic present in the table and equal to it (a deleted or altered row
   is caught by its copy, which also checks the tree);
4. the case list's versions, an independent copy: a case whose newest events were deleted.

Memory stays bounded (server-side cursors; only the problems found are kept).
"""

from __future__ import annotations

import json
import logging
from collections import Counter
from collections.abc import Callable, Iterator
from dataclasses import asdict, dataclass, field
from typing import Any
from uuid import UUID

from kafka import KafkaConsumer
from kafka.errors import KafkaError
from kafka.structs import TopicPartition
from psycopg import Connection
from psycopg.rows import DictRow, tuple_row
from psycopg.sql import SQL, Identifier, Literal
from psycopg_pool import ConnectionPool

from domain.evidence import ZERO_HASH, Frontier, event_hash, leaf_hash
from infra.audit_keys import verify_signature
from infra.audit_ledger import (
    Checkpoint,
    head_leaves,
    message_of,
    stored_checkpoints,
    tree_root,
)
from infra.settings import Settings

log = logging.getLogger(__name__)
Progress = Callable[[int, int], None]
_ITERSIZE = 20_000
#: Problems kept in detail; beyond, only counted (a wholesale rewrite is one story).
MAX_DETAILED = 10_000
_RANGE_NAMES = 20  # events named in a checkpoint's range when its root differs

_CHAIN = """
SELECT originator_id, originator_version, notification_id, topic, state, audit_hash
FROM {table} ORDER BY originator_id, originator_version
"""
_TREE = """
SELECT audit_leaf, notification_id, audit_hash, originator_id, originator_version
FROM {table} ORDER BY audit_leaf
"""
# Each case's newest event among the first ``size`` leaves, in case order: the case heads a
# checkpoint of that size signed.
_HEADS_AT = """
SELECT DISTINCT ON (originator_id) uuid_send(originator_id), originator_version, audit_hash
FROM {table} WHERE audit_leaf < {size} ORDER BY originator_id, originator_version DESC
"""
_LIST_AHEAD = """
SELECT c.case_id, c.version, s.stored FROM case_list c
CROSS JOIN LATERAL (SELECT coalesce(max(e.originator_version), 0) AS stored
                    FROM {table} e WHERE e.originator_id = c.case_id) s
WHERE c.version > s.stored
"""


@dataclass(frozen=True)
class Problem:
    """One thing wrong: its kind, the log, and the case, version and position where known."""

    kind: str
    log: str
    what: str
    case_id: str | None = None
    version: int | None = None
    position: int | None = None

    def __str__(self) -> str:
        where = [self.log]
        if self.case_id is not None:
            where.append(f"case {self.case_id}")
        if self.version is not None:
            where.append(f"version {self.version}")
        if self.position is not None and self.case_id is not None:
            where.append(f"position {self.position}")
        return f"{', '.join(where)}: {self.what} [{self.kind}]"


@dataclass
class Report:
    """What verify found."""

    events: dict[str, int] = field(default_factory=dict)
    checkpoints: int = 0
    published: int = 0
    problems: list[Problem] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    uncounted: int = 0  # problems beyond MAX_DETAILED
    kinds: Counter[str] = field(default_factory=Counter)  # every problem added, by kind

    def add(self, problem: Problem) -> None:
        self.kinds[problem.kind] += 1
        if len(self.problems) < MAX_DETAILED:
            self.problems.append(problem)
        else:
            self.uncounted += 1

    @property
    def count(self) -> int:
        return len(self.problems) + self.uncounted

    def by_kind(self) -> dict[str, int]:
        """Problems per kind, most frequent first (the ones only counted, past the detailed
        ones' limit without their kind, as "unclassified")."""
        counted = dict(self.kinds.most_common())
        if (rest := self.count - sum(counted.values())) > 0:
            counted["unclassified"] = rest
        return counted

    def what_to_do(self) -> list[str]:
        """What the operator should do about the problems found (nothing when intact)."""
        if self.ok:
            return []
        if set(self.kinds) == {"witness_unavailable"}:
            return [
                "The store itself checked out, but the published checkpoints could not be "
                "read: a deleted or altered checkpoint row would go unnoticed. Make the broker "
                "reachable (KAFKA_BOOTSTRAP_SERVERS) and run verify again, or run it with "
                "--skip-topic to accept not checking them."
            ]
        return [
            "Treat it as a security incident: recorded history was changed outside "
            "caseledger (or a checkpoint was forged or removed).",
            "1. Keep the evidence: copy the database now (pg_dump or a snapshot), before "
            "anything repairs or writes over it, and keep this report (--json lists every "
            "problem).",
            "2. Report it to whoever handles security incidents, with the cases and versions "
            "named here; database and access logs of the time tell who wrote them.",
            "3. The checkpoints published on the audit topic, outside the database, are what "
            "was signed: `caseledger audit bundle CASE_ID` proves a named case against the "
            "latest one, for the auditor's offline verifier. Where events were deleted or "
            "inserted no bundle can be made on this database (its log has holes): use bundles "
            "kept from before, or make them on the restored backup of step 4.",
            "4. To repair, restore a backup taken before the first problem and run verify "
            "on it: it holds when the only problems left are the published checkpoints newer "
            "than the backup (missing, with the events they signed); those events must be "
            "recorded again.",
        ]

    @property
    def ok(self) -> bool:
        return not self.problems

    def as_json(self) -> dict[str, Any]:
        return {
            "ok": self.ok,
            "events": sum(self.events.values()),
            "logs": self.events,
            "checkpoints": self.checkpoints,
            "published_checkpoints": self.published,
            "problems": [asdict(p) | {"message": str(p)} for p in self.problems],
            "more_problems": self.uncounted,
            "problems_by_kind": self.by_kind(),
            "notes": self.notes,
            "what_to_do": self.what_to_do(),
        }


@dataclass(frozen=True)
class _Slot:
    """Where an event could have been: a case, a version and the hash before it."""

    case_id: UUID
    version: int
    prev: bytes


@dataclass(frozen=True)
class _Mismatch:
    case_id: UUID
    version: int
    position: int
    topic: str
    state: bytes
    stored: bytes
    prev: bytes


class Verifier:
    """Verifies the logs ``tables`` (the case ledger's first) against their checkpoints."""

    def __init__(
        self,
        pool: ConnectionPool[Connection[DictRow]],
        tables: list[str],
        settings: Settings,
        trusted: dict[str, bytes],
    ) -> None:
        self.pool = pool
        self.tables = tables
        self.settings = settings
        #: key id -> raw public key of every key whose checkpoints count.
        self.trusted = trusted

    def verify(self, progress: Progress | None = None, *, read_topic: bool = True) -> Report:
        report = Report()
        show = progress or (lambda done, total: None)
        with self.pool.connection() as conn:
            stored = stored_checkpoints(conn)
            sizes = {t: _log_size(conn, t) for t in self.tables}
        published = self._published(report) if read_topic else []
        checkpoints = self._check_checkpoints(stored, published, report)
        total, done = 2 * sum(sizes.values()), 0
        for table in self.tables:
            report.events[table] = 0
            for count in self._chain(table, report):
                show(done + count, total)
            done += sizes[table]
            mine = sorted((c for c in checkpoints if c.log == table), key=lambda c: c.size)
            for count in self._tree(table, mine, report):
                show(done + count, total)
            done += sizes[table]
            self._heads(table, mine, report)
        self._case_list_versions(self.tables[0], report)
        show(total, total)
        return report

    # --- checkpoints ----------------------------------------------------------------------

    def _published(self, report: Report) -> list[Checkpoint]:
        try:
            messages = read_published(self.settings)
        except (KafkaError, OSError) as error:
            report.add(
                Problem(
                    "witness_unavailable",
                    self.settings.audit_topic,
                    f"the published checkpoints could not be read ({type(error).__name__}: "
                    f"{error}); a deleted or altered checkpoint row would go unnoticed: check "
                    "KAFKA_BOOTSTRAP_SERVERS and run verify again",
                )
            )
            return []
        mine = [m for m in messages if m.key_id in self.trusted]
        if len(mine) < len(messages):
            report.notes.append(
                f"{len(messages) - len(mine)} published checkpoints signed by keys not trusted "
                "here were left aside (another deployment's, or a retired key: pass it with "
                "--trusted-key)"
            )
        report.published = len(mine)
        return mine

    def _check_checkpoints(
        self, stored: list[Checkpoint], published: list[Checkpoint], report: Report
    ) -> list[Checkpoint]:
        """The checkpoints whose signature holds, from the table and from the topic; each
        problem with either reported."""
        report.checkpoints = len(stored)
        good: dict[tuple[str, int, str], Checkpoint] = {}
        by_size = {(c.log, c.size): c for c in stored}
        for checkpoint in stored:
            if self._signed(checkpoint, report, "in audit_checkpoints"):
                good[(checkpoint.log, checkpoint.size, checkpoint.root)] = checkpoint
        seen: set[tuple[str, int]] = set()
        for copy in published:
            if (copy.log, copy.size) in seen or not self._signed(copy, report, "published"):
                continue
            seen.add((copy.log, copy.size))
            good.setdefault((copy.log, copy.size, copy.root), copy)
            row = by_size.get((copy.log, copy.size))
            if row is None:
                report.add(
                    Problem(
                        "checkpoint_missing",
                        copy.log,
                        f"the checkpoint of size {copy.size:,} signed at {copy.signed_at} is on "
                        f"the {self.settings.audit_topic} topic but not in audit_checkpoints: "
                        "it was deleted from the table",
                    )
                )
            elif row.as_json() != copy.as_json():
                theirs, ours = copy.as_json(), row.as_json()
                changed = [k for k in {**theirs, **ours} if theirs.get(k) != ours.get(k)]
                report.add(
                    Problem(
                        "checkpoint_altered",
                        copy.log,
                        f"checkpoint #{row.id} (size {row.size:,}) differs from its published "
                        f"copy in {', '.join(changed)}: it was altered in the table",
                    )
                )
        for row in stored:
            if row.published and (row.log, row.size) not in seen and published:
                report.notes.append(
                    f"checkpoint #{row.id} of {row.log} (size {row.size:,}) is marked published "
                    "but its copy is not on the topic (the topic's retention dropped it?)"
                )
        return list(good.values())

    def _signed(self, checkpoint: Checkpoint, report: Report, where: str) -> bool:
        name = f"checkpoint #{checkpoint.id}" if checkpoint.id else "a checkpoint"
        key = self.trusted.get(checkpoint.key_id)
        if key is None:
            what = f"is signed by key {checkpoint.key_id}, which is not trusted: forged"
        elif not _signature_holds(key, checkpoint):
            what = "has a signature that does not hold for its content: forged or altered"
        else:
            return True
        report.add(
            Problem(
                "checkpoint_forged",
                checkpoint.log,
                f"{name} {where} (size {checkpoint.size:,}, signed at {checkpoint.signed_at}) "
                + what,
            )
        )
        return False

    # --- chain ----------------------------------------------------------------------------

    def _chain(self, table: str, report: Report) -> Iterator[int]:
        """Check every case's chain; yields how many events it read so far."""
        mismatches: list[_Mismatch] = []
        slots: list[_Slot] = []
        disorder: list[tuple[UUID, int, int, int]] = []  # case, version, position, previous
        followed: set[tuple[UUID, int]] = set()  # mismatches that have a next version
        case: UUID | None = None
        last_version, last_position, last_hash, count = 0, 0, ZERO_HASH, 0
        hashes_of = event_hash
        for case_id, version, position, topic, state, stored in _stream(
            self.pool, SQL(_CHAIN).format(table=Identifier(table))
        ):
            count += 1
            if not count % _ITERSIZE:
                yield count
            if case_id != case:
                case, last_version, last_position, last_hash = case_id, 0, 0, ZERO_HASH
            if version != last_version + 1:
                self._missing(table, case_id, last_version, version, last_hash, report, slots)
                last_version, last_position, last_hash = version, position, stored
                continue
            if position <= last_position and len(disorder) < MAX_DETAILED:
                disorder.append((case_id, version, position, last_position))
            if mismatches and (mismatches[-1].case_id, mismatches[-1].version) == (
                case_id,
                version - 1,
            ):
                followed.add((case_id, version - 1))
            if hashes_of(last_hash, case_id, version, topic, state) != stored:
                if len(mismatches) < MAX_DETAILED:
                    mismatches.append(
                        _Mismatch(case_id, version, position, topic, state, stored, last_hash)
                    )
                else:
                    report.uncounted += 1
            last_version, last_position, last_hash = version, position, stored
        report.events[table] = count
        moved = self._explain(table, mismatches, slots, followed, report)
        for case_id, version, position, before in disorder:
            if {(case_id, version), (case_id, version - 1)} & moved:
                continue  # a consequence of the move already reported
            report.add(
                Problem(
                    "order_changed",
                    table,
                    f"it is stored at position {position:,}, before version {version - 1} "
                    f"(position {before:,}): the log's order was changed",
                    str(case_id),
                    version,
                    position,
                )
            )
        yield count

    def _missing(
        self,
        table: str,
        case_id: UUID,
        last_version: int,
        version: int,
        last_hash: bytes,
        report: Report,
        slots: list[_Slot],
    ) -> None:
        if version <= last_version:  # only with the primary key dropped
            what = f"version {version} is stored twice"
        else:
            missing = range(last_version + 1, version)
            what = (
                f"version {missing[0]} is missing: the event was deleted"
                if len(missing) == 1
                else f"versions {missing[0]} to {missing[-1]} are missing: deleted"
            )
            if len(slots) < MAX_DETAILED:
                slots.append(_Slot(case_id, missing[0], last_hash))
        report.add(
            Problem(
                "event_missing",
                table,
                what + f" (version {version}'s hash cannot be checked without it)",
                str(case_id),
                last_version + 1 if version > last_version else version,
            )
        )

    def _explain(
        self,
        table: str,
        mismatches: list[_Mismatch],
        slots: list[_Slot],
        followed: set[tuple[UUID, int]],
        report: Report,
    ) -> set[tuple[UUID, int]]:
        """Report each event whose hash does not fit: moved when its hash fits another case's
        (or version's) place; its stored hash changed when its content still gives the hash
        its next version was chained to; its content changed otherwise. An event whose only
        fault is that its predecessor was moved away, or had its stored hash changed, is
        intact and not reported. Answers the places (case, version) that moved events now
        occupy. ``followed``: the mismatches that have a next version."""
        places = slots + [_Slot(m.case_id, m.version, m.prev) for m in mismatches]
        origins: dict[tuple[UUID, int], _Slot] = {}
        original: dict[tuple[UUID, int], bytes] = {}  # a place -> the hash of its own event
        for m in mismatches:
            for p in places:
                if (p.case_id, p.version) != (m.case_id, m.version) and (
                    event_hash(p.prev, p.case_id, p.version, m.topic, m.state) == m.stored
                ):
                    origins[(m.case_id, m.version)] = p
                    original[(p.case_id, p.version)] = m.stored
                    break
        rehashed = _rehashed(mismatches, origins)
        for m in mismatches:
            origin = origins.get((m.case_id, m.version))
            if origin is not None:
                elsewhere = origin.case_id != m.case_id
                where = f"case {origin.case_id} " if elsewhere else ""
                kind = "event_moved" if elsewhere else "order_changed"
                what = f"the event stored here was {where}version {origin.version}: it was moved"
                what += " to another case" if elsewhere else ""
            else:
                before = original.get((m.case_id, m.version - 1))
                if before is not None and (
                    event_hash(before, m.case_id, m.version, m.topic, m.state) == m.stored
                ):
                    continue  # intact: the event before it was moved away
                if (m.case_id, m.version - 1) in rehashed:
                    continue  # intact: only the stored hash before it was changed
                kind, what = _changed(m, rehashed, followed)
            report.add(Problem(kind, table, what, str(m.case_id), m.version, m.position))
        return set(origins)

    # --- tree -----------------------------------------------------------------------------

    def _tree(self, table: str, checkpoints: list[Checkpoint], report: Report) -> Iterator[int]:
        """Check the leaves and every checkpoint's root; yields how many leaves it read."""
        frontier = Frontier()
        pending = iter(checkpoints)
        target = next(pending, None)
        covered = 0  # the highest position a checkpoint at or below this leaf signed
        expected, last_position, differing, since = 0, 0, 0, 0
        recent: list[tuple[UUID, int, int]] = []  # events since the last checkpoint checked
        for leaf, position, stored, case_id, version in _stream(
            self.pool, SQL(_TREE).format(table=Identifier(table))
        ):
            if not frontier.size % _ITERSIZE and frontier.size:
                yield frontier.size
            if leaf != expected:
                report.add(
                    Problem(
                        "event_missing",
                        table,
                        (
                            f"leaf {expected:,} of the log is missing"
                            if leaf == expected + 1
                            else f"leaves {expected:,} to {leaf - 1:,} of the log are missing"
                        )
                        + f", between positions {last_position:,} and {position:,}: deleted",
                    )
                    if leaf > expected
                    else Problem(
                        "event_inserted",
                        table,
                        f"leaf {leaf:,} is taken twice: an event was inserted",
                        str(case_id),
                        version,
                        position,
                    )
                )
            if position <= covered:
                report.add(
                    Problem(
                        "event_inserted",
                        table,
                        f"it sits at leaf {leaf:,}, after the checkpoint that signed every "
                        f"event up to position {covered:,}, yet its position is "
                        f"{position:,}: it was inserted into the signed log",
                        str(case_id),
                        version,
                        position,
                    )
                )
            elif position <= last_position:
                report.add(
                    Problem(
                        "order_changed",
                        table,
                        f"at leaf {leaf:,} it comes after position {last_position:,}: the "
                        "log's order was changed",
                        str(case_id),
                        version,
                        position,
                    )
                )
            expected, last_position = max(expected, leaf + 1), max(last_position, position)
            frontier.append(leaf_hash(position, stored))
            since += 1
            if len(recent) < _RANGE_NAMES:
                recent.append((case_id, version, position))
            while target is not None and target.size == frontier.size:
                if differing:
                    differing += 1
                elif not _root_holds(target, frontier, position):
                    differing = 1
                    report.add(_differs(table, target, recent, since))
                covered = max(covered, target.position)
                recent, since = [], 0
                target = next(pending, None)
        if differing > 1:
            report.add(
                Problem(
                    "checkpoint_differs",
                    table,
                    f"{differing - 1} later checkpoints differ from the log too (each covers "
                    "the first one's events)",
                )
            )
        for beyond in [target, *pending] if target is not None else []:
            report.add(
                Problem(
                    "event_missing",
                    table,
                    f"checkpoint #{beyond.id or '(published)'} signed {beyond.size:,} events "
                    f"up to position {beyond.position:,}, but the log holds only "
                    f"{frontier.size:,}: events were deleted",
                )
            )
        yield frontier.size

    # --- an independent copy of each case's version ---------------------------------------

    def _heads(self, table: str, checkpoints: list[Checkpoint], report: Report) -> None:
        """The case heads the newest checkpoint signed, recomputed from the events: they
        differ, with nothing else wrong in the log, when the table the checkpointer keeps
        them in was changed before it signed (bundles against it would prove a case's
        history ends where it does not). When other problems were found, they say more."""
        latest = next((c for c in reversed(checkpoints) if c.heads is not None), None)
        if latest is None or any(p.log == table for p in report.problems):
            return
        query = SQL(_HEADS_AT).format(table=Identifier(table), size=Literal(latest.size))
        root, cases = tree_root(head_leaves(_stream(self.pool, query)))
        if (root.hex(), cases) != (latest.heads, latest.cases):
            report.add(
                Problem(
                    "heads_differ",
                    table,
                    f"the case heads signed in the checkpoint of size {latest.size:,} "
                    f"({latest.signed_at}: {latest.cases:,} cases) are not the newest event of "
                    f"each case in the log ({cases:,} cases): the table audit_heads was changed "
                    "before it was signed; evidence bundles against it cannot be trusted to "
                    "show where a case's history ends",
                )
            )

    def _case_list_versions(self, table: str, report: Report) -> None:
        """Cases the case list (a projection) knows at a version the store no longer holds:
        the last events of a case deleted, which neither its chain nor a gap shows."""
        with self.pool.connection() as conn:
            if conn.execute("SELECT to_regclass('case_list') AS t").fetchone()["t"] is None:  # type: ignore[index]
                return
            rows = conn.execute(SQL(_LIST_AHEAD).format(table=Identifier(table))).fetchall()
        for row in rows:
            first, last = row["stored"] + 1, row["version"]
            versions = f"version {first}" if first == last else f"versions {first} to {last}"
            report.add(
                Problem(
                    "event_missing",
                    table,
                    f"the case list holds version {last} of this case, the store ends at "
                    f"version {row['stored']}: {versions} deleted",
                    str(row["case_id"]),
                    first,
                )
            )


def _rehashed(
    mismatches: list[_Mismatch], origins: dict[tuple[UUID, int], _Slot]
) -> set[tuple[UUID, int]]:
    """The places whose stored hash alone was changed: the next version, also a mismatch,
    is chained to the hash the event's content gives."""
    by_place = {(m.case_id, m.version): m for m in mismatches}
    found: set[tuple[UUID, int]] = set()
    for m in mismatches:
        after = by_place.get((m.case_id, m.version + 1))
        if after is None or (m.case_id, m.version) in origins:
            continue
        own = event_hash(m.prev, m.case_id, m.version, m.topic, m.state)
        if event_hash(own, after.case_id, after.version, after.topic, after.state) == (
            after.stored
        ):
            found.add((m.case_id, m.version))
    return found


def _changed(
    m: _Mismatch, rehashed: set[tuple[UUID, int]], followed: set[tuple[UUID, int]]
) -> tuple[str, str]:
    """The kind and description of an event, not moved, whose hash does not fit."""
    if (m.case_id, m.version) in rehashed:
        return "hash_changed", (
            "its stored hash (audit_hash) was changed: its content still gives the hash "
            f"version {m.version + 1} was chained to"
        )
    if (m.case_id, m.version) in followed:
        return "content_changed", (
            "its content (state or topic) does not match its hash: changed after it was stored"
        )
    return "content_changed", (
        "its content (state or topic) does not match its stored hash: one of them was changed "
        "after it was stored (this is the case's newest event: no later hash tells which)"
    )


def _differs(
    table: str, checkpoint: Checkpoint, recent: list[tuple[UUID, int, int]], since: int
) -> Problem:
    named = ", ".join(f"case {c} version {v} (position {p:,})" for c, v, p in recent)
    more = f" and {since - len(recent):,} more" if since > len(recent) else ""
    return Problem(
        "checkpoint_differs",
        table,
        f"the log's first {checkpoint.size:,} events no longer hash to the root checkpoint "
        f"#{checkpoint.id or '(published)'} signed at {checkpoint.signed_at}: an event it "
        "covers was changed (its hash recomputed), moved, reordered, inserted or deleted; "
        f"the change is among the events added since the previous checkpoint: {named}{more}",
    )


def _root_holds(checkpoint: Checkpoint, frontier: Frontier, position: int) -> bool:
    return frontier.root().hex() == checkpoint.root and position == checkpoint.position


def _signature_holds(key: bytes, checkpoint: Checkpoint) -> bool:
    try:
        signature = bytes.fromhex(checkpoint.signature)
    except ValueError:
        return False
    return verify_signature(key, signature, message_of(checkpoint))


def _stream(pool: ConnectionPool[Connection[DictRow]], query: Any) -> Iterator[tuple[Any, ...]]:
    """Rows of ``query`` through a server-side cursor, in binary (bytea as bytes)."""
    with (
        pool.connection() as conn,
        conn.transaction(),
        conn.cursor(name="audit_verify", row_factory=tuple_row, binary=True) as cursor,
    ):
        cursor.itersize = _ITERSIZE
        cursor.execute(query)
        yield from cursor


def _log_size(conn: Connection[DictRow], table: str) -> int:
    row = conn.execute(
        SQL("SELECT coalesce(max(audit_leaf) + 1, 0) AS n FROM {table}").format(
            table=Identifier(table)
        )
    ).fetchone()
    return int(row["n"]) if row else 0


def read_published(settings: Settings, timeout_s: float = 10.0) -> list[Checkpoint]:
    """Every checkpoint on the audit topic, oldest first ([] when the topic does not exist)."""
    consumer = KafkaConsumer(
        bootstrap_servers=settings.kafka_servers,
        enable_auto_commit=False,
        request_timeout_ms=int(timeout_s * 1000) + 1000,
        consumer_timeout_ms=int(timeout_s * 1000),
    )
    try:
        partitions = consumer.partitions_for_topic(settings.audit_topic)
        if not partitions:
            return []
        assigned = [TopicPartition(settings.audit_topic, p) for p in sorted(partitions)]
        consumer.assign(assigned)
        consumer.seek_to_beginning(*assigned)
        ends = consumer.end_offsets(assigned)
        found: list[Checkpoint] = []
        while any(consumer.position(p) < ends[p] for p in assigned):
            batch = consumer.poll(timeout_ms=int(timeout_s * 1000))
            if not batch:
                raise KafkaError(f"no answer from {settings.audit_topic} in {timeout_s} s")
            for records in batch.values():
                found.extend(c for r in records if (c := _parse(r.value)) is not None)
        return found
    finally:
        consumer.close()


def _parse(value: bytes) -> Checkpoint | None:
    try:
        data = json.loads(value)
        return Checkpoint(
            log=str(data["log"]),
            size=int(data["size"]),
            position=int(data["position"]),
            root=str(data["root"]),
            signed_at=str(data["signed_at"]),
            key_id=str(data["key_id"]),
            signature=str(data["signature"]),
            published=True,
            heads=None if data.get("heads") is None else str(data["heads"]),
            cases=None if data.get("cases") is None else int(data["cases"]),
        )
    except (ValueError, KeyError, TypeError):
        log.warning("a message on the audit topic is not a checkpoint: %r", value[:200])
        return None
