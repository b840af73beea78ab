"""Upscale models: the demo upscaler's quality, and what tiling costs and saves.

    python benchmarks/upscale.py [--count 48] [--size 1024]

1. The shipped demo upscaler (nodes/models/upscale_models/demo_shapes_x2.safetensors, trained by
   nodes/upscale/train_demo.py) against bicubic and nearest resampling, on pictures of the demo dataset it never saw
   (64 -> 128 pixels; the reference is the same shape drawn at 128): PSNR in dB, higher is better.
2. Tiling, measured in fresh processes on a ``--size`` square image with a randomly initialised Real-ESRGAN compact
   network (x2): peak resident anonymous memory above the start and wall time, tiled (128-pixel tiles, overlap 16)
   against untiled, in the same run. Ratios below 1 favour tiling.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
os.environ.setdefault("HF_HUB_OFFLINE", "1")

import numpy as np  # noqa: E402
import torch  # noqa: E402

MEASURE = r"""
import json, sys, threading, time, torch
torch.set_num_threads(1)
from pathlib import Path
from nodes.upscale.loading import load_upscale_model
from nodes.upscale.tiling import upscale_image
def anonymous():
    with open("/proc/self/status") as f:
        return next(int(line.split()[1]) * 1024 for line in f if line.startswith("RssAnon:"))
model = load_upscale_model(Path(sys.argv[1])).descriptor
size, tile = int(sys.argv[2]), int(sys.argv[3])
image = torch.rand(1, size, size, 3)
upscale_image(model, image[:, :256, :256], min(tile, 256), 16)
before, peak, running = anonymous(), 0, True
def sample():
    global peak
    while running:
        peak = max(peak, anonymous())
        time.sleep(0.002)
thread = threading.Thread(target=sample)
thread.start()
start = time.perf_counter()
upscale_image(model, image, tile, 16)
seconds = time.perf_counter() - start
running = False
thread.join()
print(json.dumps({"growth": max(peak, anonymous()) - before, "seconds": seconds}))
"""


def psnr(a: np.ndarray, b: np.ndarray) -> float:
    return float(10 * np.log10(1.0 / np.mean((a - b) ** 2)))


def quality(count: int) -> list[str]:
    from nodes.upscale.loading import load_upscale_model
    from nodes.upscale.tiling import upscale_image
    from nodes.upscale.train_demo import OUT, render_pair

    model = load_upscale_model(OUT).descriptor
    rng = np.random.default_rng(90210)  # not the training seed
    scores: dict[str, list[float]] = {"demo upscaler": [], "bicubic": [], "nearest": []}
    for _ in range(count):
        low, high = render_pair(rng)
        x = torch.from_numpy(low).float()[None] / 255
        target = high.astype(np.float32) / 255
        scores["demo upscaler"].append(psnr(upscale_image(model, x, 512, 0)[0].numpy(), target))
        for mode in ("bicubic", "nearest"):
            kwargs = {"align_corners": False} if mode == "bicubic" else {}
            up = torch.nn.functional.interpolate(x.movedim(-1, 1), scale_factor=2, mode=mode, **kwargs)
            scores[mode].append(psnr(up.clamp(0, 1).movedim(1, -1)[0].numpy(), target))
    lines = ["| 64 -> 128 px | n | PSNR (dB) |", "|---|---|---|"]
    lines += [f"| {name} | {count} | {np.mean(values):.2f} |" for name, values in scores.items()]
    return lines


def tiling(size: int) -> list[str]:
    import tempfile

    from safetensors.torch import save_file

    from nodes.upscale.spandrel_import import import_spandrel

    import_spandrel()
    from spandrel.architectures.Compact import Compact

    torch.manual_seed(0)
    network = Compact(num_in_ch=3, num_out_ch=3, num_feat=32, num_conv=8, upscale=2)
    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / "compact.safetensors"
        save_file({k: v.contiguous() for k, v in network.state_dict().items()}, str(path))
        figures = {}
        for name, tile in (("tiled (128 px)", 128), ("untiled", 1 << 16)):
            done = subprocess.run([sys.executable, "-c", MEASURE, str(path), str(size), str(tile)], capture_output=True,
                                  text=True, cwd=ROOT, check=True)
            figures[name] = json.loads(done.stdout.strip().splitlines()[-1])
    output_mb = size * size * 4 * 3 * 4 / 2**20
    lines = [f"| {size}x{size} -> x2 (output {output_mb:.0f} MB as float32) | peak memory growth (MB) | seconds |",
             "|---|---|---|"]
    for name, f in figures.items():
        lines.append(f"| {name} | {f['growth'] / 2**20:.0f} | {f['seconds']:.2f} |")
    tiled, whole = figures["tiled (128 px)"], figures["untiled"]
    lines.append(f"| ratio tiled / untiled | {tiled['growth'] / whole['growth']:.2f} | "
                 f"{tiled['seconds'] / whole['seconds']:.2f} |")
    return lines


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--count", type=int, default=48)
    parser.add_argument("--size", type=int, default=1024)
    args = parser.parse_args(argv)
    torch.set_num_threads(1)
    start = time.time()
    print("\n".join(quality(args.count)))
    print()
    print("\n".join(tiling(args.size)))
    print(f"\n{time.time() - start:.0f} s.")


if __name__ == "__main__":
    main()
