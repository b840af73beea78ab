"""Where ComfyUI-style samplers get their randomness, so that a seed draws ComfyUI's numbers.

- :func:`initial_noise`: one ``randn`` of the whole latent batch from a CPU generator seeded with the seed
  (``torch.manual_seed`` in ComfyUI; a private generator here, so the process-wide one is left alone).
  Batch item k is the next slice of that one draw, not seed + k; a latent that carries ``batch_index``
  (picked from a larger batch) gets the draws of those indices.
- :func:`step_noise`: the per-step noise of ancestral samplers: a new generator seeded with seed + 1 when the
  latent is on the CPU (the seed itself on another device), one ``randn`` of the latent's shape per call.
- :class:`BrownianNoise`: the SDE samplers' noise, a ``torchsde.BrownianTree`` built on the CPU with
  ``entropy=seed`` over [smallest nonzero sigma, largest sigma]; a draw between sigma and sigma' is
  ``W(sigma, sigma') / sqrt(|sigma' - sigma|)``.
"""

from __future__ import annotations

import warnings
from collections.abc import Callable, Sequence

import torch

NoiseSampler = Callable[[torch.Tensor, torch.Tensor], torch.Tensor]


def initial_noise(shape: Sequence[int], seed: int, batch_index: Sequence[int] | None = None,
                  dtype: torch.dtype = torch.float32) -> torch.Tensor:
    """The starting noise for a latent of ``shape`` [B, C, h, w], on the CPU."""
    generator = torch.Generator("cpu").manual_seed(int(seed))
    if batch_index is None:
        return torch.randn(tuple(shape), dtype=dtype, generator=generator, device="cpu")
    indices = [int(i) for i in batch_index]
    draws = [torch.randn((1, *shape[1:]), dtype=dtype, generator=generator, device="cpu")
             for _ in range(max(indices) + 1)]
    return torch.cat([draws[i] for i in indices], dim=0)


def step_noise(x: torch.Tensor, seed: int | None) -> NoiseSampler:
    """Per-step Gaussian noise like ``x`` (ComfyUI's ``default_noise_sampler``)."""
    generator = None
    if seed is not None:
        seed = seed + 1 if x.device.type == "cpu" else seed  # so it does not repeat the initial noise
        generator = torch.Generator(device=x.device).manual_seed(int(seed))

    def draw(sigma: torch.Tensor, sigma_next: torch.Tensor) -> torch.Tensor:
        return torch.randn(x.size(), dtype=x.dtype, layout=x.layout, device=x.device, generator=generator)

    return draw


class BrownianNoise:
    """Brownian-tree noise for SDE samplers, reproducible from the seed whatever the step sizes."""

    def __init__(self, x: torch.Tensor, sigma_min: torch.Tensor, sigma_max: torch.Tensor, seed: int | None) -> None:
        import torchsde

        t0, t1 = torch.as_tensor(sigma_min), torch.as_tensor(sigma_max)
        self.sign = 1
        if not t0 < t1:
            t0, t1, self.sign = t1, t0, -1
        if seed is None:
            seed = int(torch.randint(0, 2**63 - 1, ()).item())
        w0 = torch.zeros_like(x).detach().cpu()
        self.tree = torchsde.BrownianTree(t0.detach().cpu(), w0, t1.detach().cpu(), entropy=int(seed))

    def __call__(self, sigma: torch.Tensor, sigma_next: torch.Tensor) -> torch.Tensor:
        t0, t1 = torch.as_tensor(sigma), torch.as_tensor(sigma_next)
        sign = 1
        if not t0 < t1:
            t0, t1, sign = t1, t0, -1
        device, dtype = t0.device, t0.dtype
        with warnings.catch_warnings():  # torchsde warns when a float32 query rounds past the tree's float end
            warnings.filterwarnings("ignore", message="Should have", category=UserWarning)
            w = self.tree(t0.detach().cpu().float(), t1.detach().cpu().float()).to(device=device, dtype=dtype)
        return w * (self.sign * sign) / (t1 - t0).abs().sqrt()
