"""DUAL-GLOW v7: the mean network trains jointly with the flows, optionally with an L1 term on the mean."""

from __future__ import annotations

import pytest
import torch

from mri2pet_cli.models.dualglow import DualGlow

SHAPE = (2, 1, 16, 16, 16)


def tiny(**options) -> DualGlow:
    torch.manual_seed(0)
    model = DualGlow(
        levels=2, steps=1, hidden=4, relation_hidden=4, age_embedding=4, mean_network="unet", mean_base=4,
        mean_levels=2, pet_scale=1.0, masked_likelihood=True, **options,
    )  # fmt: skip
    t1, pet, mask = torch.rand(SHAPE), torch.rand(SHAPE) * 2, torch.ones(SHAPE)
    model.fit_data_statistics(t1, pet, mask)
    return model


def batch() -> dict[str, torch.Tensor]:
    torch.manual_seed(1)
    return {
        "t1": torch.rand(SHAPE),
        "pet": torch.rand(SHAPE) * 2,
        "mask": torch.ones(SHAPE),
        "age": torch.tensor([65.0, 80.0]),
    }


def mean_gradient(model: DualGlow) -> float:
    model.zero_grad()
    model.training_losses(batch())["loss"].backward()
    grads = [p.grad for p in model.mean_net.parameters() if p.grad is not None]
    return float(sum(g.abs().sum() for g in grads)) if grads else 0.0


def test_a_frozen_mean_gets_no_gradient_and_a_joint_one_does():
    assert mean_gradient(tiny()) == 0.0
    assert mean_gradient(tiny(mean_trainable=True)) > 0.0


def test_the_l1_term_is_the_masked_error_of_the_mean_and_enters_the_loss():
    plain, joint = tiny(mean_trainable=True), tiny(mean_trainable=True, mean_l1_weight=2.0)
    joint.load_state_dict(plain.state_dict())
    data = batch()
    torch.manual_seed(2)
    without = plain.training_losses(data)
    torch.manual_seed(2)
    with_l1 = joint.training_losses(data)
    assert "mean_l1" not in without
    centre = joint.log_likelihoods(data["t1"], data["pet"], data["age"], mask=data["mask"])["centre"]
    torch.testing.assert_close(with_l1["mean_l1"], (centre - data["pet"]).abs().mean())
    torch.testing.assert_close(with_l1["loss"] - without["loss"], 2.0 * with_l1["mean_l1"], rtol=1e-4, atol=1e-4)


def test_an_l1_weight_without_a_trainable_mean_is_refused():
    with pytest.raises(ValueError, match="mean_trainable"):
        DualGlow(levels=2, steps=1, hidden=4, mean_network="unet", mean_l1_weight=1.0)


def test_synthesis_and_the_conditional_mean_build_no_graph_even_with_a_trainable_mean():
    model, data = tiny(mean_trainable=True, mean_l1_weight=1.0), batch()
    pet, _ = model.synthesize(data["t1"], data["mask"], data["age"], temperature=0.0)
    mean = model.conditional_mean(data["t1"], data["mask"], data["age"])
    assert not pet.requires_grad and not mean.requires_grad
    assert pet.shape == mean.shape == SHAPE
