"""Loader nodes of FLUX.1 and SD3 / 3.5: a whole model (diffusers folder or single-file checkpoint), a transformer
file on its own (ComfyUI's diffusion_models), and separate text encoder files (CLIP-L, CLIP-G, T5)."""

from __future__ import annotations

from typing import Any

from nodegraph.context import NodeContext
from nodegraph.errors import NodeInputError
from nodegraph.node import Output, node
from nodegraph.params import Bool, Choice, ModelFile
from nodegraph.types import CLIP, MODEL, STRING, VAE

CHECKPOINT_EXTENSIONS = (".safetensors", ".ckpt", ".pt", ".pth")


def _log_model(ctx: NodeContext, model: Any, source: str) -> None:
    params = sum(p.numel() for p in model.unet.parameters()) / 1e6
    ctx.log(f"loaded {model.variant} {source}: {type(model.unet).__name__} {params:.1f}M parameters, "
            f"{str(ctx.runtime.dtype).removeprefix('torch.')}")


@node(
    "core.FlowCheckpointLoader", name="Load FLUX / SD3 Checkpoint", category="loaders",
    description="Loads FLUX.1 [dev] / [schnell] or Stable Diffusion 3 / 3.5 from a diffusers folder (model_index.json) "
                "or a single-file checkpoint (the transformer with the VAE, and the text encoders when the file has "
                "them). The family and release are detected from the files. Text encoders missing from a file: "
                "connect Load Text Encoders (FLUX / SD3).",
    params=[ModelFile("ckpt_name", folder="checkpoints", extensions=CHECKPOINT_EXTENSIONS, allow_directories=True,
                      help="A diffusers folder or a single file from the checkpoints folders."),
            Bool("load_t5", True, help="SD3: off leaves T5-XXL out (about 9 GB less in fp16; prompts then go through "
                                       "CLIP alone, as diffusers' text_encoder_3=None). FLUX always needs T5.")],
    outputs=[Output("model", MODEL), Output("clip", CLIP, help="None when the file holds no text encoders"),
             Output("vae", VAE, help="None when the file holds no VAE"), Output("family", STRING)],
)
def flow_checkpoint_loader(ctx: NodeContext, ckpt_name: str, load_t5: bool) -> dict[str, Any]:
    from nodes.dit.folders import FolderError
    from nodes.mmdit.assemble import clip_handle, model_handle, vae_handle
    from nodes.mmdit.folders import load_flow_folder
    from nodes.sd.tensor_sources import CheckpointError

    path = ctx.folders.resolve("checkpoints", ckpt_name)
    dtype = ctx.runtime.dtype
    if path.is_dir():
        try:
            loaded = load_flow_folder(path, dtype, skip_t5=not load_t5)
        except FolderError as exc:
            raise NodeInputError(str(exc), "ckpt_name") from None
        family, m = loaded.family, loaded.modules
        model = model_handle(family, m["transformer"], loaded.scheduler_config)
        names = ("text_encoder", "text_encoder_2") if family == "flux" else ("text_encoder", "text_encoder_2", "text_encoder_3")
        clip = clip_handle(family, tuple(m.get(n.replace("text_encoder", "tokenizer")) for n in names),
                           tuple(m.get(n) for n in names), int(m["transformer"].config.joint_attention_dim))
        vae = vae_handle(family, m["vae"])
        _log_model(ctx, model, f"diffusers folder {path.name}")
        if family == "sd3" and not clip.has_t5:
            ctx.log("no T5 in the folder: SD3 runs without it (zeros stand in for its tokens, as diffusers does)")
    else:
        from nodes.mmdit.checkpoint_file import load_flow_checkpoint

        try:
            parts = load_flow_checkpoint(path, dtype, _t5_tokenizer_dirs(ctx, path), ctx.check_cancelled,
                                         skip_t5=not load_t5)
        except CheckpointError as exc:
            raise NodeInputError(str(exc), "ckpt_name") from None
        model, clip, vae = parts.model, parts.clip, parts.vae
        _log_model(ctx, model, f"checkpoint {path.name}")
        for note in parts.notes:
            ctx.warn(note)
    return {"model": model, "clip": clip, "vae": vae, "family": model.variant}


def _t5_tokenizer_dirs(ctx: NodeContext, near: Any = None) -> tuple:
    dirs = [folder / "t5_tokenizer" for folder in ctx.folders.folders("text_encoders")]
    if near is not None:
        dirs.insert(0, near.parent / "t5_tokenizer")
    return tuple(dirs)


@node(
    "core.FlowTransformerLoader", name="Load Diffusion Model (FLUX / SD3)", category="loaders",
    description="Loads a FLUX.1 or SD3 / 3.5 transformer on its own (ComfyUI's diffusion_models files such as "
                "flux1-dev.safetensors), in the original layout or diffusers'. Add the text encoders with Load Text "
                "Encoders (FLUX / SD3) and the VAE with Load VAE.",
    params=[ModelFile("unet_name", folder="diffusion_models", extensions=CHECKPOINT_EXTENSIONS,
                      help="A transformer file from the diffusion_models (or unet) folders.")],
    outputs=[Output("model", MODEL), Output("family", STRING)],
)
def flow_transformer_loader(ctx: NodeContext, unet_name: str) -> dict[str, Any]:
    from nodes.mmdit.checkpoint_file import load_transformer_file
    from nodes.sd.tensor_sources import CheckpointError

    path = ctx.folders.resolve("diffusion_models", unet_name)
    try:
        model = load_transformer_file(path, ctx.runtime.dtype, ctx.check_cancelled)
    except CheckpointError as exc:
        raise NodeInputError(str(exc), "unet_name") from None
    _log_model(ctx, model, f"transformer {path.name}")
    return {"model": model, "family": model.variant}


ENCODER_EXTENSIONS = (".safetensors", ".ckpt", ".pt", ".pth", ".bin")


@node(
    "core.FlowTextEncoderLoader", name="Load Text Encoders (FLUX / SD3)", category="loaders",
    description="Loads the text encoders of FLUX.1 (CLIP-L + T5-XXL) or SD3 / 3.5 (CLIP-L + CLIP-G, T5-XXL optional) "
                "from separate files, as ComfyUI users have them (clip_l.safetensors, clip_g.safetensors, "
                "t5xxl_fp16.safetensors). The CLIP tokenizers ship with the product; T5's is read from a folder "
                "named t5_tokenizer in a text_encoders folder or next to the T5 file.",
    params=[
        Choice("type", "flux", choices=("flux", "sd3"), help="Which family the encoders are for."),
        ModelFile("clip_l", folder="text_encoders", extensions=ENCODER_EXTENSIONS, help="CLIP-L (both families)."),
        ModelFile("clip_g", folder="text_encoders", extensions=ENCODER_EXTENSIONS, help="CLIP-G (SD3 only)."),
        ModelFile("t5", folder="text_encoders", extensions=ENCODER_EXTENSIONS,
                  help="T5-XXL (required for FLUX; optional for SD3, which then runs on CLIP alone)."),
    ],
    outputs=[Output("clip", CLIP)],
)
def flow_text_encoder_loader(ctx: NodeContext, type: str, clip_l: str, clip_g: str, t5: str) -> Any:
    from nodes.mmdit.assemble import clip_handle
    from nodes.mmdit.encoder_files import T5_TOKENIZER_HELP, build_clip, build_t5, find_t5_tokenizer
    from nodes.sd.families import load_tokenizer
    from nodes.sd.tensor_sources import CheckpointError, open_source

    family = type
    wanted = {"clip_l": clip_l, "clip_g": clip_g if family == "sd3" else "", "t5": t5}
    for name in ("clip_l", "t5") if family == "flux" else ("clip_l", "clip_g"):
        if not wanted[name]:
            raise NodeInputError(f"{family.upper()} needs a {name.replace('_', '-').upper()} file", name)
    if family == "flux" and clip_g:
        ctx.warn("FLUX has no CLIP-G: the clip_g file is not used")

    def load(field: str, build: Any) -> Any:
        path = ctx.folders.resolve("text_encoders", wanted[field])
        try:
            source = open_source(path, ctx.runtime.dtype)
            try:
                return build(_strip_wrapper(source), path.name), path
            finally:
                source.close()
        except CheckpointError as exc:
            raise NodeInputError(str(exc), field) from None

    encoders, tokenizers = [], []
    module, _ = load("clip_l", lambda view, name: build_clip(view, "clip_l", family == "sd3", name))
    encoders.append(module)
    tokenizers.append(load_tokenizer("clip_l"))
    if family == "sd3":
        module, _ = load("clip_g", lambda view, name: build_clip(view, "clip_g", True, name))
        encoders.append(module)
        tokenizers.append(load_tokenizer("clip_g"))
    if wanted["t5"]:
        module, path = load("t5", build_t5)
        tokenizer = find_t5_tokenizer(list(_t5_tokenizer_dirs(ctx, path)))
        if tokenizer is None:
            raise NodeInputError(T5_TOKENIZER_HELP, "t5")
        encoders.append(module)
        tokenizers.append(tokenizer)
    else:
        encoders.append(None)
        tokenizers.append(None)
        ctx.log("no T5: SD3 runs on CLIP-L and CLIP-G alone (zeros stand in for T5's tokens, as diffusers does)")
    return clip_handle(family, tuple(tokenizers), tuple(encoders))


def _strip_wrapper(source: Any) -> Any:
    """Text encoder files sometimes keep the whole-checkpoint prefix (text_encoders.clip_l.transformer.)."""
    from nodes.mmdit.encoder_files import PrefixView

    for key in ("clip_l", "clip_g", "t5xxl"):
        prefix = f"text_encoders.{key}.transformer."
        if any(k.startswith(prefix) for k in source.shapes):
            return PrefixView(source, prefix)
    return PrefixView(source, "")
