"""Upscale models: super-resolution networks (ESRGAN, Real-ESRGAN, SwinIR, HAT, DAT, ...) read through spandrel,
which recognises the architecture and its hyper-parameters from a state dict, and a tiled runner whose memory
stays bounded at any image size.

:mod:`nodes.upscale.loading` opens files (safetensors, or pickles read with ``weights_only=True``),
:mod:`nodes.upscale.tiling` runs a model tile by tile, :mod:`nodes.upscale.upscale_nodes` declares the nodes.
"""
