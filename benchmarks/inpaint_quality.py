"""Inpainting quality of the demo model, by measurement, through the product's own nodes.

    python benchmarks/inpaint_quality.py [--count 48] [--steps 20] [--sheet docs/inpaint_contact_sheet.png]

Each case takes a picture of the demo dataset (one shape on a plain background), masks a square around its shape
(at least 48 pixels, on the 8-pixel latent grid) and asks for another shape in another colour on the same
background ("a green triangle on a purple background"). The workflow is workflows/demo_inpaint.json's: VAE Encode
-> Set Latent Noise Mask -> KSampler (denoise 1, CFG 5) -> VAE Decode -> Image Composite Masked; a second row uses VAE
Encode (for Inpainting) instead. The demo classifier (nodes/demo/measure.py) reads the crop around the mask:
success when the shape and the colour are the prompted ones. "outside" is the largest change of any pixel
outside the mask after compositing (0 = unchanged exactly); "VAE only" the mean change there had the decoded
image been used without compositing. Seeds are fixed: two runs print the same table.
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
os.environ.setdefault("HF_HUB_OFFLINE", "1")

import numpy as np  # noqa: E402
from PIL import Image  # noqa: E402

from nodes.demo import dataset, measure  # noqa: E402

GOAL = 0.80
GRID = 8  # latent cell in pixels
CFG = 5.0  # txt2img's best is 3; for inpainting 5 measured best (chosen on the seed-555 cases, see cases())


def mask_box(shape_mask: np.ndarray, side: int = 48, margin: int = 4) -> tuple[int, int, int, int]:
    """(left, top, right, bottom) of a box on the latent grid holding the shape with ``margin`` pixels around it,
    widened where needed to at least ``side`` pixels (so a new shape of any size fits)."""
    ys, xs = np.nonzero(shape_mask > 0.02)
    size = shape_mask.shape[0]
    box = []
    for low, high in ((xs.min(), xs.max() + 1), (ys.min(), ys.max() + 1)):
        start = max(0, (low - margin) // GRID * GRID)
        end = min(size, -(-(high + margin) // GRID) * GRID)
        while end - start < side:  # widen on the side with more room
            if start > 0 and (end >= size or start >= size - end):
                start -= GRID
            else:
                end += GRID
        box.append((start, end))
    (left, right), (top, bottom) = box
    return left, top, right, bottom


def cases(count: int, seed: int = 777) -> list[dict]:
    """The measured cases (seed 777). The settings (mask of at least 48 pixels, CFG 5) were chosen on other cases
    (seed 555), so that the reported figures are not tuned to these."""
    rng = np.random.default_rng(seed)
    out = []
    for index in range(count):
        source = dataset.sample(index, seed=seed, split="train")
        shape = dataset.SHAPES[(dataset.SHAPES.index(source.shape) + 1 + int(rng.integers(2))) % 3]
        colours = [c for c in dataset.COLOURS if c not in (source.colour, source.background)]
        colour = colours[int(rng.integers(len(colours)))]
        out.append({"source": source, "shape": shape, "colour": colour, "box": mask_box(source.mask),
                    "prompt": dataset.caption(colour, shape, source.background)})
    return out


def workflow(image: Path, mask: Path, prompt: str, route: str, steps: int, seed: int) -> dict:
    def node(kind: str, params: dict | None = None, **inputs: tuple[str, str]) -> dict:
        return {"type": kind, "params": params or {}, "inputs": {k: list(v) for k, v in inputs.items()}}

    nodes = {
        "checkpoint": node("core.CheckpointLoader", {"ckpt_name": "demo_shapes.safetensors"}),
        "positive": node("core.CLIPTextEncode", {"text": prompt}, clip=("checkpoint", "clip")),
        "negative": node("core.CLIPTextEncode", {"text": ""}, clip=("checkpoint", "clip")),
        "image": node("core.LoadImage", {"path": str(image), "mask_path": str(mask)}),
    }
    if route == "noise_mask":
        nodes["encode"] = node("core.VAEEncode", pixels=("image", "image"), vae=("checkpoint", "vae"))
        nodes["latent"] = node("core.SetLatentNoiseMask", samples=("encode", "latent"), mask=("image", "mask"))
    else:
        nodes["latent"] = node("core.VAEEncodeForInpaint", {"grow_mask_by": 6}, pixels=("image", "image"),
                               vae=("checkpoint", "vae"), mask=("image", "mask"))
    nodes["sampler"] = node("core.KSampler", {"seed": seed, "steps": steps, "cfg": CFG, "scheduler": "ddim",
                                              "denoise": 1.0},
                            model=("checkpoint", "model"), positive=("positive", "conditioning"),
                            negative=("negative", "conditioning"), latent_image=("latent", "latent"))
    nodes["decode"] = node("core.VAEDecode", samples=("sampler", "latent"), vae=("checkpoint", "vae"))
    nodes["paste"] = node("core.ImageCompositeMasked", destination=("image", "image"), source=("decode", "image"),
                          mask=("image", "mask"))
    return {"format": "nodegraph.workflow", "version": 1, "nodes": nodes}


def evaluate(count: int, steps: int, routes: tuple[str, ...] = ("noise_mask", "encode_for_inpaint")):
    """Per route: the results table row values and the composited images (for the contact sheet)."""
    from nodegraph.context import RunSettings
    from nodegraph.executor import Executor
    from nodegraph.installed import default_registry
    from nodegraph.paths import PathPolicy
    from nodegraph.workflow import parse_workflow

    registry = default_registry()
    executor = Executor(registry)
    results: dict[str, dict] = {}
    with tempfile.TemporaryDirectory() as folder:
        settings = RunSettings(paths=PathPolicy(input_dirs=(Path(folder),)))  # the cases' pictures are read there
        todo = cases(count)
        for index, case in enumerate(todo):
            image_path, mask_path = Path(folder, f"{index}.png"), Path(folder, f"{index}_mask.png")
            Image.fromarray(case["source"].image).save(image_path)
            left, top, right, bottom = case["box"]
            mask = np.zeros((dataset.SIZE, dataset.SIZE), np.uint8)
            mask[top:bottom, left:right] = 255
            Image.fromarray(mask, "L").save(mask_path)
            case["mask"] = mask > 0
        for route in routes:
            rows = results.setdefault(route, {"hits": [], "outside": [], "vae": [], "images": []})
            for index, case in enumerate(todo):
                doc = workflow(Path(f"{index}.png"), Path(f"{index}_mask.png"), case["prompt"], route, steps, seed=index)
                outputs = executor.run(parse_workflow(doc, registry), ["paste", "decode"], settings=settings).outputs
                pasted = outputs["paste"]["image"][0].numpy()
                decoded = outputs["decode"]["image"][0].numpy()
                source = case["source"].image.astype(np.float32) / 255
                outside = ~case["mask"]
                if outside.any():  # a large shape's mask may cover the whole picture
                    rows["outside"].append(float(np.abs(pasted - source)[outside].max()))
                    rows["vae"].append(float(np.abs(decoded - source)[outside].mean()))
                left, top, right, bottom = case["box"]
                crop = pasted[max(0, top - 3) : bottom + 3, max(0, left - 3) : right + 3]
                found = measure.measure(crop)
                rows["hits"].append(found.matches(case["colour"], case["shape"], case["source"].background))
                rows["images"].append(pasted)
    return results, todo


def table(results: dict) -> list[str]:
    lines = ["| route | n | colour | shape | shape and colour | background | outside: largest change | VAE only: mean change |",
             "|---|---|---|---|---|---|---|---|"]
    for route, rows in results.items():
        hits = np.asarray(rows["hits"], dtype=float)
        both = float((hits[:, 0] * hits[:, 1]).mean())
        name = {"noise_mask": "Set Latent Noise Mask", "encode_for_inpaint": "VAE Encode (for Inpainting)"}[route]
        lines.append(f"| {name} | {len(hits)} | {hits[:, 0].mean():.2f} | {hits[:, 1].mean():.2f} | {both:.2f} "
                     f"(goal {GOAL:.2f}) | {hits[:, 2].mean():.2f} | {max(rows['outside']):.4f} | "
                     f"{float(np.mean(rows['vae'])):.4f} |")
    return lines


def sheet(results: dict, todo: list[dict], path: Path, columns: int = 12) -> None:
    """Rows: the sources with their mask box drawn, then each route's results."""
    sources = []
    for case in todo[:columns]:
        image = case["source"].image.astype(np.float32) / 255
        edge = case["mask"] ^ np.pad(case["mask"], 1)[2:, 1:-1] | case["mask"] ^ np.pad(case["mask"], 1)[1:-1, 2:]
        image[edge] = (1.0, 1.0, 1.0)
        sources.append(image)
    rows = [sources] + [rows["images"][:columns] for rows in results.values()]
    grid = np.ones((len(rows) * 66, columns * 66, 3), np.float32)
    for i, row in enumerate(rows):
        for j, picture in enumerate(row):
            grid[i * 66 + 1 : i * 66 + 65, j * 66 + 1 : j * 66 + 65] = picture
    picture = Image.fromarray(np.rint(grid * 255).astype(np.uint8))
    path.parent.mkdir(parents=True, exist_ok=True)
    picture.resize((picture.width * 2, picture.height * 2), Image.NEAREST).save(path)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--count", type=int, default=48)
    parser.add_argument("--steps", type=int, default=20)
    parser.add_argument("--sheet", type=Path, default=None, help="write a contact sheet of the first 12 cases")
    args = parser.parse_args(argv)
    start = time.time()
    results, todo = evaluate(args.count, args.steps)
    print("\n".join(table(results)))
    print(f"\nDDIM {args.steps} steps, CFG {CFG:g}, fixed seeds; chance: colour 0.125, shape 0.33. {time.time() - start:.0f} s.")
    if args.sheet:
        sheet(results, todo, args.sheet)
        print(f"contact sheet (rows: sources with the mask's edge, noise-mask route, encode-for-inpaint route): {args.sheet}")


if __name__ == "__main__":
    main()
