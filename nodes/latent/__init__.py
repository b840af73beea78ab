"""Latent nodes: empty latents, VAE encode and decode (whole or tiled), latent upscale.

LATENT values are dicts ``{"samples": [B, C, h, w] float32 tensor on the CPU}`` plus optional keys:
``noise_mask`` (``[B, 1, H, W]`` or ``[B, H, W]`` in 0..1 at any size with the image's aspect ratio: 1 = repaint;
see :mod:`nodes.sampling.masking`), ``source_samples`` (the clean latents a masked latent with leftover noise
returns to), ``batch_index``. :mod:`nodes.latent.codec` (torch, diffusers) is imported inside the node
functions only.
"""
