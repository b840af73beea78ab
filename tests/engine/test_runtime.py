"""Runtime policy: device and dtype choice, and residency under a simulated memory budget."""

from __future__ import annotations

import pytest

from nodegraph.runtime import Residency, Runtime, pick_device, pick_dtype_name


class FakeModule:
    def __init__(self, name: str) -> None:
        self.name = name
        self.device = "cpu"


def _residency(budget: int, moves: list) -> Residency:
    def move(module, device):
        module.device = device
        moves.append((module.name, device))

    return Residency("cuda", budget, move)


def test_models_are_offloaded_least_recently_used_first_when_the_next_would_not_fit():
    moves: list = []
    residency = _residency(100, moves)
    a, b, c = FakeModule("a"), FakeModule("b"), FakeModule("c")
    residency.load(a, 40)
    residency.load(b, 40)
    residency.load(a, 40)  # a is now the most recently used
    residency.load(c, 40)
    assert (b.device, a.device, c.device) == ("cpu", "cuda", "cuda")
    assert moves == [("a", "cuda"), ("b", "cuda"), ("b", "cpu"), ("c", "cuda")]
    assert residency.resident_bytes == 80


def test_a_model_larger_than_the_budget_still_runs_alone():
    moves: list = []
    residency = _residency(100, moves)
    small, huge = FakeModule("small"), FakeModule("huge")
    residency.load(small, 10)
    residency.load(huge, 500)
    assert small.device == "cpu" and huge.device == "cuda"


def test_on_the_cpu_nothing_moves():
    moves: list = []
    residency = Residency("cpu", 10, lambda m, d: moves.append(d))
    residency.load(FakeModule("a"), 100)
    assert moves == []


def test_device_and_precision_policy():
    assert pick_device("cuda:1") == "cuda:1"
    assert pick_device() in ("cpu", "cuda", "mps")
    assert pick_dtype_name("cpu") == "fp32"
    assert pick_dtype_name("cuda") == "fp16"
    assert pick_dtype_name("cpu", "bf16") == "bf16"
    with pytest.raises(ValueError, match="precision must be one of"):
        Runtime(precision="fp8")
