"""Stable Diffusion 1.5 / SDXL support: model handles, checkpoint loading and saving, text encoding and
sampling nodes. Modules here import torch/diffusers lazily (inside functions) or are imported only by node
functions, so that listing the nodes stays light."""
