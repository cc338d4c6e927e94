"""``POST /bulk/cases``: a batch of records from a team that pushes (a JSON array, or JSON
Lines), each finding its case by external id or opening one, answered record by record.

A bad record does not fail its batch-mates: it is refused with its reason, and only the later
records of the same case in the batch are held back (not stored; send them again). Each record
may carry its own ``idempotency_key``; a record with a ``source.record_id`` is stored once per
content however often it is sent (the dedup key of the connectors).
"""

from __future__ import annotations

import json
from collections import Counter
from dataclasses import replace
from datetime import UTC, datetime
from typing import Annotated, Any, Literal
from uuid import uuid4

from fastapi import APIRouter, Depends, HTTPException, Request
from pydantic import BaseModel, Field, ValidationError

from domain.context import Lineage
from services.api.cases import Correlation
from services.api.deps import Caller, Deps, authenticated, known_query_only, require
from services.api.schemas import ErrorBody, Fields, SourceIn, Text, _Lineage
from services.auth import Role
from services.idempotency import MAX_KEY_LENGTH, Claim, request_hash
from services.ingestion import PushedRecord, RecordOutcome
from services.mapping import MappedRecord, content_hash

MAX_RECORDS = 1000
_JSON_LINES = ("application/x-ndjson", "application/jsonl", "application/json-lines")
router = APIRouter(
    prefix="/bulk",
    tags=["cases"],
    responses={code: {"model": ErrorBody} for code in (400, 401, 403, 413, 415, 422, 503)},
    dependencies=[Depends(authenticated), Depends(known_query_only)],
)
Integrator = Annotated[Caller, Depends(require(frozenset({Role.INTEGRATOR}), "push records"))]


class BulkRecord(_Lineage):
    """One record: what it means for its case."""

    case_type: Text = Field(min_length=1, max_length=100)
    external_id: Text | None = Field(
        default=None,
        max_length=200,
        description="the case's id in the source system (needs source.system): finds the "
        "case this record is about, or opens it",
    )
    title: Text | None = Field(default=None, max_length=500, description="when it opens a case")
    fields: Fields = Field(default_factory=dict)
    party_id: Text | None = Field(default=None, max_length=200)
    state: Text | None = Field(
        default=None,
        max_length=100,
        description="the state the case is in now: the transition there is taken",
    )
    idempotency_key: str | None = Field(
        default=None, min_length=1, max_length=MAX_KEY_LENGTH, pattern=r"^[\x21-\x7e]+$"
    )


class BulkOutcome(BaseModel):
    index: int = Field(description="the record's place in the batch, from 0")
    verdict: Literal["ingested", "duplicate", "refused", "held"]
    case_id: str | None = None
    version: int | None = None
    detail: str | None = Field(default=None, description="why it was refused or held")


class BulkAnswer(BaseModel):
    batch_id: str
    ingested: int
    duplicates: int
    refused: int
    held: int
    records: list[BulkOutcome]


_BODY = {
    "requestBody": {
        "required": True,
        "content": {
            "application/json": {
                "schema": {"type": "array", "items": {"$ref": "#/components/schemas/BulkRecord"}}
            },
        },
        "description": f"at most {MAX_RECORDS} records: a JSON array, or the same records as "
        "JSON Lines (one per line) with Content-Type application/x-ndjson",
    }
}


async def _records(request: Request) -> list[Any]:
    """The body's records, as JSON values (each checked on its own after)."""
    body = await request.body()
    kind = request.headers.get("content-type", "").split(";")[0].strip().lower()
    if not body.strip():
        raise HTTPException(422, "the body is empty: send a JSON array of records (or JSON Lines)")
    try:
        if kind in _JSON_LINES:
            records = [json.loads(line) for line in body.decode().splitlines() if line.strip()]
        elif kind == "application/json":
            records = json.loads(body)
        else:
            raise HTTPException(
                415,
                f"the body is {kind or 'untyped'}; send application/json (an array of records) "
                "or application/x-ndjson (JSON Lines, one record per line)",
            )
    except (UnicodeDecodeError, json.JSONDecodeError, RecursionError) as error:
        raise HTTPException(400, f"the body is not valid JSON: {error}") from None
    if not isinstance(records, list):
        raise HTTPException(
            400, "the body must be a JSON array of records (or JSON Lines, one per line)"
        )
    if len(records) > MAX_RECORDS:
        raise HTTPException(
            413, f"{len(records):,} records; a batch may hold at most {MAX_RECORDS:,}"
        )
    return records


# Not /cases/bulk: that path is also /cases/{case_id}, whose GET would answer for it.
@router.post("/cases", openapi_extra=_BODY)
def bulk(
    records: Annotated[list[Any], Depends(_records)],
    deps: Deps,
    caller: Integrator,
    correlation_id: Correlation = None,
) -> BulkAnswer:
    """Store a batch of records (integrator keys), each opening its case or updating the case
    its external id names, with its source and effective time as lineage. Answered record by
    record: ingested, duplicate (already case history), refused (why), or held (an earlier
    record of the same case was refused)."""
    if deps.connector_admin is None:
        raise HTTPException(503, "ingestion is not configured")
    batch = str(uuid4())
    pushed: list[PushedRecord] = []
    answers: list[BulkOutcome] = []
    slots: list[int] = []
    for index, item in enumerate(records):
        try:
            record = BulkRecord.model_validate(item)
            pushed.append(_pushed(record, item, caller, correlation_id, batch, index))
            slots.append(index)
        except (ValidationError, ValueError) as error:
            answers.append(BulkOutcome(index=index, verdict="refused", detail=_problem(error)))
    outcomes = deps.connector_admin.ingestor.push(pushed, batch) if pushed else []
    answers += [_public(slot, outcome) for slot, outcome in zip(slots, outcomes, strict=True)]
    answers.sort(key=lambda a: a.index)
    count = Counter(a.verdict for a in answers)
    return BulkAnswer(
        batch_id=batch,
        ingested=count["ingested"],
        duplicates=count["duplicate"],
        refused=count["refused"],
        held=count["held"],
        records=answers,
    )


def _pushed(
    record: BulkRecord,
    raw: Any,
    caller: Caller,
    correlation_id: str | None,
    batch: str,
    index: int,
) -> PushedRecord:
    if record.external_id is not None and record.source is None:
        raise ValueError("external_id needs source.system: the system whose id it is")
    source = record.source
    context = replace(
        caller.context(correlation_id),
        source_system=source.system if source else None,
        source_record_id=source.record_id if source else None,
        occurred_at=record.occurred_at,
        lineage=Lineage("api:bulk", 1, f"record {index}", batch, datetime.now(UTC)),
    )
    mapped = MappedRecord(
        record_id=(source.record_id if source and source.record_id else f"{batch}/{index}"),
        external_id=record.external_id or "",
        title=record.title,
        fields=dict(record.fields),
        party_id=record.party_id,
        state=record.state,
        effective_time=record.occurred_at,
    )
    return PushedRecord(
        record.case_type,
        record.external_id,
        source.system if source else None,
        mapped,
        context,
        _dedup(record, raw, caller, source),
    )


def _dedup(record: BulkRecord, raw: Any, caller: Caller, source: SourceIn | None) -> Claim | None:
    if record.idempotency_key is not None:
        digest = request_hash("POST", "/bulk/cases", json.dumps(raw, sort_keys=True).encode())
        return Claim(caller.actor_id, record.idempotency_key, digest)
    if source is not None and source.record_id is not None:
        digest = content_hash(raw)
        return Claim(
            f"ingest:api:{source.system}", f"{source.record_id}#{digest}", digest, kept=True
        )
    return None


def _public(index: int, outcome: RecordOutcome) -> BulkOutcome:
    verdict = "refused" if outcome.verdict == "quarantined" else outcome.verdict
    return BulkOutcome(
        index=index,
        verdict=verdict,
        case_id=outcome.case_id,
        version=outcome.version,
        detail=outcome.reason if verdict in ("refused", "held") else None,
    )


def _problem(error: Exception) -> str:
    if isinstance(error, ValidationError):
        return "; ".join(
            f"{'.'.join(str(p) for p in e['loc']) or 'record'}: {e['msg']}"
            for e in error.errors(include_url=False)
        )
    return str(error)
