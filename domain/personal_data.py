"""Personal data as the domain knows it: whose it is, and how a stored value that is sealed
under its data subject's key looks.

The data subject of a case is its ``party_id``; a case opened without one is its own subject
(``case:<id>``). Personal fields (``personal: true`` in the case type) are stored sealed,
``{"sealed": "v1:<subject>:<ciphertext>"}``, by ``services.personal_data``; in memory a case
holds their plain values, or ``None`` once its subject was erased.
"""

from __future__ import annotations

from typing import Any
from uuid import UUID

from domain.errors import InvalidCommand

SEALED = "sealed"
"""The one key of a sealed value."""
SEALED_PREFIX = "v1:"


def data_subject(party_id: str | None, case_id: UUID | str) -> str:
    """Whose personal data a case holds: its party, else the case itself."""
    return party_id if party_id else f"case:{case_id}"


def is_sealed(value: Any) -> bool:
    """Whether ``value`` is a sealed personal value as stored."""
    return (
        isinstance(value, dict)
        and len(value) == 1
        and isinstance(value.get(SEALED), str)
        and value[SEALED].startswith(SEALED_PREFIX)
    )


def check_not_sealed(fields: dict[str, Any]) -> None:
    """Refuse a field value given in the shape of a sealed one: only caseledger seals."""
    shaped = sorted(name for name, value in fields.items() if is_sealed(value))
    if shaped:
        raise InvalidCommand(
            f"fields {', '.join(shaped)}: a value may not have the shape of a sealed "
            'personal value ({"sealed": "v1:..."})',
            hint="send the plain value; caseledger seals personal fields itself",
        )
