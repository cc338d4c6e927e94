"""Connector documents: how caseledger reaches one legacy silo and maps its records to cases.

A connector is a YAML (or JSON) document, validated like a case type: every problem at once,
each named by its path. ``docs/connectors.md`` describes the format for integration teams.

    document = read_document(body, "application/yaml")
    connector = compile_connector(document, version=2)          # or InvalidDocument
    problems = connector_problems(document, case_types.current) # [] when it can be loaded
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from datetime import timedelta
from typing import Annotated, Any, Literal
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from pydantic import Field

from domain.calendar import parse_duration
from domain.definition import Definition
from domain.errors import InvalidCommand
from services.case_type_checks import NAME, Issue, Part, listed, parse_part
from services.case_type_reading import InvalidDocument, read_document
from services.errors import CaseTypeNotFound
from services.expression_types import RECORD_FACTS, check_value
from services.expressions import CelValue
from services.mapping import CONVERSIONS, FieldMapping, RecordMapping

__all__ = ["Connector", "InvalidConnector", "InvalidDocument", "compile_connector", "read_document"]

KINDS = ("sql", "file", "webhook", "kafka", "amqp")
POLLED = ("sql", "file")
"""The kinds a runner looks at every ``every``; the others are pushed to caseledger."""
Text = Annotated[str, Field(min_length=1, max_length=2000)]
_SHOWN = 10


class InvalidConnector(InvalidCommand):
    """A connector document that cannot be loaded; ``problems`` lists each as ``path: problem``."""

    code = "invalid_connector"

    def __init__(self, problems: list[str]) -> None:
        self.problems = list(problems)
        count = len(self.problems)
        more = f"; and {count - _SHOWN} more" if count > _SHOWN else ""
        super().__init__(
            f"the connector has {count} problem{'s' * (count != 1)}: "
            f"{'; '.join(self.problems[:_SHOWN])}{more}",
            hint="fix each problem at the path it names (such as mapping.fields.amount); "
            "the format is described in docs/connectors.md",
        )


class SqlSource(Part):
    """A table (or view) in a PostgreSQL or MariaDB database, polled incrementally."""

    dialect: Literal["postgresql", "mariadb"]
    url: Text
    password_secret: Text | None = None
    table: Text
    key: list[Text] = Field(default_factory=lambda: ["id"], min_length=1)
    columns: list[Text] | None = None
    cursor: Text | None = None
    batch_size: int = Field(default=1000, ge=1, le=50_000)
    gap_timeout: Text = "5m"


class FileSource(Part):
    """CSV or JSON Lines files dropped in a folder."""

    folder: Text
    pattern: Text = "*"
    format: Literal["csv", "jsonl"] | None = None
    archive: Text | None = None
    quarantine: Text | None = None
    delimiter: Annotated[str, Field(min_length=1, max_length=1)] = ","
    encoding: Text = "utf-8"
    settle: Text = "2s"


class WebhookSource(Part):
    """An HTTP endpoint (``POST /connectors/{name}/webhook``), signed as Standard Webhooks."""

    secret: Text
    tolerance: Text = "5m"


class KafkaSource(Part):
    """Another system's Kafka topic."""

    topic: Text
    group: Text | None = None
    bootstrap_servers: Text | None = None


class AmqpSource(Part):
    """A RabbitMQ (AMQP 0-9-1) queue."""

    url: Text
    password_secret: Text | None = None
    queue: Text
    dead_letter_exchange: Text | None = None
    prefetch: int = Field(default=100, ge=1, le=10_000)


SOURCES: dict[str, type[Part]] = {
    "sql": SqlSource,
    "file": FileSource,
    "webhook": WebhookSource,
    "kafka": KafkaSource,
    "amqp": AmqpSource,
}


class FieldDoc(Part):
    value: Text = Field(alias="from")
    convert: Literal[CONVERSIONS] | None = Field(default=None, alias="as")  # type: ignore[valid-type]
    format: Text | None = None
    currency: Annotated[str, Field(pattern="^[A-Z]{3}$")] | None = None


class StatusDoc(Part):
    value: Text = Field(alias="from")
    states: dict[Text, Text] = Field(min_length=1)


class MappingDoc(Part):
    case_type: Text
    record_id: Text
    external_id: Text | None = None
    title: Text | None = None
    party_id: Text | None = None
    fields: dict[Text, Any] = Field(default_factory=dict)
    status: Any = None  # checked on its own (StatusDoc), so that its problems hide no other
    effective_time: Text | None = None
    timezone: Text = "UTC"


class ConnectorDoc(Part):
    name: Text
    kind: Literal["sql", "file", "webhook", "kafka", "amqp"]
    description: Text = ""
    system: Text | None = None
    every: Text = "5s"
    source: dict[str, Any]
    mapping: dict[str, Any]


@dataclass(frozen=True)
class Connector:
    """A loaded connector version: where its records come from and what they mean."""

    name: str
    version: int
    kind: str
    system: str
    description: str
    every: timedelta
    source: Any  # the kind's source model (SqlSource, FileSource, ...)
    mapping: RecordMapping
    document: Mapping[str, Any]

    @property
    def polled(self) -> bool:
        return self.kind in POLLED


def compile_connector(
    document: Any,
    version: int,
    case_type: Callable[[str], Definition] | None = None,
) -> Connector:
    """The connector ``document`` describes, as ``version``; raises
    :class:`InvalidConnector` listing every problem. With ``case_type`` (the current definition
    of a case type by name), the mapping is also checked against the case type it feeds."""
    problems: list[str] = []
    connector = _compile(document, version, problems)
    if connector is not None and case_type is not None:
        problems += mapping_problems(connector.mapping, case_type)
    if problems or connector is None:
        raise InvalidConnector(problems or ["document: could not be read"])
    return connector


def connector_problems(
    document: Any, case_type: Callable[[str], Definition] | None = None
) -> list[str]:
    """Every problem of ``document`` (``[]`` when it can be loaded)."""
    try:
        compile_connector(document, 0, case_type)
    except InvalidConnector as error:
        return list(error.problems)
    return []


def mapping_problems(mapping: RecordMapping, case_type: Callable[[str], Definition]) -> list[str]:
    """What the case type fed by ``mapping`` does not have: the case type itself, a field, a
    state."""
    try:
        definition = case_type(mapping.case_type)
    except CaseTypeNotFound:
        return [f"mapping.case_type: no published case type is named {mapping.case_type!r}"]
    problems = []
    if not definition.extra_fields:
        for field in mapping.fields:
            if field.name not in definition.fields:
                problems.append(
                    f"mapping.fields.{field.name}: the case type {definition.name} has no such "
                    f"field; its fields are {listed(sorted(definition.fields))}"
                )
    for field in mapping.fields:  # what each expression gives must fit its field (issue 13)
        spec = definition.fields.get(field.name)
        if spec is not None:
            problems += [
                f"mapping.fields.{field.name}: {problem}"
                for problem in check_value(field.value.source, RECORD_FACTS, spec, field.convert)
            ]
    for source, state in mapping.states.items():
        if state not in definition.states:
            problems.append(
                f"mapping.status.states.{source}: {state!r} is not a state of "
                f"{definition.name}; its states are {listed(list(definition.states))}"
            )
    return problems


def feeding_issues(connectors: Iterable[Connector], definition: Definition) -> list[Issue]:
    """What a new version of a case type (``definition``) would break in the connectors
    that feed it: each one's mapping checked against it, every problem at its place
    (``connectors.<name>.mapping.fields.x``) with the way out. A connector is checked
    against the published version when it is loaded; this is the other direction."""
    issues = []
    for connector in connectors:
        if connector.mapping.case_type != definition.name:
            continue
        hint = (
            f"connector {connector.name!r} (version {connector.version}) feeds this case "
            "type: first load a connector version that fits both versions (leave this out of "
            "its mapping), then publish this one, then load the mapping it needs"
        )
        for problem in mapping_problems(connector.mapping, lambda _name: definition):
            path, _, message = problem.partition(": ")
            issues.append(Issue(f"connectors.{connector.name}.{path}", message, hint))
    return issues


def _compile(document: Any, version: int, problems: list[str]) -> Connector | None:
    if not isinstance(document, Mapping):
        problems.append("document: must be a mapping of name, kind, source and mapping")
        return None
    doc = parse_part(ConnectorDoc, document, "", problems)
    if doc is None:
        return None
    if not NAME.fullmatch(doc.name):
        problems.append(
            f"name: {doc.name!r} is not a valid connector name; use lowercase letters, digits "
            "and _, starting with a letter (at most 63 characters)"
        )
    every = _duration(doc.every, "every", problems)
    source = parse_part(SOURCES[doc.kind], doc.source, "source", problems)
    if source is not None:
        _check_source(doc.kind, source, problems)
    mapping = _mapping(doc.mapping, problems)
    if problems or every is None or source is None or mapping is None:
        return None
    return Connector(
        name=doc.name,
        version=version,
        kind=doc.kind,
        system=doc.system or doc.name,
        description=doc.description,
        every=every,
        source=source,
        mapping=mapping,
        document=document,
    )


def _check_source(kind: str, source: Part, problems: list[str]) -> None:
    if isinstance(source, SqlSource):
        _duration(source.gap_timeout, "source.gap_timeout", problems)
        if source.dialect == "mariadb" and source.cursor is None:
            problems.append(
                "source.cursor: a MariaDB table is read by an increasing column; name it "
                "(an AUTO_INCREMENT id, or a timestamp the database sets on every change)"
            )
    elif isinstance(source, FileSource):
        _duration(source.settle, "source.settle", problems)
    elif isinstance(source, WebhookSource):
        _duration(source.tolerance, "source.tolerance", problems)


def _duration(text: str, path: str, problems: list[str]) -> timedelta | None:
    try:
        return parse_duration(text, timedelta(hours=24))
    except ValueError as error:
        problems.append(f"{path}: {error}")
        return None


def _mapping(value: Any, problems: list[str]) -> RecordMapping | None:
    doc = parse_part(MappingDoc, value, "mapping", problems)
    if doc is None:
        return None
    before = len(problems)

    def cel(source: str | None, path: str) -> CelValue | None:
        if source is None:
            return None
        try:
            return CelValue(source, where=path)
        except ValueError as error:
            problems.append(f"{path}: {error}")
            return None

    fields = []
    for name, given in doc.fields.items():
        path = f"mapping.fields.{name}"
        spec = {"from": given} if isinstance(given, str) else given
        if not isinstance(spec, Mapping):
            problems.append(f"{path}: must be an expression, or a mapping of from: and as:")
            continue
        field = parse_part(FieldDoc, spec, path, problems)
        value = cel(field.value, path) if field is not None else None
        if field is not None and value is not None:
            fields.append(FieldMapping(name, value, field.convert, field.format, field.currency))
    record_id = cel(doc.record_id, "mapping.record_id")
    external_id = cel(doc.external_id, "mapping.external_id") if doc.external_id else record_id
    title, party = cel(doc.title, "mapping.title"), cel(doc.party_id, "mapping.party_id")
    status_doc = (
        parse_part(StatusDoc, doc.status, "mapping.status", problems) if doc.status else None
    )
    status = cel(status_doc.value if status_doc else None, "mapping.status.from")
    effective = cel(doc.effective_time, "mapping.effective_time")
    try:
        zone = ZoneInfo(doc.timezone)
    except (ZoneInfoNotFoundError, ValueError):
        problems.append(
            f"mapping.timezone: {doc.timezone!r} is not a time zone such as Europe/Brussels"
        )
        zone = ZoneInfo("UTC")
    if len(problems) > before or record_id is None or external_id is None:
        return None
    return RecordMapping(
        case_type=doc.case_type,
        record_id=record_id,
        external_id=external_id,
        title=title,
        fields=tuple(fields),
        party_id=party,
        status=status,
        states=dict(status_doc.states) if status_doc else {},
        effective_time=effective,
        timezone=zone,
    )
