"""``GET /object_info``: this product's node types described the way ComfyUI describes its nodes.

Mapped types are listed under their ComfyUI class names (``core.CheckpointLoader`` as
``CheckpointLoaderSimple``), with ComfyUI's input names where the mapping renames a field; the others under
their own ids. Model choices list the files in the model folders, image choices the input folder.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from nodegraph.model_folders import ModelFolders
from nodegraph.node import NodeDef
from nodegraph.params import Bool, Choice, Float, ImageFile, Int, ModelFile, Param
from nodegraph.registry import Registry
from nodegraph.server import comfy_bridge

IMAGE_EXTENSIONS = (".png", ".jpg", ".jpeg", ".webp", ".bmp", ".gif", ".tif", ".tiff")


def object_info(registry: Registry, folders: ModelFolders, input_dir: Path) -> dict[str, Any]:
    names = comfy_bridge.class_names(registry)
    renames = _field_renames()
    inputs = _input_files(input_dir)
    info: dict[str, Any] = {}
    for definition in registry:
        name = names.get(definition.id, definition.id)
        info[name] = describe(definition, name, folders, inputs, renames.get(name, {}))
    return info


def describe(definition: NodeDef, name: str, folders: ModelFolders, input_files: list[str],
             renames: dict[str, str]) -> dict[str, Any]:
    required: dict[str, Any] = {}
    optional: dict[str, Any] = {}
    for spec in definition.inputs:
        (optional if spec.optional else required)[renames.get(spec.name, spec.name)] = [spec.type.name, {"tooltip": spec.help}] if spec.help else [spec.type.name]
    for param in definition.params:
        required[renames.get(param.name, param.name)] = _param(param, folders, input_files)
    return {
        "input": {"required": required, "optional": optional},
        "input_order": {"required": list(required), "optional": list(optional)},
        "output": [o.type.name for o in definition.outputs],
        "output_is_list": [False for _ in definition.outputs],
        "output_name": [o.name for o in definition.outputs],
        "output_tooltips": [o.help for o in definition.outputs],
        "name": name,
        "display_name": definition.name,
        "description": definition.description,
        "python_module": f"nodegraph.{definition.source}",
        "category": definition.category,
        "output_node": definition.output_node,
        "deprecated": False,
        "experimental": False,
        "nodegraph_type": definition.id,
    }


def _param(param: Param, folders: ModelFolders, input_files: list[str]) -> list[Any]:
    options: dict[str, Any] = {"default": param.default}
    if param.help:
        options["tooltip"] = param.help
    if isinstance(param, ModelFile):
        return [folders.list(param.folder, param.extensions, param.allow_directories), {"tooltip": param.help}]
    if isinstance(param, ImageFile):
        return [input_files, {"image_upload": True, "tooltip": param.help}]
    if isinstance(param, Choice):
        return [list(param.choices), options]
    if isinstance(param, Bool):
        return ["BOOLEAN", options]
    if isinstance(param, Int):
        options.update({"min": param.min, "max": param.max, "step": param.step})
        if param.kind == "seed":
            options["control_after_generate"] = True
        return ["INT", {k: v for k, v in options.items() if v is not None}]
    if isinstance(param, Float):
        options.update({"min": param.min, "max": param.max, "step": param.step, "round": False})
        return ["FLOAT", {k: v for k, v in options.items() if v is not None}]
    options["multiline"] = bool(getattr(param, "multiline", False))
    return ["STRING", options]


def _input_files(input_dir: Path) -> list[str]:
    if not input_dir.is_dir():
        return []
    return sorted(p.relative_to(input_dir).as_posix() for p in input_dir.rglob("*")
                  if p.is_file() and p.suffix.lower() in IMAGE_EXTENSIONS and not p.name.startswith("."))


def _field_renames() -> dict[str, dict[str, str]]:
    """ComfyUI class -> {our field: ComfyUI's field}, from the import's mapping table where it says."""
    result: dict[str, dict[str, str]] = {}
    for comfy_name, mapping in comfy_bridge.module().MAPPINGS.items():
        result[comfy_name] = {ours: theirs for theirs, ours in mapping.rename.items()}
    return result
