"""Load DiT / IF Model: family detection and the errors for folders it cannot load (unsupported family,
missing components, classes it does not accept, not a pipeline folder), each naming the node and the folder."""

from __future__ import annotations

import json
import shutil

import pytest

from nodegraph.errors import NodeExecutionError, NodeInputError
from tests.fixtures.tiny_dit import write_if_stage_1
from tests.nodes.dit_helpers import make_executor, n, one_thread, run  # noqa: F401 (one_thread: autouse)

pytest.importorskip("diffusers")


@pytest.fixture(scope="module")
def source(tmp_path_factory):
    return write_if_stage_1(tmp_path_factory.mktemp("src") / "tiny-if-1")


@pytest.fixture
def root(tmp_path):
    (tmp_path / "checkpoints").mkdir()
    return tmp_path


def load_error(root, name: str) -> NodeExecutionError:
    with pytest.raises(NodeExecutionError) as info:
        run(make_executor(root), {"load": n("core.DiffusersModelLoader", {"model_name": name})}, ["load"])
    error = info.value
    assert error.node_id == "load" and error.node_type == "core.DiffusersModelLoader"
    assert isinstance(error.__cause__, NodeInputError) and error.__cause__.field == "model_name"
    return error


def write_index(folder, pipeline: str, **components) -> None:
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "model_index.json").write_text(json.dumps({"_class_name": pipeline, **components}))


def test_unsupported_family_is_named_with_the_supported_ones(root):
    write_index(root / "checkpoints" / "sd3", "StableDiffusion3Pipeline", transformer=["diffusers", "SD3Transformer2DModel"])
    message = str(load_error(root, "sd3"))
    assert "StableDiffusion3Pipeline" in message and "does not support" in message
    for family in ("PixArt-alpha", "Hunyuan-DiT", "DeepFloyd IF stage I", "IFSuperResolutionPipeline"):
        assert family in message


def test_an_sd_folder_points_to_load_checkpoint(root):
    write_index(root / "checkpoints" / "sd15", "StableDiffusionPipeline")
    assert "Load Checkpoint" in str(load_error(root, "sd15"))


def test_missing_components_are_named(root, source):
    folder = root / "checkpoints" / "broken-if"
    shutil.copytree(source, folder)
    shutil.rmtree(folder / "text_encoder")
    for weights in (folder / "unet").glob("*.safetensors"):
        weights.unlink()
    message = str(load_error(root, "broken-if"))
    assert "DeepFloyd IF stage I" in message and "lacks unet, text_encoder" in message


def test_a_component_class_the_family_does_not_use_is_refused(root, source):
    folder = root / "checkpoints" / "odd-if"
    shutil.copytree(source, folder)
    index = json.loads((folder / "model_index.json").read_text())
    index["text_encoder"] = ["transformers", "GPT2Model"]
    (folder / "model_index.json").write_text(json.dumps(index))
    message = str(load_error(root, "odd-if"))
    assert "text_encoder is a GPT2Model" in message and "T5EncoderModel" in message


def test_a_folder_without_model_index_or_a_file_is_not_a_pipeline_folder(root):
    (root / "checkpoints" / "empty").mkdir()
    (root / "checkpoints" / "model.safetensors").write_bytes(b"x")
    assert "no model_index.json" in str(load_error(root, "empty"))
    assert "not a folder" in str(load_error(root, "model.safetensors"))


def test_the_loaded_folder_reads_its_tokenizer_offline_and_shows_the_family(root, source):
    shutil.copytree(source, root / "checkpoints" / "tiny-if-1")
    result = run(make_executor(root), {"load": n("core.DiffusersModelLoader", {"model_name": "tiny-if-1"})}, ["load"])
    clip = result.outputs["load"]["clip"]
    assert result.outputs["load"]["family"] == "DeepFloyd IF stage I"
    assert clip.text_tokenizers[0]("a photo", add_special_tokens=False).input_ids == [3, 4]  # '▁a', '▁photo'


def test_cache_size_counts_the_network_once_and_derived_handles_only_what_they_add():
    import torch

    from nodes.dit.handles import DiffusionModelHandle

    network = torch.nn.Linear(10, 10)  # 110 float32 parameters
    loaded = DiffusionModelHandle(network, "if_stage_2", {}, "epsilon", guidance=(lambda state: state.guided,))
    assert loaded.cache_nbytes() == 110 * 4  # IF's thresholding link in the chain does not hide the network
    bound = loaded.replace(low_res=torch.zeros(1, 3, 4, 4), noise_level=100)
    assert bound.cache_nbytes() == 48 * 4 and bound.unet is network
    assert loaded.replace(guidance=()).cache_nbytes() == 0
