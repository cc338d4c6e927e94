"""What an event is called and what of it is data, derived from its class: one definition for
the rules' facts, the published envelope, the case-type checks and the projections.

An event's type is its qualified class name without the dot (``Case.Opened`` is
``CaseOpened``). Its data are the attributes its class declares, without those of the
eventsourcing library (``originator_id``, ``originator_version``, ``timestamp``,
``originator_topic``) and without ``context``, which every case event carries as metadata
(actor, correlation, case type version) and which the envelope publishes apart.
"""

from __future__ import annotations

import dataclasses
from typing import Any

METADATA = "context"
_LIBRARY = "eventsourcing."
_DATA_FIELDS: dict[type[Any], tuple[str, ...]] = {}  # computed once per class


def event_type(kind: type[Any]) -> str:
    """The public name of an event class, e.g. ``CaseOpened`` for ``Case.Opened``."""
    return kind.__qualname__.replace(".", "")


def data_fields(kind: type[Any]) -> tuple[str, ...]:
    """The names of the attributes an event class declares as its data, in declared order."""
    known = _DATA_FIELDS.get(kind)
    if known is None:
        known = _DATA_FIELDS[kind] = _declared_data(kind)
    return known


def _declared_data(kind: type[Any]) -> tuple[str, ...]:
    library = {
        field.name
        for base in kind.__mro__
        if base.__module__.startswith(_LIBRARY) and dataclasses.is_dataclass(base)
        for field in dataclasses.fields(base)
    }
    return tuple(
        field.name
        for field in dataclasses.fields(kind)
        if field.name not in library and field.name != METADATA
    )


def event_data(event: Any) -> dict[str, Any]:
    """An event's data: the values of :func:`data_fields` of its class."""
    return {name: getattr(event, name) for name in data_fields(type(event))}
