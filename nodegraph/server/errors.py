"""JSON errors for HTTP responses, and reading a JSON body with a clear answer when it is not JSON."""

from __future__ import annotations

import json
from typing import Any

from fastapi import Request
from fastapi.responses import JSONResponse


def error_response(status: int, kind: str, message: str, *, headers: dict[str, str] | None = None,
                   **extra: Any) -> JSONResponse:
    return JSONResponse({"error": {"type": kind, "message": message}, **extra}, status_code=status, headers=headers)


async def read_json(request: Request) -> Any:
    """The body as JSON, or a 400 response saying where it stopped being JSON."""
    raw = await request.body()
    if not raw.strip():
        return error_response(400, "bad_json", "the request body is empty; send a JSON object")
    try:
        return json.loads(raw)
    except UnicodeDecodeError:
        return error_response(400, "bad_json", "the request body is not UTF-8 text")
    except json.JSONDecodeError as exc:
        return error_response(400, "bad_json", f"the request body is not valid JSON: {exc.msg} at line {exc.lineno} column {exc.colno}")
