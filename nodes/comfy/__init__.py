"""Node types with ComfyUI's meaning, for workflows imported from ComfyUI (see nodegraph.comfy).

Where ComfyUI's arithmetic differs from the product's native (diffusers) semantics these nodes follow
ComfyUI: its samplers, noise and sigma schedules, its LoRA merging, its resize methods and its 8-bit
truncation. Their fields keep ComfyUI's names and values, so import and export are one-to-one.
"""
