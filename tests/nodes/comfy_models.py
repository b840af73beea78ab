"""A models folder with only the tiny SD1.5 checkpoint (what the ComfyUI-semantics tests need), and an
executor over it: cheaper than the three tiny families of ``sd_workflow_helpers.make_models_root``."""

from __future__ import annotations

from pathlib import Path

from nodegraph.executor import Executor
from tests.nodes.sd_workflow_helpers import CHECKPOINT_NAMES, SEEDS, make_executor


def sd15_executor(root: Path, families: tuple[str, ...] = ("sd15",)) -> Executor:
    from tests.fixtures.tiny_sd import write_tiny_checkpoint

    (root / "checkpoints").mkdir(parents=True, exist_ok=True)
    for family in families:
        write_tiny_checkpoint(root / "checkpoints" / CHECKPOINT_NAMES[family], family, SEEDS[family])
    return make_executor(root)
