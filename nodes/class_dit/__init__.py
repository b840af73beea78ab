"""Class-conditional DiT (Peebles & Xie, the ImageNet models; diffusers' DiTPipeline): patchified latents with sin-cos
position embeddings, timestep and class-label embeddings summed into adaLN-Zero blocks, a learned sigma. Loaded by
Load DiT / IF Model from a diffusers folder; conditioned by class-label nodes (an ImageNet id, class names, or the
null class for classifier-free guidance) and sampled by the one sampler."""
