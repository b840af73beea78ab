"""Linking the session's tiny FLUX / SD3 folders (tests/nodes/conftest.py) into a module's models root."""

from __future__ import annotations

from pathlib import Path


def link(folder: Path, root: Path, name: str | None = None) -> Path:
    """``folder`` under ``root/checkpoints`` (a symlink: the session's folder is shared, never written to)."""
    target = root / "checkpoints" / (name or folder.name)
    target.parent.mkdir(parents=True, exist_ok=True)
    target.symlink_to(folder, target_is_directory=True)
    return target
