"""Shared parts of the DiT / IF tests: an executor over a models root holding the tiny folders, workflow node
entries, and the image comparison with the SD issue's tolerance."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pytest
import torch

from nodegraph.executor import Executor, RunResult
from nodegraph.installed import default_registry
from nodegraph.model_folders import ModelFolders
from nodegraph.runtime import Runtime
from nodegraph.workflow import parse_workflow
from tests.input_policy import tmp_run_settings

TOL = 1e-5  # max abs difference on 0..1 images, as the Stable Diffusion parity tests
PROMPT = "A photo of an astronaut riding a horse on the moon"


@pytest.fixture(scope="module", autouse=True)
def one_thread():
    """These tiny models run on one thread: on the shared 2-core machines two OpenMP threads spin against the
    other processes (a tiny IF UNet step measured 0.05 s on one thread, 0.8-1.0 s on two). Import this fixture
    into a test module to use it there; the previous count is restored after the module."""
    previous = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(previous)


def make_executor(models_root: Path) -> Executor:
    return Executor(default_registry().copy(), runtime=Runtime(device="cpu", precision="fp32"),
                    folders=ModelFolders([models_root]))


def run(executor: Executor, nodes: dict[str, Any], targets: list[str]) -> RunResult:
    doc = {"format": "nodegraph.workflow", "version": 1, "nodes": nodes}
    return executor.run(parse_workflow(doc, executor.registry), targets, settings=tmp_run_settings())


def n(kind: str, params: dict[str, Any] | None = None, **inputs: tuple[str, str]) -> dict[str, Any]:
    return {"type": kind, "version": 1, "params": params or {}, "inputs": {k: list(v) for k, v in inputs.items()}}


def assert_same_image(ours: torch.Tensor, theirs: Any) -> float:
    theirs = theirs.numpy() if isinstance(theirs, torch.Tensor) else np.asarray(theirs)
    ours_np = ours.numpy()
    assert ours_np.shape == theirs.shape, (ours_np.shape, theirs.shape)
    diff = float(np.abs(ours_np - theirs).max())
    assert diff <= TOL, f"max abs difference {diff} > {TOL}"
    return diff
