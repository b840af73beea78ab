"""The web application: FastAPI routes over a :class:`~nodegraph.server.service.Service`.

FastAPI (on Starlette) was chosen over aiohttp because it describes the API as OpenAPI at ``/docs`` with no
extra work, validates request models, and runs on uvicorn, the most used ASGI server; Starlette's
websockets and multipart uploads cover the rest.
"""

from __future__ import annotations

import contextlib
import logging
from collections.abc import AsyncIterator
from typing import Any

from nodegraph.server.service import Service

log = logging.getLogger("nodegraph.server")

DESCRIPTION = """Run nodegraph workflows over HTTP.

* **Native API** (`/v1`): queue a workflow (nodegraph's format, or ComfyUI's API format), follow its events
  (`/v1/events` websocket, or `/v1/jobs/{id}/events`), fetch its outputs, cancel it; list node types; upload images.
* **ComfyUI-compatible API**: `/prompt`, `/queue`, `/interrupt`, `/history`, `/view`, `/upload/image`,
  `/object_info`, `/system_stats` and the `/ws?clientId=` websocket, for clients written for ComfyUI.

Send the server's token as `Authorization: Bearer TOKEN` where it is required.
"""


DOCS_PATHS = ("/docs", "/docs/oauth2-redirect", "/redoc", "/openapi.json")
DOCS_STATIC = "/docs-static"


def _make_fastapi(**kwargs: Any) -> Any:
    """FastAPI whose /docs and /redoc pages use Swagger UI and ReDoc files shipped in the fastapi-offline
    package, not a CDN: the API docs work on a machine without internet. The OpenAPI description declares
    the bearer token, so the docs page's "Authorize" button sends it."""
    from fastapi.openapi.utils import get_openapi
    from fastapi_offline import FastAPIOffline

    app = FastAPIOffline(static_url=DOCS_STATIC, **kwargs)

    def openapi() -> dict[str, Any]:
        if app.openapi_schema is None:
            schema = get_openapi(title=app.title, version=app.version, description=app.description, routes=app.routes)
            schema.setdefault("components", {})["securitySchemes"] = {
                "token": {"type": "http", "scheme": "bearer", "description": "the server's token (see the README)"}}
            schema["security"] = [{"token": []}]
            app.openapi_schema = schema
        return app.openapi_schema

    app.openapi = openapi
    return app


def create_app(service: Service) -> Any:
    import asyncio

    from fastapi import Request
    from fastapi.exceptions import RequestValidationError
    from fastapi.middleware.cors import CORSMiddleware

    from nodegraph import __version__
    from nodegraph.server import routes_comfy, routes_native, routes_ws
    from nodegraph.server.errors import error_response
    from nodegraph.server.security import Guard

    @contextlib.asynccontextmanager
    async def lifespan(app: Any) -> AsyncIterator[None]:
        service.hub.bind(asyncio.get_running_loop())
        yield

    app = _make_fastapi(title="nodegraph", version=__version__, description=DESCRIPTION, lifespan=lifespan)
    app.include_router(routes_native.make_router(service))
    app.include_router(routes_comfy.make_router(service))
    app.include_router(routes_comfy.make_router(service, in_schema=False), prefix="/api")
    app.include_router(routes_ws.make_router(service))

    @app.exception_handler(RequestValidationError)
    async def invalid_request(request: Request, exc: RequestValidationError) -> Any:
        problems = [{"field": ".".join(str(p) for p in e.get("loc", ())), "message": e.get("msg", "")} for e in exc.errors()]
        detail = "; ".join(f"{p['field']}: {p['message']}" for p in problems)
        return error_response(400, "bad_request", f"the request is not what this endpoint takes: {detail}", problems=problems)

    @app.exception_handler(Exception)
    async def unexpected(request: Request, exc: Exception) -> Any:
        log.exception("unexpected error in %s %s", request.method, request.url.path)
        return error_response(500, "server_error", f"the server failed on this request ({type(exc).__name__}: {exc}); "
                                                   "it keeps serving other requests")

    settings = service.settings
    if settings.cors_origins:
        app.add_middleware(CORSMiddleware, allow_origins=settings.cors_origins, allow_methods=["*"],
                           allow_headers=["*"], allow_credentials=False)
    app.add_middleware(Guard, settings=settings)
    return app
