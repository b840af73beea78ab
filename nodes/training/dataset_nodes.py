"""Save Control Dataset: write (image, conditioning image, caption) triples as a dataset folder that Train
ControlNet / Train T2I-Adapter read (the paired-by-name layout of :mod:`nodes.training.control_dataset`).

With it a workflow makes its own training data: images from anywhere (Load Image, a generator, the demo's
shapes), conditions from the preprocessor nodes (Canny Edges, Line Art, Threshold)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from nodegraph.context import NodeContext
from nodegraph.errors import NodeInputError
from nodegraph.node import Input, Output, node
from nodegraph.params import String
from nodegraph.types import IMAGE, STRING
from nodes.training.base_checks import result_name


def _captions(text: str, count: int) -> list[str]:
    lines = [" ".join(line.split()) for line in text.splitlines()] if text.strip() else [""]
    if len(lines) == 1:
        return lines * count
    if len(lines) != count:
        raise NodeInputError(f"{len(lines)} caption lines for {count} images: give one line per image, or one line "
                             "for all", "captions")
    return lines


def _free_folder(parent: Path, name: str) -> Path:
    candidate, number = parent / name, 1
    while candidate.exists():
        number += 1
        candidate = parent / f"{name}_{number}"
    return candidate


@node(
    "core.SaveControlDataset", name="Save Control Dataset", category="training", output_node=True,
    description=(
        "Writes images, their conditioning images and captions as a training dataset folder in the output "
        "folder (images/, conditioning/, captions/, paired by file name) for Train ControlNet and Train "
        "T2I-Adapter. An existing folder is never written into: a taken name gets a number."
    ),
    inputs=[
        Input("images", IMAGE, help="The target images."),
        Input("conditions", IMAGE, help="One conditioning image per target image (edges, masks, depth...)."),
        Input("captions", STRING, optional=True,
              help="One caption per line, one line per image (or a single line for all); none: empty captions."),
    ],
    params=[String("folder", "control_dataset", help="Name of the dataset folder inside the output folder.")],
    outputs=[Output("dataset", STRING, help="The dataset folder's path (feeds a training node's dataset).")],
)
def save_control_dataset(ctx: NodeContext, images: Any, conditions: Any, captions: Any, folder: str) -> str:
    from nodes.image.convert import check_image
    from nodes.training.image_folder import save_png

    images = check_image(images, "images")
    conditions = check_image(conditions, "conditions")
    if images.shape[0] != conditions.shape[0]:
        raise NodeInputError(f"{images.shape[0]} images but {conditions.shape[0]} conditioning images: give one "
                             "condition per image", "conditions")
    if captions is not None and not isinstance(captions, str):
        raise NodeInputError(f"expected captions as text, found {type(captions).__name__}", "captions")
    lines = _captions(captions or "", images.shape[0])
    name = result_name(folder, "folder")
    output = Path(ctx.output_dir).absolute()
    target = _free_folder(output, name)
    if target.name != name:
        ctx.log(f"{output / name} exists: writing the dataset to {target}")
    for sub in ("images", "conditioning", "captions"):
        (target / sub).mkdir(parents=True, exist_ok=True)
    count = images.shape[0]
    for i in range(count):
        stem = f"{i + 1:05d}"
        save_png(images[i], target / "images" / f"{stem}.png")
        save_png(conditions[i], target / "conditioning" / f"{stem}.png")
        (target / "captions" / f"{stem}.txt").write_text(lines[i] + "\n", encoding="utf-8")
        ctx.progress(i + 1, count)
    ctx.log(f"wrote {count} examples to {target}")
    return str(target)
