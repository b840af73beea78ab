"""``nodegraph run --previews DIR``: every live preview a sampler sends, written as a PNG for the command line.

Files are named ``<node>_<NNNNN>.png`` in the order they arrive (numbers continue across ``--repeat`` runs and
never replace an existing file), so ``ls DIR`` plays the sampling back. Previews are small (a latent has one
cell per 8 pixels); they are enlarged by a whole factor, without smoothing, to at least
:data:`MIN_EDGE` pixels so that a viewer shows them at a useful size.
"""

from __future__ import annotations

import os
import re
import sys
from pathlib import Path
from typing import Any

from nodegraph.events import Event, NodeProgress

MIN_EDGE = 256


class PreviewWriter:
    """Wraps a reporter: passes every event on, and writes the previews among them into ``folder``."""

    def __init__(self, folder: str | os.PathLike[str], inner: Any) -> None:
        self.folder = Path(folder)
        self.inner = inner
        self.written: list[Path] = []
        self._numbers: dict[str, int] = {}

    def __call__(self, event: Event) -> None:
        if isinstance(event, NodeProgress) and event.preview is not None and self.folder is not None:
            try:
                self._write(event.node, event.preview)
            except OSError as exc:  # a preview must never fail the sampler: say so once and stop writing
                print(f"nodegraph: cannot write previews to {self.folder}: {exc.strerror or exc}; no more previews",
                      file=sys.stderr)
                self.folder = None  # type: ignore[assignment]
        self.inner(event)

    def __getattr__(self, name: str) -> Any:  # close(), summary() and the rest of the reporter
        return getattr(self.inner, name)

    def _write(self, node: str, preview: Any) -> None:
        import numpy as np
        from PIL import Image

        array = np.asarray(preview, dtype=np.float32)
        if array.ndim == 4:
            array = array[0]
        pixels = (np.clip(array[..., :3], 0.0, 1.0) * 255.0 + 0.5).astype(np.uint8)
        image = Image.fromarray(pixels)
        scale = max(1, -(-MIN_EDGE // max(image.size)))
        if scale > 1:
            image = image.resize((image.width * scale, image.height * scale), Image.Resampling.NEAREST)
        self.folder.mkdir(parents=True, exist_ok=True)
        stem = re.sub(r"[^A-Za-z0-9_.-]", "_", node)
        number = self._numbers.get(stem, 0)
        while True:
            number += 1
            target = self.folder / f"{stem}_{number:05d}.png"
            try:
                with open(target, "xb") as handle:  # never replaces a file (another run's previews, say)
                    image.save(handle, format="PNG", compress_level=1)
                break
            except FileExistsError:
                continue
        self._numbers[stem] = number
        self.written.append(target)
