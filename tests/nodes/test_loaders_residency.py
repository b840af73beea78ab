"""Model residency with the modules a checkpoint loader returns, against a simulated device budget (the
move is injected: no GPU needed, and nothing really moves)."""

from __future__ import annotations

import gc
from pathlib import Path

import pytest

from nodegraph.runtime import Runtime, module_nbytes
from nodes.sd.single_file import load_single_file
from tests.fixtures.tiny_sd import write_tiny_checkpoint


@pytest.fixture(scope="module")
def sdxl(tmp_path_factory: pytest.TempPathFactory):
    path = write_tiny_checkpoint(Path(tmp_path_factory.mktemp("ckpt")) / "xl.safetensors", "sdxl")
    return load_single_file(path)


def _runtime(budget: int, moves: list, names: dict) -> Runtime:
    return Runtime("cuda", budget_bytes=budget, move=lambda module, device: moves.append((names[id(module)], device)))


def test_text_encoders_make_room_for_the_unet_and_come_back_when_needed(sdxl) -> None:
    clip_l, clip_g = sdxl.text_encoders
    names = {id(clip_l): "clip_l", id(clip_g): "clip_g", id(sdxl.unet): "unet", id(sdxl.vae): "vae"}
    sizes = {n: module_nbytes(m) for n, m in (("clip_l", clip_l), ("clip_g", clip_g), ("unet", sdxl.unet),
                                              ("vae", sdxl.vae))}
    # room for both text encoders, or for one of them with the UNet and the VAE, but not for all of them
    budget = sizes["clip_l"] + sizes["clip_g"]
    assert sizes["clip_g"] + sizes["unet"] + sizes["vae"] <= budget < budget + sizes["unet"]
    moves: list = []
    residency = _runtime(budget, moves, names).residency

    for module in (clip_l, clip_g):  # encode the prompt
        assert residency.load(module) is module
    residency.load(sdxl.unet)  # sample: the least recently used encoder makes room
    residency.load(sdxl.vae)  # decode: fits beside them
    assert moves == [("clip_l", "cuda"), ("clip_g", "cuda"), ("clip_l", "cpu"), ("unet", "cuda"), ("vae", "cuda")]
    assert residency.resident_bytes == sizes["clip_g"] + sizes["unet"] + sizes["vae"]

    moves.clear()
    residency.load(sdxl.unet)  # already there: nothing moves, it just becomes the most recent
    residency.load(clip_l)  # a new prompt: the least recently used (clip_g) goes first, and that is enough
    assert moves == [("clip_g", "cpu"), ("clip_l", "cuda")]
    assert [names[id(m)] for m in residency.resident()] == ["vae", "unet", "clip_l"]


def test_handles_sharing_a_module_count_it_once(sdxl) -> None:
    from nodes.sd.handles import ModelHandle

    base = ModelHandle(sdxl.unet, "sdxl", sdxl.scheduler_config, "epsilon")
    patched = base.replace(patches=("a LoRA",))
    moves: list = []
    residency = _runtime(10 * module_nbytes(sdxl.unet), moves, {id(sdxl.unet): "unet"}).residency
    residency.load(base.unet)
    residency.load(patched.unet)
    assert moves == [("unet", "cuda")]
    assert residency.resident_bytes == module_nbytes(sdxl.unet)


def test_a_model_nobody_holds_any_more_is_forgotten(sdxl) -> None:
    import copy

    moves: list = []
    spare = copy.deepcopy(sdxl.vae)
    names = {id(spare): "spare", id(sdxl.vae): "vae"}
    residency = _runtime(10 * module_nbytes(spare), moves, names).residency
    residency.load(spare)
    residency.load(sdxl.vae)
    del spare  # e.g. its cache entry was evicted
    gc.collect()
    assert [names[id(m)] for m in residency.resident()] == ["vae"]
    assert residency.resident_bytes == module_nbytes(sdxl.vae)
    residency.offload_all()
    assert moves[-1] == ("vae", "cpu") and residency.resident_bytes == 0


def test_on_a_cpu_runtime_loaded_modules_never_move(sdxl) -> None:
    moves: list = []
    residency = Runtime("cpu", budget_bytes=1, move=lambda m, d: moves.append(d)).residency
    for module in (sdxl.unet, sdxl.vae, *sdxl.text_encoders):
        residency.load(module)
    assert moves == []
    assert all(p.device.type == "cpu" for p in sdxl.unet.parameters())
