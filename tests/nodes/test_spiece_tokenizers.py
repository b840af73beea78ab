"""Real-layout T5 / mT5 tokenizer folders (spiece.model with the hub's json files, no tokenizer.json) load offline
through the loaders' own code and tokenize as sentencepiece itself does, for T5-v1.1, mT5 (Hunyuan-DiT's second
tokenizer), DeepFloyd IF and PixArt; a PixArt folder laid out that way loads and encodes end to end."""

from __future__ import annotations

import shutil

import pytest
import torch

from tests.fixtures import spiece
from tests.nodes.dit_helpers import make_executor, n, one_thread, run  # noqa: F401

pytest.importorskip("sentencepiece")
TEXT = "a painting of a red castle under a blue sky"


@pytest.mark.parametrize("kind", ["t5", "mt5", "if", "pixart"])
def test_hub_layout_tokenizer_folder_tokenizes_as_sentencepiece(tmp_path, kind):
    from nodes.dit.folders import _load_tokenizer

    spiece.write_folder(tmp_path / "tokenizer", kind)
    assert not (tmp_path / "tokenizer" / "tokenizer.json").exists()
    tokenizer = _load_tokenizer(tmp_path, "tokenizer")
    assert tokenizer(TEXT).input_ids == spiece.reference_ids(TEXT)
    padded = tokenizer([TEXT], padding="max_length", max_length=40, truncation=True).input_ids[0]
    assert padded[: len(spiece.reference_ids(TEXT))] == spiece.reference_ids(TEXT) and set(padded[27:]) == {0}


def test_t5_tokenizer_folder_for_single_t5_files_is_found_and_used(tmp_path):
    from nodes.mmdit.encoder_files import find_t5_tokenizer

    spiece.write_folder(tmp_path / "text_encoders" / "t5_tokenizer", "t5")
    assert find_t5_tokenizer([tmp_path / "missing", tmp_path / "text_encoders"]) is None
    tokenizer = find_t5_tokenizer([tmp_path / "missing", tmp_path / "text_encoders" / "t5_tokenizer"])
    assert tokenizer(TEXT).input_ids == spiece.reference_ids(TEXT)


def test_pixart_folder_with_a_hub_layout_tokenizer_loads_and_encodes_offline(tmp_path):
    from diffusers import DPMSolverMultistepScheduler, PixArtAlphaPipeline

    from tests.fixtures.tiny_dit import tiny_vae, write_pixart
    from tests.fixtures.tiny_flow import t5_encoder

    folder = write_pixart(tmp_path / "checkpoints" / "pixart")
    reference = PixArtAlphaPipeline.from_pretrained(folder, local_files_only=True)
    encoder = t5_encoder(1, width=32)  # covers the trained vocabulary; PixArt's caption width
    pipe = PixArtAlphaPipeline(tokenizer=spiece.fast_tokenizer(), text_encoder=encoder, vae=tiny_vae(2),
                               transformer=reference.transformer, scheduler=DPMSolverMultistepScheduler())
    pipe.save_pretrained(folder)
    shutil.rmtree(folder / "tokenizer")
    spiece.write_folder(folder / "tokenizer", "pixart")
    result = run(make_executor(tmp_path), {
        "load": n("core.DiffusersModelLoader", {"model_name": "pixart"}),
        "text": n("core.T5TextEncode", {"text": TEXT}, clip=("load", "clip")),
    }, ["text"])
    entry = result.outputs["text"]["conditioning"][0]
    ids = spiece.reference_ids(TEXT)
    mask = torch.tensor([[1] * len(ids) + [0] * (120 - len(ids))])
    with torch.no_grad():
        expected = encoder(torch.tensor([ids + [0] * (120 - len(ids))]), attention_mask=mask)[0]
    assert torch.equal(entry.extras["attention_mask"], mask)
    assert torch.allclose(entry.embeds, expected, atol=1e-6)
