"""Load Image, Save Image and Preview Image: the nodes where pictures enter and leave a workflow."""

from __future__ import annotations

import json
import os
import re
import tempfile
from pathlib import Path
from typing import Any

from nodegraph.context import NodeContext
from nodegraph.errors import NodeInputError
from nodegraph.node import Input, Output, node
from nodegraph.params import ImageFile, String
from nodegraph.png_meta import WORKFLOW_KEY
from nodegraph.types import IMAGE, INT, MASK, STRING

PARAMS_KEY = "nodegraph.params"
A1111_KEY = "parameters"
PREVIEW_FOLDER = "nodegraph-preview"


@node(
    "core.LoadImage", name="Load Image", category="image",
    description=(
        "Reads a PNG, JPEG or WebP file (any format Pillow reads), turned upright by its EXIF orientation. "
        "The mask output is 1 where the image is transparent and 0 where it is opaque (ComfyUI's "
        "convention, so a transparent area marks what to repaint); images without alpha give an empty mask. "
        "A mask file chosen beside the image (the mask editor writes one) replaces that mask."
    ),
    params=[
        ImageFile("path", "", help="The image file to read. A relative path is looked up beside the workflow "
                                   "file, then in the input folders."),
        ImageFile("mask_path", "", help=(
            "Optional mask file for this image: white (or transparent) = repaint. The editor's mask editor "
            "(right-click the node: Edit Mask…) draws one and sets it here. Empty: the image's own transparency.")),
    ],
    outputs=[Output("image", IMAGE), Output("mask", MASK), Output("width", INT), Output("height", INT)],
)
def load_image(ctx: NodeContext, path: str, mask_path: str = "") -> dict[str, Any]:
    from PIL import ImageOps, UnidentifiedImageError

    from nodegraph.limits import LimitExceeded
    from nodes.image.convert import pil_to_tensors
    from nodes.image.safe_open import open_image

    # beside the workflow first, then the input folders; a regular file, never a device or a FIFO
    file = ctx.input_path(path, "path", "image file")
    try:
        with open_image(file) as opened:  # its size checked against the image_pixels limit before decoding
            frames = getattr(opened, "n_frames", 1)
            opened.load()
            upright = ImageOps.exif_transpose(opened)
    except LimitExceeded as exc:
        raise NodeInputError(str(exc), "path") from None
    except UnidentifiedImageError:
        raise NodeInputError(f"{path} is not an image Pillow can read (expected PNG, JPEG, WebP, ...)", "path") from None
    except (OSError, SyntaxError, ValueError) as exc:
        raise NodeInputError(f"{path} could not be decoded as an image: {exc}", "path") from None
    if frames > 1:
        ctx.warn(f"{file.name} has {frames} frames; only the first is used")
    image, mask = pil_to_tensors(upright)
    if mask_path:
        from nodes.mask.files import read_mask_for_image

        mask = read_mask_for_image(ctx, mask_path, int(image.shape[1]), int(image.shape[2]))
    return {"image": image, "mask": mask, "width": int(image.shape[2]), "height": int(image.shape[1])}


def _output_folder_fingerprint(params: dict[str, Any], ctx: NodeContext) -> str:
    # The output folder is an external input: saving to another folder must write again, not hit the cache.
    return str(Path(ctx.output_dir).resolve())


@node(
    "core.SaveImage", name="Save Image", category="image", output_node=True,
    description=(
        "Saves each image as a PNG in the output folder, named <prefix>_00001.png, <prefix>_00002.png, ... "
        "Existing files are never replaced. The PNG carries the workflow (open the image to reopen the "
        "workflow), every node's parameters, and an A1111-style 'parameters' text."
    ),
    inputs=[Input("images", IMAGE, help="The images to save.")],
    params=[
        String(
            "filename_prefix", "nodegraph",
            help="File name start, relative to the output folder; may name subfolders ('portraits/cat').",
        )
    ],
    outputs=[Output("paths", STRING, help="The files written, one per line.")],
    fingerprint=_output_folder_fingerprint,
)
def save_image(ctx: NodeContext, images: Any, filename_prefix: str) -> str:
    from nodes.image.convert import check_image, tensor_to_pils
    from nodes.image.image_record import chosen_indices, record_chunks, upstream_seeds
    from nodes.image.output_files import next_number, resolve_prefix, write_new_file

    images = check_image(images, "images")
    folder, stem = resolve_prefix(Path(ctx.output_dir), filename_prefix)
    text = _metadata(ctx, width=int(images.shape[2]), height=int(images.shape[1]))
    count = int(images.shape[0])
    indices = chosen_indices(ctx, count)  # all, or the one image `nodegraph run image.png` reproduces
    seeds = upstream_seeds(ctx) if text else {}
    number = next_number(folder, stem)
    written: list[Path] = []
    for done, index in enumerate(indices):
        ctx.progress(done, len(indices))
        (pil,) = tensor_to_pils(images[index : index + 1])
        chunks = record_chunks(ctx, text, index, count, seeds)  # each file records its own batch index and seed
        target = write_new_file(folder, stem, _png_bytes(pil, chunks), number)
        number = int(target.stem.rsplit("_", 1)[-1]) + 1
        written.append(target)
        ctx.saved_file(target)
    ctx.progress(len(indices), len(indices))
    return "\n".join(str(p) for p in written)


def _metadata(ctx: NodeContext, width: int, height: int) -> dict[str, str]:
    """The text chunks: workflow JSON, resolved parameters and A1111 parameters (when there is a sampler)."""
    from nodegraph.installed import default_registry
    from nodes.image.metadata import a1111_parameters, resolved_params

    doc = ctx.workflow
    if not isinstance(doc, dict):
        return {}
    registry = default_registry()
    chunks = {WORKFLOW_KEY: json.dumps(doc, ensure_ascii=False)}
    params = resolved_params(doc, registry)
    params[ctx.node_id] = dict(ctx.params)
    chunks[PARAMS_KEY] = json.dumps(params, ensure_ascii=False, default=repr)
    try:
        parameters = a1111_parameters(doc, registry, ctx.node_id, width, height)
    except Exception as exc:  # best effort: an odd workflow must not stop the image from being saved
        ctx.warn(f"could not write the A1111 parameters text: {exc}")
        parameters = None
    if parameters:
        chunks[A1111_KEY] = parameters
    return chunks


def _png_bytes(pil: Any, text: dict[str, str]) -> bytes:
    import io

    from PIL.PngImagePlugin import PngInfo

    info = PngInfo()
    for key, value in text.items():
        if key == A1111_KEY:
            info.add_text(key, value)  # plain tEXt where possible: what A1111-reading tools expect
        else:
            info.add_itxt(key, value, zip=True)  # UTF-8 and compressed: workflows can be long and non-Latin
    buffer = io.BytesIO()
    pil.save(buffer, format="PNG", pnginfo=info, compress_level=4)
    return buffer.getvalue()


@node(
    "core.PreviewImage", name="Preview Image", category="image", output_node=True,
    description=(
        "Shows the images in the editor without saving them to the output folder. Temporary PNG copies go to "
        "the system's temporary folder (nodegraph-preview) so viewers outside the editor can open them."
    ),
    inputs=[Input("images", IMAGE, help="The images to show.")],
    outputs=[Output("images", IMAGE), Output("paths", STRING, help="The temporary files, one per line.")],
)
def preview_image(ctx: NodeContext, images: Any) -> dict[str, Any]:
    from nodes.image.convert import check_image, tensor_to_pils

    images = check_image(images, "images")
    folder = Path(tempfile.gettempdir()) / PREVIEW_FOLDER
    folder.mkdir(parents=True, exist_ok=True)
    paths = []
    for pil in tensor_to_pils(images):
        fd, name = tempfile.mkstemp(dir=folder, prefix=re.sub(r"[^A-Za-z0-9_.-]", "_", ctx.node_id) + "_", suffix=".png")
        with os.fdopen(fd, "wb") as handle:
            pil.save(handle, format="PNG", compress_level=1)
        paths.append(name)
        ctx.saved_file(name)
    return {"images": images, "paths": "\n".join(paths)}
