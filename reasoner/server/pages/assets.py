"""The files the pages load from this server: their stylesheets and script, and Swagger UI.

The pages' policy (``security_headers``) allows no inline script or style, so what a page
used to inline is a file here: ``/static/style.css`` (the site's stylesheet, kept in
``templates/`` because the documentation site writes the same file), ``/static/term.css``
(the term pages) and ``/static/query.js`` (the query page). Swagger UI, for the API page
(``api_docs``), comes from the ``fastapi-offline`` package, which ships its files: served
under ``/static/swagger/`` with Starlette's ``StaticFiles``, so the API page works with no
access to any other host.
"""

from __future__ import annotations

from pathlib import Path

from fastapi import APIRouter, FastAPI
from fastapi.responses import FileResponse, PlainTextResponse, Response
from fastapi.staticfiles import StaticFiles

HERE = Path(__file__).resolve().parent
PAGE_ASSETS: dict[str, tuple[Path, str]] = {
    "style.css": (HERE / "templates" / "style.css", "text/css"),
    "term.css": (HERE / "static" / "term.css", "text/css"),
    "query.js": (HERE / "static" / "query.js", "text/javascript"),
}
"""Each page asset by the name it is served under: its file and media type."""
SWAGGER_PATH = "/static/swagger"
SWAGGER_FILES = ("fastapi_offline", "static")
"""The package that ships Swagger UI, and its folder holding the files."""

router = APIRouter(include_in_schema=False)


@router.get("/static/{name}")
async def page_asset(name: str) -> Response:
    found = PAGE_ASSETS.get(name)
    if found is None:
        return PlainTextResponse(f"there is no file called {name!r} here", 404)
    path, media_type = found
    return FileResponse(path, media_type=media_type)


def add_assets(app: FastAPI) -> None:
    """Serve the page assets and Swagger UI on ``app``."""
    app.include_router(router)
    app.mount(SWAGGER_PATH, StaticFiles(packages=[SWAGGER_FILES]), name="swagger-ui")
