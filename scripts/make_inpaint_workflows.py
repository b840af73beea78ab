"""Writes the inpainting, outpainting and hires-fix workflows (workflows/demo_inpaint.json, demo_outpaint.json,
demo_hires_fix.json, demo_hires_fix_upscaler.json, sd15_inpaint.json, sd15_hires_fix.json,
sd15_hires_fix_upscaler.json) and the demo inpainting mask (examples/images/demo_yellow_square_mask.png).

    python scripts/make_inpaint_workflows.py

Built through the engine's Graph API like scripts/make_demo_workflows.py, so every link is type-checked.
"""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
from PIL import Image

sys.path.insert(0, str(Path(__file__).resolve().parent))

from make_demo_workflows import ROOT, SAMPLING, Builder

from nodegraph.workflow import save_workflow

IMAGES = ROOT / "examples" / "images"
SD15 = "v1-5-pruned-emaonly.safetensors"
SD15_INPAINTING = "sd-v1-5-inpainting.safetensors"
UPSCALER = "RealESRGAN_x4plus.pth"
SD15_NEGATIVE = "blurry, low quality, deformed, watermark, text"


def demo_mask() -> str:
    """A mask over the yellow square of demo_yellow_square.png (centre 30, 34; side 34), with a margin: what
    the mask editor saves, a greyscale PNG whose white marks what to repaint."""
    mask = np.zeros((64, 64), np.uint8)
    mask[8:56, 6:54] = 255
    path = IMAGES / "demo_yellow_square_mask.png"
    Image.fromarray(mask, "L").save(path)
    return str(path.relative_to(ROOT / "examples"))


def sampler_inputs(latent: tuple[str, str], positive=("positive", "conditioning"), negative=("negative", "conditioning"),
                   model: str = "checkpoint") -> dict:
    return {"model": (model, "model"), "positive": positive, "negative": negative, "latent_image": latent}


def save(b: Builder, name: str) -> None:
    save_workflow(b.graph, ROOT / "workflows" / f"{name}.json")


def demo_inpaint(mask_path: str) -> None:
    b = Builder("Inpainting: repaint the square as a red circle; everything outside the mask stays exactly as it was")
    b.base("a red circle on a purple background", latent=False)
    b.add("image", "core.LoadImage", 0, 2, path="images/demo_yellow_square.png", mask_path=mask_path)
    b.add("encode", "core.VAEEncode", 1, 2, {"pixels": ("image", "image"), "vae": ("checkpoint", "vae")})
    b.add("latent", "core.SetLatentNoiseMask", 2, 2, {"samples": ("encode", "latent"), "mask": ("image", "mask")})
    # CFG 5: measured best for inpainting the demo model (benchmarks/inpaint_quality.py on a selection set of cases)
    b.add("sampler", "core.KSampler", 3, 1, sampler_inputs(("latent", "latent")), **{**SAMPLING, "cfg": 5.0}, denoise=1.0)
    b.add("decode", "core.VAEDecode", 4, 1, {"samples": ("sampler", "latent"), "vae": ("checkpoint", "vae")})
    b.add("paste", "core.ImageCompositeMasked", 5, 1,
          {"destination": ("image", "image"), "source": ("decode", "image"), "mask": ("image", "mask")})
    b.add("save", "core.SaveImage", 6, 1, {"images": ("paste", "image")}, filename_prefix="demo_inpaint")
    save(b, "demo_inpaint")


def demo_outpaint() -> None:
    b = Builder("Outpainting: extend the picture 32 pixels to the right; the new strip is painted to match")
    b.base("a yellow square on a purple background", latent=False)
    b.add("image", "core.LoadImage", 0, 2, path="images/demo_yellow_square.png")
    b.add("pad", "core.ImagePadForOutpaint", 1, 2, {"image": ("image", "image")}, left=0, top=0, right=32, bottom=0,
          feathering=8, fill="edge")
    b.add("encode", "core.VAEEncode", 2, 2, {"pixels": ("pad", "image"), "vae": ("checkpoint", "vae")})
    b.add("latent", "core.SetLatentNoiseMask", 3, 2, {"samples": ("encode", "latent"), "mask": ("pad", "mask")})
    b.add("sampler", "core.KSampler", 4, 1, sampler_inputs(("latent", "latent")), **SAMPLING, denoise=1.0)
    b.add("decode", "core.VAEDecode", 5, 1, {"samples": ("sampler", "latent"), "vae": ("checkpoint", "vae")})
    b.add("paste", "core.ImageCompositeMasked", 6, 1,
          {"destination": ("pad", "image"), "source": ("decode", "image"), "mask": ("pad", "mask")})
    b.add("save", "core.SaveImage", 7, 1, {"images": ("paste", "image")}, filename_prefix="demo_outpaint")
    save(b, "demo_outpaint")


def hires_latent(name: str, title: str, checkpoint: str, prompt: str, negative: str, size: int, sampling: dict,
                 denoise: float) -> None:
    """Generate small, upscale the latent 2x, sample again with part of the noise (hires fix)."""
    b = Builder(title)
    b.add("checkpoint", "core.CheckpointLoader", 0, 1, ckpt_name=checkpoint)
    b.add("positive", "core.CLIPTextEncode", 1, 0, {"clip": ("checkpoint", "clip")}, text=prompt)
    b.add("negative", "core.CLIPTextEncode", 1, 1, {"clip": ("checkpoint", "clip")}, text=negative)
    b.add("latent", "core.EmptyLatentImage", 1, 2, width=size, height=size, batch_size=1)
    b.add("sampler", "core.KSampler", 2, 1, sampler_inputs(("latent", "latent")), **sampling)
    b.add("upscale", "core.LatentUpscale", 3, 2, {"samples": ("sampler", "latent")}, method="bicubic", width=0,
          height=0, scale_by=2.0, crop="disabled")
    b.add("refine", "core.KSampler", 4, 1, sampler_inputs(("upscale", "latent")), **{**sampling, "denoise": denoise})
    b.add("decode", "core.VAEDecode", 5, 1, {"samples": ("refine", "latent"), "vae": ("checkpoint", "vae")})
    b.add("save", "core.SaveImage", 6, 1, {"images": ("decode", "image")}, filename_prefix=name)
    save(b, name)


def hires_upscaler(name: str, title: str, checkpoint: str, upscaler: str, prompt: str, negative: str, size: int,
                   scale: float, sampling: dict, denoise: float) -> None:
    """Generate small, enlarge the picture with an upscale model, then image-to-image at the new size."""
    b = Builder(title)
    b.add("checkpoint", "core.CheckpointLoader", 0, 1, ckpt_name=checkpoint)
    b.add("positive", "core.CLIPTextEncode", 1, 0, {"clip": ("checkpoint", "clip")}, text=prompt)
    b.add("negative", "core.CLIPTextEncode", 1, 1, {"clip": ("checkpoint", "clip")}, text=negative)
    b.add("latent", "core.EmptyLatentImage", 1, 2, width=size, height=size, batch_size=1)
    b.add("sampler", "core.KSampler", 2, 1, sampler_inputs(("latent", "latent")), **sampling)
    b.add("decode_small", "core.VAEDecode", 3, 1, {"samples": ("sampler", "latent"), "vae": ("checkpoint", "vae")})
    b.add("upscaler", "core.UpscaleModelLoader", 3, 3, model_name=upscaler)
    b.add("enlarge", "core.ImageUpscaleWithModel", 4, 2, {"upscale_model": ("upscaler", "upscale_model"),
          "image": ("decode_small", "image")}, tile_size=512, overlap=32)
    last = "enlarge"
    if scale != 0:  # an x4 model enlarged more than wanted: scale to the target size
        b.add("resize", "core.ImageScale", 5, 2, {"images": ("enlarge", "image")}, method="area",
              width=int(size * scale), height=int(size * scale), crop="disabled")
        last = "resize"
    b.add("encode", "core.VAEEncode", 6, 2, {"pixels": (last, "images" if last == "resize" else "image"),
                                            "vae": ("checkpoint", "vae")})
    b.add("refine", "core.KSampler", 7, 1, sampler_inputs(("encode", "latent")), **{**sampling, "denoise": denoise})
    b.add("decode", "core.VAEDecode", 8, 1, {"samples": ("refine", "latent"), "vae": ("checkpoint", "vae")})
    b.add("save", "core.SaveImage", 9, 1, {"images": ("decode", "image")}, filename_prefix=name)
    save(b, name)


def sd15_inpaint() -> None:
    b = Builder("SD1.5 inpainting checkpoint: repaint the masked part of input.png (its alpha, or a mask file)")
    b.add("checkpoint", "core.CheckpointLoader", 0, 1, ckpt_name=SD15_INPAINTING)
    b.add("positive", "core.CLIPTextEncode", 1, 0, {"clip": ("checkpoint", "clip")}, text="a vase of sunflowers")
    b.add("negative", "core.CLIPTextEncode", 1, 1, {"clip": ("checkpoint", "clip")}, text=SD15_NEGATIVE)
    b.add("image", "core.LoadImage", 0, 2, path="input.png")
    b.add("inpaint", "core.InpaintModelConditioning", 2, 1, {"positive": ("positive", "conditioning"),
          "negative": ("negative", "conditioning"), "vae": ("checkpoint", "vae"), "pixels": ("image", "image"),
          "mask": ("image", "mask")}, noise_mask=True)
    b.add("sampler", "core.KSampler", 3, 1, sampler_inputs(("inpaint", "latent"), ("inpaint", "positive"),
          ("inpaint", "negative")), seed=42, steps=30, cfg=7.0, scheduler="euler_ancestral", denoise=1.0)
    b.add("decode", "core.VAEDecode", 4, 1, {"samples": ("sampler", "latent"), "vae": ("checkpoint", "vae")})
    b.add("paste", "core.ImageCompositeMasked", 5, 1,
          {"destination": ("image", "image"), "source": ("decode", "image"), "mask": ("image", "mask")})
    b.add("save", "core.SaveImage", 6, 1, {"images": ("paste", "image")}, filename_prefix="sd15_inpaint")
    save(b, "sd15_inpaint")


def main() -> None:
    demo_inpaint(demo_mask())
    demo_outpaint()
    hires_latent("demo_hires_fix", "Hires fix: 64 px, latent upscaled 2x, refined at 128 px", "demo_shapes.safetensors",
                 "a red circle on a blue background", "", 64, SAMPLING, 0.3)
    hires_upscaler("demo_hires_fix_upscaler", "Hires fix with an upscale model: 64 px, enlarged 2x by the demo "
                   "upscaler, refined at 128 px", "demo_shapes.safetensors", "demo_shapes_x2.safetensors",
                   "a red circle on a blue background", "", 64, 0, SAMPLING, 0.3)
    sd15 = {"seed": 42, "steps": 30, "cfg": 7.0, "scheduler": "euler_ancestral"}
    prompt = "a lighthouse on a cliff at sunset, detailed, golden light"
    hires_latent("sd15_hires_fix", "SD1.5 hires fix: 512 px, latent upscaled 2x, refined at 1024 px", SD15, prompt,
                 SD15_NEGATIVE, 512, sd15, 0.55)
    hires_upscaler("sd15_hires_fix_upscaler", "SD1.5 hires fix with Real-ESRGAN: 512 px, enlarged x4 and scaled to "
                   "1024 px, refined by image-to-image", SD15, UPSCALER, prompt, SD15_NEGATIVE, 512, 2.0, sd15, 0.4)
    sd15_inpaint()


if __name__ == "__main__":
    main()
