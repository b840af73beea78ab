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
    """Two bars on stderr, drawn with tqdm: the whole run (weighted by each node's work, with an ETA: the same
    numbers as the editor's status bar, from :class:`~nodegraph.progress.RunProgress`) and the node that
    reports progress (sampler steps, or the bytes of a model being loaded)."""

    def __init__(self) -> None:
        from tqdm import tqdm

        from nodegraph.progress import RunProgress

        self._tqdm = tqdm
        self.progress = RunProgress()
        self._run: Any = None
        self._step: Any = None
        self._step_key: tuple[str, int, str] | None = None

    def __call__(self, event: Event) -> None:
        self.progress.update(event)
        if isinstance(event, RunStarted):
            self.close()
            # "{unit}" carries the node and the ETA: tqdm would put ", " before a postfix
            self._run = self._tqdm(total=100, desc="workflow", unit="", file=sys.stderr, position=0,
                                   bar_format="{desc}: {percentage:3.0f}%|{bar}| {unit}")
        elif isinstance(event, NodeProgress):
            loading = event.message.startswith("loading")
            key = (event.node, event.total, event.message if loading else "")
            if self._step is None or self._step_key != key:
                self._close_step()
                self._step_key = key
                if loading:
                    self._step = self._tqdm(total=event.total, desc=event.message, unit="B", unit_scale=True,
                                            file=sys.stderr, position=1, leave=False)
                else:
                    self._step = self._tqdm(total=event.total, desc=event.node, unit="step", file=sys.stderr,
                                            position=1, leave=False)
            self._step.n = event.step
            self._step.refresh()
        elif isinstance(event, (NodeFinished, NodeCached)):
            self._close_step()
        elif isinstance(event, NodeLog):
            self._tqdm.write(f"[{event.node}] {event.level}: {event.message}" if event.level != "info" else f"[{event.node}] {event.message}", file=sys.stderr)
        elif isinstance(event, NodeFailed):
            self._close_step()
            self._tqdm.write(f"[{event.node}] failed: {event.message}", file=sys.stderr)
        elif isinstance(event, CacheEvicted):
            pass
        self._draw_run()

    def _draw_run(self) -> None:
        if self._run is None:
            return
        from nodegraph.progress import format_eta

        progress = self.progress
        self._run.n = round(progress.fraction * 100, 1)
        parts = [progress.current, format_eta(progress.eta)] if not progress.outcome else [progress.outcome]
        self._run.unit = " · ".join(p for p in parts if p)
        self._run.refresh()

    def _close_step(self) -> None:
        if self._step is not None:
            self._step.close()
            self._step = None
            self._step_key = None

    def close(self) -> None:
        self._close_step()
        if self._run is not None:
            self._draw_run()
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
