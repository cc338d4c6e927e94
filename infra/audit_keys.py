"""The checkpoint signing key: an Ed25519 private key in a file outside the database.

Default place ``<CASELEDGER_DATA_DIR>/audit/checkpoint-signing.key`` (PEM, PKCS #8, mode 0600),
made on first use; ``CASELEDGER_AUDIT_SIGNING_KEY_FILE`` names another. Whoever can rewrite
the database cannot sign a checkpoint without it. Auditors get the public key with
``caseledger audit public-key``.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey

from domain.evidence import key_id_of
from infra.settings import Settings

KEY_FILE = Path("audit") / "checkpoint-signing.key"


def key_file(settings: Settings) -> Path:
    """Where the signing key lives for ``settings``."""
    return settings.audit_signing_key_file or settings.data_dir / KEY_FILE


@dataclass(frozen=True)
class SigningKey:
    """The private key, with its public half and id."""

    private: Ed25519PrivateKey

    @property
    def public_raw(self) -> bytes:
        return self.private.public_key().public_bytes(
            serialization.Encoding.Raw, serialization.PublicFormat.Raw
        )

    @property
    def public_hex(self) -> str:
        return self.public_raw.hex()

    @property
    def public_pem(self) -> str:
        return (
            self.private.public_key()
            .public_bytes(
                serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
            )
            .decode()
        )

    @property
    def key_id(self) -> str:
        return key_id_of(self.public_raw)

    def sign(self, message: bytes) -> bytes:
        return self.private.sign(message)


def verify_signature(public_key: bytes, signature: bytes, message: bytes) -> bool:
    """Whether ``signature`` is ``public_key``'s Ed25519 signature of ``message``."""
    try:
        Ed25519PublicKey.from_public_bytes(public_key).verify(signature, message)
    except (InvalidSignature, ValueError):
        return False
    return True


def load_or_create(path: Path) -> SigningKey:
    """The key in ``path``; a new one written there (mode 0600) when the file is missing."""
    if not path.exists():
        path.parent.mkdir(parents=True, exist_ok=True)
        made = Ed25519PrivateKey.generate()
        pem = made.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
        spare = path.with_name(f".{path.name}.{os.getpid()}")
        descriptor = os.open(spare, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(descriptor, "wb") as file:
            file.write(pem)
        try:
            os.link(spare, path)  # whole or not at all; never over another process's key
        except FileExistsError:
            return load_or_create(path)
        finally:
            spare.unlink()
        return SigningKey(made)
    loaded = serialization.load_pem_private_key(path.read_bytes(), password=None)
    if not isinstance(loaded, Ed25519PrivateKey):
        raise RuntimeError(
            f"{path} does not hold an Ed25519 private key: point "
            "CASELEDGER_AUDIT_SIGNING_KEY_FILE at the checkpoint signing key, or move the file "
            "away to have a new key made"
        )
    return SigningKey(loaded)


def signing_key(settings: Settings) -> SigningKey:
    return load_or_create(key_file(settings))
