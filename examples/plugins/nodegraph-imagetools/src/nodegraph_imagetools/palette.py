"""PALETTE, the plugin's own socket type: an ordered set of colours, and the nodes that make and use one."""

from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from nodegraph.context import NodeContext
from nodegraph.errors import NodeInputError
from nodegraph.node import Input, Output, node
from nodegraph.params import Float, Int, Seed, String
from nodegraph.types import IMAGE, define_type

# A new socket type: only PALETTE outputs can feed PALETTE inputs (the editor colours them orange).
PALETTE = define_type("PALETTE", (235, 150, 60), "An ordered set of RGB colours, each channel 0..1.")

_HEX = re.compile(r"#?([0-9a-fA-F]{6})\b")


@dataclass(frozen=True, repr=False)
class Palette:
    """The value carried by PALETTE links. Frozen: a consumer cannot change what a cached producer returned."""

    colors: tuple[tuple[float, float, float], ...]

    def hex(self) -> list[str]:
        return ["#" + "".join(f"{round(c * 255):02x}" for c in rgb) for rgb in self.colors]

    def cache_nbytes(self) -> int:
        return 24 * len(self.colors)

    def __repr__(self) -> str:  # what a Show node displays
        return "Palette(" + " ".join(self.hex()) + ")"


def parse_hex_colors(text: str, field: str) -> Palette:
    found = _HEX.findall(text)
    leftovers = _HEX.sub("", text).replace(",", " ").split()
    if leftovers or not found:
        raise NodeInputError(
            f"expected colours written as #rrggbb separated by spaces, commas or lines, found {(leftovers or [text])[0]!r}",
            field,
        )
    return Palette(tuple(tuple(int(h[i : i + 2], 16) / 255.0 for i in (0, 2, 4)) for h in found))


@node(
    "imagetools.PaletteFromHex", version=1, name="Palette from Hex", category="image/imagetools/palette",
    description="A palette typed as hex colours, e.g. '#1b2631 #f4d03f #c0392b'.",
    params=[String("colors", "#000000 #ffffff", help="Colours as #rrggbb, separated by spaces or commas.")],
    outputs=[Output("palette", PALETTE)],
)
def palette_from_hex(ctx: NodeContext, colors: str) -> Palette:
    return parse_hex_colors(colors, "colors")


def _palette_file_fingerprint(params: dict[str, Any], ctx: NodeContext) -> str:
    # The file is an input the cache cannot see: hash its bytes, so editing the file re-runs the node.
    path = Path(params["path"]).expanduser()
    try:
        return hashlib.sha256(path.read_bytes()).hexdigest()
    except OSError:
        return "missing"  # the node itself reports the missing file, naming the field


@node(
    "imagetools.LoadPalette", version=1, name="Load Palette", category="image/imagetools/palette",
    description="Reads a palette from a text file of #rrggbb colours (one or more per line; ';' starts a comment).",
    params=[String("path", "", help="The palette file (.hex or .txt).")],
    outputs=[Output("palette", PALETTE)],
    fingerprint=_palette_file_fingerprint,
)
def load_palette(ctx: NodeContext, path: str) -> Palette:
    file = Path(path).expanduser()
    if not path or not file.is_file():
        raise NodeInputError(f"palette file {path!r} does not exist", "path")
    lines = [line.split(";")[0].strip() for line in file.read_text(encoding="utf-8").splitlines()]
    return parse_hex_colors(" ".join(line for line in lines if line), "path")


@node(
    "imagetools.ExtractPalette", version=1, name="Extract Palette", category="image/imagetools/palette",
    description="Finds the dominant colours of the first image of a batch (k-means on a sample of its pixels).",
    inputs=[Input("image", IMAGE)],
    params=[
        Int("colors", 5, min=1, max=32, help="How many colours to find."),
        Int("iterations", 10, min=1, max=100, help="k-means rounds; more is steadier and slower."),
        Seed("seed", 0, help="Chooses the starting colours and the pixel sample."),
    ],
    outputs=[Output("palette", PALETTE)],
)
def extract_palette(ctx: NodeContext, image: Any, colors: int, iterations: int, seed: int) -> Palette:
    import torch

    from .images import check_image

    pixels = check_image(image)[0].reshape(-1, 3)
    generator = torch.Generator().manual_seed(seed % 2**63)
    if pixels.shape[0] > 4096:
        pixels = pixels[torch.randperm(pixels.shape[0], generator=generator)[:4096]]
    # k-means++ start: each new centre is drawn far from the ones chosen so far.
    centres = pixels[torch.randint(pixels.shape[0], (1,), generator=generator)]
    while centres.shape[0] < min(colors, pixels.shape[0]):
        distance = torch.cdist(pixels, centres).min(dim=1).values ** 2
        if float(distance.sum()) == 0.0:
            break  # fewer distinct colours than asked for
        centres = torch.cat([centres, pixels[torch.multinomial(distance, 1, generator=generator)]])
    for step in range(iterations):
        nearest = torch.cdist(pixels, centres).argmin(dim=1)
        for k in range(centres.shape[0]):
            members = pixels[nearest == k]
            if members.shape[0]:
                centres[k] = members.mean(dim=0)
        ctx.progress(step + 1, iterations)  # also where a Stop request takes effect
    # Most common colour first, so the palette reads the same from run to run.
    counts = torch.bincount(torch.cdist(pixels, centres).argmin(dim=1), minlength=centres.shape[0])
    order = torch.argsort(counts, descending=True, stable=True)
    return Palette(tuple(tuple(float(c) for c in centres[i]) for i in order))


@node(
    "imagetools.ApplyPalette", version=1, name="Apply Palette", category="image/imagetools/palette",
    description="Moves every pixel towards the nearest colour of the palette (posterise to a palette).",
    inputs=[Input("image", IMAGE), Input("palette", PALETTE)],
    params=[Float("strength", 1.0, min=0.0, max=1.0, step=0.05, help="1 snaps to the palette; 0 leaves the image as it is.")],
    outputs=[Output("image", IMAGE)],
)
def apply_palette(ctx: NodeContext, image: Any, palette: Palette, strength: float) -> Any:
    import torch

    from .images import check_image

    images = check_image(image)
    colours = torch.tensor(palette.colors, dtype=images.dtype)
    flat = images.reshape(-1, 3)
    snapped = colours[torch.cdist(flat, colours).argmin(dim=1)].reshape(images.shape)
    return images + strength * (snapped - images)


@node(
    "imagetools.PaletteSwatches", version=1, name="Palette Swatches", category="image/imagetools/palette",
    description="Draws a palette as a row of colour squares, to look at it or save it.",
    inputs=[Input("palette", PALETTE)],
    params=[Int("size", 32, min=4, max=512, help="Side of each square in pixels.")],
    outputs=[Output("image", IMAGE)],
)
def palette_swatches(ctx: NodeContext, palette: Palette, size: int) -> Any:
    import torch

    colours = torch.tensor(palette.colors, dtype=torch.float32)  # [K, 3]
    row = colours.repeat_interleave(size, dim=0)  # [K*size, 3]
    return row.unsqueeze(0).expand(size, -1, -1).unsqueeze(0).contiguous()
