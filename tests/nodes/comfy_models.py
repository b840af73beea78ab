"""A models folder with only the tiny SD1.5 checkpoint (what the ComfyUI-semantics tests need), and an
executor over it: cheaper than the three tiny families of ``sd_workflow_helpers.make_models_root``."""

from __future__ import annotations

from pathlib import Path

from nodegraph.executor import Executor
from tests.nodes.sd_workflow_helpers import CHECKPOINT_NAMES, SEEDS, make_executor


def sd15_executor(root: Path) -> Executor:
    from tests.fixtures.tiny_sd import write_tiny_checkpoint

    (root / "checkpoints").mkdir(parents=True, exist_ok=True)
    write_tiny_checkpoint(root / "checkpoints" / CHECKPOINT_NAMES["sd15"], "sd15", SEEDS["sd15"])
    return make_executor(root)
