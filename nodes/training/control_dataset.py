"""Training data of Train ControlNet / Train T2I-Adapter: (image, conditioning image, caption) triples.

Two layouts of a dataset folder (docs/train_control.md shows both):

1. **Paired by file name**::

       my_dataset/
         images/        0001.png  0002.jpg ...
         conditioning/  0001.png  0002.png ...   (the same file name stem as the image)
         captions/      0001.txt  ...             (optional; a caption may also sit next to its image,
                                                   images/0001.txt; no caption = the empty caption)

   The conditioning folder may also be called ``conditioning_images``, ``conditions`` or ``control``; the
   image folder ``image`` or ``target``.

2. **A JSON lines index**: ``metadata.jsonl`` in the folder (or the path of any ``.jsonl`` file), one object a
   line with diffusers' column names::

       {"image": "photos/a.jpg", "conditioning_image": "edges/a.png", "text": "a red circle"}

   Paths are relative to the index's folder and may not leave it.

Only regular files are read (no links out of the dataset folder, no devices or pipes); images are decoded by
Pillow, turned upright (EXIF), centre-cropped to a square and resized to the training resolution (both the
image and its condition, as diffusers' training scripts do). Captions are UTF-8 text, at most
:data:`MAX_CAPTION` characters.

The trainer reads any :class:`ControlDataset`: :class:`FolderDataset` (the node's), or
:class:`TensorDataset` (images already in memory: the demo trainer's procedural shapes).
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Protocol

if TYPE_CHECKING:
    import torch

from nodes.training.image_folder import IMAGE_SUFFIXES

INDEX_NAME = "metadata.jsonl"
IMAGE_DIRS = ("images", "image", "target")
CONDITION_DIRS = ("conditioning", "conditioning_images", "conditions", "control")
CAPTION_DIRS = ("captions", "text")
MAX_EXAMPLES = 1_000_000
MAX_CAPTION = 10_000  # characters
MAX_INDEX_BYTES = 512 * 1024 * 1024
MAX_PIXELS = 64 * 1024 * 1024  # per image: larger ones are refused, not decoded (a decompression bomb guard)


class DatasetError(ValueError):
    """A dataset that cannot be read; the message says where and why, and what the layout should be."""


@dataclass(frozen=True)
class Example:
    name: str
    image: Path
    condition: Path
    caption: str


@dataclass
class Listing:
    root: Path
    layout: str  # "folders" | "index"
    examples: list[Example] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)  # what was skipped and why, for the user


class ControlDataset(Protocol):
    """What the trainer reads: a fixed number of examples, each (image in -1..1, condition in 0..1) at a
    square resolution, and its caption."""

    def __len__(self) -> int: ...

    def caption(self, index: int) -> str: ...

    def pixels(self, index: int, resolution: int) -> tuple[torch.Tensor, torch.Tensor]:
        """(image [3, R, R] in -1..1, condition [3, R, R] in 0..1)."""
        ...


# ----------------------------------------------------------------------------------------------- listing


def _inside(path: Path, root: Path) -> bool:
    try:
        path.resolve().relative_to(root.resolve())
    except (ValueError, OSError):
        return False
    return True


def _regular(path: Path, root: Path) -> str | None:
    """Why ``path`` may not be read (None when it may)."""
    if not _inside(path, root):
        return "leads outside the dataset folder"
    if not path.exists():
        return "does not exist"
    if not path.is_file():
        return "is not a regular file"
    return None


def _first_dir(root: Path, names: tuple[str, ...]) -> Path | None:
    return next((root / n for n in names if (root / n).is_dir()), None)


def _read_caption(path: Path) -> str:
    text = path.read_text(encoding="utf-8", errors="replace")
    if len(text) > MAX_CAPTION:
        raise DatasetError(f"caption {path.name} is {len(text)} characters long (at most {MAX_CAPTION})")
    return " ".join(text.split())  # one line: newlines and runs of spaces become single spaces


def _by_stem(folder: Path) -> dict[str, Path]:
    out: dict[str, Path] = {}
    for entry in sorted(folder.iterdir(), key=lambda p: p.name):
        if entry.name.startswith(".") or entry.suffix.lower() not in IMAGE_SUFFIXES:
            continue
        out.setdefault(entry.stem, entry)
    return out


def _list_folders(root: Path) -> Listing:
    images_dir = _first_dir(root, IMAGE_DIRS)
    conditions_dir = _first_dir(root, CONDITION_DIRS)
    if images_dir is None or conditions_dir is None:
        missing = "an image folder (" + "/".join(IMAGE_DIRS) + ")" if images_dir is None else \
            "a conditioning folder (" + "/".join(CONDITION_DIRS) + ")"
        raise DatasetError(
            f"{str(root)!r} has no {INDEX_NAME} and no {missing}: a dataset folder holds images/ and "
            f"conditioning/ with files paired by name (images/0001.png + conditioning/0001.png), or a "
            f"{INDEX_NAME} index (see docs/train_control.md)")
    captions_dir = _first_dir(root, CAPTION_DIRS)
    listing = Listing(root, "folders")
    images, conditions = _by_stem(images_dir), _by_stem(conditions_dir)
    for stem, image in images.items():
        condition = conditions.get(stem)
        if condition is None:
            listing.notes.append(f"{images_dir.name}/{image.name}: no {conditions_dir.name}/{stem}.* (left out)")
            continue
        problem = _regular(image, root) or _regular(condition, root)
        if problem:
            listing.notes.append(f"{stem}: {problem} (left out)")
            continue
        caption = ""
        for candidate in ([captions_dir / f"{stem}.txt"] if captions_dir else []) + [images_dir / f"{stem}.txt"]:
            if candidate.is_file() and _regular(candidate, root) is None:
                caption = _read_caption(candidate)
                break
        listing.examples.append(Example(stem, image, condition, caption))
        if len(listing.examples) > MAX_EXAMPLES:
            raise DatasetError(f"{str(root)!r} holds more than {MAX_EXAMPLES} examples")
    unpaired = sorted(set(conditions) - set(images))
    if unpaired:
        listing.notes.append(f"{len(unpaired)} conditioning image(s) without an image, e.g. {unpaired[0]} (left out)")
    return listing


def _list_index(index: Path) -> Listing:
    root = index.parent
    if index.stat().st_size > MAX_INDEX_BYTES:
        raise DatasetError(f"{index.name} is larger than {MAX_INDEX_BYTES // 2**20} MiB")
    listing = Listing(root, "index")
    with index.open(encoding="utf-8") as stream:
        for number, line in enumerate(stream, 1):
            if not line.strip():
                continue
            where = f"{index.name} line {number}"
            try:
                row = json.loads(line)
            except (json.JSONDecodeError, RecursionError) as exc:
                raise DatasetError(f"{where} is not JSON: {exc}") from None
            if not isinstance(row, dict):
                raise DatasetError(f"{where}: expected an object like "
                                   '{"image": ..., "conditioning_image": ..., "text": ...}, found ' + type(row).__name__)
            paths = []
            for key in ("image", "conditioning_image"):
                value = row.get(key)
                if not isinstance(value, str) or not value:
                    raise DatasetError(f"{where}: {key!r} must be a file path relative to {str(root)!r}, found {value!r}")
                path = root / value
                if Path(value).is_absolute() or ".." in Path(value).parts:
                    raise DatasetError(f"{where}: {key!r} {value!r} must be relative to the index's folder, "
                                       "without '..'")
                paths.append(path)
            text = row.get("text", "")
            if not isinstance(text, str):
                raise DatasetError(f"{where}: 'text' must be a string, found {type(text).__name__}")
            if len(text) > MAX_CAPTION:
                raise DatasetError(f"{where}: the caption is {len(text)} characters long (at most {MAX_CAPTION})")
            problem = _regular(paths[0], root) or _regular(paths[1], root)
            if problem:
                listing.notes.append(f"{where}: {problem} (left out)")
                continue
            listing.examples.append(Example(f"line {number}", paths[0], paths[1], " ".join(text.split())))
            if len(listing.examples) > MAX_EXAMPLES:
                raise DatasetError(f"{index.name} lists more than {MAX_EXAMPLES} examples")
    return listing


def list_dataset(path: str | Path) -> Listing:
    """The examples of a dataset folder (either layout) or of a ``.jsonl`` index file."""
    text = str(path).strip()
    if not text:
        raise DatasetError("no dataset given: set the folder that holds images/ and conditioning/ (or a .jsonl index)")
    target = Path(text).expanduser()
    if not target.exists():
        raise DatasetError(f"dataset {str(target.absolute())!r} does not exist")
    if target.is_file():
        if target.suffix.lower() != ".jsonl":
            raise DatasetError(f"{target.name} is a file but not a .jsonl index; give the dataset folder instead")
        listing = _list_index(target.resolve())
    elif (target / INDEX_NAME).is_file():
        listing = _list_index((target / INDEX_NAME).resolve())
    else:
        listing = _list_folders(target.resolve())
    if not listing.examples:
        why = f" ({listing.notes[0]})" if listing.notes else ""
        raise DatasetError(f"dataset {str(target)!r} holds no usable (image, conditioning image) pairs{why}")
    return listing


def fingerprint(path: str | Path) -> object:
    """What the cache knows of a dataset: its files' names, sizes and modification times (a changed caption or
    image trains again)."""
    try:
        listing = list_dataset(path)
    except (DatasetError, OSError):
        return ("unreadable", str(path))
    out = []
    for example in listing.examples:
        stats = [example.image.stat(), example.condition.stat()]
        out.append((example.name, example.caption, *[(s.st_size, s.st_mtime_ns) for s in stats]))
    return (str(listing.root), listing.layout, out)


# ------------------------------------------------------------------------------------------------ pixels


def load_square(path: Path, resolution: int) -> torch.Tensor:
    """An image file as [3, R, R] in 0..1: upright, RGB, centre-cropped to a square, resized (bilinear)."""
    from PIL import Image, ImageOps, UnidentifiedImageError

    from nodes.image.convert import pil_to_tensors
    from nodes.image.resize import center_crop_to_aspect, resize_nchw

    try:
        with Image.open(path) as opened:
            if opened.width * opened.height > MAX_PIXELS:
                raise DatasetError(f"{path.name} is {opened.width}x{opened.height}: more than {MAX_PIXELS} pixels")
            opened.load()
            picture = ImageOps.exif_transpose(opened).convert("RGB")
    except UnidentifiedImageError:
        raise DatasetError(f"{path.name} is not an image Pillow can read") from None
    except (OSError, SyntaxError, ValueError, Image.DecompressionBombError) as exc:
        if isinstance(exc, DatasetError):
            raise
        raise DatasetError(f"{path.name} could not be decoded: {exc}") from None
    image, _ = pil_to_tensors(picture)
    x = image.movedim(-1, 1)
    if x.shape[-2:] != (resolution, resolution):
        x = resize_nchw(center_crop_to_aspect(x, resolution, resolution), resolution, resolution, "bilinear")
    return x[0].clamp(0.0, 1.0).contiguous()


class FolderDataset:
    """A listed dataset folder; images are read from disk when the trainer asks (it caches what it encodes)."""

    def __init__(self, listing: Listing) -> None:
        self.listing = listing
        self.examples = listing.examples

    def __len__(self) -> int:
        return len(self.examples)

    def caption(self, index: int) -> str:
        return self.examples[index].caption

    def pixels(self, index: int, resolution: int) -> tuple[torch.Tensor, torch.Tensor]:
        example = self.examples[index]
        return load_square(example.image, resolution) * 2.0 - 1.0, load_square(example.condition, resolution)


class TensorDataset:
    """Examples already in memory: images and conditions uint8 [N, H, W, 3] (or float 0..1), captions."""

    def __init__(self, images: torch.Tensor, conditions: torch.Tensor, captions: list[str]) -> None:
        if not (len(images) == len(conditions) == len(captions)):
            raise ValueError(f"{len(images)} images, {len(conditions)} conditions and {len(captions)} captions")
        self.images, self.conditions, self.captions = images, conditions, list(captions)

    def __len__(self) -> int:
        return len(self.captions)

    def caption(self, index: int) -> str:
        return self.captions[index]

    @staticmethod
    def _square(x: torch.Tensor, resolution: int) -> torch.Tensor:
        from nodes.image.resize import center_crop_to_aspect, resize_nchw

        x = x.float() / 255.0 if not x.is_floating_point() else x.float()
        x = x.permute(2, 0, 1)[None]
        if x.shape[-2:] != (resolution, resolution):
            x = resize_nchw(center_crop_to_aspect(x, resolution, resolution), resolution, resolution, "bilinear")
        return x[0].clamp(0.0, 1.0)

    def pixels(self, index: int, resolution: int) -> tuple[torch.Tensor, torch.Tensor]:
        return (self._square(self.images[index], resolution) * 2.0 - 1.0,
                self._square(self.conditions[index], resolution))
