"""How ``nodegraph run`` shows a run: progress bars on a terminal, or one JSON object per event."""

from __future__ import annotations

import json
import sys
from typing import Any

from nodegraph.events import (
    CacheEvicted,
    Event,
    NodeCached,
    NodeFailed,
    NodeFinished,
    NodeLog,
    NodeProgress,
    NodeStarted,
    RunStarted,
)


class Reporter:
    """Base: swallows events. ``summary`` prints what the output nodes produced."""

    def __call__(self, event: Event) -> None:
        pass

    def close(self) -> None:
        pass

    def summary(self, graph: Any, result: Any) -> None:
        for node_id, outputs in result.outputs.items():
            for name, value in outputs.items():
                text = value if isinstance(value, str) else ", ".join(map(str, value)) if isinstance(value, list) else None
                if text is not None:
                    print(f"{node_id}.{name}: {text}")


class JsonReporter(Reporter):
    """One JSON object per line on stdout, flushed at once (for other programs to read)."""

    def __call__(self, event: Event) -> None:
        print(json.dumps(event.to_json(), default=str), flush=True)

    def summary(self, graph: Any, result: Any) -> None:
        pass


class BarReporter(Reporter):
    """A bar for the whole run and one for the node that reports steps, drawn with tqdm on stderr."""

    def __init__(self) -> None:
        from tqdm import tqdm

        self._tqdm = tqdm
        self._run: Any = None
        self._step: Any = None

    def __call__(self, event: Event) -> None:
        if isinstance(event, RunStarted):
            self._run = self._tqdm(total=len(event.nodes), desc="workflow", unit="node", file=sys.stderr, position=0)
        elif isinstance(event, NodeStarted) and self._run is not None:
            self._run.set_postfix_str(event.node)
        elif isinstance(event, NodeProgress):
            if self._step is None or self._step.total != event.total:
                self._close_step()
                self._step = self._tqdm(total=event.total, desc=event.node, unit="step", file=sys.stderr, position=1, leave=False)
            self._step.n = event.step
            self._step.refresh()
        elif isinstance(event, (NodeFinished, NodeCached)):
            self._close_step()
            if self._run is not None:
                self._run.update(1)
        elif isinstance(event, NodeLog):
            self._tqdm.write(f"[{event.node}] {event.level}: {event.message}" if event.level != "info" else f"[{event.node}] {event.message}", file=sys.stderr)
        elif isinstance(event, NodeFailed):
            self._close_step()
            self._tqdm.write(f"[{event.node}] failed: {event.message}", file=sys.stderr)
        elif isinstance(event, CacheEvicted):
            pass

    def _close_step(self) -> None:
        if self._step is not None:
            self._step.close()
            self._step = None

    def close(self) -> None:
        self._close_step()
        if self._run is not None:
            self._run.close()
            self._run = None


class PlainReporter(Reporter):
    """No bars (not a terminal): node logs and failures only, on stderr."""

    def __call__(self, event: Event) -> None:
        if isinstance(event, NodeLog) and event.level != "info":
            print(f"[{event.node}] {event.level}: {event.message}", file=sys.stderr)
        elif isinstance(event, NodeFailed):
            print(f"[{event.node}] failed: {event.message}", file=sys.stderr)


def make_reporter(mode: str) -> Reporter:
    return {"json": JsonReporter, "bars": BarReporter}.get(mode, PlainReporter)()
