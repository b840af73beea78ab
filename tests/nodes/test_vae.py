"""VAE Encode / Decode (whole and tiled) against diffusers on a tiny random AutoencoderKL."""

from __future__ import annotations

import itertools
from pathlib import Path

import pytest
import torch
import torch.nn.functional as F
from diffusers import DDIMScheduler, StableDiffusionImg2ImgPipeline
from diffusers.image_processor import VaeImageProcessor
from diffusers.pipelines.stable_diffusion.pipeline_stable_diffusion_img2img import retrieve_latents
from diffusers.utils.torch_utils import randn_tensor
from hypothesis import given
from hypothesis import strategies as st
from PIL import Image

from nodegraph.errors import NodeInputError
from nodes.latent.codec import decode, tile_starts, tiled_map
from nodes.latent.vae_nodes import vae_decode, vae_decode_tiled, vae_encode, vae_encode_tiled
from tests.nodes.image_fixtures import call, make_ctx, tiny_vae, vae_handle


@pytest.fixture(scope="module")
def vae():
    return tiny_vae()


def _latents(shape=(2, 4, 8, 8), seed: int = 3) -> torch.Tensor:
    return torch.randn(shape, generator=torch.Generator().manual_seed(seed))


def _pil(size=(64, 48), seed: int = 5) -> Image.Image:
    g = torch.Generator().manual_seed(seed)
    return Image.fromarray((torch.rand(size[1], size[0], 3, generator=g) * 255).to(torch.uint8).numpy())


def _as_image(pil: Image.Image) -> torch.Tensor:
    return torch.from_numpy(VaeImageProcessor.pil_to_numpy(pil))  # [1, H, W, 3], what Load Image gives


def test_decode_equals_diffusers_decode_and_postprocess(tmp_path: Path, vae) -> None:
    latents = _latents()
    with torch.no_grad():
        raw = vae.decode(latents / vae.config.scaling_factor, return_dict=False)[0]
    expected = VaeImageProcessor(vae_scale_factor=8).postprocess(raw, output_type="np")
    image = call(vae_decode, make_ctx(tmp_path), samples={"samples": latents}, vae=vae_handle(vae))["image"]
    assert image.dtype == torch.float32 and image.device.type == "cpu" and image.shape == (2, 64, 64, 3)
    assert torch.equal(image, torch.from_numpy(expected))


def test_decode_uses_latents_mean_and_std_like_the_sdxl_pipeline(tmp_path: Path) -> None:
    mean, std = [0.1, -0.2, 0.3, 0.0], [1.5, 0.5, 1.0, 2.0]
    vae = tiny_vae(latents_mean=mean, latents_std=std)
    latents = _latents((1, 4, 8, 8))
    unscaled = latents * torch.tensor(std).view(1, 4, 1, 1) / vae.config.scaling_factor + torch.tensor(mean).view(1, 4, 1, 1)
    with torch.no_grad():
        expected = VaeImageProcessor().postprocess(vae.decode(unscaled, return_dict=False)[0], output_type="pt")
    image = call(vae_decode, make_ctx(tmp_path), samples={"samples": latents}, vae=vae_handle(vae))["image"]
    assert torch.equal(image, expected.permute(0, 2, 3, 1))


def test_encode_mode_equals_diffusers_argmax(tmp_path: Path, vae) -> None:
    pil = _pil()
    pixels = VaeImageProcessor(vae_scale_factor=8).preprocess(pil)
    with torch.no_grad():
        expected = vae.config.scaling_factor * retrieve_latents(vae.encode(pixels), sample_mode="argmax")
    latent = call(vae_encode, make_ctx(tmp_path), pixels=_as_image(pil), vae=vae_handle(vae))["latent"]
    assert latent["samples"].shape == (1, 4, 6, 8)
    assert torch.equal(latent["samples"], expected)


def test_encode_sample_matches_img2img_prepare_latents(tmp_path: Path, vae) -> None:
    """diffusers draws the posterior sample and then the noise from one generator; drawing the sample from
    the same seed and the noise after it reproduces the pipeline's noised latents exactly."""
    scheduler = DDIMScheduler()
    pipe = StableDiffusionImg2ImgPipeline(
        vae=vae, text_encoder=None, tokenizer=None, unet=None, scheduler=scheduler,
        safety_checker=None, feature_extractor=None, requires_safety_checker=False,
    )
    pil, seed, timestep = _pil(), 1234, torch.tensor([500])
    with torch.no_grad():
        expected = pipe.prepare_latents(
            pipe.image_processor.preprocess(pil), timestep, 1, 1, torch.float32, torch.device("cpu"),
            generator=torch.Generator().manual_seed(seed),
        )
    ours = call(vae_encode, make_ctx(tmp_path), pixels=_as_image(pil), vae=vae_handle(vae), mode="sample", seed=seed)
    samples = ours["latent"]["samples"]
    generator = torch.Generator().manual_seed(seed)
    randn_tensor(samples.shape, generator=generator)  # the draw the posterior sample consumed
    noise = randn_tensor(samples.shape, generator=generator)
    assert torch.equal(scheduler.add_noise(samples, noise, timestep), expected)
    mode = call(vae_encode, make_ctx(tmp_path), pixels=_as_image(pil), vae=vae_handle(vae), mode="mode")
    assert not torch.equal(mode["latent"]["samples"], samples)


def test_encode_trims_sides_to_a_multiple_of_the_vae_factor(tmp_path: Path, vae) -> None:
    image = torch.rand(1, 50, 70, 3)
    events: list = []
    latent = call(vae_encode, make_ctx(tmp_path, events=events), pixels=image, vae=vae_handle(vae))["latent"]
    assert latent["samples"].shape == (1, 4, 6, 8)
    assert any("70x50 to 64x48" in getattr(e, "message", "") for e in events)
    expected = call(vae_encode, make_ctx(tmp_path), pixels=image[:, 1:49, 3:67].clone(), vae=vae_handle(vae))["latent"]
    assert torch.equal(latent["samples"], expected["samples"])


def test_fp16_vae_that_asks_for_upcasting_decodes_in_fp32_without_changing_the_module(tmp_path: Path) -> None:
    half = tiny_vae().half()
    assert half.config.force_upcast
    latents = _latents((1, 4, 8, 8))
    image = call(vae_decode, make_ctx(tmp_path), samples={"samples": latents}, vae=vae_handle(half))["image"]
    assert next(half.parameters()).dtype == torch.float16
    reference = tiny_vae().half().float()  # the same weights, rounded to fp16, run in fp32
    expected = call(vae_decode, make_ctx(tmp_path), samples={"samples": latents}, vae=vae_handle(reference))["image"]
    assert torch.equal(image, expected)


def test_tiled_decode_with_one_tile_equals_whole_decode(tmp_path: Path, vae) -> None:
    latents = _latents((1, 4, 8, 8))
    whole = call(vae_decode, make_ctx(tmp_path), samples={"samples": latents}, vae=vae_handle(vae))["image"]
    tiled = call(vae_decode_tiled, make_ctx(tmp_path), samples={"samples": latents}, vae=vae_handle(vae),
                 tile_size=64, overlap=16)["image"]
    assert torch.equal(tiled, whole)


def test_tile_blending_is_exact_for_a_local_operation() -> None:
    """Weighted tiles must cover every pixel and normalise: for a pixel-local op the result is the op itself."""
    x = torch.randn(2, 3, 37, 53)
    upscale = lambda t: t.repeat_interleave(4, dim=-1).repeat_interleave(4, dim=-2) * 2 + 1  # noqa: E731
    assert torch.allclose(tiled_map(x, upscale, tile=12, overlap=4, scale=4), upscale(x), atol=1e-6)
    y = torch.randn(1, 4, 64, 96)
    pool = lambda t: F.avg_pool2d(t, 8)  # noqa: E731
    assert torch.allclose(tiled_map(y, pool, tile=32, overlap=8, scale=1 / 8, align=8), pool(y), atol=1e-6)


@given(st.integers(1, 64), st.integers(2, 24), st.integers(0, 11), st.sampled_from([1, 2, 8]))
def test_tiles_cover_everything_with_the_asked_overlap(units: int, tile_units: int, overlap_units: int, align: int) -> None:
    size, tile = units * align, tile_units * align
    overlap = max(0, min(overlap_units, (tile_units - 1) // 2)) * align
    starts = tile_starts(size, tile, overlap, align)
    assert starts[0] == 0 and min(starts[-1] + tile, size) == size
    assert all(s % align == 0 for s in starts)
    assert all(b - a <= tile - overlap and b > a for a, b in itertools.pairwise(starts))
    if len(starts) > 1:  # one tile fewer could not cover the image with that overlap
        assert (len(starts) - 1) * (tile - overlap) + overlap < size


def test_tiled_decode_is_close_to_whole_and_blending_beats_hard_seams(tmp_path: Path) -> None:
    # Without mid-block attention (global by nature) the only differences left are the decoder's receptive
    # field and its group norms seeing one tile instead of the image.
    vae = tiny_vae(mid_attention=False, blocks=3)
    latents = _latents((1, 4, 32, 32))
    whole = decode(vae, latents, vae.config.scaling_factor)
    handle = vae_handle(vae)
    blended = call(vae_decode_tiled, make_ctx(tmp_path), samples={"samples": latents}, vae=handle, tile_size=64, overlap=16)
    hard = call(vae_decode_tiled, make_ctx(tmp_path), samples={"samples": latents}, vae=handle, tile_size=64, overlap=0)
    blended_error = (blended["image"] - whole).abs().mean().item()
    hard_error = (hard["image"] - whole).abs().mean().item()
    assert blended["image"].shape == whole.shape == (1, 128, 128, 3)
    assert blended_error < 0.03
    assert blended_error < 0.75 * hard_error


def test_tiled_encode_is_close_to_whole(tmp_path: Path) -> None:
    vae = tiny_vae(mid_attention=False, blocks=3)
    image = torch.rand(1, 128, 128, 3, generator=torch.Generator().manual_seed(0))
    whole = call(vae_encode, make_ctx(tmp_path), pixels=image, vae=vae_handle(vae))["latent"]["samples"]
    tiled = call(vae_encode_tiled, make_ctx(tmp_path), pixels=image, vae=vae_handle(vae), tile_size=64, overlap=16)
    samples = tiled["latent"]["samples"]
    assert samples.shape == whole.shape == (1, 4, 32, 32)
    assert (samples - whole).abs().mean() < 0.25 * whole.std()


def test_vae_nodes_leave_the_shared_module_untouched(tmp_path: Path, vae) -> None:
    before = {k: v.clone() for k, v in vae.state_dict().items()}
    latents = _latents((1, 4, 16, 16))
    call(vae_decode_tiled, make_ctx(tmp_path), samples={"samples": latents}, vae=vae_handle(vae), tile_size=64, overlap=16)
    call(vae_encode_tiled, make_ctx(tmp_path), pixels=torch.rand(1, 128, 128, 3), vae=vae_handle(vae), tile_size=64, overlap=16)
    assert vae.use_tiling is False and vae.training is False
    assert all(torch.equal(before[k], v) for k, v in vae.state_dict().items())


def test_bad_vae_inputs_are_explained(tmp_path: Path, vae) -> None:
    with pytest.raises(NodeInputError, match="VAE handle") as info:
        call(vae_decode, make_ctx(tmp_path), samples={"samples": _latents()}, vae="vae.safetensors")
    assert info.value.field == "vae"
    with pytest.raises(NodeInputError, match="LATENT"):
        call(vae_decode, make_ctx(tmp_path), samples=torch.zeros(1, 4, 8, 8), vae=vae_handle(vae))
    with pytest.raises(NodeInputError, match="IMAGE"):
        call(vae_encode, make_ctx(tmp_path), pixels=torch.zeros(1, 3, 8, 8), vae=vae_handle(vae))
    with pytest.raises(NodeInputError, match="overlap"):
        call(vae_decode_tiled, make_ctx(tmp_path), samples={"samples": _latents()}, vae=vae_handle(vae),
             tile_size=64, overlap=32)
