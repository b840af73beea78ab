"""Garbage stops where it is made: NaN weights or a prompt weight that overflows to infinity used to save black
images and exit 0. Now the node that produced non-finite latents, images or conditioning fails, naming them;
``--allow-nonfinite`` keeps going for whoever wants to look at them."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch
from safetensors import safe_open
from safetensors.torch import save_file

from tests.security.hostile import cli, write_workflow


@pytest.fixture(scope="module")
def models(tmp_path_factory) -> Path:
    from tests.fixtures.tiny_sd import write_tiny_checkpoint

    root = tmp_path_factory.mktemp("models")
    (root / "checkpoints").mkdir()
    good = write_tiny_checkpoint(root / "checkpoints" / "good.safetensors", "sd15", 0)
    with safe_open(str(good), framework="pt") as handle:
        metadata = handle.metadata()
        tensors = {k: handle.get_tensor(k) for k in handle.keys()}
    key = "model.diffusion_model.out.2.weight"
    tensors[key] = torch.full_like(tensors[key], float("nan"))
    save_file(tensors, str(root / "checkpoints" / "nan.safetensors"), metadata=metadata)
    return root


def txt2img(folder: Path, checkpoint: str, prompt: str = "a red circle") -> Path:
    def n(kind, params=None, **inputs):
        return {"type": kind, "params": params or {}, "inputs": {k: list(v) for k, v in inputs.items()}}

    return write_workflow(folder / "wf.json", {
        "ckpt": n("core.CheckpointLoader", {"ckpt_name": checkpoint}),
        "pos": n("core.CLIPTextEncode", {"text": prompt}, clip=("ckpt", "clip")),
        "neg": n("core.CLIPTextEncode", {"text": ""}, clip=("ckpt", "clip")),
        "empty": n("core.EmptyLatentImage", {"width": 32, "height": 32}),
        "sampler": n("core.KSampler", {"steps": 2, "cfg": 5.0}, model=("ckpt", "model"), positive=("pos", "conditioning"),
                     negative=("neg", "conditioning"), latent_image=("empty", "latent")),
        "decode": n("core.VAEDecode", samples=("sampler", "latent"), vae=("ckpt", "vae")),
        "save": n("core.SaveImage", {"filename_prefix": "out"}, images=("decode", "image")),
    })


def test_nan_weights_fail_the_sampler_and_save_nothing(capsys, models, tmp_path):
    answer = cli(capsys, "run", txt2img(tmp_path, "nan.safetensors"), "--models", models, "--output", tmp_path / "out")
    assert answer.code == 1
    assert "'sampler' (core.KSampler) failed" in answer.text and "NaN" in answer.text and "--allow-nonfinite" in answer.text
    assert not list((tmp_path / "out").glob("*.png")) if (tmp_path / "out").exists() else True


def test_a_prompt_weight_that_overflows_fails_the_text_encoder(capsys, models, tmp_path):
    workflow = txt2img(tmp_path, "good.safetensors", prompt="a (red:" + "9" * 40 + ") circle")
    answer = cli(capsys, "run", workflow, "--models", models, "--output", tmp_path / "out")
    assert answer.code == 1 and "'pos' (core.CLIPTextEncode) failed" in answer.text and "infinite" in answer.text


def test_allow_nonfinite_keeps_the_garbage_for_inspection(capsys, models, tmp_path):
    answer = cli(capsys, "run", txt2img(tmp_path, "nan.safetensors"), "--models", models, "--output", tmp_path / "out",
                 "--allow-nonfinite")
    assert answer.code == 0
    assert len(list((tmp_path / "out").glob("out_*.png"))) == 1


def test_a_good_model_still_runs(capsys, models, tmp_path):
    answer = cli(capsys, "run", txt2img(tmp_path, "good.safetensors"), "--models", models, "--output", tmp_path / "out")
    assert answer.code == 0, answer.text
