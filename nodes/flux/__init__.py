"""FLUX.1 [dev] and [schnell]: the flow-matching MMDiT (diffusers' FluxTransformer2DModel) behind the sampler's one
denoiser interface, CLIP-L pooled + T5-XXL prompt encoding with distilled guidance, the original (BFL / ComfyUI)
single-file layout of the transformer, and FLUX LoRAs in the diffusers/PEFT, kohya and original layouts.
Loading and the MODEL / CLIP handles are shared with SD3 in :mod:`nodes.mmdit`."""
