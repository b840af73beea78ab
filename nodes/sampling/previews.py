"""Live previews while a sampler runs: the current denoised estimate as a small image, every so often.

The sampler node builds a :class:`PreviewReporter` and hands it to the sampling loop as its per-step callback.
At most once per ``ctx.preview_interval`` seconds (and at the last step) it turns the loop's current estimate
of the clean latent into RGB with the model's :class:`~nodes.sampling.latent_rgb.LatentRGB` map, lays a batch
out as one grid, and sends it with the step's progress event (``NodeProgress.preview``: a float32 array
``[H, W, 3]`` in 0..1). Without a preview interval (the CLI's default) nothing is computed.

Which map a model gets (:func:`preview_map`):

1. pixel-space models (DeepFloyd IF) show their samples as they are;
2. a model whose loader remembered its VAE (:func:`remember_vae`): the published factors if that VAE is the
   standard SD1.5/SDXL one, else a map fitted from that VAE's decoder, once, cached with the VAE; during a run
   that map is refitted to the run's own estimates now and then (:mod:`nodes.sampling.refit_preview`);
3. otherwise the published factors of the model's family (SD1.5, SDXL, SD3, FLUX.1 and the DiT families that
   use their VAEs), else no preview (progress is still reported).
"""

from __future__ import annotations

import math
import time
import weakref
from collections.abc import Callable
from typing import Any

import numpy as np
import torch

from nodes.sampling.latent_rgb import LatentRGB, fit_latent_rgb, pixels_to_rgb, standard_vae_kind
from nodes.sampling.refit_preview import RefittingLatentRGB

# Families whose models use the SD1.5 or SDXL VAE, when the loader did not say which VAE (no VAE in the file).
FAMILY_LATENTS = {
    "sd15": "sd15", "sdxl": "sdxl", "sdxl_refiner": "sdxl",
    "pixart_alpha": "sd15", "pixart_sigma": "sdxl", "hunyuan_dit": "sdxl",
    "sd3": "sd3", "flux": "flux",
}
GRID_LIMIT = 4  # batch items shown in a preview (2 x 2)

_vaes: weakref.WeakKeyDictionary[Any, Any] = weakref.WeakKeyDictionary()  # denoising network -> its VaeHandle
_maps: weakref.WeakKeyDictionary[Any, LatentRGB] = weakref.WeakKeyDictionary()  # VAE module -> its map


def remember_vae(network: Any, vae: Any) -> None:
    """Loaders call this: previews of ``network`` (a UNet or transformer) use ``vae`` (a VAE handle)."""
    if network is not None and vae is not None and getattr(vae, "vae", None) is not None:
        _vaes[network] = vae


def _vae_of(model: Any) -> Any:
    """The VAE handle a loader remembered for ``model``'s network, or None."""
    network = getattr(model, "unet", None)
    return _vaes.get(network) if network is not None else None


def preview_map(model: Any) -> Callable[[torch.Tensor], torch.Tensor] | None:
    """The latent -> RGB function for a MODEL handle (see the module docstring), or None."""
    if getattr(model, "pixels_per_cell", 8) == 1:
        return pixels_to_rgb
    vae = _vae_of(model)
    if vae is not None:
        module = vae.vae
        kind = standard_vae_kind(module.config)
        if kind is not None:
            return LatentRGB.published(kind)
        found = _maps.get(module)
        if found is None:
            found = fit_latent_rgb(module, float(vae.scaling_factor), float(getattr(vae, "shift_factor", 0.0) or 0.0))
            _maps[module] = found
        return found
    kind = FAMILY_LATENTS.get(getattr(model, "family", ""))
    return LatentRGB.published(kind) if kind is not None else None


def run_preview_map(model: Any) -> Callable[[torch.Tensor], torch.Tensor] | None:
    """:func:`preview_map` for one run: a fitted map becomes a :class:`RefittingLatentRGB` of that run."""
    found = preview_map(model)
    vae = _vae_of(model)
    if isinstance(found, LatentRGB) and found.source == "fitted" and vae is not None:
        return RefittingLatentRGB(found, vae, GRID_LIMIT)
    return found


def grid(images: torch.Tensor) -> np.ndarray:
    """``[B, h, w, 3]`` -> one image ``[H, W, 3]`` (up to :data:`GRID_LIMIT` items, in rows of 2)."""
    array = images[:GRID_LIMIT].numpy()
    count = len(array)
    if count == 1:
        return np.ascontiguousarray(array[0])
    cols = 2
    rows = math.ceil(count / cols)
    h, w = array.shape[1:3]
    out = np.zeros((rows * h, cols * w, 3), dtype=np.float32)
    for index, image in enumerate(array):
        r, c = divmod(index, cols)
        out[r * h : (r + 1) * h, c * w : (c + 1) * w] = image
    return out


class PreviewReporter:
    """The sampler's per-step callback: progress every step, a preview when one is due.

    ``interval`` is the least time between two previews; the first step and the last always get one (the
    last shows what the sampler returns). ``clock`` is injectable for tests.
    """

    def __init__(self, ctx: Any, model: Any, clock: Callable[[], float] = time.monotonic) -> None:
        self.ctx = ctx
        self.interval = getattr(ctx, "preview_interval", None)
        self._model = model
        self._map: Callable[[torch.Tensor], torch.Tensor] | bool | None = False  # False: not looked up yet
        self._clock = clock
        self._last: float | None = None
        self.sent = 0

    def _preview_map(self) -> Callable[[torch.Tensor], torch.Tensor] | None:
        if self._map is False:
            try:
                self._map = run_preview_map(self._model)
            except Exception as exc:  # a preview must never stop a sampler
                self.ctx.warn(f"no live preview for this model: {type(exc).__name__}: {exc}")
                self._map = None
        return self._map  # type: ignore[return-value]

    def __call__(self, step: int, total: int, denoised: Callable[[], torch.Tensor] | None = None) -> None:
        preview = None
        if self.interval is not None and denoised is not None:
            now = self._clock()
            if step >= total or self._last is None or now - self._last >= self.interval:
                to_rgb = self._preview_map()
                if to_rgb is not None:
                    if isinstance(to_rgb, RefittingLatentRGB):  # the last preview shows what the sampler returns
                        preview = grid(to_rgb(denoised(), exact=step >= total))
                    else:
                        preview = grid(to_rgb(denoised()))
                    self._last = self._clock()  # the preview's own cost does not shorten the next wait
                    self.sent += 1
        self.ctx.progress(step, total, preview=preview)
