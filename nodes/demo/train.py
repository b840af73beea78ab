"""Train the demo model family on the procedural shapes dataset, on CPU.

    python -m nodes.demo.train --component vae|decoder|unet|controlnet|adapter|all --out DIR [--resume] [--steps N]

Order matters, and one component trains at a time: the VAE first (it bounds every score), until its own
reconstructions classify correctly; then its encoder is frozen and the training latents are cached once
(``DIR/latents.pt``); then the UNet and the CLIP text encoder together; then, if needed, the decoder alone
(the cached latents stay valid); last the ControlNet and the T2I-Adapter on the shape mask, base frozen,
trained by the product's own Train ControlNet / Train T2I-Adapter code (:mod:`nodes.training`). ``all``
runs them in that order. Each component writes to DIR: ``<name>/`` (diffusers format; the UNet and text
encoder as EMA weights), ``<name>_ckpt.pt`` (resumable state, read with weights_only=True; ``--resume``
continues from it), ``<name>_loss.csv`` and ``<name>_eval.csv`` (measured accuracy every --eval-every steps).
``python -m nodes.demo.ship --from DIR`` then writes the shipped files. The recipe of the shipped files is in
docs/demo_model.md.
"""

from __future__ import annotations

import argparse
import os
import time
from pathlib import Path

# adapter: the shipped one needed 3,000 steps on the current base (IoU 0.744 after 1,500, 0.764 after 3,000)
DEFAULT_STEPS = {"vae": 5000, "decoder": 3000, "unet": 20000, "controlnet": 1500, "adapter": 3000}
DEFAULT_BATCH = {"vae": 16, "decoder": 16, "unet": 64, "controlnet": 32, "adapter": 32}
DEFAULT_LR = {"vae": 1e-3, "decoder": 2e-4, "unet": 1e-3, "controlnet": 1e-3, "adapter": 1e-3}
DEFAULT_EVAL = {"vae": 250, "decoder": 250, "unet": 1000, "controlnet": 500, "adapter": 500}
ORDER = ("vae", "unet", "decoder", "controlnet", "adapter")


def _trainer(name: str):
    if name == "vae":
        from nodes.demo.train_vae import train_vae

        return train_vae
    if name == "decoder":
        from nodes.demo.train_vae import train_decoder

        return train_decoder
    if name == "unet":
        from nodes.demo.train_base import train_unet

        return train_unet
    from nodes.demo.train_control import train_control

    return lambda *a, **k: train_control(name, *a, **k)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m nodes.demo.train", description=__doc__.split("\n\n")[0])
    parser.add_argument("--component", required=True, choices=[*ORDER, "all"])
    parser.add_argument("--out", required=True, type=Path, help="working folder (diffusers components, checkpoints)")
    parser.add_argument("--resume", action="store_true", help="continue from DIR/<component>_ckpt.pt")
    parser.add_argument("--steps", type=int, help="total optimiser steps (default per component)")
    parser.add_argument("--batch", type=int, help="batch size (default per component)")
    parser.add_argument("--lr", type=float, help="peak learning rate (default per component)")
    parser.add_argument("--threads", type=int, default=1, help="torch threads (1 is fastest on shared cores)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--eval-every", type=int, help="steps between checkpoints + measured scores")
    parser.add_argument("--latent-noise", type=float, default=1.0,
                        help="decoder: scale of the posterior noise on its training latents")
    parser.add_argument("--pool", type=int, help="training images whose latents are cached (default 16384)")
    args = parser.parse_args(argv)
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    import torch

    torch.set_num_threads(args.threads)
    if args.pool:
        os.environ["DEMO_LATENT_POOL"] = str(args.pool)
    args.out.mkdir(parents=True, exist_ok=True)
    components = ORDER if args.component == "all" else (args.component,)
    for name in components:
        start = time.time()
        extra = {"latent_noise": args.latent_noise} if name == "decoder" else {}
        _trainer(name)(
            args.out,
            steps=args.steps or DEFAULT_STEPS[name],
            batch=args.batch or DEFAULT_BATCH[name],
            lr=args.lr or DEFAULT_LR[name],
            resume=args.resume,
            seed=args.seed,
            eval_every=args.eval_every or DEFAULT_EVAL[name],
            **extra,
        )
        print(f"[{name}] finished in {time.time() - start:.0f} s this session")


if __name__ == "__main__":
    main()
