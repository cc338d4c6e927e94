"""The dashboard and the API docs: static files served by the API itself, so both work
offline (no CDN) under the strict Content-Security-Policy of services/api/headers.py."""

from __future__ import annotations

from importlib.resources import files
from pathlib import Path

from fastapi import FastAPI
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from fastapi.staticfiles import StaticFiles

STATIC = Path(__file__).parent / "static"
# Swagger UI 5's files as the pinned fastapi-offline package ships them (the app itself is not
# used): Swagger UI 4 cannot read OpenAPI 3.1, which FastAPI writes.
SWAGGER_FILES = Path(str(files("fastapi_offline") / "static"))
SWAGGER_ASSETS = "/docs-assets"
DOCS_PAGE = f"""<!doctype html>
<html lang="en">
<head>
  <meta charset="utf-8">
  <title>caseledger API</title>
  <link rel="stylesheet" href="{SWAGGER_ASSETS}/swagger-ui.css">
  <link rel="icon" type="image/png" href="{SWAGGER_ASSETS}/favicon.png">
</head>
<body>
<div id="swagger-ui"></div>
<script src="{SWAGGER_ASSETS}/swagger-ui-bundle.js"></script>
<script src="/docs/init.js"></script>
</body>
</html>
"""
# In a file of its own: the CSP refuses inline scripts.
DOCS_INIT = """window.ui = SwaggerUIBundle({
  url: "/openapi.json",
  dom_id: "#swagger-ui",
  deepLinking: true,
  presets: [SwaggerUIBundle.presets.apis, SwaggerUIBundle.SwaggerUIStandalonePreset],
  layout: "BaseLayout",
});
"""


def mount_dashboard(app: FastAPI) -> None:
    app.mount("/ui", StaticFiles(directory=STATIC, html=True), name="dashboard")

    @app.get("/", include_in_schema=False)
    def home() -> RedirectResponse:
        return RedirectResponse("/ui/")


def mount_docs(app: FastAPI) -> None:
    """Swagger UI at /docs, from files the app serves itself."""
    app.mount(SWAGGER_ASSETS, StaticFiles(directory=SWAGGER_FILES), name="docs-assets")

    @app.get("/docs", include_in_schema=False)
    def docs() -> HTMLResponse:
        return HTMLResponse(DOCS_PAGE)

    @app.get("/docs/init.js", include_in_schema=False)
    def docs_init() -> Response:
        return Response(DOCS_INIT, media_type="text/javascript")
