"""The live API reference at /docs: Swagger UI, shipped in the package (fastapi-offline's copy).

FastAPI's own page starts Swagger UI with an inline script, which the Content-Security-Policy
(execdb.headers) refuses; this page is the same but for starting it from a static file.
Like /openapi.json, it is public even when reads need a token.
"""

from __future__ import annotations

from fastapi import APIRouter, Request, Response

from execdb.web.pages import root_path, templates

STATIC_URL = "/static/apidocs"  # where fastapi-offline mounts Swagger UI's files

router = APIRouter(include_in_schema=False)


@router.get("/docs")
async def api_docs(request: Request) -> Response:
    return templates.TemplateResponse(request, "apidocs.html", {"root": root_path(request)})
