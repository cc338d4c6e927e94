"""Document routes: upload a document or attachment once, reference it from a case field by
its hash, and download it through a case whose fields your role may see."""

from __future__ import annotations

from typing import Annotated
from uuid import UUID

from fastapi import APIRouter, Depends, Header, Path, Request, Response, status
from pydantic import BaseModel, Field

from domain.errors import InvalidCommand
from services.api.deps import Caller, Deps, authenticated, known_query_only, require
from services.api.schemas import ErrorBody
from services.auth import OPEN_CASE, UPDATE_CASE
from services.content import REF_PATTERN, is_media_type, refs_in
from services.errors import CaseNotFound

UPLOAD = OPEN_CASE | UPDATE_CASE
UPLOAD_PATH = "/documents"
router = APIRouter(
    tags=["documents"],
    responses={code: {"model": ErrorBody} for code in (400, 401, 403, 404, 413, 422)},
    dependencies=[Depends(authenticated), Depends(known_query_only)],
)


class DocumentStored(BaseModel):
    """A stored document: put ``ref`` in a case field of type ``document``."""

    ref: str = Field(description="sha256:<hex digest of the content>", pattern=REF_PATTERN)
    media_type: str
    size: int = Field(description="bytes")


@router.post(
    UPLOAD_PATH,
    status_code=status.HTTP_201_CREATED,
    responses={200: {"model": DocumentStored, "description": "the same content, stored before"}},
    openapi_extra={
        "requestBody": {
            "required": True,
            "content": {"*/*": {"schema": {"type": "string", "format": "binary"}}},
        }
    },
)
async def upload(
    request: Request,
    response: Response,
    caller: Annotated[Caller, Depends(require(UPLOAD, "upload documents"))],
    deps: Deps,
    content_type: Annotated[str | None, Header()] = None,
) -> DocumentStored:
    """Store a document (the raw request body, with its Content-Type); answers its reference.
    The same content uploaded again answers 200 with the same reference."""
    media_type = (content_type or "application/octet-stream").split(";")[0].strip().lower()
    if not is_media_type(media_type):
        raise InvalidCommand(
            f"{media_type!r} is not a media type",
            hint="send the document's type in Content-Type, e.g. application/pdf",
        )
    content = await request.body()
    if not content:
        raise InvalidCommand("the document is empty", hint="send the file's bytes as the body")
    stored, new = deps.contents.put(content, media_type, caller.actor_id)
    if not new:
        response.status_code = status.HTTP_200_OK
    return DocumentStored(ref=stored.ref, media_type=stored.media_type, size=stored.size)


@router.get(
    "/cases/{case_id}/documents/{ref}",
    response_class=Response,
    responses={200: {"content": {"*/*": {}}, "description": "the document's bytes"}},
)
def download(
    case_id: UUID,
    ref: Annotated[str, Path(pattern=REF_PATTERN)],
    caller: Annotated[Caller, Depends(authenticated)],
    deps: Deps,
) -> Response:
    """A document referenced by a field of the case that your role sees."""
    seen = deps.views.case(case_id, caller.role.value)
    if ref not in set(refs_in(seen.fields)):
        raise CaseNotFound(
            f"case {case_id} has no document {ref} among the fields your role sees",
            hint="list the case's fields with GET /cases/{id}",
        )
    found = deps.contents.get(ref)
    if found is None:
        raise CaseNotFound(
            f"the document {ref} is referenced by case {case_id} but was never uploaded",
            hint="upload it with POST /documents",
        )
    stored, content = found
    return Response(
        content,
        media_type=stored.media_type,
        headers={
            "Content-Disposition": "attachment",
            "Cache-Control": "private, max-age=3600, immutable",
        },
    )
