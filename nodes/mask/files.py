"""Mask files: reading a mask chosen beside an image, and where the mask editor writes new ones.

A mask file is a picture whose white marks what to repaint: a greyscale PNG as the mask editor writes it
(0 keep .. 255 repaint, soft values allowed), or any image with transparency, where transparent means repaint
(ComfyUI's and Load Image's convention for alpha). An image without transparency is read by its brightness.
"""

from __future__ import annotations

from pathlib import Path

MASK_SUFFIX = "_mask"


def mask_array(pil: object) -> object:
    """``[H, W]`` float32 numpy array in 0..1 from a Pillow image (see the module docstring for the convention).
    numpy only, so the editor reads masks without torch."""
    import numpy as np

    bands = pil.getbands()
    if "A" in bands or (pil.mode == "P" and "transparency" in pil.info):
        alpha = np.asarray(pil.convert("RGBA"))[..., 3]
        if alpha.min() < 255:
            return 1.0 - alpha.astype(np.float32) / 255.0
    if pil.mode.startswith("I;16"):
        return np.asarray(pil, dtype=np.float32) / 65535.0
    return np.asarray(pil.convert("L")).astype(np.float32) / 255.0


def open_upright(path: str | Path) -> object:
    """The image at ``path`` turned upright by its EXIF orientation (as Load Image reads images); raises
    ValueError with a message for the user when it cannot be read."""
    from PIL import Image, ImageOps, UnidentifiedImageError

    file = Path(path)
    if not file.is_file():
        raise ValueError(f"file not found: {path}")
    try:
        with Image.open(file) as opened:
            opened.load()
            return ImageOps.exif_transpose(opened)
    except UnidentifiedImageError:
        raise ValueError(f"{path} is not an image Pillow can read") from None
    except (OSError, SyntaxError) as exc:
        raise ValueError(f"{path} could not be decoded as an image: {exc}") from None


def read_mask_file(path: str) -> object:
    """A mask file as a MASK tensor ``[1, H, W]``; raises ValueError with a message for the user."""
    import numpy as np
    import torch

    if not Path(path).is_file():
        raise ValueError(f"mask file not found: {path}")
    return torch.from_numpy(np.ascontiguousarray(mask_array(open_upright(path))))[None]


def read_mask_for_image(ctx: object, mask_path: str, height: int, width: int) -> object:
    """Load Image's ``mask_path``: found as its image is (beside the workflow, then the input folders), opened
    within the image-size limit, fitted to the image (resized with a note, or an error when the aspect differs).
    Errors name the ``mask_path`` field."""
    import numpy as np
    import torch
    from PIL import ImageOps, UnidentifiedImageError

    from nodegraph.errors import NodeInputError
    from nodegraph.limits import LimitExceeded
    from nodes.image.safe_open import open_image
    from nodes.mask.ops import fit_mask

    file = ctx.input_path(mask_path, "mask_path", "mask file")
    try:
        with open_image(file) as opened:
            opened.load()
            upright = ImageOps.exif_transpose(opened)
    except LimitExceeded as exc:
        raise NodeInputError(str(exc), "mask_path") from None
    except UnidentifiedImageError:
        raise NodeInputError(f"{mask_path} is not an image Pillow can read (a mask is a PNG, white = repaint)",
                             "mask_path") from None
    except (OSError, SyntaxError, ValueError) as exc:
        raise NodeInputError(f"{mask_path} could not be decoded as an image: {exc}", "mask_path") from None
    mask = torch.from_numpy(np.ascontiguousarray(mask_array(upright)))[None]
    mask, note = fit_mask(mask, height, width, "mask_path")
    if note:
        ctx.log(note)
    return mask


def new_mask_path(image_path: Path, fallback_folder: Path | None = None) -> Path:
    """A file name for a new mask of ``image_path`` that no file has yet: ``<stem>_mask_0001.png`` beside the
    image (or in ``fallback_folder`` when the image's folder cannot be written). Existing files, the image's
    included, are never reused, so every saved workflow keeps pointing at the mask it was run with."""
    import os

    folder = image_path.parent
    if fallback_folder is not None and not os.access(folder, os.W_OK):
        folder = fallback_folder
    stem = image_path.stem
    for number in range(1, 100000):
        candidate = folder / f"{stem}{MASK_SUFFIX}_{number:04d}.png"
        if not candidate.exists():
            return candidate
    raise ValueError(f"no free mask file name left for {image_path.name} in {folder}")


def save_new_mask(mask_u8: object, image_path: Path, fallback_folder: Path | None = None) -> Path:
    """Write an 8-bit greyscale mask (a ``[H, W]`` uint8 array) for ``image_path`` as a new PNG (see
    :func:`new_mask_path`) and return its path. Atomic and never replacing anything: the PNG is written to a
    temporary file, then hard-linked to the free name (which fails if another process took the name meanwhile;
    the next free name is tried)."""
    import os
    import tempfile

    from PIL import Image

    target = new_mask_path(image_path, fallback_folder)
    target.parent.mkdir(parents=True, exist_ok=True)
    fd, temp = tempfile.mkstemp(dir=target.parent, prefix=".mask-", suffix=".png")
    try:
        with os.fdopen(fd, "wb") as handle:
            Image.fromarray(mask_u8, "L").save(handle, format="PNG")
        os.chmod(temp, 0o666 & ~_umask())  # mkstemp makes 0600; a saved file gets the usual permissions
        for _ in range(1000):
            try:
                os.link(temp, target)
                return target
            except FileExistsError:
                target = new_mask_path(image_path, fallback_folder)
            except OSError:  # a file system without hard links: rename (the name was free a moment ago)
                os.replace(temp, target)
                return target
        raise ValueError(f"could not find a free mask file name beside {image_path.name}")
    finally:
        Path(temp).unlink(missing_ok=True)


def _umask() -> int:
    import os

    current = os.umask(0)
    os.umask(current)
    return current
