"""Key administration routes: list, create (the key is shown once) and revoke API keys.

Admins only. A revoked key stops working on every API process within a second
(infra/keys.py); the key and its hash are never shown again after creation.
"""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Depends, Path, status

from services.api.deps import Caller, Deps, authenticated, known_query_only, require
from services.api.schemas import ErrorBody, KeyCreate, KeyCreated, KeyPublic
from services.auth import MANAGE_KEYS, KeyHolder, parse_lifetime

_errors: dict[int | str, dict[str, Any]] = {
    code: {"model": ErrorBody} for code in (400, 401, 403, 404, 413, 422)
}
router = APIRouter(
    prefix="/keys",
    tags=["keys"],
    responses=_errors,
    dependencies=[Depends(authenticated), Depends(known_query_only)],
)
Admin = Annotated[Caller, Depends(require(MANAGE_KEYS, "manage API keys"))]
KeyId = Annotated[
    str, Path(pattern=r"^[0-9a-f]{12}$", description="the key's id, as GET /keys lists it")
]


def _public(holder: KeyHolder) -> KeyPublic:
    return KeyPublic(
        id=holder.key_id,
        role=holder.role.value,
        label=holder.label,
        created_at=holder.created_at,
        expires_at=holder.expires_at,
        revoked_at=holder.revoked_at,
    )


@router.get("")
def list_keys(deps: Deps, _: Admin) -> list[KeyPublic]:
    """Every key, oldest first, with its role, label and dates (never the key itself)."""
    return [_public(holder) for holder in deps.keys.list()]


@router.post("", status_code=status.HTTP_201_CREATED)
def create_key(body: KeyCreate, deps: Deps, _: Admin) -> KeyCreated:
    """Create a key for a role; the answer is the only time the key is shown."""
    lifetime = parse_lifetime(body.expires_in) if body.expires_in is not None else None
    key, holder = deps.keys.issue(body.role, body.label, lifetime)
    return KeyCreated(**_public(holder).model_dump(), key=key)


@router.delete("/{key_id}")
def revoke_key(key_id: KeyId, deps: Deps, _: Admin) -> KeyPublic:
    """Revoke a key: every API process refuses it within a second. Revoking a revoked key
    changes nothing."""
    return _public(deps.keys.revoke(key_id))
