"""The keys of data subjects, and the index of their cases: owner of the tables
``subject_keys`` and ``subject_cases`` (a :class:`services.personal_data.Vault`).

Each subject gets a random 256-bit data key on first use. Values are sealed with AES-256-GCM
under it, bound (as associated data) to the subject, the case and the field, so a sealed
value copied elsewhere does not open. The table holds data keys only wrapped by a key-
encryption key kept outside the database (:class:`FileKeyWrapper`: a file in the data
directory, made on first use; a KMS can stand in its place through :class:`KeyWrapper`), so a
dump of the database alone opens nothing. Erasing a subject overwrites its wrapped key with
NULL (and vacuums the table, so the old row version goes too): every value sealed under it is
unreadable from then on, wherever a copy of it lies.

Keys are kept in memory for :data:`KEY_CACHE_S` after they are read, so that loading a case
with many sealed values reads its key once: a process may read a subject's values for at most
that long after another process erased it.
"""

from __future__ import annotations

import base64
import json
import os
import secrets
import threading
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any, Protocol
from uuid import UUID

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from psycopg import Connection
from psycopg.rows import DictRow
from psycopg_pool import ConnectionPool

from domain.personal_data import SEALED, SEALED_PREFIX
from services.personal_data import ERASED, SealedValue, SubjectErased

KEY_CACHE_S = 1.0
_NONCE = 12

SCHEMA = """
CREATE TABLE IF NOT EXISTS subject_keys (
    subject     text PRIMARY KEY,
    wrapped_key bytea,
    wrapped_by  text NOT NULL,
    created_at  timestamptz NOT NULL DEFAULT now(),
    erased_at   timestamptz,
    erased_by   text,
    reason      text
);
CREATE TABLE IF NOT EXISTS subject_cases (
    case_id    uuid PRIMARY KEY,
    subject    text NOT NULL,
    indexed_at timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX IF NOT EXISTS subject_cases_subject ON subject_cases (subject);
"""
_NEW_KEY = """
INSERT INTO subject_keys (subject, wrapped_key, wrapped_by) VALUES (%s, %s, %s)
ON CONFLICT (subject) DO NOTHING
"""
_INDEX = "INSERT INTO subject_cases (case_id, subject) VALUES (%s, %s) ON CONFLICT DO NOTHING"
_KEYS = "SELECT subject, wrapped_key, erased_at FROM subject_keys WHERE subject = ANY(%s)"
_ERASE = """
UPDATE subject_keys SET wrapped_key = NULL, erased_at = now(), erased_by = %s, reason = %s
WHERE subject = %s AND erased_at IS NULL
"""


class KeyWrapper(Protocol):
    """Wraps data keys with a key-encryption key kept outside the database (a KMS later)."""

    name: str

    def wrap(self, subject: str, key: bytes) -> bytes: ...

    def unwrap(self, subject: str, wrapped: bytes) -> bytes: ...


class FileKeyWrapper:
    """A key-encryption key in a file (32 random bytes, made with mode 0600 if absent)."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.name = f"file:{path.name}"
        self._kek = AESGCM(self._read_or_make())

    def _read_or_make(self) -> bytes:
        if not self.path.exists():
            self.path.parent.mkdir(parents=True, exist_ok=True)
            try:
                fd = os.open(self.path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
            except FileExistsError:
                pass  # another process made it first
            else:
                with os.fdopen(fd, "wb") as out:
                    out.write(secrets.token_bytes(32))
        key = self.path.read_bytes()
        if len(key) != 32:
            raise RuntimeError(
                f"{self.path} holds {len(key)} bytes, not the 32 of a key-encryption key: "
                "restore it from your backup (without it no personal value can be read)"
            )
        return key

    def wrap(self, subject: str, key: bytes) -> bytes:
        nonce = secrets.token_bytes(_NONCE)
        return nonce + self._kek.encrypt(nonce, key, subject.encode())

    def unwrap(self, subject: str, wrapped: bytes) -> bytes:
        return self._kek.decrypt(wrapped[:_NONCE], wrapped[_NONCE:], subject.encode())


class SubjectKeys:
    """Data keys per subject in PostgreSQL, wrapped by ``wrapper``."""

    def __init__(
        self,
        pool: ConnectionPool[Connection[DictRow]],
        wrapper: KeyWrapper,
        cache_s: float = KEY_CACHE_S,
    ) -> None:
        self.pool = pool
        self.wrapper = wrapper
        self.cache_s = cache_s
        self._keys: dict[str, tuple[float, AESGCM | None]] = {}
        self._indexed: set[UUID] = set()
        self._lock = threading.Lock()

    def create(self) -> None:
        with self.pool.connection() as conn:
            conn.execute(SCHEMA)

    # -- sealing ---------------------------------------------------------------------------

    def seal(self, subject: str, case_id: UUID, field: str, value: Any) -> dict[str, str]:
        key = self._key_to_seal(subject, case_id)
        nonce = secrets.token_bytes(_NONCE)
        plain = json.dumps(value, separators=(",", ":"), ensure_ascii=False).encode()
        sealed = key.encrypt(nonce, plain, _bound(subject, case_id, field))
        text = base64.urlsafe_b64encode(nonce + sealed).decode()
        return {SEALED: f"{SEALED_PREFIX}{subject}:{text}"}

    def unseal_many(self, values: Sequence[SealedValue]) -> list[Any]:
        parsed = [_parse(v.sealed[SEALED]) for v in values]
        keys = self._keys_of({subject for subject, _ in parsed})
        opened = []
        for (subject, blob), value in zip(parsed, values, strict=True):
            key = keys.get(subject)
            if key is None:
                opened.append(ERASED)
                continue
            try:
                bound = _bound(subject, value.case_id, value.field)
                plain = key.decrypt(blob[:_NONCE], blob[_NONCE:], bound)
            except InvalidTag:
                opened.append(ERASED)  # not sealed for this case and field: nothing to show
                continue
            opened.append(json.loads(plain))
        return opened

    def _key_to_seal(self, subject: str, case_id: UUID) -> AESGCM:
        if case_id not in self._indexed:
            with self.pool.connection() as conn:
                data_key = secrets.token_bytes(32)
                wrapped = self.wrapper.wrap(subject, data_key)
                conn.execute(_NEW_KEY, (subject, wrapped, self.wrapper.name))
                conn.execute(_INDEX, (case_id, subject))
            with self._lock:
                self._indexed.add(case_id)
                if len(self._indexed) > 100_000:
                    self._indexed.clear()
        key = self._keys_of({subject}).get(subject)
        if key is None:
            raise SubjectErased(
                f"the personal data of {subject} was erased; no new personal data of it is kept",
                hint="leave its personal fields empty",
            )
        return key

    def _keys_of(self, subjects: set[str]) -> dict[str, AESGCM | None]:
        """Each subject's key (``None``: erased or never made), from the cache or the table."""
        now = time.monotonic()
        keys: dict[str, AESGCM | None] = {}
        with self._lock:
            for subject in subjects:
                found = self._keys.get(subject)
                if found is not None and now - found[0] <= self.cache_s:
                    keys[subject] = found[1]
        missing = sorted(subjects - set(keys))
        if missing:
            with self.pool.connection() as conn:
                rows = conn.execute(_KEYS, (missing,)).fetchall()
            read: dict[str, AESGCM | None] = dict.fromkeys(missing)
            for row in rows:
                if row["wrapped_key"] is not None:
                    data_key = self.wrapper.unwrap(row["subject"], bytes(row["wrapped_key"]))
                    read[row["subject"]] = AESGCM(data_key)
            with self._lock:
                if len(self._keys) > 10_000:
                    self._keys.clear()
                self._keys.update({s: (now, k) for s, k in read.items()})
            keys.update(read)
        return keys

    # -- the index and erasure -------------------------------------------------------------

    def subject_of(self, case_id: UUID) -> str | None:
        with self.pool.connection() as conn:
            row = conn.execute(
                "SELECT subject FROM subject_cases WHERE case_id = %s", (case_id,)
            ).fetchone()
        return None if row is None else str(row["subject"])

    def cases_of(self, subject: str) -> list[UUID]:
        with self.pool.connection() as conn:
            rows = conn.execute(
                "SELECT case_id FROM subject_cases WHERE subject = %s ORDER BY indexed_at, case_id",
                (subject,),
            ).fetchall()
        return [row["case_id"] for row in rows]

    def is_erased(self, subject: str) -> bool:
        with self.pool.connection() as conn:
            row = conn.execute(
                "SELECT erased_at FROM subject_keys WHERE subject = %s", (subject,)
            ).fetchone()
        return row is not None and row["erased_at"] is not None

    def erase(self, subject: str, actor: str, reason: str) -> bool:
        with self.pool.connection() as conn:
            erased = conn.execute(_ERASE, (actor, reason, subject)).rowcount > 0
        with self._lock:
            self._keys[subject] = (time.monotonic(), None)
        if erased:
            self._vacuum()
        return erased

    def _vacuum(self) -> None:
        """Remove the old row versions that still hold the erased wrapped key."""
        with self.pool.connection() as conn:
            conn.autocommit = True
            try:
                conn.execute("VACUUM subject_keys")
            finally:
                conn.autocommit = False


def _bound(subject: str, case_id: UUID | str, field: str) -> bytes:
    """The associated data a value is sealed with: its subject, case and field."""
    return f"{subject}\x00{case_id}\x00{field}".encode()


def _parse(sealed: str) -> tuple[str, bytes]:
    subject, _, text = sealed[len(SEALED_PREFIX) :].rpartition(":")
    return subject, base64.urlsafe_b64decode(text)


def subject_keys_for(pool: ConnectionPool[Connection[DictRow]], data_dir: Path) -> SubjectKeys:
    """The subject keys of a deployment, wrapped by the key in ``data_dir``."""
    return SubjectKeys(pool, FileKeyWrapper(data_dir / "subject-keys.kek"))
