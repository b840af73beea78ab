"""The server's gate, as plain ASGI middleware in front of every route (HTTP and websocket).

In order, each request must:
1. name this server in its ``Host`` header when it listens on loopback only, so a web page cannot reach
   it through a DNS name rebound to 127.0.0.1;
2. come from no browser page, the server's own origin, or an origin given with ``--cors-origin``: a page
   elsewhere cannot post jobs to a local server (ComfyUI had that hole) nor open its websocket;
3. carry the token when one is required (always on a listener other than loopback; with ``--auth`` on
   loopback too), as ``Authorization: Bearer TOKEN``, as HTTP Basic auth with the token as the password
   (what ComfyUI clients send to servers behind a proxy), or as ``?token=TOKEN`` (browsers' websockets and
   image links). A wrong token is refused even where none is required;
4. send a body no larger than the limit of its route (uploads have their own, larger one).
"""

from __future__ import annotations

import base64
import json
from collections.abc import Awaitable, Callable
from typing import Any
from urllib.parse import parse_qs, urlsplit

from nodegraph.server.settings import ServerSettings, is_loopback
from nodegraph.server.tokens import same_token

Scope = dict[str, Any]
Receive = Callable[[], Awaitable[dict[str, Any]]]
Send = Callable[[dict[str, Any]], Awaitable[None]]

UPLOAD_PATHS = ("/upload/image", "/v1/uploads", "/api/upload/image")
# No token needed: liveness, and the API's description and docs pages (public knowledge, and the docs page
# must load before its "Authorize" button can send the token). Origin and host checks still apply.
OPEN_PATHS = ("/v1/health", "/docs", "/docs/oauth2-redirect", "/redoc", "/openapi.json")
OPEN_PREFIXES = ("/docs-static/",)


class BodyTooLarge(Exception):
    pass


class Guard:
    def __init__(self, app: Any, settings: ServerSettings) -> None:
        self.app = app
        self.settings = settings

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] not in ("http", "websocket"):
            await self.app(scope, receive, send)
            return
        headers = {k.decode("latin-1").lower(): v.decode("latin-1") for k, v in scope.get("headers", [])}
        refusal = self._refusal(scope, headers)
        if refusal is not None:
            status, message = refusal
            await _refuse(scope, send, status, message)
            return
        if scope["type"] == "websocket":
            await self.app(scope, receive, send)
            return
        limit = self.settings.limits.upload_bytes + 2**20 if scope["path"] in UPLOAD_PATHS else self.settings.limits.body_bytes
        declared = headers.get("content-length")
        if declared is not None and declared.isdigit() and int(declared) > limit:
            await _refuse(scope, send, 413, f"the request body is larger than this server accepts ({limit} bytes)")
            return
        await self._with_body_limit(scope, receive, send, limit)

    def _refusal(self, scope: Scope, headers: dict[str, str]) -> tuple[int, str] | None:
        host_header = headers.get("host", "")
        if is_loopback(self.settings.host) and host_header:
            name = urlsplit("//" + host_header).hostname or ""
            if not is_loopback(name):
                return 403, f"this server answers to loopback names only, not {host_header!r}"
        origin = headers.get("origin")
        if origin and origin != "null" and not self._origin_allowed(origin, host_header):
            return 403, f"requests from web pages at {origin} are refused (start the server with --cors-origin {origin} to allow them)"
        if scope["path"] in OPEN_PATHS or scope["path"].startswith(OPEN_PREFIXES):
            return None
        if origin and scope.get("method") == "OPTIONS" and "access-control-request-method" in headers:
            return None  # a CORS preflight from an allowed origin carries no credentials; CORS answers it
        token = _token_from(headers, scope.get("query_string", b""))
        expected = self.settings.token
        if token is not None:
            if expected is None or not same_token(token, expected):
                return 401, "the token is not valid for this server"
            return None
        if self.settings.auth_required:
            return 401, ("this server requires its token: send 'Authorization: Bearer TOKEN' (or ?token=TOKEN); "
                         "the token was printed when the server first started and is kept in " + str(self.settings.token_path))
        return None

    def _origin_allowed(self, origin: str, host_header: str) -> bool:
        if origin in self.settings.cors_origins or "*" in self.settings.cors_origins:
            return True
        parts = urlsplit(origin)
        return bool(host_header) and parts.netloc == host_header

    async def _with_body_limit(self, scope: Scope, receive: Receive, send: Send, limit: int) -> None:
        received = 0
        started = False

        async def counting_receive() -> dict[str, Any]:
            nonlocal received
            message = await receive()
            if message["type"] == "http.request":
                received += len(message.get("body", b""))
                if received > limit:
                    raise BodyTooLarge()
            return message

        async def tracking_send(message: dict[str, Any]) -> None:
            nonlocal started
            if message["type"] == "http.response.start":
                started = True
            await send(message)

        try:
            await self.app(scope, counting_receive, tracking_send)
        except BodyTooLarge:
            if not started:
                await _refuse(scope, send, 413, f"the request body is larger than this server accepts ({limit} bytes)")


def _token_from(headers: dict[str, str], query_string: bytes) -> str | None:
    authorization = headers.get("authorization", "")
    scheme, _, value = authorization.partition(" ")
    if scheme.lower() == "bearer" and value.strip():
        return value.strip()
    if scheme.lower() == "basic" and value.strip():
        try:
            _user, _, password = base64.b64decode(value.strip()).decode("utf-8").partition(":")
        except (ValueError, UnicodeDecodeError):
            return ""
        return password
    tokens = parse_qs(query_string.decode("latin-1")).get("token")
    return tokens[0] if tokens else None


async def _refuse(scope: Scope, send: Send, status: int, message: str) -> None:
    if scope["type"] == "websocket":
        # Closing before accepting makes the server answer the handshake with HTTP 403.
        await send({"type": "websocket.close", "code": 1008, "reason": message[:120]})
        return
    body = json.dumps({"error": {"type": _ERROR_TYPES.get(status, "refused"), "message": message}}).encode()
    headers = [(b"content-type", b"application/json"), (b"content-length", str(len(body)).encode())]
    if status == 401:
        headers.append((b"www-authenticate", b'Bearer realm="nodegraph"'))
    await send({"type": "http.response.start", "status": status, "headers": headers})
    await send({"type": "http.response.body", "body": body})


_ERROR_TYPES = {401: "unauthorized", 403: "forbidden", 413: "body_too_large"}
