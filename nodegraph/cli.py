"""The ``nodegraph`` command line: run, validate, list nodes and plugins, open the editor.

Exit codes: 0 done; 1 a node failed; 2 an invalid workflow or invalid arguments; 130 cancelled (Ctrl-C).
Only argparse and the engine are imported here, so ``nodegraph --help`` is fast.
"""

from __future__ import annotations

import argparse
import json
import signal
import sys
from pathlib import Path
from typing import Any

from nodegraph import run_options
from nodegraph.console import error, print_problems
from nodegraph.overrides import apply_text_overrides

EXIT_OK, EXIT_FAILED, EXIT_INVALID, EXIT_CANCELLED = 0, 1, 2, 130


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="nodegraph",
        description="Run diffusion-model node workflows headless, or open them in the editor.",
    )
    from nodegraph.version import __version__

    parser.add_argument("--version", action="version", version=f"nodegraph {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")

    run = sub.add_parser("run", help="run a workflow file (or a PNG that embeds one)")
    run.add_argument("workflow", type=Path, help="workflow .json, or a .png saved by nodegraph; ComfyUI files too")
    run.add_argument(
        "--set", dest="overrides", action="append", default=[], metavar="NODE.PARAM=VALUE",
        help="override a parameter for this run (repeatable), e.g. --set sampler.seed=7",
    )
    run.add_argument("--output", type=Path, default=Path("output"), help="folder for saved images (default: ./output)")
    run.add_argument("--device", default=None, help="cpu, cuda, cuda:1, mps (default: the best available)")
    run.add_argument("--precision", default="auto", choices=("auto", "fp32", "fp16", "bf16"),
                     help="compute dtype (default: fp16 on GPUs, fp32 on the CPU)")
    run.add_argument("--models", action="append", default=[], type=Path, metavar="DIR",
                     help="an extra models root to search first (repeatable)")
    run.add_argument("--node", dest="targets", action="append", default=None, metavar="NODE_ID",
                     help="run only this node and what it needs (repeatable; default: all output nodes)")
    run.add_argument("--events", choices=("bars", "json", "none"), default=None,
                     help="progress as bars (default on a terminal), JSON lines (one event per line), or none")
    run_options.add_options(run)

    validate = sub.add_parser("validate", help="check a workflow without running it")
    validate.add_argument("workflow", type=Path)
    validate.add_argument("--json", action="store_true", help="print the problems as JSON")
    run_options.add_options(validate, run=False)

    nodes = sub.add_parser("nodes", help="list the installed node types")
    nodes.add_argument("--json", action="store_true", help="print the full schema of every node type")

    plugins = sub.add_parser("plugins", help="list plugins with their status and node types")
    plugins.add_argument("--json", action="store_true", help="print as JSON")

    sub.add_parser("limits", help="list the limits on untrusted input and their values")

    gui = sub.add_parser("gui", help="open the desktop editor")
    gui.add_argument("workflow", type=Path, nargs="?", help="a workflow (or PNG) to open")
    gui.add_argument("--screenshot", type=Path, metavar="FILE.png",
                     help="lay the window out, save a screenshot to FILE.png and exit")

    from nodegraph.batch.cli import add_parser as add_batch_parser
    from nodegraph.server.cli import add_parser as add_serve_parser

    add_serve_parser(sub)
    add_batch_parser(sub)

    from nodegraph.comfy.commands import add_commands  # nodegraph import / export --comfy

    parser.set_defaults(extra_handlers=add_commands(sub))
    return parser


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    if args.command is None:
        parser.print_help()
        return EXIT_INVALID
    from nodegraph.batch.cli import cmd_batch
    from nodegraph.server.cli import cmd_serve

    handler = {"run": cmd_run, "validate": cmd_validate, "nodes": cmd_nodes, "plugins": cmd_plugins, "gui": cmd_gui,
               "limits": cmd_limits, "serve": cmd_serve, "batch": cmd_batch}
    handler.update(args.extra_handlers)
    try:
        return handler[args.command](args)
    except BrokenPipeError:
        return EXIT_OK
    except KeyboardInterrupt:  # Ctrl-C while loading the workflow or the plugins, or right after a run
        error("cancelled")
        return EXIT_CANCELLED


def _load(path: Path, registry: Any) -> Any:
    from nodegraph.comfy.files import load_any  # a nodegraph workflow, or a ComfyUI one imported on the way

    graph, report = load_any(path, registry)
    for line in report.lines() if report is not None else ():
        print(line, file=sys.stderr)
    return graph


def cmd_run(args: argparse.Namespace) -> int:
    from nodegraph.context import CancelToken, RunSettings
    from nodegraph.errors import Cancelled, NodeExecutionError, WorkflowError
    from nodegraph.executor import Executor
    from nodegraph.installed import default_registry
    from nodegraph.model_folders import ModelConfigError, ModelFolders
    from nodegraph.runtime import Runtime
    from nodegraph.workflow import to_document

    bad_limit = run_options.apply_limits(args)
    if bad_limit:
        error(bad_limit)
        return EXIT_INVALID
    registry = default_registry()
    try:
        graph = _load(args.workflow, registry)
    except WorkflowError as exc:
        print_problems(exc.problems)
        return EXIT_INVALID
    problems = apply_text_overrides(graph, registry, args.overrides)
    if problems:
        print_problems(problems)
        return EXIT_INVALID
    trusted = run_options.trust_named_paths(graph, registry, args.overrides)
    try:
        folders = ModelFolders.from_environment(args.models)
    except ModelConfigError as exc:
        error(str(exc))
        return EXIT_INVALID
    folders.trusted = trusted
    mode = args.events or ("bars" if sys.stderr.isatty() else "none")
    from nodegraph.reporting import make_reporter

    reporter = make_reporter(mode)
    token = CancelToken()

    def on_sigint(signum: int, frame: Any) -> None:
        if token.cancelled:  # a second Ctrl-C stops at once
            raise KeyboardInterrupt
        token.cancel()
        print("\nnodegraph: stopping at the next check (Ctrl-C again to abort)", file=sys.stderr)

    previous = signal.signal(signal.SIGINT, on_sigint)
    threads_before = run_options.thread_idents()
    executor = Executor(registry, runtime=Runtime(args.device, args.precision), folders=folders)
    settings = RunSettings(output_dir=args.output, device=args.device, precision=args.precision, workflow=to_document(graph),
                           paths=run_options.path_policy(args, trusted), allow_nonfinite=args.allow_nonfinite)
    try:
        result = executor.run(graph, args.targets, on_event=reporter, cancel=token, settings=settings)
    except WorkflowError as exc:
        print_problems(exc.problems)
        return EXIT_INVALID
    except NodeExecutionError as exc:
        reporter.close()
        error(str(exc))
        return run_options.end_despite_threads(EXIT_FAILED, threads_before)
    except (Cancelled, KeyboardInterrupt):
        reporter.close()
        error("cancelled")
        return run_options.end_despite_threads(EXIT_CANCELLED, threads_before)
    finally:
        signal.signal(signal.SIGINT, previous)
    reporter.close()
    reporter.summary(graph, result)
    return run_options.end_despite_threads(EXIT_OK, threads_before)


def cmd_validate(args: argparse.Namespace) -> int:
    from nodegraph.errors import WorkflowError
    from nodegraph.file_checks import input_problems
    from nodegraph.installed import default_registry
    from nodegraph.model_folders import ModelConfigError, ModelFolders
    from nodegraph.validation import validate

    bad_limit = run_options.apply_limits(args)
    if bad_limit:
        error(bad_limit)
        return EXIT_INVALID
    registry = default_registry()
    try:
        graph = _load(args.workflow, registry)
    except WorkflowError as exc:
        print_problems(exc.problems, args.json)
        return EXIT_INVALID
    try:
        folders = ModelFolders.from_environment(args.models)
    except ModelConfigError as exc:
        error(str(exc))
        return EXIT_INVALID
    problems = validate(graph, registry)
    if not problems:  # the files it names: missing ones are reported now, not minutes into a run
        problems = input_problems(graph, registry, run_options.path_policy(args).with_roots(*folders.all_folders()), folders)
    if problems:
        print_problems(problems, args.json)
        return EXIT_INVALID
    if args.json:
        print("[]")
    else:
        print(f"{args.workflow}: valid ({len(graph)} nodes)")
    return EXIT_OK


def cmd_nodes(args: argparse.Namespace) -> int:
    from nodegraph.installed import default_registry

    registry = default_registry()
    if args.json:
        print(json.dumps([d.schema() for d in registry], indent=2))
        return EXIT_OK
    width = max((len(d.id) for d in registry), default=10)
    category = None
    for definition in registry:
        if definition.category != category:
            category = definition.category
            print(f"\n{category}")
        print(f"  {definition.id:<{width}}  v{definition.version}  {definition.name}")
    return EXIT_OK


def cmd_limits(args: argparse.Namespace) -> int:
    from nodegraph.limits import print_limits

    return print_limits()


def cmd_plugins(args: argparse.Namespace) -> int:
    from nodegraph.installed import print_plugins

    return print_plugins(as_json=args.json)


def cmd_gui(args: argparse.Namespace) -> int:
    try:
        from ui.app import main as gui_main
    except ImportError as exc:
        error(f"the editor needs PySide6 and NodeGraphQt: pip install 'nodegraph[gui]' ({exc})")
        return EXIT_FAILED
    threads_before = run_options.thread_idents()
    return run_options.end_despite_threads(gui_main(args.workflow, screenshot=args.screenshot), threads_before)


if __name__ == "__main__":
    sys.exit(main())
