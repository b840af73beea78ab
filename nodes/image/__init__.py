"""Image nodes: loading and saving, resizing and inverting, and control-image preprocessors.

IMAGE values are float32 tensors ``[B, H, W, 3]`` in 0..1 on the CPU; MASK values are float32 ``[B, H, W]``.
The node modules import nothing heavy at import time; :mod:`nodes.image.convert` (torch, numpy, Pillow) is
imported inside the node functions.
"""
