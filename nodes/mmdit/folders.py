"""Diffusers-format folders of FLUX.1 and SD3 / 3.5 (model_index.json naming FluxPipeline, StableDiffusion3Pipeline
or one of their img2img / inpaint siblings), loaded offline: each component with the class model_index.json names,
from an allow-list (a folder cannot make us import arbitrary classes), tokenizers from the folder's own files
(T5's ``spiece.model`` needs the sentencepiece package, a dependency)."""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from nodes.dit.folders import FolderError, read_index

PIPELINES = {
    "flux": {"FluxPipeline", "FluxImg2ImgPipeline", "FluxInpaintPipeline"},
    "sd3": {"StableDiffusion3Pipeline", "StableDiffusion3Img2ImgPipeline", "StableDiffusion3InpaintPipeline"},
}
REQUIRED = {
    "flux": ("transformer", "vae", "scheduler", "text_encoder", "tokenizer", "text_encoder_2", "tokenizer_2"),
    # SD3 runs without T5 (diffusers allows text_encoder_3=None): zeros stand in for its tokens
    "sd3": ("transformer", "vae", "scheduler", "text_encoder", "tokenizer", "text_encoder_2", "tokenizer_2"),
}
OPTIONAL = {"flux": (), "sd3": ("text_encoder_3", "tokenizer_3")}
ALLOWED = {
    "transformer": {"FluxTransformer2DModel", "SD3Transformer2DModel"},
    "vae": {"AutoencoderKL"},
    "text_encoder": {"CLIPTextModel", "CLIPTextModelWithProjection"},
    "text_encoder_2": {"T5EncoderModel", "CLIPTextModelWithProjection"},
    "text_encoder_3": {"T5EncoderModel"},
}
TOKENIZER_FILES = ("tokenizer.json", "vocab.json", "spiece.model")


def folder_family(path: Path) -> str | None:
    """"flux" / "sd3" for a folder whose model_index.json names one of their pipelines, else None."""
    if not (path / "model_index.json").is_file():
        return None
    pipeline = read_index(path).get("_class_name")
    return next((family for family, names in PIPELINES.items() if pipeline in names), None)


@dataclass
class LoadedFlowFolder:
    family: str
    modules: dict[str, Any] = field(default_factory=dict)
    scheduler_config: dict[str, Any] = field(default_factory=dict)


def _present(path: Path, name: str, entry: Any) -> bool:
    if not (isinstance(entry, (list, tuple)) and len(entry) == 2 and entry[1]):
        return False
    sub = path / name
    if name.startswith("tokenizer"):
        return any((sub / f).is_file() for f in TOKENIZER_FILES)
    if name == "scheduler":
        return (sub / "scheduler_config.json").is_file()
    return sub.is_dir() and (sub / "config.json").is_file() and any(
        p.name.endswith((".safetensors", ".bin")) for p in sub.iterdir())


def _load_module(path: Path, name: str, class_name: str, dtype: Any) -> Any:
    if class_name not in ALLOWED.get(name, ()):
        raise FolderError(f"{path.name}/{name} is a {class_name}; this loader accepts "
                          f"{', '.join(sorted(ALLOWED.get(name, ())))} there")
    if name in ("transformer", "vae"):
        import diffusers

        module = getattr(diffusers, class_name).from_pretrained(path / name, torch_dtype=dtype, local_files_only=True)
    else:
        import transformers

        module = getattr(transformers, class_name).from_pretrained(path / name, dtype=dtype, local_files_only=True)
    return module.eval().requires_grad_(False)


def load_tokenizer(folder: Path) -> Any:
    from transformers import AutoTokenizer

    return AutoTokenizer.from_pretrained(folder, local_files_only=True)


def load_flow_folder(path: Path, dtype: Any, skip_t5: bool = False) -> LoadedFlowFolder:
    """Every component of a FLUX / SD3 folder; ``skip_t5`` leaves SD3's T5 out (FLUX needs it)."""
    family = folder_family(path)
    if family is None:
        pipeline = read_index(path).get("_class_name") if (path / "model_index.json").is_file() else None
        hint = ("; load SD1.5 / SDXL folders with Load Checkpoint, PixArt / Hunyuan-DiT / IF / DiT folders with Load "
                "DiT / IF Model") if pipeline else ""
        raise FolderError(f"{path.name} is not a FLUX or SD3 diffusers folder (its model_index.json names "
                          f"{pipeline or 'nothing'}){hint}")
    index = read_index(path)
    missing = [n for n in REQUIRED[family] if not _present(path, n, index.get(n))]
    if missing:
        raise FolderError(f"{path.name} is a {family.upper()} folder but lacks {', '.join(missing)} (each a subfolder "
                          "with its config and weights, or tokenizer files)")
    loaded = LoadedFlowFolder(family)
    optional = () if skip_t5 else OPTIONAL[family]
    for name in (*REQUIRED[family], *optional):
        entry = index.get(name)
        if not _present(path, name, entry):
            continue
        try:
            if name.startswith("tokenizer"):
                loaded.modules[name] = load_tokenizer(path / name)
            elif name == "scheduler":
                loaded.scheduler_config = json.loads((path / name / "scheduler_config.json").read_text(encoding="utf-8"))
            else:
                loaded.modules[name] = _load_module(path, name, entry[1], dtype)
        except FolderError:
            raise
        except (OSError, ValueError, KeyError, RuntimeError, ImportError) as exc:
            raise FolderError(f"{path.name}/{name} could not be loaded: {str(exc).strip()}") from None
    if family == "sd3" and ("text_encoder_3" in loaded.modules) != ("tokenizer_3" in loaded.modules):
        raise FolderError(f"{path.name} has only one of text_encoder_3 and tokenizer_3: T5 needs both")
    return loaded
