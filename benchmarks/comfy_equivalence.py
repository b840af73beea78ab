"""ComfyUI equivalence: import each reference workflow, run it, and compare with what ComfyUI drew.

    python benchmarks/comfy_equivalence.py                     # every public case
    python benchmarks/comfy_equivalence.py --cases 01,04,13    # some of them
    python benchmarks/comfy_equivalence.py --json out.json     # also write the figures

The reference (``../shared/comfy-reference``, or ``--reference DIR``) holds ComfyUI 0.8's own output for
API-format workflows on a deterministic full-size SD1.5-architecture checkpoint with random weights. This
script:

1. regenerates that checkpoint and its LoRA with the reference's ``make_checkpoint.py`` (bit-identical, its
   sha256 checked) into ``--work`` (default ``.work/comfy-ref``, git-ignored), unless they are already there;
2. imports each ``case_NN.json`` with ``nodegraph.comfy.load_comfy`` (the input image is found beside it),
   runs it with the product's executor (fp32 on the CPU, one executor, so the checkpoint loads once);
3. prints per case the largest difference from ComfyUI's PNG in levels of 255 (and the share of pixels
   that differ at all), and from its float image (``.npy``, the decoded image before the 8-bit step).

Goal: every case with a deterministic sampler within 2 levels of the PNG. Ancestral and SDE samplers draw
their noise as ComfyUI does (seed + 1 generator; Brownian tree), so they are held to the same goal.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
os.environ.setdefault("HF_HUB_OFFLINE", "1")

DEFAULT_REFERENCE = ROOT.parent.parent / "shared" / "comfy-reference"
GOAL_LEVELS = 2


def reference_dir(given: str | None) -> Path:
    for candidate in (given, os.environ.get("NODEGRAPH_COMFY_REFERENCE"), DEFAULT_REFERENCE, "/work/shared/comfy-reference"):
        if candidate and (Path(candidate) / "public" / "cases.json").is_file():
            return Path(candidate)
    raise SystemExit("the ComfyUI reference folder was not found: pass --reference DIR (it holds public/cases.json)")


def sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for block in iter(lambda: handle.read(1 << 22), b""):
            digest.update(block)
    return digest.hexdigest()


def ensure_models(reference: Path, work: Path, index: dict[str, Any]) -> None:
    """The checkpoint in work/checkpoints and the LoRA in work/loras, regenerated when missing or different."""
    wanted = {"checkpoints": index["checkpoint"], "loras": index["lora"]}
    for folder, info in wanted.items():
        target = work / folder / info["file"]
        if target.is_file() and target.stat().st_size == info["bytes"] and sha256(target) == info["sha256"]:
            continue
        print(f"regenerating {info['file']} with make_checkpoint.py ...", file=sys.stderr)
        with tempfile.TemporaryDirectory(dir=work) as tmp:
            flag = "--lora" if folder == "loras" else None
            command = [sys.executable, str(reference / "make_checkpoint.py"), tmp] + ([flag] if flag else [])
            subprocess.run(command, check=True)
            target.parent.mkdir(parents=True, exist_ok=True)
            os.replace(Path(tmp) / info["file"], target)


def compare(ours: Any, saved: Path, png: Path, npy: Path | None) -> dict[str, float]:
    """Our saved PNG against ComfyUI's, and our decoded float image against ComfyUI's .npy."""
    import numpy as np
    from PIL import Image

    ours_float = ours.detach().cpu().numpy().astype(np.float32)
    ours_png = np.asarray(Image.open(saved).convert("RGB"))
    theirs_png = np.asarray(Image.open(png).convert("RGB")).astype(np.int16)
    diff = np.abs(ours_png.astype(np.int16) - theirs_png)
    out = {"png_max": int(diff.max()), "png_share_off": float((diff > 0).mean())}
    if npy is not None and npy.is_file():
        reference = np.load(npy)
        out["npy_max"] = float(np.abs(ours_float - reference).max() * 255.0)
        out["npy_mean"] = float(np.abs(ours_float - reference).mean() * 255.0)
    return out


def run_case(case: dict[str, Any], public: Path, executor: Any, registry: Any, output: Path) -> list[dict[str, Any]]:
    from nodegraph.comfy import load_comfy
    from nodegraph.context import RunSettings
    from nodegraph.workflow import to_document

    workflow = public / case["files"]["workflow"]
    imported = load_comfy(workflow.read_bytes(), registry, source=str(workflow))
    graph = imported.graph
    saves = [n.id for n in graph.nodes.values() if n.type == "comfy.SaveImage"]
    decodes = [graph.nodes[s].inputs["images"][0] for s in saves]
    settings = RunSettings(output_dir=output, workflow=to_document(graph))
    result = executor.run(graph, decodes + saves, settings=settings)
    images = result.outputs[decodes[0]]["image"]
    saved = result.outputs[saves[0]]["paths"].splitlines()
    rows = []
    for k, png in enumerate(case["files"]["png"]):
        npys = case["files"].get("npy") or []
        row = compare(images[k], Path(saved[k]), public / png, public / npys[k] if k < len(npys) else None)
        row["image"] = png
        rows.append(row)
    return rows


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--reference", help="the comfy-reference folder (default: ../shared/comfy-reference)")
    parser.add_argument("--work", type=Path, default=ROOT / ".work" / "comfy-ref", help="where the models go")
    parser.add_argument("--cases", default="", help="comma-separated case numbers (default: all)")
    parser.add_argument("--threads", type=int, default=int(os.environ.get("OMP_NUM_THREADS", "2")))
    parser.add_argument("--json", type=Path, help="also write the figures to this file")
    args = parser.parse_args(argv)

    import torch

    torch.set_num_threads(max(1, args.threads))
    reference = reference_dir(args.reference)
    public = reference / "public"
    index = json.loads((public / "cases.json").read_text())
    args.work.mkdir(parents=True, exist_ok=True)
    ensure_models(reference, args.work, index)

    from nodegraph.executor import Executor
    from nodegraph.installed import default_registry
    from nodegraph.model_folders import ModelFolders
    from nodegraph.runtime import Runtime

    registry = default_registry()
    executor = Executor(registry, runtime=Runtime("cpu", "fp32"), folders=ModelFolders.from_environment([args.work]))
    wanted = {c.zfill(2) for c in args.cases.split(",") if c}
    cases = [c for c in index["cases"] if not wanted or c["id"].split("_")[-1] in wanted]
    print(f"ComfyUI {index['comfyui']['version']} reference, {len(cases)} case(s); torch {torch.__version__}, "
          f"{args.threads} thread(s)")
    print(f"{'case':<8} {'sampler / scheduler':<28} {'vs PNG max':>10} {'px off':>8} {'vs npy max':>11} {'seconds':>8}")
    table = []
    with tempfile.TemporaryDirectory() as output:
        for case in cases:
            start = time.perf_counter()
            rows = run_case(case, public, executor, registry, Path(output))
            seconds = time.perf_counter() - start
            for row in rows:
                label = f"{case['sampler']} / {case['scheduler']}"
                npy = f"{row['npy_max']:.4f}" if "npy_max" in row else "-"
                name = row["image"].removesuffix(".png").removeprefix("case_")
                print(f"{name:<8} {label:<28} {row['png_max']:>10} {row['png_share_off']:>8.4%} {npy:>11} {seconds:>8.1f}")
                table.append({"case": case["id"], "sampler": case["sampler"], "scheduler": case["scheduler"],
                              "seconds": round(seconds, 1), **row})
    worst = max((r["png_max"] for r in table), default=0)
    print(f"largest difference from ComfyUI's PNGs: {worst} level(s) (goal: at most {GOAL_LEVELS})")
    if args.json:
        args.json.write_text(json.dumps({"cases": table, "goal_levels": GOAL_LEVELS}, indent=2))
    return 0 if worst <= GOAL_LEVELS else 1


if __name__ == "__main__":
    sys.exit(main())
