"""The loader for diffusers-format folders of PixArt, Hunyuan-DiT and DeepFloyd IF (stages I and II)."""

from __future__ import annotations

from typing import Any

from nodegraph.context import NodeContext
from nodegraph.errors import NodeInputError
from nodegraph.node import Output, node
from nodegraph.params import Bool, ModelFile
from nodegraph.types import CLIP, MODEL, STRING, VAE


@node(
    "core.DiffusersModelLoader", name="Load DiT / IF Model", category="loaders",
    description="Loads a diffusers-format folder of PixArt-alpha/sigma, Hunyuan-DiT, DeepFloyd IF stage I or II, or a "
                "class-conditional DiT (ImageNet; conditioned with Class Label / ImageNet Class nodes) "
                "(text encoders and tokenizers from the folder itself, never from a hub), or the SD x4 upscaler (the "
                "cascade's optional last stage; its CLIP encodes with CLIP Text Encode). The family is detected "
                "from model_index.json and shown. IF has no VAE (it samples pixels) and an IF stage II folder "
                "usually no text encoder (encode with stage I's).",
    params=[
        ModelFile("model_name", folder="checkpoints", extensions=(), allow_directories=True,
                  help="A diffusers pipeline folder (with model_index.json) from the checkpoints folders."),
        Bool("dynamic_thresholding", True,
             help="IF: apply the dynamic thresholding the folder's scheduler config asks for (Imagen's, with its "
                  "ratio and maximum) as a guidance step. Off: no thresholding."),
    ],
    outputs=[Output("model", MODEL), Output("clip", CLIP, help="T5 (PixArt, IF), BERT + mT5 (Hunyuan-DiT) or CLIP (x4 upscaler)"),
             Output("vae", VAE, help="None for IF (pixel space)"), Output("family", STRING)],
)
def diffusers_model_loader(ctx: NodeContext, model_name: str, dynamic_thresholding: bool) -> dict[str, Any]:
    from nodes.dit.folders import FolderError, load_folder
    from nodes.dit.handles import FAMILY_LABELS, PIXEL_FAMILIES, DiffusionModelHandle, TextEncodersHandle
    from nodes.sd.handles import ClipHandle, VaeHandle

    path = ctx.folders.resolve("checkpoints", model_name)
    try:
        loaded = load_folder(path, ctx.runtime.dtype)
    except FolderError as exc:
        raise NodeInputError(str(exc), "model_name") from None
    spec, modules = loaded.spec, loaded.modules
    family = spec.family
    scheduler_config = dict(loaded.scheduler_configs["scheduler"])
    guidance: tuple = ()
    if scheduler_config.pop("thresholding", False) and dynamic_thresholding:
        from nodes.dit.thresholding import FolderImagenThresholding

        guidance = (FolderImagenThresholding(float(scheduler_config.get("dynamic_thresholding_ratio", 0.995)),
                                             float(scheduler_config.get("sample_max_value", 1.0))),)
    network = modules.get("transformer") or modules["unet"]
    pixel = family in PIXEL_FAMILIES
    vae = modules.get("vae")
    if pixel:
        channels, cell = (network.config.in_channels // 2 if family == "if_stage_2" else network.config.in_channels), 1
    else:  # the x4 upscaler's UNet also takes the image's 3 channels: the sample has the VAE's latent channels
        channels, cell = vae.config.latent_channels, 2 ** (len(vae.config.block_out_channels) - 1)
    noise_config = loaded.scheduler_configs.get("image_noising_scheduler") or loaded.scheduler_configs.get("low_res_scheduler")
    model = DiffusionModelHandle(
        network, family, scheduler_config, scheduler_config.get("prediction_type", "epsilon"), guidance=guidance,
        sample_channels=channels, pixels_per_cell=cell, noise_scheduler_config=noise_config,
        id2label=loaded.id2label,
    )
    clip = None
    encoder_names = [n for n in ("text_encoder", "text_encoder_2") if n in modules]
    if family == "sd_x4_upscaler":  # a CLIP text encoder: the SD text nodes encode for it
        clip = ClipHandle(family, (modules["tokenizer"],), (modules["text_encoder"],))
    elif encoder_names:
        clip = TextEncodersHandle(
            family,
            tuple(modules[n.replace("text_encoder", "tokenizer")] for n in encoder_names),
            tuple(modules[n] for n in encoder_names),
            spec.text_lengths[: len(encoder_names)],
        )
    vae_handle = None
    if vae is not None:
        vae_handle = VaeHandle(vae, family, float(vae.config.scaling_factor),
                               float(getattr(vae.config, "shift_factor", None) or 0.0))
    params = sum(p.numel() for p in network.parameters()) / 1e6
    ctx.log(f"loaded {FAMILY_LABELS[family]} folder {path.name}: {type(network).__name__} {params:.1f}M parameters"
            + (", class-conditional: use Class Label / ImageNet Class" if family == "dit_class" else
               ", no text encoder in the folder" if clip is None else "")
            + (f", dynamic thresholding {guidance[0].ratio}/{guidance[0].max_value}" if guidance else ""))
    return {"model": model, "clip": clip, "vae": vae_handle, "family": FAMILY_LABELS[family]}
