"""Where model files live: a models root with one subfolder per kind, plus roots added by configuration.

A root holds ``checkpoints/``, ``vae/``, ``loras/``, ``controlnet/``, ``t2i_adapter/`` (and so on). So that
existing ComfyUI and A1111 installs work as they are, each kind also answers to their folder names
(``Stable-diffusion``, ``Lora``, ``ControlNet``, ...), and a JSON config file can add roots or single
folders::

    {"roots": ["/opt/ComfyUI/models"],
     "folders": {"checkpoints": ["/opt/stable-diffusion-webui/models/Stable-diffusion"]}}

The config is read from ``$NODEGRAPH_MODELS_CONFIG`` or ``~/.config/nodegraph/models.json``; extra roots
may also be given in ``$NODEGRAPH_MODELS`` (separated by ``os.pathsep``). The demo models shipped inside
the package form the last root, so a fresh install has something to run.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass, field
from pathlib import Path

# kind -> folder names that hold it, ours first, then ComfyUI's and A1111's
FOLDER_ALIASES: dict[str, tuple[str, ...]] = {
    "checkpoints": ("checkpoints", "Stable-diffusion", "diffusers"),
    "vae": ("vae", "VAE"),
    "loras": ("loras", "Lora", "LyCORIS"),
    "controlnet": ("controlnet", "ControlNet"),
    "t2i_adapter": ("t2i_adapter", "controlnet", "ControlNet"),
    "text_encoders": ("text_encoders", "clip"),
    "diffusion_models": ("diffusion_models", "unet"),
    "upscale_models": ("upscale_models", "ESRGAN"),
}

BUILTIN_ROOT = Path(__file__).resolve().parent.parent / "nodes" / "models"


class ModelNotFound(FileNotFoundError):
    def __init__(self, kind: str, name: str, searched: list[Path]) -> None:
        where = "\n".join(f"  {p}" for p in searched) or "  (no folders configured)"
        super().__init__(f"{kind} file {name!r} was not found. Searched:\n{where}")
        self.kind = kind
        self.name = name
        self.searched = searched


def default_config_path() -> Path:
    env = os.environ.get("NODEGRAPH_MODELS_CONFIG")
    if env:
        return Path(env)
    base = Path(os.environ.get("XDG_CONFIG_HOME") or Path.home() / ".config")
    return base / "nodegraph" / "models.json"


def default_user_root() -> Path:
    base = Path(os.environ.get("XDG_DATA_HOME") or Path.home() / ".local" / "share")
    return base / "nodegraph" / "models"


@dataclass
class ModelFolders:
    """An ordered list of roots plus per-kind extra folders."""

    roots: list[Path] = field(default_factory=list)
    extra: dict[str, list[Path]] = field(default_factory=dict)

    @classmethod
    def from_environment(cls, extra_roots: list[str | Path] = ()) -> ModelFolders:
        roots = [Path(r) for r in extra_roots]
        roots += [Path(p) for p in os.environ.get("NODEGRAPH_MODELS", "").split(os.pathsep) if p]
        extra: dict[str, list[Path]] = {}
        config = default_config_path()
        if config.is_file():
            try:
                data = json.loads(config.read_text(encoding="utf-8"))
            except (OSError, json.JSONDecodeError) as exc:
                raise ValueError(f"cannot read the model folder config {config}: {exc}") from None
            roots += [Path(p).expanduser() for p in data.get("roots", [])]
            for kind, paths in data.get("folders", {}).items():
                extra.setdefault(kind, []).extend(Path(p).expanduser() for p in paths)
        roots += [default_user_root(), BUILTIN_ROOT]
        return cls(roots, extra)

    def folders(self, kind: str) -> list[Path]:
        """Every folder searched for ``kind``, in order of preference (existing or not)."""
        names = FOLDER_ALIASES.get(kind, (kind,))
        result = [root / name for root in self.roots for name in names]
        result += self.extra.get(kind, [])
        seen: set[Path] = set()
        return [p for p in result if not (p in seen or seen.add(p))]

    def list(self, kind: str, extensions: tuple[str, ...] = (), directories: bool = False) -> list[str]:
        """Names (relative, with '/') of the files of ``kind`` found, first occurrence wins."""
        names: dict[str, None] = {}
        for folder in self.folders(kind):
            if not folder.is_dir():
                continue
            for path in sorted(folder.rglob("*")):
                rel = path.relative_to(folder).as_posix()
                if path.is_file() and (not extensions or path.suffix.lower() in extensions):
                    if not any(part.startswith(".") for part in path.relative_to(folder).parts):
                        names.setdefault(rel, None)
                elif (directories and path.is_dir() and (path / "model_index.json").is_file()) or (
                    directories and path.is_dir() and (path / "config.json").is_file()
                ):
                    names.setdefault(rel, None)
        return list(names)

    def resolve(self, kind: str, name: str) -> Path:
        """The path of a named model file. Absolute paths are taken as they are; relative names may not
        climb out of their folder."""
        if not name:
            raise ModelNotFound(kind, name, self.folders(kind))
        candidate = Path(name).expanduser()
        if candidate.is_absolute():
            if candidate.exists():
                return candidate
            raise ModelNotFound(kind, name, [candidate.parent])
        if ".." in candidate.parts:
            raise ValueError(f"{kind} name {name!r} may not contain '..'")
        searched = self.folders(kind)
        for folder in searched:
            path = folder / candidate
            if path.exists():
                return path
        raise ModelNotFound(kind, name, searched)


def fingerprint_path(path: Path) -> tuple[str, int, int]:
    """What the cache knows of a file or folder: its resolved path, size and latest modification time."""
    path = path.resolve()
    if path.is_dir():
        size, mtime = 0, 0
        for child in path.rglob("*"):
            if child.is_file():
                stat = child.stat()
                size += stat.st_size
                mtime = max(mtime, stat.st_mtime_ns)
        return (str(path), size, mtime)
    stat = path.stat()
    return (str(path), stat.st_size, stat.st_mtime_ns)
