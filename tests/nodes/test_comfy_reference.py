"""One ComfyUI reference case on the full-size checkpoint (opt-in: it takes minutes and 5 GB).

Runs when ``NODEGRAPH_COMFY_REFERENCE`` names the comfy-reference folder and the checkpoint is already in
``.work/comfy-ref`` (``python benchmarks/comfy_equivalence.py --cases 01`` puts it there); the benchmark runs
every case.
"""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
WORK = ROOT / ".work" / "comfy-ref"
REFERENCE = os.environ.get("NODEGRAPH_COMFY_REFERENCE")


@pytest.mark.skipif(not REFERENCE or not (WORK / "checkpoints" / "sd15_random_ref.safetensors").is_file(),
                    reason="set NODEGRAPH_COMFY_REFERENCE and generate the checkpoint (benchmarks/comfy_equivalence.py)")
def test_case_01_draws_comfyuis_png_within_one_level(tmp_path):
    sys.path.insert(0, str(ROOT / "benchmarks"))
    from comfy_equivalence import run_case

    from nodegraph.executor import Executor
    from nodegraph.installed import default_registry
    from nodegraph.model_folders import ModelFolders
    from nodegraph.runtime import Runtime

    public = Path(REFERENCE) / "public"
    case = next(c for c in json.loads((public / "cases.json").read_text())["cases"] if c["id"] == "case_01")
    registry = default_registry()
    executor = Executor(registry, runtime=Runtime("cpu", "fp32"), folders=ModelFolders([WORK]))
    (row,) = run_case(case, public, executor, registry, tmp_path)
    assert row["png_max"] <= 1 and row["npy_max"] < 0.01
