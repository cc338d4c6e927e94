"""The tamper-evidence primitives and the auditor's offline verifier (domain/evidence.py).

Known answers come from outside the module: the Certificate Transparency test vectors for
RFC 6962 trees, RFC 8032's Ed25519 test vectors, a recursive transcription of RFC 9162's
MTH and PATH, and signatures made by the `cryptography` package.
"""

from __future__ import annotations

import ast
import base64
import copy
import hashlib
import json
import random
import shutil
import struct
import subprocess
import sys
import time
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat
from hypothesis import given, settings
from hypothesis import strategies as st

from domain import evidence
from domain.evidence import (
    EMPTY_ROOT,
    ZERO_HASH,
    Frontier,
    checkpoint_message,
    ed25519_verify,
    event_hash,
    inclusion_proof,
    inclusion_proofs,
    key_id_of,
    leaf_hash,
    merkle_root,
    node_hash,
    verify_bundle,
    verify_inclusion,
)
from tests.evidence_bundles import Signer, make_bundle

MODULE = Path(evidence.__file__)

# --- references transcribed from the RFCs, recursive and slow on purpose -------------------


def reference_mth(leaves: list[bytes]) -> bytes:
    """RFC 9162 2.1.1, with leaves already hashed."""
    if not leaves:
        return hashlib.sha256(b"").digest()
    if len(leaves) == 1:
        return leaves[0]
    k = 1 << (len(leaves) - 1).bit_length() - 1
    return hashlib.sha256(b"\x01" + reference_mth(leaves[:k]) + reference_mth(leaves[k:])).digest()


def reference_path(m: int, leaves: list[bytes]) -> list[bytes]:
    """RFC 9162 2.1.3.1 PATH(m, D[n])."""
    if len(leaves) <= 1:
        return []
    k = 1 << (len(leaves) - 1).bit_length() - 1
    if m < k:
        return [*reference_path(m, leaves[:k]), reference_mth(leaves[k:])]
    return [*reference_path(m - k, leaves[k:]), reference_mth(leaves[:k])]


def some_leaves(n: int) -> list[bytes]:
    return [leaf_hash(i + 1, hashlib.sha256(i.to_bytes(4, "big")).digest()) for i in range(n)]


# --- hashes ---------------------------------------------------------------------------------


def test_event_hash_is_the_specified_concatenation() -> None:
    case = uuid.UUID("0b7f8a52-3c1e-4a8e-9d27-5f1c2e3d4a5b")
    prev = bytes(range(32))
    topic = "domain.case:Case.Opened é"
    expected = hashlib.sha256(
        prev
        + case.bytes
        + struct.pack(">q", 7)
        + struct.pack(">I", len(topic.encode()))
        + topic.encode()
        + b'{"a":1}'
    ).digest()
    assert event_hash(prev, case, 7, topic, b'{"a":1}') == expected
    assert event_hash(prev, str(case), 7, topic, b'{"a":1}') == expected
    assert bytes(32) == ZERO_HASH


def test_leaf_and_node_hashes_carry_their_domain_prefix() -> None:
    h = bytes(range(32))
    assert leaf_hash(258, h) == hashlib.sha256(b"\x00" + b"\0\0\0\0\0\0\x01\x02" + h).digest()
    assert node_hash(h, h[::-1]) == hashlib.sha256(b"\x01" + h + h[::-1]).digest()


CT_INPUTS = [
    b"",
    b"\x00",
    b"\x10",
    b"\x20\x21",
    b"\x30\x31",
    b"\x40\x41\x42\x43",
    bytes(range(0x50, 0x58)),
    bytes(range(0x60, 0x70)),
]
CT_ROOTS = [
    "6e340b9cffb37a989ca544e6bb780a2c78901d3fb33738768511a30617afa01d",
    "fac54203e7cc696cf0dfcb42c92a1d9dbaf70ad9e621f4bd8d98662f00e3c125",
    "aeb6bcfe274b70a14fb067a5e5578264db0fa9b51af5e0ba159158f329e06e77",
    "d37ee418976dd95753c1c73862b9398fa2a2cf9b4ff0fdfe8b30cd95209614b7",
    "4e3bbb1f7b478dcfe71fb631631519a3bca12c9aefca1612bfce4c13a86264d4",
    "76e67dadbcdf1e10e1b74ddc608abd2f98dfb16fbce75277b5232a127f2087ef",
    "ddb89be403809e325750d3d263cd78929c2942b7942a34b77e122c9594a74c8c",
    "5dc9da79a70659a9ad559cb701ded9a2ab9d823aad2f4960cfe370eff4604328",
]
CT_LEAVES = [hashlib.sha256(b"\x00" + data).digest() for data in CT_INPUTS]


def test_merkle_roots_match_the_certificate_transparency_vectors() -> None:
    assert merkle_root([]) == EMPTY_ROOT == hashlib.sha256(b"").digest()
    assert [merkle_root(CT_LEAVES[:n]).hex() for n in range(1, 9)] == CT_ROOTS


def test_inclusion_proofs_match_the_certificate_transparency_vectors() -> None:
    assert [p.hex() for p in inclusion_proof(CT_LEAVES, 0, 8)] == [
        "96a296d224f285c67bee93c30f8a309157f0daa35dc5b87e410b78630a09cfc7",
        "5f083f0a1a33ca076a95279832580db3e0ef4584bdff1f54c8a360f50de3031e",
        "6b47aaf29ee3c2af9af889bc1fb9254dabd31177f16232dd6aab035ca39bf6e4",
    ]
    assert [p.hex() for p in inclusion_proof(CT_LEAVES, 5, 8)] == [
        "bc1a0643b12e4d2d7c77918f44e0f4f79a838b6cf9ec5b5c283e1f4d88599e6b",
        "ca854ea128ed050b41b35ffc1b87b8eb2bde461e9e3b5596ece6b9d5975a0ae0",
        "d37ee418976dd95753c1c73862b9398fa2a2cf9b4ff0fdfe8b30cd95209614b7",
    ]
    assert inclusion_proof(CT_LEAVES, 0, 1) == []


# --- tree properties ------------------------------------------------------------------------


def test_every_proof_of_small_trees_is_rfc_9162_path() -> None:
    leaves = some_leaves(40)
    for size in range(1, 41):
        root = reference_mth(leaves[:size])
        assert merkle_root(leaves[:size]) == root
        proofs = inclusion_proofs(leaves, range(size), size)
        for index, proof in enumerate(proofs):
            assert proof == reference_path(index, leaves[:size]), (size, index)
            assert verify_inclusion(leaves[index], index, size, proof, root)


@settings(max_examples=60, deadline=None)
@given(size=st.integers(1, 300), data=st.data())
def test_all_proofs_of_a_tree_verify_and_no_neighbouring_claim_does(
    size: int, data: st.DataObject
) -> None:
    leaves = some_leaves(size + 3)
    root = merkle_root(leaves[:size])
    assert root == reference_mth(leaves[:size])
    proofs = inclusion_proofs(leaves, range(size), size)
    assert all(verify_inclusion(leaves[i], i, size, proofs[i], root) for i in range(size))
    index = data.draw(st.integers(0, size - 1), label="index")
    proof = proofs[index]
    assert proof == inclusion_proof(leaves, index, size)
    leaf = leaves[index]
    assert not verify_inclusion(leaf, index, size, proof, leaves[size])  # another root
    assert not verify_inclusion(leaves[size], index, size, proof, root)  # another leaf
    assert not verify_inclusion(leaf, index, size, [*proof, root], root)  # one too many
    assert not verify_inclusion(leaf, size, size, proof, root)  # beyond the tree
    other = data.draw(st.integers(0, size - 1).filter(lambda i: i != index), label="other")
    assert not verify_inclusion(leaf, other, size, proof, root)
    if proof:
        assert not verify_inclusion(leaf, index, size, proof[:-1], root)  # one too few
        element = data.draw(st.integers(0, len(proof) - 1), label="element")
        bit = data.draw(st.integers(0, 255), label="bit")
        flipped = list(proof)
        flipped[element] = flip_bit(proof[element], bit)
        assert not verify_inclusion(leaf, index, size, flipped, root)
    for larger in (size + 1, size + 2):
        assert not verify_inclusion(leaf, index, larger, proof, merkle_root(leaves[:larger]))


def flip_bit(raw: bytes, bit: int) -> bytes:
    changed = bytearray(raw)
    changed[bit // 8 % len(raw)] ^= 1 << bit % 8
    return bytes(changed)


def test_inclusion_proofs_refuse_indexes_outside_the_tree() -> None:
    leaves = some_leaves(5)
    with pytest.raises(ValueError, match="outside a tree of size 4"):
        inclusion_proofs(leaves, [1, 4], 4)
    with pytest.raises(ValueError, match="size 6"):
        inclusion_proof(leaves, 0, 6)


def test_the_frontier_root_is_the_tree_root_at_every_size_and_after_a_resume() -> None:
    leaves = some_leaves(300)
    frontier = Frontier()
    assert frontier.root() == EMPTY_ROOT
    for size, leaf in enumerate(leaves, 1):
        frontier.append(leaf)
        assert frontier.size == size
        assert frontier.root() == merkle_root(leaves[:size])
        if size % 37 == 0:  # store it as a checkpoint would, resume, and go on to the end
            resumed = Frontier.from_list(size, json.loads(json.dumps(frontier.to_list())))
            resumed.extend(leaves[size:])
            assert resumed.root() == merkle_root(leaves)


def test_a_frontier_with_the_wrong_number_of_subtrees_is_refused() -> None:
    frontier = Frontier()
    frontier.extend(some_leaves(6))  # 6 = 4 + 2: two subtree roots
    assert len(frontier.to_list()) == 2
    with pytest.raises(ValueError, match="a tree of size 7 has 3 subtree roots, not 2"):
        Frontier.from_list(7, frontier.to_list())
    with pytest.raises(ValueError, match="32 bytes"):
        Frontier.from_list(6, ["ab", "cd"])


# --- checkpoints and Ed25519 ----------------------------------------------------------------


def test_checkpoint_message_and_key_id_follow_the_format() -> None:
    public = bytes(range(32))
    assert key_id_of(public) == hashlib.sha256(public).hexdigest()[:16]
    message = checkpoint_message(
        "caseledger_events", 5, 9, "ab" * 32, "2026-12-07T03:00:00+00:00", "k1"
    )
    assert message == (
        b"caseledger-checkpoint-v1\n"
        b'{"key_id":"k1","log":"caseledger_events","position":9,"root":"' + b"ab" * 32 + b'",'
        b'"signed_at":"2026-12-07T03:00:00+00:00","size":5}'
    )
    with_heads = checkpoint_message(
        "caseledger_events", 5, 9, "ab" * 32, "2026-12-07T03:00:00+00:00", "k1", "cd" * 32, 3
    )
    assert with_heads == (
        b"caseledger-checkpoint-v1\n"
        b'{"cases":3,"heads":"' + b"cd" * 32 + b'","key_id":"k1","log":"caseledger_events",'
        b'"position":9,"root":"' + b"ab" * 32 + b'","signed_at":"2026-12-07T03:00:00+00:00",'
        b'"size":5}'
    )


def test_a_case_head_is_its_id_newest_version_and_hash_with_its_own_prefix() -> None:
    case, digest = uuid.UUID(int=7).bytes, bytes(range(32))
    expected = hashlib.sha256(b"\x02" + case + struct.pack(">Q", 12) + digest).digest()
    assert evidence.head_leaf(case, 12, digest) == expected
    assert expected not in (leaf_hash(12, digest), node_hash(case + case, digest))


RFC_8032_VECTORS = [  # (public key, message, signature): TEST 1, 2 and 3 of section 7.1
    (
        "d75a980182b10ab7d54bfed3c964073a0ee172f3daa62325af021a68f707511a",
        "",
        "e5564300c360ac729086e2cc806e828a84877f1eb8e5d974d873e06522490155"
        "5fb8821590a33bacc61e39701cf9b46bd25bf5f0595bbe24655141438e7a100b",
    ),
    (
        "3d4017c3e843895a92b70aa74d1b7ebc9c982ccf2ec4968cc0cd55f12af4660c",
        "72",
        "92a009a9f0d4cab8720e820b5f642540a2b27b5416503f8fb3762223ebdb69da"
        "085ac1e43e15996e458f3613d0f11d8c387b2eaeb4302aeeb00d291612bb0c00",
    ),
    (
        "fc51cd8e6218a1a38da47ed00230f0580816ed13ba3303ac5deb911548908025",
        "af82",
        "6291d657deec24024827e69c3abe01a30ce548a284743a445e3680d7db5ac3ac"
        "18ff9b538d16f290ae67f760984dc6594a7c15e9716ed28dc027beceea1ec40a",
    ),
]


@pytest.mark.parametrize(("public", "message", "signature"), RFC_8032_VECTORS)
def test_ed25519_accepts_the_rfc_8032_vectors(public: str, message: str, signature: str) -> None:
    key, msg, sig = bytes.fromhex(public), bytes.fromhex(message), bytes.fromhex(signature)
    assert ed25519_verify(key, msg, sig)
    assert not ed25519_verify(key, msg + b"\x00", sig)
    assert not ed25519_verify(key, msg, flip_bit(sig, 3))


def cryptography_verifies(public: bytes, message: bytes, signature: bytes) -> bool:
    from cryptography.exceptions import InvalidSignature  # noqa: PLC0415
    from cryptography.hazmat.primitives.asymmetric.ed25519 import (  # noqa: PLC0415
        Ed25519PublicKey,
    )

    try:
        Ed25519PublicKey.from_public_bytes(public).verify(signature, message)
    except InvalidSignature:
        return False
    return True


def test_ed25519_agrees_with_cryptography_on_random_keys_and_tampering() -> None:
    rng = random.Random(8032)
    checked = 0
    for round_ in range(150):
        private = Ed25519PrivateKey.from_private_bytes(rng.randbytes(32))
        public = private.public_key().public_bytes_raw()
        message = rng.randbytes(rng.choice([0, 1, 31, 64, 200]))
        signature = private.sign(message)
        other = Ed25519PrivateKey.from_private_bytes(rng.randbytes(32)).public_key()
        cases = [
            (public, message, signature),  # valid
            (public, message + b"!", signature),  # tampered message
            (public, message, flip_bit(signature, rng.randrange(512))),  # tampered signature
            (other.public_bytes_raw(), message, signature),  # wrong key
        ]
        if round_ % 10 == 0:
            cases.append((public, message, rng.randbytes(64)))  # noise
        for key, msg, sig in cases:
            assert ed25519_verify(key, msg, sig) == cryptography_verifies(key, msg, sig)
            checked += 1
    assert checked == 615


def test_ed25519_rejects_a_non_canonical_s_and_bad_encodings() -> None:
    public, message, signature = (bytes.fromhex(v) for v in RFC_8032_VECTORS[0])
    order = 2**252 + 27742317777372353535851937790883648493
    s = int.from_bytes(signature[32:], "little")
    malleated = signature[:32] + (s + order).to_bytes(32, "little")  # the same point, S >= L
    assert not ed25519_verify(public, message, malleated)
    assert not cryptography_verifies(public, message, malleated)
    p = 2**255 - 19
    assert not ed25519_verify(p.to_bytes(32, "little"), message, signature)  # y >= p
    assert not ed25519_verify(public, message, p.to_bytes(32, "little") + signature[32:])
    x_zero_negative = (1 | 1 << 255).to_bytes(32, "little")  # y = 1, x = 0 with the sign bit
    assert not ed25519_verify(x_zero_negative, message, signature)
    assert not ed25519_verify(public[:31], message, signature)
    assert not ed25519_verify(public, message, signature[:63])


def test_one_ed25519_verification_takes_well_under_100_ms() -> None:
    public, message, signature = (bytes.fromhex(v) for v in RFC_8032_VECTORS[2])
    best = min(timed(lambda: ed25519_verify(public, message, signature)) for _ in range(5))
    assert best < 0.05


def timed(action: Callable[[], object]) -> float:
    started = time.perf_counter()
    action()
    return time.perf_counter() - started


# --- bundles --------------------------------------------------------------------------------

SIGNER = Signer(Ed25519PrivateKey.from_private_bytes(bytes(range(1, 33))))
OTHER_SIGNER = Signer(Ed25519PrivateKey.from_private_bytes(bytes(range(2, 34))))
BUNDLE = make_bundle(SIGNER, events=6, log_size=45, seed=12)


def fresh() -> dict[str, Any]:
    return copy.deepcopy(BUNDLE)


def problems_of(bundle: object, key: bytes = SIGNER.public) -> list[tuple[int | None, str]]:
    return [(p.version, str(p)) for p in verify_bundle(bundle, key)]


def test_a_valid_bundle_has_no_problem() -> None:
    assert verify_bundle(fresh(), SIGNER.public) == []
    one = make_bundle(SIGNER, events=1, log_size=1)
    assert verify_bundle(one, SIGNER.public) == []


def edit(path: str, value: object) -> Callable[[dict[str, Any]], None]:
    """Set a field given as 'checkpoint.size' or 'events.2.proof.0'; DELETE removes it."""

    def apply(bundle: dict[str, Any]) -> None:
        *parents, last = path.split(".")
        node: Any = bundle
        for part in parents:
            node = node[int(part)] if isinstance(node, list) else node[part]
        key: Any = int(last) if isinstance(node, list) else last
        if value is DELETE:
            del node[key]
        else:
            node[key] = value

    return apply


DELETE = object()


def resigned(apply: Callable[[dict[str, Any]], None]) -> Callable[[dict[str, Any]], None]:
    """A change to the checkpoint that its key then signs: only the events can catch it."""

    def both(bundle: dict[str, Any]) -> None:
        apply(bundle)
        SIGNER.sign_checkpoint(bundle["checkpoint"])

    return both


def swap_events(bundle: dict[str, Any]) -> None:
    events = bundle["events"]
    events[2], events[3] = events[3], events[2]


def change_state(bundle: dict[str, Any]) -> None:
    event = bundle["events"][3]
    event["state"] = base64.b64encode(b'{"note":"rewritten"}').decode()


def rehash_event(bundle: dict[str, Any]) -> None:
    """Change an event and its hash consistently: the next event's chain breaks."""
    event = bundle["events"][2]
    prev = bytes.fromhex(bundle["events"][1]["hash"])
    state = b'{"note":"rewritten"}'
    event["state"] = base64.b64encode(state).decode()
    event["hash"] = event_hash(prev, event["originator_id"], 3, event["topic"], state).hex()


PROBLEM_KINDS: dict[str, tuple[Callable[[dict[str, Any]], None], int | None, str]] = {
    "format": (edit("format", "caseledger-evidence/2"), None, "format is"),
    "case id": (edit("case_id", "not-a-uuid"), None, "is not a UUID"),
    "no log": (edit("log", DELETE), None, "names no log"),
    "no checkpoint": (edit("checkpoint", DELETE), None, "has no checkpoint"),
    "checkpoint size type": (edit("checkpoint.size", "45"), None, "valid size"),
    "checkpoint root hex": (edit("checkpoint.root", "zz" * 32), None, "valid root"),
    "checkpoint signature": (edit("checkpoint.signature", "00"), None, "valid signature"),
    "other log": (resigned(edit("checkpoint.log", "other")), None, "of log 'other'"),
    "signed_at altered": (edit("checkpoint.signed_at", "2027"), None, "signature is not valid"),
    "key id altered": (edit("checkpoint.key_id", "00" * 8), None, "not by the trusted key"),
    "no events": (edit("events", []), None, "has no events"),
    "event not object": (edit("events.1", 5), None, "event #2 is not an object"),
    "no version": (edit("events.1.version", True), None, "event #2 has no version"),
    "bad base64": (edit("events.1.state", "@@@"), 2, "valid state"),
    "bad hash hex": (edit("events.1.hash", "ab cd" * 16), 2, "valid hash"),
    "proof not a list": (edit("events.1.proof", "ab"), 2, "valid proof"),
    "missing version": (edit("events.2", DELETE), 4, "version 3 is missing"),
    "versions swapped": (swap_events, 3, "comes after version 4"),
    "other case": (
        edit("events.0.originator_id", str(uuid.UUID(int=1))),
        1,
        "is not the case's id",
    ),
    "state changed": (change_state, 4, "does not match its hash"),
    "chain broken": (rehash_event, 4, "does not match its hash"),
    "topic changed": (edit("events.0.topic", "domain.case:Case.Closed"), 1, "match its hash"),
    "leaf beyond checkpoint": (edit("events.5.leaf", 45), 6, "not covered by the checkpoint"),
    "position beyond": (edit("events.5.position", 10**6), 6, "after the checkpoint's last"),
    "position changed": (edit("events.4.position", 40), 5, "does not lead to the checkpoint"),
    "leaf order": (edit("events.4.leaf", 0), 5, "do not come after the previous version"),
    "proof element hex": (edit("events.0.proof.0", "x" * 64), 1, "other than 64 hex digits"),
    "proof element dropped": (edit("events.0.proof.0", DELETE), 1, "does not lead to"),
    "root re-signed": (resigned(edit("checkpoint.root", "00" * 32)), 1, "does not lead to"),
    "cut short": (edit("events.5", DELETE), 5, "does not show version 5 as the case's newest"),
    "head proof changed": (edit("head.proof.0", "00" * 32), 6, "as the case's newest"),
    "head index changed": (edit("head.index", 0), 6, "as the case's newest"),
    "no head": (edit("head", DELETE), None, "head lacks a valid index"),
    "heads hex": (edit("checkpoint.heads", "zz" * 32), None, "valid heads"),
    "heads re-signed": (resigned(edit("checkpoint.heads", "00" * 32)), 6, "case's newest"),
    "cases re-signed": (resigned(edit("checkpoint.cases", 7)), 6, "case's newest"),
}


@pytest.mark.parametrize("kind", PROBLEM_KINDS)
def test_each_kind_of_problem_is_reported_with_its_case_and_version(kind: str) -> None:
    change, version, words = PROBLEM_KINDS[kind]
    bundle = fresh()
    change(bundle)
    problems = problems_of(bundle)
    case = f"case {bundle['case_id']}"
    assert any(v == version and words in text and case in text for v, text in problems), problems


def test_a_bundle_against_a_checkpoint_without_case_heads_still_verifies_and_says_so() -> None:
    old = make_bundle(SIGNER, events=6, log_size=45, seed=12, heads=False)
    assert "heads" not in old["checkpoint"] and "head" not in old
    assert verify_bundle(old, SIGNER.public) == []
    cut = {**old, "events": old["events"][:-1]}  # what case heads are there to catch
    assert verify_bundle(cut, SIGNER.public) == []
    assert "does not show that no later event" in evidence.summary(old)
    assert "version 6 is the case's newest" in evidence.summary(fresh())


def test_another_trusted_key_is_a_problem_even_for_an_intact_bundle() -> None:
    [(version, text)] = problems_of(fresh(), OTHER_SIGNER.public)
    assert version is None
    assert f"signed by key {key_id_of(SIGNER.public)}" in text
    assert "caseledger audit public-key" in text


@pytest.mark.parametrize(
    "junk",
    [None, [], "text", 7, {}, {"events": "x"}, {"events": [None, {}, {"version": 1}]}],
    ids=repr,
)
def test_malformed_bundles_give_problems_not_tracebacks(junk: object) -> None:
    assert verify_bundle(junk, SIGNER.public) != []


# --- tampering is always detected -----------------------------------------------------------

TARGETS = [
    "state",
    "hash",
    "proof",
    "topic",
    "position",
    "leaf",
    "version",
    "originator_id",
    "root",
    "signature",
    "size",
    "signed_at",
    "log",
    "heads",
    "cases",
    "index",
    "head_proof",
]


def tamper(bundle: dict[str, Any], target: str, event: int, choice: int, bit: int) -> None:
    """Flip one bit of one field (for bytes fields, of its decoded bytes)."""
    checkpoint = bundle["checkpoint"]
    chosen = bundle["events"][event % len(bundle["events"])]
    # where each field lives, for those flipped the same way
    holder = {"root": checkpoint, "signature": checkpoint, "heads": checkpoint}
    holder |= {"size": checkpoint, "cases": checkpoint, "index": bundle["head"]}
    if target == "state":
        raw = base64.b64decode(chosen["state"])
        chosen["state"] = base64.b64encode(flip_bit(raw, choice * 8 + bit)).decode()
    elif target in ("hash", "root", "signature", "heads"):
        where = holder.get(target, chosen)
        where[target] = flip_bit(bytes.fromhex(where[target]), choice * 8 + bit).hex()
    elif target in ("proof", "head_proof"):
        proof = chosen["proof"] if target == "proof" else bundle["head"]["proof"]
        at = choice % len(proof)
        proof[at] = flip_bit(bytes.fromhex(proof[at]), choice * 8 + bit).hex()
    elif target in ("position", "leaf", "version", "size", "cases", "index"):
        holder.get(target, chosen)[target] ^= 1 << (choice % 64)
    elif target == "originator_id":  # its 16 bytes: "A" and "a" are the same UUID digit
        raw = uuid.UUID(chosen[target]).bytes
        chosen[target] = str(uuid.UUID(bytes=flip_bit(raw, choice * 8 + bit)))
    elif target == "topic":
        chosen[target] = flip_text(chosen[target], choice, bit)
    else:  # signed_at, log: text in the checkpoint
        checkpoint[target] = flip_text(checkpoint[target], choice, bit)


def flip_text(text: str, choice: int, bit: int) -> str:
    at = choice % len(text)
    return text[:at] + chr(ord(text[at]) ^ 1 << (bit % 7)) + text[at + 1 :]


@settings(max_examples=400, deadline=None)
@given(
    target=st.sampled_from(TARGETS),
    event=st.integers(0, 5),
    choice=st.integers(0, 10_000),
    bit=st.integers(0, 7),
)
def test_any_flipped_bit_is_detected(target: str, event: int, choice: int, bit: int) -> None:
    bundle = fresh()
    tamper(bundle, target, event, choice, bit)
    assert bundle != BUNDLE
    assert verify_bundle(bundle, SIGNER.public) != []


LARGE_BUNDLE = make_bundle(SIGNER, events=40, log_size=3_000, seed=5)


@pytest.mark.slow
@settings(max_examples=5_000, deadline=None)
@given(
    target=st.sampled_from(TARGETS),
    event=st.integers(0, 39),
    choice=st.integers(0, 10_000),
    bit=st.integers(0, 7),
)
def test_any_flipped_bit_is_detected_in_a_larger_bundle(
    target: str, event: int, choice: int, bit: int
) -> None:
    bundle = copy.deepcopy(LARGE_BUNDLE)
    tamper(bundle, target, event, choice, bit)
    assert verify_bundle(bundle, SIGNER.public) != []


# --- the module as the auditor's script -----------------------------------------------------


def test_the_module_imports_only_the_standard_library() -> None:
    tree = ast.parse(MODULE.read_text())
    imported: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            imported.update(alias.name.split(".")[0] for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            assert node.level == 0, "no relative imports: the script runs on its own"
            imported.add((node.module or "").split(".")[0])
    outside = sorted(name for name in imported if name not in sys.stdlib_module_names)
    assert set(outside) <= {"__future__"}, outside


@pytest.fixture
def script(tmp_path: Path) -> Callable[..., subprocess.CompletedProcess[str]]:
    """Run a copy of the module, alone in a folder, without site-packages (-I -S)."""
    copied = tmp_path / "evidence.py"
    shutil.copy(MODULE, copied)

    def run(*args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [sys.executable, "-I", "-S", str(copied), *args],
            capture_output=True,
            text=True,
            cwd=tmp_path,
            timeout=60,
            check=False,
        )

    return run


def test_the_script_says_ok_for_a_valid_bundle(
    script: Callable[..., subprocess.CompletedProcess[str]], tmp_path: Path
) -> None:
    path = tmp_path / "bundle.json"
    path.write_text(json.dumps(BUNDLE))
    pem = tmp_path / "key.pem"
    pem.write_bytes(
        SIGNER.private.public_key().public_bytes(Encoding.PEM, PublicFormat.SubjectPublicKeyInfo)
    )
    hex_file = tmp_path / "key.hex"
    hex_file.write_text(SIGNER.public.hex() + "\n")
    printed = tmp_path / "public-key.txt"  # all `caseledger audit public-key` prints
    printed.write_text(f"key id: 0011\nhex:    {SIGNER.public.hex()}\n{pem.read_text()}")
    for key in (SIGNER.public.hex(), str(pem), str(hex_file), str(printed)):
        done = script(str(path), "--public-key", key)
        assert done.returncode == 0, done.stderr
        assert done.stdout.startswith(
            f"OK: 6 events of case {BUNDLE['case_id']}, versions 1-6, included in checkpoint "
            f"of size 45 of log caseledger_events signed at {BUNDLE['checkpoint']['signed_at']} "
            f"by key {key_id_of(SIGNER.public)}"
        )


def test_the_script_lists_problems_and_exits_1(
    script: Callable[..., subprocess.CompletedProcess[str]], tmp_path: Path
) -> None:
    bundle = fresh()
    change_state(bundle)
    path = tmp_path / "bundle.json"
    path.write_text(json.dumps(bundle))
    done = script(str(path), "--public-key", SIGNER.public.hex())
    assert done.returncode == 1
    assert f"case {BUNDLE['case_id']}, version 4: its content does not match" in done.stdout
    assert "NOT VERIFIED: 1 problem" in done.stdout


def test_the_script_exits_2_on_what_it_cannot_read(
    script: Callable[..., subprocess.CompletedProcess[str]], tmp_path: Path
) -> None:
    good = tmp_path / "bundle.json"
    good.write_text(json.dumps(BUNDLE))
    not_json = tmp_path / "notes.txt"
    not_json.write_text("{oops")
    private = tmp_path / "private.pem"
    private.write_text(
        "-----BEGIN PRIVATE KEY-----\nMC4CAQAwBQYDK2VwBCIEI...\n-----END PRIVATE KEY-----\n"
    )
    key = SIGNER.public.hex()
    for args, words in [
        ((str(tmp_path / "missing.json"), "--public-key", key), "cannot read the bundle"),
        ((str(not_json), "--public-key", key), "is not a JSON document"),
        ((str(good), "--public-key", "abc"), "neither 64 hex digits nor a readable key file"),
        ((str(good), "--public-key", str(private)), "that is a private key"),
        ((str(good),), "--public-key"),
    ]:
        done = script(*args)
        assert done.returncode == 2, (args, done.stdout)
        assert words in done.stderr


def test_the_script_explains_itself(
    script: Callable[..., subprocess.CompletedProcess[str]],
) -> None:
    done = script("--help")
    assert done.returncode == 0
    assert "caseledger audit public-key" in done.stdout
    assert "Exit status" in done.stdout
