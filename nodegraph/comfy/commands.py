"""``nodegraph import`` and ``nodegraph export --comfy``: the command-line side of ComfyUI support.

    nodegraph import FILE [-o OUT.json] [--force] [--json]
    nodegraph export --comfy WORKFLOW [-o OUT.json] [--force]

``import`` converts a ComfyUI workflow (API or UI JSON, or a PNG/WebP carrying one) into a nodegraph
workflow file and prints the import report; ``export --comfy`` writes ComfyUI's API format (what
``POST /prompt`` takes) for a workflow whose nodes all have a ComfyUI counterpart. Output files are written
atomically and never replace an existing file unless ``--force`` is given; ``-o -`` writes to stdout.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any

EXIT_OK, EXIT_INVALID = 0, 2


def add_commands(sub: Any) -> dict[str, Any]:
    """Register the subcommands on ``sub`` (argparse subparsers); returns {name: handler}."""
    imp = sub.add_parser("import", help="convert a ComfyUI workflow (JSON, PNG or WebP) into a nodegraph workflow")
    imp.add_argument("file", type=Path, help="ComfyUI workflow: API or UI format .json, or a .png/.webp that carries one")
    imp.add_argument("-o", "--output", default=None, metavar="OUT.json",
                     help="where to write the workflow (default: <name>.nodegraph.json here; '-' for stdout)")
    imp.add_argument("--force", action="store_true", help="replace OUT.json if it exists")
    imp.add_argument("--json", action="store_true", help="print the import report as JSON")

    exp = sub.add_parser("export", help="write a workflow in another tool's format (ComfyUI's API format)")
    exp.add_argument("workflow", type=Path, help="a nodegraph workflow (or a ComfyUI file, converted on the way)")
    exp.add_argument("--comfy", action="store_true", help="write ComfyUI's API format (what POST /prompt takes)")
    exp.add_argument("-o", "--output", default=None, metavar="OUT.json",
                     help="where to write (default: <name>.comfy-api.json here; '-' for stdout)")
    exp.add_argument("--force", action="store_true", help="replace OUT.json if it exists")
    return {"import": cmd_import, "export": cmd_export}


def _error(message: str) -> None:
    print(f"nodegraph: {message}", file=sys.stderr)


def _problems(problems: list[Any]) -> None:
    _error(f"{len(problems)} problem(s):")
    for problem in problems:
        print(f"  - {problem}", file=sys.stderr)


def _write(text: str, output: str | None, default: Path, force: bool) -> int | None:
    """Write ``text`` to ``output`` (or ``default``); an exit code on failure, None when written."""
    from nodegraph.workflow import atomic_write_bytes

    if output == "-":
        sys.stdout.write(text)
        return None
    target = Path(output) if output else default
    if target.exists() and not force:
        _error(f"{target} exists; choose another name with -o, or replace it with --force")
        return EXIT_INVALID
    if target.is_dir():
        _error(f"{target} is a folder; give a file name with -o")
        return EXIT_INVALID
    try:
        atomic_write_bytes(target, text.encode("utf-8"))
    except OSError as exc:
        _error(f"cannot write {target}: {exc.strerror or exc}")
        return EXIT_INVALID
    print(f"wrote {target}", file=sys.stderr)
    return None


def _stem(path: Path) -> str:
    name = path.name
    for suffix in (".json", ".png", ".webp"):
        if name.lower().endswith(suffix):
            return name[: -len(suffix)]
    return path.stem


def cmd_import(args: argparse.Namespace) -> int:
    from nodegraph.comfy.files import read_comfy
    from nodegraph.errors import WorkflowError
    from nodegraph.installed import default_registry
    from nodegraph.workflow import dumps

    registry = default_registry()
    try:
        result = read_comfy(args.file, registry)  # bounded reading: a hostile file is an error, not a hang
    except WorkflowError as exc:
        _problems(exc.problems)
        return EXIT_INVALID
    graph, report = result.graph, result.report
    if args.json:
        print(json.dumps(report.to_json(), indent=2), file=sys.stderr if args.output == "-" else sys.stdout)
    else:
        for line in report.lines():
            print(line, file=sys.stderr)
    failed = _write(dumps(graph), args.output, Path(f"{_stem(args.file)}.nodegraph.json"), args.force)
    return failed if failed is not None else EXIT_OK


def cmd_export(args: argparse.Namespace) -> int:
    from nodegraph.comfy.export import export_api_prompt
    from nodegraph.comfy.files import load_any
    from nodegraph.errors import WorkflowError
    from nodegraph.installed import default_registry

    if not args.comfy:
        _error("choose the format to export to: --comfy (ComfyUI's API format)")
        return EXIT_INVALID
    registry = default_registry()
    try:
        graph, report = load_any(args.workflow, registry)
        prompt = export_api_prompt(graph, registry)
    except WorkflowError as exc:
        _problems(exc.problems)
        return EXIT_INVALID
    if report is not None:
        print(f"{args.workflow}: a ComfyUI file, converted on the way", file=sys.stderr)
    text = json.dumps(prompt, indent=2, ensure_ascii=False) + "\n"
    failed = _write(text, args.output, Path(f"{_stem(args.workflow)}.comfy-api.json"), args.force)
    return failed if failed is not None else EXIT_OK
