"""Websockets: ComfyUI's ``/ws?clientId=`` and the native ``/v1/events`` stream.

A client that disconnects (mid-run or not) only loses its own stream: the job goes on and its events stay
in the store. The native stream first replays the stored events of the job it follows, so a client that
connects after submitting misses nothing.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import json
import uuid
from typing import Any

from fastapi import APIRouter, WebSocket, WebSocketDisconnect

from nodegraph.server.comfy_shapes import Translator, status_message
from nodegraph.server.hub import Message, Subscriber
from nodegraph.server.service import Service

TRY_AGAIN_LATER = 1013


def make_router(service: Service) -> APIRouter:
    router = APIRouter()
    limits = service.settings.limits

    @router.websocket("/ws")
    async def comfy_ws(websocket: WebSocket, clientId: str | None = None) -> None:
        if service.hub.subscriber_count >= limits.websocket_clients:
            await websocket.close(TRY_AGAIN_LATER, "too many websocket clients")
            return
        await websocket.accept()
        sid = clientId or uuid.uuid4().hex
        translator = Translator(previews=service.settings.comfy_previews)

        def wants(message: Message) -> bool:
            return message.job_id is None or message.client_id is None or message.client_id == sid

        subscriber = service.hub.subscribe(wants, limits.client_backlog)
        try:
            await websocket.send_text(json.dumps(status_message(service.queue_remaining(), sid)))

            async def pump() -> None:
                while True:
                    message = await subscriber.get()
                    for out in translator.translate(message):
                        if isinstance(out, bytes):
                            await websocket.send_bytes(out)
                        else:
                            await websocket.send_text(json.dumps(out))

            await _serve(websocket, subscriber, pump)
        finally:
            service.hub.unsubscribe(subscriber)

    @router.websocket("/v1/events")
    async def native_ws(websocket: WebSocket, job: str | None = None, previews: str = "url") -> None:
        """Every event (or one job's, with ?job=ID) as JSON; previews as URLs, base64 data URLs or not at all."""
        if service.hub.subscriber_count >= limits.websocket_clients:
            await websocket.close(TRY_AGAIN_LATER, "too many websocket clients")
            return
        if previews not in ("url", "base64", "none"):
            await websocket.close(1003, "previews must be url, base64 or none")
            return
        await websocket.accept()
        subscriber = service.hub.subscribe(lambda m: job is None or m.job_id == job, limits.client_backlog)
        try:
            replayed = -1
            if job is not None:
                for event in service.store.events(job):
                    replayed = event["seq"]
                    await websocket.send_text(json.dumps(_native(event, None, previews)))

            async def pump() -> None:
                while True:
                    message = await subscriber.get()
                    if message.job_id == job and job is not None and message.data.get("seq", 0) <= replayed:
                        continue
                    await websocket.send_text(json.dumps(_native(message.data, message.preview, previews)))

            await _serve(websocket, subscriber, pump)
        finally:
            service.hub.unsubscribe(subscriber)

    return router


def _native(data: dict[str, Any], preview: tuple[str, bytes] | None, mode: str) -> dict[str, Any]:
    if "preview" not in data or data.get("preview") is None:
        return data
    if mode == "none":
        return {**data, "preview": None}
    if mode == "base64" and preview is not None:
        kind, blob = preview
        return {**data, "preview": f"data:image/{kind};base64," + base64.b64encode(blob).decode("ascii")}
    return data


async def _serve(websocket: WebSocket, subscriber: Subscriber, pump: Any) -> None:
    """Send what the pump produces until the client goes away (its messages are read and ignored)."""
    sender = asyncio.create_task(pump())
    try:
        while True:
            receiver = asyncio.create_task(websocket.receive())
            done, _ = await asyncio.wait({sender, receiver}, return_when=asyncio.FIRST_COMPLETED)
            if sender in done:
                receiver.cancel()
                with contextlib.suppress(Exception):
                    sender.result()
                return
            message = receiver.result()
            if message.get("type") == "websocket.disconnect":
                return
    except (WebSocketDisconnect, RuntimeError):
        return
    finally:
        sender.cancel()
        with contextlib.suppress(asyncio.CancelledError, Exception):
            await sender
