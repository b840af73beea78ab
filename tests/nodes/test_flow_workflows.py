"""The shipped FLUX, SD3 and DiT workflows run headless: tiny models are written under the names the workflows load
(folders, single files, text encoder files with a t5_tokenizer folder, a LoRA), and only sizes and step counts are
made small."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from nodegraph.context import RunSettings
from nodegraph.paths import PathPolicy
from nodegraph.workflow import parse_workflow
from tests.fixtures import spiece
from tests.fixtures.flow_files import (
    clip_file_state,
    flux_to_original,
    save,
    sd3_to_original,
    t5_file_state,
    vae_file_state,
)
from tests.fixtures.flux_loras import original_modules, write_kohya
from tests.fixtures.tiny_flow import write_dit
from tests.nodes.dit_helpers import make_executor, one_thread  # noqa: F401 (one_thread: autouse)
from tests.nodes.flow_fixtures import link

diffusers = pytest.importorskip("diffusers")
pytest.importorskip("sentencepiece")

ROOT = Path(__file__).resolve().parents[2]
SMALL = {"core.EmptyLatentForModel": {"width": 32, "height": 32}, "core.KSampler": {"steps": 2}}
NAMES = ("flux_dev_txt2img", "flux_schnell_txt2img", "flux_img2img", "flux_dev_files_lora", "sd3_medium_txt2img",
         "sd35_large_txt2img", "sd35_img2img", "dit_imagenet")


@pytest.fixture(scope="module")
def models(tmp_path_factory, flux_dev_folder, flux_schnell_folder, sd35_medium_folder):
    root = tmp_path_factory.mktemp("models")
    link(flux_dev_folder, root, "FLUX.1-dev")
    link(flux_schnell_folder, root, "FLUX.1-schnell")
    link(sd35_medium_folder, root, "stable-diffusion-3-medium-diffusers")
    write_dit(root / "checkpoints" / "DiT-XL-2-256")
    flux = diffusers.FluxPipeline.from_pretrained(flux_dev_folder, local_files_only=True)
    save(root / "diffusion_models" / "flux1-dev.safetensors", flux_to_original(flux.transformer.state_dict()))
    save(root / "text_encoders" / "clip_l.safetensors", clip_file_state(flux.text_encoder))
    save(root / "text_encoders" / "t5xxl_fp16.safetensors", t5_file_state(flux.text_encoder_2))
    spiece.write_folder(root / "text_encoders" / "t5_tokenizer", "t5")
    save(root / "vae" / "ae.safetensors", vae_file_state(flux.vae))
    write_kohya(root / "loras" / "flux_lora.safetensors", original_modules(flux.transformer, flux.text_encoder))
    sd3 = diffusers.StableDiffusion3Pipeline.from_pretrained(sd35_medium_folder, local_files_only=True)
    core = {f"model.diffusion_model.{k}": v
            for k, v in sd3_to_original(sd3.transformer.state_dict(), sd3.transformer.config.num_layers).items()}
    core |= {f"first_stage_model.{k}": v for k, v in vae_file_state(sd3.vae).items()}
    save(root / "checkpoints" / "sd3.5_large.safetensors", core)
    save(root / "checkpoints" / "sd3.5_medium.safetensors", core)
    # SD3's text encoder files: its CLIP-L, CLIP-G and T5 (the FLUX files above have other widths)
    save(root / "text_encoders" / "sd3" / "clip_l.safetensors", clip_file_state(sd3.text_encoder))
    save(root / "text_encoders" / "clip_g.safetensors", clip_file_state(sd3.text_encoder_2))
    save(root / "text_encoders" / "sd3" / "t5xxl_fp16.safetensors", t5_file_state(sd3.text_encoder_3))
    return root


def shrink(doc: dict) -> dict:
    for entry in doc["nodes"].values():
        params = entry.setdefault("params", {})
        params.update(SMALL.get(entry["type"], {}))
        if entry["type"] == "core.FlowTextEncoderLoader" and params["type"] == "sd3":
            params.update(clip_l="sd3/clip_l.safetensors", t5="sd3/t5xxl_fp16.safetensors")
    return doc


@pytest.mark.parametrize("name", NAMES)
def test_shipped_workflow_runs_and_saves_an_image(models, tmp_path, name):
    from PIL import Image

    doc = shrink(json.loads((ROOT / "workflows" / f"{name}.json").read_text(encoding="utf-8")))
    executor = make_executor(models)
    result = executor.run(parse_workflow(doc, executor.registry), ["save"],
                          settings=RunSettings(output_dir=tmp_path / "out", workflow=doc,
                                               paths=PathPolicy(workflow_dir=ROOT / "workflows")))  # as `run` reads it
    saved = [Path(p) for p in result.outputs["save"]["paths"].splitlines()]
    assert len(saved) == 1 and saved[0].is_file()
    expected = 64 if name in ("flux_img2img", "sd35_img2img") else 32
    assert Image.open(saved[0]).size == (expected, expected)
