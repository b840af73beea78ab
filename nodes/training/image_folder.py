"""The image folders of DreamBooth training: reading the instance and class images, and where generated class
images go.

Confinement:

- an instance folder is read, never written: it is found like every input path (beside the workflow file,
  then in the input folders; :mod:`nodegraph.paths`); only regular image files directly inside it are read (no
  recursion), and a link that leads out of the folder is skipped;
- a class folder given as a relative path lies in the run's output folder; the node creates it there if
  needed. An absolute class folder must already exist inside the output folder or an input folder. Generated
  images are written only into the class folder, under names of the form ``class_<prompt digest>_<index>.png``,
  atomically.

Generated class images are named after a digest of the class prompt, so images of another prompt are never
taken for this one, and they are left out of the folder's fingerprint: they are a deterministic function of
the node's inputs (model, class prompt, seed), so generating them must not change the node's cache key
(otherwise the second run of an unchanged workflow would train again).

Torch is imported inside the functions that need it; the fingerprint helpers stay light.
"""

from __future__ import annotations

import hashlib
import os
import re
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    import torch

IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".webp", ".bmp", ".tif", ".tiff")
MAX_IMAGES = 10_000  # a folder with more image files than this is surely the wrong folder
GENERATED = re.compile(r"^class_(?P<digest>[0-9a-f]{10})_(?P<index>\d{5})\.png$")


class FolderError(ValueError):
    """A folder that cannot serve as training images; the message says why and where."""


def prompt_digest(prompt: str) -> str:
    return hashlib.sha256(prompt.strip().encode("utf-8")).hexdigest()[:10]


def generated_name(prompt: str, index: int) -> str:
    return f"class_{prompt_digest(prompt)}_{index:05d}.png"


def instance_folder(path: str, resolve: Callable[[str], Path]) -> Path:
    """The instance image folder named by ``path``, found and checked by ``resolve`` (the run's read policy:
    beside the workflow file, then in the input folders; see :mod:`nodegraph.paths`)."""
    if not path.strip():
        raise FolderError("no folder given: set the folder that holds the 3-5 images of the subject")
    try:
        return resolve(path.strip())
    except ValueError as exc:  # PathRefused / NodeInputError
        raise FolderError(str(exc)) from None


def class_folder(path: str, output_dir: Path, default_name: str, writable: Iterable[Path] = ()) -> tuple[Path, bool]:
    """(class image folder, may it be created). Empty ``path``: ``<output>/dreambooth_class/<default_name>``;
    relative paths lie in the output folder and may not climb out of it. Generated images are written into the
    folder, so an absolute one must already exist inside the output folder or one of ``writable`` (the input
    folders), links followed: a workflow may not fill an arbitrary folder with files."""
    from nodegraph.paths import PathRefused, check_write

    output = Path(output_dir).expanduser().absolute()
    text = path.strip()
    if not text:
        return output / "dreambooth_class" / default_name, True
    folder = Path(text).expanduser()
    if folder.is_absolute():
        try:
            check_write(folder, [output, *writable], "class_images", "class image folder")
        except PathRefused as exc:
            raise FolderError(
                f"{exc}\nGenerated class images are written into this folder: give a folder inside the output "
                "folder (a relative path is created there) or an input folder") from None
        if not folder.is_dir():
            raise FolderError(
                f"class image folder {text!r} does not exist (an absolute folder must exist; a relative one is "
                f"created inside the output folder {str(output)!r})"
            )
        return folder, False
    if ".." in folder.parts:
        raise FolderError(f"class image folder {text!r} may not contain '..': it lies inside the output folder")
    target = output / folder
    try:
        check_write(target, [output], "class_images", "class image folder")  # a link in the output folder
    except PathRefused as exc:
        raise FolderError(str(exc)) from None
    return target, True


def _inside(path: Path, folder: Path) -> bool:
    try:
        path.resolve().relative_to(folder.resolve())
    except ValueError:
        return False
    return True


@dataclass
class Listing:
    images: list[Path] = field(default_factory=list)
    skipped: list[str] = field(default_factory=list)  # notes on files left out, for the user


def list_images(folder: Path) -> Listing:
    """Image files directly in ``folder`` (by suffix), sorted by name; hidden files and links that leave the
    folder are skipped (and noted)."""
    listing = Listing()
    if not folder.is_dir():
        return listing
    try:
        entries = sorted(folder.iterdir(), key=lambda p: p.name)
    except OSError as exc:
        raise FolderError(f"cannot list folder {str(folder)!r}: {exc}") from None
    for entry in entries:
        if entry.name.startswith(".") or entry.suffix.lower() not in IMAGE_SUFFIXES:
            continue
        if entry.is_symlink() and not _inside(entry, folder):
            listing.skipped.append(f"{entry.name} (a link to a file outside the folder)")
            continue
        if not entry.is_file():
            continue
        listing.images.append(entry)
        if len(listing.images) > MAX_IMAGES:
            raise FolderError(f"folder {str(folder)!r} holds more than {MAX_IMAGES} images: is it the right folder?")
    return listing


def folder_fingerprint(folder: Path | None, skip_generated: bool = False) -> Any:
    """What the cache knows of a folder's images: (name, size, modification time) of each; generated class
    images left out when ``skip_generated``. A missing folder fingerprints as such (the node reports it)."""
    if folder is None:
        return None
    if not folder.is_dir():  # as an empty folder: a class folder is created by the run, without changing the key
        return (str(folder.absolute()), [])
    out = []
    for image in list_images(folder).images:
        if skip_generated and GENERATED.match(image.name):
            continue
        stat = image.stat()
        out.append((image.name, stat.st_size, stat.st_mtime_ns))
    return (str(folder.absolute()), out)


@dataclass
class ClassPlan:
    """Which class images to use and which to generate."""

    existing: list[Path]  # the user's images first, then generated ones for this prompt, up to the number wanted
    missing: list[int]  # indices of the generated images still to make


def plan_class_images(folder: Path, prompt: str, wanted: int) -> ClassPlan:
    """Use the folder's own images first, then images generated earlier for this prompt; list the indices of
    the generated images still needed to reach ``wanted``."""
    digest = prompt_digest(prompt)
    own: list[Path] = []
    generated: dict[int, Path] = {}
    for image in list_images(folder).images:
        match = GENERATED.match(image.name)
        if match is None:
            own.append(image)
        elif match["digest"] == digest:
            generated[int(match["index"])] = image
    chosen = own[:wanted]
    need = wanted - len(chosen)
    missing: list[int] = []
    index = 0
    while need > 0:
        if index in generated:
            chosen.append(generated[index])
        else:
            missing.append(index)
        need -= 1
        index += 1
    return ClassPlan(chosen, missing)


@dataclass
class LoadedImages:
    images: torch.Tensor  # [N, resolution, resolution, 3] float32 in 0..1
    names: list[str]
    resized: list[str]  # "<name> (<w>x<h>)" for each image that was cropped and/or resized
    unreadable: list[str]  # "<name>: <why>" for files that could not be decoded (left out)


def load_images(paths: list[Path], resolution: int) -> LoadedImages:
    """Decode, turn upright (EXIF), drop alpha, centre-crop to a square and resize to ``resolution``."""
    import torch
    from PIL import Image, ImageOps, UnidentifiedImageError

    from nodegraph.limits import LimitExceeded
    from nodes.image.convert import pil_to_tensors
    from nodes.image.resize import center_crop_to_aspect, resize_nchw
    from nodes.image.safe_open import open_image

    tensors: list[torch.Tensor] = []
    names: list[str] = []
    resized: list[str] = []
    unreadable: list[str] = []
    for path in paths:
        try:
            with open_image(path) as opened:  # bounded by the image_pixels limit
                opened.load()
                picture = ImageOps.exif_transpose(opened).convert("RGB")
        except UnidentifiedImageError:
            unreadable.append(f"{path.name}: not an image Pillow can read")
            continue
        except (OSError, SyntaxError, ValueError, Image.DecompressionBombError, LimitExceeded) as exc:
            unreadable.append(f"{path.name}: {exc}")
            continue
        image, _ = pil_to_tensors(picture)
        x = image.movedim(-1, 1)  # [1, 3, H, W]
        if x.shape[-2:] != (resolution, resolution):
            resized.append(f"{path.name} ({x.shape[-1]}x{x.shape[-2]})")
            x = resize_nchw(center_crop_to_aspect(x, resolution, resolution), resolution, resolution, "bicubic")
        tensors.append(x.clamp(0.0, 1.0).movedim(1, -1))
        names.append(path.name)
    images = torch.cat(tensors) if tensors else torch.zeros(0, resolution, resolution, 3)
    return LoadedImages(images.contiguous(), names, resized, unreadable)


def save_png(image: torch.Tensor, path: Path, text: dict[str, str] | None = None) -> None:
    """Write one IMAGE row [H, W, 3] as a PNG, atomically (a temporary file renamed into place)."""
    from PIL import Image, PngImagePlugin

    from nodes.image.convert import to_uint8

    info = PngImagePlugin.PngInfo()
    for key, value in (text or {}).items():
        info.add_text(key, value)
    from nodegraph.atomic_files import temp_file

    picture = Image.fromarray(to_uint8(image[None])[0], "RGB")
    handle, temp = temp_file(path.parent, path.name)  # the usual permissions, not the temporary's private ones
    try:
        with os.fdopen(handle, "wb") as stream:
            picture.save(stream, format="PNG", pnginfo=info)
        os.replace(temp, path)
    except BaseException:
        Path(temp).unlink(missing_ok=True)
        raise
