"""The latent cache of the demo trainers: training images encoded once by the frozen VAE encoder.

Each entry keeps the posterior's mean and std (a fresh latent is sampled from them every time the image is
used), the shape's mask (the ControlNet / adapter condition) and the index of its (colour, shape, background)
combination in ``dataset.TRAIN_COMBINATIONS`` (the caption is drawn per use, from :mod:`nodes.demo.captions`).
"""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import torch
from tqdm import tqdm

from nodes.demo import dataset
from nodes.demo.conditions import images_to_tensor

POOL = 16384
CACHE_SEED = 5000


def latent_cache(out: Path, seed: int = 0, count: int | None = None) -> dict:
    path = out / "latents.pt"
    if path.exists():
        return torch.load(path, weights_only=True)
    from nodes.demo.train_vae import load_vae

    count = count or int(os.environ.get("DEMO_LATENT_POOL", POOL))
    vae = load_vae(out)
    means, stds, masks, labels = [], [], [], []
    index_of = {c: i for i, c in enumerate(dataset.TRAIN_COMBINATIONS)}
    for start in tqdm(range(0, count, 256), desc="encode latents", dynamic_ncols=True):
        images, m, _, lab = dataset.batch_arrays(min(256, count - start), seed=seed + CACHE_SEED, start=start)
        with torch.no_grad():
            dist = vae.encode(images_to_tensor(images)).latent_dist
        means.append(dist.mean)
        stds.append(dist.std)
        masks.append(torch.from_numpy(np.rint(m * 255).astype(np.uint8)))
        labels.append(torch.tensor([index_of[x] for x in lab]))
    cache = {
        "mean": torch.cat(means),
        "std": torch.cat(stds),
        "masks": torch.cat(masks),
        "labels": torch.cat(labels),
        "scaling_factor": torch.tensor(vae.config.scaling_factor),
        "cache_seed": torch.tensor(seed + CACHE_SEED),
    }
    tmp = path.with_suffix(".tmp")
    torch.save(cache, tmp)
    os.replace(tmp, path)
    return cache


def sample_batch(cache: dict, batch: int, generator: torch.Generator) -> tuple[torch.Tensor, torch.Tensor]:
    """(row indices, scaled latents sampled from their posteriors) of a random batch."""
    idx = torch.randint(0, cache["mean"].shape[0], (batch,), generator=generator)
    mean, std = cache["mean"][idx], cache["std"][idx]
    latents = (mean + std * torch.randn(mean.shape, generator=generator)) * cache["scaling_factor"]
    return idx, latents
