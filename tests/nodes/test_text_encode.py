"""Text encoding on tiny random CLIP encoders: equality with diffusers' encode_prompt, chunking, weighting,
clip skip, and the text encoder nodes' checks."""

from __future__ import annotations

import pytest
import torch

from nodes.sd.handles import ClipHandle
from nodes.sd.text_encode import encode_prompt
from tests.fixtures.tiny_sd import reference_scheduler

diffusers = pytest.importorskip("diffusers")


@pytest.fixture(scope="module")
def sd15():
    from tests.fixtures.tiny_sd import tiny_components

    m = tiny_components("sd15")
    return m, ClipHandle("sd15", m.tokenizers, m.text_encoders)


@pytest.fixture(scope="module")
def sdxl():
    from tests.fixtures.tiny_sd import tiny_components

    m = tiny_components("sdxl")
    return m, ClipHandle("sdxl", m.tokenizers, m.text_encoders)


def sd15_pipe(m):
    return diffusers.StableDiffusionPipeline(
        vae=m.vae, text_encoder=m.text_encoders[0], tokenizer=m.tokenizers[0], unet=m.unet,
        scheduler=reference_scheduler("sd15", "DDIMScheduler"),
        safety_checker=None, feature_extractor=None, requires_safety_checker=False,
    )


def sdxl_pipe(m):
    return diffusers.StableDiffusionXLPipeline(
        vae=m.vae, text_encoder=m.text_encoders[0], text_encoder_2=m.text_encoders[1], tokenizer=m.tokenizers[0],
        tokenizer_2=m.tokenizers[1], unet=m.unet, scheduler=reference_scheduler("sdxl", "DDIMScheduler"),
    )


def test_sd15_embeddings_equal_diffusers_encode_prompt_exactly(sd15):
    m, clip = sd15
    ours, pooled = encode_prompt(clip, ("a cozy cabin in the woods",), "cpu")
    theirs, negative = sd15_pipe(m).encode_prompt("a cozy cabin in the woods", "cpu", 1, True, negative_prompt="")
    assert torch.equal(ours, theirs)
    assert pooled is None
    assert torch.equal(encode_prompt(clip, ("",), "cpu")[0], negative)


def test_sdxl_embeddings_and_pooled_equal_diffusers_encode_prompt_exactly(sdxl):
    m, clip = sdxl
    ours, pooled = encode_prompt(clip, ("a cozy cabin",) * 2, "cpu")
    embeds, neg_embeds, theirs_pooled, neg_pooled = sdxl_pipe(m).encode_prompt("a cozy cabin", device="cpu", negative_prompt="")
    assert ours.shape[-1] == sum(e.config.hidden_size for e in m.text_encoders)
    assert torch.equal(ours, embeds) and torch.equal(pooled, theirs_pooled)
    empty, empty_pooled = encode_prompt(clip, ("", ""), "cpu")
    assert torch.equal(empty, neg_embeds) and torch.equal(empty_pooled, neg_pooled)


def test_sdxl_clip_skip_2_equals_diffusers_clip_skip_1(sdxl):
    m, clip = sdxl
    ours, _ = encode_prompt(clip.replace(clip_skip=2), ("a red barn",) * 2, "cpu")
    theirs = sdxl_pipe(m).encode_prompt("a red barn", device="cpu", negative_prompt="", clip_skip=1)[0]
    assert torch.equal(ours, theirs)
    assert not torch.equal(ours, encode_prompt(clip, ("a red barn",) * 2, "cpu")[0])


def test_sd15_clip_skip_takes_an_earlier_layer_through_the_final_norm(sd15):
    # diffusers' own SD1.5 clip_skip path reaches for `text_model.final_layer_norm`, which transformers 5.x
    # no longer has on CLIPTextModel; so the definition is checked directly.
    m, clip = sd15
    encoder = m.text_encoders[0]
    ids = m.tokenizers[0]("a red barn", padding="max_length", max_length=77, return_tensors="pt").input_ids
    with torch.no_grad():
        expected = encoder.final_layer_norm(encoder(ids, output_hidden_states=True).hidden_states[-2])
    ours, _ = encode_prompt(clip.replace(clip_skip=2), ("a red barn",), "cpu")
    assert torch.equal(ours, expected)


def test_long_prompt_concatenates_chunk_embeddings_along_the_token_axis(sd15):
    m, clip = sd15
    words = [f"item{i}" for i in range(60)]
    prompt = " ".join(words)
    embeds, _ = encode_prompt(clip, (prompt,), "cpu")
    tokenizer = m.tokenizers[0]
    tokens = tokenizer(prompt, add_special_tokens=False).input_ids
    assert len(tokens) > 150
    assert embeds.shape[1] == 77 * -(-len(tokens) // 75)
    second = [tokenizer.bos_token_id, *tokens[75:150], tokenizer.eos_token_id]
    second += [tokenizer.pad_token_id] * (77 - len(second))
    with torch.no_grad():
        expected = m.text_encoders[0](torch.tensor([second])).last_hidden_state
    assert torch.allclose(embeds[:, 77:154], expected, atol=1e-6)


def test_sdxl_pads_the_shorter_encoders_prompt_to_the_same_number_of_chunks(sdxl):
    from nodes.sd.text_encode import encode_prompt as encode

    _, clip = sdxl
    long_text = " ".join(f"thing{i}" for i in range(60))
    embeds, pooled = encode(clip, ("short", long_text), "cpu")
    assert embeds.shape[1] % 77 == 0 and embeds.shape[1] > 77
    assert pooled.shape[0] == 1


def test_weighting_scales_tokens_away_from_the_empty_prompt_and_leaves_others_exact(sd15):
    m, clip = sd15
    plain, _ = encode_prompt(clip, ("a red fox",), "cpu")
    weighted, _ = encode_prompt(clip, ("a (red:1.5) fox",), "cpu")
    empty, _ = encode_prompt(clip, ("",), "cpu")
    red = m.tokenizers[0]("a red fox").input_ids.index(m.tokenizers[0]("red", add_special_tokens=False).input_ids[0])
    others = [i for i in range(77) if i != red]
    assert torch.equal(weighted[:, others], plain[:, others])
    assert torch.allclose(weighted[:, red], empty[:, red] + (plain[:, red] - empty[:, red]) * 1.5, atol=1e-6)
    assert torch.equal(encode_prompt(clip, ("a (red:1.0) fox",), "cpu")[0], plain)


def _ctx():
    from nodegraph.context import CancelToken, NodeContext, RunSettings
    from nodegraph.model_folders import ModelFolders
    from nodegraph.runtime import Runtime

    return NodeContext("n", "t", lambda e: None, CancelToken(), RunSettings(), Runtime("cpu", "fp32"), ModelFolders([]))


def test_sdxl_node_refuses_an_sd15_clip_with_a_clear_message(sd15):
    from nodegraph.errors import NodeInputError
    from nodes.sd.text_nodes import clip_text_encode_sdxl

    with pytest.raises(NodeInputError, match=r"expected an SDXL base CLIP.*sd15") as info:
        clip_text_encode_sdxl.fn(_ctx(), sd15[1], "a", "a", 0, 0, 0, 0, 0, 0)
    assert info.value.field == "clip"


def test_clip_set_last_layer_returns_a_new_handle_and_refuses_missing_layers(sd15):
    from nodegraph.errors import NodeInputError
    from nodes.sd.text_nodes import clip_set_last_layer

    clip = sd15[1]
    skipped = clip_set_last_layer.fn(_ctx(), clip, -2)
    assert skipped.clip_skip == 2 and clip.clip_skip == 1 and skipped.encoders is clip.encoders
    with pytest.raises(NodeInputError, match="layers"):
        clip_set_last_layer.fn(_ctx(), clip, -24)


def test_refiner_node_uses_only_bigg_of_a_base_clip_and_records_the_aesthetic_score(sdxl):
    from nodes.sd.text_nodes import clip_text_encode_sdxl_refiner

    m, clip = sdxl
    (entry,) = clip_text_encode_sdxl_refiner.fn(_ctx(), clip, "a cat", 2.5, 0, 0, 0, 0)  # CONDITIONING: a tuple
    assert entry.embeds.shape[-1] == m.text_encoders[1].config.hidden_size
    assert entry.extras["aesthetic_score"] == 2.5
