"""Builds the CLIP BPE tokenizer files shipped in nodes/sd/tokenizers/clip from open_clip's vocabulary.

Run once by a developer (needs `pip install --no-deps open-clip-torch`); the output is committed, so the
product never asks a hub for a tokenizer. The recipe is OpenAI CLIP's: merges are lines [1, 48895) of the
BPE file; the vocabulary is the 256 byte-level characters, the same with '</w>', the joined merges, then
the two special tokens.
"""

from __future__ import annotations

import gzip
import json
import sys
from pathlib import Path


def bytes_to_unicode() -> dict[int, str]:
    printable = list(range(ord("!"), ord("~") + 1)) + list(range(ord("¡"), ord("¬") + 1)) + list(range(ord("®"), ord("ÿ") + 1))
    chars = printable[:]
    extra = 0
    for b in range(256):
        if b not in printable:
            printable.append(b)
            chars.append(256 + extra)
            extra += 1
    return dict(zip(printable, (chr(c) for c in chars)))


def main(out_dir: Path) -> None:
    import importlib.util

    # Locate the file without importing open_clip (its import needs torchvision).
    spec = importlib.util.find_spec("open_clip")
    if spec is None or spec.origin is None:
        raise SystemExit("install open-clip-torch first: pip install --no-deps open-clip-torch")
    bpe_path = Path(spec.origin).parent / "bpe_simple_vocab_16e6.txt.gz"
    lines = gzip.open(bpe_path).read().decode("utf-8").split("\n")
    merges = [tuple(line.split()) for line in lines[1 : 49152 - 256 - 2 + 1]]
    vocab = list(bytes_to_unicode().values())
    vocab += [v + "</w>" for v in vocab]
    vocab += ["".join(m) for m in merges]
    vocab += ["<|startoftext|>", "<|endoftext|>"]
    out_dir.mkdir(parents=True, exist_ok=True)
    (out_dir / "vocab.json").write_text(json.dumps({t: i for i, t in enumerate(vocab)}, ensure_ascii=False), encoding="utf-8")
    (out_dir / "merges.txt").write_text("#version: 0.2\n" + "\n".join(" ".join(m) for m in merges) + "\n", encoding="utf-8")
    special = {"bos_token": "<|startoftext|>", "eos_token": "<|endoftext|>", "unk_token": "<|endoftext|>", "pad_token": "<|endoftext|>"}
    (out_dir / "special_tokens_map.json").write_text(json.dumps(special, indent=2), encoding="utf-8")
    config = {"model_max_length": 77, "tokenizer_class": "CLIPTokenizer", "do_lower_case": True, **special}
    (out_dir / "tokenizer_config.json").write_text(json.dumps(config, indent=2), encoding="utf-8")


if __name__ == "__main__":
    main(Path(sys.argv[1]) if len(sys.argv) > 1 else Path(__file__).resolve().parent.parent / "nodes/sd/tokenizers/clip")
