"""Prompt weighting syntax and 75-token chunking (nodes/sd/prompt.py), with the shipped CLIP tokenizers."""

from __future__ import annotations

import pytest

from nodes.sd.prompt import BREAK, CHUNK_LENGTH, CHUNK_TOKENS, parse_weights, tokenize_weighted


def weights_of(prompt: str) -> list:
    return [p if p is BREAK else (p[0], round(p[1], 6)) for p in parse_weights(prompt)]


def test_plain_prompt_is_one_piece_of_weight_one():
    assert weights_of("a photo of a cat, 4k") == [("a photo of a cat, 4k", 1.0)]


def test_parentheses_multiply_by_1_1_and_brackets_divide():
    assert weights_of("a (red) [blue] car") == [("a ", 1.0), ("red", 1.1), (" ", 1.0), ("blue", round(1 / 1.1, 6)), (" car", 1.0)]


def test_explicit_weight_replaces_the_default_factor():
    assert weights_of("(cat:1.3) and (dog:0.5)") == [("cat", 1.3), (" and ", 1.0), ("dog", 0.5)]


def test_nested_groups_multiply():
    assert weights_of("((a)) ((b:1.5))") == [("a", 1.21), (" ", 1.0), ("b", 1.65)]


def test_escaped_brackets_are_literal_text():
    assert weights_of(r"smile \(happy\) \[x\]") == [("smile (happy) [x]", 1.0)]


def test_unmatched_closer_is_literal_and_unclosed_opener_weights_the_rest():
    assert weights_of("a) b") == [("a) b", 1.0)]
    assert weights_of("a (b c") == [("a ", 1.0), ("b c", 1.1)]


def test_colon_without_number_stays_in_the_text():
    assert weights_of("(time: noon)") == [("time: noon", 1.1)]


def test_break_starts_a_new_chunk_marker():
    assert weights_of("a cat BREAK a dog") == [("a cat ", 1.0), BREAK, (" a dog", 1.0)]
    assert weights_of("BREAKFAST") == [("BREAKFAST", 1.0)]


@pytest.fixture(scope="module")
def tokenizers():
    from nodes.sd.families import load_tokenizer

    return load_tokenizer("clip_l"), load_tokenizer("clip_g")


@pytest.mark.parametrize("prompt", ["a photo of a cat", "", "Astronaut riding a horse, 8k, trending on artstation"])
def test_short_prompt_gives_exactly_the_tokenizer_ids_diffusers_uses(tokenizers, prompt):
    for tokenizer in tokenizers:  # CLIP-L pads with <|endoftext|>, bigG with "!" (id 0)
        expected = tokenizer(prompt, padding="max_length", max_length=77, truncation=True).input_ids
        chunks = tokenize_weighted(tokenizer, prompt)
        assert chunks.ids == (tuple(expected),)
        assert not chunks.weighted


def test_weights_follow_their_tokens_and_frame_tokens_keep_weight_one(tokenizers):
    tokenizer = tokenizers[0]
    chunks = tokenize_weighted(tokenizer, "a (red:1.5) fox")
    plain = tokenize_weighted(tokenizer, "a red fox")
    assert chunks.ids == plain.ids  # weighting never changes the tokens
    red = tokenizer("red", add_special_tokens=False).input_ids
    position = chunks.ids[0].index(red[0])
    assert chunks.weights[0][position] == 1.5
    assert [w for i, w in enumerate(chunks.weights[0]) if i != position] == [1.0] * (CHUNK_LENGTH - 1)


def test_long_prompt_is_split_into_chunks_of_75_tokens(tokenizers):
    tokenizer = tokenizers[0]
    prompt = ", ".join(f"word{i}" for i in range(60))  # well over 75 tokens
    tokens = tokenizer(prompt, add_special_tokens=False).input_ids
    chunks = tokenize_weighted(tokenizer, prompt)
    assert len(chunks.ids) == -(-len(tokens) // CHUNK_TOKENS)
    assert all(len(c) == CHUNK_LENGTH for c in chunks.ids)
    flat = [t for c in chunks.ids for t in c[1 : 1 + CHUNK_TOKENS]]
    assert flat[: len(tokens)] == tokens
    bos, eos = tokenizer.bos_token_id, tokenizer.eos_token_id
    assert all(c[0] == bos for c in chunks.ids)
    assert chunks.ids[0][-1] == eos  # a full chunk ends with its end token at position 76


def test_break_forces_a_new_chunk(tokenizers):
    chunks = tokenize_weighted(tokenizers[0], "a cat BREAK a dog")
    assert len(chunks.ids) == 2
    assert chunks.ids[1][:4] == tuple(tokenizers[0]("a dog").input_ids[:4])


def test_padding_to_more_chunks_appends_empty_prompt_chunks(tokenizers):
    tokenizer = tokenizers[1]
    one = tokenize_weighted(tokenizer, "a cat")
    empty = tokenize_weighted(tokenizer, "")
    padded = one.padded_to(3, empty)
    assert padded.ids == one.ids + empty.ids * 2
    assert one.padded_to(1, empty) is one
