"""Tamper evidence for the case ledger: hash chain, Merkle tree, signed checkpoints, bundles.

One module, Python standard library only, used twice:
- by the server (infra/audit_ledger.py), which computes tree roots and inclusion proofs with
  the functions below (the per-event hash chain itself is computed by PostgreSQL);
- by auditors, offline, as a standalone script that checks an evidence bundle:

    python evidence.py BUNDLE.json --public-key KEY

The formats are those of the audit specification: event_hash chains the events of a case,
leaf_hash and node_hash build an RFC 6962 / RFC 9162 Merkle tree over the whole log, and an
Ed25519 (RFC 8032) signature over a checkpoint message vouches for the tree's root.
"""

from __future__ import annotations

import hashlib
import json
import uuid
from collections.abc import Sequence

ZERO_HASH = bytes(32)
EMPTY_ROOT = hashlib.sha256(b"").digest()
CHECKPOINT_PREFIX = b"caseledger-checkpoint-v1\n"
BUNDLE_FORMAT = "caseledger-evidence/1"

_sha256 = hashlib.sha256
_LEAF = b"\x00"
_NODE = b"\x01"


# --- hashes ---------------------------------------------------------------------------------


def event_hash(
    prev: bytes, originator_id: uuid.UUID | str, version: int, topic: str, state: bytes
) -> bytes:
    """SHA-256 of prev, the 16 UUID bytes, the version (int64), the topic's length and
    UTF-8 bytes, then the state: the hash PostgreSQL stores as audit_hash."""
    raw_id = (
        originator_id.bytes if isinstance(originator_id, uuid.UUID) else _uuid_bytes(originator_id)
    )
    name = topic.encode("utf-8")
    return _sha256(
        b"".join(
            (
                prev,
                raw_id,
                version.to_bytes(8, "big", signed=True),
                len(name).to_bytes(4, "big"),
                name,
                state,
            )
        )
    ).digest()


def _uuid_bytes(text: str) -> bytes:
    return uuid.UUID(text).bytes


def leaf_hash(position: int, event_hash: bytes) -> bytes:
    """The Merkle leaf of an event: SHA-256(0x00 || position as 8 bytes || event hash)."""
    return _sha256(_LEAF + position.to_bytes(8, "big") + event_hash).digest()


def node_hash(left: bytes, right: bytes) -> bytes:
    """An interior Merkle node: SHA-256(0x01 || left || right)."""
    return _sha256(_NODE + left + right).digest()


# --- the tree -------------------------------------------------------------------------------


def _next_level(level: Sequence[bytes]) -> list[bytes]:
    """Pair neighbours; an odd last node moves up unchanged (this is RFC 6962's MTH, whose
    split at the largest power of two leaves the right edge of each level unpaired)."""
    sha = _sha256
    upper = [sha(_NODE + level[i] + level[i + 1]).digest() for i in range(0, len(level) - 1, 2)]
    if len(level) % 2:
        upper.append(level[-1])
    return upper


def merkle_root(leaves: Sequence[bytes]) -> bytes:
    """RFC 6962 Merkle Tree Hash of the leaf hashes (n - 1 node hashes, no recursion)."""
    if not leaves:
        return EMPTY_ROOT
    level: Sequence[bytes] = leaves
    while len(level) > 1:
        level = _next_level(level)
    return level[0]


def _levels(leaves: Sequence[bytes], size: int) -> list[list[bytes]]:
    level = list(leaves[:size])
    levels = [level]
    while len(level) > 1:
        level = _next_level(level)
        levels.append(level)
    return levels


def inclusion_proofs(
    leaves: Sequence[bytes], indexes: Sequence[int], size: int
) -> list[list[bytes]]:
    """RFC 9162 PATH(m, D[size]) for each m in indexes, from one pass over the first `size`
    leaves (O(size) hashes in all, then O(log size) per proof)."""
    if not 0 < size <= len(leaves):
        raise ValueError(f"size {size} is not between 1 and the {len(leaves)} leaves given")
    bad = [m for m in indexes if not 0 <= m < size]
    if bad:
        raise ValueError(f"leaf index {bad[0]} is outside a tree of size {size}")
    levels = _levels(leaves, size)
    proofs = []
    for index in indexes:
        path = []
        m = index
        for level in levels[:-1]:
            sibling = m ^ 1
            if sibling < len(level):
                path.append(level[sibling])
            m >>= 1
        proofs.append(path)
    return proofs


def inclusion_proof(leaves: Sequence[bytes], index: int, size: int) -> list[bytes]:
    """RFC 9162 PATH(index, D[size]): the sibling hashes from the leaf up to the root."""
    return inclusion_proofs(leaves, [index], size)[0]


def verify_inclusion(
    leaf: bytes, index: int, size: int, proof: Sequence[bytes], root: bytes
) -> bool:
    """RFC 9162 section 2.1.3.2: does `proof` lead from `leaf` at `index` to `root`?"""
    if not 0 <= index < size:
        return False
    sha = _sha256
    fn = index
    sn = size - 1
    r = leaf
    for p in proof:
        if sn == 0:
            return False
        if fn & 1 or fn == sn:
            r = sha(_NODE + p + r).digest()
            while not fn & 1 and fn:
                fn >>= 1
                sn >>= 1
        else:
            r = sha(_NODE + r + p).digest()
        fn >>= 1
        sn >>= 1
    return sn == 0 and r == root


class Frontier:
    """The compact range of a growing tree: the roots of its perfect subtrees, left to right
    (one per set bit of `size`). Append leaves one by one; root() is the MTH of all of them.
    to_list()/from_list() store it beside a checkpoint, so the next checkpoint hashes only
    the leaves added since."""

    __slots__ = ("_hashes", "size")

    def __init__(self) -> None:
        self.size = 0
        self._hashes: list[bytes] = []

    def append(self, leaf: bytes) -> None:
        """Add the next leaf hash."""
        hashes = self._hashes
        node = leaf
        size = self.size
        while size & 1:  # each trailing 1 bit is a full subtree the new one completes
            node = _sha256(_NODE + hashes.pop() + node).digest()
            size >>= 1
        hashes.append(node)
        self.size += 1

    def extend(self, leaves: Sequence[bytes]) -> None:
        for leaf in leaves:
            self.append(leaf)

    def root(self) -> bytes:
        """The MTH of the leaves appended so far."""
        if not self._hashes:
            return EMPTY_ROOT
        hashes = self._hashes
        node = hashes[-1]
        for left in reversed(hashes[:-1]):
            node = _sha256(_NODE + left + node).digest()
        return node

    def to_list(self) -> list[str]:
        """The subtree roots as hex, largest first; store them with `size`."""
        return [h.hex() for h in self._hashes]

    @classmethod
    def from_list(cls, size: int, hashes: Sequence[str | bytes]) -> Frontier:
        """The frontier of a tree of `size` leaves, from its to_list()."""
        if size < 0 or bin(size).count("1") != len(hashes):
            raise ValueError(
                f"a tree of size {size} has {bin(max(size, 0)).count('1')} subtree roots, "
                f"not {len(hashes)}"
            )
        frontier = cls()
        frontier.size = size
        frontier._hashes = [bytes.fromhex(h) if isinstance(h, str) else bytes(h) for h in hashes]
        if any(len(h) != 32 for h in frontier._hashes):
            raise ValueError("every subtree root is 32 bytes (64 hex digits)")
        return frontier


# --- checkpoints ----------------------------------------------------------------------------


def key_id_of(public_key: bytes) -> str:
    """The key id of a raw 32-byte Ed25519 public key: hex of its SHA-256's first 8 bytes."""
    return _sha256(public_key).digest()[:8].hex()


def checkpoint_message(
    log: str, size: int, position: int, root_hex: str, signed_at: str, key_id: str
) -> bytes:
    """The bytes a checkpoint's Ed25519 signature covers."""
    fields = {
        "log": log,
        "size": size,
        "position": position,
        "root": root_hex,
        "signed_at": signed_at,
        "key_id": key_id,
    }
    return CHECKPOINT_PREFIX + json.dumps(fields, sort_keys=True, separators=(",", ":")).encode(
        "utf-8"
    )
