"""CLIP-L, CLIP-G, T5-XXL and the 16-channel VAE from single files, as FLUX and SD3 users have them: separate files
(ComfyUI's clip_l.safetensors, clip_g.safetensors, t5xxl_fp16.safetensors, ae.safetensors) or the parts of a whole
checkpoint (``text_encoders.clip_l.transformer.*`` ..., ``first_stage_model.*`` / ``vae.*``).

Each module is built on the meta device from a config read off the tensor shapes and takes the file's tensors
without a copy (nodes.sd.single_file's builders). Text encoder files are in the transformers layout already; the
VAE may be in the original or the diffusers layout. What shapes cannot say comes from the released models: CLIP-L
uses quick-GELU, OpenCLIP bigG (CLIP-G) plain GELU; heads are 64 wide.
"""

from __future__ import annotations

import json
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any

from nodes.sd.architecture import _heads as heads
from nodes.sd.tensor_sources import CheckpointError

CONFIG_ROOT = Path(__file__).resolve().parent / "configs"


class PrefixView(Mapping):
    """The keys of ``source`` under ``prefix``, with the prefix removed (read lazily)."""

    def __init__(self, source: Mapping, prefix: str) -> None:
        self.source = source
        self.prefix = prefix
        self._keys = [k[len(prefix):] for k in source if k.startswith(prefix)]

    def __getitem__(self, key: str) -> Any:
        return self.source[self.prefix + key]

    def __iter__(self) -> Iterator[str]:
        return iter(self._keys)

    def __len__(self) -> int:
        return len(self._keys)

    @property
    def shapes(self) -> dict[str, tuple[int, ...]]:
        shapes = getattr(self.source, "shapes", None)
        if shapes is not None:
            return {k: tuple(shapes[self.prefix + k]) for k in self._keys}
        return {k: tuple(self[k].shape) for k in self._keys}


def shipped_config(name: str) -> dict[str, Any]:
    """A config shipped in nodes/mmdit/configs (never fetched)."""
    return json.loads((CONFIG_ROOT / name).read_text(encoding="utf-8"))


def _count(keys: Any, start: str) -> int:
    indices = {int(k[len(start):].split(".", 1)[0]) for k in keys if k.startswith(start)}
    return max(indices) + 1 if indices else 0


# ------------------------------------------------------------------------------------------------- CLIP


def clip_config(shapes: Mapping[str, tuple[int, ...]], kind: str) -> dict[str, Any]:
    """CLIPTextConfig values for a transformers-layout CLIP text encoder (``kind``: "clip_l" or "clip_g")."""
    root = "text_model." if any(k.startswith("text_model.") for k in shapes) else ""
    try:
        vocab, width = shapes[root + "embeddings.token_embedding.weight"]
        positions = shapes[root + "embeddings.position_embedding.weight"][0]
        intermediate = shapes[root + "encoder.layers.0.mlp.fc1.weight"][0]
    except KeyError as exc:
        raise CheckpointError(f"not a CLIP text encoder in the transformers layout (no {exc.args[0]})") from None
    projection = shapes.get("text_projection.weight")
    return {
        "vocab_size": vocab,
        "hidden_size": width,
        "intermediate_size": intermediate,
        "num_hidden_layers": _count(shapes, root + "encoder.layers."),
        "num_attention_heads": heads(width),
        "max_position_embeddings": positions,
        "hidden_act": "quick_gelu" if kind == "clip_l" else "gelu",
        "projection_dim": projection[0] if projection else width,
        "layer_norm_eps": 1e-5,
        # OpenAI CLIP pools at the end-of-text token, which has the highest id (diffusers' SD3 configs say 2)
        "eos_token_id": 2,
        "bos_token_id": 0,
        "pad_token_id": 1,
    }


def build_clip(view: Mapping, kind: str, projection: bool, name: str) -> Any:
    """A CLIPTextModel (``projection`` False: FLUX's CLIP-L, pooled output) or CLIPTextModelWithProjection (SD3).

    SD3 was trained on CLIP-L's unprojected pooled output, so an SD3 CLIP-L gets an identity projection whatever
    the file holds (diffusers' ``from_single_file`` does the same; ComfyUI skips the projection); CLIP-G's own
    projection is used."""
    import torch

    from nodes.sd.single_file import build_text_encoder

    shapes = view.shapes if hasattr(view, "shapes") else {k: tuple(v.shape) for k, v in view.items()}
    config = clip_config(shapes, kind)
    keys = [k for k in shapes if not k.endswith("position_ids") and not k.startswith("text_projection.")]
    state = {k: view[k] for k in keys}
    if projection and kind == "clip_l":
        config["projection_dim"] = config["hidden_size"]
        state["text_projection.weight"] = torch.eye(config["hidden_size"], dtype=state[keys[0]].dtype)
    elif projection:
        if "text_projection.weight" not in shapes:
            raise CheckpointError(f"{name}: the CLIP-G text encoder has no text projection, which SD3 needs (its "
                                  "pooled embedding is projected)")
        state["text_projection.weight"] = view["text_projection.weight"]
    return build_text_encoder(config, state, name, projection=projection)


# --------------------------------------------------------------------------------------------------- T5


def t5_config(shapes: Mapping[str, tuple[int, ...]]) -> dict[str, Any]:
    """T5Config values for a T5 encoder (transformers layout: ``shared.weight``, ``encoder.block.N...``)."""
    try:
        vocab, width = shapes["shared.weight"] if "shared.weight" in shapes else shapes["encoder.embed_tokens.weight"]
        buckets, heads = shapes["encoder.block.0.layer.0.SelfAttention.relative_attention_bias.weight"]
        inner = shapes["encoder.block.0.layer.0.SelfAttention.q.weight"][0]
    except KeyError as exc:
        raise CheckpointError(f"not a T5 encoder in the transformers layout (no {exc.args[0]})") from None
    gated = "encoder.block.0.layer.1.DenseReluDense.wi_0.weight" in shapes
    ff = shapes["encoder.block.0.layer.1.DenseReluDense." + ("wi_0" if gated else "wi") + ".weight"][0]
    return {
        "vocab_size": vocab,
        "d_model": width,
        "d_kv": inner // heads,
        "d_ff": ff,
        "num_layers": _count(shapes, "encoder.block."),
        "num_heads": heads,
        "relative_attention_num_buckets": buckets,
        "relative_attention_max_distance": 128,
        "feed_forward_proj": "gated-gelu" if gated else "relu",
        "dense_act_fn": "gelu_new" if gated else "relu",
        "is_gated_act": gated,
        "layer_norm_epsilon": 1e-6,
        "tie_word_embeddings": False,
        "pad_token_id": 0,
        "eos_token_id": 1,
    }


def build_t5(view: Mapping, name: str) -> Any:
    from accelerate import init_empty_weights
    from transformers import T5Config, T5EncoderModel

    shapes = view.shapes if hasattr(view, "shapes") else {k: tuple(v.shape) for k, v in view.items()}
    config = T5Config(**t5_config(shapes))
    with init_empty_weights():
        model = T5EncoderModel(config)
    state = {k: view[k] for k in shapes if k.startswith(("shared.", "encoder."))}
    if "shared.weight" not in state and "encoder.embed_tokens.weight" in state:
        state["shared.weight"] = state["encoder.embed_tokens.weight"]
    try:
        _, unexpected = model.load_state_dict(state, strict=False, assign=True)
    except RuntimeError as exc:
        raise CheckpointError(f"{name}: the T5 weights do not fit its architecture: {exc}") from None
    model.tie_weights()  # the encoder's token embedding is the shared one
    still_meta = [n for n, p in model.named_parameters() if p.is_meta]
    if still_meta or unexpected:
        raise CheckpointError(f"{name}: the T5 weights do not match its architecture: missing {still_meta[:5]}, "
                              f"unexpected {unexpected[:5]}")
    return model.eval().requires_grad_(False)


def find_t5_tokenizer(candidates: list[Path]) -> Any:
    """The T5 tokenizer from the first candidate folder holding one (``spiece.model`` and/or ``tokenizer.json``)."""
    from transformers import AutoTokenizer, T5TokenizerFast

    for folder in candidates:
        if folder.is_dir() and any((folder / f).is_file() for f in ("spiece.model", "tokenizer.json")):
            if (folder / "tokenizer_config.json").is_file():
                return AutoTokenizer.from_pretrained(folder, local_files_only=True)
            return T5TokenizerFast.from_pretrained(folder, local_files_only=True)
    return None


T5_TOKENIZER_HELP = (
    "T5 needs its tokenizer, which single T5 files do not contain: put a folder named t5_tokenizer holding T5-XXL's "
    "spiece.model or tokenizer.json (for example the tokenizer_2 folder of a FLUX diffusers download, or "
    "google/t5-v1_1-xxl's tokenizer files) into a text_encoders folder, or next to the T5 file")


# -------------------------------------------------------------------------------------------------- VAE


def build_vae(view: Mapping, family: str, name: str, dtype: Any = None) -> Any:
    """The 16-channel VAE (original layout ``encoder.down.N``, or diffusers ``encoder.down_blocks.N``), configured
    with the family's latent scaling (a file carries none)."""
    from diffusers.loaders.single_file_utils import convert_ldm_vae_checkpoint

    from nodes.sd.architecture import _groups, infer_vae_config
    from nodes.sd.single_file import build_vae as build

    shapes = view.shapes if hasattr(view, "shapes") else {k: tuple(v.shape) for k, v in view.items()}
    config = shipped_config(f"{family}_vae.json")
    if "encoder.down.0.block.0.conv1.weight" in shapes:
        inferred = infer_vae_config(shapes, "sd15", "")
        config.update({k: inferred[k] for k in ("in_channels", "out_channels", "latent_channels", "block_out_channels",
                                                "layers_per_block", "down_block_types", "up_block_types",
                                                "norm_num_groups", "use_quant_conv", "use_post_quant_conv")})
        config["mid_block_add_attention"] = inferred.get("mid_block_add_attention", True)
        state = convert_ldm_vae_checkpoint(view, config)
    elif "encoder.down_blocks.0.resnets.0.conv1.weight" in shapes:
        levels = _count(shapes, "encoder.down_blocks.")
        channels = [shapes[f"encoder.down_blocks.{i}.resnets.0.conv2.weight"][0] for i in range(levels)]
        config.update(block_out_channels=channels, latent_channels=shapes["decoder.conv_in.weight"][1],
                      layers_per_block=_count(shapes, "encoder.down_blocks.0.resnets."),
                      down_block_types=["DownEncoderBlock2D"] * levels, up_block_types=["UpDecoderBlock2D"] * levels,
                      use_quant_conv="quant_conv.weight" in shapes, use_post_quant_conv="post_quant_conv.weight" in shapes,
                      norm_num_groups=_groups(channels, 32))
        state = dict(view)
    else:
        raise CheckpointError(f"{name} holds no VAE in a layout this loader knows")
    if config["latent_channels"] != 16:
        raise CheckpointError(f"{name}: a VAE with {config['latent_channels']} latent channels, but FLUX and SD3 "
                              "VAEs have 16 (an SD1.5/SDXL VAE: use it with those models)")
    return build(config, state, name)
