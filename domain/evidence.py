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

import argparse
import base64
import binascii
import hashlib
import json
import sys
import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

ZERO_HASH = bytes(32)
EMPTY_ROOT = hashlib.sha256(b"").digest()
CHECKPOINT_PREFIX = b"caseledger-checkpoint-v1\n"
BUNDLE_FORMAT = "caseledger-evidence/1"

_sha256 = hashlib.sha256
_LEAF = b"\x00"
_NODE = b"\x01"
_HEAD = b"\x02"


# --- hashes ---------------------------------------------------------------------------------


def event_hash(
    prev: bytes, originator_id: uuid.UUID | str, version: int, topic: str, state: bytes
) -> bytes:
    """SHA-256 of prev, the 16 UUID bytes, the version (int64), the topic's length and
    UTF-8 bytes, then the state: the hash PostgreSQL stores as audit_hash."""
    raw_id = originator_id if isinstance(originator_id, uuid.UUID) else uuid.UUID(originator_id)
    return _event_hash(prev, raw_id.bytes, version, topic.encode("utf-8"), state)


def _event_hash(prev: bytes, raw_id: bytes, version: int, topic: bytes, state: bytes) -> bytes:
    parts = (
        prev,
        raw_id,
        version.to_bytes(8, "big", signed=True),
        len(topic).to_bytes(4, "big"),
        topic,
        state,
    )
    return _sha256(b"".join(parts)).digest()


def leaf_hash(position: int, event_hash: bytes) -> bytes:
    """The Merkle leaf of an event: SHA-256(0x00 || position as 8 bytes || event hash)."""
    return _sha256(_LEAF + position.to_bytes(8, "big") + event_hash).digest()


def head_leaf(case_id: bytes, version: int, event_hash: bytes) -> bytes:
    """A case's head, a leaf of a checkpoint's tree of case heads: SHA-256(0x02 || the 16
    UUID bytes || its newest version as 8 bytes || that event's hash). The tree holds one
    head per case of the log, ordered by case id; it is what shows that no later event of a
    case exists, which an inclusion proof cannot."""
    return _sha256(_HEAD + case_id + version.to_bytes(8, "big") + event_hash).digest()


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
    log: str,
    size: int,
    position: int,
    root_hex: str,
    signed_at: str,
    key_id: str,
    heads_hex: str | None = None,
    cases: int | None = None,
) -> bytes:
    """The bytes a checkpoint's Ed25519 signature covers: with the root of its tree of case
    heads and their number when it has one (checkpoints signed before case heads have not)."""
    fields: dict[str, object] = {
        "log": log,
        "size": size,
        "position": position,
        "root": root_hex,
        "signed_at": signed_at,
        "key_id": key_id,
    }
    if heads_hex is not None:
        fields["heads"], fields["cases"] = heads_hex, cases
    return CHECKPOINT_PREFIX + json.dumps(fields, sort_keys=True, separators=(",", ":")).encode(
        "utf-8"
    )


# --- Ed25519 verification (RFC 8032 section 5.1.7), pure Python -----------------------------
# Points are in extended twisted Edwards coordinates (X, Y, Z, T) with x = X/Z, y = Y/Z and
# x*y = T/Z, on -x^2 + y^2 = 1 + d*x^2*y^2 over GF(p). Verification needs no secret, so the
# variable-time arithmetic below leaks nothing.

_P = 2**255 - 19
_L = 2**252 + 27742317777372353535851937790883648493
_D = -121665 * pow(121666, _P - 2, _P) % _P
_D2 = 2 * _D % _P
_SQRT_M1 = pow(2, (_P - 1) // 4, _P)
_Point = tuple[int, int, int, int]
_IDENTITY: _Point = (0, 1, 1, 0)


def _add(a: _Point, b: _Point) -> _Point:
    """RFC 8032 5.1.4 point addition (add-2008-hwcd-3)."""
    p = _P
    x1, y1, z1, t1 = a
    x2, y2, z2, t2 = b
    aa = (y1 - x1) * (y2 - x2) % p
    bb = (y1 + x1) * (y2 + x2) % p
    cc = t1 * _D2 * t2 % p
    dd = 2 * z1 * z2 % p
    e, f, g, h = bb - aa, dd - cc, dd + cc, bb + aa
    return (e * f % p, g * h % p, f * g % p, e * h % p)


def _double(a: _Point) -> _Point:
    """RFC 8032 5.1.4 point doubling (dbl-2008-hwcd)."""
    p = _P
    x1, y1, z1, _ = a
    aa = x1 * x1 % p
    bb = y1 * y1 % p
    cc = 2 * z1 * z1 % p
    h = aa + bb
    e = h - (x1 + y1) * (x1 + y1) % p
    g = aa - bb
    f = cc + g
    return (e * f % p, g * h % p, f * g % p, e * h % p)


def _decode_point(encoded: bytes) -> _Point | None:
    """RFC 8032 5.1.3: the point encoded by 32 bytes, or None if they encode none (or not
    canonically: y >= p, or x = 0 with the sign bit set)."""
    p = _P
    y = int.from_bytes(encoded, "little")
    sign = y >> 255
    y &= (1 << 255) - 1
    if y >= p:
        return None
    u = (y * y - 1) % p
    v = (_D * y * y + 1) % p
    x = u * pow(v, 3, p) * pow(u * pow(v, 7, p), (p - 5) // 8, p) % p
    vxx = v * x * x % p
    if vxx == (-u) % p and vxx != u:
        x = x * _SQRT_M1 % p
    elif vxx != u:
        return None
    if x == 0 and sign:
        return None
    if x & 1 != sign:
        x = p - x
    return (x, y, 1, x * y % p)


def _encode_point(a: _Point) -> bytes:
    x, y, z, _ = a
    inverse = pow(z, _P - 2, _P)
    x = x * inverse % _P
    y = y * inverse % _P
    return (y | (x & 1) << 255).to_bytes(32, "little")


def _base_point() -> _Point:
    y = 4 * pow(5, _P - 2, _P) % _P
    point = _decode_point(y.to_bytes(32, "little"))
    assert point is not None
    return point


_B = _base_point()


def _double_scalar_mult(s: int, a: _Point, k: int, b: _Point) -> _Point:
    """[s]a + [k]b with one shared chain of doublings (Straus-Shamir)."""
    both = _add(a, b)
    table = (None, a, b, both)
    result = _IDENTITY
    for i in range(max(s.bit_length(), k.bit_length()) - 1, -1, -1):
        result = _double(result)
        pick = (s >> i & 1) | (k >> i & 1) << 1
        if pick:
            addend = table[pick]
            assert addend is not None
            result = _add(result, addend)
    return result


def ed25519_verify(public_key: bytes, message: bytes, signature: bytes) -> bool:
    """RFC 8032 Ed25519 verification: [S]B == R + [k]A (cofactorless), with k =
    SHA-512(R || A || message) mod L. Rejects S >= L and keys or R that do not decode."""
    if len(public_key) != 32 or len(signature) != 64:
        return False
    key_point = _decode_point(public_key)
    r_bytes = signature[:32]
    if key_point is None or _decode_point(r_bytes) is None:
        return False
    s = int.from_bytes(signature[32:], "little")
    if s >= _L:
        return False
    k = int.from_bytes(hashlib.sha512(r_bytes + public_key + message).digest(), "little") % _L
    x, y, z, t = key_point
    minus_key = ((-x) % _P, y, z, (-t) % _P)
    # [S]B - [k]A == R; R decoded, so its canonical encoding is r_bytes.
    return _encode_point(_double_scalar_mult(s, _B, k, minus_key)) == r_bytes


# --- evidence bundles -----------------------------------------------------------------------

_MAX_INT64 = 2**63 - 1
_MAX_UINT64 = 2**64 - 1


@dataclass(frozen=True)
class Problem:
    """Something wrong in an evidence bundle: the case, the event's version (None when the
    problem is not one event's) and what is wrong."""

    case_id: str
    version: int | None
    what: str

    def __str__(self) -> str:
        where = f"case {self.case_id}"
        if self.version is not None:
            where += f", version {self.version}"
        return f"{where}: {self.what}"


@dataclass(frozen=True)
class Checkpoint:
    """A checkpoint read from a bundle, its fields checked for type."""

    log: str
    size: int
    position: int
    root_hex: str
    signed_at: str
    key_id: str
    signature: bytes
    root: bytes
    heads_hex: str | None = None
    cases: int | None = None

    @property
    def message(self) -> bytes:
        return checkpoint_message(
            self.log,
            self.size,
            self.position,
            self.root_hex,
            self.signed_at,
            self.key_id,
            self.heads_hex,
            self.cases,
        )

    @property
    def heads(self) -> bytes | None:
        return None if self.heads_hex is None else bytes.fromhex(self.heads_hex)


def _hash_from_hex(value: object) -> bytes | None:
    """32 bytes from exactly 64 hex digits, or None."""
    if not isinstance(value, str) or len(value) != 64:
        return None
    try:
        raw = bytes.fromhex(value)
    except ValueError:
        return None
    return raw if len(raw) == 32 else None  # fromhex skips spaces: "ab cd" is not 2 bytes


def _whole(value: object, low: int, high: int) -> int | None:
    """An integer of JSON (not a boolean) between low and high inclusive, or None."""
    if isinstance(value, int) and not isinstance(value, bool) and low <= value <= high:
        return value
    return None


class _Report:
    """Collects the problems of one bundle."""

    def __init__(self, case_id: str) -> None:
        self.case_id = case_id
        self.problems: list[Problem] = []

    def __call__(self, version: int | None, what: str) -> None:
        self.problems.append(Problem(self.case_id, version, what))


def verify_bundle(bundle: object, public_key: bytes) -> list[Problem]:
    """Every problem of an evidence bundle, checked against the trusted Ed25519 public key
    (raw 32 bytes); an empty list means the bundle proves its case's history."""
    if not isinstance(bundle, dict):
        return [Problem("?", None, "the bundle is not a JSON object")]
    case_text = bundle.get("case_id")
    report = _Report(case_text if isinstance(case_text, str) else "?")
    if bundle.get("format") != BUNDLE_FORMAT:
        report(None, f"format is {bundle.get('format')!r}, expected {BUNDLE_FORMAT!r}")
    case_id = _case_uuid(case_text, report)
    log = bundle.get("log")
    if not isinstance(log, str):
        report(None, "the bundle names no log (a string)")
    checkpoint = _read_checkpoint(bundle.get("checkpoint"), report)
    if checkpoint is not None:
        if isinstance(log, str) and checkpoint.log != log:
            report(None, f"the checkpoint is of log {checkpoint.log!r}, the events of {log!r}")
        _check_signature(checkpoint, public_key, report)
    events = bundle.get("events")
    if not isinstance(events, list) or not events:
        report(None, "the bundle has no events (a non-empty list)")
    else:
        _check_events(events, case_id, checkpoint, report)
        if checkpoint is not None and checkpoint.heads is not None and case_id is not None:
            _check_head(bundle.get("head"), events[-1], case_id, checkpoint, report)
    return report.problems


def _case_uuid(value: object, report: _Report) -> bytes | None:
    raw = _uuid_or_none(value)
    if raw is None:
        report(None, f"case_id {value!r} is not a UUID string")
    return raw


def _read_checkpoint(value: object, report: _Report) -> Checkpoint | None:
    if not isinstance(value, dict):
        report(None, "the bundle has no checkpoint (an object)")
        return None
    log, signed_at, key_id = value.get("log"), value.get("signed_at"), value.get("key_id")
    size = _whole(value.get("size"), 0, _MAX_UINT64)
    position = _whole(value.get("position"), 0, _MAX_UINT64)
    root = value.get("root")
    signature = value.get("signature")
    heads, cases = value.get("heads"), value.get("cases")
    with_heads = heads is not None or cases is not None
    wrong = [
        name
        for name, ok in (
            ("log (a string)", isinstance(log, str)),
            ("size (a whole number >= 0)", size is not None),
            ("position (a whole number >= 0)", position is not None),
            ("root (64 hex digits)", _hash_from_hex(root) is not None),
            ("signed_at (a string)", isinstance(signed_at, str)),
            ("key_id (a string)", isinstance(key_id, str)),
            ("signature (128 hex digits)", _signature_from_hex(signature) is not None),
            ("heads (64 hex digits)", not with_heads or _hash_from_hex(heads) is not None),
            (
                "cases (a whole number >= 0)",
                not with_heads or _whole(cases, 0, _MAX_UINT64) is not None,
            ),
        )
        if not ok
    ]
    if wrong:
        report(None, f"the checkpoint lacks a valid {', '.join(wrong)}")
        return None
    assert isinstance(log, str) and isinstance(signed_at, str) and isinstance(key_id, str)
    assert isinstance(root, str) and size is not None and position is not None
    raw_signature, raw_root = _signature_from_hex(signature), _hash_from_hex(root)
    assert raw_signature is not None and raw_root is not None
    if not with_heads:  # signed before checkpoints had case heads
        return Checkpoint(log, size, position, root, signed_at, key_id, raw_signature, raw_root)
    assert isinstance(heads, str) and isinstance(cases, int)
    return Checkpoint(
        log, size, position, root, signed_at, key_id, raw_signature, raw_root, heads, cases
    )


def _hashes_from_hex(values: list[object]) -> list[bytes] | None:
    """A list of 32-byte hashes from a list of 64-hex-digit strings (one fromhex for all)."""
    texts = [v for v in values if isinstance(v, str) and len(v) == 64]
    if len(texts) != len(values):
        return None
    try:
        raw = bytes.fromhex("".join(texts))
    except ValueError:
        return None
    if len(raw) != 32 * len(values):  # fromhex skips spaces
        return None
    return [raw[i : i + 32] for i in range(0, len(raw), 32)]


def _signature_from_hex(value: object) -> bytes | None:
    if not isinstance(value, str) or len(value) != 128:
        return None
    try:
        raw = bytes.fromhex(value)
    except ValueError:
        return None
    return raw if len(raw) == 64 else None


def _check_signature(checkpoint: Checkpoint, public_key: bytes, report: _Report) -> None:
    if len(public_key) != 32:
        report(None, f"the trusted public key is {len(public_key)} bytes, not 32")
        return
    trusted = key_id_of(public_key)
    if checkpoint.key_id != trusted:
        report(
            None,
            f"the checkpoint was signed by key {checkpoint.key_id}, not by the trusted key "
            f"{trusted} (get the right one with `caseledger audit public-key`)",
        )
    elif not ed25519_verify(public_key, checkpoint.message, checkpoint.signature):
        report(None, "the checkpoint's signature is not valid for its content and the key")


def _check_events(
    events: list[object], case_id: bytes | None, checkpoint: Checkpoint | None, report: _Report
) -> None:
    """The hash chain, order and inclusion of each event (the loop an audit spends its time
    in: one SHA-256 for the event, one for its leaf and one per proof element)."""
    last_version = 0
    last_hash: bytes | None = ZERO_HASH  # None: the previous event's hash was unreadable
    last_leaf = last_position = -1
    uuids: dict[str, bytes | None] = {}  # every event names the same case: parse it once
    for number, event in enumerate(events, 1):
        fields = _read_event(event, number, uuids, report)
        if fields is None:
            last_hash = None
            last_version += 1
            continue
        version, position, leaf, raw_id, topic, state, stated, proof = fields
        _check_order(version, last_version, report)
        if case_id is not None and raw_id != case_id:
            report(version, f"its originator_id {uuid.UUID(bytes=raw_id)} is not the case's id")
        prev = ZERO_HASH if version == 1 or version != last_version + 1 else last_hash
        last_version, last_hash = version, stated
        if leaf <= last_leaf or position <= last_position:
            report(version, "its leaf and position do not come after the previous version's")
        last_leaf, last_position = leaf, position
        if prev is None:
            continue  # the previous event is unreadable, already reported
        computed = _event_hash(prev, raw_id, version, topic.encode("utf-8"), state)
        if computed != stated:
            report(
                version,
                "its content does not match its hash: the state or topic was changed, or the "
                "previous version's hash",
            )
        elif checkpoint is not None:
            _check_inclusion(version, position, leaf, stated, proof, checkpoint, report)


def _check_head(
    head: object, last: object, case_id: bytes, checkpoint: Checkpoint, report: _Report
) -> None:
    """The bundle's last event is the case's newest in the checkpoint: its head (case,
    version, hash) is a leaf of the checkpoint's tree of case heads. Without this, a bundle
    cut short after any version would pass."""
    version = _whole(last.get("version"), 1, _MAX_INT64) if isinstance(last, dict) else None
    stated = _hash_from_hex(last.get("hash")) if isinstance(last, dict) else None
    if version is None or stated is None:
        return  # the last event is unreadable: reported already
    index = _whole(head.get("index"), 0, _MAX_UINT64) if isinstance(head, dict) else None
    proof = head.get("proof") if isinstance(head, dict) else None
    path = _hashes_from_hex(proof) if isinstance(proof, list) else None
    if index is None or path is None:
        report(None, "the bundle's head lacks a valid index (a whole number) or proof (hashes)")
        return
    heads, cases = checkpoint.heads, checkpoint.cases
    assert heads is not None and cases is not None
    if not verify_inclusion(head_leaf(case_id, version, stated), index, cases, path, heads):
        report(
            version,
            f"the checkpoint does not show version {version} as the case's newest: events "
            "after it are missing from the bundle, or its head proof was changed",
        )


_EventFields = tuple[int, int, int, bytes, str, bytes, bytes, list[object]]


def _read_event(
    event: object, number: int, uuids: dict[str, bytes | None], report: _Report
) -> _EventFields | None:
    """The typed fields of the `number`th event, or None after reporting what is wrong."""
    if not isinstance(event, dict):
        report(None, f"event #{number} is not an object")
        return None
    version = _whole(event.get("version"), 1, _MAX_INT64)
    if version is None:
        report(None, f"event #{number} has no version (a whole number >= 1)")
        return None
    position = _whole(event.get("position"), 0, _MAX_UINT64)
    leaf = _whole(event.get("leaf"), 0, _MAX_UINT64)
    originator, topic = event.get("originator_id"), event.get("topic")
    if isinstance(originator, str):
        if originator not in uuids:
            uuids[originator] = _uuid_or_none(originator)
        raw_id = uuids[originator]
    else:
        raw_id = None
    stated = _hash_from_hex(event.get("hash"))
    proof = event.get("proof")
    state = _base64_or_none(event.get("state"))
    wrong = [
        name
        for name, ok in (
            ("position (a whole number >= 0)", position is not None),
            ("leaf (a whole number >= 0)", leaf is not None),
            ("originator_id (a UUID string)", raw_id is not None),
            ("topic (a string)", isinstance(topic, str)),
            ("state (base64)", state is not None),
            ("hash (64 hex digits)", stated is not None),
            ("proof (a list)", isinstance(proof, list)),
        )
        if not ok
    ]
    if wrong:
        report(version, f"the event lacks a valid {', '.join(wrong)}")
        return None
    assert position is not None and leaf is not None and state is not None and stated is not None
    assert raw_id is not None and isinstance(topic, str) and isinstance(proof, list)
    try:
        topic.encode("utf-8")
    except UnicodeEncodeError:  # a lone surrogate from a JSON "\ud800"
        report(version, "its topic is not valid text")
        return None
    return version, position, leaf, raw_id, topic, state, stated, proof


def _uuid_or_none(value: object) -> bytes | None:
    if not isinstance(value, str):
        return None
    try:
        return uuid.UUID(value).bytes
    except ValueError:
        return None


def _base64_or_none(value: object) -> bytes | None:
    if not isinstance(value, str):
        return None
    try:
        return base64.b64decode(value, validate=True)
    except (binascii.Error, ValueError):
        return None


def _check_order(version: int, last_version: int, report: _Report) -> None:
    if version == last_version + 1:
        return
    if version <= last_version:
        report(version, f"it comes after version {last_version}: versions must be 1, 2, 3, ...")
    elif last_version + 1 == version - 1:
        report(version, f"version {last_version + 1} is missing")
    else:
        report(version, f"versions {last_version + 1} to {version - 1} are missing")


def _check_inclusion(
    version: int,
    position: int,
    leaf: int,
    stated: bytes,
    proof: list[object],
    checkpoint: Checkpoint,
    report: _Report,
) -> None:
    if leaf >= checkpoint.size:
        report(
            version, f"its leaf {leaf} is not covered by the checkpoint of size {checkpoint.size}"
        )
        return
    if position > checkpoint.position:
        report(
            version,
            f"its position {position} is after the checkpoint's last ({checkpoint.position})",
        )
        return
    path = _hashes_from_hex(proof)
    if path is None:
        report(version, "its proof holds something other than 64 hex digits")
        return
    if not verify_inclusion(
        leaf_hash(position, stated), leaf, checkpoint.size, path, checkpoint.root
    ):
        report(version, "its inclusion proof does not lead to the checkpoint's root")


# --- the auditor's script -------------------------------------------------------------------

_SPKI_ED25519_PREFIX = bytes.fromhex("302a300506032b6570032100")
_DESCRIPTION = """\
Check a caseledger evidence bundle offline, with nothing but Python and this file.

A bundle (from `caseledger audit bundle CASE_ID`) holds every event of one case, each with
its hash and its Merkle inclusion proof, and the signed checkpoint they are proved against.
This script recomputes each event's hash from its content and the previous version's hash
(versions 1..N, none missing), checks that each event is a leaf of the tree whose root the
checkpoint states, that version N is the case's newest there (a leaf of the checkpoint's
tree of case heads), and that the checkpoint is signed by the key you trust. It trusts nothing
in the bundle itself, not even the bundle's "public_key" field: pass the key you got from
the operator (`caseledger audit public-key`, run on the server) with --public-key.

Exit status: 0 when the bundle proves the case's history, 1 when it does not (each problem
is printed), 2 when the bundle or the key cannot be read."""


class UnreadableInput(Exception):
    """A file or key the script cannot read; the message says which and why."""


def public_key_from_text(text: str) -> bytes:
    """A raw 32-byte Ed25519 public key from 64 hex digits or a PEM "PUBLIC KEY" block."""
    text = text.strip()
    raw = _hash_from_hex(text)
    if raw is not None:
        return raw
    if "PRIVATE KEY" in text:
        raise UnreadableInput(
            "that is a private key: never hand it out; pass the public key "
            "(`caseledger audit public-key`)"
        )
    begin, end = "-----BEGIN PUBLIC KEY-----", "-----END PUBLIC KEY-----"
    if begin not in text or end not in text:
        raise UnreadableInput(
            "expected 64 hex digits or a PEM block starting with " + begin + " (the output of "
            "`caseledger audit public-key`)"
        )
    body = text.split(begin, 1)[1].split(end, 1)[0]
    try:
        der = base64.b64decode("".join(body.split()), validate=True)
    except (binascii.Error, ValueError) as error:
        raise UnreadableInput(f"the PEM block is not valid base64 ({error})") from error
    if len(der) != 44 or not der.startswith(_SPKI_ED25519_PREFIX):
        raise UnreadableInput("the PEM block does not hold an Ed25519 public key")
    return der[12:]


def read_public_key(argument: str) -> bytes:
    """The --public-key argument: 64 hex digits, or a file holding hex or PEM."""
    raw = _hash_from_hex(argument.strip())
    if raw is not None:
        return raw
    try:
        text = Path(argument).read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as error:
        raise UnreadableInput(
            f"--public-key {argument!r} is neither 64 hex digits nor a readable key file ({error})"
        ) from error
    try:
        return public_key_from_text(text)
    except UnreadableInput as error:
        raise UnreadableInput(f"{argument}: {error}") from error


def read_bundle(path: str) -> object:
    """The parsed JSON of a bundle file."""
    try:
        data = Path(path).read_bytes()
    except OSError as error:
        raise UnreadableInput(
            f"cannot read the bundle {path}: {error.strerror or error}"
        ) from error
    try:
        return json.loads(data)
    except (ValueError, RecursionError) as error:  # JSONDecodeError and bad UTF-8 are both
        raise UnreadableInput(f"{path} is not a JSON document ({error})") from error


def summary(bundle: dict[str, object]) -> str:
    """One line on a bundle verify_bundle found valid."""
    events = bundle["events"]
    checkpoint = bundle["checkpoint"]
    assert isinstance(events, list) and isinstance(checkpoint, dict)
    newest = (
        f"; version {len(events):,} is the case's newest in it"
        if "heads" in checkpoint
        else "; this checkpoint predates case heads: it does not show that no later event of "
        "the case exists"
    )
    return (
        f"OK: {len(events):,} event{'s' if len(events) != 1 else ''} of case "
        f"{bundle['case_id']}, versions 1-{len(events):,}, included in checkpoint of size "
        f"{checkpoint['size']:,} of log {checkpoint['log']} signed at {checkpoint['signed_at']} "
        f"by key {checkpoint['key_id']}{newest}"
    )


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        description=_DESCRIPTION,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("bundle", metavar="BUNDLE.json", help="the evidence bundle to check")
    parser.add_argument(
        "--public-key",
        required=True,
        metavar="HEX_OR_PEM_FILE",
        help="the trusted Ed25519 public key: 64 hex digits, or a file holding them or a PEM "
        '"PUBLIC KEY" block (get it with `caseledger audit public-key`)',
    )
    parser.add_argument(
        "--max-problems",
        type=int,
        default=50,
        metavar="N",
        help="print at most N problems (default 50; 0 prints all)",
    )
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Check one bundle; 0 valid, 1 problems found, 2 unreadable input (argparse: 2 too)."""
    args = _parser().parse_args(argv)
    try:
        public_key = read_public_key(args.public_key)
        bundle = read_bundle(args.bundle)
    except UnreadableInput as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    problems = verify_bundle(bundle, public_key)
    if not problems:
        assert isinstance(bundle, dict)
        print(summary(bundle))
        return 0
    shown = problems if args.max_problems <= 0 else problems[: args.max_problems]
    for problem in shown:
        print(problem)
    if len(shown) < len(problems):
        print(f"... and {len(problems) - len(shown):,} more (--max-problems 0 prints all)")
    print(f"NOT VERIFIED: {len(problems):,} problem{'s' if len(problems) != 1 else ''}")
    return 1


if __name__ == "__main__":
    sys.exit(main())
