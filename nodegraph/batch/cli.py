"""``nodegraph batch``: run a workflow over a sweep of parameter values, with one progress bar."""

from __future__ import annotations

import argparse
import shutil
import sys
from pathlib import Path
from typing import Any

EXIT_OK, EXIT_FAILED, EXIT_INVALID, EXIT_CANCELLED = 0, 1, 2, 130


def add_parser(sub: Any) -> argparse.ArgumentParser:
    parser = sub.add_parser(
        "batch", help="run a workflow over every combination of swept parameters",
        description="Run WORKFLOW once per combination of the swept values (a grid by default, or zipped), on warm "
                    "workers in this process or on a Ray cluster, and write an index (JSON lines: parameters -> "
                    "output files). Each combination gives the same images as `nodegraph run --set` with its values.",
        epilog="VALUES: 1..64 (a range, inclusive; 1..64..4 with a step), a,b,c (a list), or @file.txt (one value "
               "per line). Example: nodegraph batch workflows/txt2img.json --sweep sampler.seed=1..8 "
               "--sweep sampler.cfg=2,3,5",
    )
    parser.add_argument("workflow", type=Path, help="workflow .json, or a .png saved by nodegraph")
    parser.add_argument("--sweep", action="append", default=[], metavar="NODE.PARAM=VALUES",
                        help="a parameter and its values (repeatable)")
    parser.add_argument("--zip", action="store_true", help="pair the sweeps' values in order instead of the full grid")
    parser.add_argument("--set", dest="overrides", action="append", default=[], metavar="NODE.PARAM=VALUE",
                        help="a fixed override for every combination (repeatable)")
    workers = parser.add_mutually_exclusive_group()
    workers.add_argument("--workers", type=int, default=None, metavar="N", help="in-process workers (default 1)")
    workers.add_argument("--ray", metavar="ADDRESS", default=None,
                         help="run on Ray actors at ADDRESS (auto, local, host:port); needs pip install 'nodegraph[ray]'")
    parser.add_argument("--ray-workers", type=int, default=None, metavar="N", help="actors to start (default: per GPU or per --ray-cpus)")
    parser.add_argument("--ray-cpus", type=float, default=1.0, metavar="N", help="CPUs per actor without GPUs (default 1)")
    parser.add_argument("--output", type=Path, default=Path("output"), help="folder for the images (default ./output)")
    parser.add_argument("--index", type=Path, default=None, metavar="FILE", help="the index file (default OUTPUT/index.jsonl; appended)")
    parser.add_argument("--node", dest="targets", action="append", default=None, metavar="NODE_ID",
                        help="run only this node and what it needs (repeatable; default: all output nodes)")
    parser.add_argument("--device", default=None, help="cpu, cuda, cuda:1, mps (default: the best available)")
    parser.add_argument("--precision", default="auto", choices=("auto", "fp32", "fp16", "bf16"))
    parser.add_argument("--models", action="append", default=[], type=Path, metavar="DIR", help="an extra models root (repeatable)")
    return parser


def cmd_batch(args: argparse.Namespace) -> int:
    from nodegraph.batch.runner import make_items, run_items, staging_root
    from nodegraph.batch.sweep import SweepError, combinations, parse_sweeps
    from nodegraph.console import print_problems
    from nodegraph.errors import Problem, WorkflowError
    from nodegraph.installed import default_registry
    from nodegraph.overrides import apply_text_overrides
    from nodegraph.validation import validate
    from nodegraph.workflow import load_workflow, to_document

    registry = default_registry()
    try:
        graph = load_workflow(args.workflow, registry)
    except WorkflowError as exc:
        print_problems(exc.problems)
        return EXIT_INVALID
    problems = apply_text_overrides(graph, registry, args.overrides)
    try:
        sweeps = parse_sweeps(args.sweep, graph, registry)
        combos = combinations(sweeps, args.zip)
    except SweepError as exc:
        problems.extend(exc.problems)
        combos = []
    problems.extend(validate(graph, registry))
    for target in args.targets or []:
        if target not in graph.nodes:
            problems.append(Problem("unknown_target", "no such node to run", target, expected="a node id in the workflow", found=repr(target)))
    count = args.workers if args.workers is not None else args.ray_workers
    if count is not None and count < 1:
        problems.append(Problem("bad_argument", "--workers must be at least 1", expected=">= 1", found=str(count)))
    if args.output.exists() and not args.output.is_dir():
        problems.append(Problem("bad_argument", "--output names a file, not a folder", expected="a folder", found=str(args.output)))
    if problems:
        print_problems(problems)
        return 2
    output = args.output.resolve()
    index = (args.index or output / "index.jsonl").resolve()
    items = make_items(to_document(graph), combos, args.targets, args.device, args.precision,
                       workflow_dir=str(Path(args.workflow).resolve().parent))
    try:
        workers, replace = _workers(args, count, registry, staging_root(output))
    except RuntimeError as exc:
        print(f"nodegraph: {exc}", file=sys.stderr)
        return EXIT_FAILED
    bar = _bar(len(items))
    failed: list[Any] = []

    activity = {"text": ""}

    def show() -> None:
        bar.set_postfix_str("; ".join(t for t in (f"{len(failed)} failed" if failed else "", activity["text"]) if t))

    def on_item(item: Any) -> None:
        if item.status != "success":
            failed.append(item)
            bar.write(f"combination {item.index} {item.params}: {item.status}: {(item.error or {}).get('message', '')}")
        bar.update(1)
        show()

    def on_event(item: Any, event: dict[str, Any]) -> None:
        # What a running combination is doing, beside the bar: which node, and a sampler's steps.
        kind = event.get("event")
        if kind == "node_started":
            activity["text"] = f"#{item.index} {event.get('node')}"
        elif kind == "node_progress" and event.get("total"):
            activity["text"] = f"#{item.index} {event.get('node')} {event.get('step')}/{event.get('total')}"
        else:
            return
        show()

    try:
        run = run_items(items, workers, output, index, replace, on_item, on_event)
    except KeyboardInterrupt:
        bar.close()
        print("nodegraph: cancelled; the index lists what finished", file=sys.stderr)
        return EXIT_CANCELLED
    finally:
        shutil.rmtree(staging_root(output), ignore_errors=True)
    activity["text"] = ""
    show()
    bar.close()
    files = sum(len(i.files) for i in run.items.values())
    print(f"{len(items) - len(failed)} of {len(items)} combinations done, {files} file(s) in {output}; index: {index}")
    return EXIT_FAILED if failed else EXIT_OK


def _workers(args: argparse.Namespace, count: int | None, registry: Any, staging: Path) -> tuple[list[Any], Any]:
    from nodegraph.workers.make import make_local_workers, make_ray_workers

    if args.ray:
        return make_ray_workers(args.ray, count, args.ray_cpus, 1.0, args.models, args.device, args.precision)
    return make_local_workers(count or 1, registry, staging, args.models, args.device, args.precision), None


def _bar(total: int) -> Any:
    from tqdm import tqdm

    return tqdm(total=total, desc="batch", unit="job", file=sys.stderr, disable=None)
