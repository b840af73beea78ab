"""LoRA files: reading (once per file version), matching to a model's modules, and the patches that result.

Two steps, so that changing a strength never reads the file again:

1. :func:`read_lora` parses a file into :class:`LoraFile` (per component, the low-rank pair and alpha of
   every adapted module, under the module name the file uses). Results are cached by resolved path, size
   and modification time.
2. :func:`match_lora` finds each of those modules in a concrete UNet or text encoder and checks shapes;
   :func:`make_patch` turns the matches into a :class:`LoraPatch` that applies them (with peft's LoRA
   layers, see :mod:`nodes.adapters.patching`) only while the module runs.

Layouts understood:

- kohya / A1111: ``lora_unet_<module>`` (SD1.5 files use diffusers module names, SDXL files the original
  ``input_blocks``/``middle_block``/``output_blocks`` names), ``lora_te_``/``lora_te1_`` (first text
  encoder), ``lora_te2_`` (SDXL's second), each with ``.lora_down.weight``, ``.lora_up.weight`` and an
  optional ``.alpha`` (scale = alpha / rank; missing alpha means scale 1);
- diffusers / PEFT: ``unet.<module>``, ``text_encoder.<module>``, ``text_encoder_2.<module>`` (or a bare
  peft adapter's ``base_model.model.<module>``, for a UNet or the first text encoder) with
  ``lora_A``/``lora_B`` (PEFT), ``lora.down``/``lora.up``, ``lora_linear_layer.down``/``up`` or the old
  attention-processor spelling (``attn1.processor.to_q_lora.down``); alphas from the file's
  ``lora_adapter_metadata`` (what diffusers' ``save_lora_weights`` writes) or ``.alpha`` keys.

Keys that fit neither are kept in :attr:`LoraFile.unknown` and reported by the node, never dropped silently.
"""

from __future__ import annotations

import itertools
import json
import re
import threading
from collections import Counter, OrderedDict
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch

from nodes.adapters.lora_weights import LoraPart, LoraWeights

COMPONENTS = ("unet", "text_encoder", "text_encoder_2", "transformer")  # transformer: FLUX (nodes.flux.lora)
KOHYA_PREFIXES = {"lora_unet_": "unet", "lora_te_": "text_encoder", "lora_te1_": "text_encoder", "lora_te2_": "text_encoder_2"}
KOHYA_SUFFIXES = {".lora_down.weight": "down", ".lora_up.weight": "up", ".alpha": "alpha"}
# diffusers/PEFT spellings of the two halves, longest first so that ".lora_A.weight" wins over shorter ones
DIFFUSERS_SUFFIXES = (
    (".lora_linear_layer.down.weight", "down"),
    (".lora_linear_layer.up.weight", "up"),
    (".lora_A.weight", "down"),
    (".lora_B.weight", "up"),
    (".lora.down.weight", "down"),
    (".lora.up.weight", "up"),
    (".alpha", "alpha"),
)
# old attention-processor names: "<attn>.processor.to_q_lora" -> "<attn>.to_q" (UNet) or "q_proj" (CLIP)
_PROCESSOR_LORA = re.compile(r"(?:\.processor)?\.(to_q|to_k|to_v|to_out)_lora\.(down|up)\.weight$")
_UNET_PROCESSOR = {"to_q": "to_q", "to_k": "to_k", "to_v": "to_v", "to_out": "to_out.0"}
_CLIP_PROCESSOR = {"to_q": "q_proj", "to_k": "k_proj", "to_v": "v_proj", "to_out": "out_proj"}
FILE_CACHE_ENTRIES = 8


class LoraFormatError(ValueError):
    """The file holds no LoRA weights this code understands."""


@dataclass(frozen=True, eq=False)
class LoraFile:
    """A parsed LoRA file: ``components[c][module_key]`` for c in :data:`COMPONENTS`. Module keys are as the
    file spells them: dotted names for diffusers files, underscore-joined names for kohya files."""

    path: str
    layout: str  # "kohya" | "diffusers"
    components: dict[str, dict[str, LoraWeights]]
    unknown: tuple[str, ...] = ()  # keys that belong to no module pair we understand
    use_rslora: bool = False

    @property
    def family_hint(self) -> str | None:
        """"sdxl" when the file has weights for a second text encoder (only SDXL has one), else None."""
        return "sdxl" if self.components.get("text_encoder_2") else None

    def count(self) -> int:
        return sum(len(c) for c in self.components.values())

    def cache_nbytes(self) -> int:
        return sum(
            w.down.numel() * w.down.element_size() + w.up.numel() * w.up.element_size()
            for c in self.components.values()
            for w in c.values()
        )


# ----------------------------------------------------------------------------------------------- reading


def _load_state_dict(path: Path) -> tuple[dict[str, torch.Tensor], dict[str, str]]:
    from nodes.weight_files import read_weights

    try:
        return read_weights(path)  # bounded, code never run
    except ValueError as exc:
        raise LoraFormatError(str(exc)) from None


def _metadata_alphas(metadata: dict[str, str]) -> tuple[dict[str, dict[str, Any]], bool]:
    """Per component, the PEFT config diffusers saved (``lora_alpha``, ``alpha_pattern``, ``use_rslora``)."""
    raw = metadata.get("lora_adapter_metadata")
    if not raw:
        return {}, False
    try:
        flat = json.loads(raw)
    except json.JSONDecodeError:
        return {}, False
    configs: dict[str, dict[str, Any]] = {}
    for key, value in flat.items():
        component, _, name = key.partition(".")
        configs.setdefault(component, {})[name] = value
    rslora = any(c.get("use_rslora") for c in configs.values())
    return configs, rslora


def _config_alpha(config: dict[str, Any], module: str) -> float | None:
    from peft.utils.other import get_pattern_key

    pattern = config.get("alpha_pattern") or {}
    if pattern:
        key = get_pattern_key(list(pattern), module)
        if key in pattern:
            return float(pattern[key])
    alpha = config.get("lora_alpha")
    return float(alpha) if alpha is not None else None


def parse_lora_state_dict(state: dict[str, torch.Tensor], metadata: dict[str, str] | None = None, path: str = "") -> LoraFile:
    """Sort a LoRA state dict into components and module pairs (no model needed)."""
    metadata = metadata or {}
    is_kohya = any(k.startswith(tuple(KOHYA_PREFIXES)) for k in state)
    parts: dict[tuple[str, str], dict[str, Any]] = {}
    unknown: list[str] = []
    for key, tensor in state.items():
        found = _split_kohya(key) if is_kohya else _split_diffusers(key)
        if found is None:
            unknown.append(key)
            continue
        component, module, half = found
        parts.setdefault((component, module), {})[half] = tensor
    configs, rslora = _metadata_alphas(metadata)
    components: dict[str, dict[str, LoraWeights]] = {}
    for (component, module), halves in parts.items():
        if "down" not in halves or "up" not in halves:
            unknown.extend(f"{component}:{module}.{h}" for h in halves)
            continue
        alpha = halves.get("alpha")
        if alpha is not None:
            alpha = float(alpha.reshape(-1)[0].item())
        elif component in configs:
            alpha = _config_alpha(configs[component], module)
        components.setdefault(component, {})[module] = LoraWeights(halves["down"], halves["up"], alpha)
    if not components:
        example = ", ".join(list(state)[:3]) or "(no tensors)"
        raise LoraFormatError(
            f"no LoRA weights found (expected kohya 'lora_unet_*'/'lora_te*' or diffusers 'unet.*'/'text_encoder*.*' "
            f"keys with lora_down/lora_up or lora_A/lora_B; found keys like {example})"
        )
    return LoraFile(path, "kohya" if is_kohya else "diffusers", components, tuple(unknown), rslora)


def _split_kohya(key: str) -> tuple[str, str, str] | None:
    prefix = next((p for p in KOHYA_PREFIXES if key.startswith(p)), None)
    suffix = next((s for s in KOHYA_SUFFIXES if key.endswith(s)), None)
    if prefix is None or suffix is None:
        return None
    return KOHYA_PREFIXES[prefix], key[len(prefix) : -len(suffix)], KOHYA_SUFFIXES[suffix]


PEFT_PREFIX = "base_model.model."  # a bare peft adapter (PeftModel.save_pretrained) of one model


def _split_diffusers(key: str) -> tuple[str, str, str] | None:
    if key.startswith(PEFT_PREFIX):  # which model it adapts shows in its module names
        rest = key[len(PEFT_PREFIX) :]
        text = rest.startswith(("text_model.", "encoder.layers.", "embeddings."))
        key = f"{'text_encoder' if text else 'unet'}.{rest}"
    component, _, rest = key.partition(".")
    if component not in COMPONENTS or not rest:
        return None
    old = _PROCESSOR_LORA.search(rest)
    if old is not None:
        names = _UNET_PROCESSOR if component == "unet" else _CLIP_PROCESSOR
        # UNet: "<attn>.processor.to_q_lora" -> "<attn>.to_q"; CLIP: "<layer>.self_attn.to_q_lora" -> "...q_proj"
        return component, f"{rest[: old.start()]}.{names[old.group(1)]}", old.group(2)
    for suffix, half in DIFFUSERS_SUFFIXES:
        if rest.endswith(suffix):
            return component, rest[: -len(suffix)], half
    return None


_cache_lock = threading.Lock()
_file_cache: OrderedDict[tuple[str, int, int, str], LoraFile] = OrderedDict()
file_reads = Counter()  # path -> how many times the file was actually read (the cache's tests read it)


def read_lora(path: str | Path, convert: Any = None) -> LoraFile:
    """The parsed file, read from disk only when this path, size and modification time were not seen.
    ``convert(state) -> state`` first turns another layout into the diffusers one (FLUX: nodes.flux.lora)."""
    path = Path(path).resolve()
    stat = path.stat()
    key = (str(path), stat.st_size, stat.st_mtime_ns, getattr(convert, "__qualname__", ""))
    with _cache_lock:
        cached = _file_cache.get(key)
        if cached is not None:
            _file_cache.move_to_end(key)
            return cached
    state, metadata = _load_state_dict(path)
    parsed = parse_lora_state_dict(convert(state) if convert else state, metadata, str(path))
    file_reads[str(path)] += 1
    with _cache_lock:
        _file_cache[key] = parsed
        while len(_file_cache) > FILE_CACHE_ENTRIES:
            _file_cache.popitem(last=False)
    return parsed


# ---------------------------------------------------------------------------------------------- matching


def _adaptable(module: torch.nn.Module) -> bool:
    return isinstance(module, (torch.nn.Linear, torch.nn.Conv2d))


def _unet_original_names(unet: torch.nn.Module, names: list[str]) -> dict[str, str]:
    """diffusers module name -> original (LDM) name, via the Save Checkpoint key mapping."""
    from nodes.sd.convert_to_ldm import UNET_PREFIX, unet_to_ldm

    out: dict[str, str] = {}
    for name in names:
        try:
            mapped = list(unet_to_ldm({f"{name}.weight": None}, unet.config))
        except Exception:  # a module the original layout does not know: only its diffusers name is offered
            continue
        for key, _ in mapped:
            out[name] = key.removeprefix(UNET_PREFIX).removesuffix(".weight")
    return out


def module_index(module: torch.nn.Module, component: str) -> dict[str, str]:
    """Every spelling a LoRA file may use for an adaptable submodule -> its name in ``module``.

    Dotted names and kohya's underscore-joined names; text encoders also with the ``text_model.`` level
    that transformers < 5.6 had; UNets also under their original (``input_blocks``) names."""
    names = [name for name, sub in module.named_modules() if name and _adaptable(sub)]
    aliases: dict[str, list[str]] = {name: [name] for name in names}
    if component == "unet":
        for name, original in _unet_original_names(module, names).items():
            aliases[name].append(original)
    else:
        has_text_model = any(n.startswith("text_model.") for n in names)
        for name in names:
            aliases[name].append(name.removeprefix("text_model.") if has_text_model else f"text_model.{name}")
    index: dict[str, str] = {}
    for name, spellings in aliases.items():
        for spelling in spellings:
            index.setdefault(spelling, name)
            index.setdefault(spelling.replace(".", "_"), name)
    return index


@dataclass
class Match:
    """The result of matching one component of a LoRA file against one module."""

    matched: dict[str, LoraWeights] = field(default_factory=dict)  # model module name -> weights
    unmatched: list[str] = field(default_factory=list)  # file module keys with no such module
    mismatched: list[str] = field(default_factory=list)  # descriptions of shape conflicts


def _fit(weights: LoraWeights, target: torch.nn.Module) -> LoraWeights | str:
    """The weights reshaped for ``target`` (a 1x1 conv LoRA on a linear layer and back), or why they do not fit."""
    down, up = weights.down, weights.up
    if isinstance(target, torch.nn.Linear):
        if down.ndim == 4 and down.shape[2:] == (1, 1):
            down, up = down.flatten(1), up.flatten(1)
        expected_in, expected_out = target.in_features, target.out_features
        ok_kind = down.ndim == 2 and up.ndim == 2
    else:
        if down.ndim == 2:
            down, up = down[:, :, None, None], up[:, :, None, None]
        expected_in, expected_out = target.in_channels, target.out_channels
        ok_kind = down.ndim == 4 and tuple(down.shape[2:]) == tuple(target.kernel_size) and up.shape[2:] == (1, 1)
    if not ok_kind or down.shape[1] != expected_in or up.shape[0] != expected_out or up.shape[1] != down.shape[0]:
        return (
            f"LoRA {list(weights.down.shape)}x{list(weights.up.shape)} on a {type(target).__name__} "
            f"{expected_in}->{expected_out}"
        )
    if down is weights.down:
        return weights
    return LoraWeights(down, up, weights.alpha)


def match_lora(lora: LoraFile, component: str, module: torch.nn.Module) -> Match:
    """Find ``lora``'s weights for ``component`` in ``module``; check every shape."""
    match = Match()
    entries = lora.components.get(component, {})
    if not entries:
        return match
    index = module_index(module, component)
    modules = dict(module.named_modules())
    for key, weights in entries.items():
        name = index.get(key)
        if name is None:
            match.unmatched.append(key)
            continue
        fitted = _fit(weights, modules[name])
        if isinstance(fitted, str):
            match.mismatched.append(f"{name}: {fitted}")
        else:
            match.matched[name] = fitted
    return match


# ----------------------------------------------------------------------------------------------- patches

_adapter_ids = itertools.count()


@dataclass(frozen=True, eq=False)
class LoraPatch:
    """A LoRA at given strengths, for the modules of one handle. ``applied(module)`` is the patch protocol
    the sampler and the text encoder call (:func:`nodes.sd.text_encode.patches_applied`): it adds the LoRA
    to ``module`` for the block and removes it afterwards; modules this patch has no part for are left
    alone."""

    label: str
    parts: tuple[LoraPart, ...]
    adapter_name: str = field(default_factory=lambda: f"nodegraph_lora_{next(_adapter_ids)}")

    def applied(self, module: Any) -> Any:
        from nodes.adapters.patching import lora_applied

        part = next((p for p in self.parts if p.module is module), None)
        return lora_applied(module, part, self.adapter_name)

    def cache_nbytes(self) -> int:
        return sum(p.cache_nbytes() for p in self.parts)


# -------------------------------------------------------------------------------------------- planning


class LoraMismatch(ValueError):
    """The LoRA was made for another model (family or architecture)."""

    def __init__(self, message: str, field: str = "lora_name") -> None:
        super().__init__(message)
        self.field = field


@dataclass
class LoraPlan:
    """What applying one LoRA file to one MODEL (+ CLIP) does."""

    unet_module: Any
    unet: Match
    encoders: list[tuple[str, Any, Match]]  # (component, encoder module, match)
    ignored: list[str]  # "<component>: <key>" not used by this loader (e.g. text encoder weights, model only)

    @property
    def unmatched(self) -> list[str]:
        out = [f"unet: {k}" for k in self.unet.unmatched]
        for component, _, m in self.encoders:
            out += [f"{component}: {k}" for k in m.unmatched]
        return out

    @property
    def matched_count(self) -> int:
        return len(self.unet.matched) + sum(len(m.matched) for _, _, m in self.encoders)


def _label(family: str) -> str:
    from nodes.sd.families import family_label

    return family_label(family)


def plan_lora(lora: LoraFile, family: str, unet: Any | None, encoders: tuple = (), encoder_family: str | None = None) -> LoraPlan:
    """Match ``lora`` against a UNet (of ``family``) and text encoders (of ``encoder_family``); raise
    :class:`LoraMismatch` when it belongs to another family (a shape conflict, or nothing fits at all)."""
    from nodes.sd.families import FAMILIES

    hint = lora.family_hint
    for fam in filter(None, (family if unet is not None else None, encoder_family if encoders else None)):
        if hint is not None and hint != fam and fam != "sdxl_refiner":
            raise LoraMismatch(
                f"this LoRA is for {_label(hint)} (it has weights for a second text encoder) but the model is "
                f"{_label(fam)}; load a LoRA made for {_label(fam)}"
            )
    unet_match = match_lora(lora, "unet", unet) if unet is not None else Match()
    encoder_matches = []
    component_names = FAMILIES[encoder_family].text_encoders if encoder_family in FAMILIES else ()
    for component, encoder in zip(component_names, encoders):
        encoder_matches.append((component, encoder, match_lora(lora, component, encoder)))
    used = {"unet"} if unet is not None else set()
    used |= {c for c, _, _ in encoder_matches}
    # components this loader does not touch: the text encoders for a model-only loader, or one this CLIP
    # does not have (an SDXL text_encoder_2 on the refiner)
    ignored = [f"{c}: {k}" for c, entries in lora.components.items() if c not in used for k in entries]
    plan = LoraPlan(unet, unet_match, encoder_matches, ignored)
    mismatched = unet_match.mismatched + [x for _, _, m in encoder_matches for x in m.mismatched]
    what = _label(family if unet is not None else encoder_family or family)
    suffix = f"; it looks like a LoRA for {_label(hint)}" if hint else ""
    if mismatched:
        raise LoraMismatch(
            f"this LoRA does not fit this {what} model: {len(mismatched)} of its layers have other shapes "
            f"(e.g. {mismatched[0]}){suffix}; is it a LoRA for another model family?"
        )
    considered = len(unet_match.unmatched) + sum(len(m.unmatched) for _, _, m in encoder_matches)
    if plan.matched_count == 0 and considered:
        examples = ", ".join(plan.unmatched[:3])
        raise LoraMismatch(
            f"none of this LoRA's {considered} layers exist in this {what} model (e.g. {examples}){suffix}; "
            "is it a LoRA for another model family?"
        )
    return plan


def make_patches(lora: LoraFile, plan: LoraPlan, strength_model: float, strength_clip: float) -> tuple[LoraPatch | None, LoraPatch | None]:
    """(patch for the MODEL or None, patch for the CLIP or None); strength 0 adds no patch (the base exactly)."""
    label = Path(lora.path).name
    model_patch = clip_patch = None
    if plan.unet.matched and strength_model != 0.0:
        part = LoraPart(plan.unet_module, plan.unet.matched, strength_model, lora.use_rslora)
        model_patch = LoraPatch(label, (part,))
    parts = tuple(
        LoraPart(encoder, m.matched, strength_clip, lora.use_rslora) for _, encoder, m in plan.encoders if m.matched
    )
    if parts and strength_clip != 0.0:
        clip_patch = LoraPatch(label, parts)
    return model_patch, clip_patch
