"""Valid evidence bundles made without a database, for the offline verifier's tests and bench.

A bundle holds `events` events of one case, versions 1..N, at leaves spread evenly over a log
of `log_size` leaves; the other leaves stand for other cases' events (random leaf hashes).
The checkpoint's tree of case heads holds the case's head among `other_cases` random ones, in
case-id order, and the bundle its head proof (unless made with `heads=False`, as a checkpoint
signed before case heads).
Positions (notification ids) skip a value now and then, as PostgreSQL's do after a rolled-back
insert, so a mix-up of leaf and position shows. The checkpoint covers the whole log and is
signed with the `cryptography` package, independently of the pure-Python verifier.
"""

from __future__ import annotations

import base64
import hashlib
import json
import random
import uuid
from dataclasses import dataclass
from typing import Any

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from domain.evidence import (
    BUNDLE_FORMAT,
    ZERO_HASH,
    checkpoint_message,
    event_hash,
    head_leaf,
    inclusion_proof,
    inclusion_proofs,
    key_id_of,
    leaf_hash,
    merkle_root,
)

LOG = "caseledger_events"
SIGNED_AT = "2026-12-07T03:00:00.123456+00:00"


@dataclass(frozen=True)
class Signer:
    """An Ed25519 key pair made by `cryptography`."""

    private: Ed25519PrivateKey

    @classmethod
    def new(cls) -> Signer:
        return cls(Ed25519PrivateKey.generate())

    @property
    def public(self) -> bytes:
        return self.private.public_key().public_bytes_raw()

    def sign_checkpoint(self, checkpoint: dict[str, Any]) -> None:
        """(Re)sign a checkpoint in place, with this key's id."""
        checkpoint["key_id"] = key_id_of(self.public)
        checkpoint["signature"] = self.private.sign(message_of(checkpoint)).hex()


def message_of(checkpoint: dict[str, Any]) -> bytes:
    """The bytes the signature of a checkpoint (as a bundle carries it) covers."""
    c = checkpoint
    return checkpoint_message(
        c["log"],
        c["size"],
        c["position"],
        c["root"],
        c["signed_at"],
        c["key_id"],
        c.get("heads"),
        c.get("cases"),
    )


def position_of(leaf: int) -> int:
    """The notification id of a leaf: 1-based, with a skipped id every 7 leaves."""
    return leaf + 1 + leaf // 7


def make_bundle(
    signer: Signer,
    events: int,
    log_size: int,
    *,
    state_size: int = 120,
    seed: int = 0,
    heads: bool = True,
    other_cases: int = 20,
) -> dict[str, Any]:
    """A valid bundle of `events` events over a log of `log_size` leaves."""
    if not 0 < events <= log_size:
        raise ValueError("need 1 <= events <= log_size")
    rng = random.Random(seed)
    case_id = uuid.UUID(int=rng.getrandbits(128), version=4)
    stride = log_size // events
    case_leaves = [i * stride + rng.randrange(stride) for i in range(events)]
    leaves = [hashlib.sha256(i.to_bytes(8, "big")).digest() for i in range(log_size)]
    rows = []
    prev = ZERO_HASH
    for version, leaf in enumerate(case_leaves, 1):
        topic = "domain.case:Case.Opened" if version == 1 else "domain.case:Case.NoteAdded"
        state = json.dumps({"note": rng.randbytes(state_size // 2).hex()}).encode()
        current = event_hash(prev, case_id, version, topic, state)
        leaves[leaf] = leaf_hash(position_of(leaf), current)
        rows.append((leaf, version, topic, state, current))
        prev = current
    proofs = inclusion_proofs(leaves, case_leaves, log_size)
    checkpoint: dict[str, Any] = {
        "log": LOG,
        "size": log_size,
        "position": position_of(log_size - 1),
        "root": merkle_root(leaves).hex(),
        "signed_at": SIGNED_AT,
    }
    head: dict[str, Any] | None = None
    if heads:
        others = [
            (uuid.UUID(int=rng.getrandbits(128)).bytes, rng.randrange(1, 99), rng.randbytes(32))
            for _ in range(other_cases)
        ]
        ordered = sorted([*others, (case_id.bytes, events, prev)])
        head_leaves = [head_leaf(*row) for row in ordered]
        index = ordered.index((case_id.bytes, events, prev))
        checkpoint["heads"] = merkle_root(head_leaves).hex()
        checkpoint["cases"] = len(ordered)
        head = {
            "index": index,
            "proof": [p.hex() for p in inclusion_proof(head_leaves, index, len(ordered))],
        }
    signer.sign_checkpoint(checkpoint)
    bundle = {
        "format": BUNDLE_FORMAT,
        "log": LOG,
        "case_id": str(case_id),
        "events": [
            {
                "position": position_of(leaf),
                "leaf": leaf,
                "originator_id": str(case_id),
                "version": version,
                "topic": topic,
                "state": base64.b64encode(state).decode(),
                "hash": current.hex(),
                "proof": [p.hex() for p in proof],
            }
            for (leaf, version, topic, state, current), proof in zip(rows, proofs, strict=True)
        ],
        "checkpoint": checkpoint,
        "public_key": signer.public.hex(),
    }
    if head is not None:
        bundle["head"] = head
    return bundle
