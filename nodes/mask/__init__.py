"""Masks and inpainting: mask operations, the nodes that put a mask on a latent or into an inpainting model's
conditioning, outpainting padding, compositing, and cropping a small masked region out (and back in) so it is
repainted at full resolution.

MASK values are float32 tensors ``[B, H, W]`` in 0..1 on the CPU; 1 marks what to repaint (ComfyUI's
convention). :mod:`nodes.mask.ops` holds the tensor functions; the node modules import nothing heavy at
import time.
"""
