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


class ModelConfigError(ValueError):
    """The model folder config file cannot be used; the message names the file, the key and what is wrong."""


CONFIG_MAX_BYTES = 1 << 20  # a folder list; anything larger is not one


def read_config(path: Path) -> tuple[list[Path], dict[str, list[Path]]]:
    """(roots, {kind: folders}) from a model folder config file, checked key by key."""
    from nodegraph.safe_json import JsonInputError, loads_limited

    def bad(what: str) -> ModelConfigError:
        return ModelConfigError(
            f"the model folder config {path} {what}; expected "
            '{"roots": ["/path/to/models"], "folders": {"checkpoints": ["/path/to/checkpoints"]}} '
            "(fix or remove the file)")

    try:
        if path.stat().st_size > CONFIG_MAX_BYTES:
            raise bad(f"is larger than {CONFIG_MAX_BYTES} bytes")
        data = loads_limited(path.read_bytes(), str(path))
    except OSError as exc:
        raise ModelConfigError(f"cannot read the model folder config {path}: {exc.strerror or exc}") from None
    except JsonInputError as exc:
        raise bad(f"is not valid JSON ({exc})") from None
    if not isinstance(data, dict):
        raise bad(f"holds {type(data).__name__} at the top, not an object")
    unknown = sorted(set(data) - {"roots", "folders"})
    if unknown:
        raise bad(f"has unknown key(s) {', '.join(map(repr, unknown))}")
    roots = data.get("roots", [])
    if not isinstance(roots, list) or not all(isinstance(r, str) and r for r in roots):
        raise bad("has 'roots' that is not a list of folder paths")
    folders = data.get("folders", {})
    if not isinstance(folders, dict):
        raise bad("has 'folders' that is not an object")
    extra: dict[str, list[Path]] = {}
    for kind, paths in folders.items():
        if not isinstance(paths, list) or not all(isinstance(p, str) and p for p in paths):
            raise bad(f"has 'folders.{kind}' that is not a list of folder paths")
        extra[kind] = [Path(p).expanduser() for p in paths]
    return [Path(r).expanduser() for r in roots], extra


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
    trusted: list[Path] = field(default_factory=list)  # model files or folders the user named (absolute paths)
    confined: bool = True  # absolute paths only inside the folders above (off in the editor)

    @classmethod
    def from_environment(cls, extra_roots: list[str | Path] = (), lenient: bool = False) -> ModelFolders:
        """``extra_roots`` (``--models``), ``$NODEGRAPH_MODELS``, the config file's roots and folders, the user's
        root, the shipped demo models. A config file that cannot be used raises :class:`ModelConfigError`, or,
        when ``lenient`` (the editor), is reported on stderr and left out."""
        roots = [Path(r) for r in extra_roots]
        roots += [Path(p) for p in os.environ.get("NODEGRAPH_MODELS", "").split(os.pathsep) if p]
        extra: dict[str, list[Path]] = {}
        config = default_config_path()
        if config.is_file():
            try:
                config_roots, config_folders = read_config(config)
            except ModelConfigError as exc:
                if not lenient:
                    raise
                import sys

                print(f"nodegraph: {exc}; using the other model folders", file=sys.stderr)
                config_roots, config_folders = [], {}
            roots += config_roots
            for kind, paths in config_folders.items():
                extra.setdefault(kind, []).extend(paths)
        roots += [default_user_root(), BUILTIN_ROOT]
        return cls(roots, extra)

    def all_folders(self) -> list[Path]:
        """Every root and extra folder (where model files may be read from)."""
        return [*self.roots, *(p for paths in self.extra.values() for p in paths)]

    def folders(self, kind: str) -> list[Path]:
        """Every folder searched for ``kind``, in order of preference (existing or not)."""
        names = FOLDER_ALIASES.get(kind, (kind,))
        result = [root / name for root in self.roots for name in names]
        result += self.extra.get(kind, [])
        seen: set[Path] = set()
        return [p for p in result if not (p in seen or seen.add(p))]

    def list(self, kind: str, extensions: tuple[str, ...] = (), directories: bool = False) -> list[str]:
        """Names (relative, with '/') of the files of ``kind`` found, first occurrence wins. Where folders of
        two kinds are shared (ComfyUI keeps T2I-Adapters in ``controlnet``), what is certainly the other kind is
        left out (:mod:`nodegraph.model_probe`)."""
        from nodegraph.model_probe import offered_as

        names: dict[str, None] = {}
        for folder in self.folders(kind):
            if not folder.is_dir():
                continue
            for path in sorted(folder.rglob("*")):
                rel = path.relative_to(folder).as_posix()
                if path.is_file() and (not extensions or path.suffix.lower() in extensions):
                    if not any(part.startswith(".") for part in path.relative_to(folder).parts):
                        if offered_as(kind, path):
                            names.setdefault(rel, None)
                elif (directories and path.is_dir() and (path / "model_index.json").is_file()) or (
                    directories and path.is_dir() and (path / "config.json").is_file()
                ):
                    if offered_as(kind, path):
                        names.setdefault(rel, None)
        return list(names)

    def resolve(self, kind: str, name: str) -> Path:
        """The path of a named model file (or diffusers folder), checked to be a regular file or a folder.

        Relative names are looked up in the kind's folders and may not climb out of them. An absolute path must
        lie in one of the model folders or in ``trusted`` (paths the user named), unless ``confined`` is off
        (the editor): a workflow cannot point a loader at ``/dev/zero`` or at files outside the model folders.
        """
        from nodegraph.paths import PathRefused, exists, names_within

        if not name:
            raise ModelNotFound(kind, name, self.folders(kind))
        if "\0" in name:
            raise PathRefused(f"{kind} name {name!r} contains a NUL character", kind)
        candidate = Path(name).expanduser()
        if candidate.is_absolute():
            if self.confined and not any(names_within(candidate, root) for root in (*self.all_folders(), *self.trusted)):
                raise PathRefused(
                    f"{kind} file {name!r} lies outside the model folders; put it (or a link to it) into one of:\n"
                    + "\n".join(f"  {p}" for p in self.folders(kind))
                    + "\nor add its folder with --models DIR", kind)
            if not exists(candidate, kind, f"{kind} file"):
                raise ModelNotFound(kind, name, [candidate.parent])
            return self._readable(candidate, kind)
        if ".." in candidate.parts:
            raise ValueError(f"{kind} name {name!r} may not contain '..'")
        searched = self.folders(kind)
        denied: PathRefused | None = None
        for folder in searched:
            path = folder / candidate
            try:
                if exists(path, kind, f"{kind} file"):
                    return self._readable(path, kind)
            except PathRefused as exc:  # a folder that may not be searched: the file may still be in another
                denied = denied or exc
        if denied is not None:
            raise denied
        raise ModelNotFound(kind, name, searched)

    @staticmethod
    def _readable(path: Path, kind: str) -> Path:
        """``path`` if it is a regular file or a folder the process can read (never a device or a FIFO)."""
        from nodegraph.paths import check_readable

        check_readable(path, kind, f"{kind} folder" if path.is_dir() else f"{kind} file", folder=path.is_dir())
        return path  # as named (links not replaced): what the user sees in messages and the cache key


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
