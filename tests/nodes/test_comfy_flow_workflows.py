"""ComfyUI workflows of FLUX.1 [dev], [schnell] and SD3.5 (tests/fixtures/comfy/*_flux_*.json, *_sd35.json) imported,
validated and run on tiny models stored as ComfyUI users store them (a transformer in diffusion_models, text encoder
files, ae.safetensors; an SD3.5 checkpoint with separate text encoders).

The reference is diffusers' own pipeline given what ComfyUI computes: its noise (one ``randn`` of the latent from
the seed, packed for FLUX), its sigmas (``simple`` on ComfyUI's tables is the shifted ``linspace(1, 1/steps)``), its
T5 length (256 tokens for FLUX, 77 for SD3) and the shift of ModelSamplingFlux / ModelSamplingSD3. The pipelines
load the diffusers folders the files were written from, never our loaders' modules.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch

from nodegraph.comfy import export_api_prompt, load_comfy
from nodegraph.validation import validate
from tests.fixtures import spiece
from tests.fixtures.flow_files import (
    clip_file_state,
    flux_to_original,
    save,
    sd3_to_original,
    t5_file_state,
    vae_file_state,
)
from tests.input_policy import tmp_run_settings
from tests.nodes.dit_helpers import assert_same_image, make_executor, one_thread  # noqa: F401 (one_thread: autouse)

diffusers = pytest.importorskip("diffusers")
pytest.importorskip("sentencepiece")

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures" / "comfy"
PROMPT = "a red fox in the snow, photo, soft light"


def flux_root(root: Path, folder: Path, transformer_name: str, t5_names: tuple[str, ...]) -> Path:
    pipe = diffusers.FluxPipeline.from_pretrained(folder, local_files_only=True)
    save(root / "diffusion_models" / transformer_name, flux_to_original(pipe.transformer.state_dict()))
    save(root / "text_encoders" / "clip_l.safetensors", clip_file_state(pipe.text_encoder))
    for name in t5_names:
        save(root / "text_encoders" / name, t5_file_state(pipe.text_encoder_2))
    spiece.write_folder(root / "text_encoders" / "t5_tokenizer", "t5")
    save(root / "vae" / "ae.safetensors", vae_file_state(pipe.vae))
    return root


@pytest.fixture(scope="module")
def flux_models(tmp_path_factory, flux_dev_folder, flux_schnell_folder):
    dev = flux_root(tmp_path_factory.mktemp("flux-dev"), flux_dev_folder, "flux1-dev.safetensors",
                    ("t5xxl_fp16.safetensors",))
    schnell = flux_root(tmp_path_factory.mktemp("flux-schnell"), flux_schnell_folder, "flux1-schnell.safetensors",
                        ("t5xxl_fp16.safetensors", "t5xxl_fp8_e4m3fn.safetensors"))
    return {"dev": dev, "schnell": schnell}


@pytest.fixture(scope="module")
def sd35_models(tmp_path_factory, sd35_medium_folder):
    root = tmp_path_factory.mktemp("sd35")
    pipe = diffusers.StableDiffusion3Pipeline.from_pretrained(sd35_medium_folder, local_files_only=True)
    core = {f"model.diffusion_model.{k}": v
            for k, v in sd3_to_original(pipe.transformer.state_dict(), pipe.transformer.config.num_layers).items()}
    core |= {f"first_stage_model.{k}": v for k, v in vae_file_state(pipe.vae).items()}
    save(root / "checkpoints" / "sd3.5_medium.safetensors", core)  # no text encoders: TripleCLIPLoader brings them
    save(root / "text_encoders" / "clip_l.safetensors", clip_file_state(pipe.text_encoder))
    save(root / "text_encoders" / "clip_g.safetensors", clip_file_state(pipe.text_encoder_2))
    save(root / "text_encoders" / "t5xxl_fp16.safetensors", t5_file_state(pipe.text_encoder_3))
    spiece.write_folder(root / "text_encoders" / "t5_tokenizer", "t5")
    return root


def imported(name: str, models: Path, tmp_path: Path):
    """The fixture imported as a file next to it would be, validated, and an executor over ``models``."""
    executor = make_executor(models)
    result = load_comfy((FIXTURES / name).read_bytes(), executor.registry, source=str(FIXTURES / name))
    problems = validate(result.graph, executor.registry)
    assert not problems, problems
    assert not result.report.placeholders, result.report.placeholders
    return result, executor


def decoded(result, executor, tmp_path: Path) -> torch.Tensor:
    decode = next(i for i, n in result.graph.nodes.items() if n.type == "core.VAEDecode")
    save_id = next(i for i, n in result.graph.nodes.items() if n.type == "comfy.SaveImage")
    run = executor.run(result.graph, [decode, save_id], settings=tmp_run_settings(output_dir=tmp_path / "out"))
    assert list((tmp_path / "out").glob("*.png")), "the workflow's Save Image wrote nothing"
    return run.outputs[decode]["image"]


def comfy_noise(shape: tuple[int, ...], seed: int) -> torch.Tensor:
    from nodes.sampling.noise import initial_noise

    return initial_noise(shape, seed)


def flux_reference(folder: Path, *, width: int, height: int, steps: int, seed: int, guidance: float) -> np.ndarray:
    pipe = diffusers.FluxPipeline.from_pretrained(folder, local_files_only=True)
    noise = comfy_noise((1, 16, height // 8, width // 8), seed)
    latents = diffusers.FluxPipeline._pack_latents(noise, 1, 16, height // 8, width // 8)
    return pipe(PROMPT, height=height, width=width, num_inference_steps=steps, guidance_scale=guidance,
                latents=latents, max_sequence_length=256, sigmas=list(np.linspace(1.0, 1 / steps, steps)),
                output_type="np").images


@pytest.mark.parametrize("name", ["ui_flux_dev.json", "api_flux_dev.json"])
def test_comfyui_flux_dev_workflow_draws_what_flux_pipeline_draws_with_comfyuis_noise_sigmas_and_shift(
        flux_models, flux_dev_folder, tmp_path, name):
    result, executor = imported(name, flux_models["dev"], tmp_path)
    ours = decoded(result, executor, tmp_path)
    # ModelSamplingFlux's width and height are the image's, so its mu is FluxPipeline's for that size
    expected = flux_reference(flux_dev_folder, width=48, height=32, steps=4, seed=7, guidance=4.0)
    assert_same_image(ours, expected)


def test_comfyui_flux_schnell_workflow_equals_flux_pipeline_and_says_fp8_is_not_used(
        flux_models, flux_schnell_folder, tmp_path):
    result, executor = imported("ui_flux_schnell.json", flux_models["schnell"], tmp_path)
    assert any("fp8" in w.message for w in result.report.warnings)
    ours = decoded(result, executor, tmp_path)
    expected = flux_reference(flux_schnell_folder, width=32, height=32, steps=4, seed=3, guidance=3.5)
    assert_same_image(ours, expected)


def test_comfyui_flux_schnell_api_workflow_runs_a_batch_with_the_rectified_flow_ancestral_sampler(flux_models, tmp_path):
    result, executor = imported("api_flux_schnell.json", flux_models["schnell"], tmp_path)
    images = decoded(result, executor, tmp_path)
    assert images.shape == (2, 32, 32, 3) and torch.isfinite(images).all()
    assert not torch.allclose(images[0], images[1])  # one noise draw for the batch: two different images
    again = decoded(*imported("api_flux_schnell.json", flux_models["schnell"], tmp_path), tmp_path / "again")
    assert torch.equal(images, again)  # the per-step noise comes from the seed


def test_comfyui_sd35_workflow_equals_sd3_pipeline_with_cfg_and_a_negative_prompt(sd35_models, sd35_medium_folder,
                                                                                   tmp_path):
    result, executor = imported("ui_sd35.json", sd35_models, tmp_path)
    ours = decoded(result, executor, tmp_path)
    pipe = diffusers.StableDiffusion3Pipeline.from_pretrained(sd35_medium_folder, local_files_only=True)
    # a CLIP-L file pools without projection in ComfyUI (and in diffusers' from_single_file); the tiny folder's is random
    width = pipe.text_encoder.config.hidden_size
    pipe.text_encoder.text_projection.weight.data = torch.eye(width)
    expected = pipe(PROMPT, negative_prompt="blurry, low quality", height=48, width=32, num_inference_steps=4,
                    guidance_scale=4.5, latents=comfy_noise((1, 16, 6, 4), 11), max_sequence_length=77,
                    sigmas=list(np.linspace(1.0, 1 / 4, 4)), output_type="np").images
    assert_same_image(ours, expected)


def test_comfyui_sd35_api_workflow_runs_dpmpp_2m_on_sgm_uniform(sd35_models, tmp_path):
    result, executor = imported("api_sd35.json", sd35_models, tmp_path)
    images = decoded(result, executor, tmp_path)
    assert images.shape == (1, 48, 32, 3) and torch.isfinite(images).all()


@pytest.mark.parametrize("name", ["ui_flux_dev.json", "api_flux_dev.json", "ui_flux_schnell.json",
                                  "api_flux_schnell.json", "ui_sd35.json", "api_sd35.json"])
def test_imported_flow_workflow_exports_to_an_api_prompt_that_imports_to_the_same_graph(name):
    from nodegraph.installed import default_registry

    registry = default_registry()
    first = load_comfy((FIXTURES / name).read_bytes(), registry).graph
    prompt = export_api_prompt(first, registry)
    second = load_comfy(prompt, registry).graph
    runnable = {i: n for i, n in first.nodes.items() if n.type != "core.Note"}
    assert set(runnable) == set(second.nodes)
    for node_id, node in runnable.items():
        other = second.nodes[node_id]
        assert (node.type, node.inputs) == (other.type, other.inputs), node_id
        for key, value in node.params.items():
            assert other.params[key] == pytest.approx(value), (node_id, key)
