"""FLUX, SD3 and DiT parts wired to nodes they do not fit are refused with a message naming the node and field,
what was expected and what to use instead, never a traceback from inside a model."""

from __future__ import annotations

import pytest

from nodegraph.errors import NodeExecutionError
from nodegraph.model_folders import BUILTIN_ROOT
from tests.nodes.dit_helpers import make_executor, n, one_thread, run  # noqa: F401 (one_thread: autouse)
from tests.nodes.flow_fixtures import link

pytest.importorskip("diffusers")
pytest.importorskip("sentencepiece")


@pytest.fixture(scope="module")
def executor(tmp_path_factory, flux_dev_folder, sd35_medium_folder):
    from nodegraph.executor import Executor
    from nodegraph.installed import default_registry
    from nodegraph.model_folders import ModelFolders
    from nodegraph.runtime import Runtime

    root = tmp_path_factory.mktemp("models")
    link(flux_dev_folder, root, "flux")
    link(sd35_medium_folder, root, "sd3")
    return Executor(default_registry().copy(), runtime=Runtime(device="cpu", precision="fp32"),
                    folders=ModelFolders([root, BUILTIN_ROOT]))


FLUX = n("core.FlowCheckpointLoader", {"ckpt_name": "flux"})
SD3 = n("core.FlowCheckpointLoader", {"ckpt_name": "sd3"})
DEMO = n("core.CheckpointLoader", {"ckpt_name": "demo_shapes.safetensors"})


def failure(executor, nodes: dict, target: str) -> NodeExecutionError:
    with pytest.raises(NodeExecutionError) as info:
        run(executor, nodes, [target])
    assert info.value.node_id == target, info.value
    return info.value


@pytest.mark.parametrize(("node", "hint"), [
    ("core.CLIPTextEncode", "use FLUX Text Encode"),
    ("core.SD3TextEncode", "found those of FLUX.1: use FLUX Text Encode"),
    ("core.T5TextEncode", "text encoder of FLUX.1: use FLUX Text Encode"),
])
def test_flux_text_encoders_in_another_familys_text_node(executor, node, hint):
    error = failure(executor, {"load": FLUX, "text": n(node, {"text": "a cat"}, clip=("load", "clip"))}, "text")
    assert hint in error.message


def test_sd_clip_in_flux_text_encode(executor):
    error = failure(executor, {"load": DEMO, "text": n("core.FluxTextEncode", {"text": "a"}, clip=("load", "clip"))},
                    "text")
    assert "expected the text encoders of FLUX.1" in error.message and "CLIP Text Encode" in error.message


def sampler(model: str, positive: str, latent: str) -> dict:
    return n("core.KSampler", {"steps": 1, "cfg": 1.0}, model=(model, "model"), positive=(positive, "conditioning"),
             negative=(positive, "conditioning"), latent_image=(latent, "latent"))


def test_sd3_conditioning_in_a_flux_sampler(executor):
    nodes = {"flux": FLUX, "sd3": SD3, "text": n("core.SD3TextEncode", {"text": "a"}, clip=("sd3", "clip")),
             "empty": n("core.EmptyLatentForModel", {"width": 32, "height": 32}, model=("flux", "model")),
             "sampler": sampler("flux", "text", "empty")}
    assert "FLUX model expects pooled text embeddings" in failure(executor, nodes, "sampler").message


def test_sd_latent_in_a_flux_sampler(executor):
    nodes = {"flux": FLUX, "text": n("core.FluxTextEncode", {"text": "a"}, clip=("flux", "clip")),
             "empty": n("core.EmptyLatentImage", {"width": 32, "height": 32}), "sampler": sampler("flux", "text", "empty")}
    assert "Empty Latent (model's space)" in failure(executor, nodes, "sampler").message


def test_flux_latent_in_an_sd_vae(executor):
    nodes = {"flux": FLUX, "demo": DEMO,
             "empty": n("core.EmptyLatentForModel", {"width": 32, "height": 32}, model=("flux", "model")),
             "decode": n("core.VAEDecode", samples=("empty", "latent"), vae=("demo", "vae"))}
    assert "16-channel VAE" in failure(executor, nodes, "decode").message


@pytest.mark.parametrize(("loader", "name", "hint"), [
    ("core.CheckpointLoader", "flux", "Load FLUX / SD3 Checkpoint"),
    ("core.FlowCheckpointLoader", "demo_shapes.safetensors", "use Load Checkpoint"),
    ("core.DiffusersModelLoader", "flux", "Load FLUX / SD3 Checkpoint"),
])
def test_loaders_refuse_other_families_naming_the_right_loader(executor, loader, name, hint):
    field = {"core.CheckpointLoader": "ckpt_name", "core.FlowCheckpointLoader": "ckpt_name",
             "core.DiffusersModelLoader": "model_name"}[loader]
    error = failure(executor, {"load": n(loader, {field: name})}, "load")
    assert hint in error.message, error.message
