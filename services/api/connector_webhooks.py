"""``POST /connectors/{name}/webhook``: records pushed by an integration team, signed the
Standard Webhooks way (https://www.standardwebhooks.com/), ingested exactly once.

- The sender signs ``{webhook-id}.{webhook-timestamp}.{body}`` with HMAC-SHA256 and sends
  ``webhook-signature: v1,<base64>`` (several, space-separated, during a rotation). The key is
  the connector's secret (``source.secret`` names it in the secret store): one or more
  space-separated ``whsec_<base64>`` values, any of which verifies.
- A timestamp further than the connector's ``source.tolerance`` from now is refused (replay
  window).
- The ``webhook-id`` is the idempotency key of the delivery: the same id with the same body
  answers the first answer again and stores nothing; with another body it is refused (409).
  Each record is also deduplicated for good by its ``mapping.record_id`` and content, so a
  redelivery after the delivery's answer was forgotten (``IDEMPOTENCY_KEEP_S``) is a no-op too.
- The body is one JSON object (a record) or a JSON array of them (a batch); the answer gives
  each record's verdict. A record that fails its mapping is quarantined, not refused.

Signatures are checked with the standard library's ``hmac``: the ``standardwebhooks`` package
(1.1.0) fixes the tolerance at five minutes, reads the clock itself, takes one secret, and
raises ``ValueError``/``binascii.Error`` (a 500) on a malformed signature header. The tests
sign with that package, as an independent sender.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import json
from collections.abc import Sequence
from datetime import UTC, datetime, timedelta
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Header, Path, Request
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import JSONResponse
from pydantic import BaseModel, Field

from domain.calendar import parse_duration
from services.api.deps import Deps, WebhookIntake, known_query_only
from services.api.errors import error_response
from services.api.schemas import ErrorBody
from services.connectors import Connector, WebhookSource
from services.idempotency import MAX_KEY_LENGTH, Claim, IdempotencyStore, Outcome
from services.ingestion import RunReport, SourceRecord
from services.secret_store import SecretNotFound

MAX_RECORDS = 1_000  # records per delivery; larger batches go to the bulk endpoint or a file
_PREFIX = "whsec_"
_errors: dict[int | str, dict[str, Any]] = {
    code: {"model": ErrorBody} for code in (400, 401, 404, 409, 413, 422, 503)
}
router = APIRouter(
    prefix="/connectors",
    tags=["connectors"],
    responses=_errors,
    dependencies=[Depends(known_query_only)],
)
Name = Annotated[str, Path(max_length=63, pattern=r"^[a-z][a-z0-9_]{0,62}$")]


class Refused(Exception):
    """A delivery refused before anything is stored: its status and ``{detail, code, hint}``."""

    def __init__(self, status: int, code: str, detail: str, hint: str) -> None:
        super().__init__(detail)
        self.status, self.code, self.detail, self.hint = status, code, detail, hint

    def answer(self) -> JSONResponse:
        return error_response(self.status, self.detail, self.code, self.hint)


class RecordAnswer(BaseModel):
    verdict: str = Field(description="ingested, duplicate, quarantined or held")
    record_id: str | None = None
    case_id: str | None = None
    version: int | None = None
    reason: str | None = None


class WebhookAnswer(BaseModel):
    webhook_id: str
    records: list[RecordAnswer] = Field(description="one per record, in the body's order")


@router.post(
    "/{name}/webhook",
    response_model=WebhookAnswer,
    openapi_extra={
        "security": [{}],  # signed, not keyed
        "requestBody": {
            "required": True,
            "content": {"application/json": {"schema": {"type": ["object", "array"]}}},
        },
    },
)
async def receive_webhook(
    name: Name,
    request: Request,
    deps: Deps,
    webhook_id: Annotated[
        str | None,
        Header(
            alias="webhook-id",
            min_length=1,
            max_length=MAX_KEY_LENGTH,
            description="unique per delivery: its idempotency key",
        ),
    ] = None,
    webhook_timestamp: Annotated[
        str | None,
        Header(
            alias="webhook-timestamp",
            pattern=r"^[0-9]{1,12}$",
            description="when it was signed, in whole seconds since 1970",
        ),
    ] = None,
    webhook_signature: Annotated[
        str | None,
        Header(
            alias="webhook-signature",
            min_length=1,
            max_length=4096,
            description="v1,<base64 HMAC-SHA256 of '{id}.{timestamp}.{body}'>, space-separated",
        ),
    ] = None,
) -> JSONResponse:
    """Ingest the signed record (a JSON object) or records (a JSON array) pushed to the
    webhook connector ``name``. No API key: the signature authenticates the sender."""
    body = await request.body()
    headers = (webhook_id, webhook_timestamp, webhook_signature)
    try:
        return await run_in_threadpool(
            _receive, deps.webhooks, deps.idempotency, name, headers, body
        )
    except Refused as refused:
        return refused.answer()


def _receive(
    intake: WebhookIntake | None,
    idempotency: IdempotencyStore,
    name: str,
    headers: tuple[str | None, str | None, str | None],
    body: bytes,
) -> JSONResponse:
    webhook_id, timestamp, signatures = _required(*headers)
    if intake is None:
        raise Refused(404, "webhooks_off", "this API serves no webhooks", "ask an admin")
    connector = _webhook_connector(intake, name)
    source: WebhookSource = connector.source
    _check_time(timestamp, parse_duration(source.tolerance, timedelta(hours=24)))
    keys = _keys(intake, source.secret, name)
    _check_signature(keys, webhook_id, timestamp, signatures, body)
    claim = Claim(f"webhook:{name}", webhook_id, hashlib.sha256(body).hexdigest())
    earlier = idempotency.outcome(claim.scope, claim.key)
    if earlier is not None:
        return _again(earlier, claim)
    records = _records(body, webhook_id)
    report = RunReport(connector.name, connector.version)
    outcomes = intake.ingestor.ingest(connector, records, f"webhook:{name}:{webhook_id}", report)
    intake.count(report)
    answer = WebhookAnswer(
        webhook_id=webhook_id,
        records=[RecordAnswer(**vars(outcome)) for outcome in outcomes],
    ).model_dump()
    idempotency.record_refusal(claim, 200, answer)  # records the answer, whatever its status
    return JSONResponse(answer)


def _required(
    webhook_id: str | None, timestamp: str | None, signatures: str | None
) -> tuple[str, str, str]:
    missing = [
        header
        for header, value in (
            ("webhook-id", webhook_id),
            ("webhook-timestamp", timestamp),
            ("webhook-signature", signatures),
        )
        if not value
    ]
    if missing or webhook_id is None or timestamp is None or signatures is None:
        raise Refused(  # an unsigned delivery is not authenticated
            401,
            "webhook_headers_missing",
            f"the request lacks the header{'s' * (len(missing) > 1)} {', '.join(missing)}",
            "sign each delivery as Standard Webhooks do: webhook-id (unique per delivery), "
            "webhook-timestamp (seconds since 1970) and webhook-signature (v1,<base64 HMAC>)",
        )
    if len(webhook_id) > MAX_KEY_LENGTH:
        raise Refused(
            400,
            "webhook_id_too_long",
            f"the webhook-id has {len(webhook_id)} characters; at most {MAX_KEY_LENGTH}",
            "use a shorter unique id per delivery, such as msg_<uuid>",
        )
    return webhook_id, timestamp, signatures


def _webhook_connector(intake: WebhookIntake, name: str) -> Connector:
    connector = intake.connector(name)  # ConnectorNotFound: 404
    if connector.kind != "webhook":
        raise Refused(
            409,
            "not_a_webhook_connector",
            f"connector {name!r} is of kind {connector.kind}, not webhook",
            "post to a connector of kind webhook; list them with caseledger connectors list",
        )
    return connector


def _check_time(timestamp: str, tolerance: timedelta) -> None:
    if not timestamp.isdigit() or len(timestamp) > 12:
        raise Refused(
            400,
            "webhook_timestamp_invalid",
            f"webhook-timestamp {timestamp[:40]!r} is not whole seconds since 1970",
            "send the signing time as an integer, such as 1767225600",
        )
    skew = abs(datetime.now(UTC) - datetime.fromtimestamp(int(timestamp), UTC))
    if skew > tolerance:
        raise Refused(
            401,
            "webhook_timestamp_stale",
            f"webhook-timestamp is {int(skew.total_seconds())} s from now; this connector "
            f"accepts at most {int(tolerance.total_seconds())} s",
            "sign each delivery (and each retry) with the current time, and check the "
            "sender's clock",
        )


def _keys(intake: WebhookIntake, secret: str, name: str) -> list[bytes]:
    """The signing keys: each space-separated ``whsec_<base64>`` of the connector's secret."""
    try:
        value = intake.secret(secret)
    except SecretNotFound:
        value = ""
    keys = []
    for part in value.split():
        if part.startswith(_PREFIX):
            try:
                keys.append(base64.b64decode(part[len(_PREFIX) :], validate=True))
            except binascii.Error:
                continue
    if not any(keys):
        raise Refused(
            503,
            "webhook_secret_unset",
            f"connector {name!r} has no usable signing secret",
            f"an admin sets the secret {secret!r} to whsec_<base64 key> "
            "(caseledger secrets set); retry the delivery then",
        )
    return [key for key in keys if key]


def _check_signature(
    keys: Sequence[bytes], webhook_id: str, timestamp: str, signatures: str, body: bytes
) -> None:
    signed = f"{webhook_id}.{timestamp}.".encode() + body
    expected = [hmac.new(key, signed, hashlib.sha256).digest() for key in keys]
    for given in _v1_signatures(signatures):
        if any(hmac.compare_digest(given, digest) for digest in expected):
            return
    raise Refused(
        401,
        "webhook_signature_invalid",
        "no webhook-signature matches the body with this connector's secret",
        "sign '{webhook-id}.{webhook-timestamp}.{body}' (the exact bytes sent) with "
        "HMAC-SHA256 and the key of whsec_<base64>, and send v1,<base64 signature>",
    )


def _v1_signatures(header: str) -> list[bytes]:
    found = []
    for entry in header.split():
        version, _, signature = entry.partition(",")
        if version == "v1":
            try:
                found.append(base64.b64decode(signature, validate=True))
            except binascii.Error:
                continue
    return found


def _again(earlier: Outcome, claim: Claim) -> JSONResponse:
    """The answer to a delivery already received: the first answer, or a refusal when the
    same id came with another body."""
    if earlier.request_hash != claim.request_hash or earlier.body is None:
        raise Refused(
            409,
            "webhook_id_reused",
            f"webhook-id {claim.key!r} was already delivered with another body",
            "give every new delivery its own webhook-id; resend a delivery only unchanged",
        )
    return JSONResponse(earlier.body, status_code=earlier.status or 200)


def _records(body: bytes, webhook_id: str) -> list[SourceRecord]:
    try:
        document = json.loads(body)
    except (UnicodeDecodeError, ValueError, RecursionError) as error:
        raise Refused(
            400,
            "malformed_json",
            f"the body is not JSON: {error}",
            "send one record as a JSON object, or a batch as a JSON array of objects (UTF-8)",
        ) from None
    items = document if isinstance(document, list) else [document]
    if not items or len(items) > MAX_RECORDS:
        raise Refused(
            413 if items else 422,
            "webhook_batch_size",
            f"the body holds {len(items)} records; a delivery takes 1 to {MAX_RECORDS}",
            "split the records over several deliveries",
        )
    wrong = [i for i, item in enumerate(items) if not isinstance(item, dict)]
    if wrong:
        raise Refused(
            422,
            "webhook_record_not_object",
            f"record {wrong[0]} (of {len(items)}) is not a JSON object",
            "send each record as a JSON object of its fields",
        )
    single = not isinstance(document, list)
    return [
        SourceRecord(item, f"webhook:{webhook_id}" if single else f"webhook:{webhook_id}#{i}")
        for i, item in enumerate(items)
    ]
