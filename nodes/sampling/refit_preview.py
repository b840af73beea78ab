"""Previews for VAEs that no linear map describes well: decode now and then, refit the map to the run.

A fitted map (:func:`~nodes.sampling.latent_rgb.fit_latent_rgb`) describes a decoder around the origin of its
latent space. A small VAE trained on few colours (the demo model's) is far from linear there: on its own
generated images that global map reaches a correlation of about 0.3 with the decoded picture, while a linear map
fitted on the run's own estimates reaches 0.98. So during a run every :data:`REFIT_EVERY`-th preview, and the
last one, is decoded for real (shown as it is; the first ones, of a still blurry estimate, use the global map) and the map is refitted on that estimate, pulled towards the global map so a nearly
flat estimate cannot make it wild; the previews between use the refitted map. One decode per few previews
keeps the cost within a few percent of sampling (benchmarks/editor.py measures it).
"""

from __future__ import annotations

from typing import Any

import torch

from nodes.sampling.latent_rgb import LatentRGB, fit_affine

REFIT_EVERY = 4  # previews per real decode (the 4th, 8th, ...; the first ones use the global map)
RIDGE = 1e-2  # pull of the global map, per fitted cell


class RefittingLatentRGB:
    """A latent -> RGB callable (as :class:`LatentRGB`) for one run: ``[B, C, h, w]`` -> ``[b, h, w, 3]`` in 0..1,
    for the first ``limit`` batch items (those a preview shows)."""

    def __init__(self, base: LatentRGB, vae: Any, limit: int) -> None:
        self.base = base
        self.current = base
        self._vae = vae  # a VAE handle: .vae module, .scaling_factor, .shift_factor
        self._limit = limit
        self._calls = 0

    def __call__(self, latents: torch.Tensor, exact: bool = False) -> torch.Tensor:
        """``exact``: decode this one whatever the count (the sampler's last step: what it returns)."""
        latents = latents[: self._limit].detach().float().cpu()
        due = exact or self._calls % REFIT_EVERY == REFIT_EVERY - 1
        self._calls += 1
        if not due:
            return self.current(latents)
        from nodes.latent.codec import decode, spatial_factor

        handle = self._vae
        decoded = decode(handle.vae, latents, float(handle.scaling_factor),
                         float(getattr(handle, "shift_factor", 0.0) or 0.0))  # [b, H, W, 3] in 0..1
        cells = torch.nn.functional.avg_pool2d(decoded.permute(0, 3, 1, 2), spatial_factor(handle.vae))
        cells = cells.permute(0, 2, 3, 1)  # [b, h, w, 3]: one colour per latent cell, as the linear maps give
        self.current = fit_affine(latents, cells, "refitted", prior=self.base, ridge=RIDGE)
        return cells.clamp(0.0, 1.0)
