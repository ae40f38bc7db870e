"""The API page, ``/docs``: Swagger UI over the OpenAPI document, with no CDN.

FastAPI's own ``/docs`` loads Swagger UI from a CDN, so it is blank on a machine that
reaches no other host; this one loads the copy that ``assets`` serves. FastAPI's page
starts Swagger UI with an inline script, which the pages' policy (``security_headers``)
refuses; rather than allow every inline script, the page's own policy allows exactly the
inline scripts it holds, by their SHA-256 hashes (CSP Level 2), computed from the page as
FastAPI writes it. ReDoc (FastAPI's ``/redoc``) is not served: it needs inline styles.
"""

from __future__ import annotations

import base64
import hashlib
import re

from fastapi import APIRouter, Request
from fastapi.openapi.docs import get_swagger_ui_html
from fastapi.responses import HTMLResponse

from ..pages.assets import SWAGGER_PATH
from .security_headers import content_security_policy

DOCS_PATH = "/docs"
INLINE_SCRIPT = re.compile(r"<script>(.*?)</script>", re.DOTALL)
"""A script element without attributes, hence without ``src``: an inline script (the page
is FastAPI's template, not arbitrary HTML)."""

router = APIRouter(include_in_schema=False)


def script_hashes(html: str) -> list[str]:
    """The CSP source expression of each inline script of ``html``."""
    return [
        "'sha256-" + base64.b64encode(hashlib.sha256(script.encode("utf-8")).digest()).decode("ascii") + "'"
        for script in INLINE_SCRIPT.findall(html)
    ]


@router.get(DOCS_PATH)
async def api_page(request: Request) -> HTMLResponse:
    app = request.app
    root = request.scope.get("root_path", "").rstrip("/")
    page = get_swagger_ui_html(
        openapi_url=root + app.openapi_url,
        title=f"{app.title}: API",
        swagger_js_url=f"{root}{SWAGGER_PATH}/swagger-ui-bundle.js",
        swagger_css_url=f"{root}{SWAGGER_PATH}/swagger-ui.css",
        swagger_favicon_url=f"{root}{SWAGGER_PATH}/favicon.png",
        swagger_ui_parameters=app.swagger_ui_parameters,
    )
    policy = content_security_policy(script_hashes(bytes(page.body).decode("utf-8")))
    page.headers["Content-Security-Policy"] = policy
    return page
