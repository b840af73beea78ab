"""Latent nodes: empty latents, VAE encode and decode (whole or tiled), latent upscale.

LATENT values are dicts ``{"samples": [B, C, h, w] float32 tensor on the CPU}`` plus optional keys
(``noise_mask``, ``batch_index``). :mod:`nodes.latent.codec` (torch, diffusers) is imported inside the node
functions only.
"""
