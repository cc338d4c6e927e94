"""Benchmark: an auditor's offline check of a 10,000-event evidence bundle, beside a raw
baseline in the same run.

Setup (untimed) builds a valid bundle of one case's 10,000 events spread over a log of
200,000 leaves (each event carries a 17- or 18-hash inclusion proof), signs its checkpoint
with `cryptography`, and writes it to a file (about 16 MB of JSON). Timed, alternately:
- the script's path: ``read_bundle`` (read and parse the file) then ``verify_bundle``
  (every hash recomputed, every proof walked, the pure-Python Ed25519 signature checked);
- the raw baseline: read and ``json.loads`` the same file, then one SHA-256 per event.
The median of the rounds is kept. Target: under 1 s.

Also printed: one pure-Python Ed25519 verification beside OpenSSL's (through
`cryptography`), and the server's cost to compute the bundle's 10,000 proofs over the
200,000 leaves beside hashing the 200,000 leaves once.

Run on its own: ``.venv/bin/python -m bench.evidence_offline [--quick]`` (from the project root).
"""

from __future__ import annotations

import hashlib
import json
import statistics
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey

from bench.common import CONSOLE, Figure, Scale, print_figure, run_alone
from domain.evidence import (
    ed25519_verify,
    inclusion_proofs,
    read_bundle,
    verify_bundle,
)
from tests.evidence_bundles import Signer, make_bundle, message_of

NAME = "evidence"
EVENTS = 10_000
LOG_SIZE = 200_000


def run(scale: Scale) -> list[Figure]:
    CONSOLE.rule(f"[bold]offline check of a {EVENTS:,}-event evidence bundle")
    signer = Signer.new()
    with CONSOLE.status("building the bundle ..."):
        bundle = make_bundle(signer, EVENTS, LOG_SIZE)
    rounds = 3 if scale.quick else 7
    with tempfile.TemporaryDirectory(prefix="bench-evidence-") as folder:
        path = Path(folder) / "bundle.json"
        path.write_text(json.dumps(bundle))
        CONSOLE.print(f"  bundle: {path.stat().st_size / 1e6:,.1f} MB, {rounds} rounds each")

        def check() -> None:
            problems = verify_bundle(read_bundle(str(path)), signer.public)
            assert problems == [], problems[:3]

        def raw() -> None:
            document = json.loads(path.read_bytes())
            for event in document["events"]:
                hashlib.sha256(event["state"].encode()).digest()

        checked, baseline = alternate(check, raw, rounds)
    figures = [
        Figure(
            NAME,
            f"offline check, {EVENTS:,} events over {LOG_SIZE:,} leaves",
            checked * 1000,
            "ms",
            "json.loads + 1 SHA-256 per event",
            baseline * 1000,
            higher_is_better=False,
        ),
        signature_figure(signer, bundle["checkpoint"], rounds * 10),
        proofs_figure(rounds),
    ]
    for figure in figures:
        print_figure(figure)
    return figures


def alternate(
    measured: Callable[[], None], baseline: Callable[[], None], rounds: int
) -> tuple[float, float]:
    """Median seconds of each, run in turns so that noise on the machine falls on both."""
    times: tuple[list[float], list[float]] = ([], [])
    for _ in range(rounds):
        for action, kept in ((measured, times[0]), (baseline, times[1])):
            started = time.perf_counter()
            action()
            kept.append(time.perf_counter() - started)
    return statistics.median(times[0]), statistics.median(times[1])


def signature_figure(signer: Signer, checkpoint: dict[str, Any], rounds: int) -> Figure:
    message = message_of(checkpoint)
    signature = bytes.fromhex(checkpoint["signature"])
    openssl = Ed25519PublicKey.from_public_bytes(signer.public)

    def pure() -> None:
        assert ed25519_verify(signer.public, message, signature)

    def native() -> None:
        openssl.verify(signature, message)

    ours, theirs = alternate(pure, native, rounds)
    return Figure(
        NAME,
        "one Ed25519 verification, pure Python",
        ours * 1000,
        "ms",
        "OpenSSL via cryptography",
        theirs * 1000,
        higher_is_better=False,
    )


def proofs_figure(rounds: int) -> Figure:
    leaves = [hashlib.sha256(i.to_bytes(8, "big")).digest() for i in range(LOG_SIZE)]
    indexes = range(0, LOG_SIZE, LOG_SIZE // EVENTS)

    def proofs() -> None:
        inclusion_proofs(leaves, indexes, LOG_SIZE)

    def hash_leaves() -> None:
        for leaf in leaves:
            hashlib.sha256(leaf).digest()

    made, hashed = alternate(proofs, hash_leaves, max(rounds // 2, 2))
    return Figure(
        NAME,
        f"server: {EVENTS:,} proofs over {LOG_SIZE:,} leaves",
        made * 1000,
        "ms",
        f"{LOG_SIZE:,} SHA-256 of 32 bytes",
        hashed * 1000,
        higher_is_better=False,
    )


if __name__ == "__main__":
    run_alone(run)
