"""Diffusers-format folders of the DiT and IF families: which family a folder holds, which of its components
are missing, and loading them offline.

The family comes from ``model_index.json``'s pipeline class. Each component is loaded with the class that
file names, from an allow-list per component (a folder cannot make us import arbitrary classes), with
``local_files_only`` so nothing asks a hub; tokenizers are read from the folder's own tokenizer files.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from nodes.dit.handles import FAMILY_LABELS


class FolderError(ValueError):
    """A folder that is not a loadable model of a supported family; the message says why."""


@dataclass(frozen=True)
class FamilySpec:
    family: str
    pipeline: str  # model_index.json "_class_name"
    required: tuple[str, ...]
    optional: tuple[str, ...] = ()
    text_lengths: tuple[int, ...] = ()  # tokenizer max lengths the family's pipeline uses, per text encoder


FAMILIES: tuple[FamilySpec, ...] = (
    FamilySpec("pixart_alpha", "PixArtAlphaPipeline", ("transformer", "vae", "scheduler", "text_encoder", "tokenizer"),
               text_lengths=(120,)),
    FamilySpec("pixart_sigma", "PixArtSigmaPipeline", ("transformer", "vae", "scheduler", "text_encoder", "tokenizer"),
               text_lengths=(300,)),
    FamilySpec("hunyuan_dit", "HunyuanDiTPipeline",
               ("transformer", "vae", "scheduler", "text_encoder", "tokenizer", "text_encoder_2", "tokenizer_2"),
               text_lengths=(77, 256)),
    FamilySpec("if_stage_1", "IFPipeline", ("unet", "scheduler", "text_encoder", "tokenizer"), text_lengths=(77,)),
    # Stage II folders usually ship without the T5 (stage I's encoding serves both stages).
    FamilySpec("if_stage_2", "IFSuperResolutionPipeline", ("unet", "scheduler", "image_noising_scheduler"),
               optional=("text_encoder", "tokenizer"), text_lengths=(77,)),
    # The SD x4 upscaler: the cascade's optional last stage (latent space, CLIP text encoder).
    FamilySpec("sd_x4_upscaler", "StableDiffusionUpscalePipeline",
               ("unet", "vae", "scheduler", "low_res_scheduler", "text_encoder", "tokenizer"), text_lengths=(77,)),
    # The class-conditional DiT (ImageNet): no text encoder; class names in model_index.json's id2label
    FamilySpec("dit_class", "DiTPipeline", ("transformer", "vae", "scheduler")),
)
BY_PIPELINE = {spec.pipeline: spec for spec in FAMILIES}
SD_PIPELINES = {"StableDiffusionPipeline", "StableDiffusionXLPipeline", "StableDiffusionXLImg2ImgPipeline"}

# component -> classes a folder may name for it (library module, class name)
ALLOWED_CLASSES: dict[str, set[str]] = {
    # DiT folders name Transformer2DModel, which diffusers maps to DiTTransformer2DModel (norm_type ada_norm_zero)
    "transformer": {"PixArtTransformer2DModel", "HunyuanDiT2DModel", "DiTTransformer2DModel", "Transformer2DModel"},
    "unet": {"UNet2DConditionModel"},
    "vae": {"AutoencoderKL"},
    "text_encoder": {"T5EncoderModel", "MT5EncoderModel", "BertModel", "CLIPTextModel"},
    "text_encoder_2": {"T5EncoderModel", "MT5EncoderModel"},
}
TOKENIZER_FILES = ("tokenizer.json", "tokenizer_config.json", "vocab.txt", "spiece.model")
WEIGHT_SUFFIXES = (".safetensors", ".bin")


def supported_list() -> str:
    return ", ".join(f"{FAMILY_LABELS[s.family]} ({s.pipeline})" for s in FAMILIES)


def read_index(path: Path) -> dict[str, Any]:
    if not path.is_dir():
        # diffusers (0.42) converts no single-file PixArt, Hunyuan-DiT or IF checkpoint, so neither do we
        raise FolderError(f"{path.name} is not a folder: PixArt, Hunyuan-DiT and IF models load from diffusers-format "
                          "folders (holding model_index.json); single-file checkpoints of these families are not "
                          "supported (an SD1.5/SDXL file: load it with Load Checkpoint)")
    index_path = path / "model_index.json"
    if not index_path.is_file():
        raise FolderError(f"{path.name} has no model_index.json, so it is not a diffusers pipeline folder")
    try:
        return json.loads(index_path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        raise FolderError(f"{path.name}/model_index.json is not readable JSON: {exc}") from None


def detect_family(path: Path) -> FamilySpec:
    """The family of the folder at ``path``, or FolderError naming what it is and what is supported."""
    index = read_index(path)
    pipeline = index.get("_class_name")
    spec = BY_PIPELINE.get(pipeline)
    if spec is not None:
        return spec
    hint = " (an SD1.5/SDXL folder: load it with Load Checkpoint)" if pipeline in SD_PIPELINES else ""
    if str(pipeline).startswith(("Flux", "StableDiffusion3")):
        hint = " (a FLUX / SD3 folder: load it with Load FLUX / SD3 Checkpoint)"
    raise FolderError(f"{path.name} holds a {pipeline or 'unnamed'} pipeline, a model family this loader does not "
                      f"support{hint}; supported: {supported_list()}")


def _present(path: Path, name: str, entry: Any) -> bool:
    if not (isinstance(entry, (list, tuple)) and len(entry) == 2 and entry[1]):
        return False
    sub = path / name
    if name.startswith("tokenizer"):
        return any((sub / f).is_file() for f in TOKENIZER_FILES)
    if "scheduler" in name:
        return (sub / "scheduler_config.json").is_file()
    return (sub / "config.json").is_file() and any(p.name.endswith(WEIGHT_SUFFIXES) for p in sub.iterdir())


def missing_components(path: Path, spec: FamilySpec) -> list[str]:
    index = read_index(path)
    return [name for name in spec.required if not _present(path, name, index.get(name))]


@dataclass
class LoadedFolder:
    spec: FamilySpec
    modules: dict[str, Any] = field(default_factory=dict)  # component name -> module / tokenizer
    scheduler_configs: dict[str, dict] = field(default_factory=dict)
    id2label: dict[int, str] | None = None  # DiTPipeline folders: class names


def _id2label(index: dict[str, Any]) -> dict[int, str] | None:
    raw = index.get("id2label")
    if not isinstance(raw, dict):
        return None
    try:
        return {int(k): str(v) for k, v in raw.items()}
    except (TypeError, ValueError):
        return None


def _load_module(path: Path, name: str, entry: Any, dtype: Any) -> Any:
    library, class_name = entry
    allowed = ALLOWED_CLASSES.get(name, set())
    if class_name not in allowed:
        raise FolderError(f"{path.name}/{name} is a {class_name}; this loader accepts {', '.join(sorted(allowed))} there")
    if library == "diffusers":
        import diffusers

        module = getattr(diffusers, class_name).from_pretrained(path / name, torch_dtype=dtype, local_files_only=True)
    else:
        import transformers

        module = getattr(transformers, class_name).from_pretrained(path / name, dtype=dtype, local_files_only=True)
    return module.eval().requires_grad_(False)


def _load_tokenizer(path: Path, name: str) -> Any:
    from transformers import AutoTokenizer

    return AutoTokenizer.from_pretrained(path / name, local_files_only=True)


def load_folder(path: Path, dtype: Any) -> LoadedFolder:
    """Load every present component of a supported family's folder (FolderError when one is missing)."""
    spec = detect_family(path)
    missing = missing_components(path, spec)
    if missing:
        raise FolderError(f"{path.name} is a {FAMILY_LABELS[spec.family]} folder but lacks "
                          f"{', '.join(missing)} (each a subfolder with its config and weights, or tokenizer files)")
    index = read_index(path)
    loaded = LoadedFolder(spec, id2label=_id2label(index))
    for name in (*spec.required, *spec.optional):
        entry = index.get(name)
        if not _present(path, name, entry):
            continue
        try:
            if name.startswith("tokenizer"):
                loaded.modules[name] = _load_tokenizer(path, name)
            elif "scheduler" in name:
                loaded.scheduler_configs[name] = json.loads((path / name / "scheduler_config.json").read_text())
            else:
                loaded.modules[name] = _load_module(path, name, entry, dtype)
        except FolderError:
            raise
        except (OSError, ValueError, KeyError, RuntimeError, ImportError) as exc:  # ImportError: e.g. sentencepiece
            raise FolderError(f"{path.name}/{name} could not be loaded: {str(exc).strip()}") from None
    return loaded
