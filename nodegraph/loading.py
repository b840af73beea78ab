"""Progress of model loads, by bytes read: "loading demo_shapes.safetensors 45%".

The executor wraps every node whose work is measured in bytes (a node with model file parameters: a loader)
in :func:`reporting_load`. Code that reads weights calls :func:`bytes_read` for each piece it reads (a
tensor, a component folder); the current node then reports ``NodeProgress(step=bytes, total=bytes,
message="loading <file>")`` a few times a second. Code that never calls it costs nothing and reports
nothing; loaders need no change of their own.

The reporter travels in a :class:`contextvars.ContextVar`, so it reaches the reading code without being
passed through every function in between, and each thread (the editor's worker, a server's) has its own.
"""

from __future__ import annotations

import contextlib
import os
import time
from collections.abc import Callable, Iterator
from contextvars import ContextVar
from pathlib import Path

REPORT_INTERVAL = 0.1  # seconds between progress reports of one load (and at every whole 5%)


class LoadReporter:
    """Counts bytes read against an expected total and reports them, throttled."""

    def __init__(self, total: int, message: str, report: Callable[[int, int, str], None]) -> None:
        self.total = max(1, int(total))
        self.message = message
        self.done = 0
        self._report = report
        self._last_time = 0.0
        self._last_bucket = -1

    def add(self, nbytes: int) -> None:
        self.done = min(self.total, self.done + max(0, int(nbytes)))
        now = time.monotonic()
        bucket = self.done * 20 // self.total
        if now - self._last_time >= REPORT_INTERVAL or bucket != self._last_bucket:
            self._last_time, self._last_bucket = now, bucket
            self._report(self.done, self.total, self.message)

    def finish(self) -> None:
        if self.done < self.total:
            self.done = self.total
            self._report(self.done, self.total, self.message)


_current: ContextVar[LoadReporter | None] = ContextVar("nodegraph_load_reporter", default=None)


@contextlib.contextmanager
def reporting_load(total: int, message: str, report: Callable[[int, int, str], None]) -> Iterator[LoadReporter]:
    """While the block runs, :func:`bytes_read` counts towards this load."""
    reporter = LoadReporter(total, message, report)
    report(0, reporter.total, message)  # at once: importing the model libraries may take seconds before any byte
    token = _current.set(reporter)
    try:
        yield reporter
        reporter.finish()  # whatever was not counted (headers, tokenizers) is read by now
    finally:
        _current.reset(token)


def bytes_read(nbytes: int) -> None:
    """Count ``nbytes`` read by the load in progress (if any)."""
    reporter = _current.get()
    if reporter is not None:
        reporter.add(nbytes)


def path_read(path: str | os.PathLike[str]) -> None:
    """Count a whole file or folder as read (a component loaded by a library that reads it itself)."""
    if _current.get() is not None:
        bytes_read(path_bytes(Path(path)))


def path_bytes(path: Path) -> int:
    """Size of a file, or of every file under a folder (0 if it does not exist)."""
    try:
        if path.is_dir():
            return sum(p.stat().st_size for p in path.rglob("*") if p.is_file())
        return path.stat().st_size
    except OSError:
        return 0
