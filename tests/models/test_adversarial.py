"""GLA-GAN and pix2pix-3d: shared losses against references, patches, receptive field, adversarial resume."""

import numpy as np
import pytest
import torch

from mri2pet_cli.models.adversarial import receptive_field
from mri2pet_cli.models.glagan import grouped_local_forward, merge_patches, patch_slices, split_patches
from mri2pet_cli.models.losses import MS_SSIM_WEIGHTS, adversarial_loss, ms_ssim, region_means, roi_loss
from mri2pet_cli.models.pix2pix import patch_discriminator
from mri2pet_cli.models.registry import build_model
from tests.fake_data import write_fake_dataset


def test_ms_ssim_matches_pytorch_msssim():
    pytorch_msssim = pytest.importorskip("pytorch_msssim")
    torch.manual_seed(0)
    x = torch.rand(2, 1, 48, 168, 168, dtype=torch.float64)  # pytorch-msssim wants the last sides > 160
    y = (x + 0.2 * torch.rand_like(x)).clamp(0, 1)
    ours = ms_ssim(x, y, data_range=1.0)
    reference = pytorch_msssim.ms_ssim(x, y, data_range=1.0, weights=list(MS_SSIM_WEIGHTS))
    torch.testing.assert_close(ours, reference, rtol=1e-6, atol=1e-8)
    assert float(ms_ssim(x, x, data_range=1.0)) == pytest.approx(1.0)


def test_ms_ssim_gradient_matches_finite_differences():
    torch.manual_seed(1)
    x = torch.rand(1, 1, 24, 24, 24, dtype=torch.float64, requires_grad=True)
    y = torch.rand(1, 1, 24, 24, 24, dtype=torch.float64)
    assert torch.autograd.gradcheck(lambda a: ms_ssim(a, y, data_range=1.0), (x,), eps=1e-6, atol=1e-5, fast_mode=True)


def test_roi_loss_equals_a_direct_computation():
    rng = np.random.default_rng(0)
    labels = rng.integers(0, 6, size=(8, 9, 10))
    labels[labels == 4] = 0  # a region absent from the volume is left out, not counted as 0
    pred, target = rng.random((2, 1, 8, 9, 10)), rng.random((2, 1, 8, 9, 10))
    direct = []
    for n in range(2):
        for region in (1, 2, 3, 5):
            sel = labels == region
            direct.append((pred[n, 0][sel].mean() - target[n, 0][sel].mean()) ** 2)
    got = roi_loss(torch.from_numpy(pred), torch.from_numpy(target), torch.from_numpy(labels), n_regions=5)
    assert float(got) == pytest.approx(np.mean(direct), rel=1e-12)
    means = region_means(torch.from_numpy(pred), torch.from_numpy(labels), 5)
    assert means.shape == (2, 5) and float(means[0, 3]) == 0.0  # region 4 is empty


def test_adversarial_losses():
    logits = torch.tensor([0.0, 2.0])
    assert float(adversarial_loss(logits, True, "lsgan")) == pytest.approx(((0 - 1) ** 2 + (2 - 1) ** 2) / 2)
    bce = -(np.log(0.5) + np.log(1 / (1 + np.exp(-2.0)))) / 2
    assert float(adversarial_loss(logits, True, "bce")) == pytest.approx(bce)
    with pytest.raises(ValueError):
        adversarial_loss(logits, True, "hinge")


@pytest.mark.parametrize("k", [2, 4, 8])
@pytest.mark.parametrize("shape", [(64, 80, 64), (7, 9, 11)])
def test_patch_split_and_merge_are_exact(k, shape):
    x = torch.randn(2, 3, *shape)
    patches = split_patches(x, k)
    assert len(patches) == k
    covered = np.zeros(shape, int)
    for s in patch_slices(shape, k):
        covered[s] += 1
    assert (covered == 1).all()  # disjoint and covering
    assert torch.equal(merge_patches(patches, shape, k), x)


@pytest.mark.parametrize("k", [2, 4, 8])
def test_grouped_local_generators_equal_one_generator_per_patch(k):
    model = build_model("gla-gan", {"width": 0.125, "k": k})
    torch.manual_seed(k)
    for module in model.modules():  # running statistics and affine terms that differ between generators
        if isinstance(module, torch.nn.BatchNorm3d):
            module.running_mean.uniform_(-0.2, 0.2)
            module.running_var.uniform_(0.5, 1.5)
            module.weight.data.uniform_(0.5, 1.5)
            module.bias.data.uniform_(-0.2, 0.2)
    model.eval()
    patches = split_patches(torch.rand(1, 1, 16, 20, 16), k)
    with torch.no_grad():
        one_by_one = [g(p) for g, p in zip(model.generator.local_module, patches)]
        grouped = grouped_local_forward(list(model.generator.local_module), patches)
    for a, b in zip(one_by_one, grouped):
        torch.testing.assert_close(b, a, rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize("layers", [1, 2, 3])
def test_patch_discriminator_receptive_field_is_what_the_docs_say(layers):
    discriminator, field = patch_discriminator(1, 2, layers)
    assert field == {1: 16, 2: 34, 3: 70}[layers]  # pix2pix's 70x70 at three layers
    discriminator.eval()
    size = 96
    x = torch.zeros(1, 1, size, size, size, requires_grad=True)
    out = discriminator(x)
    centre = tuple(s // 2 for s in out.shape[2:])
    out[(0, 0, *centre)].backward()
    touched = np.flatnonzero(x.grad[0, 0].abs().sum(dim=(1, 2)).numpy() > 0)
    assert touched[-1] - touched[0] + 1 <= field  # the gradient of one logit reaches at most the field
    assert receptive_field([4, 4, 4], [2, 2, 1]) == 22


def test_gla_gan_ablations_build_and_run():
    t1 = torch.rand(2, 1, 16, 16, 16)  # batch 2: BatchNorm of a 1-voxel discriminator map needs two
    for config in ({"mode": "global"}, {"mode": "local"}, {"k": 2}, {"k": 8}, {"losses": "l1"}, {"losses": "l1+ssim"}):
        model = build_model("gla-gan", {"width": 0.0625, **config})
        batch = {"t1": t1, "pet": t1, "mask": torch.ones_like(t1), "age": torch.tensor([70.0, 70.0])}
        model.train()
        losses = model.training_losses(batch, "generator")
        assert torch.isfinite(losses["loss"]) and ("ssim" in losses) == (config.get("losses") == "l1+ssim")
    with pytest.raises(ValueError):
        build_model("gla-gan", {"mode": "both"})


def test_adversarial_resume_matches_an_uninterrupted_run(tmp_path):
    from mri2pet_cli.training import TrainOptions, train

    data = write_fake_dataset(tmp_path / "data")
    config = {"base": 4, "levels": 2, "dropout_levels": 1, "discriminator_base": 4}
    common = dict(model="pix2pix-3d", data=str(data), epochs=2, batch_size=2, model_config=config, seed=1, lr=2e-4)
    train(TrainOptions(run_dir=str(tmp_path / "a"), **common))
    train(TrainOptions(run_dir=str(tmp_path / "b"), **{**common, "epochs": 1}))
    resumed = train(TrainOptions(run_dir=str(tmp_path / "b"), **common), resume=True)
    assert {"d_loss", "g_loss", "g_l1", "g_adversarial"} <= set(resumed["history"][-1])
    a = torch.load(tmp_path / "a" / "checkpoint.pt", weights_only=True)
    b = torch.load(tmp_path / "b" / "checkpoint.pt", weights_only=True)
    for key in a["state_dict"]:  # generator and discriminator, dropout included
        torch.testing.assert_close(a["state_dict"][key], b["state_dict"][key])
    assert len(a["optimizers"]) == 2
