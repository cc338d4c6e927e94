"""A connector's mapping: from one source record (a row, a CSV line, a webhook body, a
message) to what it means for a case, in the expression language case types use (CEL).

    mapping = RecordMapping.compile(doc, path="mapping")   # problems: ValueError, by path
    mapped = mapping.apply(record)                           # MappedRecord, or MappingError

The record is the fact ``record`` in every expression: ``record.claim_no``,
``double(record.amount)``, ``record.first + " " + record.last``.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import UTC, date, datetime
from decimal import Decimal, InvalidOperation
from typing import Any
from zoneinfo import ZoneInfo

from services.expressions import CelValue, MappingError

CONVERSIONS = ("text", "number", "integer", "money", "date", "boolean", "timestamp")
"""What ``as:`` may convert a source value to, before the case type checks it."""
_TRUE = {"true", "t", "yes", "y", "1", "ja", "oui", "x"}
_FALSE = {"false", "f", "no", "n", "0", "nee", "non", ""}


@dataclass(frozen=True)
class FieldMapping:
    """One case field: the expression that reads it from the record, and its conversion."""

    name: str
    value: CelValue
    convert: str | None = None
    format: str | None = None  # strptime format of a date or timestamp given as text
    currency: str | None = None  # the currency of a money amount given as a bare number

    def apply(self, facts: Mapping[str, Any], zone: ZoneInfo) -> Any:
        raw = self.value.value(facts)
        if raw is None or self.convert is None:
            return raw
        try:
            return _convert(raw, self, zone)
        except (ValueError, TypeError, InvalidOperation) as error:
            raise MappingError(
                f"mapping.fields.{self.name}: {raw!r} cannot be read as {self.convert}: {error}"
            ) from None


@dataclass(frozen=True)
class MappedRecord:
    """What a source record means for its case."""

    record_id: str
    external_id: str
    title: str | None
    fields: dict[str, Any]
    party_id: str | None
    state: str | None
    effective_time: datetime | None


@dataclass(frozen=True)
class RecordMapping:
    """The compiled ``mapping`` section of a connector document."""

    case_type: str
    record_id: CelValue
    external_id: CelValue
    title: CelValue | None
    fields: tuple[FieldMapping, ...]
    party_id: CelValue | None
    status: CelValue | None
    states: Mapping[str, str]  # source value -> case state
    effective_time: CelValue | None
    timezone: ZoneInfo

    def key_of(self, record: Mapping[str, Any]) -> str:
        """The external id alone (which case the record is about), for a record that may
        fail the rest of its mapping."""
        return _text(self.external_id.value({"record": record}), "mapping.external_id")

    def apply(self, record: Mapping[str, Any]) -> MappedRecord:
        """The record's meaning; raises :class:`MappingError` naming the part that failed."""
        facts = {"record": record}
        values = {f.name: f.apply(facts, self.timezone) for f in self.fields}
        return MappedRecord(
            record_id=_text(self.record_id.value(facts), "mapping.record_id"),
            external_id=self.key_of(record),
            title=_optional_text(self.title, facts, "mapping.title"),
            fields={name: value for name, value in values.items() if value is not None},
            party_id=_optional_text(self.party_id, facts, "mapping.party_id"),
            state=self._state(facts),
            effective_time=self._effective(facts),
        )

    def _state(self, facts: Mapping[str, Any]) -> str | None:
        if self.status is None:
            return None
        value = self.status.value(facts)
        if value is None:
            return None
        state = self.states.get(str(value))
        if state is None:
            known = ", ".join(sorted(self.states)) or "none"
            raise MappingError(
                f"mapping.status: the source value {value!r} is not mapped to a state "
                f"(mapped values: {known}); add it to mapping.status.states"
            )
        return state

    def _effective(self, facts: Mapping[str, Any]) -> datetime | None:
        if self.effective_time is None:
            return None
        value = self.effective_time.value(facts)
        if value is None:
            return None
        try:
            return _timestamp(value, None, self.timezone)
        except (ValueError, TypeError) as error:
            raise MappingError(
                f"mapping.effective_time: {value!r} is not a time: {error}; give an ISO 8601 "
                "text, a timestamp or seconds since 1970"
            ) from None


def content_hash(record: Mapping[str, Any]) -> str:
    """A hash of a record's content: the same record read again hashes the same, a changed
    one differently (keys sorted, so column order does not count)."""
    text = json.dumps(record, sort_keys=True, default=str, separators=(",", ":"))
    return hashlib.sha256(text.encode()).hexdigest()[:32]


def _text(value: Any, where: str) -> str:
    if value is None or (isinstance(value, str) and not value.strip()):
        raise MappingError(f"{where}: is empty for this record; every record needs one")
    if isinstance(value, float) and value.is_integer():
        value = int(value)
    return str(value)


def _optional_text(value: CelValue | None, facts: Mapping[str, Any], where: str) -> str | None:
    if value is None:
        return None
    computed = value.value(facts)
    return None if computed is None else _text(computed, where)


def _convert(raw: Any, spec: FieldMapping, zone: ZoneInfo) -> Any:
    converters: dict[str, Callable[[Any], Any]] = {
        "text": str,
        "number": _number,
        "integer": _integer,
        "money": lambda value: _money(value, spec.currency),
        "boolean": _boolean,
        "date": lambda value: _date(value, spec.format),
        "timestamp": lambda value: _timestamp(value, spec.format, zone).isoformat(),
    }
    return converters[spec.convert or "text"](raw)


def _integer(raw: Any) -> int:
    number = _number(raw)
    if number != int(number):
        raise ValueError("it has decimals")
    return int(number)


def _number(raw: Any) -> int | float:
    if isinstance(raw, bool):
        raise ValueError("it is true or false")
    if isinstance(raw, int | float):
        return raw
    text = str(raw).strip().replace(" ", "").replace("_", "")
    if "," in text and "." in text:  # 1.234,56 or 1,234.56: the last separator is decimal
        text = (
            text.replace(".", "").replace(",", ".")
            if text.rfind(",") > text.rfind(".")
            else text.replace(",", "")
        )
    elif "," in text:
        text = text.replace(",", ".")
    number = Decimal(text)
    if not number.is_finite():
        raise ValueError("it is not a finite number")
    return int(number) if number == number.to_integral_value() else float(number)


def _money(raw: Any, currency: str | None) -> dict[str, Any]:
    if isinstance(raw, Mapping) and {"amount", "currency"} <= set(raw):
        return {"amount": _number(raw["amount"]), "currency": str(raw["currency"]).upper()}
    text = str(raw).strip()
    code = currency
    for part in (text[:3], text[-3:]):
        if part.isalpha() and part.isupper():
            code, text = part, text.replace(part, "").strip()
            break
    if code is None:
        raise ValueError("it has no currency; set currency: on the field mapping")
    return {"amount": round(float(_number(text)), 2), "currency": code}


def _boolean(raw: Any) -> bool:
    if isinstance(raw, bool):
        return raw
    text = str(raw).strip().lower()
    if text in _TRUE:
        return True
    if text in _FALSE:
        return False
    raise ValueError("use true/false, yes/no, y/n or 1/0")


def _date(raw: Any, form: str | None) -> str:
    if isinstance(raw, datetime):
        return raw.date().isoformat()
    text = str(raw).strip()
    if form:
        return datetime.strptime(text, form).date().isoformat()
    if "T" in text or " " in text:
        return datetime.fromisoformat(text).date().isoformat()
    return date.fromisoformat(text).isoformat()


def _timestamp(raw: Any, form: str | None, zone: ZoneInfo) -> datetime:
    if isinstance(raw, datetime):
        moment = raw
    elif isinstance(raw, int | float) and not isinstance(raw, bool):
        return datetime.fromtimestamp(raw, UTC)
    elif form:
        moment = datetime.strptime(str(raw).strip(), form)
    else:
        moment = datetime.fromisoformat(str(raw).strip())
    return moment if moment.tzinfo is not None else moment.replace(tzinfo=zone)
