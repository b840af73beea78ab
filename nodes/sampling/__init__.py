"""Sampling: one denoiser interface, guidance as a chain of small functions, diffusers schedulers by name,
and the sampling loop (diffusers' pipeline loop, so results match diffusers bit for bit).

- :mod:`nodes.sampling.denoiser`: the model interface (:class:`Denoiser`) and its UNet implementation;
  ControlNet / T2I-Adapter residuals enter through :class:`ResidualSource` hooks carried by conditioning.
- :mod:`nodes.sampling.guidance`: :class:`GuidanceState` and the links of the guidance chain (CFG, rescale).
- :mod:`nodes.sampling.schedulers`: scheduler names -> diffusers scheduler classes built from a model's
  scheduler config.
- :mod:`nodes.sampling.loop`: noise, timesteps (denoise strength, start/end step) and the loop itself.

These modules import torch: only node functions import them.
"""
