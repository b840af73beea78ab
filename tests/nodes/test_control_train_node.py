"""core.TrainControlNet / core.TrainT2IAdapter through the Executor on the tiny random SD1.5 model: the result
lands in the user's model folder (never over an existing one) and loads with the ordinary loader node,
validation samples come as previews and files, checkpoints are written, cancelling saves what was trained,
the node trains exactly what the trainer trains for the same seed, and bad inputs get clear errors."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch
from PIL import Image

from nodegraph.context import CancelToken, RunSettings
from nodegraph.errors import Cancelled, NodeExecutionError
from nodegraph.events import NodeLog, NodeProgress
from nodegraph.workflow import parse_workflow
from tests.nodes.sd_workflow_helpers import CHECKPOINT_NAMES, checkpoint, make_executor, n

SIZE = 64
TRAIN = {"steps": 2, "batch_size": 2, "resolution": SIZE, "learning_rate": 1e-2, "validation_every": 1,
         "validation_count": 2, "validation_steps": 2, "validation_cfg": 3.0}


@pytest.fixture(scope="module", autouse=True)
def one_thread():
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


def write_dataset(folder, count=4, jsonl=False):
    rng = np.random.default_rng(0)
    images = folder / ("photos" if jsonl else "images")
    conditions = folder / ("edges" if jsonl else "conditioning")
    images.mkdir(parents=True)
    conditions.mkdir()
    rows = []
    for i in range(count):
        Image.fromarray(rng.integers(0, 256, (SIZE, SIZE, 3), dtype=np.uint8)).save(images / f"{i:03d}.png")
        Image.fromarray((rng.random((SIZE, SIZE)) > 0.5).astype(np.uint8) * 255).save(conditions / f"{i:03d}.png")
        caption = f"a red circle number {i}"
        rows.append({"image": f"photos/{i:03d}.png", "conditioning_image": f"edges/{i:03d}.png", "text": caption})
        if not jsonl:
            (images / f"{i:03d}.txt").write_text(caption + "\n")
    if jsonl:
        (folder / "metadata.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows))
    return folder


@pytest.fixture(scope="module")
def setup(tmp_path_factory, one_thread):
    from tests.fixtures.tiny_sd import write_tiny_checkpoint

    root = tmp_path_factory.mktemp("models")
    (root / "checkpoints").mkdir()
    write_tiny_checkpoint(root / "checkpoints" / CHECKPOINT_NAMES["sd15"], "sd15")
    data = write_dataset(tmp_path_factory.mktemp("data") / "pairs")
    return root, make_executor(root), data, tmp_path_factory.mktemp("output")


def _run(executor, nodes, targets, output, events=None, cancel=None):
    graph = parse_workflow({"format": "nodegraph.workflow", "version": 1, "nodes": nodes}, executor.registry)
    return executor.run(graph, targets, settings=RunSettings(output_dir=output), on_event=events, cancel=cancel)


def _workflow(executor, node_type, dataset, **params):
    kind = "controlnet" if node_type == "core.TrainControlNet" else "t2i_adapter"
    loader, apply, field = (("core.ControlNetLoader", "core.ControlNetApply", "control_net_name") if kind == "controlnet"
                            else ("core.T2IAdapterLoader", "core.T2IAdapterApply", "t2i_adapter_name"))
    handle = "control_net" if kind == "controlnet" else "t2i_adapter"
    return {
        "ckpt": checkpoint(executor, "sd15"),
        "train": n(node_type, {**TRAIN, "dataset": str(dataset), **params}, model=("ckpt", "model"),
                   clip=("ckpt", "clip"), vae=("ckpt", "vae")),
        # the saved result by name, through the ordinary loader node: a parameter driven by the trainer's output
        "load": n(loader, {}, **{field: ("train", "name")}),
        "cond_image": n("core.DemoShapes", {"count": 1}),
        "pos": n("core.CLIPTextEncode", {"text": "a red circle"}, clip=("ckpt", "clip")),
        "neg": n("core.CLIPTextEncode", {"text": ""}, clip=("ckpt", "clip")),
        "apply": n(apply, {}, positive=("pos", "conditioning"), negative=("neg", "conditioning"),
                   image=("cond_image", "images"), **{handle: ("load", handle)}),
        "empty": n("core.EmptyLatentImage", {"width": SIZE, "height": SIZE, "batch_size": 1}),
        "sample": n("core.KSampler", {"seed": 1, "steps": 2, "cfg": 3.0, "scheduler": "euler"}, model=("ckpt", "model"),
                    positive=("apply", "positive"), negative=("apply", "negative"), latent_image=("empty", "latent")),
    }


def _states_equal(a, b) -> bool:
    a, b = a.state_dict(), b.state_dict()
    return list(a) == list(b) and all(torch.equal(a[k], b[k]) for k in a)


@pytest.mark.parametrize("node_type", ["core.TrainControlNet", "core.TrainT2IAdapter"])
def test_trained_result_is_saved_in_the_user_folder_and_loads_with_the_loader_node(setup, node_type):
    root, executor, data, output = setup
    events: list = []
    name = node_type.split(".")[1].lower()
    result = _run(executor, _workflow(executor, node_type, data, name=name, checkpoint_every=1), ["sample", "train", "load"],
                  output, events=events.append)
    kind = "controlnet" if node_type == "core.TrainControlNet" else "t2i_adapter"
    handle = "control_net" if kind == "controlnet" else "t2i_adapter"
    assert result.outputs["train"]["name"] == name
    assert (root / kind / name / "config.json").is_file()  # the user's folder, not the shipped models
    trained = result.outputs["train"][handle]
    loaded = result.outputs["load"][handle]
    assert _states_equal(trained.model if kind == "controlnet" else trained.adapter,
                         loaded.model if kind == "controlnet" else loaded.adapter)
    assert torch.isfinite(result.outputs["sample"]["latent"]["samples"]).all()
    previews = [e for e in events if isinstance(e, NodeProgress) and e.node == "train" and e.preview is not None]
    assert [e.step for e in previews] == [1, 2]
    assert isinstance(previews[0].preview, Image.Image) and previews[0].preview.size == (2 * SIZE, 2 * SIZE)
    assert len(list((output / f"{name}_training" / "validation").glob("step_*.png"))) == 4
    assert (output / f"{name}_training" / "checkpoint-000001" / "config.json").is_file()


def test_the_node_trains_what_the_trainer_trains_and_a_taken_name_gets_a_number(setup):
    """One code path: the node's result equals the trainer run directly on the same folder with the same seed."""
    from nodes.training.control_dataset import FolderDataset, list_dataset
    from nodes.training.control_run import build_control, fit
    from nodes.training.control_training import ControlSettings, ControlTrainer

    root, executor, data, output = setup
    nodes = _workflow(executor, "core.TrainControlNet", data, name="twice", seed=7, validation_count=0)
    first = _run(executor, nodes, ["train"], output).outputs["train"]
    first_files = {p.name: p.read_bytes() for p in (root / "controlnet" / "twice").iterdir()}
    executor.cache.clear()
    second = _run(executor, nodes, ["train"], output).outputs["train"]
    assert (first["name"], second["name"]) == ("twice", "twice_2")
    assert {p.name: p.read_bytes() for p in (root / "controlnet" / "twice").iterdir()} == first_files

    base = _run(executor, {"ckpt": checkpoint(executor, "sd15")}, ["ckpt"], output).outputs["ckpt"]
    model, clip, vae = base["model"], base["clip"], base["vae"]
    module = build_control("controlnet", model, vae, None, seed=7)
    settings = ControlSettings("controlnet", learning_rate=1e-2, steps=2, batch_size=2, resolution=SIZE, seed=7)
    direct = fit(ControlTrainer(model, clip, vae, module, FolderDataset(list_dataset(data)), settings))
    assert _states_equal(direct, first["control_net"].model)
    assert _states_equal(direct, second["control_net"].model)


def test_a_jsonl_index_dataset_trains_and_an_existing_controlnet_is_continued(setup, tmp_path):
    _, executor, _, output = setup
    data = write_dataset(tmp_path / "indexed", jsonl=True)
    logs: list = []
    nodes = _workflow(executor, "core.TrainControlNet", data, name="indexed", validation_count=0)
    first = _run(executor, nodes, ["train"], output, events=logs.append).outputs["train"]
    assert any(isinstance(e, NodeLog) and "4 examples (index layout)" in e.message for e in logs)
    nodes["more"] = n("core.TrainControlNet", {**TRAIN, "dataset": str(data), "name": "continued",
                                               "validation_count": 0},
                      model=("ckpt", "model"), clip=("ckpt", "clip"), vae=("ckpt", "vae"),
                      control_net=("train", "control_net"))
    more = _run(executor, nodes, ["more"], output).outputs["more"]
    assert not _states_equal(first["control_net"].model, more["control_net"].model)
    # continued from the first result, not from the UNet: its zero convolutions are no longer zero
    assert more["control_net"].model.controlnet_mid_block.weight.abs().max() > 0


def test_cancelling_saves_what_was_trained_so_far(setup):
    root, executor, data, output = setup
    token = CancelToken()
    warnings: list = []

    def on_event(event):
        if isinstance(event, NodeProgress) and event.node == "train" and event.step == 2 and event.preview is None:
            token.cancel()
        if isinstance(event, NodeLog) and event.level == "warning":
            warnings.append(event.message)

    nodes = _workflow(executor, "core.TrainT2IAdapter", data, name="cancelled", steps=50, validation_count=0)
    with pytest.raises(Cancelled):
        _run(executor, nodes, ["train"], output, events=on_event, cancel=token)
    assert (root / "t2i_adapter" / "cancelled" / "config.json").is_file()
    assert any("cancelled after 2 of 50 steps" in w for w in warnings)


def _failure(executor, output, node_type, dataset, **params) -> str:
    with pytest.raises(NodeExecutionError) as info:
        _run(executor, _workflow(executor, node_type, dataset, **params), ["train"], output)
    assert info.value.node_id == "train"
    return info.value.message


def test_bad_inputs_are_reported_before_training(setup, tmp_path):
    _, executor, data, output = setup
    message = _failure(executor, output, "core.TrainControlNet", tmp_path / "nowhere")
    assert "dataset" in message and "does not exist" in message
    (tmp_path / "flat").mkdir()
    message = _failure(executor, output, "core.TrainControlNet", tmp_path / "flat")
    assert "conditioning" in message and "metadata.jsonl" in message
    message = _failure(executor, output, "core.TrainControlNet", data, precision="fp16")
    assert "fp16 training needs a CUDA GPU" in message
    message = _failure(executor, output, "core.TrainControlNet", data, embedding_channels="16,32")
    assert "4 widths" in message
    message = _failure(executor, output, "core.TrainT2IAdapter", data, adapter_type="full_adapter_xl")
    assert "SDXL" in message
    message = _failure(executor, output, "core.TrainControlNet", data, name="../escape")
    assert "plain file name" in message
    message = _failure(executor, output, "core.TrainControlNet", data, resolution=72)
    assert "multiple of" in message


def test_demo_shapes_through_canny_make_a_dataset_the_trainer_reads(setup):
    _, executor, _, output = setup
    nodes = {
        "shapes": n("core.DemoShapes", {"count": 3, "seed": 2}),
        "edges": n("core.CannyEdges", {}, images=("shapes", "images")),
        "save": n("core.SaveControlDataset", {"folder": "edges_dataset"}, images=("shapes", "images"),
                  conditions=("edges", "images"), captions=("shapes", "captions")),
    }
    folder = _run(executor, nodes, ["save"], output).outputs["save"]["dataset"]
    from nodes.training.control_dataset import list_dataset

    listing = list_dataset(folder)
    captions = _run(executor, nodes, ["shapes"], output).outputs["shapes"]["captions"].splitlines()
    assert [e.caption for e in listing.examples] == captions
    edges = np.asarray(Image.open(listing.examples[0].condition))
    assert set(np.unique(edges)) <= {0, 255} and edges.max() == 255
    executor.cache.clear()
    again = _run(executor, nodes, ["save"], output).outputs["save"]["dataset"]
    assert again.endswith("edges_dataset_2")  # never written into an existing folder
