"""Train the demo upscaler: a Real-ESRGAN compact network (SRVGGNetCompact, through spandrel's own class) that doubles
the demo model's 64x64 pictures of shapes, so the model-upscale hires-fix workflow runs with nothing downloaded.

    python -m nodes.upscale.train_demo [--steps 1500] [--out nodes/models/upscale_models/demo_shapes_x2.safetensors]

Training pairs come from the demo dataset's renderer: the same shape drawn at 64x64 (the input, anti-aliased as the
demo model's training images are) and at 128x128 (the target), with random colours, shapes and geometry; steps see
random 32-pixel crops across shape edges from a pool of such pairs. Mean squared error, Adam; the weights are written in fp16 as a plain state dict
that spandrel recognises. Takes a few minutes on two cores; ``benchmarks/upscale.py`` measures it against bicubic resampling on pictures it never saw.
"""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np
import torch

from nodes.demo import dataset

OUT = Path(__file__).resolve().parent.parent / "models" / "upscale_models" / "demo_shapes_x2.safetensors"
FEATURES, CONVS, SCALE = 24, 6, 2


def network() -> torch.nn.Module:
    from nodes.upscale.spandrel_import import import_spandrel

    import_spandrel()
    from spandrel.architectures.Compact import Compact

    return Compact(num_in_ch=3, num_out_ch=3, num_feat=FEATURES, num_conv=CONVS, upscale=SCALE, act_type="prelu")


def render_pair(rng: np.random.Generator, size: int = dataset.SIZE) -> tuple[np.ndarray, np.ndarray]:
    """One shape drawn at ``size`` and at twice that, same geometry and colours: uint8 [size, size, 3] and
    [2 size, 2 size, 3]."""
    colour, background = rng.choice(dataset.COLOURS, size=2, replace=False)
    shape = str(rng.choice(dataset.SHAPES))
    cx, cy, extent = dataset.random_geometry(rng)
    pictures = []
    for scale in (1, SCALE):
        mask = dataset.shape_mask(shape, cx * scale, cy * scale, extent * scale, size=size * scale)
        fg = np.asarray(dataset.PALETTE[str(colour)], np.float32)
        bg = np.asarray(dataset.PALETTE[str(background)], np.float32)
        pictures.append(np.rint(mask[..., None] * fg + (1 - mask[..., None]) * bg).astype(np.uint8))
    return pictures[0], pictures[1]


def pool(rng: np.random.Generator, count: int) -> tuple[torch.Tensor, torch.Tensor]:
    """``count`` rendered pairs as float tensors [N, 3, 64, 64] and [N, 3, 128, 128] in 0..1."""
    pairs = [render_pair(rng) for _ in range(count)]
    low = torch.from_numpy(np.stack([p[0] for p in pairs])).permute(0, 3, 1, 2).float() / 255
    high = torch.from_numpy(np.stack([p[1] for p in pairs])).permute(0, 3, 1, 2).float() / 255
    return low, high


def crops(low: torch.Tensor, high: torch.Tensor, rng: np.random.Generator, count: int, size: int = 32):
    """Random aligned crops (``size`` low-resolution pixels) of random pairs that cut through the shape's edge
    (flat crops teach nothing: any upscaler copies a flat colour), randomly mirrored."""
    chosen: list[tuple[int, int, int]] = []
    while len(chosen) < count:
        i = int(rng.integers(len(low)))
        t, x = (int(v) for v in rng.integers(low.shape[-1] - size + 1, size=2))
        if float(low[i, :, t : t + size, x : x + size].std()) > 0.02:
            chosen.append((i, t, x))
    lo = torch.stack([low[i, :, t : t + size, x : x + size] for i, t, x in chosen])
    hi = torch.stack([high[i, :, 2 * t : 2 * (t + size), 2 * x : 2 * (x + size)] for i, t, x in chosen])
    if rng.random() < 0.5:
        lo, hi = lo.flip(-1), hi.flip(-1)
    return lo, hi


def train(steps: int, batch_size: int = 32, seed: int = 0, log_every: int = 250, pairs: int = 768) -> torch.nn.Module:
    torch.manual_seed(seed)
    rng = np.random.default_rng(seed)
    low_pool, high_pool = pool(rng, pairs)
    model = network()
    optimiser = torch.optim.Adam(model.parameters(), lr=1e-3)
    schedule = torch.optim.lr_scheduler.CosineAnnealingLR(optimiser, steps)
    for step in range(1, steps + 1):
        low, high = crops(low_pool, high_pool, rng, batch_size)
        # mean squared error: with L1 the rare edge pixels are outvoted and the network stays at nearest-neighbour
        loss = torch.nn.functional.mse_loss(model(low), high)
        optimiser.zero_grad()
        loss.backward()
        optimiser.step()
        schedule.step()
        if step % log_every == 0 or step == steps:
            print(f"step {step}/{steps}: MSE {loss.item():.6f}", flush=True)
    return model.eval()


def save(model: torch.nn.Module, path: Path) -> None:
    from safetensors.torch import save_file

    path.parent.mkdir(parents=True, exist_ok=True)
    state = {k: v.detach().to(torch.float16).contiguous() for k, v in model.state_dict().items()}
    save_file(state, str(path), metadata={"nodegraph.trained_by": "nodes/upscale/train_demo.py"})


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--steps", type=int, default=1500)
    parser.add_argument("--out", type=Path, default=OUT)
    parser.add_argument("--threads", type=int, default=2)
    args = parser.parse_args(argv)
    torch.set_num_threads(args.threads)
    save(train(args.steps), args.out)
    print(f"wrote {args.out} ({args.out.stat().st_size / 1024:.0f} KiB)")


if __name__ == "__main__":
    main()
