"""The dashboard and the API docs, served by the API itself so that both work offline (no CDN)
under the strict Content-Security-Policy of services/api/headers.py.

The dashboard's pages are Jinja templates (``services/api/pages/``) rendered once, at start:
they share one layout (header, sign-in, navigation) and declare their behaviour with
Alpine.js attributes; each page's script and the vendored libraries are static files under
``/ui/assets/`` (docs/dashboard.md says why).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from importlib.resources import files
from pathlib import Path

from fastapi import FastAPI
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from fastapi.staticfiles import StaticFiles
from jinja2 import Environment, FileSystemLoader, StrictUndefined, select_autoescape
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.routing import Mount, Route

STATIC = Path(__file__).parent / "static"
PAGES = Path(__file__).parent / "pages"
ASSETS = "/ui/assets"
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


@dataclass(frozen=True)
class Page:
    """A dashboard page: its template, and the Alpine component its script registers."""

    template: str
    component: str

    @property
    def script(self) -> str:
        return self.template.removesuffix(".html")


QUEUE = Page("queue.html", "queue")
CASE = Page("case.html", "casePage")
SEARCH = Page("search.html", "search")
MANAGER = Page("manager.html", "manager")
NEW_CASE = Page("new-case.html", "newCase")
CASE_TYPE = Page("case-type.html", "caseTypePage")
# The case-type studio (docs/dashboard.md, "The case-type studio"): the case types, and the
# editor of one version (form, YAML, live validation, diff, simulation, review).
STUDIO = Page("studio.html", "studioList")
STUDIO_EDITOR = Page("studio-editor.html", "studio")
ALL_PAGES = (QUEUE, CASE, SEARCH, MANAGER, NEW_CASE, CASE_TYPE, STUDIO, STUDIO_EDITOR)


def render_pages() -> dict[Page, str]:
    """Every page's HTML; the templates take no data from a request, so once is enough."""
    environment = Environment(
        loader=FileSystemLoader(PAGES),
        autoescape=select_autoescape(default=True),
        undefined=StrictUndefined,
    )
    return {
        page: environment.get_template(page.template).render(
            page=page.script, component=page.component
        )
        for page in ALL_PAGES
    }


def dashboard() -> Starlette:
    """The dashboard as an application of its own, mounted at /ui: its pages, and their
    files under /ui/assets/."""
    html = render_pages()

    def serve(page: Page) -> Callable[[Request], HTMLResponse]:
        return lambda _request: HTMLResponse(html[page])

    return Starlette(
        routes=[
            Route("/", serve(QUEUE)),
            Route("/cases/{case_id:uuid}", serve(CASE)),
            Route("/search", serve(SEARCH)),
            Route("/manager", serve(MANAGER)),
            Route("/new", serve(NEW_CASE)),
            Route("/case-types/{name:str}", serve(CASE_TYPE)),
            Route("/studio", serve(STUDIO)),
            Route("/studio/{name:str}/{version:int}", serve(STUDIO_EDITOR)),
            Mount("/assets", StaticFiles(directory=STATIC), name="assets"),
        ]
    )


def mount_dashboard(app: FastAPI) -> None:
    app.mount("/ui", dashboard(), name="dashboard")

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
