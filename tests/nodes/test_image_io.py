"""Load Image, Save Image and Preview Image."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from nodegraph.context import RunSettings
from nodegraph.errors import NodeInputError, WorkflowError
from nodegraph.executor import Executor
from nodegraph.installed import default_registry
from nodegraph.model_folders import ModelFolders
from nodegraph.node import Input, Output, node
from nodegraph.params import Float, Int, ModelFile, String, Text
from nodegraph.png_meta import WORKFLOW_KEY, png_text_chunks
from nodegraph.runtime import Runtime
from nodegraph.types import CONDITIONING, IMAGE, MODEL
from nodegraph.workflow import load_workflow, parse_workflow
from nodes.image.io import A1111_KEY, PARAMS_KEY, PREVIEW_FOLDER, load_image, preview_image, save_image
from tests.input_policy import tmp_run_settings
from tests.nodes.image_fixtures import call, make_ctx


def _rgb_array(height: int = 12, width: int = 20) -> np.ndarray:
    rng = np.random.default_rng(7)
    return rng.integers(0, 256, size=(height, width, 3), dtype=np.uint8)


def _load(tmp_path: Path, path: Path | str) -> dict:
    return call(load_image, make_ctx(tmp_path), path=str(path))


@pytest.mark.parametrize("fmt", ["PNG", "WEBP"])
def test_lossless_formats_load_exactly(tmp_path: Path, fmt: str) -> None:
    pixels = _rgb_array()
    path = tmp_path / f"picture.{fmt.lower()}"
    Image.fromarray(pixels).save(path, format=fmt, **({"lossless": True} if fmt == "WEBP" else {}))
    out = _load(tmp_path, path)
    assert out["image"].shape == (1, 12, 20, 3) and out["image"].dtype == torch.float32
    assert torch.equal(out["image"][0], torch.from_numpy(pixels).float() / 255.0)
    assert (out["width"], out["height"]) == (20, 12)
    assert torch.equal(out["mask"], torch.zeros(1, 12, 20))


def test_jpeg_loads_as_pillow_decodes_it(tmp_path: Path) -> None:
    path = tmp_path / "photo.jpg"
    Image.fromarray(_rgb_array()).save(path, quality=90)
    decoded = np.array(Image.open(path).convert("RGB"))
    out = _load(tmp_path, path)
    assert torch.equal(out["image"][0], torch.from_numpy(decoded).float() / 255.0)


def test_16bit_greyscale_png_keeps_its_precision(tmp_path: Path) -> None:
    levels = (np.arange(12 * 20, dtype=np.uint16).reshape(12, 20) * 250).astype(np.uint16)
    path = tmp_path / "depth.png"
    Image.fromarray(levels).save(path)
    image = _load(tmp_path, path)["image"]
    assert torch.equal(image[0, ..., 1], torch.from_numpy(levels.astype(np.float32) / 65535.0))
    assert len(torch.unique(image)) == levels.size  # 8 bits could not hold 240 distinct levels this close


def test_alpha_becomes_mask_one_where_transparent(tmp_path: Path) -> None:
    rgba = np.zeros((8, 10, 4), dtype=np.uint8)
    rgba[..., 0] = 200
    rgba[..., 3] = 255
    rgba[2:5, 3:7, 3] = 0  # a transparent hole
    rgba[0, 0, 3] = 51  # mostly transparent pixel
    path = tmp_path / "cutout.png"
    Image.fromarray(rgba, "RGBA").save(path)
    out = _load(tmp_path, path)
    mask = out["mask"][0]
    assert out["mask"].shape == (1, 8, 10)
    assert torch.all(mask[2:5, 3:7] == 1.0)
    assert mask[1, 1] == 0.0
    assert mask[0, 0] == pytest.approx(1 - 51 / 255)
    assert torch.all(out["image"][0, ..., 0] == 200 / 255)


def test_exif_orientation_is_applied(tmp_path: Path) -> None:
    pixels = _rgb_array(6, 10)
    exif = Image.Exif()
    exif[0x0112] = 6  # "rotate 90 CW to display"
    path = tmp_path / "rotated.jpg"
    Image.fromarray(pixels).save(path, exif=exif, quality=95)
    out = _load(tmp_path, path)
    assert (out["width"], out["height"]) == (6, 10)


def test_missing_path_names_field_and_path(tmp_path: Path) -> None:
    missing = tmp_path / "nowhere" / "cat.png"
    with pytest.raises(NodeInputError) as info:
        _load(tmp_path, missing)
    assert info.value.field == "path" and str(missing) in str(info.value)


def test_missing_path_is_reported_before_the_run_naming_node_field_and_path(tmp_path: Path) -> None:
    doc = {"format": "nodegraph.workflow", "version": 1,
           "nodes": {"load": {"type": "core.LoadImage", "params": {"path": str(tmp_path / "gone.png")}}}}
    graph = parse_workflow(doc, default_registry())
    with pytest.raises(WorkflowError) as info:
        Executor(default_registry(), runtime=Runtime("cpu"), folders=ModelFolders([])).run(
            graph, ["load"], settings=tmp_run_settings())
    [problem] = info.value.problems
    assert (problem.node, problem.field, problem.code) == ("load", "path", "missing_file")
    assert "gone.png" in problem.message


def test_non_image_file_is_a_clear_error(tmp_path: Path) -> None:
    path = tmp_path / "notes.png"
    path.write_text("this is text, not pixels")
    with pytest.raises(NodeInputError) as info:
        _load(tmp_path, path)
    assert info.value.field == "path" and str(path) in str(info.value) and "not an image" in str(info.value)


def test_folder_path_is_a_clear_error(tmp_path: Path) -> None:
    with pytest.raises(NodeInputError, match="folder"):
        _load(tmp_path, tmp_path)


# ---- Save Image ----------------------------------------------------------------------------------------

@node("test.Checkpoint", params=[ModelFile("ckpt_name", "", folder="checkpoints")], outputs=[Output("model", MODEL)])
def _checkpoint(ctx, ckpt_name):  # stands in for the loader: only its parameters are read
    return None


@node("test.Encode", params=[Text("text", "")], outputs=[Output("conditioning", CONDITIONING)])
def _encode(ctx, text):
    return None


@node(
    "test.Sampler",
    inputs=[Input("model", MODEL), Input("positive", CONDITIONING), Input("negative", CONDITIONING)],
    params=[Int("seed", 0), Int("steps", 20), Float("cfg", 7.0), String("sampler_name", "euler_a")],
    outputs=[Output("image", IMAGE)],
)
def _sampler(ctx, model, positive, negative, seed, steps, cfg, sampler_name):
    return torch.full((1, 16, 24, 3), 0.25)


@pytest.fixture
def sampler_registry():
    registry = default_registry()
    for definition in (_checkpoint, _encode, _sampler):
        registry.register(definition, source="test-image-io", override=True)
    yield registry
    registry.unregister_source("test-image-io")


def _sampler_workflow(prefix: str = "shots/cat") -> dict:
    return {
        "format": "nodegraph.workflow", "version": 1,
        "nodes": {
            "ckpt": {"type": "test.Checkpoint", "params": {"ckpt_name": "sd15/dreamy-v2.safetensors"}},
            "pos": {"type": "test.Encode", "params": {"text": "a cat in a hat, (masterpiece:1.2)"}},
            "neg": {"type": "test.Encode", "params": {"text": "blurry"}},
            "seed": {"type": "core.Int", "params": {"value": 1234}},
            "sample": {"type": "test.Sampler", "params": {"steps": 12, "cfg": 6.5, "sampler_name": "dpmpp_2m"},
                       "inputs": {"model": ["ckpt", "model"], "positive": ["pos", "conditioning"],
                                  "negative": ["neg", "conditioning"], "seed": ["seed", "value"]}},
            "save": {"type": "core.SaveImage", "params": {"filename_prefix": prefix},
                     "inputs": {"images": ["sample", "image"]}},
        },
    }


def _run(registry, doc: dict, output: Path) -> dict:
    models = output / "models"
    (models / "checkpoints" / "sd15").mkdir(parents=True)
    (models / "checkpoints" / "sd15" / "dreamy-v2.safetensors").write_bytes(b"only its name is read")
    graph = parse_workflow(doc, registry)
    executor = Executor(registry, runtime=Runtime("cpu"), folders=ModelFolders([models]))
    result = executor.run(graph, settings=RunSettings(output_dir=output, workflow=doc))
    return result.outputs


def test_saved_png_reopens_as_its_workflow(tmp_path: Path, sampler_registry) -> None:
    doc = _sampler_workflow()
    outputs = _run(sampler_registry, doc, tmp_path / "out")
    [path] = outputs["save"]["paths"].splitlines()
    assert Path(path) == (tmp_path / "out" / "shots" / "cat_00001.png").resolve()
    reopened = load_workflow(path, sampler_registry)
    assert set(reopened.nodes) == set(doc["nodes"])
    assert reopened.nodes["sample"].params["sampler_name"] == "dpmpp_2m"
    assert np.all(np.asarray(Image.open(path)) == round(0.25 * 255))


def test_saved_png_carries_resolved_params_and_a1111_text(tmp_path: Path, sampler_registry) -> None:
    [path] = _run(sampler_registry, _sampler_workflow(), tmp_path)["save"]["paths"].splitlines()
    chunks = png_text_chunks(Path(path).read_bytes())
    params = json.loads(chunks[PARAMS_KEY])
    assert params["sample"] == {"seed": 1234, "steps": 12, "cfg": 6.5, "sampler_name": "dpmpp_2m"}
    assert params["save"] == {"filename_prefix": "shots/cat"}
    assert chunks[A1111_KEY] == (
        "a cat in a hat, (masterpiece:1.2)\n"
        "Negative prompt: blurry\n"
        "Steps: 12, Sampler: DPM++ 2M, CFG scale: 6.5, Seed: 1234, Size: 24x16, Model: dreamy-v2"
    )


def test_non_latin_prompt_survives_in_png(tmp_path: Path, sampler_registry) -> None:
    doc = _sampler_workflow()
    doc["nodes"]["pos"]["params"]["text"] = "東京の猫, café"
    [path] = _run(sampler_registry, doc, tmp_path)["save"]["paths"].splitlines()
    chunks = png_text_chunks(Path(path).read_bytes())
    assert chunks[A1111_KEY].startswith("東京の猫, café\n")
    assert json.loads(chunks[WORKFLOW_KEY])["nodes"]["pos"]["params"]["text"] == "東京の猫, café"


def test_two_saves_never_overwrite(tmp_path: Path) -> None:
    images = torch.rand(2, 8, 8, 3)
    ctx = make_ctx(tmp_path)
    first = call(save_image, ctx, images=images, filename_prefix="run")["paths"].splitlines()
    second = call(save_image, ctx, images=images, filename_prefix="run")["paths"].splitlines()
    names = [Path(p).name for p in first + second]
    assert names == ["run_00001.png", "run_00002.png", "run_00003.png", "run_00004.png"]
    assert sorted(p.name for p in tmp_path.iterdir()) == names  # and no temporary files left behind


def test_save_skips_numbers_taken_by_files_it_did_not_write(tmp_path: Path) -> None:
    (tmp_path / "run_00007.png").write_bytes(b"somebody else's")
    [path] = call(save_image, make_ctx(tmp_path), images=torch.rand(1, 4, 4, 3), filename_prefix="run")["paths"].splitlines()
    assert Path(path).name == "run_00008.png"
    assert (tmp_path / "run_00007.png").read_bytes() == b"somebody else's"


@pytest.mark.parametrize(
    ("prefix", "reason"),
    [("../escape", "'..'"), ("a/../../escape", "'..'"), ("/tmp/abs", "absolute"), ("C:\\x\\y", "absolute"),
     ("", "empty"), ("folder/", "no file name")],
)
def test_prefix_leaving_output_folder_is_refused(tmp_path: Path, prefix: str, reason: str) -> None:
    out = tmp_path / "out"
    with pytest.raises(NodeInputError) as info:
        call(save_image, make_ctx(out), images=torch.rand(1, 4, 4, 3), filename_prefix=prefix)
    assert info.value.field == "filename_prefix" and reason in str(info.value)
    assert not any(tmp_path.rglob("*.png"))


def test_prefix_through_symlink_out_of_output_is_refused(tmp_path: Path) -> None:
    out = tmp_path / "out"
    out.mkdir()
    (out / "link").symlink_to(tmp_path)
    with pytest.raises(NodeInputError, match="outside the output folder"):
        call(save_image, make_ctx(out), images=torch.rand(1, 4, 4, 3), filename_prefix="link/x")


def test_subfolders_inside_output_are_created(tmp_path: Path) -> None:
    [path] = call(save_image, make_ctx(tmp_path), images=torch.rand(1, 4, 4, 3), filename_prefix="a/b/c")["paths"].splitlines()
    assert Path(path) == (tmp_path / "a" / "b" / "c_00001.png").resolve()


def test_saved_pixels_round_like_diffusers(tmp_path: Path) -> None:
    images = torch.rand(1, 5, 7, 3)
    [path] = call(save_image, make_ctx(tmp_path), images=images, filename_prefix="q")["paths"].splitlines()
    expected = (images[0].numpy() * 255).round().astype("uint8")  # VaeImageProcessor.numpy_to_pil
    assert np.array_equal(np.asarray(Image.open(path)), expected)


def test_preview_returns_images_and_writes_only_to_temp(tmp_path: Path) -> None:
    images = torch.rand(2, 6, 6, 3)
    out = tmp_path / "out"
    result = call(preview_image, make_ctx(out, node_id="pre view"), images=images)
    assert result["images"] is images
    paths = [Path(p) for p in result["paths"].splitlines()]
    assert len(paths) == 2 and all(p.parent.name == PREVIEW_FOLDER and p.is_file() for p in paths)
    assert not out.exists()
    for p in paths:
        p.unlink()
