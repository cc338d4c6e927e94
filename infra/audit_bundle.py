"""Evidence bundles: every event of one case with its Merkle inclusion proof against a signed
checkpoint, in the JSON that ``domain/evidence.py`` checks offline (docs/audit.md).

Also the audit use cases the API serves (``services.audit.AuditTrail``)."""

from __future__ import annotations

import base64
import logging
from collections.abc import Iterable, Iterator
from typing import Any
from uuid import UUID

from kafka.errors import KafkaError
from psycopg.rows import tuple_row
from psycopg.sql import SQL, Identifier

from domain.evidence import BUNDLE_FORMAT, leaf_hash, node_hash
from infra.audit_ledger import CHECKPOINT_LOCK, Checkpoint, CheckpointStore, LogGap, head_leaves
from services.audit import CheckpointView, LogNotDense
from services.errors import CaseNotFound

log = logging.getLogger(__name__)
_CASE_EVENTS = """
SELECT notification_id, audit_leaf, originator_version, topic, state, audit_hash
FROM {table} WHERE originator_id = %s ORDER BY originator_version
"""
_LEAVES = (
    "SELECT notification_id, audit_hash FROM {table} WHERE audit_leaf < %s ORDER BY audit_leaf"
)

Range = tuple[int, int]  # [start, end) of leaves
_ATTEMPTS = 3


class _CaseMovedOn(Exception):
    """The case got newer events, signed by a checkpoint, while its bundle was made."""


def path_ranges(index: int, size: int) -> list[Range]:
    """The leaf ranges whose Merkle hashes make RFC 9162 PATH(index, D[size]), bottom-up."""
    path: list[Range] = []
    start, end = 0, size
    while end - start > 1:
        k = 1 << ((end - start - 1).bit_length() - 1)  # the largest power of two < n
        if index < start + k:
            path.append((start + k, end))
            end = start + k
        else:
            path.append((start, start + k))
            start += k
    return path[::-1]


def range_hashes(leaves: Iterable[bytes], size: int, wanted: set[Range]) -> dict[Range, bytes]:
    """The Merkle hash of each range in ``wanted``, from one pass over the first ``size``
    leaf hashes, keeping only the compact range (O(log size) hashes) and the answers.

    Each range of an RFC 9162 path is either a perfect, aligned subtree (made when the pass
    merges two equal neighbours) or a right edge [start, size), the fold of the final
    subtrees from ``start`` on. (``domain.evidence.inclusion_proofs`` keeps every level in
    memory: fine for a bundle of a small log, not for one of millions of events.)"""
    stack: list[tuple[int, int, bytes]] = []  # (start, width, hash) of perfect subtrees
    found: dict[Range, bytes] = {}
    for index, leaf in enumerate(leaves):
        start, width, node = index, 1, leaf
        if (start, start + 1) in wanted:
            found[(start, start + 1)] = node
        while stack and stack[-1][1] == width:
            left_start, _, left = stack.pop()
            start, width, node = left_start, width * 2, node_hash(left, node)
            if (start, start + width) in wanted:
                found[(start, start + width)] = node
        stack.append((start, width, node))
    if sum(width for _, width, _ in stack) != size:
        raise KeyError(size)  # fewer leaves than the tree's size: some were deleted
    for first, last in wanted - found.keys():
        parts = [h for s, _, h in stack if s >= first]
        assert last == size and parts, f"range {first}-{last} is neither perfect nor a right edge"
        folded = parts[-1]
        for left in reversed(parts[:-1]):
            folded = node_hash(left, folded)
        found[(first, last)] = folded
    return found


class EvidenceBundles:
    """Makes evidence bundles, and the checkpoints they need, from the case ledger's log."""

    def __init__(self, store: CheckpointStore, *, publish: bool = True) -> None:
        self.store = store
        self.table = store.tables[0]
        #: Publish a checkpoint made for a bundle at once (the CLI); the API leaves it to the
        #: checkpointer, so that no request waits on the broker.
        self.publish = publish

    def bundle(self, case_id: UUID) -> dict[str, Any]:
        """The bundle of ``case_id``: a fresh checkpoint first when the latest does not cover
        all of the case's events (``CaseNotFound`` when it has none)."""
        for _ in range(_ATTEMPTS - 1):
            try:
                return self._bundle(case_id)
            except _CaseMovedOn:
                continue  # a checkpoint signed the case's newer events meanwhile: read again
        return self._bundle(case_id)

    def _bundle(self, case_id: UUID) -> dict[str, Any]:
        events = self._case_events(case_id)
        if not events:
            raise CaseNotFound(
                f"no case {case_id} in the event store",
                hint="check the id: GET /cases lists the cases",
            )
        checkpoint = self.store.latest(self.table)
        if checkpoint is None or checkpoint.size <= max(e["leaf"] for e in events):
            made = self._checkpoint()
            checkpoint = made or self.store.latest(self.table)
        assert checkpoint is not None
        self._publish()
        checkpoint, head = self._head(case_id, events[-1], checkpoint)
        wanted = {r for e in events for r in path_ranges(e["leaf"], checkpoint.size)}
        try:
            hashes = range_hashes(self._leaves(checkpoint.size), checkpoint.size, wanted)
        except KeyError:
            raise LogNotDense(
                f"{self.table} holds fewer events than its checkpoint of size "
                f"{checkpoint.size:,} covers: events were deleted",
                hint="run `caseledger audit verify` to see what was changed",
            ) from None
        for event in events:
            event["proof"] = [hashes[r].hex() for r in path_ranges(event["leaf"], checkpoint.size)]
        bundle = {
            "format": BUNDLE_FORMAT,
            "log": self.table,
            "case_id": str(case_id),
            "events": events,
            "checkpoint": checkpoint.as_json(),
            "public_key": self.store.key.public_hex,
        }
        if head is not None:
            bundle["head"] = head
        return bundle

    def _head(
        self, case_id: UUID, newest: dict[str, Any], checkpoint: Checkpoint
    ) -> tuple[Checkpoint, dict[str, Any] | None]:
        """The latest checkpoint (``checkpoint``, or one made since) and the proof that the
        case's newest event is its head in that checkpoint's tree of case heads (None for a
        checkpoint signed before case heads). Read under the checkpoints' lock, so that the
        table of heads is at the checkpoint's size."""
        with self.store.pool.connection() as conn, conn.transaction():
            conn.execute(
                "SELECT pg_advisory_xact_lock(%s, hashtext(%s))", (CHECKPOINT_LOCK, self.table)
            )
            latest = self.store.latest(self.table, conn)
            checkpoint = latest if latest is not None else checkpoint
            if checkpoint.heads is None or checkpoint.cases is None:
                return checkpoint, None
            found = self.store.head_of(conn, self.table, case_id)
            if (
                found is not None
                and found["size"] == checkpoint.size
                and found["version"] > newest["version"]
            ):
                raise _CaseMovedOn
            if found is None or found["size"] != checkpoint.size:
                raise LogNotDense(
                    f"the case heads of {self.table} hold no head of case {case_id} at the "
                    f"checkpoint of size {checkpoint.size:,}: they were changed",
                    hint="run `caseledger audit verify` to see what was changed",
                )
            # A head that differs from the case's newest event is proved as signed: the
            # auditor's verifier then names the difference.
            index = int(found["index"])
            wanted = set(path_ranges(index, checkpoint.cases))
            leaves = head_leaves(self.store.head_rows(conn, self.table))
            hashes = range_hashes(leaves, checkpoint.cases, wanted)
        proof = [hashes[r].hex() for r in path_ranges(index, checkpoint.cases)]
        return checkpoint, {"index": index, "proof": proof}

    def _checkpoint(self) -> Checkpoint | None:
        try:
            return self.store.checkpoint(self.table)
        except LogGap as gap:
            raise LogNotDense(
                str(gap), hint="run `caseledger audit verify` to see what was changed"
            ) from None

    def _publish(self) -> None:
        """Publish pending checkpoints now if the broker answers; else the checkpointer
        publishes them later (a bundle does not wait for the broker)."""
        if not self.publish:
            return
        try:
            self.store.publish_pending()
        except (KafkaError, OSError) as error:
            log.warning("checkpoints left for later publication: %s", error)

    def _case_events(self, case_id: UUID) -> list[dict[str, Any]]:
        query = SQL(_CASE_EVENTS).format(table=Identifier(self.table))
        with self.store.pool.connection() as conn:
            rows = conn.execute(query, (case_id,)).fetchall()
        return [
            {
                "position": r["notification_id"],
                "leaf": r["audit_leaf"],
                "originator_id": str(case_id),
                "version": r["originator_version"],
                "topic": r["topic"],
                "state": base64.b64encode(bytes(r["state"])).decode(),
                "hash": bytes(r["audit_hash"]).hex(),
            }
            for r in rows
        ]

    def _leaves(self, size: int) -> Iterator[bytes]:
        query = SQL(_LEAVES).format(table=Identifier(self.table))
        with (
            self.store.pool.connection() as conn,
            conn.transaction(),
            conn.cursor(name="audit_bundle", row_factory=tuple_row, binary=True) as cursor,
        ):
            cursor.itersize = 20_000
            cursor.execute(query, (size,))
            for position, event_hash in cursor:
                yield leaf_hash(position, event_hash)


class AuditTrail:
    """The audit use cases of the API (``services.audit.AuditTrail``)."""

    def __init__(self, store: CheckpointStore, *, publish: bool = True) -> None:
        self.store = store
        self.bundles = EvidenceBundles(store, publish=publish)

    def checkpoint(self) -> list[CheckpointView]:
        """Sign every log that grew; publish what is pending if the broker answers (unless
        built with ``publish=False``: the checkpointer does it)."""
        try:
            made = self.store.checkpoint_all()
        except LogGap as gap:
            raise LogNotDense(
                str(gap), hint="run `caseledger audit verify` to see what was changed"
            ) from None
        self.bundles._publish()
        published = {c.id for c in self.store.listing(limit=len(made) or 1) if c.published}
        return [_view(c, c.id in published) for c in made]

    def checkpoints(self, log_name: str | None, limit: int) -> list[CheckpointView]:
        return [_view(c, c.published) for c in self.store.listing(log_name, limit)]

    def evidence(self, case_id: UUID) -> dict[str, Any]:
        return self.bundles.bundle(case_id)

    def public_key(self) -> str:
        return self.store.key.public_hex


def _view(checkpoint: Checkpoint, published: bool) -> CheckpointView:
    c = checkpoint
    assert c.id is not None
    return CheckpointView(
        id=c.id,
        log=c.log,
        size=c.size,
        position=c.position,
        root=c.root,
        signed_at=c.signed_at,
        key_id=c.key_id,
        signature=c.signature,
        published=published,
        heads=c.heads,
        cases=c.cases,
    )
