"""Helpers for tests that run Stable Diffusion workflows through the Executor on tiny random models.

Checkpoints are the tiny SD1.5 / SDXL / SDXL-refiner models of ``tests.fixtures.tiny_sd``, written as
original single files by the Save Checkpoint code and loaded by ``core.CheckpointLoader``.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from nodegraph.executor import Executor, RunResult
from nodegraph.installed import default_registry
from nodegraph.model_folders import ModelFolders
from nodegraph.runtime import Runtime
from nodegraph.workflow import parse_workflow
from tests.input_policy import tmp_run_settings

CHECKPOINT_NAMES = {"sd15": "tiny_sd15.safetensors", "sdxl": "tiny_sdxl.safetensors", "sdxl_refiner": "tiny_refiner.safetensors"}
SEEDS = {"sd15": 0, "sdxl": 0, "sdxl_refiner": 1}


def make_models_root(root: Path) -> Path:
    """Write the tiny checkpoints into ``root/checkpoints`` and return ``root``."""
    from tests.fixtures.tiny_sd import write_tiny_checkpoint

    folder = root / "checkpoints"
    folder.mkdir(parents=True, exist_ok=True)
    for family, name in CHECKPOINT_NAMES.items():
        write_tiny_checkpoint(folder / name, family, SEEDS[family])
    return root


def make_executor(models_root: Path) -> Executor:
    return Executor(default_registry(), runtime=Runtime(device="cpu", precision="fp32"), folders=ModelFolders([models_root]))


def run_workflow(executor: Executor, nodes: dict[str, Any], targets: list[str]) -> RunResult:
    """Run ``nodes`` (input files may lie in the temporary folders)."""
    doc = {"format": "nodegraph.workflow", "version": 1, "nodes": nodes}
    return executor.run(parse_workflow(doc, executor.registry), targets, settings=tmp_run_settings())


def checkpoint(executor: Executor, family: str) -> dict[str, Any]:
    return {"type": "core.CheckpointLoader", "version": 1, "params": {"ckpt_name": CHECKPOINT_NAMES[family]}}


def n(kind: str, params: dict[str, Any] | None = None, **inputs: tuple[str, str]) -> dict[str, Any]:
    """A workflow node entry: ``n("core.KSampler", {"seed": 1}, model=("ckpt", "model"))``."""
    return {"type": kind, "version": 1, "params": params or {}, "inputs": {k: list(v) for k, v in inputs.items()}}


def shrink_workflow(doc: dict[str, Any], image_path: Path, checkpoints: dict[str, str]) -> dict[str, Any]:
    """Point a shipped workflow at tiny models (``checkpoints`` maps its file names to theirs) and make it
    small: 32 px, 2 steps (4 for a base -> refiner hand-off, keeping its proportion: 32 of 40 -> 3 of 4)."""
    for node in doc["nodes"].values():
        params = node.get("params", {})
        if node["type"] == "core.CheckpointLoader":
            params["ckpt_name"] = checkpoints[params["ckpt_name"]]
        elif node["type"] == "core.EmptyLatentImage":
            params.update(width=32, height=32)
        elif node["type"] == "core.LoadImage":
            params["path"] = str(image_path)
        elif node["type"] == "core.KSampler":
            params["steps"] = 2
        elif node["type"] == "core.KSamplerAdvanced":
            params["steps"] = 4
            for key in ("start_at_step", "end_at_step"):
                if params[key] not in (0, 10000):
                    params[key] = 3
    return doc
