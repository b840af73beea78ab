"""The options of ``nodegraph run`` that go beyond one plain run: live previews written to a folder
(``--previews DIR``), several runs with the seeds' controls applied in between (``--repeat N``), and reproducing
one image of a batch from its PNG (``nodegraph run image.png``)."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Any

PREVIEW_EVERY = 0.5  # seconds between two previews of a sampler on the command line


def _positive_int(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a whole number of runs, found {text!r}") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"expected at least 1 run, found {value}")
    return value


def _seconds(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected seconds, found {text!r}") from None
    if not 0 <= value <= 3600:
        raise argparse.ArgumentTypeError(f"expected 0 to 3600 seconds, found {value}")
    return value


def add_run_options(run: argparse.ArgumentParser) -> None:
    run.add_argument("--previews", type=Path, metavar="DIR", default=None,
                     help="write the samplers' live previews into DIR as PNGs (off by default)")
    run.add_argument("--preview-every", type=_seconds, default=PREVIEW_EVERY, metavar="SECONDS",
                     help=f"least time between two previews of a sampler (default {PREVIEW_EVERY}; 0 = every step)")
    run.add_argument("--repeat", type=_positive_int, default=1, metavar="N",
                     help="run N times; between runs each seed follows its control after generate (fixed, increment, "
                          "decrement, randomize: the node's \"controls\" in the workflow file)")


def option_problems(args: argparse.Namespace) -> list[Any]:
    """Problems with these options themselves (a previews path that is a file), found before the run."""
    from nodegraph.preflight import output_dir_problems

    if args.previews is None:
        return []
    import dataclasses

    return [
        dataclasses.replace(p, field="previews", message=p.message.replace("the output", "the previews"))
        for p in output_dir_problems(args.previews)
    ]


def with_previews(reporter: Any, args: argparse.Namespace) -> Any:
    if args.previews is None:
        return reporter
    from nodegraph.preview_files import PreviewWriter

    return PreviewWriter(args.previews, reporter)


def reproduction(path: Path, graph: Any, targets: list[str] | None) -> dict[str, int]:
    """For a PNG that Save Image wrote as image k of a batch: ``{that node: k}``, so the run writes only image k
    (exactly the same pixels: the whole batch is sampled as it was). Empty for anything else."""
    from nodegraph.png_meta import image_record

    if path.suffix.lower() != ".png":
        return {}
    try:
        with open(path, "rb") as handle:  # the text chunks only: the image data is skipped
            record = image_record(handle)
    except OSError:
        return {}
    if record is None or record["batch_size"] <= 1 or record["node"] not in graph.nodes:
        return {}
    if targets and record["node"] not in targets:
        return {}
    seeds = ", ".join(f"{node}.{name} {value}" for node, values in (record.get("seeds") or {}).items()
                      for name, value in (values or {}).items())
    print(f"nodegraph: {path.name} is image {record['batch_index'] + 1} of a batch of {record['batch_size']}"
          + (f" ({seeds})" if seeds else "") + f"; node {record['node']!r} writes only that image", file=sys.stderr)
    return {record["node"]: int(record["batch_index"])}


def next_run(graph: Any, registry: Any, settings: Any, index: int, total: int) -> None:
    """Between two runs of ``--repeat``: apply the seed controls and say what changed."""
    from nodegraph.seed_control import apply_controls
    from nodegraph.workflow import to_document

    changes = apply_controls(graph, registry)
    settings.workflow = to_document(graph)  # saved images embed the workflow of their own run
    what = ", ".join(f"{node}.{param} {old} -> {new}" for (node, param), (old, new) in changes.items())
    print(f"nodegraph: run {index + 1} of {total}: " + (what or "no seed control changes anything (fixed seeds)"),
          file=sys.stderr)
