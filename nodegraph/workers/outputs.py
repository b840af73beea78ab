"""Commit a finished attempt's files from its staging folder to the final output (or temp) folder.

Files keep their subfolder and name unless that name is taken, in which case the number in
``<stem>_NNNNN.<ext>`` moves on to the next free one (``<stem>_1.<ext>`` for names without a number).
An existing file is never replaced: each file appears under its final name in one step (a hard link of a
complete file), so a reader never sees half a file and two committers never write the same name.
"""

from __future__ import annotations

import os
import re
import shutil
import tempfile
from dataclasses import dataclass
from pathlib import Path, PurePosixPath

from nodegraph.workers.spec import StagedFile

_NUMBERED = re.compile(r"^(?P<stem>.*?)_(?P<n>\d{5,})(?P<tail>_?)$")


@dataclass(frozen=True)
class CommittedFile:
    """A file in its final place. ``kind`` is ``output`` or ``temp``; ``subfolder`` uses ``/``."""

    node: str
    kind: str
    filename: str
    subfolder: str
    path: str

    def to_json(self) -> dict[str, str]:
        return {"node": self.node, "type": self.kind, "filename": self.filename, "subfolder": self.subfolder}


def commit_files(files: list[StagedFile], roots: dict[str, Path]) -> list[CommittedFile]:
    """Move or write each staged file under ``roots[kind]``; returns where each one landed."""
    committed = []
    for staged in files:
        root = roots[staged.kind]
        rel = PurePosixPath(staged.relpath)
        if rel.is_absolute() or ".." in rel.parts or not rel.name:
            raise ValueError(f"a staged file has an unsafe name: {staged.relpath!r}")
        folder = root.joinpath(*rel.parts[:-1])
        target = _place(staged, folder, rel.name)
        subfolder = target.parent.relative_to(root).as_posix()
        committed.append(CommittedFile(staged.node, staged.kind, target.name, "" if subfolder == "." else subfolder, str(target)))
    return committed


def _place(staged: StagedFile, folder: Path, name: str) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    # The staged file (ours to consume) becomes the final one by a hard link; bytes, or a file on another
    # disk, are first written completely to a hidden temporary file beside the target.
    source = Path(staged.path) if staged.path else None
    if source is None or not _same_device(source, folder):
        data = staged.data if staged.data is not None else Path(staged.path or "").read_bytes()
        if source is not None:
            source.unlink(missing_ok=True)
        source = _write_temp(folder, name, data)
    try:
        for candidate in _candidates(folder, name):
            try:
                os.link(source, candidate)
                return candidate
            except FileExistsError:
                continue
            except OSError:  # no hard links here (some network or FAT file systems): exclusive copy
                try:
                    with open(source, "rb") as src, open(candidate, "xb") as dst:
                        shutil.copyfileobj(src, dst)
                    return candidate
                except FileExistsError:
                    continue
        raise AssertionError("unreachable")
    finally:
        source.unlink(missing_ok=True)


def _candidates(folder: Path, name: str):  # type: ignore[no-untyped-def]
    """The name itself, then numbered alternatives starting past the highest number in use."""
    yield folder / name
    stem, dot, ext = name.rpartition(".")
    if not dot:
        stem, ext = name, ""
    suffix = f".{ext}" if dot else ""
    match = _NUMBERED.match(stem)
    base, width, tail = (match["stem"], len(match["n"]), match["tail"]) if match else (stem, 0, "")
    highest = 0
    pattern = re.compile(re.escape(base) + r"_(\d+)" + re.escape(tail) + re.escape(suffix) + "$")
    for entry in os.scandir(folder):
        found = pattern.match(entry.name)
        if found:
            highest = max(highest, int(found[1]))
    number = highest + 1
    while True:
        yield folder / f"{base}_{number:0{width}d}{tail}{suffix}"
        number += 1


def _same_device(path: Path, folder: Path) -> bool:
    try:
        return os.stat(path).st_dev == os.stat(folder).st_dev
    except OSError:
        return False


def _write_temp(folder: Path, name: str, data: bytes) -> Path:
    fd, tmp = tempfile.mkstemp(dir=folder, prefix=f".{name}.", suffix=".tmp")
    with os.fdopen(fd, "wb") as handle:
        handle.write(data)
        handle.flush()
        os.fsync(handle.fileno())
    os.chmod(tmp, 0o666 & ~_UMASK)  # mkstemp makes 0600; saved images get the usual permissions
    return Path(tmp)


def _read_umask() -> int:
    # Read once at import: os.umask() can only be read by setting it, which races with other threads.
    try:
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith("Umask:"):
                return int(line.split()[1], 8)
    except (OSError, ValueError):
        pass
    mask = os.umask(0o022)
    os.umask(mask)
    return mask


_UMASK = _read_umask()
