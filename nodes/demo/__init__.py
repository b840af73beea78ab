"""The built-in demo model family: a procedural shapes dataset, its measurement-based classifier and the code
that trains a tiny SD1.5-architecture model, a ControlNet and a T2I-Adapter on it (``python -m nodes.demo.train``).

Nothing here is a node module: the dataset and classifier need only numpy, the trainer imports torch/diffusers."""
