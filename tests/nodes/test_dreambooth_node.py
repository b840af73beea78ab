"""core.TrainLoraDreamBooth through the Executor on the tiny random SD1.5 model: caching, the saved file read
by the LoRA loader (and by diffusers), outputs usable downstream, inputs left unchanged, cancellation keeping
the LoRA so far, and clear reports for bad inputs."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch
from PIL import Image

from nodegraph.context import CancelToken
from nodegraph.errors import Cancelled, NodeExecutionError
from nodegraph.events import NodeLog, NodeProgress
from nodegraph.workflow import parse_workflow
from nodes.training.image_folder import GENERATED
from tests.input_policy import tmp_run_settings
from tests.nodes.sd_workflow_helpers import CHECKPOINT_NAMES, checkpoint, make_executor, n

SIZE = 64  # pixels; the tiny VAE makes 8x8 latents
TRAIN = {
    "instance_prompt": "a photo of sks dog", "class_prompt": "a photo of a dog", "num_class_images": 2,
    "class_steps": 2, "steps": 4, "resolution": SIZE, "rank": 2, "alpha": 6.0, "learning_rate": 0.05,
    "lora_name": "test_dreambooth",
}


def _write_subject(folder, count=3, sizes=None):
    folder.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(0)
    for i in range(count):
        width, height = sizes[i] if sizes else (SIZE, SIZE)
        pixels = np.zeros((height, width, 3), dtype=np.uint8)
        pixels[:] = (40, 80, 220)
        y, x = np.mgrid[:height, :width]
        ring = np.abs(np.hypot(y - height / 2, x - width / 2) - min(width, height) * 0.3) < min(width, height) * 0.1
        pixels[ring] = (220, 40, 40)
        pixels = np.clip(pixels.astype(int) + rng.integers(-5, 6, pixels.shape), 0, 255).astype(np.uint8)
        Image.fromarray(pixels).save(folder / f"subject_{i}.png")
    return folder


@pytest.fixture(scope="module", autouse=True)
def one_thread():
    # these tiny models are dominated by thread hand-offs: on a shared 2-core machine one thread is 10x faster
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


@pytest.fixture(scope="module")
def setup(tmp_path_factory, one_thread):
    from tests.fixtures.tiny_sd import write_tiny_checkpoint

    root = tmp_path_factory.mktemp("models")
    (root / "checkpoints").mkdir()
    (root / "loras").mkdir()
    write_tiny_checkpoint(root / "checkpoints" / CHECKPOINT_NAMES["sd15"], "sd15")
    subject = _write_subject(tmp_path_factory.mktemp("subject"))
    output = tmp_path_factory.mktemp("output")
    return root, make_executor(root), subject, output


def _run(executor, nodes, targets, output, events=None, cancel=None):
    graph = parse_workflow({"format": "nodegraph.workflow", "version": 1, "nodes": nodes}, executor.registry)
    return executor.run(graph, targets, settings=tmp_run_settings(output_dir=output), on_event=events, cancel=cancel)


def _workflow(executor, subject, sampler_seed=1, **train_params):
    params = {**TRAIN, "instance_images": str(subject), **train_params}
    nodes = {
        "ckpt": checkpoint(executor, "sd15"),
        "train": n("core.TrainLoraDreamBooth", params, model=("ckpt", "model"), clip=("ckpt", "clip"),
                   vae=("ckpt", "vae")),
        # the saved file by name, through the ordinary loader: a parameter driven by the trainer's output
        "load": n("core.LoraLoader", {}, model=("ckpt", "model"), clip=("ckpt", "clip"),
                  lora_name=("train", "lora_name")),
        "empty": n("core.EmptyLatentImage", {"width": SIZE, "height": SIZE, "batch_size": 1}),
    }
    for name, source in (("trained", "train"), ("loaded", "load"), ("base", "ckpt")):
        nodes[f"pos_{name}"] = n("core.CLIPTextEncode", {"text": "a photo of sks dog"}, clip=(source, "clip"))
        nodes[f"neg_{name}"] = n("core.CLIPTextEncode", {"text": ""}, clip=(source, "clip"))
        nodes[f"sample_{name}"] = n(
            "core.KSampler", {"seed": sampler_seed, "steps": 2, "cfg": 5.0, "scheduler": "euler"},
            model=(source, "model"), positive=(f"pos_{name}", "conditioning"),
            negative=(f"neg_{name}", "conditioning"), latent_image=("empty", "latent"),
        )
    return nodes


def _snapshot(module):
    return {k: v.detach().clone() for k, v in module.state_dict().items()}


def _assert_unchanged(module, snapshot):
    from peft.tuners.tuners_utils import BaseTunerLayer

    state = module.state_dict()
    assert list(state) == list(snapshot)
    assert all(torch.equal(state[k], snapshot[k]) for k in snapshot)
    assert not any(isinstance(m, BaseTunerLayer) for m in module.modules())
    assert not hasattr(module, "peft_config")
    assert not any(p.requires_grad for p in module.parameters())


@pytest.fixture(scope="module")
def trained(setup):
    """The workflow run once with sampler seed 1, then again with seed 2 (what the caching test reads)."""
    _, executor, subject, output = setup
    base = _run(executor, {"ckpt": checkpoint(executor, "sd15")}, ["ckpt"], output).outputs["ckpt"]
    snapshots = {"unet": _snapshot(base["model"].unet), "text": _snapshot(base["clip"].encoders[0])}
    targets = ["sample_trained", "sample_loaded", "sample_base", "train"]
    logs: list = []
    first = _run(executor, _workflow(executor, subject, 1), targets, output,
                 events=lambda e: logs.append(e) if isinstance(e, (NodeLog, NodeProgress)) else None)
    second = _run(executor, _workflow(executor, subject, 2), targets, output)
    return base, snapshots, first, second, logs


def test_changing_only_the_sampler_seed_does_not_train_again(trained):
    _, _, first, second, _ = trained
    assert first.executed.count("train") == 1
    assert "train" not in second.executed and "train" in second.cached
    assert {"sample_trained", "sample_loaded"} <= set(second.executed)  # the samplers did run again


def test_every_training_step_reports_its_loss_as_progress(trained):
    *_, events = trained
    steps = [e for e in events if isinstance(e, NodeProgress) and e.node == "train" and e.message.startswith("loss")]
    assert [(e.step, e.total) for e in steps] == [(i, TRAIN["steps"]) for i in range(1, TRAIN["steps"] + 1)]
    assert all("prior" in e.message for e in steps)  # with prior preservation both halves are reported
    losses = [float(e.message.split()[1]) for e in steps]
    assert all(np.isfinite(losses)) and min(losses) > 0


def test_missing_class_images_are_generated_into_the_output_folder_and_reused(setup, trained):
    _, _, subject, output = setup
    *_, logs = trained
    folder = output / "dreambooth_class" / "a_photo_of_a_dog"
    generated = sorted(p.name for p in folder.iterdir() if GENERATED.match(p.name))
    assert len(generated) == TRAIN["num_class_images"]
    assert any(isinstance(e, NodeLog) and "generating 2 class image(s)" in e.message for e in logs)
    # a fresh executor (nothing cached) finds them and generates nothing
    fresh = make_executor(setup[0])
    again: list[NodeLog] = []
    _run(fresh, _workflow(fresh, subject), ["train"], output,
         events=lambda e: again.append(e) if isinstance(e, NodeLog) else None)
    assert not any("generating" in e.message for e in again)


def test_trained_outputs_equal_the_saved_file_through_the_lora_loader_and_change_the_image(trained):
    _, _, first, _, _ = trained
    latent = {name: first.outputs[f"sample_{name}"]["latent"]["samples"] for name in ("trained", "loaded", "base")}
    assert torch.equal(latent["trained"], latent["loaded"])
    assert (latent["trained"] - latent["base"]).abs().max() > 1e-3


def test_inputs_are_unchanged_after_training(trained):
    base, snapshots, first, _, _ = trained
    _assert_unchanged(base["model"].unet, snapshots["unet"])
    _assert_unchanged(base["clip"].encoders[0], snapshots["text"])
    outputs = first.outputs["train"]
    assert base["model"].patches == () and len(outputs["model"].patches) == 1
    assert outputs["model"].unet is base["model"].unet  # shared weights, one more patch


def test_saved_file_keeps_alpha_and_reads_the_same_in_diffusers(setup, trained):
    from diffusers import StableDiffusionPipeline
    from safetensors import safe_open

    from nodes.adapters.lora import read_lora
    from nodes.sd.text_encode import patches_applied

    root, _, _, _ = setup
    base, _, first, _, _ = trained
    path = root / "loras" / "test_dreambooth.safetensors"
    assert first.outputs["train"]["lora_name"] == path.name
    lora = read_lora(path)
    weights = list(lora.components["unet"].values())
    assert weights and all(w.rank == 2 and w.alpha == 6.0 for w in weights)
    assert "text_encoder" not in lora.components  # the text encoder was not trained
    with safe_open(str(path), framework="pt") as f:
        info = json.loads(f.metadata()["nodegraph.training"])
    assert info["steps_done"] == TRAIN["steps"] and info["class_prompt"] == "a photo of a dog"

    unet = base["model"].unet
    x = torch.randn(1, 4, 8, 8, generator=torch.Generator().manual_seed(0))
    text = torch.randn(1, 77, unet.config.cross_attention_dim, generator=torch.Generator().manual_seed(1))
    with torch.no_grad(), patches_applied(unet, first.outputs["train"]["model"].patches):
        ours = unet(x, 500, encoder_hidden_states=text).sample
    clip = base["clip"]
    pipe = StableDiffusionPipeline(vae=base["vae"].vae, text_encoder=clip.encoders[0], tokenizer=clip.tokenizers[0],
                                   unet=unet, scheduler=None, safety_checker=None, feature_extractor=None,
                                   requires_safety_checker=False)
    try:
        pipe.load_lora_weights(str(path), adapter_name="trained")
        with torch.no_grad():
            theirs = unet(x, 500, encoder_hidden_states=text).sample
    finally:
        pipe.unload_lora_weights()
    torch.testing.assert_close(ours, theirs, rtol=1e-5, atol=1e-6)


def test_cancelling_keeps_the_lora_trained_so_far(setup):
    from safetensors import safe_open

    root, executor, subject, output = setup
    token = CancelToken()

    def on_event(event):
        if isinstance(event, NodeProgress) and event.node == "train" and event.message.startswith("loss") and event.step == 2:
            token.cancel()

    nodes = _workflow(executor, subject, lora_name="cancelled", steps=50, class_prompt="")
    base = _run(executor, {"ckpt": checkpoint(executor, "sd15")}, ["ckpt"], output).outputs["ckpt"]
    snapshot = _snapshot(base["model"].unet)
    with pytest.raises(Cancelled):
        _run(executor, nodes, ["train"], output, events=on_event, cancel=token)
    with safe_open(str(root / "loras" / "cancelled.safetensors"), framework="pt") as f:
        assert json.loads(f.metadata()["nodegraph.training"])["steps_done"] == 2
    _assert_unchanged(base["model"].unet, snapshot)


def _failure(executor, subject, output, **params) -> str:
    nodes = _workflow(executor, subject, **params)
    with pytest.raises(NodeExecutionError) as info:
        _run(executor, nodes, ["train"], output)
    assert info.value.node_id == "train"
    return info.value.message


def test_bad_folders_are_reported_naming_the_problem(setup, tmp_path):
    _, executor, _, output = setup
    empty = tmp_path / "empty"
    empty.mkdir()
    assert "holds no image files" in _failure(executor, empty, output)
    assert "does not exist" in _failure(executor, tmp_path / "absent", output)
    broken = tmp_path / "broken"
    broken.mkdir()
    (broken / "a.png").write_bytes(b"not a png")
    (broken / "b.jpg").write_bytes(b"")
    message = _failure(executor, broken, output)
    assert "none of the 2 image file(s)" in message and "could be read" in message


def test_bad_parameters_are_reported_before_training(setup):
    _, executor, subject, output = setup
    assert "multiple of 16" in _failure(executor, subject, output, resolution=40)
    assert "target modules" in _failure(executor, subject, output, target_modules="no_such_layer")
    assert "plain file name" in _failure(executor, subject, output, lora_name="../escape")
    assert "'..'" in _failure(executor, subject, output, class_images="../outside")


def test_mixed_sizes_are_resized_with_a_note_and_a_prompt_without_identifier_is_warned(setup, tmp_path):
    root, executor, _, output = setup
    subject = _write_subject(tmp_path / "mixed", sizes=[(64, 64), (90, 40), (32, 48)])
    logs: list[NodeLog] = []
    nodes = _workflow(executor, subject, instance_prompt="a photo of a dog", class_prompt="", steps=1,
                      lora_name="mixed", train_text_encoder=True)
    result = _run(executor, nodes, ["train"], output,
                  events=lambda e: logs.append(e) if isinstance(e, NodeLog) else None)
    assert len(result.outputs["train"]["clip"].patches) == 1  # the text encoder trained too
    notes = [e.message for e in logs if e.node == "train"]
    assert any("resized to 64x64" in m and "subject_1.png (90x40)" in m and "subject_2.png (32x48)" in m
               for m in notes)
    assert any(e.level == "warning" and "identifier 'sks'" in e.message for e in logs)
    assert (root / "loras" / "mixed.safetensors").is_file()


def test_demo_workflow_validates_and_runs_on_a_tiny_model(setup, tmp_path):
    from pathlib import Path

    from nodegraph.installed import default_registry
    from nodegraph.validation import validate

    root, executor, subject, _ = setup
    doc = json.loads((Path(__file__).resolve().parents[2] / "workflows" / "demo_dreambooth.json").read_text())
    assert validate(parse_workflow(doc, default_registry()), default_registry()) == []
    nodes = doc["nodes"]
    assert nodes["checkpoint"]["params"]["ckpt_name"] == "demo_shapes.safetensors"
    # point it at the tiny model and shrink it; the graph is the shipped one
    nodes["checkpoint"]["params"]["ckpt_name"] = CHECKPOINT_NAMES["sd15"]
    nodes["train"]["params"].update(instance_images=str(subject), steps=2, num_class_images=1, class_steps=2,
                                    lora_name="workflow_test")
    for node in nodes.values():
        if node["type"] == "core.KSampler":
            node["params"]["steps"] = 2
    result = executor.run(parse_workflow(doc, executor.registry), settings=tmp_run_settings(output_dir=tmp_path))
    assert {"train", "save_trained", "save_base"} <= set(result.executed)
    assert (root / "loras" / "workflow_test.safetensors").is_file()
    assert len(list(tmp_path.glob("demo_dreambooth_trained*.png"))) == 4
