"""ComfyUI's prompt syntax and chunking, and that an unweighted prompt encodes exactly as the product's own."""

from __future__ import annotations

import torch

from nodes.comfy.prompt import comfy_token_chunks, weighted_segments
from nodes.sd.families import load_tokenizer
from nodes.sd.prompt import tokenize_weighted

TOKENIZER = load_tokenizer("clip_l")


def test_parentheses_weight_and_an_explicit_weight_replaces_the_enclosing_factor():
    assert weighted_segments("a (red) circle") == [("a ", 1.0), ("red", 1.1), (" circle", 1.0)]
    assert weighted_segments("((big:1.5)) dog") == [("big", 1.5), (" dog", 1.0)]
    outer = weighted_segments("((big) dog)")
    assert outer[0][0] == "big" and abs(outer[0][1] - 1.21) < 1e-12 and abs(outer[1][1] - 1.1) < 1e-12
    assert weighted_segments("(a:b:0.5)") == [("a:b", 0.5)]
    assert weighted_segments("(odd:x)") == [("odd:x", 1.1)]  # not a number: the colon is text


def test_square_brackets_and_break_are_plain_text():
    ids = comfy_token_chunks(TOKENIZER, "[cat] BREAK dog").ids
    plain = TOKENIZER.convert_tokens_to_ids(TOKENIZER.tokenize("[cat] BREAK dog"))
    assert ids[0][1 : 1 + len(plain)] == tuple(plain) and len(ids) == 1


def test_escaped_brackets_are_literal():
    chunks = comfy_token_chunks(TOKENIZER, r"a \(b\) c")
    assert set(chunks.weights[0]) == {1.0}
    assert chunks.ids[0][1:6] == tuple(TOKENIZER.convert_tokens_to_ids(TOKENIZER.tokenize("a (b) c")))


def test_a_short_segment_moves_whole_to_the_next_chunk():
    filler = "cat " * 74  # 74 tokens
    chunks = comfy_token_chunks(TOKENIZER, filler + "(a red fox:1.2)")
    assert len(chunks.ids) == 2
    assert chunks.ids[0][75] == TOKENIZER.eos_token_id  # the chunk closed early ...
    assert chunks.weights[1][1:4] == (1.2, 1.2, 1.2)  # ... and the weighted words start the next one
    product = tokenize_weighted(TOKENIZER, filler + "(a red fox:1.2)")
    assert product.ids[0][75] != TOKENIZER.eos_token_id  # the product's own chunking cuts at token 75


def test_an_unweighted_short_prompt_gives_the_products_own_token_ids():
    text = "a lighthouse on a cliff at dawn, oil painting"
    assert comfy_token_chunks(TOKENIZER, text) == tokenize_weighted(TOKENIZER, text)
    empty = comfy_token_chunks(TOKENIZER, "")
    assert empty.ids[0][:2] == (TOKENIZER.bos_token_id, TOKENIZER.eos_token_id) and len(empty.ids[0]) == 77


def test_encoding_matches_the_core_node_for_an_unweighted_prompt():
    from nodes.comfy.text_nodes import encode_comfy_prompt
    from nodes.sd.handles import ClipHandle
    from nodes.sd.text_encode import encode_prompt
    from tests.fixtures.tiny_sd import tiny_components

    tiny = tiny_components("sd15")
    clip = ClipHandle("sd15", tiny.tokenizers, tiny.text_encoders)
    ours = encode_comfy_prompt(clip, "a red circle", "cpu").embeds
    core, _ = encode_prompt(clip, ("a red circle",), "cpu")
    assert torch.equal(ours, core)
    weighted = encode_comfy_prompt(clip, "a (red:1.4) circle", "cpu").embeds
    assert not torch.equal(weighted, core)
