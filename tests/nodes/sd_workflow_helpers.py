"""Helpers for tests that run Stable Diffusion workflows through the Executor on tiny random models.

Checkpoints are the tiny SD1.5 / SDXL / SDXL-refiner models of ``tests.fixtures.tiny_sd``, written as
original single files and loaded by ``core.CheckpointLoader``. Until that node exists in the registry a
test-only loader node hands out the same tiny modules (so the tests run either way).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from nodegraph.executor import Executor, RunResult
from nodegraph.model_folders import ModelFolders
from nodegraph.node import Output, node
from nodegraph.params import ModelFile
from nodegraph.registry import Registry, default_registry
from nodegraph.runtime import Runtime
from nodegraph.types import CLIP, MODEL, STRING, VAE
from nodegraph.workflow import parse_workflow

CHECKPOINT_NAMES = {"sd15": "tiny_sd15.safetensors", "sdxl": "tiny_sdxl.safetensors", "sdxl_refiner": "tiny_refiner.safetensors"}
SEEDS = {"sd15": 0, "sdxl": 0, "sdxl_refiner": 1}


@node(
    "test.TinyCheckpoint", name="Tiny checkpoint (test stand-in)", category="test",
    params=[ModelFile("ckpt_name", folder="checkpoints")],
    outputs=[Output("model", MODEL), Output("clip", CLIP), Output("vae", VAE), Output("family", STRING)],
)
def _tiny_checkpoint(ctx: Any, ckpt_name: str) -> tuple:
    from nodes.sd.handles import ClipHandle, ModelHandle, VaeHandle
    from tests.fixtures.tiny_sd import tiny_components

    family = next(f for f, name in CHECKPOINT_NAMES.items() if name == Path(ckpt_name).name)
    m = tiny_components(family, SEEDS[family])
    return (
        ModelHandle(m.unet, family, m.scheduler_config, m.prediction_type),
        ClipHandle(family, m.tokenizers, m.text_encoders),
        VaeHandle(m.vae, family, m.vae.config.scaling_factor),
        family,
    )


def loader_node(registry: Registry) -> tuple[str, str]:
    """(node type, file parameter name) of the checkpoint loader to use."""
    definition = registry.get("core.CheckpointLoader")
    if definition is None:
        return "test.TinyCheckpoint", "ckpt_name"
    name = next(p.name for p in definition.params if isinstance(p, ModelFile))
    return "core.CheckpointLoader", name


def make_models_root(root: Path) -> Path:
    """Write the tiny checkpoints into ``root/checkpoints`` (with the real loader) and return ``root``."""
    folder = root / "checkpoints"
    folder.mkdir(parents=True, exist_ok=True)
    if default_registry().get("core.CheckpointLoader") is not None:
        from tests.fixtures.tiny_sd import write_tiny_checkpoint

        for family, name in CHECKPOINT_NAMES.items():
            write_tiny_checkpoint(folder / name, family, SEEDS[family])
    else:
        for name in CHECKPOINT_NAMES.values():
            (folder / name).write_bytes(b"stand-in")
    return root


def make_executor(models_root: Path) -> Executor:
    registry = default_registry().copy()
    registry.register(_tiny_checkpoint, source="tests")
    return Executor(registry, runtime=Runtime(device="cpu", precision="fp32"), folders=ModelFolders([models_root]))


def run_workflow(executor: Executor, nodes: dict[str, Any], targets: list[str]) -> RunResult:
    doc = {"format": "nodegraph.workflow", "version": 1, "nodes": nodes}
    return executor.run(parse_workflow(doc, executor.registry), targets)


def checkpoint(executor: Executor, family: str) -> dict[str, Any]:
    kind, param = loader_node(executor.registry)
    return {"type": kind, "version": 1, "params": {param: CHECKPOINT_NAMES[family]}}


def n(kind: str, params: dict[str, Any] | None = None, **inputs: tuple[str, str]) -> dict[str, Any]:
    """A workflow node entry: ``n("core.KSampler", {"seed": 1}, model=("ckpt", "model"))``."""
    return {"type": kind, "version": 1, "params": params or {}, "inputs": {k: list(v) for k, v in inputs.items()}}
