"""Red team, model files: a pickle that contains itself, tensors that inflate a small file to gigabytes, forged
metadata, the wrong kind of model in a folder, a damaged file. Every loader refuses them with a message that
names the file (the checkpoint's fault, not the sampler's), quickly, without running code from the file."""

from __future__ import annotations

import json
import time
from pathlib import Path

import pytest
import torch
from safetensors import safe_open
from safetensors.torch import save_file

from nodegraph.model_folders import ModelFolders
from nodes.adapters.controlnet import ControlNetLoadError, load_controlnet
from nodes.adapters.lora import LoraFormatError, read_lora
from nodes.adapters.t2i_adapter import AdapterLoadError, load_adapter
from nodes.sd.single_file import load_single_file
from nodes.sd.tensor_sources import CheckpointError
from tests.security.hostile import cli, deeply_nested_ckpt, inflating_ckpt, self_referencing_ckpt, write_workflow

LOADERS = {  # a loader and the error it must raise for a file it cannot use
    "checkpoint": (load_single_file, CheckpointError),
    "lora": (read_lora, LoraFormatError),
    "controlnet": (load_controlnet, ControlNetLoadError),
    "t2i_adapter": (load_adapter, AdapterLoadError),
}
CONTROL_KEYS = ["input_hint_block.0.weight", "input_blocks.0.0.weight"]


def refuses(kind: str, path: Path, fragment: str) -> None:
    load, error = LOADERS[kind]
    started = time.perf_counter()
    with pytest.raises(error) as info:
        load(path)
    assert time.perf_counter() - started < 30  # no loop, no gigabytes
    assert path.name in str(info.value) and fragment in str(info.value), str(info.value)


@pytest.mark.parametrize("kind", list(LOADERS))
def test_a_pickle_that_contains_itself_is_refused_at_once(tmp_path, kind):
    refuses(kind, self_referencing_ckpt(tmp_path / "loop.ckpt"), "contains itself")


@pytest.mark.parametrize("kind", list(LOADERS))
def test_tensors_that_would_inflate_a_small_file_to_gigabytes_are_refused(tmp_path, kind):
    keys = {"checkpoint": ["model.diffusion_model.input_blocks.0.0.weight"], "lora": ["lora_unet_x.lora_down.weight"],
            "controlnet": CONTROL_KEYS, "t2i_adapter": ["conv_in.weight", "body.0.block1.weight"]}[kind]
    path = inflating_ckpt(tmp_path / "inflate.ckpt", keys)
    assert path.stat().st_size < 64 << 10
    refuses(kind, path, "pickle_expansion")


@pytest.mark.parametrize("kind", list(LOADERS))
def test_a_pickle_nested_deeper_than_the_limit_is_refused(tmp_path, kind):
    refuses(kind, deeply_nested_ckpt(tmp_path / "deep.ckpt", depth=200), "pickle_depth")


@pytest.mark.parametrize("kind", list(LOADERS))
def test_a_pickle_that_would_run_code_is_refused(tmp_path, kind):
    path = tmp_path / "evil.ckpt"
    torch.save({"w": torch.zeros(1), "x": Path("/etc")}, path)  # a class torch's weights-only loader refuses
    refuses(kind, path, "never run")


@pytest.mark.parametrize("kind", list(LOADERS))
def test_a_truncated_safetensors_file_is_refused_naming_it(tmp_path, kind):
    path = tmp_path / "cut.safetensors"
    save_file({k: torch.zeros(64, 64) for k in CONTROL_KEYS}, str(path))
    path.write_bytes(path.read_bytes()[:200])
    load, error = LOADERS[kind]
    with pytest.raises(error) as info:
        load(path)
    assert "cut.safetensors" in str(info.value)


# -- forged metadata -------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def tiny_sd15(tmp_path_factory) -> Path:
    from tests.fixtures.tiny_sd import write_tiny_checkpoint

    return write_tiny_checkpoint(tmp_path_factory.mktemp("forged") / "tiny.safetensors", "sd15", 3)


def forge(source: Path, target: Path, **changes: str | None) -> Path:
    with safe_open(str(source), framework="pt") as handle:
        metadata = dict(handle.metadata())
        tensors = {k: handle.get_tensor(k) for k in handle.keys()}
    for key, value in changes.items():
        key = key.replace("__", ".").replace("nodegraph.config_", "nodegraph.config.")
        if value is None:
            metadata.pop(key, None)
        else:
            metadata[key] = value
    save_file(tensors, str(target), metadata=metadata)
    return target


def text_config(source: Path, **changes) -> str:
    with safe_open(str(source), framework="pt") as handle:
        config = json.loads(handle.metadata()["nodegraph.config.text_encoder"])
    return json.dumps({**config, **changes})


FORGERIES = {
    "a 100,000-layer text encoder": (lambda s: {"nodegraph.config.text_encoder": text_config(s, num_hidden_layers=100_000)},
                                     "says num_hidden_layers = 100000, but its tensors hold 2"),
    "a UNet config that is not JSON": (lambda s: {"nodegraph.config.unet": "{not json"}, "not valid JSON"),
    "a VAE config that is a list": (lambda s: {"nodegraph.config.vae": "[1, 2]"}, "not an object"),
    "a config nested 5,000 deep": (lambda s: {"nodegraph.config.unet": "[" * 5000 + "]" * 5000}, "json_depth"),
    "a config with a 5,000-digit number": (lambda s: {"nodegraph.config.unet": '{"in_channels": ' + "9" * 5000 + "}"},
                                           "json_number_digits"),
    "a config past the size limit": (lambda s: {"nodegraph.config.unet": json.dumps({"x": "y" * (2 << 20)})}, "config_bytes"),
    "text encoder widths that do not fit the tensors": (lambda s: {"nodegraph.config.text_encoder": text_config(s, hidden_size=99)},
                                                        "hidden_size"),
    "heads that do not divide the width": (lambda s: {"nodegraph.config.text_encoder": text_config(s, num_attention_heads=7)},
                                           "cannot be built"),
    "a scheduler config diffusers cannot use": (lambda s: {"nodegraph.config.scheduler": json.dumps(
        {"_class_name": "EulerDiscreteScheduler", "beta_schedule": "nope"})}, "scheduler config in its metadata cannot be used"),
    "a scheduler config that is a string": (lambda s: {"nodegraph.config.scheduler": '"euler"'}, "not an object"),
    "an unknown prediction type": (lambda s: {"nodegraph.prediction_type": "evil"}, "prediction type 'evil'"),
    "another family": (lambda s: {"nodegraph.family": "sdxl"}, "says sdxl"),
}


@pytest.mark.parametrize("case", list(FORGERIES))
def test_forged_metadata_is_refused_as_the_checkpoints_fault(tiny_sd15, tmp_path, case):
    changes, fragment = FORGERIES[case]
    path = forge(tiny_sd15, tmp_path / "forged.safetensors", **changes(tiny_sd15))
    started = time.perf_counter()
    with pytest.raises(CheckpointError) as info:
        load_single_file(path)
    assert time.perf_counter() - started < 30
    assert "forged.safetensors" in str(info.value) and fragment in str(info.value), str(info.value)


def test_a_forged_checkpoint_fails_its_loader_node_with_exit_1(capsys, tiny_sd15, tmp_path):
    models = tmp_path / "models"
    (models / "checkpoints").mkdir(parents=True)
    forge(tiny_sd15, models / "checkpoints" / "forged.safetensors", **FORGERIES["a 100,000-layer text encoder"][0](tiny_sd15))
    workflow = write_workflow(tmp_path / "wf.json", {"ckpt": {"type": "core.CheckpointLoader", "params": {"ckpt_name": "forged.safetensors"}}})
    answer = cli(capsys, "run", workflow, "--models", models, "--output", tmp_path / "out")
    assert answer.code == 1 and "'ckpt' (core.CheckpointLoader) failed" in answer.text and "forged" in answer.text


# -- the wrong kind of model -----------------------------------------------------------------------------


@pytest.fixture(scope="module")
def control_folders(tmp_path_factory):
    """A ControlNet and a T2I-Adapter as diffusers folders, side by side in a ComfyUI-style controlnet folder."""
    from diffusers import ControlNetModel, T2IAdapter

    root = tmp_path_factory.mktemp("control") / "models"
    folder = root / "controlnet"
    ControlNetModel(block_out_channels=(32, 64), down_block_types=("DownBlock2D", "CrossAttnDownBlock2D"),
                    cross_attention_dim=32, layers_per_block=1, norm_num_groups=32, attention_head_dim=2,
                    conditioning_embedding_out_channels=(16, 32)).save_pretrained(folder / "a_controlnet")
    T2IAdapter(channels=[32, 64], num_res_blocks=1, downscale_factor=8).save_pretrained(folder / "an_adapter")
    return root


def test_load_t2i_adapter_refuses_a_controlnet_folder_instead_of_loading_random_weights(control_folders):
    with pytest.raises(AdapterLoadError, match="declares ControlNetModel, not T2IAdapter: load it with Load ControlNet"):
        load_adapter(control_folders / "controlnet" / "a_controlnet")
    with pytest.raises(ControlNetLoadError, match="declares T2IAdapter, not ControlNetModel"):
        load_controlnet(control_folders / "controlnet" / "an_adapter")


def test_each_loaders_list_offers_only_its_own_kind_from_a_shared_folder(control_folders):
    folders = ModelFolders([control_folders])
    adapters = folders.list("t2i_adapter", (".safetensors",), directories=True)
    controlnets = folders.list("controlnet", (".safetensors",), directories=True)
    assert "an_adapter" in adapters and "a_controlnet" not in adapters
    assert "a_controlnet" in controlnets and "an_adapter" not in controlnets
    assert not any(name.startswith("a_controlnet/") for name in adapters)  # nor its weights file
