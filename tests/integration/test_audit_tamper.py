"""Tampering with the store in SQL, as someone with write access to the database would (the
trigger disabled where it would get in the way), is caught by `caseledger audit verify`,
which names the case and version, and by the offline verifier on the case's evidence
bundle, proved against the checkpoint signed before the tampering."""

from __future__ import annotations

import base64
import json
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from uuid import UUID, uuid4

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from typer.testing import CliRunner

from domain.evidence import Frontier, event_hash, leaf_hash, verify_bundle
from infra.audit_bundle import EvidenceBundles
from infra.audit_keys import SigningKey
from infra.audit_ledger import sign
from infra.bootstrap import Container
from infra.cli import app
from infra.settings import Settings
from services.audit import LogNotDense
from tests.conftest import settings_env
from tests.integration.helpers import open_cases

EVENTS = "caseledger_events"


@dataclass
class Store:
    """Four cases of four events each, projected, checkpointed and published."""

    container: Container
    settings: Settings
    cases: list[str]

    def sql(self, statement: str, params: Any = None) -> list[dict[str, Any]]:
        with self.container.pool.connection() as conn:
            cursor = conn.execute(statement, params)
            return cursor.fetchall() if cursor.description else []

    def event(self, case: str, version: int) -> dict[str, Any]:
        return self.sql(
            f"SELECT * FROM {EVENTS} WHERE originator_id = %s AND originator_version = %s",
            (case, version),
        )[0]

    def verify(self) -> tuple[int, list[dict[str, Any]]]:
        """Exit code and problems of `caseledger audit verify --json`."""
        result = CliRunner().invoke(
            app, ["audit", "verify", "--json"], env=settings_env(self.settings)
        )
        return result.exit_code, json.loads(result.stdout)["problems"]

    def bundle(self, case: str) -> dict[str, Any]:
        return EvidenceBundles(self.container.audit).bundle(UUID(case))

    def bundle_problems(self, case: str) -> list[str]:
        """What the offline verifier says of the case's bundle made now."""
        bundle = self.bundle(case)
        return [str(p) for p in verify_bundle(bundle, self.container.audit.key.public_raw)]

    def offline(self, bundle: dict[str, Any], folder: Path) -> subprocess.CompletedProcess[str]:
        """The auditor's own run of the standalone script on ``bundle``, as a process."""
        script, bundle_file = folder / "verifier.py", folder / "bundle.json"
        if not script.exists():
            written = CliRunner().invoke(
                app, ["audit", "verifier", "-o", str(script)], env=settings_env(self.settings)
            )
            assert written.exit_code == 0, written.output
        bundle_file.write_text(json.dumps(bundle))
        key = self.container.audit.key.public_hex
        return subprocess.run(
            [sys.executable, str(script), str(bundle_file), "--public-key", key],
            capture_output=True,
            text=True,
            check=False,
            cwd=folder,
        )


@pytest.fixture
def store(container: Container, settings: Settings) -> Iterator[Store]:
    cases = open_cases(container, 4, notes=3)
    container.projections.catch_up_from_store(container.reader.head(), 1_000)
    container.audit.checkpoint_and_publish()
    yield Store(container, settings, cases)


def _named(problems: list[dict[str, Any]], kind: str, case: str, version: int) -> bool:
    return any(
        p["kind"] == kind and p["case_id"] == case and p["version"] == version for p in problems
    )


def _rehash_from(store: Store, case: str, version: int) -> None:
    """Recompute the chain of ``case`` from ``version`` on, as a careful attacker would."""
    prev = store.event(case, version - 1)["audit_hash"]
    for row in store.sql(
        f"SELECT * FROM {EVENTS} WHERE originator_id = %s AND originator_version >= %s"
        " ORDER BY originator_version",
        (case, version),
    ):
        prev = event_hash(
            prev, row["originator_id"], row["originator_version"], row["topic"], row["state"]
        )
        store.sql(
            f"UPDATE {EVENTS} SET audit_hash = %s WHERE notification_id = %s",
            (prev, row["notification_id"]),
        )


def test_an_untouched_store_verifies_clean(store: Store) -> None:
    code, problems = store.verify()
    assert (code, problems) == (0, [])
    assert store.bundle_problems(store.cases[0]) == []


def test_a_changed_state_is_named(store: Store, tmp_path: Path) -> None:
    case = store.cases[1]
    store.sql(
        f"UPDATE {EVENTS} SET state ="
        " convert_to(replace(convert_from(state, 'UTF8'), 'note 0', 'note X'), 'UTF8')"
        " WHERE originator_id = %s AND originator_version = 2",
        (case,),
    )
    code, problems = store.verify()
    assert code == 1 and _named(problems, "content_changed", case, 2), problems
    bundle = store.bundle(case)
    assert any(
        "version 2" in str(p) for p in verify_bundle(bundle, store.container.audit.key.public_raw)
    )
    run = store.offline(bundle, tmp_path)
    assert run.returncode == 1 and f"case {case}, version 2" in run.stdout, run.stdout


def test_a_changed_state_with_its_chain_recomputed_is_caught_by_the_checkpoint(
    store: Store,
) -> None:
    case = store.cases[2]
    store.sql(
        f"UPDATE {EVENTS} SET state ="
        " convert_to(replace(convert_from(state, 'UTF8'), 'note 1', 'note Y'), 'UTF8')"
        " WHERE originator_id = %s AND originator_version = 3",
        (case,),
    )
    _rehash_from(store, case, 3)
    code, problems = store.verify()
    differs = [p for p in problems if p["kind"] == "checkpoint_differs"]
    assert code == 1 and differs and f"case {case} version 3" in differs[0]["what"], problems
    assert any("version 3" in p for p in store.bundle_problems(case))


def test_a_deleted_event_in_the_middle_of_a_case_is_named(store: Store, tmp_path: Path) -> None:
    case = store.cases[0]
    honest = store.bundle(case)  # what the store proved before
    store.sql(f"DELETE FROM {EVENTS} WHERE originator_id = %s AND originator_version = 2", (case,))
    code, problems = store.verify()
    assert code == 1 and _named(problems, "event_missing", case, 2), problems
    with pytest.raises(LogNotDense):  # no proof is made over a log that lost leaves
        store.bundle_problems(case)
    # a bundle of the case as the store now holds it, with the proofs a forger kept
    forged = {**honest, "events": [e for e in honest["events"] if e["version"] != 2]}
    run = store.offline(forged, tmp_path)
    assert run.returncode == 1 and "version 2 is missing" in run.stdout, run.stdout


def test_a_deleted_last_event_of_a_case_is_named_from_the_case_list(
    store: Store, tmp_path: Path
) -> None:
    case = store.cases[1]
    honest = store.bundle(case)
    store.sql(f"DELETE FROM {EVENTS} WHERE originator_id = %s AND originator_version = 4", (case,))
    code, problems = store.verify()
    assert code == 1 and _named(problems, "event_missing", case, 4), problems
    # the bundle a forger would hand over: every proof holds, but the case heads the
    # checkpoint signed show version 4 as the case's newest
    forged = {**honest, "events": honest["events"][:3]}
    run = store.offline(forged, tmp_path)
    assert run.returncode == 1, run.stdout
    assert f"case {case}, version 3: the checkpoint does not show version 3" in run.stdout


def test_case_heads_changed_before_a_checkpoint_are_named(store: Store, tmp_path: Path) -> None:
    case = store.cases[2]
    store.sql(  # the table the checkpointer keeps them in, as if the case ended at version 3
        "UPDATE audit_heads SET version = 3, hash = %s WHERE case_id = %s",
        (store.event(case, 3)["audit_hash"], case),
    )
    open_cases(store.container, 1)  # the log grows: the next checkpoint signs those heads
    assert store.container.audit.checkpoint(EVENTS) is not None
    code, problems = store.verify()
    assert code == 1 and [p["kind"] for p in problems] == ["heads_differ"], problems
    run = store.offline(store.bundle(case), tmp_path)  # made honestly, from what was signed
    assert run.returncode == 1 and f"case {case}, version 4" in run.stdout, run.stdout


def test_a_forged_event_inserted_into_the_signed_log_is_named(store: Store, tmp_path: Path) -> None:
    case = store.cases[3]
    hole = store.sql(  # a position the sequence skips, as a rolled-back insert leaves
        f"SELECT nextval(pg_get_serial_sequence('{EVENTS}', 'notification_id')) AS p"
    )[0]["p"]
    open_cases(store.container, 1)  # stored after the hole, and signed
    assert store.container.audit.checkpoint(EVENTS) is not None
    before = store.bundle(case)
    last = store.event(case, 4)
    forged, topic = b'{"text": "approved by phone"}', last["topic"]
    store.sql(f"ALTER TABLE {EVENTS} DISABLE TRIGGER audit_chain")
    store.sql(
        f"INSERT INTO {EVENTS} (originator_id, originator_version, topic, state,"
        " notification_id, audit_leaf, audit_hash)"
        f" VALUES (%s, 5, %s, %s, %s, (SELECT max(audit_leaf) + 1 FROM {EVENTS}), %s)",
        (case, topic, forged, hole, event_hash(last["audit_hash"], case, 5, topic, forged)),
    )
    store.sql(f"ALTER TABLE {EVENTS} ENABLE TRIGGER audit_chain")
    code, problems = store.verify()
    assert code == 1 and _named(problems, "event_inserted", case, 5), problems
    with pytest.raises(LogNotDense):  # nothing is signed over it
        store.bundle_problems(case)
    # a bundle with the forged event, given the proof of the case's last signed event
    inserted = store.event(case, 5)
    bundle = json.loads(json.dumps(before))
    bundle["events"].append({
        **bundle["events"][-1],
        "position": inserted["notification_id"],
        "leaf": inserted["audit_leaf"],
        "version": 5,
        "state": base64.b64encode(forged).decode(),
        "hash": bytes(inserted["audit_hash"]).hex(),
    })  # fmt: skip
    run = store.offline(bundle, tmp_path)
    assert run.returncode == 1 and f"case {case}, version 5" in run.stdout, run.stdout


def test_two_events_swapped_in_the_log_are_named(store: Store) -> None:
    case = store.cases[2]
    second, third = store.event(case, 2), store.event(case, 3)
    swap = f"UPDATE {EVENTS} SET notification_id = %s, audit_leaf = %s WHERE notification_id = %s"
    store.sql(swap, (-1, -1, second["notification_id"]))
    store.sql(swap, (second["notification_id"], second["audit_leaf"], third["notification_id"]))
    store.sql(swap, (third["notification_id"], third["audit_leaf"], -1))
    code, problems = store.verify()
    assert code == 1 and _named(problems, "order_changed", case, 3), problems
    assert any("version 3" in p for p in store.bundle_problems(case))


def test_events_swapped_between_cases_are_named_as_moved(store: Store) -> None:
    first, second = store.cases[0], store.cases[3]
    move = (
        f"UPDATE {EVENTS} SET originator_id = %s"
        " WHERE originator_id = %s AND originator_version = 3"
    )
    parked = str(uuid4())
    store.sql(move, (parked, first))
    store.sql(move, (first, second))
    store.sql(move, (second, parked))
    code, problems = store.verify()
    assert code == 1, problems
    assert _named(problems, "event_moved", first, 3) and _named(problems, "event_moved", second, 3)
    assert any(second in p["what"] for p in problems if p["case_id"] == first)
    assert not [p for p in problems if p["kind"] in ("content_changed", "order_changed")]
    assert any("version 3" in p for p in store.bundle_problems(first))


def test_an_altered_checkpoint_root_is_caught(store: Store) -> None:
    store.sql("UPDATE audit_checkpoints SET root = repeat('ab', 32)")
    code, problems = store.verify()
    kinds = {p["kind"] for p in problems}
    assert code == 1 and {"checkpoint_forged", "checkpoint_altered"} <= kinds, problems
    assert any("root" in p["what"] for p in problems if p["kind"] == "checkpoint_altered")
    assert store.bundle_problems(store.cases[0])  # the bundle carries the altered checkpoint


def test_a_checkpoint_signed_with_another_key_is_caught(store: Store) -> None:
    case = store.cases[0]
    store.sql(
        f"UPDATE {EVENTS} SET state ="
        " convert_to(replace(convert_from(state, 'UTF8'), 'note 0', 'note Z'), 'UTF8')"
        " WHERE originator_id = %s AND originator_version = 2",
        (case,),
    )
    _rehash_from(store, case, 2)
    rows = store.sql(f"SELECT notification_id, audit_hash FROM {EVENTS} ORDER BY audit_leaf")
    frontier = Frontier()
    for row in rows:
        frontier.append(leaf_hash(row["notification_id"], row["audit_hash"]))
    mallory = SigningKey(Ed25519PrivateKey.generate())
    fake = sign(mallory, EVENTS, frontier.size, rows[-1]["notification_id"], frontier.root())
    store.sql("DELETE FROM audit_checkpoints")  # replaced by the forgery
    store.sql(
        "INSERT INTO audit_checkpoints (log, size, position, root, signed_at, key_id, signature,"
        " frontier, published_at) VALUES (%s, %s, %s, %s, %s, %s, %s, '', now())",
        (
            fake.log,
            fake.size,
            fake.position,
            fake.root,
            fake.signed_at,
            fake.key_id,
            fake.signature,
        ),
    )
    code, problems = store.verify()
    forged = [p for p in problems if p["kind"] == "checkpoint_forged"]
    assert code == 1 and forged and mallory.key_id in forged[0]["what"], problems
    assert any("not by the trusted key" in p for p in store.bundle_problems(case))


def test_a_deleted_checkpoint_is_caught_by_its_published_copy(store: Store) -> None:
    store.sql("DELETE FROM audit_checkpoints")
    code, problems = store.verify()
    missing = [p for p in problems if p["kind"] == "checkpoint_missing"]
    assert code == 1 and missing and "size 16" in missing[0]["what"], problems
