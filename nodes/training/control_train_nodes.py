"""The Train ControlNet and Train T2I-Adapter nodes. Their declarations share every training parameter; the
work is in :mod:`nodes.training.control_run` (imported inside the node functions: it needs torch)."""

from __future__ import annotations

from typing import Any

from nodegraph.context import NodeContext
from nodegraph.node import Input, Output, node
from nodegraph.params import Bool, Choice, Float, Int, Seed, String, Text
from nodegraph.types import CLIP, CONTROL_NET, IMAGE, MODEL, STRING, T2I_ADAPTER, VAE

PRECISIONS = ("auto", "fp32", "bf16", "fp16")
SAVE_FORMATS = ("diffusers folder", "single file")
ADAPTER_CHOICES = ("auto", "full_adapter", "light_adapter", "full_adapter_xl")


def _fingerprint(params: dict[str, Any], ctx: NodeContext) -> Any:
    from nodes.training.control_dataset import fingerprint

    return fingerprint(params["dataset"])


def _base_inputs() -> list[Input]:
    return [
        Input("model", MODEL, help="The base model (frozen; SD1.5 or SDXL, from a checkpoint loader)."),
        Input("clip", CLIP, help="Its text encoder(s), frozen: captions are encoded once."),
        Input("vae", VAE, help="The VAE that turns the training images into latents (frozen)."),
    ]


def _shared_params(default_name: str) -> tuple[list, list]:
    """(parameters before the kind's own ones, parameters after them)."""
    head = [
        String("dataset", "", placeholder="folder with images/ + conditioning/, or a .jsonl index",
               help="Training examples: a folder whose images/ and conditioning/ hold files paired by name (captions "
                    "in captions/NAME.txt or images/NAME.txt), or a metadata.jsonl index with image, "
                    "conditioning_image and text per line. See docs/train_control.md."),
        String("name", default_name,
               help="Name of the result in your model folder (a taken name gets a number; nothing is overwritten)."),
        Choice("save_as", SAVE_FORMATS[0], choices=SAVE_FORMATS,
               help="A diffusers folder (config.json + weights), or one original-layout .safetensors file."),
        Float("learning_rate", 1e-5, min=1e-8, max=1.0, step=1e-6, help="AdamW learning rate (diffusers' default 1e-5)."),
        Int("steps", 1000, min=1, max=1_000_000, help="Optimisation steps."),
        Int("batch_size", 4, min=1, max=256, help="Examples per forward pass."),
        Int("gradient_accumulation", 1, min=1, max=256,
            help="Forward passes per optimisation step: the effective batch is batch_size x this."),
        Int("resolution", 512, min=8, max=4096, step=8,
            help="Images and conditions are centre-cropped to a square and resized to this size."),
        Seed("seed", 0, help="Seed of the new model's initialisation, the batches, the noise and the dropped captions."),
        Float("empty_prompt_share", 0.5, min=0.0, max=1.0, step=0.05,
              help="Share of captions replaced by the empty one (the ControlNet paper drops half, so the model "
                   "learns to follow the condition alone)."),
    ]
    tail = [
        Text("validation_prompts", "",
             help="One prompt per line for the validation samples; empty: the captions of the first dataset examples."),
        Int("validation_count", 4, min=0, max=64,
            help="Validation samples when no validation images are connected (the first dataset conditions); 0: none."),
        Int("validation_every", 250, min=0, max=1_000_000,
            help="Steps between validation samples (shown as previews and saved in the output folder); 0: only "
                 "at the end."),
        Int("validation_steps", 20, min=1, max=1000, help="Sampler steps of a validation sample (DDIM)."),
        Float("validation_cfg", 7.0, min=1.0, max=30.0, step=0.5, help="CFG scale of the validation samples."),
        Int("checkpoint_every", 0, min=0, max=1_000_000,
            help="Steps between checkpoints (diffusers folders in the output folder's <name>_training/); 0: none."),
        Choice("precision", PRECISIONS[0], choices=PRECISIONS,
               help="Compute dtype (weights train in float32): auto = the run's (fp16 on a GPU, fp32 on the CPU)."),
        Bool("gradient_checkpointing", False, help="Recompute activations in the backward pass: less memory, ~30% slower."),
        Bool("cache", True, help="Encode each image's latents and each caption once and keep them (faster; uses memory)."),
    ]
    return head, tail


_HEAD, _TAIL = _shared_params("my_controlnet")


@node(
    "core.TrainControlNet", name="Train ControlNet", category="training",
    description=(
        "Trains a ControlNet on (image, conditioning image, caption) examples with the base model frozen, as "
        "diffusers' train_controlnet.py does: a copy of the UNet's encoder joined by zero convolutions (so it "
        "starts as a no-op), DDPM noise, its residuals added to the UNet's, the noise-prediction loss. Shows "
        "validation samples as previews, saves checkpoints, and saves what was trained when cancelled. The "
        "result goes into your controlnet model folder and loads with Load ControlNet."
    ),
    inputs=[*_base_inputs(),
            Input("control_net", CONTROL_NET, optional=True,
                  help="Optional: continue training this ControlNet instead of starting from the UNet."),
            Input("validation_images", IMAGE, optional=True,
                  help="Optional: condition images for the validation samples (one sample per image).")],
    params=[*_HEAD,
            String("embedding_channels", "16,32,96,256",
                   help="Widths of a new ControlNet's condition embedding; one more than the VAE's downsampling "
                        "steps (4 for an 8x VAE)."),
            *_TAIL],
    outputs=[Output("control_net", CONTROL_NET, help="The trained ControlNet, read back from the saved result."),
             Output("name", STRING, help="The saved result's name in the controlnet folder.")],
    fingerprint=_fingerprint,
)
def train_controlnet(ctx: NodeContext, model: Any, clip: Any, vae: Any, control_net: Any, validation_images: Any,
                     **params: Any) -> dict[str, Any]:
    from nodes.training.control_run import run_training

    return run_training(ctx, "controlnet", model, clip, vae, control_net, validation_images, params)


_HEAD_T2I, _TAIL_T2I = _shared_params("my_t2i_adapter")


@node(
    "core.TrainT2IAdapter", name="Train T2I-Adapter", category="training",
    description=(
        "Trains a T2I-Adapter on (image, conditioning image, caption) examples with the base model frozen, as "
        "diffusers' T2I-Adapter training script does: pixel-unshuffled condition, convolution and residual "
        "blocks, one feature map added inside each UNet encoder level, timesteps drawn by cubic sampling. "
        "Shows validation samples as previews, saves checkpoints and, when cancelled, what was trained. The "
        "result goes into your t2i_adapter model folder and loads with Load T2I-Adapter."
    ),
    inputs=[*_base_inputs(),
            Input("t2i_adapter", T2I_ADAPTER, optional=True,
                  help="Optional: continue training this adapter instead of starting afresh."),
            Input("validation_images", IMAGE, optional=True,
                  help="Optional: condition images for the validation samples (one sample per image).")],
    params=[*_HEAD_T2I,
            Choice("adapter_type", ADAPTER_CHOICES[0], choices=ADAPTER_CHOICES,
                   help="auto: full_adapter for SD1.5, full_adapter_xl for SDXL; light_adapter is SD1.5's small one."),
            *_TAIL_T2I],
    outputs=[Output("t2i_adapter", T2I_ADAPTER, help="The trained adapter, read back from the saved result."),
             Output("name", STRING, help="The saved result's name in the t2i_adapter folder.")],
    fingerprint=_fingerprint,
)
def train_t2i_adapter(ctx: NodeContext, model: Any, clip: Any, vae: Any, t2i_adapter: Any, validation_images: Any,
                      **params: Any) -> dict[str, Any]:
    from nodes.training.control_run import run_training

    return run_training(ctx, "t2i_adapter", model, clip, vae, t2i_adapter, validation_images, params)
