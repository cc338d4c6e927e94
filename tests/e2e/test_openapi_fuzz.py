"""Fuzz the HTTP API from its own OpenAPI document (schemathesis), against the real stack.

Every generated request, valid or not, must get an answer that the OpenAPI document
declares, in the declared shape and content type, and never a 5xx (``/health`` may say 503
when the broker is down: that answer is declared). Requests go to the app that
``infra.bootstrap.build_api`` builds on a fresh PostgreSQL database, once with the key of each
role. Three phases run: the schema's examples, the coverage phase (its negative half sends
every boundary the schema forbids: missing and wrong-typed values, too long, out of range,
unknown query parameters) and fuzzing with valid and invalid data (``mode: all``). The
default run keeps a few examples per operation; ``-m slow`` runs many more.

The document is read at import time, as ``caseledger contracts`` publishes it, from the
routes built without a database (``schemathesis.pytest.from_fixture`` would load it from a
fixture, but fails under pytest 9: it writes ``Node._nodeid``);
``test_the_fuzzed_document_is_the_real_apps`` checks that the real app serves the same one.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any
from uuid import UUID

import pytest
import schemathesis
from fastapi import FastAPI
from fastapi.testclient import TestClient
from hypothesis import HealthCheck, settings
from schemathesis.core.parameters import ParameterLocation
from starlette.types import Receive, Scope, Send

from infra.bootstrap import Container, build_api
from services.api import live_metrics
from services.api.openapi import openapi_document
from services.auth import Role
from tests.conftest import auth
from tests.shared_stack import container, keys

__all__ = ["container", "keys"]  # fixtures: one stack for the module

CONFIG = {
    "base-url": "http://testserver",  # the host name requests carry; they go to CURRENT_APP
    "generation": {"mode": "all", "database": "none"},
    # Operations are fuzzed one by one; case life cycles are covered by the integration tests.
    "phases": {
        "examples": {"enabled": True},
        "coverage": {"enabled": True},
        "fuzzing": {"enabled": True},
        "stateful": {"enabled": False},
    },
    "checks": {
        # Valid-by-schema data the case rules refuse answers 422: an unknown case type or
        # status, text that is blank once trimmed, NUL deep inside `fields`, a bad cursor.
        "positive_data_acceptance": {
            "expected-statuses": ["2xx", "401", "403", "404", "409", "422"]
        },
    },
}
EXISTING_CASES = 3  # made before fuzzing, so commands reach real cases and the list has rows
ROLES = [pytest.param(role, id=role.value) for role in Role]
_HEALTH_CHECKS = [
    HealthCheck.function_scoped_fixture,
    HealthCheck.too_slow,
    HealthCheck.filter_too_much,
]


class CurrentApp:
    """The ASGI app schemathesis sends to: the real app of the running test, set by ``app``."""

    target: FastAPI | None = None

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        assert self.target is not None, "use the `app` fixture"
        await self.target(scope, receive, send)


CURRENT_APP = CurrentApp()
# The document as `caseledger contracts` publishes it: built from the routes, no database.
schema = schemathesis.openapi.from_dict(
    openapi_document(), config=schemathesis.Config.from_dict(CONFIG)
).exclude(path=live_metrics.STREAM_PATH)  # see below
schema.app = CURRENT_APP
# The live-metrics stream is not fuzzed: it answers for as long as its bounds let it (up to
# `max_events` events, looking for changes every `interval_s`), so a generated request at
# its bounds would hold the run for hours. tests/integration/test_live_metrics.py reads it.


@pytest.fixture(scope="module")
def app(container: Container) -> Iterator[FastAPI]:
    CURRENT_APP.target = build_api(container)
    yield CURRENT_APP.target
    CURRENT_APP.target = None


@pytest.fixture(scope="module")
def case_ids(app: FastAPI, container: Container, keys: dict[Role, str]) -> list[str]:
    """A few cases, the last one closed, in the store and in the case list (projected
    straight from the store, as the projector's sweep would)."""
    headers = auth(keys[Role.ADMIN])
    with TestClient(app) as client:
        ids = []
        for n in range(EXISTING_CASES):
            body = {"case_type": "generic", "title": f"Case {n}", "fields": {"n": n}}
            opened = client.post("/cases", json=body, headers=headers)
            assert opened.status_code == 201, opened.text
            ids.append(str(opened.json()["id"]))
        closed = client.post(f"/cases/{ids[-1]}/close", json={"reason": "done"}, headers=headers)
        assert closed.status_code == 200, closed.text
    container.projections.catch_up_from_store(container.reader.head(), 1_000)
    return ids


def test_the_fuzzed_document_is_the_real_apps(app: FastAPI) -> None:
    assert app.openapi() == openapi_document()


def call_and_validate(case: Any, key: str, case_ids: list[str]) -> None:
    """Send ``case`` with ``key`` and check its answer against the document."""
    # Half of the well-formed case ids are swapped for existing cases, so commands and reads
    # reach a real case instead of answering 404 every time.
    generated = (case.path_parameters or {}).get("case_id")
    try:
        known = UUID(str(generated))
    except ValueError:
        known = None
    if known is not None and known.int % 2 == 0:
        case.path_parameters["case_id"] = case_ids[known.int % len(case_ids)]
    headers = case.meta.components.get(ParameterLocation.HEADER) if case.meta else None
    if headers is not None and headers.mode.is_negative:
        # Invalid headers (Authorization among them) are sent as generated: replacing them
        # with a valid key would turn the negative case into a valid request, which
        # schemathesis would then report as "accepted".
        case.call_and_validate()
    else:
        case.call_and_validate(headers=auth(key))


@pytest.mark.parametrize("role", ROLES)
@schema.parametrize()
@settings(max_examples=4, deadline=None, database=None, suppress_health_check=_HEALTH_CHECKS)
def test_every_answer_matches_the_openapi_document(
    case: Any, role: Role, app: FastAPI, keys: dict[Role, str], case_ids: list[str]
) -> None:
    call_and_validate(case, keys[role], case_ids)


@pytest.mark.slow
@pytest.mark.parametrize("role", ROLES)
@schema.parametrize()
@settings(max_examples=150, deadline=None, database=None, suppress_health_check=_HEALTH_CHECKS)
def test_many_more_answers_match_the_openapi_document(
    case: Any, role: Role, app: FastAPI, keys: dict[Role, str], case_ids: list[str]
) -> None:
    call_and_validate(case, keys[role], case_ids)
