"""Opening image files from untrusted sources within bounds (:mod:`nodegraph.limits`).

A 17 KB PNG can declare 12000x12000 pixels (5.9 GB once decoded), and a PNG text chunk can inflate to
gigabytes. Pillow reads only the header on ``open``: the size is checked against the ``image_pixels`` limit
before any pixel is decoded, and Pillow's own text-chunk bounds follow the ``png_text_bytes`` limit (which
also lets a PNG saved with a large embedded workflow, past Pillow's 1 MB default, open again).
"""

from __future__ import annotations

import contextlib
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import nodegraph.limits as limits


def apply_pillow_limits() -> None:
    """Pillow's module-wide bounds, from ours (called before every open: a limit may have been raised)."""
    from PIL import Image, PngImagePlugin

    text = limits.get("png_text_bytes")
    PngImagePlugin.MAX_TEXT_CHUNK = text
    PngImagePlugin.MAX_TEXT_MEMORY = 4 * text
    # our own check (with the image's size in the message) comes first; Pillow's bomb error, raised at twice
    # MAX_IMAGE_PIXELS, is the second line of defence for other code that opens images
    Image.MAX_IMAGE_PIXELS = 4 * limits.get("image_pixels")


@contextlib.contextmanager
def open_image(path: Path | str) -> Iterator[Any]:
    """``PIL.Image.open(path)``, refused with :class:`~nodegraph.limits.LimitExceeded` when it declares more
    pixels than the limit (checked on the header, before decoding). Other errors are Pillow's own."""
    import warnings

    from PIL import Image

    apply_pillow_limits()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", Image.DecompressionBombWarning)  # the limit below decides
        try:
            opened = Image.open(path)
        except Image.DecompressionBombError as exc:  # Pillow's own check (at twice the limit) came first
            found = re.search(r"\((\d+) pixels\)", str(exc))
            raise limits.LimitExceeded(f"{Path(path).name} declares too many pixels", "image_pixels",
                                       int(found.group(1)) if found else "more than twice the limit") from None
        with opened:
            width, height = opened.size
            limits.check(f"{Path(path).name} is {width}x{height} pixels", "image_pixels", width * height)
            yield opened
