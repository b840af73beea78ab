"""Prompt weighting and chunking: from prompt text to token chunks with a weight per token.

Weighting syntax (the A1111/ComfyUI one users know):

- ``(words)`` multiplies the weight of ``words`` by 1.1, ``[words]`` divides it by 1.1;
- ``(words:1.3)`` multiplies it by 1.3 (any number, also below 1 or 0);
- groups nest and their factors multiply: ``((a))`` is 1.21, ``((a:1.5))`` is 1.65;
- ``\\(``, ``\\)``, ``\\[``, ``\\]`` and ``\\\\`` are literal characters;
- a closing bracket without an opener is literal text; an opener never closed weights the rest of the
  prompt (as A1111 does);
- the word ``BREAK`` (upper case) ends the current chunk.

Chunking: CLIP sees 77 positions (begin, 75 tokens, end/padding). A longer prompt is split into chunks of
75 tokens, each framed as ``[BOS] tokens [EOS] [PAD]...`` exactly as the tokenizer frames a short prompt,
so a prompt of at most 75 tokens without weights gives the very ids the diffusers pipelines feed the
encoder. The encoder encodes every chunk and the hidden states are concatenated along the token axis.

This module imports no torch; it works on token id lists.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

CHUNK_TOKENS = 75  # tokens per chunk between the begin and end tokens
CHUNK_LENGTH = CHUNK_TOKENS + 2
PAREN_FACTOR = 1.1

_TOKEN_RE = re.compile(
    r"""
    (?P<escape>\\[()\[\]\\])          # escaped bracket or backslash
    | (?P<explicit>:\s*(?P<number>[+-]?(?:\d+\.?\d*|\.\d+))\s*\))  # ':1.3)' closes a group with a weight
    | (?P<open>[(\[])
    | (?P<close>[)\]])
    | (?P<brk>\bBREAK\b)
    | (?P<text>[^\\()\[\]:B]+|.)      # plain text (':' and 'B' on their own when not part of the above)
    """,
    re.VERBOSE | re.DOTALL,
)

BREAK = object()  # marker in a parsed prompt: start a new chunk


def parse_weights(prompt: str) -> list[tuple[str, float] | object]:
    """Split ``prompt`` into ``(text, weight)`` pieces (and :data:`BREAK` markers), merging neighbours of
    equal weight. Never fails: malformed brackets degrade to literal text as described above."""
    pieces: list[list[Any]] = []  # [text, weight] pairs, weights multiplied as groups close
    stack: list[tuple[str, int]] = []  # (opening bracket, index of the first piece inside it)

    def close(bracket: str, factor: float) -> bool:
        for depth in range(len(stack) - 1, -1, -1):
            if stack[depth][0] == bracket:
                # an unclosed inner group of the other kind ends here too, keeping its own factor
                for opener, start in stack[depth + 1 :]:
                    _scale(pieces, start, PAREN_FACTOR if opener == "(" else 1 / PAREN_FACTOR)
                _, start = stack[depth]
                del stack[depth:]
                _scale(pieces, start, factor)
                return True
        return False

    for match in _TOKEN_RE.finditer(prompt):
        kind = match.lastgroup if match.lastgroup != "number" else "explicit"
        value = match.group(0)
        if kind == "escape":
            pieces.append([value[1], 1.0])
        elif kind == "open":
            stack.append((value, len(pieces)))
        elif kind == "explicit":
            if not close("(", float(match.group("number"))):
                pieces.append([value, 1.0])
        elif kind == "close":
            opener = "(" if value == ")" else "["
            if not close(opener, PAREN_FACTOR if value == ")" else 1 / PAREN_FACTOR):
                pieces.append([value, 1.0])
        elif kind == "brk":
            pieces.append([BREAK, 1.0])
        else:
            pieces.append([value, 1.0])
    for opener, start in stack:  # never closed: weights the rest
        _scale(pieces, start, PAREN_FACTOR if opener == "(" else 1 / PAREN_FACTOR)

    merged: list[tuple[str, float] | object] = []
    for text, weight in pieces:
        if text is BREAK:
            merged.append(BREAK)
        elif merged and merged[-1] is not BREAK and merged[-1][1] == weight:  # type: ignore[index]
            merged[-1] = (merged[-1][0] + text, weight)  # type: ignore[index]
        elif text:
            merged.append((text, weight))
    return merged


def _scale(pieces: list[list[Any]], start: int, factor: float) -> None:
    for piece in pieces[start:]:
        piece[1] *= factor


@dataclass(frozen=True)
class TokenChunks:
    """Token ids and weights of a prompt, in chunks of :data:`CHUNK_LENGTH` positions."""

    ids: tuple[tuple[int, ...], ...]
    weights: tuple[tuple[float, ...], ...]

    @property
    def weighted(self) -> bool:
        return any(w != 1.0 for chunk in self.weights for w in chunk)

    def padded_to(self, count: int, empty: TokenChunks) -> TokenChunks:
        """These chunks followed by copies of ``empty``'s single chunk up to ``count`` chunks (used when two
        encoders must yield the same number of positions)."""
        missing = count - len(self.ids)
        if missing <= 0:
            return self
        return TokenChunks(self.ids + empty.ids * missing, self.weights + empty.weights * missing)


def tokenize_weighted(tokenizer: Any, prompt: str) -> TokenChunks:
    """Tokenize ``prompt`` with weights into chunks for ``tokenizer`` (a transformers CLIPTokenizer)."""
    bos, eos = tokenizer.bos_token_id, tokenizer.eos_token_id
    pad = tokenizer.pad_token_id if tokenizer.pad_token_id is not None else eos
    groups: list[list[tuple[int, float]]] = [[]]
    for piece in parse_weights(prompt):
        if piece is BREAK:
            groups.append([])
            continue
        text, weight = piece  # type: ignore[misc]
        # tokenize + convert: the same ids as tokenizer(text) without the frame, and no "longer than 77" warning
        ids = tokenizer.convert_tokens_to_ids(tokenizer.tokenize(text))
        groups[-1].extend((token, weight) for token in ids)

    ids_out: list[tuple[int, ...]] = []
    weights_out: list[tuple[float, ...]] = []
    for group in groups:
        for begin in range(0, max(len(group), 1), CHUNK_TOKENS):
            part = group[begin : begin + CHUNK_TOKENS]
            filler = CHUNK_TOKENS - len(part)
            ids_out.append((bos, *(t for t, _ in part), eos, *([pad] * filler)))
            weights_out.append((1.0, *(w for _, w in part), 1.0, *([1.0] * filler)))
    return TokenChunks(tuple(ids_out), tuple(weights_out))
