"""Shared pieces of the ComfyUI import/export tests: the fixture workflows and registries with or without the
workflow-file-version-2 node types (core.Reroute, core.Note)."""

from __future__ import annotations

import copy
import io
import json
from pathlib import Path
from typing import Any

from nodegraph.installed import default_registry
from nodegraph.node import Input, Output, node
from nodegraph.params import Text
from nodegraph.registry import Registry, registry_from
from nodegraph.types import ANY

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures" / "comfy"


def fixture(name: str) -> dict[str, Any]:
    return json.loads((FIXTURES / name).read_text())


def fixture_bytes(name: str) -> bytes:
    return (FIXTURES / name).read_bytes()


@node("core.Reroute", name="Reroute", inputs=[Input("value", ANY)], outputs=[Output("value", ANY)])
def _reroute(ctx: Any, value: Any) -> Any:
    return value


@node("core.Note", name="Note", params=[Text("text", "")])
def _note(ctx: Any, text: str) -> None:
    return None


def registry(with_v2_types: bool = False) -> Registry:
    """The built-in registry, plus stand-ins for core.Reroute / core.Note when asked (those come with the
    workflow file version 2 work; the importer uses them when the registry has them)."""
    stand_ins = {d.id: d for d in (_reroute, _note)}
    kept = [d for d in default_registry() if d.id not in stand_ins]  # the merged product has its own
    if with_v2_types:
        kept += [default_registry().get(i) or d for i, d in stand_ins.items()]
    return registry_from(kept)


def png_with_texts(texts: dict[str, str]) -> bytes:
    """A small PNG carrying ``texts`` as tEXt chunks (what ComfyUI writes)."""
    from PIL import Image
    from PIL.PngImagePlugin import PngInfo

    info = PngInfo()
    for key, value in texts.items():
        info.add_text(key, value)
    buffer = io.BytesIO()
    Image.new("RGB", (8, 8), (10, 20, 30)).save(buffer, format="PNG", pnginfo=info)
    return buffer.getvalue()


def webp_with_texts(texts: dict[str, str]) -> bytes:
    """A small WebP with ComfyUI's EXIF strings: "workflow:..." in Make (0x010f), "prompt:..." in Model (0x0110)."""
    from PIL import Image

    exif = Image.Exif()
    tags = {"workflow": 0x010F, "prompt": 0x0110}
    for key, value in texts.items():
        exif[tags[key]] = f"{key}:{value}"
    buffer = io.BytesIO()
    Image.new("RGB", (8, 8), (10, 20, 30)).save(buffer, format="WEBP", exif=exif.tobytes())
    return buffer.getvalue()


def deep(doc: dict[str, Any]) -> dict[str, Any]:
    return copy.deepcopy(doc)
