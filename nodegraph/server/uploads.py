"""Uploaded input images: size-limited, checked to be an image Pillow can read, stored under a sanitised name
inside the input folder, never over a different existing file."""

from __future__ import annotations

import hashlib
import io
import os
import tempfile
from dataclasses import dataclass
from pathlib import Path

from nodegraph.server.confine import inside, safe_name

FORMATS = {"PNG": ".png", "JPEG": ".jpg", "WEBP": ".webp", "BMP": ".bmp", "GIF": ".gif", "TIFF": ".tiff"}
_EXTENSIONS = {".png": "PNG", ".jpg": "JPEG", ".jpeg": "JPEG", ".webp": "WEBP", ".bmp": "BMP", ".gif": "GIF",
               ".tif": "TIFF", ".tiff": "TIFF"}


class UploadError(ValueError):
    def __init__(self, message: str, status: int = 400) -> None:
        super().__init__(message)
        self.status = status


@dataclass(frozen=True)
class Stored:
    name: str  # the file name as stored
    subfolder: str  # "" or a relative folder, with "/"
    path: Path

    @property
    def reference(self) -> str:
        """What a workflow names the file by (a Load Image's ``path``, ComfyUI's ``image`` input)."""
        return f"{self.subfolder}/{self.name}" if self.subfolder else self.name


def check_image(data: bytes, max_pixels: int) -> str:
    """The image's format name (``PNG``, ``JPEG``, ...), or :class:`UploadError` saying why it is refused."""
    from PIL import Image, UnidentifiedImageError

    if not data:
        raise UploadError("the uploaded file is empty")
    try:
        with Image.open(io.BytesIO(data)) as image:
            width, height = image.size
            if width * height > max_pixels:
                raise UploadError(f"the image has {width}x{height} pixels; this server accepts at most {max_pixels}", 413)
            kind = image.format or ""
            image.verify()
    except UploadError:
        raise
    except (UnidentifiedImageError, OSError, SyntaxError, ValueError, Image.DecompressionBombError) as exc:
        raise UploadError(f"the uploaded file is not an image this server reads (PNG, JPEG, WebP, BMP, GIF, TIFF): {exc}") from None
    if kind not in FORMATS:
        raise UploadError(f"images of format {kind or 'unknown'} are not accepted; send PNG, JPEG, WebP, BMP, GIF or TIFF")
    return kind


def store_upload(input_dir: Path, filename: str, data: bytes, *, subfolder: str = "", overwrite: bool = False,
                 max_pixels: int = 64_000_000) -> Stored:
    kind = check_image(data, max_pixels)
    folder = inside(input_dir, subfolder) if subfolder else input_dir.resolve()
    if folder is None:
        raise UploadError(f"the subfolder {subfolder!r} would leave the input folder")
    name = safe_name(filename or "upload")
    stem, dot, ext = name.rpartition(".")
    if not dot or _EXTENSIONS.get("." + ext.lower()) != kind:
        name = (stem if dot else name) + FORMATS[kind]  # the name says what the file is
    folder.mkdir(parents=True, exist_ok=True)
    target = _place(folder, name, data, overwrite)
    rel = target.parent.relative_to(input_dir.resolve()).as_posix()
    return Stored(target.name, "" if rel == "." else rel, target)


def _place(folder: Path, name: str, data: bytes, overwrite: bool) -> Path:
    fd, tmp = tempfile.mkstemp(dir=folder, prefix=".upload.", suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as handle:
            handle.write(data)
            handle.flush()
            os.fsync(handle.fileno())
        os.chmod(tmp, 0o644)
        stem, dot, ext = name.rpartition(".")
        digest = hashlib.sha256(data).digest()
        for i in range(10_000):
            target = folder / (name if i == 0 else f"{stem} ({i}){dot}{ext}")
            if overwrite and i == 0:
                os.replace(tmp, target)
                return target
            try:
                os.link(tmp, target)
                return target
            except FileExistsError:
                if target.is_file() and hashlib.sha256(target.read_bytes()).digest() == digest:
                    return target  # the same image again: reuse it (as ComfyUI does)
        raise UploadError("too many files of that name in the input folder", 409)
    finally:
        Path(tmp).unlink(missing_ok=True)
