"""Hunyuan-DiT through the product's nodes equals diffusers' HunyuanDiTPipeline on a tiny random model: both
text encoders (a WordPiece BERT and a T5 standing in for mT5) with their masks, image meta sizes, 2-D RoPE,
the learned-variance channels split off, CFG and guidance rescale from the guidance chain."""

from __future__ import annotations

import pytest
import torch

from nodegraph.errors import NodeExecutionError
from tests.fixtures.tiny_dit import write_hunyuan
from tests.nodes.dit_helpers import PROMPT, assert_same_image, make_executor, n, one_thread, run  # noqa: F401 (one_thread: autouse)

diffusers = pytest.importorskip("diffusers")


@pytest.fixture(scope="module")
def executor(tmp_path_factory):
    root = tmp_path_factory.mktemp("models")
    write_hunyuan(root / "checkpoints" / "tiny-hunyuan")
    return make_executor(root)


def txt2img(*, size: int, steps: int, cfg: float, seed: int, rescale: float = 0.0, original: tuple[int, int] = (1024, 1024)) -> dict:
    sizes = {"original_height": original[0], "original_width": original[1]}
    return {
        "load": n("core.DiffusersModelLoader", {"model_name": "tiny-hunyuan"}),
        "pos": n("core.HunyuanTextEncode", {"text": PROMPT, **sizes}, clip=("load", "clip")),
        "neg": n("core.HunyuanTextEncode", {"text": "low quality", **sizes}, clip=("load", "clip")),
        "empty": n("core.EmptyLatentForModel", {"width": size, "height": size}, model=("load", "model")),
        "sampler": n("core.KSampler", {"seed": seed, "steps": steps, "cfg": cfg, "scheduler": "ddpm",
                                       "guidance_rescale": rescale},
                     model=("load", "model"), positive=("pos", "conditioning"), negative=("neg", "conditioning"),
                     latent_image=("empty", "latent")),
        "decode": n("core.VAEDecode", samples=("sampler", "latent"), vae=("load", "vae")),
    }


def pipeline(outputs: dict):
    model, clip, vae = outputs["model"], outputs["clip"], outputs["vae"]
    return diffusers.HunyuanDiTPipeline(
        vae=vae.vae, text_encoder=clip.text_encoders[0], tokenizer=clip.text_tokenizers[0], transformer=model.unet,
        scheduler=diffusers.DDPMScheduler.from_config(model.scheduler_config), safety_checker=None,
        feature_extractor=None, requires_safety_checker=False, text_encoder_2=clip.text_encoders[1],
        tokenizer_2=clip.text_tokenizers[1],
    )


@pytest.mark.parametrize(("cfg", "rescale", "original"), [(5.0, 0.7, (768, 512)), (1.0, 0.0, (1024, 1024))])
def test_hunyuan_txt2img_equals_hunyuan_dit_pipeline(executor, cfg, rescale, original):
    result = run(executor, txt2img(size=64, steps=3, cfg=cfg, seed=7, rescale=rescale, original=original), ["load", "decode"])
    expected = pipeline(result.outputs["load"])(
        PROMPT, negative_prompt="low quality", height=64, width=64, num_inference_steps=3, guidance_scale=cfg,
        guidance_rescale=rescale, original_size=original, generator=torch.Generator("cpu").manual_seed(7),
        output_type="np", use_resolution_binning=False,
    ).images
    assert_same_image(result.outputs["decode"]["image"], expected)


def test_hunyuan_family_and_both_encoders_come_from_the_folder(executor):
    result = run(executor, {"load": n("core.DiffusersModelLoader", {"model_name": "tiny-hunyuan"})}, ["load"])
    clip = result.outputs["load"]["clip"]
    assert result.outputs["load"]["family"] == "Hunyuan-DiT"
    assert [type(e).__name__ for e in clip.text_encoders] == ["BertModel", "T5EncoderModel"]
    assert clip.max_lengths == (77, 256)


def test_t5_text_encode_refuses_the_hunyuan_pair_naming_the_node(executor):
    nodes = txt2img(size=64, steps=1, cfg=5.0, seed=0)
    nodes["neg"] = n("core.T5TextEncode", {"text": "x"}, clip=("load", "clip"))
    with pytest.raises(NodeExecutionError, match="use Hunyuan-DiT Text Encode") as info:
        run(executor, nodes, ["decode"])
    assert info.value.node_id == "neg"
