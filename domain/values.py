"""What a value must be to travel everywhere a case goes: the event store, the read models
(PostgreSQL text refuses NUL), UTF-8 (no lone surrogates) and JSON on Kafka (no NaN)."""

from __future__ import annotations

import math
from typing import Any

from domain.errors import InvalidCommand

MAX_FIELDS_DEPTH = 32

#: The most one stored event may take, serialised: a case opened with large field values,
#: a long note. Documents and attachments belong in a document store, referenced by a field.
MAX_EVENT_BYTES = 512 * 1024
#: The most one command may store, all its events together (its rules and child cases too).
MAX_SAVE_BYTES = 2 * 1024 * 1024
#: The most events one command may store (a bound on rule fan-out).
MAX_SAVE_EVENTS = 1_000
NO_NUL_MESSAGE = "must not contain NUL (\\u0000) characters"


def escaped(text: str) -> str:
    """``text`` with NUL and lone surrogates written as escapes (``\\x00``, ``\\ud800``):
    fit to store and to show, for a message that quotes what a client sent."""
    safe = text.encode("utf-8", "backslashreplace").decode("utf-8")
    return safe.replace("\x00", "\\x00")


def storable(value: Any) -> Any:
    """``value`` (JSON: dicts, lists, text ...) with every text, keys too, :func:`escaped`."""
    if isinstance(value, str):
        return escaped(value)
    if isinstance(value, dict):
        return {storable(k): storable(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [storable(v) for v in value]
    return value


def check_storable_text(value: str, where: str = "") -> None:
    """Refuse text holding NUL or a lone surrogate; ``where`` prefixes the message."""
    if "\x00" in value:
        raise InvalidCommand(f"{where}{NO_NUL_MESSAGE}", hint="remove the NUL characters")
    try:
        value.encode("utf-8")
    except UnicodeEncodeError:
        raise InvalidCommand(
            f"{where}must be valid Unicode text; it holds a lone surrogate",
            hint="send text encoded as UTF-8",
        ) from None


def check_field_values(fields: dict[str, Any]) -> None:
    """Refuse field values that could not be stored or published as they were given."""
    pending: list[tuple[Any, str, int]] = [(fields, "", 0)]
    while pending:
        value, path, depth = pending.pop()
        if depth > MAX_FIELDS_DEPTH:
            raise InvalidCommand(
                f"fields nest deeper than {MAX_FIELDS_DEPTH} levels at {path}",
                hint="flatten the field values",
            )
        if isinstance(value, dict):
            for key, item in value.items():
                check_storable_text(str(key), f"a key of {path}: " if path else "a top-level key ")
                pending.append((item, f"{path}.{key}" if path else str(key), depth + 1))
        elif isinstance(value, list):
            pending.extend((item, f"{path}[{i}]", depth + 1) for i, item in enumerate(value))
        elif isinstance(value, str):
            check_storable_text(value, f"{path}: ")
        elif isinstance(value, float) and not math.isfinite(value):
            raise InvalidCommand(
                f"{path}: {value} is not a number JSON can carry; send a finite one",
                hint="send a finite number",
            )
