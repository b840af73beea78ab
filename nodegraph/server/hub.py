"""Fan events out from worker threads to websocket clients on the server's event loop.

Workers publish from their own threads; each connected client holds a bounded queue on the loop. A client
that reads too slowly loses progress messages (never the start, finish or failure of a node or a job), so
one stalled client cannot make the server's memory grow or hold up a job.
"""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

# Engine events that may be dropped for a slow client; everything else is always delivered.
DROPPABLE = {"node_progress", "node_log", "cache_evicted"}


@dataclass
class Message:
    data: dict[str, Any]  # the native event: {"event": ..., "job": ..., "seq": ..., ...}
    job_id: str | None = None
    client_id: str | None = None  # the ComfyUI client that submitted the job (None: everyone)
    preview: tuple[str, bytes] | None = None


class Subscriber:
    def __init__(self, wants: Callable[[Message], bool], backlog: int) -> None:
        self.wants = wants
        self.queue: asyncio.Queue[Message] = asyncio.Queue()
        self.backlog = backlog
        self.dropped = 0

    def offer(self, message: Message) -> None:
        if self.queue.qsize() >= self.backlog:
            if message.data.get("event") in DROPPABLE:
                self.dropped += 1
                return
            self._drop_one_droppable()
        self.queue.put_nowait(message)

    def _drop_one_droppable(self) -> None:
        kept: list[Message] = []
        dropped = False
        while not self.queue.empty():
            item = self.queue.get_nowait()
            if not dropped and item.data.get("event") in DROPPABLE:
                dropped = True
                self.dropped += 1
                continue
            kept.append(item)
        for item in kept:
            self.queue.put_nowait(item)

    async def get(self) -> Message:
        return await self.queue.get()


class Hub:
    def __init__(self) -> None:
        self._loop: asyncio.AbstractEventLoop | None = None
        self._subscribers: set[Subscriber] = set()
        self._lock = threading.Lock()

    def bind(self, loop: asyncio.AbstractEventLoop) -> None:
        self._loop = loop

    def publish(self, message: Message) -> None:
        """Thread-safe. Messages published before a loop is bound (or after it closed) reach nobody."""
        loop = self._loop
        if loop is None or loop.is_closed():
            return
        try:
            loop.call_soon_threadsafe(self._deliver, message)
        except RuntimeError:  # the loop closed meanwhile
            pass

    def subscribe(self, wants: Callable[[Message], bool], backlog: int = 1000) -> Subscriber:
        subscriber = Subscriber(wants, backlog)
        with self._lock:
            self._subscribers.add(subscriber)
        return subscriber

    def unsubscribe(self, subscriber: Subscriber) -> None:
        with self._lock:
            self._subscribers.discard(subscriber)

    @property
    def subscriber_count(self) -> int:
        return len(self._subscribers)

    def _deliver(self, message: Message) -> None:
        with self._lock:
            subscribers = list(self._subscribers)
        for subscriber in subscribers:
            if subscriber.wants(message):
                subscriber.offer(message)
