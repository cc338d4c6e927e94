"""Plugins: ``GET /plugins`` lists the plugins installed beside caseledger (Python packages
with ``caseledger.functions`` / ``caseledger.actions`` entry points, ``services.plugins``),
with the signature and documentation of each function and action, for case-type authors and
the studio. Plugins are installed by IT; nothing here installs or uploads one."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Depends
from pydantic import BaseModel, Field

from services.api.deps import (
    ApiDependencies,
    Caller,
    authenticated,
    known_query_only,
    require_configured,
)
from services.api.schemas import ErrorBody
from services.auth import Role
from services.plugins import Entry, Plugin, installed

_errors: dict[int | str, dict[str, Any]] = {code: {"model": ErrorBody} for code in (401, 403, 422)}
router = APIRouter(
    tags=["case types"],
    responses=_errors,
    dependencies=[Depends(authenticated), Depends(known_query_only)],
)


def _authors(deps: ApiDependencies) -> frozenset[Role]:
    return deps.case_type_roles.authors | {Role.ADMIN}


Author = Annotated[Caller, Depends(require_configured(_authors, "list plugins"))]


class ParameterPublic(BaseModel):
    name: str
    type: str = Field(description="string, int, double, bool, list, map, null or dyn; ? = or null")
    required: bool


class EntryPublic(BaseModel):
    name: str = Field(description="as written in a case type: plugin.name")
    signature: str = Field(examples=["geo_risk.score(postcode: string) -> double"])
    params: list[ParameterPublic] = Field(
        description="a function's arguments, or an action's `with` settings"
    )
    returns: str | None = Field(description="a function's result type; null for an action")
    doc: str

    @classmethod
    def of(cls, entry: Entry) -> EntryPublic:
        return cls(
            name=entry.qualified,
            signature=entry.signature,
            params=[
                ParameterPublic(name=p.name, type=p.type, required=p.required) for p in entry.params
            ],
            returns=entry.returns,
            doc=entry.doc,
        )


class PluginPublic(BaseModel):
    name: str = Field(description="as a case type declares it: plugins: [name]")
    package: str
    version: str
    summary: str
    functions: list[EntryPublic] = Field(description="usable in conditions")
    actions: list[EntryPublic] = Field(description="usable as rule actions")
    problems: list[str] = Field(description="entries that could not be loaded, and why")

    @classmethod
    def of(cls, plugin: Plugin) -> PluginPublic:
        return cls(
            name=plugin.name,
            package=plugin.package,
            version=plugin.version,
            summary=plugin.summary,
            functions=[EntryPublic.of(e) for e in plugin.functions.values()],
            actions=[EntryPublic.of(e) for e in plugin.actions.values()],
            problems=list(plugin.problems),
        )


@router.get("/plugins")
def list_plugins(_: Author) -> list[PluginPublic]:
    """The plugins installed beside caseledger, by name: their package and version, and the
    functions (for conditions) and actions (for rules) each provides, with their signatures
    and documentation. A case type uses a plugin by declaring it (``plugins: [name]``)."""
    return [PluginPublic.of(plugin) for plugin in installed().by_name.values()]
