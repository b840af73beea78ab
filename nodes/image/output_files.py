"""Where saved images go: a filename prefix that can never leave the output folder, and numbered file names
written atomically without ever replacing an existing file."""

from __future__ import annotations

import os
import re
from pathlib import Path, PurePosixPath, PureWindowsPath

from nodegraph.errors import NodeInputError

_COUNTER = re.compile(r"^(?P<base>.+)_(?P<n>\d{5,})\.png$")


def resolve_prefix(output_dir: Path, prefix: str, field: str = "filename_prefix") -> tuple[Path, str]:
    """The folder (inside ``output_dir``) and the file-name stem a prefix such as ``"portraits/cat"`` names.

    Absolute paths, drive letters and ``..`` are refused; so is a subfolder that a symbolic link points
    outside the output folder.
    """
    text = prefix.strip()
    if not text:
        raise NodeInputError("the filename prefix is empty; give a name such as 'nodegraph' or 'portraits/cat'", field)
    if "\0" in text:
        raise NodeInputError("the filename prefix contains a NUL character", field)
    if PurePosixPath(text).is_absolute() or PureWindowsPath(text).is_absolute() or PureWindowsPath(text).drive:
        raise NodeInputError(
            f"the filename prefix {prefix!r} is an absolute path; it must be relative to the output folder "
            f"{output_dir} (subfolders like 'portraits/cat' are fine)",
            field,
        )
    parts = [p for p in re.split(r"[\\/]+", text) if p not in ("", ".")]
    if ".." in parts:
        raise NodeInputError(f"the filename prefix {prefix!r} uses '..'; it may not leave the output folder {output_dir}", field)
    if not parts or text.endswith(("/", "\\")):
        raise NodeInputError(f"the filename prefix {prefix!r} names a folder but no file name (add one after the last '/')", field)
    root = output_dir.resolve()
    folder = root.joinpath(*parts[:-1]).resolve()
    if folder != root and root not in folder.parents:
        raise NodeInputError(f"the filename prefix {prefix!r} leads outside the output folder {root} (through a link)", field)
    return folder, parts[-1]


def next_number(folder: Path, stem: str) -> int:
    """One more than the highest ``<stem>_NNNNN.png`` already in ``folder`` (1 if there is none)."""
    highest = 0
    if folder.is_dir():
        for entry in os.scandir(folder):
            match = _COUNTER.match(entry.name)
            if match and match["base"] == stem:
                highest = max(highest, int(match["n"]))
    return highest + 1


def write_new_file(folder: Path, stem: str, data: bytes, start: int) -> Path:
    """Write ``data`` to the first free ``<stem>_NNNNN.png`` from number ``start`` on and return its path.

    The bytes go to a temporary file first, which is then hard-linked to its final name: the link fails if
    the name exists (another process got there first: try the next number), and a reader never sees half a
    file. File systems without hard links fall back to an exclusive create. The file gets the usual
    permissions of a new file (the umask's), not the temporary file's private ones.
    """
    from nodegraph.atomic_files import temp_file

    fd, tmp = temp_file(folder, stem)
    try:
        with os.fdopen(fd, "wb") as handle:
            handle.write(data)
            handle.flush()
            os.fsync(handle.fileno())
        number = start
        while True:
            target = folder / f"{stem}_{number:05d}.png"
            try:
                os.link(tmp, target)
                return target
            except FileExistsError:
                number += 1
            except OSError:
                return _write_exclusive(folder, stem, data, number)
    finally:
        tmp.unlink(missing_ok=True)


def _write_exclusive(folder: Path, stem: str, data: bytes, number: int) -> Path:
    while True:
        target = folder / f"{stem}_{number:05d}.png"
        try:
            with open(target, "xb") as handle:
                handle.write(data)
            return target
        except FileExistsError:
            number += 1
