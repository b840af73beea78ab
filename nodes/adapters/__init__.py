"""Adapters on frozen base weights: LoRA (style), ControlNet and T2I-Adapter (layout), plus the nodes that
add dynamic thresholding to the guidance chain.

- :mod:`nodes.adapters.lora`: LoRA files (kohya/A1111 and diffusers/PEFT layouts) read once, matched to a
  model's modules, turned into patches; :mod:`nodes.adapters.lora_weights`: the weights those patches carry;
- :mod:`nodes.adapters.patching`: the context manager that puts a patch's peft LoRA layers into a shared
  module while it runs and takes them out again;
- :mod:`nodes.adapters.controlnet`, :mod:`nodes.adapters.t2i_adapter`: loading and the residual sources
  the denoiser calls;
- ``*_nodes`` modules: the nodes (light at import time).
"""
