"""The built-in demo model family: a procedural shapes dataset (:mod:`dataset`), the captions people type for it
(:mod:`captions`), its measurement-based classifier (:mod:`measure`), and the code that trains a tiny
SD1.5-architecture model on it (``python -m nodes.demo.train``: :mod:`train_vae`, :mod:`train_base`,
:mod:`train_control`) and ships it (``python -m nodes.demo.ship``).

The dataset, captions and classifier need only numpy; the trainers import torch/diffusers. One node module,
:mod:`dataset_nodes` (Demo Shapes), puts the dataset into workflows."""
