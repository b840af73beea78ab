"""Dynamic thresholding: the Imagen link against the paper's formula, bounded x0 in a real sampling run at
CFG 30, the latent (mimic) link's per-channel spread, and composition of guidance nodes."""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest
import torch

from nodegraph.node import Input, Output, node
from nodegraph.params import String
from nodegraph.types import MODEL
from nodes.sampling.guidance import GuidanceState, build_chain, run_chain
from nodes.sampling.thresholding import ImagenThreshold, MimicThreshold, scheduled
from tests.nodes.sd_workflow_helpers import checkpoint, make_executor, make_models_root, n, run_workflow

RECORDS: dict[str, list[dict[str, torch.Tensor]]] = {}


@node(
    "test.RecordGuidance", name="Record guidance (test)", category="test",
    inputs=[Input("model", MODEL)], params=[String("key", "")], outputs=[Output("model", MODEL)],
)
def _record(ctx: Any, model: Any, key: str) -> Any:
    """Appends a link that records the state it sees at every step and passes the prediction on."""
    RECORDS[key] = []

    def link(state: GuidanceState) -> torch.Tensor:
        RECORDS[key].append({"x0": state.to_x0(state.guided), "cond": state.to_x0(state.cond),
                             "uncond": state.to_x0(state.uncond), "scale": state.cfg_scale})
        return state.guided

    return model.replace(guidance=(*model.guidance, link))


def state(prediction_type: str = "epsilon", seed: int = 0, scale: float = 30.0) -> GuidanceState:
    g = torch.Generator().manual_seed(seed)
    cond, uncond, x = (torch.randn(2, 4, 8, 8, generator=g) for _ in range(3))
    guided = uncond + scale * (cond - uncond)
    return GuidanceState(cond=cond, uncond=uncond, guided=guided, x=x, timestep=500, alpha_prod=torch.tensor(0.3),
                         prediction_type=prediction_type, cfg_scale=scale, step=0, total_steps=3)


def imagen_reference(x0: np.ndarray, p: float) -> np.ndarray:
    """Saharia et al. 2022, section 2.3, per sample: s = max(1, percentile(|x0|, p)); clip to [-s, s]; / s."""
    out = np.empty_like(x0)
    for i, sample in enumerate(x0):
        s = max(1.0, float(np.quantile(np.abs(sample), p)))
        out[i] = np.clip(sample, -s, s) / s
    return out


@pytest.mark.parametrize("prediction_type", ["epsilon", "v_prediction"])
@pytest.mark.parametrize("percentile", [0.9, 0.995])
def test_imagen_threshold_equals_the_papers_formula(prediction_type, percentile):
    st = state(prediction_type)
    out = ImagenThreshold(percentile)(st)
    expected = imagen_reference(st.to_x0(st.guided).double().numpy(), percentile)
    np.testing.assert_allclose(st.to_x0(out).double().numpy(), expected, rtol=1e-5, atol=1e-5)


def test_imagen_threshold_leaves_x0_inside_the_unit_range_alone():
    st = state()
    small = st.from_x0(st.to_x0(st.guided).clamp(-0.5, 0.5))
    st = st.replace(guided=small)
    torch.testing.assert_close(ImagenThreshold(0.995)(st), small, rtol=1e-5, atol=1e-5)


def test_mimic_threshold_gives_each_channel_the_mimic_scales_spread_and_keeps_its_mean():
    st = state(scale=30.0)
    out_x0 = st.to_x0(MimicThreshold(mimic_scale=5.0, percentile=1.0)(st)).flatten(2)
    mimic = (st.to_x0(st.uncond) + 5.0 * (st.to_x0(st.cond) - st.to_x0(st.uncond))).flatten(2)
    guided = st.to_x0(st.guided).flatten(2)

    def spread(t):
        return (t - t.mean(2, keepdim=True)).abs().amax(2)

    torch.testing.assert_close(spread(out_x0), spread(mimic), rtol=1e-4, atol=1e-5)
    torch.testing.assert_close(out_x0.mean(2), guided.mean(2), rtol=1e-4, atol=1e-4)
    assert (spread(guided) > 2 * spread(mimic)).all()  # CFG 30 really spreads more than the mimic scale


def test_mimic_schedules_move_between_the_scale_and_its_minimum():
    assert scheduled(7.0, 1.0, "constant", 2, 5) == 7.0
    assert [scheduled(7.0, 1.0, "linear_down", i, 4) for i in range(4)] == pytest.approx([7.0, 5.0, 3.0, 1.0])
    assert [scheduled(7.0, 1.0, "linear_up", i, 4) for i in range(4)] == pytest.approx([1.0, 3.0, 5.0, 7.0])
    assert scheduled(7.0, 1.0, "cosine_down", 0, 3) == pytest.approx(7.0)
    assert scheduled(7.0, 1.0, "cosine_down", 1, 3) == pytest.approx(4.0)


def test_two_links_compose_in_order():
    st = state()
    links = (MimicThreshold(7.0), ImagenThreshold(0.9))
    chained = run_chain(build_chain(30.0, 0.0, links), st)
    by_hand = links[1](st.replace(guided=links[0](st)))
    torch.testing.assert_close(chained, by_hand)


@pytest.fixture(scope="module")
def executor(tmp_path_factory):
    ex = make_executor(make_models_root(tmp_path_factory.mktemp("models")))
    ex.registry.register(_record, source="tests")
    return ex


def sampling_nodes(executor, *guidance: tuple[str, dict]) -> dict:
    nodes = {"ckpt": checkpoint(executor, "sd15")}
    source = "ckpt"
    for i, (kind, params) in enumerate(guidance):
        nodes[f"g{i}"] = n(kind, params, model=(source, "model"))
        source = f"g{i}"
    nodes.update(
        pos=n("core.CLIPTextEncode", {"text": "a lighthouse at night"}, clip=("ckpt", "clip")),
        neg=n("core.CLIPTextEncode", {"text": ""}, clip=("ckpt", "clip")),
        empty=n("core.EmptyLatentImage", {"width": 32, "height": 32, "batch_size": 1}),
        sampler=n("core.KSampler", {"seed": 2, "steps": 3, "cfg": 30.0, "scheduler": "ddim"}, model=(source, "model"),
                  positive=("pos", "conditioning"), negative=("neg", "conditioning"), latent_image=("empty", "latent")),
    )
    return nodes


def test_imagen_node_keeps_every_steps_x0_in_unit_range_where_plain_cfg_30_leaves_it(executor):
    run_workflow(executor, sampling_nodes(executor, ("test.RecordGuidance", {"key": "plain"})), ["sampler"])
    thresholded = sampling_nodes(
        executor, ("core.DynamicThresholding", {"mode": "imagen", "percentile": 0.995}),
        ("test.RecordGuidance", {"key": "imagen"}),
    )
    run_workflow(executor, thresholded, ["sampler"])
    assert len(RECORDS["plain"]) == len(RECORDS["imagen"]) == 3
    assert max(r["x0"].abs().max().item() for r in RECORDS["plain"]) > 1.0
    for record in RECORDS["imagen"]:
        assert record["x0"].abs().max().item() <= 1.0 + 1e-5


def test_latent_node_matches_the_mimic_spread_at_every_step_and_two_nodes_compose(executor):
    nodes = sampling_nodes(
        executor, ("core.DynamicThresholding", {"mode": "latent", "mimic_scale": 4.0, "percentile": 1.0}),
        ("test.RecordGuidance", {"key": "latent"}),
        ("core.DynamicThresholding", {"mode": "imagen", "percentile": 0.995}),  # a second node: composes
    )
    result = run_workflow(executor, nodes, ["ckpt", "g2", "sampler"])
    links = result.outputs["g2"]["model"].guidance
    assert isinstance(links[0], MimicThreshold) and isinstance(links[2], ImagenThreshold) and len(links) == 3
    assert result.outputs["ckpt"]["model"].guidance == ()
    assert len(RECORDS["latent"]) == 3
    reduced = 0
    for record in RECORDS["latent"]:
        def spread(t):
            t = t.flatten(2)
            return (t - t.mean(2, keepdim=True)).abs().amax(2)

        mimic = spread(record["uncond"] + 4.0 * (record["cond"] - record["uncond"]))
        cfg = spread(record["uncond"] + 30.0 * (record["cond"] - record["uncond"]))
        # a channel that CFG 30 spreads wider than CFG 4 would gets exactly CFG 4's spread; the method only
        # ever narrows, so a channel already narrower keeps its own
        torch.testing.assert_close(spread(record["x0"]), torch.minimum(cfg, mimic), rtol=1e-3, atol=1e-4)
        reduced += int((cfg > mimic * 1.01).sum())
    assert reduced > 0
