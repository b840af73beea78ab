"""Overall progress of a run that means something: each node weighs what it has to do, and an ETA.

Before a run the executor estimates each node's work (:func:`estimate_work`): a sampler declares its steps
(``@node(work=...)``), a node with model files is measured by their bytes, any other node counts as one
small unit. Work of different kinds is made comparable by turning it into estimated seconds: a kind's rate
(seconds per step, per byte, per node) is measured while the run goes (from the nodes of that kind that
finished, and from the running node's own progress) and taken from :data:`PRIOR_SECONDS` until then.

:class:`RunProgress` follows the run's events and answers the overall fraction (never decreasing, 1.0
exactly when the run finished) and the seconds left. The CLI's bars and the editor's status bar both use
it, so they show the same numbers.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from nodegraph.events import (
    Event,
    NodeCached,
    NodeFailed,
    NodeFinished,
    NodeProgress,
    NodeStarted,
    RunCancelled,
    RunFailed,
    RunFinished,
    RunStarted,
)

STEPS, BYTES, NODE = "steps", "bytes", "node"
# Seconds per unit until the run has measured its own: a sampler step of a small model on a CPU, a model
# file read and built at 200 MB/s, a node without declared work. Measured rates replace them at once.
PRIOR_SECONDS = {STEPS: 0.25, BYTES: 1 / 200e6, NODE: 0.02}

WorkEstimate = Callable[[dict[str, Any]], float]


@dataclass(frozen=True)
class Work:
    """How much a node has to do: ``amount`` units of ``kind`` (steps, bytes or node)."""

    kind: str
    amount: float

    def to_json(self) -> list[Any]:
        return [self.kind, self.amount]


def estimate_work(declared: WorkEstimate | None, params: dict[str, Any], file_bytes: int) -> Work:
    """A node's work: its declared steps, else the bytes of its model files, else one node unit."""
    if declared is not None:
        try:
            steps = float(declared(params))
        except Exception:  # a plugin's estimate must never stop a run
            steps = 1.0
        return Work(STEPS, max(0.0, steps))
    if file_bytes > 0:
        return Work(BYTES, float(file_bytes))
    return Work(NODE, 1.0)


@dataclass
class _NodeState:
    work: Work
    started: float | None = None
    fraction: float = 0.0
    seconds: float | None = None  # set when finished
    # The first progress with something done anchors the node's own rate: what came before it (importing a
    # library, a first step that also warms up) would otherwise make the ETA of a long node far too long.
    first_time: float | None = None
    first_fraction: float = 0.0

    def node_seconds(self, now: float) -> float | None:
        """Seconds the whole node takes at the pace of its progress since the anchor (None: not yet known)."""
        if self.first_time is None or self.fraction <= self.first_fraction:
            return None
        return (now - self.first_time) / (self.fraction - self.first_fraction)


class RunProgress:
    """The overall fraction and the time left of one run, from its events (pass them to :meth:`update`)."""

    def __init__(self, clock: Callable[[], float] = time.monotonic) -> None:
        self._clock = clock
        # rates measured by earlier runs of this object (the editor's queue, --repeat): the next run of the same
        # kind of work starts with a realistic ETA instead of the priors
        self.learned: dict[str, float] = {}
        self._reset()

    def _reset(self) -> None:
        self.nodes: dict[str, _NodeState] = {}
        self.started: float | None = None
        self.outcome = ""  # "", "done", "failed", "cancelled"
        self.current = ""  # the node running now
        self.message = ""  # its progress message ("loading ...", "step 3 of 20")
        self._fraction = 0.0

    # -- events ------------------------------------------------------------------------------------

    def update(self, event: Event) -> None:
        now = self._clock()
        if isinstance(event, RunStarted):
            self._reset()
            self.started = now
            for node_id, work in (event.work or {}).items():
                kind, amount = work if not isinstance(work, Work) else (work.kind, work.amount)
                self.nodes[node_id] = _NodeState(Work(str(kind), float(amount)))
        elif isinstance(event, NodeStarted):
            state = self.nodes.setdefault(event.node, _NodeState(Work(NODE, 1.0)))
            state.started = now
            self.current, self.message = event.node, ""
        elif isinstance(event, NodeProgress):
            state = self.nodes.get(event.node)
            if state is not None and event.total > 0:
                state.fraction = max(state.fraction, min(1.0, event.step / event.total))
                if state.first_time is None and state.fraction > 0:
                    state.first_time, state.first_fraction = now, state.fraction
            self.message = event.message or (f"step {event.step} of {event.total}" if event.total else "")
        elif isinstance(event, NodeFinished):
            state = self.nodes.get(event.node)
            if state is not None:
                state.fraction, state.seconds = 1.0, float(event.seconds)
        elif isinstance(event, NodeCached):
            state = self.nodes.get(event.node)
            if state is not None:  # planned to run, then found in the cache after all: no work left
                state.fraction, state.seconds = 1.0, 0.0
        elif isinstance(event, NodeFailed):
            self.message = event.message
        elif isinstance(event, RunFinished):
            self.learned.update(self._rates(now))
            self.outcome, self._fraction, self.current = "done", 1.0, ""
        elif isinstance(event, (RunFailed, RunCancelled)):
            self.outcome = "failed" if isinstance(event, RunFailed) else "cancelled"
            self.current = ""

    # -- answers -----------------------------------------------------------------------------------

    @property
    def fraction(self) -> float:
        """Share of the run's estimated time already done: 0..1, never decreasing; 1.0 only when done."""
        if self.outcome == "done":
            return 1.0
        if self.outcome:
            return self._fraction
        done, total = self._times()
        if total > 0:
            self._fraction = max(self._fraction, min(0.999, done / total))
        return self._fraction

    @property
    def eta(self) -> float | None:
        """Estimated seconds left (None before anything was measured or after the run)."""
        if self.outcome or self.started is None:
            return None
        done, total = self._times()
        measured = bool(self.learned) or any(s.seconds is not None or s.fraction > 0 for s in self.nodes.values())
        return max(0.0, total - done) if measured else None

    @property
    def elapsed(self) -> float:
        return 0.0 if self.started is None else self._clock() - self.started

    def _rates(self, now: float) -> dict[str, float]:
        spent: dict[str, float] = {}
        units: dict[str, float] = {}
        for state in self.nodes.values():
            work = state.work
            if work.amount <= 0:
                continue
            pace = state.node_seconds(now) if state.seconds is None else None
            if state.seconds is not None and state.seconds > 0:
                seconds, amount = state.seconds, work.amount
            elif state.started is not None and pace is not None:
                seconds, amount = pace, work.amount
            else:
                continue
            spent[work.kind] = spent.get(work.kind, 0.0) + seconds
            units[work.kind] = units.get(work.kind, 0.0) + amount
        return {kind: spent[kind] / units[kind] for kind in spent if units[kind] > 0}

    def _times(self) -> tuple[float, float]:
        """(estimated seconds done, estimated seconds in all) over the nodes that run."""
        now = self._clock()
        rates = {**PRIOR_SECONDS, **self.learned, **self._rates(now)}
        done = total = 0.0
        for state in self.nodes.values():
            expected = state.work.amount * rates.get(state.work.kind, PRIOR_SECONDS[NODE])
            if state.seconds is not None:
                done += state.seconds
                total += state.seconds
            elif state.started is not None:
                elapsed = now - state.started
                pace = state.node_seconds(now)
                done += elapsed
                total += elapsed + (1.0 - state.fraction) * pace if pace is not None else max(elapsed, expected)
            else:
                total += expected
        return done, total


def format_eta(seconds: float | None) -> str:
    """``"ETA 1:05"``, ``"ETA 0:04"``; empty when unknown."""
    if seconds is None:
        return ""
    seconds = round(seconds)
    hours, rest = divmod(seconds, 3600)
    minutes, secs = divmod(rest, 60)
    return f"ETA {hours}:{minutes:02d}:{secs:02d}" if hours else f"ETA {minutes}:{secs:02d}"
