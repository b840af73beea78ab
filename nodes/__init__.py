"""The built-in node library. Node modules declare their nodes at import time without importing torch;
heavy libraries are imported inside the node functions.

The library reaches the engine as a plugin does: nodegraph's pyproject.toml declares it in the entry point group
``nodegraph.nodes`` (``core = "nodes"``), and this module answers the plugin protocol (``NAMESPACE``, ``NODES``).
Add a new node module to ``BUILTIN_MODULES``."""

BUILTIN_MODULES: list[str] = [
    "nodes.primitives",
    "nodes.canvas_nodes",
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
    "nodes.class_dit.label_nodes",
    "nodes.mmdit.loader_nodes",
    "nodes.mmdit.sampling_nodes",
    "nodes.flux.text_nodes",
    "nodes.sd3.text_nodes",
    "nodes.training.dreambooth_nodes",
    "nodes.training.control_train_nodes",
    "nodes.training.dataset_nodes",
    "nodes.demo.dataset_nodes",
    "nodes.mask.mask_nodes",
    "nodes.mask.inpaint_nodes",
    "nodes.mask.compose_nodes",
    "nodes.upscale.upscale_nodes",
    # ComfyUI semantics for imported workflows (nodegraph.comfy maps ComfyUI's class types onto these)
    "nodes.comfy.sampler_nodes",
    "nodes.comfy.model_nodes",
    "nodes.comfy.text_nodes",
    "nodes.comfy.conditioning_nodes",
    "nodes.comfy.image_nodes",
]

NAMESPACE = "core"


def NODES() -> list:
    """The built-in node modules, imported (the plugin protocol's ``NODES``)."""
    import importlib

    return [importlib.import_module(name) for name in BUILTIN_MODULES]
