"""Builders of hostile inputs for the red-team tests: small files that would become large, files that are not
what they say, and a helper that runs the command line in-process and checks that it answered with a message
(never a traceback)."""

from __future__ import annotations

import json
import struct
import zlib
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
from PIL import Image

from nodegraph.cli import main

WORKFLOW_FORMAT = {"format": "nodegraph.workflow", "version": 1}


@dataclass
class Answer:
    code: int
    out: str
    err: str

    @property
    def text(self) -> str:
        return self.out + self.err


def cli(capsys: Any, *argv: str) -> Answer:
    """Run ``nodegraph ARGV`` in this process; fail the test if anything but a clean exit came out."""
    try:
        code = main([str(a) for a in argv])
    except SystemExit as exc:  # argparse's own usage errors
        code = exc.code if isinstance(exc.code, int) else 2
    captured = capsys.readouterr()
    answer = Answer(code, captured.out, captured.err)
    assert "Traceback" not in answer.text, answer.text
    assert code in (0, 1, 2, 130), (code, answer.text)
    return answer


def write_workflow(path: Path, nodes: dict[str, Any] | None = None, raw: str | bytes | None = None) -> Path:
    if raw is None:
        raw = json.dumps({**WORKFLOW_FORMAT, "nodes": nodes or {}})
    path.write_bytes(raw.encode("utf-8") if isinstance(raw, str) else raw)
    return path


def png_chunk(kind: bytes, body: bytes) -> bytes:
    return struct.pack(">I", len(body)) + kind + body + struct.pack(">I", zlib.crc32(kind + body) & 0xFFFFFFFF)


def tiny_png_bytes(width: int = 4, height: int = 4, extra_chunks: bytes = b"") -> bytes:
    """A valid PNG of ``width`` x ``height`` grey pixels, compressed (a huge one stays a few KB)."""
    raw = b"".join(b"\x00" + b"\x80" * width for _ in range(height))
    ihdr = struct.pack(">IIBBBBB", width, height, 8, 0, 0, 0, 0)
    return (b"\x89PNG\r\n\x1a\n" + png_chunk(b"IHDR", ihdr) + extra_chunks
            + png_chunk(b"IDAT", zlib.compress(raw, 9)) + png_chunk(b"IEND", b""))


def text_bomb_png(path: Path, key: str = "nodegraph.workflow", inflated: int = 256 << 20) -> Path:
    """A PNG whose compressed text chunk inflates to ``inflated`` bytes (the file is a few hundred KB)."""
    squeeze = zlib.compressobj(1)
    block = b" " * (1 << 20)
    stream = b"".join(squeeze.compress(block) for _ in range(inflated >> 20)) + squeeze.flush()
    body = key.encode("latin-1") + b"\0\0" + stream
    path.write_bytes(tiny_png_bytes(extra_chunks=png_chunk(b"zTXt", body)))
    return path


def pixel_bomb_png(path: Path, side: int = 12000) -> Path:
    """A PNG that declares ``side`` x ``side`` pixels in a few KB."""
    path.write_bytes(tiny_png_bytes(side, side))
    return path


def image_png(path: Path, size: tuple[int, int] = (16, 16)) -> Path:
    Image.fromarray(np.full((size[1], size[0], 3), 120, dtype=np.uint8)).save(path)
    return path


def self_referencing_ckpt(path: Path) -> Path:
    import torch

    data: dict[str, Any] = {"weight": torch.zeros(2)}
    data["state_dict"] = data
    torch.save(data, path)
    return path


def inflating_ckpt(path: Path, keys: list[str], elements: int = 200_000_000) -> Path:
    """Tensors of ``elements`` floats each, all views (stride 0) of a one-element storage: a few KB on disk."""
    import torch

    storage = torch.zeros(1)
    torch.save({k: storage.as_strided((elements,), (0,)) for k in keys}, path)
    return path


def deeply_nested_ckpt(path: Path, depth: int = 5000) -> Path:
    import torch

    data: Any = {"w": torch.zeros(1)}
    for _ in range(depth):
        data = {"state": data}
    torch.save(data, path)
    return path
