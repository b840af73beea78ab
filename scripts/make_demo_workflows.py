"""Writes the workflows that run on the built-in demo model (workflows/txt2img.json and the demo_* files).

    python scripts/make_demo_workflows.py

Built through the engine's Graph API, so every link is type-checked; the editor lays them out on open.
"""

from __future__ import annotations

from pathlib import Path

from nodegraph.graph import Graph
from nodegraph.installed import default_registry
from nodegraph.workflow import save_workflow

ROOT = Path(__file__).resolve().parent.parent
WORKFLOWS = ROOT / "workflows"
REGISTRY = default_registry()
SAMPLING = {"seed": 1, "steps": 20, "cfg": 3.0, "scheduler": "ddim"}  # CFG 3 scored best on the demo model


class Builder:
    def __init__(self, title: str) -> None:
        self.graph = Graph(meta={"title": title})

    def add(self, node_id: str, node_type: str, column: int, row: int, inputs: dict | None = None, **params) -> str:
        self.graph.add_node(REGISTRY, node_type, node_id, params, layout={"x": column * 540, "y": row * 300})
        for name, (source, output) in (inputs or {}).items():
            self.graph.connect(REGISTRY, source, output, node_id, name)
        return node_id

    def base(self, prompt: str, negative: str = "", batch: int = 4, latent: bool = True) -> None:
        self.add("checkpoint", "core.CheckpointLoader", 0, 1, ckpt_name="demo_shapes.safetensors")
        self.add("positive", "core.CLIPTextEncode", 1, 0, {"clip": ("checkpoint", "clip")}, text=prompt)
        self.add("negative", "core.CLIPTextEncode", 1, 1, {"clip": ("checkpoint", "clip")}, text=negative)
        if latent:
            self.add("latent", "core.EmptyLatentImage", 1, 2, width=64, height=64, batch_size=batch)

    def finish(self, name: str, sampler_inputs: dict, prefix: str, column: int = 3, **sampler) -> None:
        self.add("sampler", "core.KSampler", column, 1, sampler_inputs, **{**SAMPLING, **sampler})
        self.add("decode", "core.VAEDecode", column + 1, 1, {"samples": ("sampler", "latent"), "vae": ("checkpoint", "vae")})
        self.add("save", "core.SaveImage", column + 2, 1, {"images": ("decode", "image")}, filename_prefix=prefix)
        save_workflow(self.graph, WORKFLOWS / f"{name}.json")


def conditioning(control: str = "", model: str = "checkpoint") -> dict:
    """The sampler's inputs; with ``control`` the prompts come through that apply node."""
    positive = (control, "positive") if control else ("positive", "conditioning")
    negative = (control, "negative") if control else ("negative", "conditioning")
    return {"model": (model, "model"), "positive": positive, "negative": negative, "latent_image": ("latent", "latent")}


def main() -> None:
    b = Builder("Text to image with the built-in demo model")
    b.base("a red circle on a blue background")
    b.finish("txt2img", conditioning(), "txt2img", column=2)

    b = Builder("Image to image: turn the square into a circle, keeping place and colours")
    b.base("a yellow circle on a purple background", latent=False)
    b.add("image", "core.LoadImage", 0, 2, path="images/demo_yellow_square.png")
    b.add("latent", "core.VAEEncode", 1, 2, {"pixels": ("image", "image"), "vae": ("checkpoint", "vae")})
    b.finish("demo_img2img", conditioning(), "demo_img2img", column=2, denoise=0.6)

    b = Builder("ControlNet: the mask decides where and what shape, the prompt the colours")
    b.base("an orange triangle on a black background")
    b.add("mask", "core.LoadImage", 0, 3, path="images/demo_mask_triangle.png")
    b.add("control_net", "core.ControlNetLoader", 1, 3, {"model": ("checkpoint", "model")}, control_net_name="demo_shapes_mask")
    b.add("apply", "core.ControlNetApply", 2, 1, {"positive": ("positive", "conditioning"), "negative": ("negative", "conditioning"),
          "control_net": ("control_net", "control_net"), "image": ("mask", "image")}, strength=1.0)
    b.finish("demo_controlnet", conditioning("apply"), "demo_controlnet")

    b = Builder("T2I-Adapter: the mask guides the layout, once per generation")
    b.base("a purple triangle on a yellow background")
    b.add("mask", "core.LoadImage", 0, 3, path="images/demo_mask_triangle.png")
    b.add("adapter", "core.T2IAdapterLoader", 1, 3, t2i_adapter_name="demo_shapes_mask")
    b.add("apply", "core.T2IAdapterApply", 2, 1, {"positive": ("positive", "conditioning"), "negative": ("negative", "conditioning"),
          "t2i_adapter": ("adapter", "t2i_adapter"), "image": ("mask", "image")}, weight=1.0)
    b.finish("demo_t2i_adapter", conditioning("apply"), "demo_t2i_adapter")

    b = Builder("Dynamic thresholding keeps CFG 20 from saturating")
    b.base("a white square on a green background")
    b.add("threshold", "core.DynamicThresholding", 1, 3, {"model": ("checkpoint", "model")}, mode="latent", mimic_scale=6.0, percentile=0.995)
    b.finish("demo_dynamic_threshold", conditioning(model="threshold"), "demo_dynamic_threshold", column=2, cfg=20.0)


if __name__ == "__main__":
    main()
