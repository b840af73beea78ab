"""Checkpoint Loader, VAE Loader and Save Checkpoint as nodes run by the executor, on tiny random models
written in the original single-file layout."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch
from safetensors import safe_open

from nodegraph.atomic_files import current_umask
from nodegraph.context import RunSettings
from nodegraph.errors import NodeExecutionError, WorkflowError
from nodegraph.events import NodeLog
from nodegraph.executor import Executor
from nodegraph.installed import default_registry
from nodegraph.model_folders import ModelFolders
from nodegraph.runtime import Runtime
from nodegraph.workflow import parse_workflow
from nodes.sd.handles import ClipHandle, ModelHandle, VaeHandle
from tests.fixtures.tiny_sd import tiny_components, write_tiny_checkpoint


def _workflow(nodes: dict) -> dict:
    return {"format": "nodegraph.workflow", "version": 1, "nodes": nodes}


def _executor(root: Path, runtime: Runtime | None = None) -> Executor:
    return Executor(default_registry(plugins=False), runtime=runtime or Runtime("cpu"), folders=ModelFolders([root]))


def _run(executor: Executor, nodes: dict, output_dir: Path, events: list | None = None) -> dict:
    graph = parse_workflow(_workflow(nodes), executor.registry)
    sink = events.append if events is not None else None
    targets = [n for n in nodes]
    return executor.run(graph, targets, on_event=sink, settings=RunSettings(output_dir=output_dir)).outputs


def _loader(name: str) -> dict:
    return {"type": "core.CheckpointLoader", "params": {"ckpt_name": name}}


def _same_weights(a: torch.nn.Module, b: torch.nn.Module) -> None:
    sa, sb = a.state_dict(), b.state_dict()
    assert sa.keys() == sb.keys()
    for key in sa:
        assert sa[key].dtype == sb[key].dtype, key
        assert torch.equal(sa[key], sb[key]), key


@pytest.fixture
def models(tmp_path: Path) -> Path:
    (tmp_path / "checkpoints").mkdir()
    return tmp_path


@pytest.mark.parametrize("family", ["sd15", "sdxl", "sdxl_refiner"])
def test_loader_gives_the_weights_that_were_saved_and_names_the_family(models: Path, family: str) -> None:
    write_tiny_checkpoint(models / "checkpoints" / f"{family}.safetensors", family, seed=3)
    events: list = []
    out = _run(_executor(models), {"load": _loader(f"{family}.safetensors")}, models / "out", events)["load"]
    original = tiny_components(family, seed=3)

    assert out["family"] == family
    model, clip, vae = out["model"], out["clip"], out["vae"]
    assert isinstance(model, ModelHandle) and isinstance(clip, ClipHandle) and isinstance(vae, VaeHandle)
    _same_weights(original.unet, model.unet)
    _same_weights(original.vae, vae.vae)
    assert len(clip.encoders) == len(original.text_encoders) == len(clip.tokenizers)
    for saved, loaded in zip(original.text_encoders, clip.encoders):
        assert type(saved) is type(loaded)
        _same_weights(saved, loaded)
    assert vae.scaling_factor == original.vae.config.scaling_factor
    assert model.scheduler_config["_class_name"] == original.scheduler_config["_class_name"]
    for module in (model.unet, vae.vae, *clip.encoders):
        assert not module.training and not any(p.requires_grad for p in module.parameters())
    label = {"sd15": "SD1.5", "sdxl": "SDXL", "sdxl_refiner": "SDXL refiner"}[family]
    logs = [e.message for e in events if isinstance(e, NodeLog)]
    assert any(m.startswith(f"loaded {label} checkpoint {family}.safetensors") for m in logs), logs


def test_sdxl_tokenizers_pad_as_the_encoders_were_trained(models: Path) -> None:
    write_tiny_checkpoint(models / "checkpoints" / "xl.safetensors", "sdxl")
    clip = _run(_executor(models), {"load": _loader("xl.safetensors")}, models / "out")["load"]["clip"]
    clip_l, clip_g = clip.tokenizers
    ids_l = clip_l("a cat", padding="max_length").input_ids
    ids_g = clip_g("a cat", padding="max_length").input_ids
    assert ids_l[:4] == ids_g[:4] == [49406, 320, 2368, 49407]
    assert len(ids_l) == len(ids_g) == 77
    assert ids_l[-1] == 49407 and ids_g[-1] == 0  # CLIP-L pads with <|endoftext|>, bigG with "!"


def test_save_checkpoint_round_trips_exactly_and_never_overwrites(models: Path) -> None:
    write_tiny_checkpoint(models / "checkpoints" / "base.safetensors", "sdxl", seed=1)
    executor = _executor(models)
    out_dir = models / "out"
    nodes = {
        "load": _loader("base.safetensors"),
        "save": {"type": "core.SaveCheckpoint", "params": {"filename_prefix": "merges/mine"},
                 "inputs": {"model": ["load", "model"], "clip": ["load", "clip"], "vae": ["load", "vae"]}},
    }
    first = Path(_run(executor, nodes, out_dir)["save"]["path"])
    assert first == out_dir / "merges" / "mine_00001.safetensors"
    executor.cache.clear()
    second = Path(_run(executor, nodes, out_dir)["save"]["path"])
    assert second.name == "mine_00002.safetensors" and first.exists()
    assert not [p for p in first.parent.iterdir() if p.name.startswith(".")]  # no temporary files left
    assert first.stat().st_mode & 0o777 == 0o666 & ~current_umask()  # not safetensors' private 0600
    with safe_open(str(first), "pt") as handle:
        meta = handle.metadata()
        assert meta["nodegraph.family"] == "sdxl"
        assert json.loads(meta["nodegraph.config.unet"])["block_out_channels"] == [32, 64]
        assert any(k.startswith("conditioner.embedders.1.model.transformer.resblocks.") for k in handle.keys())

    reloaded = _run(_executor(models), {"load": _loader(str(first))}, out_dir)["load"]
    original = tiny_components("sdxl", seed=1)
    _same_weights(original.unet, reloaded["model"].unet)
    _same_weights(original.vae, reloaded["vae"].vae)
    for a, b in zip(original.text_encoders, reloaded["clip"].encoders):
        _same_weights(a, b)


@pytest.mark.parametrize("prefix", ["../escape", "/tmp/absolute", "a/../../b"])
def test_save_checkpoint_prefix_cannot_leave_the_output_folder(models: Path, prefix: str) -> None:
    write_tiny_checkpoint(models / "checkpoints" / "m.safetensors", "sd15")
    nodes = {
        "load": _loader("m.safetensors"),
        "save": {"type": "core.SaveCheckpoint", "params": {"filename_prefix": prefix},
                 "inputs": {"model": ["load", "model"], "clip": ["load", "clip"], "vae": ["load", "vae"]}},
    }
    with pytest.raises(NodeExecutionError, match="output folder") as info:
        _run(_executor(models), nodes, models / "out")
    assert info.value.node_id == "save"
    assert not list(models.rglob("*_00001.safetensors"))


def test_save_checkpoint_in_half_precision_stores_fp16(models: Path) -> None:
    write_tiny_checkpoint(models / "checkpoints" / "m.safetensors", "sd15")
    nodes = {
        "load": _loader("m.safetensors"),
        "save": {"type": "core.SaveCheckpoint", "params": {"filename_prefix": "half", "dtype": "fp16"},
                 "inputs": {"model": ["load", "model"], "clip": ["load", "clip"], "vae": ["load", "vae"]}},
    }
    path = _run(_executor(models), nodes, models / "out")["save"]["path"]
    with safe_open(path, "pt") as handle:
        assert {handle.get_tensor(k).dtype for k in handle.keys()} == {torch.float16}
    reloaded = _run(_executor(models), {"load": _loader(path)}, models / "out")["load"]
    original = tiny_components("sd15")
    weight = "conv_in.weight"
    assert torch.equal(reloaded["model"].unet.state_dict()[weight], original.unet.state_dict()[weight].half().float())


def test_loader_keeps_weights_in_the_runtime_dtype(models: Path) -> None:
    write_tiny_checkpoint(models / "checkpoints" / "m.safetensors", "sdxl")
    out = _run(_executor(models, Runtime("cpu", precision="bf16")), {"load": _loader("m.safetensors")},
               models / "out")["load"]
    assert {p.dtype for p in out["model"].unet.parameters()} == {torch.bfloat16}
    assert {p.dtype for e in out["clip"].encoders for p in e.parameters()} == {torch.bfloat16}
    assert {p.dtype for p in out["vae"].vae.parameters()} == {torch.bfloat16}


def _pipeline(model):
    from diffusers import EulerDiscreteScheduler, PNDMScheduler, StableDiffusionPipeline, StableDiffusionXLPipeline

    if model.family == "sd15":
        return StableDiffusionPipeline(
            vae=model.vae, text_encoder=model.text_encoders[0], tokenizer=model.tokenizers[0], unet=model.unet,
            scheduler=PNDMScheduler.from_config(model.scheduler_config), safety_checker=None,
            feature_extractor=None, requires_safety_checker=False,
        )
    return StableDiffusionXLPipeline(
        vae=model.vae, text_encoder=model.text_encoders[0], text_encoder_2=model.text_encoders[1],
        tokenizer=model.tokenizers[0], tokenizer_2=model.tokenizers[1], unet=model.unet,
        scheduler=EulerDiscreteScheduler.from_config(model.scheduler_config),
    )


@pytest.mark.parametrize(("family", "label"), [("sd15", "SD1.5"), ("sdxl", "SDXL")])
def test_diffusers_folder_loads(models: Path, family: str, label: str) -> None:
    original = tiny_components(family, seed=5)
    _pipeline(original).save_pretrained(models / "checkpoints" / "tiny-diffusers")
    events: list = []
    out = _run(_executor(models), {"load": _loader("tiny-diffusers")}, models / "out", events)["load"]
    assert out["family"] == family
    _same_weights(original.unet, out["model"].unet)
    _same_weights(original.vae, out["vae"].vae)
    for a, b in zip(original.text_encoders, out["clip"].encoders, strict=True):
        _same_weights(a, b)
    assert out["model"].scheduler_config["_class_name"] == original.scheduler_config["_class_name"]
    assert [t.pad_token_id for t in out["clip"].tokenizers] == [t.pad_token_id for t in original.tokenizers]
    assert any(f"{label} diffusers folder" in e.message for e in events if isinstance(e, NodeLog))


def test_vae_loader_reads_diffusers_layouts(models: Path) -> None:
    from safetensors.torch import save_file

    original = tiny_components("sd15", seed=6)
    (models / "vae").mkdir()
    original.vae.save_pretrained(models / "vae" / "folder-vae")
    save_file({k: v.contiguous() for k, v in original.vae.state_dict().items()},
              str(models / "vae" / "diffusers_layout.safetensors"))
    out = _run(_executor(models), {
        "folder": {"type": "core.VAELoader", "params": {"vae_name": "folder-vae"}},
        "file": {"type": "core.VAELoader", "params": {"vae_name": "diffusers_layout.safetensors"}},
    }, models / "out")
    for name in ("folder", "file"):
        _same_weights(original.vae, out[name]["vae"].vae)
        assert out[name]["vae"].scaling_factor == 0.18215


def test_vae_loader_reads_a_vae_file_and_a_checkpoints_vae(models: Path) -> None:
    from safetensors.torch import save_file

    from nodes.sd.convert_to_ldm import vae_to_ldm

    original = tiny_components("sdxl", seed=2)
    (models / "vae").mkdir()
    # a bare original-layout VAE file, as VAEs are shared (no metadata): the configs cannot say the norm
    # groups, so this file's architecture is described by its shapes alone
    bare = dict(vae_to_ldm(original.vae.state_dict(), original.vae.config, prefix=""))
    save_file({k: v.contiguous() for k, v in bare.items()}, str(models / "vae" / "my_xl_vae.safetensors"))
    write_tiny_checkpoint(models / "vae" / "whole.safetensors", "sdxl", seed=2)
    out = _run(_executor(models), {
        "bare": {"type": "core.VAELoader", "params": {"vae_name": "my_xl_vae.safetensors"}},
        "whole": {"type": "core.VAELoader", "params": {"vae_name": "whole.safetensors"}},
        "forced": {"type": "core.VAELoader", "params": {"vae_name": "my_xl_vae.safetensors",
                                                         "latent_scale": "sd15"}},
    }, models / "out")
    for name in ("bare", "whole"):
        assert out[name]["vae"].scaling_factor == 0.13025 and out[name]["vae"].family == "sdxl"
        loaded = out[name]["vae"].vae.state_dict()
        for key, value in original.vae.state_dict().items():
            assert torch.equal(loaded[key], value), (name, key)
    assert out["forced"]["vae"].scaling_factor == 0.18215


def test_checkpoint_without_a_vae_loads_and_says_so(models: Path) -> None:
    from safetensors.torch import load_file, save_file

    path = write_tiny_checkpoint(models / "whole.safetensors", "sd15")
    tensors = {k: v for k, v in load_file(str(path)).items() if not k.startswith("first_stage_model.")}
    save_file(tensors, str(models / "checkpoints" / "novae.safetensors"))
    events: list = []
    out = _run(_executor(models), {"load": _loader("novae.safetensors")}, models / "out", events)["load"]
    assert out["vae"] is None and out["family"] == "sd15"
    assert any(e.level == "warning" and "has no VAE" in e.message for e in events if isinstance(e, NodeLog))


def test_missing_model_file_is_reported_before_the_run_listing_the_folders_searched(models: Path) -> None:
    with pytest.raises(WorkflowError) as info:
        _run(_executor(models), {"load": _loader("nowhere.safetensors")}, models / "out")
    message = str(info.value)
    assert "'load'" in message and "'ckpt_name'" in message and "nowhere.safetensors" in message
    assert str(models / "checkpoints") in message and str(models / "Stable-diffusion") in message


def test_unknown_model_family_is_refused_naming_what_was_found(models: Path) -> None:
    from safetensors.torch import save_file

    save_file({"double_blocks.0.img_attn.qkv.weight": torch.zeros(3, 2), "img_in.weight": torch.zeros(2, 2)},
              str(models / "checkpoints" / "flux.safetensors"))
    with pytest.raises(NodeExecutionError) as info:
        _run(_executor(models), {"load": _loader("flux.safetensors")}, models / "out")
    message = str(info.value)
    assert "not an SD1.5, SDXL or SDXL refiner checkpoint" in message and "FLUX" in message
    assert "double_blocks (1 tensors)" in message


def test_truncated_safetensors_is_a_clear_error(models: Path) -> None:
    path = write_tiny_checkpoint(models / "checkpoints" / "whole.safetensors", "sd15")
    data = path.read_bytes()
    (models / "checkpoints" / "cut.safetensors").write_bytes(data[: len(data) // 2])
    with pytest.raises(NodeExecutionError, match=r"cut\.safetensors is not a readable safetensors file \(truncated"):
        _run(_executor(models), {"load": _loader("cut.safetensors")}, models / "out")


def test_corrupted_safetensors_header_is_a_clear_error(models: Path) -> None:
    path = write_tiny_checkpoint(models / "checkpoints" / "whole.safetensors", "sd15")
    data = bytearray(path.read_bytes())
    data[9:40] = b"#" * 31  # inside the JSON header
    (models / "checkpoints" / "bad.safetensors").write_bytes(bytes(data))
    with pytest.raises(NodeExecutionError, match=r"bad\.safetensors is not a readable safetensors file"):
        _run(_executor(models), {"load": _loader("bad.safetensors")}, models / "out")


def test_ckpt_is_loaded_without_running_pickled_code(models: Path) -> None:
    from safetensors.torch import load_file

    path = write_tiny_checkpoint(models / "checkpoints" / "m.safetensors", "sd15", seed=4)
    torch.save({"state_dict": load_file(str(path)), "global_step": 10}, models / "checkpoints" / "m.ckpt")
    out = _run(_executor(models), {"load": _loader("m.ckpt")}, models / "out")["load"]
    # a .ckpt carries no configs: the architecture comes from the tensor shapes, the weights are exact
    _same_weights(tiny_components("sd15", seed=4).unet, out["model"].unet)

    class Payload:
        def __reduce__(self):
            return (print, ("pickled code ran",))

    torch.save({"state_dict": {"x": torch.zeros(1)}, "evil": Payload()}, models / "checkpoints" / "evil.ckpt")
    with pytest.raises(NodeExecutionError, match="pickled code is never run"):
        _run(_executor(models), {"load": _loader("evil.ckpt")}, models / "out")


@pytest.mark.parametrize("family", ["sd15", "sdxl"])
def test_save_checkpoint_merges_loras_into_the_saved_weights(models: Path, family: str) -> None:
    from nodes.sd.text_encode import patches_applied
    from tests.fixtures.tiny_sd import tiny_configs
    from tests.nodes.lora_files import TEXT_TARGETS, UNET_TARGETS, peft_adapter, write_diffusers

    write_tiny_checkpoint(models / "checkpoints" / "base.safetensors", family, seed=2)
    original = tiny_components(family, seed=2)
    text = [peft_adapter(e, TEXT_TARGETS, rank=4, alpha=4.0, seed=2 + i) for i, e in enumerate(original.text_encoders)]
    lora = write_diffusers(models / "loras", family,
                           peft_adapter(original.unet, UNET_TARGETS, rank=4, alpha=2.0, seed=1), text)
    nodes = {
        "load": _loader("base.safetensors"),
        "lora": {"type": "core.LoraLoader", "params": {"lora_name": lora.name, "strength_model": 0.8,
                                                        "strength_clip": 0.5},
                 "inputs": {"model": ["load", "model"], "clip": ["load", "clip"]}},
        "save": {"type": "core.SaveCheckpoint", "params": {"filename_prefix": "merged"},
                 "inputs": {"model": ["lora", "model"], "clip": ["lora", "clip"], "vae": ["load", "vae"]}},
    }
    out = _run(_executor(models), nodes, models / "out")
    merged = _run(_executor(models), {"load": _loader(out["save"]["path"])}, models / "out")["load"]
    patched_model, patched_clip = out["lora"]["model"], out["lora"]["clip"]

    torch.manual_seed(0)
    unet_config = tiny_configs(family)["unet"]
    inputs = (torch.randn(1, 4, 16, 16), torch.tensor(500), torch.randn(1, 77, unet_config["cross_attention_dim"]))
    extra = {} if family == "sd15" else {"added_cond_kwargs": {"text_embeds": torch.randn(1, 40),
                                                               "time_ids": torch.randn(1, 6)}}
    ids = torch.tensor([original.tokenizers[0]("a cat", padding="max_length").input_ids])
    with torch.no_grad():
        with patches_applied(patched_model.unet, patched_model.patches):
            expected = patched_model.unet(*inputs, **extra).sample
        base = patched_model.unet(*inputs, **extra).sample
        saved = merged["model"].unet(*inputs, **extra).sample
        assert (expected - base).abs().max() > 1e-3  # the LoRA does change the output...
        torch.testing.assert_close(saved, expected, rtol=0, atol=1e-5)  # ...and the saved weights carry it
        for patched, reloaded in zip(patched_clip.encoders, merged["clip"].encoders, strict=True):
            with patches_applied(patched, patched_clip.patches):
                expected_text = patched(ids).last_hidden_state
            torch.testing.assert_close(reloaded(ids).last_hidden_state, expected_text, rtol=0, atol=1e-5)
    _same_weights(original.unet, out["load"]["model"].unet)  # the shared base model is untouched
    for a, b in zip(original.text_encoders, out["load"]["clip"].encoders):
        _same_weights(a, b)
