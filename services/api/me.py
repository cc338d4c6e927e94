"""Who is calling: ``GET /me`` answers the role and the identity of the caller's key, so a
screen can say who is signed in and in which role."""

from __future__ import annotations

from fastapi import APIRouter, Depends

from services.api.deps import CurrentCaller, Deps, authenticated, known_query_only
from services.api.language import Languages
from services.api.schemas import ErrorBody, MePublic
from services.case_view_phrases import first_known, role_label

router = APIRouter(
    tags=["me"],
    responses={code: {"model": ErrorBody} for code in (401, 422)},
    dependencies=[Depends(authenticated), Depends(known_query_only)],
)


@router.get("/me")
def me(deps: Deps, caller: CurrentCaller, languages: Languages) -> MePublic:
    """Your role (with its name in French or English, by Accept-Language), the id your
    actions are recorded under, your key's label, and what your role may do with case types
    (author, review, publish: configuration)."""
    return MePublic(
        role=caller.role,
        role_label=role_label(caller.role.value, first_known(languages)),
        actor_id=caller.actor_id,
        key_label=caller.key_label,
        case_type_rights=deps.case_type_roles.rights(caller.role),
    )
