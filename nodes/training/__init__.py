"""Training nodes: DreamBooth LoRA training on a loaded model (issue 7).

Only :mod:`nodes.training.dreambooth_nodes` and :mod:`nodes.training.subjects` stay torch-free; the rest is
imported inside node functions.
"""
