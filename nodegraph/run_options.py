"""Command-line options that ``nodegraph run`` and ``validate`` share: where input files may come from, the
limits on untrusted input, and the paths the user names on the command line (which a workflow may not).

A workflow's own paths are confined (:mod:`nodegraph.paths`); a path typed with ``--set NODE.PARAM=PATH`` is the
user's choice: it is taken relative to the current folder and trusted. ``--input DIR`` adds an input folder.
"""

from __future__ import annotations

import argparse
import os
from pathlib import Path
from typing import Any

import nodegraph.limits as limits
from nodegraph.paths import PathPolicy, default_input_dirs


def add_options(parser: argparse.ArgumentParser, run: bool = True) -> None:
    parser.add_argument("--input", dest="inputs", action="append", default=[], type=Path, metavar="DIR",
                        help="an input folder: relative image and folder paths of the workflow are looked up beside "
                             "the workflow file, then here (repeatable; also $NODEGRAPH_INPUT)")
    parser.add_argument("--limit", dest="limits", action="append", default=[], metavar="NAME=VALUE",
                        help="raise a limit on untrusted input, e.g. --limit image_pixels=150000000 "
                             "(see 'nodegraph limits')")
    if run:
        parser.add_argument("--allow-nonfinite", action="store_true",
                            help="keep NaN or infinite images and latents instead of failing the node that made them")
    else:  # run has its own --models
        parser.add_argument("--models", action="append", default=[], type=Path, metavar="DIR",
                            help="an extra models root to search first (repeatable): the model files are checked too")


def apply_limits(args: argparse.Namespace) -> str | None:
    """Apply ``--limit`` assignments; the error message when one is wrong."""
    try:
        limits.set_limits(list(args.limits))
    except limits.LimitError as exc:
        return str(exc)
    return None


def _named_path(text: str) -> Path | None:
    """The path a value typed on the command line names, when it names an existing file or folder from the
    current folder (an absolute path, or a relative one with a folder part or found here)."""
    if not text or "\0" in text:
        return None
    path = Path(text).expanduser()
    if not os.path.lexists(path):
        return None
    return Path(os.path.abspath(path))


def trust_named_paths(graph: Any, registry: Any, overrides: list[str]) -> list[Path]:
    """The paths the user typed in ``--set`` overrides (already applied to ``graph``): each is made absolute in the
    graph (so it means the file in the current folder, as typed) and returned, to be trusted."""
    from nodegraph.params import ImageFile, ModelFile, String

    trusted: list[Path] = []
    for item in overrides:
        target, _, text = item.partition("=")
        node_id, _, name = target.rpartition(".")
        node = graph.nodes.get(node_id)
        definition = registry.get(node.type) if node is not None else None
        param = definition.param(name) if definition is not None else None
        if not isinstance(param, (ImageFile, ModelFile, String)):
            continue
        named = _named_path(text.strip())
        looks_like_a_path = Path(text).is_absolute() or os.sep in text or text.startswith(("~", "."))
        if named is None or (not isinstance(param, ImageFile) and not looks_like_a_path):
            continue  # a bare model name means the model folders; a bare word in a text is just text
        node.params[name] = str(named)
        trusted.append(named)
    return trusted


def path_policy(args: argparse.Namespace, trusted: list[Path] = ()) -> PathPolicy:
    """Reads of this run: beside the workflow file, then the input folders; plus what the user named."""
    workflow = Path(args.workflow)
    return PathPolicy(workflow_dir=Path(os.path.abspath(workflow)).parent, input_dirs=default_input_dirs(args.inputs),
                      trusted=tuple(trusted))


def end_despite_threads(code: int, before: set[int]) -> int:
    """Return ``code``, or end the process at once with it when threads started during the run (``before``: the
    idents of the threads alive when it began) that are not daemons are still running: Python would wait for them
    forever at exit. Everything was saved; the streams are flushed first."""
    import sys
    import threading

    stray = [t for t in threading.enumerate() if t.ident not in before and not t.daemon and t.is_alive()
             and t is not threading.current_thread()]
    if not stray:
        return code
    names = ", ".join(t.name for t in stray[:5])
    print(f"nodegraph: {len(stray)} thread(s) started by a node are still running ({names}); exiting without "
          "waiting for them", file=sys.stderr)
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(code)


def thread_idents() -> set[int]:
    import threading

    return {t.ident for t in threading.enumerate() if t.ident is not None}
