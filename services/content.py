"""Documents and attachments: stored once beside the events, and referenced from case fields
by the hash of their content (``sha256:<hex>``), so that events stay small and bounded
(``domain.values.MAX_EVENT_BYTES``) and the same file uploaded twice is kept once."""

from __future__ import annotations

import hashlib
import re
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Protocol

REF_PREFIX = "sha256:"
REF_PATTERN = r"^sha256:[0-9a-f]{64}$"
_REF = re.compile(REF_PATTERN)
_MEDIA_TYPE = re.compile(r"^[a-z0-9][a-z0-9!#$&^_.+-]{0,63}/[a-z0-9][a-z0-9!#$&^_.+-]{0,63}$")


@dataclass(frozen=True)
class StoredContent:
    """What is known of a stored document: its reference, media type, size and uploader."""

    ref: str
    media_type: str
    size: int
    uploaded_by: str
    uploaded_at: datetime


class ContentStore(Protocol):
    """Where documents are kept (``infra.content_store`` on PostgreSQL)."""

    def put(self, content: bytes, media_type: str, uploaded_by: str) -> tuple[StoredContent, bool]:
        """Store ``content`` (once); answers what is stored and whether it is new."""
        ...

    def get(self, ref: str) -> tuple[StoredContent, bytes] | None:
        """The document with reference ``ref``, or None."""
        ...


def content_ref(content: bytes) -> str:
    """The reference of ``content``: ``sha256:`` and the hex digest of its bytes."""
    return REF_PREFIX + hashlib.sha256(content).hexdigest()


def is_media_type(value: str) -> bool:
    return _MEDIA_TYPE.match(value) is not None


def is_ref(value: object) -> bool:
    return isinstance(value, str) and _REF.match(value) is not None


def refs_in(value: Any) -> Iterator[str]:
    """Every document reference held in ``value`` (a field value, nested lists and maps)."""
    if is_ref(value):
        yield value
    elif isinstance(value, dict):
        for item in value.values():
            yield from refs_in(item)
    elif isinstance(value, list):
        for item in value:
            yield from refs_in(item)
