"""Secret administration routes, for admins only: set or replace a secret, delete one, list
their names. No route returns a value (docs/case-types.md, "Secrets")."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Path, Response, status
from pydantic import BaseModel, Field

from services.api.deps import Caller, Deps, authenticated, known_query_only, require
from services.api.schemas import ErrorBody, _Request
from services.auth import Role

_errors: dict[int | str, dict[str, Any]] = {
    code: {"model": ErrorBody} for code in (400, 401, 403, 404, 413, 422)
}
router = APIRouter(
    prefix="/secrets",
    tags=["secrets"],
    responses=_errors,
    dependencies=[Depends(authenticated), Depends(known_query_only)],
)
Admin = Annotated[Caller, Depends(require(frozenset({Role.ADMIN}), "administer secrets"))]
Name = Annotated[str, Path(max_length=63, pattern=r"^[a-z][a-z0-9_]{0,62}$")]


class SecretValue(_Request):
    value: str = Field(
        description="sent as the webhook's Authorization header, e.g. 'Bearer abc123'; "
        "printable ASCII on one line"
    )


class SecretPublic(BaseModel):
    name: str
    created_at: datetime
    updated_at: datetime = Field(description="when the value was last set")


@router.get("")
def list_secrets(deps: Deps, _: Admin) -> list[SecretPublic]:
    """Every secret's name and dates; values are never shown."""
    return [SecretPublic(**vars(entry)) for entry in deps.secrets.entries()]


@router.put("/{name}", status_code=status.HTTP_204_NO_CONTENT)
def set_secret(name: Name, body: SecretValue, deps: Deps, _: Admin) -> Response:
    """Create or replace a secret that case types name (`secret: NAME`)."""
    deps.secrets.set(name, body.value)
    return Response(status_code=status.HTTP_204_NO_CONTENT)


@router.delete("/{name}", status_code=status.HTTP_204_NO_CONTENT)
def delete_secret(name: Name, deps: Deps, _: Admin) -> Response:
    """Remove a secret; notifications naming it fail until it is set again."""
    deps.secrets.delete(name)
    return Response(status_code=status.HTTP_204_NO_CONTENT)
