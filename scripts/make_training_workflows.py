"""Writes the demo workflows that train a ControlNet and a T2I-Adapter on a condition the shipped ones do not
know, the outline of the shape, then draw with them:

    python scripts/make_training_workflows.py

workflows/demo_train_controlnet.json and workflows/demo_train_t2i_adapter.json: Demo Shapes draws training
images of the demo model's world, Canny Edges turns each into its outline, Save Control Dataset writes the
(image, outline, caption) triples as a dataset folder, Train ControlNet / Train T2I-Adapter trains on it
(validation samples as previews), and the trained model, read back by its loader node, draws shapes from the
outlines of held-out images. Built through the engine's Graph API, so every link is type-checked.
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
# Measured with benchmarks/train_control.py (docs/train_control.md): 600 steps left the ControlNet where no
# control puts the shape (IoU 0.28); 2,000 steps reach 0.74 (ControlNet) and 0.63 (T2I-Adapter).
TRAINING = {
    "controlnet": {"steps": 2000, "learning_rate": 1e-3, "batch_size": 16, "embedding_channels": "16,32,64,64"},
    "t2i_adapter": {"steps": 2000, "learning_rate": 1e-3, "batch_size": 16, "adapter_type": "full_adapter"},
}
DATASET_SIZE = 2048
PROMPT = "a blue shape on a yellow background"  # the outline decides the shape, the prompt the colours


def build(kind: str) -> Graph:
    node_type = {"controlnet": "core.TrainControlNet", "t2i_adapter": "core.TrainT2IAdapter"}[kind]
    what = {"controlnet": "ControlNet", "t2i_adapter": "T2I-Adapter"}[kind]
    g = Graph(meta={"title": f"Train a {what} on shape outlines, then draw with it"})

    def add(node_id: str, node_type: str, column: int, row: int, inputs: dict | None = None, **params) -> None:
        g.add_node(REGISTRY, node_type, node_id, params, layout={"x": column * 480, "y": row * 320})
        for name, (source, output) in (inputs or {}).items():
            g.connect(REGISTRY, source, output, node_id, name)

    add("checkpoint", "core.CheckpointLoader", 0, 0, ckpt_name="demo_shapes.safetensors")
    add("shapes", "core.DemoShapes", 0, 1, count=DATASET_SIZE, seed=0, split="train", captions="varied")
    add("outlines", "core.CannyEdges", 1, 1, {"images": ("shapes", "images")}, low_threshold=100, high_threshold=200)
    add("dataset", "core.SaveControlDataset", 2, 1, {"images": ("shapes", "images"), "conditions": ("outlines", "images"),
        "captions": ("shapes", "captions")}, folder=f"demo_outlines_{kind}_dataset")
    add("train", node_type, 3, 0, {"model": ("checkpoint", "model"), "clip": ("checkpoint", "clip"),
        "vae": ("checkpoint", "vae"), "dataset": ("dataset", "dataset")},
        name=f"demo_shapes_outline_{kind}", resolution=64, seed=0, validation_every=200, validation_count=4,
        validation_cfg=3.0, **TRAINING[kind])
    # Held-out shapes: combinations the base model never saw, drawn from their outlines.
    add("test_shapes", "core.DemoShapes", 0, 3, count=4, seed=1, split="heldout", captions="sentence")
    add("test_outlines", "core.CannyEdges", 1, 3, {"images": ("test_shapes", "images")}, low_threshold=100,
        high_threshold=200)
    if kind == "controlnet":
        add("load", "core.ControlNetLoader", 4, 0, {"model": ("checkpoint", "model"), "control_net_name": ("train", "name")})
    else:
        add("load", "core.T2IAdapterLoader", 4, 0, {"t2i_adapter_name": ("train", "name")})
    add("positive", "core.CLIPTextEncode", 2, 2, {"clip": ("checkpoint", "clip")}, text=PROMPT)
    add("negative", "core.CLIPTextEncode", 2, 3, {"clip": ("checkpoint", "clip")}, text="")
    handle = "control_net" if kind == "controlnet" else "t2i_adapter"
    apply = "core.ControlNetApply" if kind == "controlnet" else "core.T2IAdapterApply"
    add("apply", apply, 5, 2, {"positive": ("positive", "conditioning"), "negative": ("negative", "conditioning"),
        handle: ("load", handle), "image": ("test_outlines", "images")})
    add("latent", "core.EmptyLatentImage", 5, 3, width=64, height=64, batch_size=4)
    add("sampler", "core.KSampler", 6, 2, {"model": ("checkpoint", "model"), "positive": ("apply", "positive"),
        "negative": ("apply", "negative"), "latent_image": ("latent", "latent")}, **SAMPLING)
    add("decode", "core.VAEDecode", 7, 2, {"samples": ("sampler", "latent"), "vae": ("checkpoint", "vae")})
    add("save", "core.SaveImage", 8, 2, {"images": ("decode", "image")}, filename_prefix=f"demo_train_{kind}")
    add("save_outlines", "core.SaveImage", 2, 4, {"images": ("test_outlines", "images")},
        filename_prefix=f"demo_train_{kind}_outlines")
    return g


def main() -> None:
    for kind in ("controlnet", "t2i_adapter"):
        save_workflow(build(kind), WORKFLOWS / f"demo_train_{kind}.json")


if __name__ == "__main__":
    main()
