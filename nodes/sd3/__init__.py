"""Stable Diffusion 3 / 3.5 (medium and large): the MMDiT (diffusers' SD3Transformer2DModel) behind the sampler's one
denoiser interface, CLIP-L + CLIP-G + T5-XXL prompt encoding (T5 optional), and SD3 single-file checkpoints with or
without the text encoders inside. Loading and the MODEL / CLIP handles are shared with FLUX in :mod:`nodes.mmdit`."""
