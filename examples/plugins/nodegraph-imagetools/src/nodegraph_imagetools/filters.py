"""Image adjustments: a test pattern to start from, Gaussian blur, sharpen and colour balance."""

from __future__ import annotations

from typing import Any

from nodegraph.context import NodeContext
from nodegraph.node import Input, Output, node
from nodegraph.params import Bool, Choice, Float, Int
from nodegraph.types import IMAGE


@node(
    "imagetools.TestPattern", version=1, name="Test Pattern", category="image/imagetools",
    description="A synthetic image to try filters on: a colour gradient, a checkerboard or colour bars.",
    params=[
        Int("width", 64, min=8, max=4096, step=8, help="Width in pixels."),
        Int("height", 64, min=8, max=4096, step=8, help="Height in pixels."),
        Choice("pattern", choices=("gradient", "checker", "bars"), help="What to draw."),
        Int("cell", 8, min=1, max=512, help="Checker square size in pixels."),
        Int("batch", 1, min=1, max=64, help="How many copies in the batch."),
    ],
    outputs=[Output("image", IMAGE)],
)
def test_pattern(ctx: NodeContext, width: int, height: int, pattern: str, cell: int, batch: int) -> Any:
    import torch

    ys = torch.linspace(0.0, 1.0, height).view(height, 1).expand(height, width)
    xs = torch.linspace(0.0, 1.0, width).view(1, width).expand(height, width)
    if pattern == "gradient":
        image = torch.stack([xs, ys, 1.0 - xs], dim=-1)
    elif pattern == "checker":
        rows = torch.arange(height).view(height, 1) // cell
        cols = torch.arange(width).view(1, width) // cell
        on = ((rows + cols) % 2).float()
        image = on.unsqueeze(-1).expand(height, width, 3)
    else:
        bars = torch.tensor([[1, 1, 1], [1, 1, 0], [0, 1, 1], [0, 1, 0], [1, 0, 1], [1, 0, 0], [0, 0, 1]], dtype=torch.float32)
        index = (torch.arange(width) * len(bars) // width).clamp(max=len(bars) - 1)
        image = bars[index].view(1, width, 3).expand(height, width, 3)
    return image.unsqueeze(0).repeat(batch, 1, 1, 1).contiguous().float()


@node(
    "imagetools.GaussianBlur", version=1, name="Gaussian Blur", category="image/imagetools",
    description="Softens an image with a Gaussian of the given standard deviation (in pixels).",
    inputs=[Input("image", IMAGE, help="The images to blur.")],
    params=[Float("sigma", 2.0, min=0.0, max=100.0, step=0.1, help="Standard deviation in pixels; 0 leaves the image as it is.")],
    outputs=[Output("image", IMAGE)],
)
def gaussian_blur(ctx: NodeContext, image: Any, sigma: float) -> Any:
    import torch

    from .images import check_image, gaussian_blur

    images = check_image(image)
    blurred = []
    for i in range(images.shape[0]):  # one image at a time: progress and Stop work on big batches
        blurred.append(gaussian_blur(images[i], sigma))
        ctx.progress(i + 1, images.shape[0])
    return torch.stack(blurred).clamp(0.0, 1.0)


@node(
    "imagetools.Sharpen", version=1, name="Sharpen", category="image/imagetools",
    description="Unsharp mask: adds back the difference between the image and a blurred copy.",
    inputs=[Input("image", IMAGE)],
    params=[
        Float("amount", 1.0, min=0.0, max=5.0, step=0.05, help="How much detail to add; 0 leaves the image as it is."),
        Float("radius", 1.0, min=0.1, max=20.0, step=0.1, help="Size of the detail to boost (the blur's sigma, in pixels)."),
    ],
    outputs=[Output("image", IMAGE)],
)
def sharpen(ctx: NodeContext, image: Any, amount: float, radius: float) -> Any:
    from .images import check_image, gaussian_blur

    images = check_image(image)
    detail = images - gaussian_blur(images, radius)
    return (images + amount * detail).clamp(0.0, 1.0)


def _migrate_color_balance(old_version: int, params: dict[str, Any]) -> dict[str, Any]:
    """Version 1 used Photoshop-style sliders from -100 to 100; version 2 uses red/green/blue shifts in -1..1."""
    if old_version == 1:
        renamed = {"cyan_red": "red", "magenta_green": "green", "yellow_blue": "blue"}
        params = {renamed.get(k, k): (v / 100.0 if k in renamed else v) for k, v in params.items()}
    return params


@node(
    "imagetools.ColorBalance", version=2, name="Colour Balance", category="image/imagetools",
    description="Shifts red, green and blue in the shadows, the midtones or the highlights.",
    inputs=[Input("image", IMAGE)],
    params=[
        Choice("tones", choices=("midtones", "shadows", "highlights"), help="Which brightness range the shift acts on."),
        Float("red", 0.0, min=-1.0, max=1.0, step=0.01, help="Towards red (positive) or cyan (negative)."),
        Float("green", 0.0, min=-1.0, max=1.0, step=0.01, help="Towards green (positive) or magenta (negative)."),
        Float("blue", 0.0, min=-1.0, max=1.0, step=0.01, help="Towards blue (positive) or yellow (negative)."),
        Bool("preserve_luminosity", True, help="Keep each pixel's brightness, change only its colour."),
    ],
    outputs=[Output("image", IMAGE)],
    migrate=_migrate_color_balance,
)
def color_balance(ctx: NodeContext, image: Any, tones: str, red: float, green: float, blue: float, preserve_luminosity: bool) -> Any:
    import torch

    from .images import check_image, luminance

    images = check_image(image)
    luma = luminance(images)
    # Smooth weights over brightness that sum to one: (1-l)^2 + 2l(1-l) + l^2 = 1.
    weight = {"shadows": (1 - luma) ** 2, "midtones": 2 * luma * (1 - luma), "highlights": luma**2}[tones]
    shift = torch.tensor([red, green, blue], dtype=images.dtype)
    out = images + weight * shift
    if preserve_luminosity:
        out = out + (luma - luminance(out))
    return out.clamp(0.0, 1.0)
