"""Control-image preprocessors that need no downloaded model: Canny edges, threshold, and scribble-style line
art. Edges and lines come out white on black, as ControlNet and T2I-Adapter models were trained on them."""

from __future__ import annotations

from typing import Any

from nodegraph.context import NodeContext
from nodegraph.errors import NodeInputError
from nodegraph.node import Input, Output, node
from nodegraph.params import Bool, Float, Int
from nodegraph.types import IMAGE, MASK


@node(
    "core.CannyEdges", name="Canny Edges", category="image/preprocessors",
    description=(
        "Canny edge detection (OpenCV): Sobel gradients, non-maximum suppression and hysteresis between the "
        "low and high thresholds. The same call the ControlNet canny annotator and diffusers' examples make."
    ),
    inputs=[Input("images", IMAGE)],
    params=[
        Int("low_threshold", 100, min=0, max=255, help="Gradient strength below which nothing is an edge."),
        Int("high_threshold", 200, min=0, max=255,
            help="Gradient strength above which a pixel is surely an edge; weaker ones count only when "
                 "connected to a sure edge."),
        Bool("l2_gradient", False, help="Measure gradient strength exactly (L2) instead of |gx| + |gy|."),
    ],
    outputs=[Output("images", IMAGE)],
)
def canny_edges(ctx: NodeContext, images: Any, low_threshold: int, high_threshold: int, l2_gradient: bool) -> Any:
    import cv2
    import numpy as np
    import torch

    from nodes.image.convert import check_image, to_uint8

    images = check_image(images, "images")
    if low_threshold > high_threshold:
        raise NodeInputError(
            f"the low threshold ({low_threshold}) is above the high threshold ({high_threshold})", "low_threshold"
        )
    frames = []
    for index, frame in enumerate(to_uint8(images)):
        ctx.progress(index, images.shape[0])
        edges = cv2.Canny(np.ascontiguousarray(frame), low_threshold, high_threshold, L2gradient=l2_gradient)
        frames.append(edges)
    grey = torch.from_numpy(np.stack(frames).astype(np.float32) / 255.0)
    return grey[..., None].repeat(1, 1, 1, 3).contiguous()


@node(
    "core.ImageThreshold", name="Threshold", category="image/preprocessors",
    description="Black and white by brightness: white where the luma is above the threshold (or below, inverted).",
    inputs=[Input("images", IMAGE)],
    params=[
        Float("threshold", 0.5, min=0.0, max=1.0, slider=True, help="Luma (ITU-R 601 weights) that splits black from white."),
        Bool("invert", False, help="White where the image is darker than the threshold instead."),
    ],
    outputs=[Output("images", IMAGE), Output("mask", MASK, help="The same result as a mask (1 = white).")],
)
def image_threshold(ctx: NodeContext, images: Any, threshold: float, invert: bool) -> dict[str, Any]:
    from nodes.image.convert import check_image, grey_to_image, luminance

    luma = luminance(check_image(images, "images"))
    mask = ((luma <= threshold) if invert else (luma > threshold)).float()
    return {"images": grey_to_image(mask), "mask": mask}


@node(
    "core.LineArt", name="Line Art (scribble)", category="image/preprocessors",
    description=(
        "Scribble-style line extraction by difference of Gaussians: a pixel becomes a white line where it is "
        "darker than its blurred surroundings by more than the threshold. Suits scribble ControlNets."
    ),
    inputs=[Input("images", IMAGE)],
    params=[
        Float("threshold", 0.06, min=0.0, max=1.0, step=0.005,
              help="How much darker than its surroundings a pixel must be to count as line (0..1 brightness)."),
        Float("radius", 5.0, min=0.5, max=64.0, step=0.5,
              help="Blur of the surroundings in pixels: larger finds broader, bolder strokes."),
    ],
    outputs=[Output("images", IMAGE)],
)
def line_art(ctx: NodeContext, images: Any, threshold: float, radius: float) -> Any:
    import cv2
    import numpy as np
    import torch

    from nodes.image.convert import check_image, grey_to_image, luminance

    grey = luminance(check_image(images, "images")).detach().cpu().numpy().astype(np.float32)
    lines = []
    for index, frame in enumerate(grey):
        ctx.progress(index, grey.shape[0])
        # A light blur removes pixel noise; the wide one estimates the local background the strokes sit on.
        fine = cv2.GaussianBlur(frame, (0, 0), 0.5)
        wide = cv2.GaussianBlur(frame, (0, 0), radius)
        lines.append((wide - fine) > threshold)
    return grey_to_image(torch.from_numpy(np.stack(lines).astype(np.float32)))
