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


def create_app(service: Service) -> Any:
    import asyncio

    from fastapi import FastAPI, Request
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

    app = FastAPI(title="nodegraph", version=__version__, description=DESCRIPTION, lifespan=lifespan)
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
