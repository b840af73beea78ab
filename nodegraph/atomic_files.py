"""Writing files so that nothing the user saved is lost or damaged.

- **Atomic**: bytes go to a hidden temporary file beside the target (``.<name>.<random>.tmp``), are flushed to
  disk, then renamed over the target: a crash leaves the old file or the new one, never half of either.
- **Through links**: saving to a path that is a symbolic link replaces the file the link points to and keeps
  the link (an editor's "save" must not turn a link into a copy).
- **Usual permissions**: a new file gets what the user's umask allows (0644 under the common 022), not the
  0600 of a temporary file; an overwritten file keeps its own mode.
- **No litter**: a temporary file older than an hour in the same folder, left by a process that was killed
  mid-write, is removed the next time that folder is written to.
"""

from __future__ import annotations

import os
import re
import stat
import tempfile
import time
from pathlib import Path

STALE_SECONDS = 3600  # older temporaries belong to no live write (a save takes seconds)
# .<name>.<random>.tmp as tempfile.mkstemp makes them (8 characters of [a-z0-9_]), and the checkpoint writer's
_TEMP = re.compile(r"^\..+\.[a-z0-9_]{8}\.tmp$|^\.checkpoint\.[0-9a-f]{32}\.partial$")


def current_umask() -> int:
    """The process's umask, read without changing it (``os.umask`` would, briefly, for every thread)."""
    try:
        with open("/proc/self/status", encoding="ascii") as status:
            for line in status:
                if line.startswith("Umask:"):
                    return int(line.split()[1], 8)
    except (OSError, ValueError):
        pass
    mask = os.umask(0o022)  # no /proc (macOS): the classic read-and-restore
    os.umask(mask)
    return mask


def new_file_mode() -> int:
    """The mode a newly created regular file gets under the current umask (0644 under 022)."""
    return 0o666 & ~current_umask()


def write_target(path: Path) -> Path:
    """The file a write to ``path`` should replace: the final target of a symbolic link, else ``path``."""
    return Path(os.path.realpath(path)) if path.is_symlink() else path


def clean_stale_temps(folder: Path, max_age: float = STALE_SECONDS) -> list[Path]:
    """Remove this module's temporary files older than ``max_age`` seconds from ``folder``; returns them."""
    removed: list[Path] = []
    now = time.time()
    try:
        entries = list(os.scandir(folder))
    except OSError:
        return removed
    for entry in entries:
        if not _TEMP.match(entry.name):
            continue
        try:
            info = entry.stat(follow_symlinks=False)
            if stat.S_ISREG(info.st_mode) and now - info.st_mtime > max_age:
                os.unlink(entry.path)
                removed.append(Path(entry.path))
        except OSError:
            continue  # gone already, or not ours to remove
    return removed


def temp_file(folder: Path, name: str) -> tuple[int, Path]:
    """(open descriptor, path) of a new hidden temporary file in ``folder`` with the usual permissions."""
    folder.mkdir(parents=True, exist_ok=True)
    clean_stale_temps(folder)
    fd, temp = tempfile.mkstemp(dir=folder, prefix=f".{name}.", suffix=".tmp")
    try:
        os.fchmod(fd, new_file_mode())
    except OSError:
        pass  # file systems without permissions
    return fd, Path(temp)


def atomic_write_bytes(path: str | os.PathLike[str], data: bytes) -> Path:
    """Replace (or create) ``path`` with ``data`` atomically, through a link, keeping an existing file's mode.
    Returns the path of the file written (the link's target when ``path`` is a link)."""
    target = write_target(Path(path))
    mode = None
    try:
        mode = stat.S_IMODE(target.stat().st_mode)
    except OSError:
        pass  # a new file: the umask decides
    fd, temp = temp_file(target.parent, target.name)
    try:
        with os.fdopen(fd, "wb") as handle:
            handle.write(data)
            handle.flush()
            os.fsync(handle.fileno())
            if mode is not None:
                os.fchmod(handle.fileno(), mode)
        os.replace(temp, target)
    except BaseException:
        temp.unlink(missing_ok=True)
        raise
    return target
