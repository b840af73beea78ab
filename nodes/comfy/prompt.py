"""ComfyUI's reading of a prompt: its weight syntax and its way of filling CLIP's 77-token chunks.

It differs from the product's own (A1111-style, :mod:`nodes.sd.prompt`) in ways that change images:

- only parentheses weight: ``(words)`` is x1.1, ``(words:1.3)`` *sets* the weight to 1.3 (an explicit weight
  replaces the enclosing groups' factors instead of multiplying them); square brackets and ``BREAK`` are
  ordinary text; ``\\(`` and ``\\)`` are literal brackets;
- each weighted segment is tokenized as a whole and kept in one chunk when it is shorter than 8 tokens
  (it moves to the next chunk instead of being cut at token 75); longer segments are cut where the chunk ends.

The result is the product's :class:`~nodes.sd.prompt.TokenChunks`, so encoding (and the weighting relative
to the empty prompt, which ComfyUI and the product share) is the product's own.
"""

from __future__ import annotations

import re
from typing import Any

from nodes.sd.prompt import CHUNK_LENGTH, TokenChunks

MAX_WORD_LENGTH = 8
EMBEDDING_PREFIX = "embedding:"
_ESCAPES = (("\\)", "\0\1"), ("\\(", "\0\2"))


def split_groups(text: str) -> list[str]:
    """Top-level pieces of ``text``: plain runs and whole ``( ... )`` groups (nested brackets stay inside)."""
    pieces: list[str] = []
    current = ""
    depth = 0
    for char in text:
        if char == "(":
            if depth == 0:
                if current:
                    pieces.append(current)
                current = "("
            else:
                current += char
            depth += 1
        elif char == ")":
            depth -= 1
            if depth == 0:
                pieces.append(current + ")")
                current = ""
            else:
                current += char
        else:
            current += char
    if current:
        pieces.append(current)
    return pieces


def weighted_segments(text: str, weight: float = 1.0) -> list[tuple[str, float]]:
    """``(segment, weight)`` pairs: a group multiplies by 1.1, or takes the number after its last colon."""
    out: list[tuple[str, float]] = []
    for piece in split_groups(text):
        if len(piece) >= 2 and piece[0] == "(" and piece[-1] == ")":
            inner = piece[1:-1]
            inner_weight = weight * 1.1
            colon = inner.rfind(":")
            if colon > 0:
                try:
                    inner_weight = float(inner[colon + 1 :])
                    inner = inner[:colon]
                except ValueError:
                    pass
            out.extend(weighted_segments(inner, inner_weight))
        else:
            out.append((piece, weight))
    return out


def _escape(text: str) -> str:
    for literal, marker in _ESCAPES:
        text = text.replace(literal, marker)
    return text


def _unescape(text: str) -> str:
    for literal, marker in _ESCAPES:
        text = text.replace(marker, literal[1])
    return text


def comfy_token_chunks(tokenizer: Any, text: str, warn: Any = None) -> TokenChunks:
    """Token ids and weights of ``text`` in 77-position chunks, filled as ComfyUI fills them."""
    bos, eos = tokenizer.bos_token_id, tokenizer.eos_token_id
    pad = tokenizer.pad_token_id if tokenizer.pad_token_id is not None else eos
    words: list[list[tuple[int, float]]] = []
    for segment, weight in weighted_segments(_escape(text)):
        segment = _unescape(segment)
        parts = re.split(f" {EMBEDDING_PREFIX}|\n{EMBEDDING_PREFIX}", segment)
        pieces = [parts[0]] + [EMBEDDING_PREFIX + p for p in parts[1:]]
        for piece in (p for p in pieces if p):
            if piece.startswith(EMBEDDING_PREFIX) and warn is not None:
                warn(f"textual-inversion embeddings are not supported: {piece.split()[0]!r} is read as plain text")
            ids = tokenizer.convert_tokens_to_ids(tokenizer.tokenize(piece))
            words.append([(token, weight) for token in ids])

    chunks: list[list[tuple[int, float]]] = [[(bos, 1.0)]]
    for word in words:
        large = len(word) >= MAX_WORD_LENGTH
        while word:
            chunk = chunks[-1]
            if len(word) + len(chunk) > CHUNK_LENGTH - 1:
                room = CHUNK_LENGTH - len(chunk) - 1
                if large:  # cut a long segment where the chunk ends
                    chunk.extend(word[:room])
                    chunk.append((eos, 1.0))
                    word = word[room:]
                else:  # a short segment moves whole to the next chunk
                    chunk.append((eos, 1.0))
                    chunk.extend([(pad, 1.0)] * room)
                chunks.append([(bos, 1.0)])
            else:
                chunk.extend(word)
                word = []
    last = chunks[-1]
    last.append((eos, 1.0))
    last.extend([(pad, 1.0)] * (CHUNK_LENGTH - len(last)))
    return TokenChunks(tuple(tuple(t for t, _ in c) for c in chunks), tuple(tuple(w for _, w in c) for c in chunks))
