"""The OpenAPI document of the HTTP API, generated without a database or a broker."""

from __future__ import annotations

import json
from typing import Any

from services.api.app import create_app
from services.api.deps import ApiDependencies


def openapi_document() -> dict[str, Any]:
    """The OpenAPI document; routes are only described, so no dependency is needed."""
    nothing: Any = None
    app = create_app(
        ApiDependencies(
            ledger=nothing,
            case_types=nothing,
            cases=nothing,
            keys=nothing,
            views=nothing,
            secrets=nothing,
            contents=nothing,
            idempotency=nothing,
            health=dict,
        )
    )
    return app.openapi()


def openapi_text() -> str:
    return json.dumps(openapi_document(), indent=2, sort_keys=True) + "\n"
