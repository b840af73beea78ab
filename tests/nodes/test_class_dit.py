"""The class-conditional DiT through the product's nodes equals diffusers' DiTPipeline on a tiny random model (a
folder laid out as the hub's DiT folders: Transformer2DModel with adaLN-Zero, 1000 classes, learned sigma, id2label
in model_index.json). The reference is DiTPipeline.from_pretrained on the same folder."""

from __future__ import annotations

import pytest
import torch

from nodegraph.errors import NodeExecutionError
from tests.fixtures.tiny_flow import write_dit
from tests.nodes.dit_helpers import assert_same_image, make_executor, n, one_thread, run  # noqa: F401

diffusers = pytest.importorskip("diffusers")


@pytest.fixture(scope="module")
def models(tmp_path_factory):
    root = tmp_path_factory.mktemp("models")
    write_dit(root / "checkpoints" / "tiny-dit")
    return root


@pytest.fixture(scope="module")
def executor(models):
    return make_executor(models)


def workflow(positive: dict, *, steps: int, cfg: float, seed: int, batch: int = 1, scheduler: str = "ddim") -> dict:
    return {
        "load": n("core.DiffusersModelLoader", {"model_name": "tiny-dit"}),
        "pos": positive,
        "neg": n("core.NullClassLabel"),
        "empty": n("core.EmptyLatentForModel", {"width": 64, "height": 64, "batch_size": batch}, model=("load", "model")),
        "sampler": n("core.KSampler", {"seed": seed, "steps": steps, "cfg": cfg, "scheduler": scheduler},
                     model=("load", "model"), positive=("pos", "conditioning"), negative=("neg", "conditioning"),
                     latent_image=("empty", "latent")),
        "decode": n("core.VAEDecode", samples=("sampler", "latent"), vae=("load", "vae")),
    }


def reference(models, scheduler_cls=None):
    pipe = diffusers.DiTPipeline.from_pretrained(models / "checkpoints" / "tiny-dit", local_files_only=True)
    if scheduler_cls is not None:
        pipe.scheduler = scheduler_cls.from_config(pipe.scheduler.config)
    return pipe


def test_class_label_with_null_class_cfg_equals_dit_pipeline(models, executor):
    nodes = workflow(n("core.ClassLabel", {"class_id": 207}), steps=4, cfg=4.0, seed=3, scheduler="dpmpp_2m")
    result = run(executor, nodes, ["decode"])
    pipe = reference(models, diffusers.DPMSolverMultistepScheduler)
    expected = pipe(class_labels=[207], guidance_scale=4.0, num_inference_steps=4,
                    generator=torch.Generator("cpu").manual_seed(3), output_type="np").images
    assert_same_image(result.outputs["decode"]["image"], expected)


def test_imagenet_class_names_become_the_pipelines_label_ids(models, executor):
    nodes = workflow(n("core.ImageNetClassLabel", {"class_names": "Golden retriever, tiger shark"}, model=("load", "model")),
                     steps=3, cfg=1.5, seed=8, batch=2)
    result = run(executor, nodes, ["decode", "pos"])
    pipe = reference(models)
    ids = pipe.get_label_ids(["golden retriever", "tiger shark"])
    assert result.outputs["pos"]["class_id"] == ids[0] == 207
    expected = pipe(class_labels=ids, guidance_scale=1.5, num_inference_steps=3,
                    generator=torch.Generator("cpu").manual_seed(8), output_type="np").images
    assert_same_image(result.outputs["decode"]["image"], expected)


def test_unknown_class_name_suggests_close_ones(executor):
    nodes = workflow(n("core.ImageNetClassLabel", {"class_names": "golden retreiver"}, model=("load", "model")),
                     steps=1, cfg=1.0, seed=0)
    with pytest.raises(NodeExecutionError) as info:
        run(executor, nodes, ["pos"])
    assert "did you mean 'golden retriever'" in info.value.message


def test_class_outside_the_model_and_text_conditioning_are_refused_by_the_sampler(executor):
    nodes = workflow(n("core.ClassLabel", {"class_id": 1000}), steps=1, cfg=1.0, seed=0)
    with pytest.raises(NodeExecutionError) as info:
        run(executor, nodes, ["sampler"])
    assert info.value.node_id == "sampler" and "class 1000 does not exist" in info.value.message


def test_class_labels_do_not_fit_a_text_model():
    from nodegraph.model_folders import BUILTIN_ROOT

    nodes = workflow(n("core.ClassLabel", {"class_id": 1}), steps=1, cfg=1.0, seed=0)
    nodes["load"] = n("core.CheckpointLoader", {"ckpt_name": "demo_shapes.safetensors"})
    nodes["empty"] = n("core.EmptyLatentImage", {"width": 64, "height": 64})
    with pytest.raises(NodeExecutionError) as info:
        run(make_executor(BUILTIN_ROOT), nodes, ["sampler"])
    assert info.value.node_id == "sampler" and "text embeddings" in info.value.message
