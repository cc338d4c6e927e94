"""The published contracts, generated from the code: the event envelope's JSON Schema, one
JSON Schema per event type, the AsyncAPI document of the Kafka topics caseledger publishes,
and the Kafka headers the relay puts on every case event.

``caseledger contracts`` writes them to ``docs/`` (see :func:`contract_files`); a test fails
when the files there are stale.

One self-contained schema per event type (``events/CaseOpened.schema.json``, ...), rather
than one document with a ``oneOf`` over the types: a consumer of one type reads and
validates against one small file with no reference to resolve, a validator's errors name
that type (a ``oneOf`` answers with a failure per branch), code generators make one class
per file, and a new event type adds a file instead of changing a shared union. The envelope
schema stays the contract for consumers of every type.
"""

from __future__ import annotations

import json
from functools import cache
from typing import Any, get_type_hints

import yaml
from pydantic import TypeAdapter, create_model

from domain.case import Case
from domain.envelope import SCHEMA_VERSION, EventEnvelope
from domain.event_names import data_fields, event_type

SCHEMA_ID = "urn:caseledger:schema:case-event-envelope"
JSON_SCHEMA = "https://json-schema.org/draft/2020-12/schema"
ENVELOPE_FILE = "case-event-envelope.schema.json"
ASYNCAPI_FILE = "asyncapi.yaml"
EVENTS_FOLDER = "events"

#: The Kafka headers of every case event. Plain names rather than the CloudEvents binding
#: (``ce_type``, ``ce_specversion``, ...): the message is our envelope, not a CloudEvent's
#: data, and ``ce_specversion`` would carry CloudEvents' version, not the envelope's.
EVENT_TYPE_HEADER = "event-type"
SCHEMA_VERSION_HEADER = "schema-version"
CONTENT_TYPE_HEADER = "content-type"
CONTENT_TYPE = "application/json"
#: The header the notifier's Kafka channel puts on a notification, with its id.
NOTIFICATION_HEADER = "X-Caseledger-Notification"

Headers = list[tuple[str, bytes]]
"""Kafka headers as kafka-python sends them: (name, value) pairs."""

_KAFKA_BINDING = "0.5.0"


@cache
def event_headers(kind: str) -> Headers:
    """The headers of a case event of type ``kind``: one list per type, shared by all its
    messages (the relay computes nothing per message); do not change it."""
    return [
        (EVENT_TYPE_HEADER, kind.encode()),
        (SCHEMA_VERSION_HEADER, str(SCHEMA_VERSION).encode()),
        (CONTENT_TYPE_HEADER, CONTENT_TYPE.encode()),
    ]


def envelope_json_schema() -> dict[str, Any]:
    """The JSON Schema (2020-12) of a message on the case-events topic."""
    schema = TypeAdapter(EventEnvelope).json_schema(mode="serialization")
    return {
        "$schema": JSON_SCHEMA,
        "$id": SCHEMA_ID,
        **schema,
        "description": _text(EventEnvelope.__doc__),
    }


def envelope_json_schema_text() -> str:
    return _json_text(envelope_json_schema())


def event_data_schema(kind: type[Case.Event]) -> dict[str, Any]:
    """The JSON Schema of the ``data`` of an event class: the attributes it declares as data
    (``domain.event_names.data_fields``), typed by its annotations, described by its
    docstring. Every attribute is always present (``null`` where its type allows)."""
    hints = get_type_hints(kind)
    model = create_model(  # type: ignore[call-overload]
        f"{event_type(kind)}Data",
        __doc__=event_description(kind),
        **{name: (hints[name], ...) for name in data_fields(kind)},
    )
    schema: dict[str, Any] = model.model_json_schema(mode="serialization")
    return schema


def event_json_schema(kind: type[Case.Event]) -> dict[str, Any]:
    """The JSON Schema of a message of one event type: the envelope, with ``type`` fixed to
    the event's name and ``data`` specified."""
    name = event_type(kind)
    schema = envelope_json_schema()
    data = event_data_schema(kind)
    for definition, body in data.pop("$defs", {}).items():
        if definition in schema["$defs"]:
            raise ValueError(
                f"{name}: its data uses a type named {definition}, as the envelope does; "
                "rename one of them so that both can be defined in its schema"
            )
        schema["$defs"][definition] = body
    properties = schema["properties"]
    properties["type"] = {**properties["type"], "const": name}
    properties["data"] = {**data, "description": f"{name}'s own attributes. {data['description']}"}
    return {
        **schema,
        "$id": f"urn:caseledger:schema:event:{name}",
        "title": name,
        "description": f"{event_description(kind)} Published on the case-events topic in this "
        f"envelope. {schema['description']}",
    }


def event_schema_files() -> dict[str, str]:
    """``events/<EventType>.schema.json`` -> its text, for every event type of a case."""
    return {
        f"{EVENTS_FOLDER}/{event_type(kind)}.schema.json": _json_text(event_json_schema(kind))
        for kind in Case.event_classes()
    }


def contract_files(case_events_topic: str) -> dict[str, str]:
    """Every contract generated here, by its path under ``docs/``; ``case_events_topic`` is
    the default of ``CASELEDGER_KAFKA_TOPIC``, which the AsyncAPI document names."""
    return {
        ENVELOPE_FILE: envelope_json_schema_text(),
        **event_schema_files(),
        ASYNCAPI_FILE: asyncapi_text(case_events_topic),
    }


def event_description(kind: type[Case.Event]) -> str:
    """The docstring written on an event class. The eventsourcing library subclasses it (with
    the same name), and the dataclass machinery gives those subclasses their signature for a
    docstring, so it is the one of that name, up the class's ancestry, that is no signature."""
    for base in kind.__mro__:
        doc = base.__dict__.get("__doc__")
        if (
            base.__qualname__ == kind.__qualname__
            and doc
            and not doc.startswith(f"{base.__name__}(")
        ):
            return _text(doc)
    raise ValueError(
        f"event class {kind.__qualname__} has no docstring: write one saying what happened, "
        "since it documents the event type for consumers"
    )


def _text(doc: str | None) -> str:
    return " ".join((doc or "").split())


def _json_text(schema: dict[str, Any]) -> str:
    return json.dumps(schema, indent=2, sort_keys=True) + "\n"


# -- the AsyncAPI document ------------------------------------------------------------------


def asyncapi_text(case_events_topic: str) -> str:
    """The AsyncAPI document as YAML, in a stable order."""
    return yaml.safe_dump(
        asyncapi_document(case_events_topic), sort_keys=False, allow_unicode=True, width=96
    )


def asyncapi_document(case_events_topic: str) -> dict[str, Any]:
    """The AsyncAPI 3.0 document of what caseledger publishes on Kafka: every case event on
    ``case_events_topic``, and the notifications case types send to topics they name."""
    names = [event_type(kind) for kind in Case.event_classes()]
    case_events = {name: _ref(f"#/components/messages/{name}") for name in names}
    return {
        "asyncapi": "3.0.0",
        "id": "urn:caseledger:asyncapi",
        "info": {
            "title": "caseledger events",
            "version": str(SCHEMA_VERSION),
            "description": _text(_INFO).format(
                event_type=EVENT_TYPE_HEADER,
                schema_version=SCHEMA_VERSION_HEADER,
                content_type=CONTENT_TYPE_HEADER,
                media_type=CONTENT_TYPE,
            ),
        },
        "defaultContentType": CONTENT_TYPE,
        "channels": {
            "caseEvents": {
                "address": case_events_topic,
                "title": "Case events",
                "description": _text(_CASE_EVENTS_CHANNEL),
                "messages": case_events,
                "bindings": {
                    "kafka": {"topic": case_events_topic, "bindingVersion": _KAFKA_BINDING}
                },
            },
            "notifications": {
                "address": "{topic}",
                "title": "Kafka notifications",
                "description": _text(_NOTIFICATIONS_CHANNEL),
                "parameters": {"topic": {"description": _TOPIC_PARAMETER}},
                "messages": {"Notification": _ref("#/components/messages/Notification")},
            },
        },
        "operations": {
            "publishCaseEvents": {
                "action": "send",
                "channel": _ref("#/channels/caseEvents"),
                "summary": "The relay publishes every stored case event, in commit order.",
                "messages": [_ref(f"#/channels/caseEvents/messages/{name}") for name in names],
            },
            "publishNotifications": {
                "action": "send",
                "channel": _ref("#/channels/notifications"),
                "summary": "The notifier publishes each notification a case type's rule asked for.",
                "messages": [_ref("#/channels/notifications/messages/Notification")],
            },
        },
        "components": {
            "messages": {
                **{event_type(kind): _case_event_message(kind) for kind in Case.event_classes()},
                "Notification": _notification_message(),
            },
        },
    }


def _case_event_message(kind: type[Case.Event]) -> dict[str, Any]:
    name = event_type(kind)
    return {
        "name": name,
        "title": name,
        "summary": event_description(kind),
        "contentType": CONTENT_TYPE,
        "headers": _case_event_headers(name),
        "payload": _ref(f"{EVENTS_FOLDER}/{name}.schema.json"),
        "correlationId": {
            "description": "Shared by every event caused by one request or workflow.",
            "location": "$message.payload#/correlation_id",
        },
        "bindings": {
            "kafka": {
                "key": {"type": "string", "format": "uuid", "description": "The case id."},
                "bindingVersion": _KAFKA_BINDING,
            }
        },
    }


def _case_event_headers(name: str) -> dict[str, Any]:
    """The headers :func:`event_headers` gives a message of type ``name``, as the text a
    consumer decodes from their bytes (UTF-8)."""
    values = {header: value.decode() for header, value in event_headers(name)}
    described = {
        EVENT_TYPE_HEADER: "The envelope's `type`: route and filter on it without parsing "
        "the body.",
        SCHEMA_VERSION_HEADER: "The envelope's `schema_version`, as decimal text.",
        CONTENT_TYPE_HEADER: "How the body is encoded.",
    }
    return {
        "type": "object",
        "required": list(values),
        "properties": {
            header: {"type": "string", "const": value, "description": described[header]}
            for header, value in values.items()
        },
    }


def _notification_message() -> dict[str, Any]:
    """What the notifier publishes for a ``kafka`` notification: the data of the
    ``CaseNotificationRequested`` that asked for it, and the case type."""
    requested = event_data_schema(Case.NotificationRequested)
    envelope = envelope_json_schema()["properties"]
    return {
        "name": "Notification",
        "title": "Notification",
        "summary": "A notification a case type's rule asked for, as rendered when requested.",
        "contentType": CONTENT_TYPE,
        "headers": {
            "type": "object",
            "required": [NOTIFICATION_HEADER],
            "properties": {
                NOTIFICATION_HEADER: {
                    "type": "string",
                    "description": "The notification id: a repeat (at-least-once delivery) "
                    "has the same one.",
                }
            },
        },
        "payload": {
            "type": "object",
            "description": "The data of the CaseNotificationRequested event that asked for "
            "it, and the case type.",
            "required": [*requested["required"], "case_type"],
            "properties": {**requested["properties"], "case_type": envelope["case_type"]},
        },
        "bindings": {
            "kafka": {
                "key": {"type": "string", "description": "The notification id."},
                "bindingVersion": _KAFKA_BINDING,
            }
        },
    }


def _ref(target: str) -> dict[str, str]:
    return {"$ref": target}


_INFO = """\
What caseledger publishes on Kafka. Every case event is a JSON envelope (see
case-event-envelope.schema.json), keyed by case id, with one JSON Schema per event type under
events/. Each case event carries three Kafka headers, so a consumer can route and filter
without parsing the body: `{event_type}` (the envelope's `type`, e.g. CaseOpened),
`{schema_version}` (the envelope's `schema_version`, as decimal text) and `{content_type}`
(`{media_type}`). They are plain names, not the CloudEvents Kafka binding (`ce_type`,
`ce_specversion`): the body is caseledger's envelope, not a CloudEvent's data.
`schema_version` is bumped on any breaking change of the envelope; new attributes may appear
in a later release without a bump, so ignore the ones you do not know.
"""

_CASE_EVENTS_CHANNEL = """\
Every stored case event, published by the relay in the event store's commit order. The key
is the case id, so all events of a case reach one partition in version order; delivery is
at-least-once (deduplicate on `event_id`, or on case id and `case_version`). The topic's name
is CASELEDGER_KAFKA_TOPIC (this is its default).
"""

_NOTIFICATIONS_CHANNEL = """\
Notifications of case types with `channel: kafka`, published by the notifier to the topic the
notification names. Delivery is at-least-once: a repeat has the same key and notification id.
"""

_TOPIC_PARAMETER = (
    "The `topic` of the notification in its case type; topics with a prefix of "
    "CASELEDGER_RESERVED_TOPIC_PREFIXES, and the case-events topic, are refused."
)
