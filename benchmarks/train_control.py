"""Train ControlNet / Train T2I-Adapter on the demo model: how well the trained condition steers, how long
training takes, how much memory it needs (issue 18).

    python benchmarks/train_control.py [--kinds controlnet t2i_adapter] [--count 48] [--steps N]

Runs workflows/demo_train_controlnet.json and workflows/demo_train_t2i_adapter.json through the Executor,
as `nodegraph run` would, with the shipped demo model: Demo Shapes -> Canny Edges (outlines) -> Save Control
Dataset -> the training node, then sampling from the outlines of held-out shapes with the trained model read
back by its loader node. The trained models go into a temporary model folder (your own folders are not
touched). Printed per kind:

- IoU between each held-out shape's true mask and the region drawn from its outline (goals: ControlNet 0.7,
  T2I-Adapter 0.6, what the shipped mask models reach on masks), and the same prompt and seeds without the
  control model (the baseline: where an unguided shape happens to land);
- whether the drawn shape is the outline's shape, and the prompt's colours (the workflow asks for "a blue
  shape on a yellow background": the outline decides the shape, the prompt the colours);
- the training node's wall time, and the process's peak resident memory during training above what it used
  before (sampled every 20 ms).
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import threading
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
os.environ.setdefault("HF_HUB_OFFLINE", "1")

import numpy as np  # noqa: E402
import torch  # noqa: E402

from nodes.demo import dataset, measure  # noqa: E402

IOU_GOALS = {"controlnet": 0.7, "t2i_adapter": 0.6}
PROMPT_COLOURS = ("blue", "yellow")


def rss_bytes() -> int:
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) * 1024
    return 0


class PeakMemory:
    """Peak resident memory of this process while the block runs (polled: a short spike can be missed)."""

    def __init__(self, interval: float = 0.02) -> None:
        self.interval, self.peak, self._stop = interval, 0, threading.Event()

    def __enter__(self) -> PeakMemory:
        self.before = rss_bytes()
        self.peak = self.before
        self._thread = threading.Thread(target=self._poll, daemon=True)
        self._thread.start()
        return self

    def _poll(self) -> None:
        while not self._stop.is_set():
            self.peak = max(self.peak, rss_bytes())
            time.sleep(self.interval)

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join()
        self.peak = max(self.peak, rss_bytes())


def measure_kind(kind: str, count: int, steps: int | None, output: Path, models: Path) -> dict:
    from nodegraph.context import RunSettings
    from nodegraph.events import NodeFinished
    from nodegraph.executor import Executor
    from nodegraph.installed import default_registry
    from nodegraph.model_folders import BUILTIN_ROOT, ModelFolders
    from nodegraph.runtime import Runtime
    from nodegraph.workflow import load_workflow

    registry = default_registry()
    graph = load_workflow(ROOT / "workflows" / f"demo_train_{kind}.json", registry)
    graph.nodes["test_shapes"].params["count"] = count
    graph.nodes["latent"].params["batch_size"] = count
    graph.nodes["train"].params["validation_every"] = 0  # only the end's samples: the timing is training's
    if steps:
        graph.nodes["train"].params["steps"] = steps
    executor = Executor(registry, runtime=Runtime("cpu", "fp32"), folders=ModelFolders([models, BUILTIN_ROOT]))
    timings: dict[str, float] = {}

    def on_event(event) -> None:
        if isinstance(event, NodeFinished):
            timings[event.node] = event.seconds

    settings = RunSettings(output_dir=output)
    with PeakMemory() as memory:
        executor.run(graph, ["train"], settings=settings, on_event=on_event)
    result = executor.run(graph, ["decode", "test_shapes"], settings=settings)
    drawn = result.outputs["decode"]["image"].numpy()
    masks = result.outputs["test_shapes"]["masks"].numpy() > 0.5
    _, _, _, labels = dataset.batch_arrays(count, seed=graph.nodes["test_shapes"].params["seed"], split="heldout")

    # the same prompt and seeds without the control model: where an unguided shape lands
    graph.nodes["sampler"].inputs["positive"] = ("positive", "conditioning")
    graph.nodes["sampler"].inputs["negative"] = ("negative", "conditioning")
    baseline = executor.run(graph, ["decode"], settings=settings).outputs["decode"]["image"].numpy()

    def scores(images: np.ndarray) -> dict:
        found = [measure.measure(img) for img in images]
        return {
            "iou": float(np.mean([measure.iou(m.mask, t) for m, t in zip(found, masks)])),
            "shape": float(np.mean([m.shape == lab[1] for m, lab in zip(found, labels)])),
            "colour": float(np.mean([m.colour == PROMPT_COLOURS[0] for m in found])),
            "background": float(np.mean([m.background == PROMPT_COLOURS[1] for m in found])),
        }

    return {"trained": scores(drawn), "baseline": scores(baseline), "seconds": timings.get("train", float("nan")),
            "steps": graph.nodes["train"].params["steps"], "batch": graph.nodes["train"].params["batch_size"],
            "peak_mib": (memory.peak - memory.before) / 2**20, "rss_before_mib": memory.before / 2**20}


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--kinds", nargs="+", default=["controlnet", "t2i_adapter"], choices=list(IOU_GOALS))
    parser.add_argument("--count", type=int, default=48, help="held-out outlines to draw from")
    parser.add_argument("--steps", type=int, help="training steps (default: the workflow's)")
    parser.add_argument("--threads", type=int, default=1)
    args = parser.parse_args(argv)
    torch.set_num_threads(args.threads)
    lines = ["| model | steps x batch | IoU (goal) | IoU without it | shape = outline's | colour | background | "
             "training wall time | peak memory above start |", "|---|---|---|---|---|---|---|---|---|"]
    with tempfile.TemporaryDirectory(prefix="train_control_") as tmp:
        for kind in args.kinds:
            r = measure_kind(kind, args.count, args.steps, Path(tmp) / "output", Path(tmp) / "models")
            t, b = r["trained"], r["baseline"]
            lines.append(
                f"| {kind} | {r['steps']} x {r['batch']} | {t['iou']:.3f} ({IOU_GOALS[kind]}) | {b['iou']:.3f} | "
                f"{t['shape']:.2f} (without: {b['shape']:.2f}) | {t['colour']:.2f} | {t['background']:.2f} | "
                f"{r['seconds']:.0f} s | {r['peak_mib']:.0f} MiB (process at start {r['rss_before_mib']:.0f} MiB) |")
    print("\n".join(lines))
    print(f"\n{args.count} held-out shapes, DDIM 20 steps, CFG 3, prompt 'a blue shape on a yellow background'; "
          "CPU, one thread.")


if __name__ == "__main__":
    main()
