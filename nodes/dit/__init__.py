"""Transformer (DiT) and pixel-space cascade model families: PixArt-alpha/sigma, Hunyuan-DiT and DeepFloyd IF
stages I and II, loaded from diffusers-format folders and sampled by the one sampler (core.KSampler) through
denoisers created from their MODEL handle."""
