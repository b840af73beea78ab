"""The DreamBooth objective: instance MSE + weight x prior MSE over the two halves of the batch, and the class
prompt joining the batch exactly when prior preservation is on (the seed article had that condition inverted)."""

from __future__ import annotations

import pytest
import torch

from nodes.training.dreambooth_loss import Batch, assemble_batch, dreambooth_loss


def _offset_batch(instance_error: float, prior_error: float, rows: int = 2) -> tuple[torch.Tensor, torch.Tensor]:
    """A target, and a prediction off by ``instance_error`` on the first half and ``prior_error`` on the
    second, so each half's mean squared error is the square of its offset."""
    target = torch.randn(2 * rows, 4, 3, 3, generator=torch.Generator().manual_seed(0))
    offsets = torch.tensor([instance_error] * rows + [prior_error] * rows).view(-1, 1, 1, 1)
    return target + offsets, target


# weight 1 would make a swap of the halves invisible: the test uses weights that tell them apart
@pytest.mark.parametrize("weight", [0.5, 3.0])
def test_prior_loss_is_instance_mse_plus_weighted_class_mse(weight):
    instance_error, prior_error = 1.0, 3.0
    pred, target = _offset_batch(instance_error, prior_error)
    terms = dreambooth_loss(pred, target, weight)
    expected = instance_error**2 + weight * prior_error**2
    assert terms.total.item() == pytest.approx(expected, rel=1e-5)
    assert terms.instance.item() == pytest.approx(instance_error**2, rel=1e-5)
    assert terms.prior.item() == pytest.approx(prior_error**2, rel=1e-5)
    # the two mistakes this test exists to catch give other numbers
    swapped = prior_error**2 + weight * instance_error**2
    dropped = instance_error**2
    assert terms.total.item() != pytest.approx(swapped, rel=1e-3)
    assert terms.total.item() != pytest.approx(dropped, rel=1e-3)


def test_prior_loss_gradient_reaches_both_halves_with_their_weights():
    pred, target = _offset_batch(1.0, 1.0)
    pred.requires_grad_(True)
    dreambooth_loss(pred, target, 0.25).total.backward()
    instance_grad, prior_grad = torch.chunk(pred.grad, 2)
    # d/dpred of mean((pred - target)^2) = 2 * offset / n per half; the prior half is scaled by the weight
    assert torch.allclose(prior_grad, instance_grad * 0.25)


def test_without_prior_preservation_the_whole_batch_is_one_mse():
    pred, target = _offset_batch(1.0, 3.0)
    terms = dreambooth_loss(pred, target, None)
    assert terms.prior is None
    assert terms.total.item() == pytest.approx((1.0 + 9.0) / 2, rel=1e-5)


def test_prior_preservation_needs_an_even_batch_and_matching_shapes():
    with pytest.raises(ValueError, match="halves"):
        dreambooth_loss(torch.zeros(3, 4), torch.zeros(3, 4), 1.0)
    with pytest.raises(ValueError, match="shape"):
        dreambooth_loss(torch.zeros(2, 4), torch.zeros(2, 5), 1.0)


def _side(value: float, rows: int, pooled: bool = False) -> Batch:
    return Batch(torch.full((rows, 4, 2, 2), value), torch.full((1, 77, 8), value),
                 torch.full((1, 16), value) if pooled else None)


def test_class_prompt_joins_the_batch_as_second_half_only_with_prior_preservation():
    instance, prior = _side(1.0, 2, pooled=True), _side(-1.0, 2, pooled=True)
    with_prior = assemble_batch(instance, prior)
    assert with_prior.latents.shape[0] == with_prior.embeds.shape[0] == with_prior.pooled.shape[0] == 4
    first_latents, second_latents = torch.chunk(with_prior.latents, 2)
    first_embeds, second_embeds = torch.chunk(with_prior.embeds, 2)
    assert (first_latents == 1).all() and (first_embeds == 1).all()  # instance rows carry the instance prompt
    assert (second_latents == -1).all() and (second_embeds == -1).all()  # class rows carry the class prompt
    assert (torch.chunk(with_prior.pooled, 2)[1] == -1).all()

    alone = assemble_batch(instance, None)
    assert alone.latents.shape[0] == alone.embeds.shape[0] == 2
    assert (alone.embeds == 1).all()  # no class prompt embeddings without prior preservation


def test_halves_of_different_sizes_are_refused():
    with pytest.raises(ValueError, match="as many rows"):
        assemble_batch(_side(1.0, 2), _side(-1.0, 1))
