"""The built-in node library. Node modules declare their nodes at import time without importing torch;
heavy libraries are imported inside the node functions."""

BUILTIN_MODULES: list[str] = [
    "nodes.primitives",
    "nodes.image.io",
    "nodes.image.ops",
    "nodes.image.preprocess",
    "nodes.latent.latent_ops",
    "nodes.latent.vae_nodes",
    "nodes.sd.loaders",
    "nodes.sd.text_nodes",
    "nodes.sd.sampler_nodes",
    "nodes.adapters.lora_nodes",
    "nodes.adapters.guidance_nodes",
    "nodes.adapters.control_nodes",
    "nodes.dit.loader_nodes",
    "nodes.dit.text_nodes",
    "nodes.dit.pixel_nodes",
    "nodes.training.dreambooth_nodes",
    "nodes.training.control_train_nodes",
    "nodes.training.dataset_nodes",
    "nodes.demo.dataset_nodes",
]
