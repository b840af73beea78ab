"""Where a workflow may read and write files. Every path a node reads or writes is resolved and checked here.

A workflow is untrusted input (it arrives inside shared PNGs, and over HTTP), so its paths are confined:

- **reading** an input file (an image, a mask, a folder of training images): a relative path is looked up in
  the workflow file's own folder first, then in the input folders (``--input DIR``, ``$NODEGRAPH_INPUT``, the
  user's ``~/.local/share/nodegraph/input``, and last the example inputs shipped with the product); an absolute
  path must lie in one of those folders, the model folders or the output folder, or be one the user named
  (on the command line, or by choosing it in the editor). Names are judged as written (``..`` cannot climb
  out); links the user made inside those folders are followed. Model files are resolved by
  :meth:`nodegraph.model_folders.ModelFolders.resolve` under the same rule;
- **what** is read must be a regular file (or, where a folder is asked for, a directory): never a device, a
  FIFO or a socket, which could hang a run or feed it endless data (``/dev/zero``, ``/proc/...``);
- **writing**: only inside the output folder, the user's model folders (trained LoRAs) or an input folder,
  checked after links are followed (:func:`check_write`).

Nodes call :func:`resolve_read` (through ``ctx``: :meth:`nodegraph.context.NodeContext.input_path`) and
:func:`check_write`; validation calls :func:`input_problems` so a missing file is reported before anything
loads.
"""

from __future__ import annotations

import os
import stat
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path

from nodegraph.errors import NodeInputError

INPUT_ENV = "NODEGRAPH_INPUT"
# The input files that come with a source checkout (the demo workflows' images): the last input folder.
BUILTIN_INPUT = Path(__file__).resolve().parent.parent / "examples"


class PathRefused(NodeInputError):
    """A path a workflow may not use, or that names something other than a readable file; says why."""


def user_input_dir() -> Path:
    base = Path(os.environ.get("XDG_DATA_HOME") or Path.home() / ".local" / "share")
    return base / "nodegraph" / "input"


def default_input_dirs(extra: Iterable[str | os.PathLike[str]] = ()) -> tuple[Path, ...]:
    """The input folders, in order: ``extra`` (``--input``), ``$NODEGRAPH_INPUT``, the user's, the shipped one."""
    dirs = [Path(p).expanduser() for p in extra]
    dirs += [Path(p).expanduser() for p in os.environ.get(INPUT_ENV, "").split(os.pathsep) if p.strip()]
    dirs += [user_input_dir(), BUILTIN_INPUT]
    unique: list[Path] = []
    for d in dirs:
        if d not in unique:
            unique.append(d)
    return tuple(unique)


@dataclass(frozen=True)
class PathPolicy:
    """What one run may read: relative paths are looked up in ``workflow_dir`` then ``input_dirs``; absolute
    ones must lie in one of ``roots()`` (those folders plus ``extra_roots``: the model and output folders) or be
    in ``trusted`` (files or folders the user named). ``confined=False`` (the editor, where the person at the
    screen chose every path) accepts any absolute path; what is read must still be a regular file."""

    workflow_dir: Path | None = None
    input_dirs: tuple[Path, ...] = field(default_factory=default_input_dirs)
    trusted: tuple[Path, ...] = ()
    extra_roots: tuple[Path, ...] = ()
    confined: bool = True

    def with_roots(self, *roots: Path) -> PathPolicy:
        """The same policy, also allowing absolute paths inside ``roots``."""
        import dataclasses

        return dataclasses.replace(self, extra_roots=(*self.extra_roots, *roots))

    def roots(self) -> list[Path]:
        found = [self.workflow_dir] if self.workflow_dir is not None else []
        return [*found, *self.input_dirs, *self.extra_roots, *self.trusted]

    def allows(self, path: Path) -> bool:
        """Is ``path`` inside an allowed folder, or a trusted path itself? Judged on the name (``..`` resolved,
        links not followed): the workflow controls names, the user's own links are the user's choice."""
        return not self.confined or any(names_within(path, root) for root in self.roots())


def names_within(path: Path, root: Path) -> bool:
    """``path`` is ``root`` or lies inside it by name (``..`` and ``.`` resolved lexically, links not followed)."""
    name, base = os.path.abspath(path), os.path.abspath(Path(root).expanduser())
    return name == base or name.startswith(base.rstrip(os.sep) + os.sep)


def within(path: Path, root: Path) -> bool:
    """``path`` is ``root`` or lies inside it, after both are resolved (links followed)."""
    try:
        resolved, base = path.resolve(), root.expanduser().resolve()
    except (OSError, RuntimeError):  # a link loop
        return False
    return resolved == base or base in resolved.parents


def describe_kind(mode: int) -> str:
    if stat.S_ISDIR(mode):
        return "a folder"
    if stat.S_ISCHR(mode) or stat.S_ISBLK(mode):
        return "a device"
    if stat.S_ISFIFO(mode):
        return "a FIFO (named pipe)"
    if stat.S_ISSOCK(mode):
        return "a socket"
    return "not a regular file"


def exists(path: Path, field: str, what: str = "file") -> bool:
    """Does ``path`` exist (a dangling link counts)? A folder on the way that may not be searched is
    :class:`PathRefused` "permission denied", not "does not exist"."""
    try:
        os.lstat(path)
    except FileNotFoundError:
        return False
    except NotADirectoryError:
        return False
    except PermissionError:
        raise PathRefused(f"{what} {str(path)!r} cannot be reached: permission denied on a folder on its way "
                          "(check the folders' permissions)", field) from None
    except OSError:
        return False
    return True


def check_readable(path: Path, field: str, what: str = "file", folder: bool = False) -> Path:
    """``path`` resolved, if it is a regular file (a directory when ``folder``) the process may read; else
    :class:`PathRefused` saying what it is. Files under ``/proc`` and ``/sys`` are refused: their size lies."""
    try:
        resolved = path.resolve(strict=True)
        info = resolved.stat()
    except FileNotFoundError:
        raise PathRefused(f"{what} {str(path)!r} does not exist", field) from None
    except PermissionError:
        raise PathRefused(f"{what} {str(path)!r} cannot be read: permission denied", field) from None
    except (OSError, RuntimeError) as exc:
        raise PathRefused(f"{what} {str(path)!r} cannot be opened: {getattr(exc, 'strerror', None) or exc}", field) from None
    wanted = stat.S_ISDIR(info.st_mode) if folder else stat.S_ISREG(info.st_mode)
    if not wanted:
        found = "a file" if stat.S_ISREG(info.st_mode) else describe_kind(info.st_mode)
        raise PathRefused(f"{what} {str(path)!r} is {found}, not {'a folder' if folder else 'a regular file'}", field)
    if resolved.parts[:2] in (("/", "proc"), ("/", "sys")):
        raise PathRefused(f"{what} {str(path)!r} lies in {'/'.join(resolved.parts[:2])[1:]}, which holds no input files", field)
    if not os.access(resolved, os.R_OK | (os.X_OK if folder else 0)):
        raise PathRefused(f"{what} {str(path)!r} cannot be read: permission denied (check its permissions)", field)
    return resolved


def resolve_read(policy: PathPolicy, value: str, field: str, what: str = "file", folder: bool = False) -> Path:
    """The file (or folder) a workflow's path names, resolved and checked (see the module docstring)."""
    text = value.strip() if isinstance(value, str) else ""
    if not text:
        raise NodeInputError(f"no {what} chosen", field)
    if "\0" in text:
        raise PathRefused(f"the {what} path contains a NUL character", field)
    path = Path(text).expanduser()
    if path.is_absolute():
        candidates = [path]
    elif os.path.normpath(path).split(os.sep)[0] == "..":
        allowed = "\n".join(f"  {r}" for r in policy.roots())
        raise PathRefused(f"{what} {text!r} climbs out of its folder with '..': it would lie outside the folders a "
                          f"workflow may read from:\n{allowed}", field)
    else:
        bases = [policy.workflow_dir] if policy.workflow_dir is not None else []
        candidates = [base / path for base in (*bases, *policy.input_dirs)]
    chosen, denied = None, None
    for candidate in candidates:
        try:
            if exists(candidate, field, what):
                chosen = candidate
                break
        except PathRefused as exc:  # an input folder that may not be searched: look in the others first
            denied = denied or exc
    if chosen is None and denied is not None:
        raise denied
    if chosen is None and path.is_absolute():
        raise PathRefused(f"{what} {text!r} does not exist", field)
    if chosen is None:
        looked = "\n".join(f"  {c}" for c in candidates)
        hint = "" if path.is_absolute() else (
            "\nRelative paths are looked up beside the workflow file, then in the input folders "
            f"(--input DIR, ${INPUT_ENV}, {user_input_dir()})")
        raise PathRefused(f"{what} {text!r} was not found. Looked for:\n{looked}{hint}", field)
    if not policy.allows(chosen):
        allowed = "\n".join(f"  {r}" for r in policy.roots())
        raise PathRefused(
            f"{what} {text!r} lies outside the folders a workflow may read from:\n{allowed}\n"
            "Copy it into the workflow's folder or an input folder, add its folder with --input DIR, or name it "
            "yourself on the command line (--set NODE.PARAM=PATH)", field)
    return check_readable(chosen, field, what, folder)


def check_write(path: Path, roots: Iterable[Path], field: str, what: str = "file") -> Path:
    """``path`` if writing it stays inside one of ``roots`` once links are followed (a link inside the output
    folder that points elsewhere is refused), else :class:`PathRefused`."""
    roots = list(roots)
    # the deepest existing ancestor decides where the write lands (missing folders are created under it)
    probe = path
    while not probe.exists() and probe.parent != probe:
        probe = probe.parent
    target = probe.resolve() / path.relative_to(probe) if probe != path else path.resolve()
    if any(within(target, root) for root in roots):
        return target
    listed = "\n".join(f"  {r}" for r in roots)
    raise PathRefused(f"{what} {str(path)!r} would be written outside the folders a workflow may write to:\n{listed}", field)
