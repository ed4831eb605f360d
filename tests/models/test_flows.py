"""Mathematical properties of the flow layers and of DUAL-GLOW (float64, tiny volumes)."""

import math
from pathlib import Path

import pytest
import torch
from torch.autograd.functional import jacobian

from mri2pet_cli.errors import Mri2PetError
from mri2pet_cli.models.dualglow import DualGlow
from mri2pet_cli.models.flows import (
    ActNorm,
    AffineCoupling,
    FlowStep,
    HaarSqueeze,
    InvConv1x1,
    MultiScaleFlow,
    haar_matrix,
    level_positions,
    squeeze3d,
    unsqueeze3d,
)


def randomize(module: torch.nn.Module, seed: int = 0) -> torch.nn.Module:
    """Move every parameter off its identity initialisation so the tests see a real map."""
    generator = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for p in module.parameters():
            p.add_(0.1 * torch.randn(p.shape, generator=generator, dtype=p.dtype))
    return module


def layers():
    return {
        "actnorm": randomize(ActNorm(4)),
        "invconv": randomize(InvConv1x1(4)),
        "coupling": randomize(AffineCoupling(4, 8)),
        "step": randomize(FlowStep(4, 8)),
    }


@pytest.fixture(autouse=True)
def float64():
    previous = torch.get_default_dtype()
    torch.set_default_dtype(torch.float64)
    yield
    torch.set_default_dtype(previous)


@pytest.mark.parametrize("name", ["actnorm", "invconv", "coupling", "step"])
def test_layer_inverse(name):
    layer = layers()[name].double().eval()
    x = torch.randn(2, 4, 3, 4, 2)
    y, _ = layer(x)
    torch.testing.assert_close(layer.inverse(y), x, atol=1e-10, rtol=1e-10)


@pytest.mark.parametrize("name", ["actnorm", "invconv", "coupling", "step"])
def test_layer_logdet_matches_autograd_jacobian(name):
    layer = layers()[name].double().eval()
    x = torch.randn(1, 4, 2, 2, 1)

    def f(flat):
        return layer(flat.view_as(x))[0].reshape(-1)

    jac = jacobian(f, x.reshape(-1))
    expected = torch.linalg.slogdet(jac)[1]
    torch.testing.assert_close(layer(x)[1][0], expected, atol=1e-8, rtol=1e-8)


def test_squeeze_is_invertible():
    x = torch.randn(2, 3, 4, 6, 2)
    assert squeeze3d(x).shape == (2, 24, 2, 3, 1)
    torch.testing.assert_close(unsqueeze3d(squeeze3d(x)), x)


def test_haar_squeeze_is_orthonormal_and_puts_block_means_last():
    haar = haar_matrix()
    torch.testing.assert_close(haar @ haar.T, torch.eye(8))
    squeeze = HaarSqueeze()
    x = torch.randn(2, 3, 4, 6, 2)
    torch.testing.assert_close(squeeze.inverse(squeeze(x)), x)
    constant = squeeze(torch.full((1, 2, 2, 2, 2), 3.0))[0, :, 0, 0, 0]
    torch.testing.assert_close(constant[:-2], torch.zeros(14))  # (frequency, channel): means are last
    torch.testing.assert_close(constant[-2:], torch.full((2,), 3.0 * 8**0.5))


@pytest.mark.parametrize("squeeze", ["plain", "haar"])
def test_multiscale_flow_inverse_and_logdet(squeeze):
    flow = randomize(MultiScaleFlow(1, levels=2, steps=2, hidden=8, squeeze=squeeze)).double().eval()
    x = torch.randn(1, 1, 4, 4, 4)
    latents, logdet = flow(x)
    assert [z.shape[1] for z in latents] == [4, 32]
    torch.testing.assert_close(flow.inverse(latents), x, atol=1e-9, rtol=1e-9)

    def f(flat):
        zs, _ = flow(flat.view_as(x))
        return torch.cat([z.reshape(-1) for z in zs])

    expected = torch.linalg.slogdet(jacobian(f, x.reshape(-1)))[1]
    torch.testing.assert_close(logdet[0], expected, atol=1e-7, rtol=1e-7)


def test_flow_stays_float32_and_invertible_under_bf16_autocast():
    """Only the coupling networks run in bf16; the latents are float32 and the inverse matches to bf16 rounding.

    Not bit-exact: the inverse sees coupling inputs that differ from the forward's by float32 rounding, and
    one that lands on the other side of a bf16 rounding step changes s and t by a bf16 ulp.
    """
    torch.manual_seed(5)  # a seed where a rounding flip happens (max error 0.003)
    flow = randomize(MultiScaleFlow(1, levels=2, steps=2, hidden=8)).float().eval()
    x = torch.randn(1, 1, 8, 8, 8, dtype=torch.float32)
    with torch.no_grad(), torch.autocast("cpu", dtype=torch.bfloat16):
        latents, logdet = flow(x)
        assert all(z.dtype == torch.float32 for z in latents) and logdet.dtype == torch.float32
        back = flow.inverse(latents)
    assert back.dtype == torch.float32
    error = (back - x).abs()
    assert error.mean() < 1e-3 and error.max() < 0.05


@pytest.mark.parametrize("layer", ["invconv", "haar"])
def test_bf16_training_applies_the_float32_map_that_synthesis_inverts(layer):
    """Under bf16 autocast the 1x1x1 convolution and the Haar squeeze give the float32 result bit for bit:
    the log-determinant (from log_s) belongs to the map that was applied, and synthesis inverts that map."""
    from mri2pet_cli.models.flows import HaarSqueeze, InvConv1x1

    torch.manual_seed(1)
    module = (InvConv1x1(8, seed=3) if layer == "invconv" else HaarSqueeze()).float()
    if layer == "invconv":
        with torch.no_grad():
            module.lower.add_(0.3 * torch.randn(8, 8, dtype=torch.float32))
            module.upper.add_(0.3 * torch.randn(8, 8, dtype=torch.float32))
    x = torch.randn(2, 8, 4, 4, 4, dtype=torch.float32)
    plain = module(x)
    with torch.no_grad(), torch.autocast("cpu", dtype=torch.bfloat16):
        mixed = module(x)
        mixed_bf16_input = module(x.bfloat16())
    first = (lambda out: out[0]) if layer == "invconv" else (lambda out: out)
    assert first(mixed).dtype == torch.float32
    torch.testing.assert_close(first(mixed), first(plain), rtol=0, atol=0)
    torch.testing.assert_close(first(mixed_bf16_input), first(module(x.bfloat16().float())), rtol=0, atol=0)
    back = module.inverse(first(plain))
    torch.testing.assert_close(back, x, rtol=1e-5, atol=1e-5)


def tiny_dual_glow() -> DualGlow:
    torch.manual_seed(0)
    return randomize(DualGlow(levels=2, steps=2, hidden=8, relation_hidden=8, age_embedding=4)).double().eval()


def test_dual_glow_same_seed_same_samples_and_age_matters():
    model = tiny_dual_glow()
    t1 = torch.rand(1, 1, 8, 8, 8)
    mask = torch.ones_like(t1)

    def sample(age, seed):
        generator = torch.Generator().manual_seed(seed)
        return model.synthesize(t1, mask, age, samples=3, temperature=0.7, generator=generator)

    a_mean, a_std = sample(torch.tensor([60.0]), 1)
    b_mean, b_std = sample(torch.tensor([60.0]), 1)
    torch.testing.assert_close(a_mean, b_mean)
    torch.testing.assert_close(a_std, b_std)
    assert (a_std > 0).any()
    c_mean, _ = sample(torch.tensor([85.0]), 1)
    assert not torch.allclose(a_mean, c_mean)
    unknown_mean, _ = sample(None, 1)
    assert unknown_mean.shape == t1.shape and not torch.allclose(unknown_mean, a_mean)


def test_dual_glow_sampling_at_zero_temperature_inverts_the_prior_mean():
    """With T = 0 the PET flow is inverted at the prior mean: encoding the result gives that mean back."""
    model = tiny_dual_glow()
    t1 = torch.rand(1, 1, 8, 8, 8)
    mask = torch.ones_like(t1)
    model.fit_data_statistics(torch.rand(3, 1, 8, 8, 8), 2 * torch.rand(3, 1, 8, 8, 8), torch.ones(3, 1, 8, 8, 8))
    pet, _ = model.synthesize(t1, mask, torch.tensor([70.0]), samples=1, temperature=0.0)
    z_m, _ = model.flow_m(model._to_flow(t1, model.t1_mean, model.t1_scale, dequantize=False))
    priors, _ = model._priors(z_m, model._age_inputs(torch.tensor([70.0]), 1, t1.device, drop=False))
    x_p = model.flow_p.inverse([m for m, _ in priors])
    expected = (x_p - 0.5 / model.n_bins) * model.pet_scale + model.pet_mean
    torch.testing.assert_close(pet, expected.clamp_min(0.0))


def test_untrained_dual_glow_predicts_the_mean_training_pet_and_keeps_it_in_its_weights():
    torch.manual_seed(0)
    model = DualGlow(levels=2, steps=2, hidden=8, relation_hidden=8, age_embedding=4).double().eval()
    pets = 1.0 + torch.rand(4, 1, 8, 8, 8, dtype=torch.float64)
    model.fit_data_statistics(torch.rand_like(pets), pets, torch.ones_like(pets))
    t1, mask = torch.rand(1, 1, 8, 8, 8, dtype=torch.float64), torch.ones(1, 1, 8, 8, 8, dtype=torch.float64)
    pet, _ = model.synthesize(t1, mask, None, temperature=0.0)
    # couplings and priors start at zero, so the prior mean decodes to the mean PET (less half a bin)
    torch.testing.assert_close(pet, pets.mean(0, keepdim=True) - 0.5 * model.pet_scale / model.n_bins)
    reloaded = DualGlow(levels=2, steps=2, hidden=8, relation_hidden=8, age_embedding=4).double().eval()
    reloaded.load_state_dict(model.state_dict())
    torch.testing.assert_close(reloaded.synthesize(t1, mask, None, temperature=0.0)[0], pet)
    with pytest.raises(Mri2PetError, match="grid"):
        reloaded.synthesize(torch.rand(1, 1, 16, 8, 8, dtype=torch.float64), torch.ones(1, 1, 16, 8, 8), None)


def test_dual_glow_loss_backpropagates_to_discriminators_with_reversal():
    model = tiny_dual_glow().train()
    batch = {
        "t1": torch.rand(2, 1, 8, 8, 8),
        "pet": torch.rand(2, 1, 8, 8, 8),
        "mask": torch.ones(2, 1, 8, 8, 8),
        "age": torch.tensor([58.0, 83.0]),
    }
    model.age_dropout = 0.0
    losses = model.training_losses(batch)
    assert {"loss", "nll", "bpd", "age_cls", "age_cls_context"} <= set(losses)
    losses["loss"].backward()
    assert model.disc_m[0].reverse and not model.disc_m[-1].reverse
    assert all(p.grad is not None for p in model.disc_p_top.parameters())
    assert all(p.grad is not None for p in model.disc_context.parameters())


def test_context_discriminator_reverses_the_gradient_into_the_t1_context():
    """The context discriminator learns to classify age; the T1 context is pushed the opposite way."""
    torch.manual_seed(0)
    model = tiny_dual_glow().train()
    context = torch.randn(2, model.top_context[0].out_channels, 2, 2, 2, requires_grad=True)
    target = torch.tensor([0, 3])
    torch.nn.functional.cross_entropy(model.disc_context(context), target).backward()
    reversed_grad = context.grad.clone()
    context.grad = None
    plain = model.disc_context.classify(model.disc_context.convs(context).mean(dim=(2, 3, 4)))
    torch.nn.functional.cross_entropy(plain, target).backward()
    torch.testing.assert_close(reversed_grad, -context.grad)
    assert reversed_grad.abs().sum() > 0


def test_age_slope_shifts_the_top_prior_mean_per_decade_and_survives_reload():
    torch.manual_seed(0)
    model = DualGlow(levels=2, steps=1, hidden=8, relation_hidden=8, age_embedding=4).double().eval()
    volumes = torch.rand(3, 1, 8, 8, 8, dtype=torch.float64)
    model.fit_data_statistics(volumes, volumes, torch.ones_like(volumes))
    assert model.age_slope.shape == (1, model.flow_p.latent_channels[-1], 2, 2, 2)
    model.age_slope.data.normal_()
    z_m, _ = model.flow_m(model._to_flow(volumes[:1], model.t1_mean, model.t1_scale, dequantize=False))

    def top_mean(age):
        age = None if age is None else torch.tensor([age], dtype=torch.float64)
        return model._priors(z_m, model._age_inputs(age, 1, "cpu", drop=False))[0][-1][0]

    # the top prior network starts at zero, so the mean is the slope times (age - 70) / 10
    torch.testing.assert_close(top_mean(90.0) - top_mean(80.0), model.age_slope)
    torch.testing.assert_close(top_mean(None), top_mean(70.0))
    reloaded = DualGlow(levels=2, steps=1, hidden=8, relation_hidden=8, age_embedding=4).double()
    reloaded.load_state_dict(model.state_dict())
    torch.testing.assert_close(reloaded.age_slope, model.age_slope)
    # training moves the slope: it gets a gradient from the likelihood
    model.train()
    model.age_dropout = 0.0
    batch = {
        "t1": volumes[:2],
        "pet": volumes[1:],
        "mask": torch.ones_like(volumes[:2]),
        "age": torch.tensor([60.0, 85.0]),
    }
    model.training_losses(batch)["loss"].backward()
    assert model.age_slope.grad is not None and model.age_slope.grad.abs().sum() > 0


@pytest.mark.parametrize("age_levels", ["all", "top"])
def test_v2_age_moves_every_split_prior_and_v1_only_the_top(age_levels):
    torch.manual_seed(0)
    model = DualGlow(levels=3, steps=1, hidden=8, relation_hidden=8, age_embedding=4, age_levels=age_levels)
    model = model.double().eval()
    volumes = torch.rand(2, 1, 16, 16, 16, dtype=torch.float64)
    model.fit_data_statistics(volumes, volumes, torch.ones_like(volumes))
    randomize(model, seed=1)
    z_m, _ = model.flow_m(model._to_flow(volumes[:1], model.t1_mean, model.t1_scale, dequantize=False))

    def means(age):
        priors, _ = model._priors(z_m, model._age_inputs(torch.tensor([age], dtype=torch.float64), 1, "cpu", False))
        return [mean for mean, _ in priors]

    moved = [not torch.allclose(a, b) for a, b in zip(means(60.0), means(85.0))]
    assert moved == ([True, True, True] if age_levels == "all" else [False, False, True])
    reloaded = DualGlow(levels=3, steps=1, hidden=8, relation_hidden=8, age_embedding=4, age_levels=age_levels)
    reloaded.double().load_state_dict(model.state_dict())
    for a, b in zip(reloaded.age_slopes, model.age_slopes):
        torch.testing.assert_close(a, b)


def test_several_samples_keep_the_point_estimate_and_add_an_unbiased_std():
    model = tiny_dual_glow()
    t1 = torch.rand(1, 1, 8, 8, 8)
    mask = torch.ones_like(t1)
    point, none = model.synthesize(t1, mask, torch.tensor([70.0]), samples=1, temperature=0.0)
    sampled, std = model.synthesize(
        t1, mask, torch.tensor([70.0]), samples=4, temperature=1.0, generator=torch.Generator().manual_seed(0)
    )
    assert none is None and std is not None and (std > 0).any()
    torch.testing.assert_close(sampled, point)


def v3_dual_glow(**options) -> DualGlow:
    torch.manual_seed(0)
    config = dict(levels=2, steps=1, hidden=8, relation_hidden=8, age_embedding=4, mean_network="unet")
    model = DualGlow(**config, mean_base=4, mean_levels=2, pet_scale=1.0, **options).double()
    volumes = torch.rand(3, 1, 8, 8, 8)
    model.fit_data_statistics(volumes, 2 * volumes, torch.ones_like(volumes))
    return randomize(model, seed=1)


def test_v3_conditional_mean_is_a_shift_the_likelihood_does_not_see():
    """The PET flow models PET - m(T1, age): moving the PET and m together leaves log p unchanged, and the
    T = 0 decode is m plus the flow's inverse at the prior mean."""
    model = v3_dual_glow().eval()
    t1, age = torch.rand(2, 1, 8, 8, 8), torch.tensor([62.0, 81.0])
    pet, mask = 1.0 + torch.rand(2, 1, 8, 8, 8), torch.ones(2, 1, 8, 8, 8)
    before = model.log_likelihoods(t1, pet, age, mask=mask, dequantize=False)["log_p"]
    with torch.no_grad():
        model.mean_net.head.bias += 0.3  # m moves by 0.3 everywhere
    after = model.log_likelihoods(t1, pet + 0.3, age, mask=mask, dequantize=False)["log_p"]
    torch.testing.assert_close(after, before)

    decoded, _ = model.synthesize(t1, mask, age, temperature=0.0)
    age_in = model._age_inputs(age, 2, t1.device, drop=False)
    z_m, _ = model.flow_m(model._to_flow(t1, model.t1_mean, model.t1_scale, dequantize=False))
    priors, _ = model._priors(z_m, age_in)
    residual = (model.flow_p.inverse([m for m, _ in priors]) - 0.5 / model.n_bins) * model.pet_scale
    torch.testing.assert_close(decoded, (residual + model._pet_centre(t1, mask, age_in)).clamp_min(0.0))


def test_v3_image_space_age_slope_moves_the_mean_per_decade():
    model = v3_dual_glow().eval()
    with torch.no_grad():
        model.mean_age_slope.fill_(-0.05)
    t1, mask = torch.rand(1, 1, 8, 8, 8), torch.ones(1, 1, 8, 8, 8)
    centre = {a: model._pet_centre(t1, mask, model._age_inputs(torch.tensor([a]), 1, t1.device, drop=False))
              for a in (60.0, 70.0, 90.0)}  # fmt: skip
    torch.testing.assert_close(centre[90.0] - centre[60.0], torch.full_like(t1, -0.15))
    unknown = model._pet_centre(t1, mask, model._age_inputs(None, 1, t1.device, drop=False))
    torch.testing.assert_close(unknown, centre[70.0])  # no age: no slope term, as at age 70


def test_v3_mean_network_starts_from_named_weights_and_stays_fixed(monkeypatch):
    from mri2pet_cli.models import weights
    from mri2pet_cli.models.unet import UNet3D

    donor = randomize(UNet3D(base=4, levels=2).double(), seed=3)
    monkeypatch.setattr(weights, "find_weights", lambda name: weights.WeightsFiles(Path(name), Path(name)))
    monkeypatch.setattr(weights, "load_checkpoint", lambda files: ({"state_dict": donor.state_dict()}, {}))
    model = v3_dual_glow(mean_init="unet")
    model.fit_data_statistics(torch.rand(2, 1, 8, 8, 8), torch.rand(2, 1, 8, 8, 8), torch.ones(2, 1, 8, 8, 8))
    for name, value in donor.state_dict().items():
        torch.testing.assert_close(model.mean_net.state_dict()[name], value)
    batch = {"t1": torch.rand(2, 1, 8, 8, 8), "mask": torch.ones(2, 1, 8, 8, 8), "age": torch.tensor([60.0, 80.0])}
    batch["pet"] = 2 * batch["t1"]
    model.training_losses(batch)["loss"].backward()
    assert all(p.grad is None for p in model.mean_net.parameters())
    assert model.mean_age_slope.grad is not None and model.mean_age_slope.grad.abs().sum() > 0
    optimized = {id(p) for group in model.configure_optimizers(1e-3)[0].param_groups for p in group["params"]}
    assert not any(id(p) in optimized for p in model.mean_net.parameters())


def test_v4_scan_age_adds_the_measured_age_only_change_and_nothing_else():
    """--age A --scan-age S: conditioned on S, plus the measured slope x (A - S) / 10; S = A is the plain PET."""
    model = v3_dual_glow(age_only_effect=True).eval()
    model.age_only_slope = torch.full((1, 1, 8, 8, 8), 0.02, dtype=torch.float64)
    with torch.no_grad():
        model.mean_net.head.bias += 3.0  # a PET well above 0, so the clamp at 0 does not bite
    t1, mask = torch.rand(1, 1, 8, 8, 8, dtype=torch.float64), torch.ones(1, 1, 8, 8, 8, dtype=torch.float64)
    scan = torch.tensor([72.0])

    def pet(age: float, scan_age=scan) -> torch.Tensor:
        return model.synthesize(t1, mask, torch.tensor([age]), temperature=0.0, scan_age=scan_age)[0]

    torch.testing.assert_close(pet(90.0) - pet(60.0), torch.full_like(t1, 0.06))
    torch.testing.assert_close(pet(72.0), pet(72.0, scan_age=None))
    assert not torch.allclose(pet(90.0, scan_age=None), pet(90.0))  # without a scan age: a person of 90

    reloaded = v3_dual_glow(age_only_effect=True)
    reloaded.load_state_dict(model.state_dict())
    torch.testing.assert_close(reloaded.age_only_slope, model.age_only_slope)


def test_scan_age_needs_a_measured_age_only_effect_and_both_ages():
    model = v3_dual_glow().eval()
    t1, mask = torch.rand(1, 1, 8, 8, 8, dtype=torch.float64), torch.ones(1, 1, 8, 8, 8, dtype=torch.float64)
    with pytest.raises(Mri2PetError, match="no measured age-only effect"):
        model.synthesize(t1, mask, torch.tensor([80.0]), scan_age=torch.tensor([70.0]))
    model.age_only_slope = torch.zeros(1, 1, 8, 8, 8, dtype=torch.float64)
    with pytest.raises(Mri2PetError, match="both"):
        model.synthesize(t1, mask, None, scan_age=torch.tensor([70.0]))


def test_age_only_map_is_never_measured_by_training_only_kept_from_initial_weights():
    """A model never reads the simulator: a fresh run with age_only_effect is refused; weights that carry
    the map keep it unchanged."""
    model = v3_dual_glow(age_only_effect=True)
    with pytest.raises(Mri2PetError, match="not measured by training"):
        model.before_training()
    measured = torch.full((1, 1, 8, 8, 8), 0.02, dtype=torch.float64)
    model.age_only_slope = measured.clone()  # as loaded from --init-weights
    model.before_training()
    torch.testing.assert_close(model.age_only_slope, measured)


def v5_dual_glow(shape: tuple[int, int, int] = (16, 16, 16), **options) -> DualGlow:
    torch.manual_seed(0)
    config = dict(levels=3, steps=1, hidden=8, relation_hidden=8, age_embedding=4)
    model = DualGlow(**config, pet_conditioned_priors=True, **options).double()
    volumes = torch.rand(3, 1, *shape)
    model.fit_data_statistics(volumes, 2 * volumes, torch.ones_like(volumes))
    return randomize(model, seed=2).eval()


def test_level_positions_keep_every_latent_position_whose_block_touches_the_mask():
    mask = torch.zeros(1, 1, 8, 8, 8)
    mask[0, 0, 5, 2, 7] = 1
    first, second = level_positions(mask, 2)
    assert first.shape == (1, 1, 4, 4, 4) and second.shape == (1, 1, 2, 2, 2)
    assert first.sum() == 1 and first[0, 0, 2, 1, 3] == 1
    assert second.sum() == 1 and second[0, 0, 1, 0, 1] == 1


@pytest.mark.parametrize("name", ["actnorm", "invconv", "coupling", "step"])
def test_log_determinant_counts_only_the_given_positions(name):
    layer = layers()[name]
    x = torch.randn(2, 4, 4, 4, 4)
    _, whole = layer(x)
    _, everywhere = layer(x, torch.ones(2, 1, 4, 4, 4))
    _, nowhere = layer(x, torch.zeros(2, 1, 4, 4, 4))
    half = torch.zeros(2, 1, 4, 4, 4)
    half[:, :, :2] = 1
    _, front = layer(x, half)
    _, back = layer(x, 1 - half)
    torch.testing.assert_close(everywhere, whole)
    torch.testing.assert_close(nowhere, torch.zeros(2))
    torch.testing.assert_close(front + back, whole)  # positions partition the log-determinant


def test_v5_masked_likelihood_is_the_whole_one_when_the_mask_is_everything_and_per_brain_voxel():
    plain, masked = v5_dual_glow(), v5_dual_glow(masked_likelihood=True)
    t1, pet, age = torch.rand(2, 1, 16, 16, 16), 1 + torch.rand(2, 1, 16, 16, 16), torch.tensor([65.0, 80.0])
    full = torch.ones_like(t1)
    a = plain.log_likelihoods(t1, pet, age, mask=full, dequantize=False)
    b = masked.log_likelihoods(t1, pet, age, mask=full, dequantize=False)
    torch.testing.assert_close(b["log_p"], a["log_p"])
    brain = torch.zeros_like(t1)
    brain[:, :, 2:10, 3:11, 4:12] = 1
    c = masked.log_likelihoods(t1 * brain, pet * brain, age, mask=brain, dequantize=False)
    assert torch.equal(c["dims"], torch.full((2,), 512.0, dtype=c["dims"].dtype))


def test_v5_masked_likelihood_leaves_out_positions_far_from_the_brain():
    """The PET changed far from the brain (beyond every network's reach) moves the whole-grid likelihood,
    not the masked one."""
    plain, masked = v5_dual_glow((16, 16, 64)), v5_dual_glow((16, 16, 64), masked_likelihood=True)
    shape = (1, 1, 16, 16, 64)
    t1, pet, age = torch.rand(shape), 1 + torch.rand(shape), torch.tensor([70.0])
    brain = torch.zeros(shape)
    brain[..., :8] = 1
    far = pet.clone()
    far[..., 56:] += 0.5
    for model, moves in ((plain, True), (masked, False)):
        before = model.log_likelihoods(t1, pet, age, mask=brain, dequantize=False)["log_p"]
        after = model.log_likelihoods(t1, far, age, mask=brain, dequantize=False)["log_p"]
        assert moves != torch.allclose(before, after)


def v5_priors(model: DualGlow):
    t1, age = torch.rand(1, 1, 16, 16, 16), torch.tensor([72.0])
    z_m, _ = model.flow_m(model._to_flow(t1, model.t1_mean, model.t1_scale, dequantize=False))
    return model._priors(z_m, model._age_inputs(age, 1, t1.device, drop=False))[0]


def test_v5_top_down_decode_puts_every_lower_latent_at_its_pet_conditioned_prior_mean():
    """Decoding top-down at the prior means, then encoding, gives at each lower level the prior mean given
    the coarser PET latents (what the likelihood scores): the sampler and the likelihood use the same priors."""
    model = v5_dual_glow()
    raw = v5_priors(model)
    x_p = model.flow_p.inverse([raw[-1][0]], draw=lambda i, rest: model._lower_prior(i, raw[i], rest)[0])
    z_p, _, rests = model.flow_p(x_p, with_rests=True)
    for level in range(model.levels - 1):
        mean, _ = model._lower_prior(level, raw[level], rests[level])
        torch.testing.assert_close(z_p[level], mean)
        assert not torch.allclose(mean, raw[level][0])  # the coarser PET latents moved the mean
    torch.testing.assert_close(z_p[-1], raw[-1][0])


def test_v5_draws_move_the_finer_levels_with_the_coarse_draw():
    model = v5_dual_glow()
    raw = v5_priors(model)
    below_top = []
    for shift in (0.0, 1.0):
        seen: list[torch.Tensor] = []

        def draw(i, rest, seen=seen):
            seen.append(model._lower_prior(i, raw[i], rest)[0])
            return seen[-1]

        model.flow_p.inverse([raw[-1][0] + shift], draw=draw)
        below_top.append(seen[0])  # the first lower level drawn: the one below the top
    assert not torch.allclose(below_top[0], below_top[1])


def test_v5_log_std_is_soft_clamped_and_v4_is_not():
    model = v5_dual_glow(log_std_limit=1.5)
    big = torch.linspace(-20, 20, 41)
    limited = model._limited(big)
    assert limited.abs().max() < 1.5 and torch.all(limited[1:] > limited[:-1])
    torch.testing.assert_close(model._limited(torch.tensor([0.1])), torch.tensor([1.5 * math.tanh(0.1 / 1.5)]))
    torch.testing.assert_close(tiny_dual_glow()._limited(big), big)


def test_v5_validation_score_is_bits_per_brain_voxel_and_none_when_selecting_by_mae():
    model = v5_dual_glow(masked_likelihood=True, select_by="val_nll")
    t1, pet, mask, age = torch.rand(1, 1, 16, 16, 16), torch.rand(1, 1, 16, 16, 16), torch.ones(1, 1, 16, 16, 16), None
    out = model.log_likelihoods(t1, pet, age, mask=mask, dequantize=False)
    expected = float(model.bits_per_dim(out["log_p"], out["dims"]).detach())
    assert model.validation_score(t1, pet, mask, age) == pytest.approx(expected)
    assert tiny_dual_glow().validation_score(t1, pet, mask, age) is None
    with pytest.raises(ValueError, match="select_by"):
        DualGlow(levels=2, steps=1, hidden=8, relation_hidden=8, age_embedding=4, select_by="mae")
