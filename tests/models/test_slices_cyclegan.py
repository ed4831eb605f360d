"""pix2pix on slices (planes, reassembly) and CycleGAN (pools, unpaired draws, training on unpaired data)."""

import json

import numpy as np
import pytest
import torch

from mri2pet_cli.models.cyclegan import ImagePool
from mri2pet_cli.models.pix2pix2d import PLANE_AXES, from_slices, to_slices
from mri2pet_cli.models.registry import build_model
from mri2pet_cli.training import TrainOptions, train
from tests.fake_data import write_fake_dataset


@pytest.fixture(scope="module")
def fake_data(tmp_path_factory):
    return write_fake_dataset(tmp_path_factory.mktemp("fake"))


@pytest.mark.parametrize("plane", sorted(PLANE_AXES))
def test_slices_reassemble_to_the_same_volume(plane):
    volume = torch.rand(2, 1, 6, 7, 5)
    axis = PLANE_AXES[plane]
    slices = to_slices(volume, axis)
    assert slices.shape[0] == 2 * volume.shape[2 + axis]
    torch.testing.assert_close(slices[volume.shape[2 + axis] + 1, 0], volume[1, 0].select(axis, 1))
    torch.testing.assert_close(from_slices(slices, 2, axis), volume)


def test_three_plane_model_is_the_mean_of_its_planes():
    model = build_model("pix2pix-2d", {"base": 4, "levels": 2, "planes": "all"}).eval()
    t1 = torch.rand(1, 1, 8, 12, 8)
    by_plane = [from_slices(model.generator(to_slices(t1, a)), 1, a) for a in PLANE_AXES.values()]
    torch.testing.assert_close(model(t1), sum(by_plane) / 3)
    axial = build_model("pix2pix-2d", {"base": 4, "levels": 2, "planes": "axial"}).eval()
    axial.generator.load_state_dict(model.generator.state_dict())
    torch.testing.assert_close(axial(t1), by_plane[0])


def test_synthesis_that_skips_slices_without_brain_gives_the_same_masked_volume():
    model = build_model("pix2pix-2d", {"base": 4, "levels": 2, "planes": "all"}).eval()
    t1 = torch.rand(1, 1, 8, 12, 8)
    mask = torch.zeros_like(t1)
    mask[..., 2:6, 3:10, 1:7] = 1
    pet, _ = model.synthesize(t1, mask)
    torch.testing.assert_close(pet, (model(t1) * mask).clamp_min(0.0), rtol=1e-5, atol=1e-6)
    assert float(pet[mask == 0].abs().max()) == 0.0


def test_training_views_are_brain_slices_of_every_plane():
    model = build_model("pix2pix-2d", {"base": 4, "levels": 2, "slices_per_volume": 3})
    mask = torch.zeros(2, 1, 8, 10, 6)
    mask[:, :, 2:6, 3:7, 1:5] = 1
    batch = {"t1": torch.rand_like(mask), "pet": torch.rand_like(mask), "mask": mask}
    views = model.training_views(batch)
    assert [tuple(v["t1"].shape[2:]) for v in views] == [(8, 10), (8, 6), (10, 6)]
    for view in views:
        assert view["t1"].shape[0] == 6 and (view["mask"].flatten(1).sum(1) > 0).all()


def test_image_pool_keeps_at_most_its_size_and_returns_the_batch_shape():
    torch.manual_seed(0)
    pool = ImagePool(3)
    seen = [pool.query(torch.full((2, 1, 2, 2, 2), float(i))) for i in range(10)]
    assert len(pool.images) == 3 and all(s.shape == (2, 1, 2, 2, 2) for s in seen)
    assert any((s[:, 0, 0, 0, 0] != i).any() for i, s in enumerate(seen))  # older fakes were shown


def test_unpaired_draws():
    rng = np.random.default_rng(0)
    independent = build_model("cyclegan-3d", {"pairing": "independent"})
    t1_order, pet_order = independent.draw_pairs(10, rng)
    assert sorted(t1_order) == sorted(pet_order) == list(range(10)) and (t1_order != pet_order).any()
    halves = build_model("cyclegan-3d", {"pairing": "disjoint-halves"})
    t1_order, pet_order = halves.draw_pairs(9, rng)
    assert set(t1_order) == set(range(4)) and set(pet_order) <= set(range(4, 9)) and len(pet_order) == 4
    assert build_model("cyclegan-3d", {"pairing": "paired"}).draw_pairs(5, rng)[1] is None


@pytest.mark.slow  # run with -m slow (kept out of the default suite for its time)
def test_cyclegan_trains_on_disjoint_halves_and_resumes(fake_data, tmp_path):
    config = {"base": 2, "blocks": 1, "discriminator_base": 4, "pool_size": 0, "pairing": "disjoint-halves"}
    common = dict(model="cyclegan-3d", data=str(fake_data), epochs=2, batch_size=2, lr=2e-4, model_config=config)
    straight = train(TrainOptions(run_dir=str(tmp_path / "a"), **common))
    assert {"g_cycle", "g_identity", "d_pet", "d_t1"} <= set(straight["history"][0])
    train(TrainOptions(run_dir=str(tmp_path / "b"), **{**common, "epochs": 1}))
    resumed = train(TrainOptions(run_dir=str(tmp_path / "b"), **common), resume=True)
    assert straight["history"][-1]["val_mae"] == pytest.approx(resumed["history"][-1]["val_mae"])
    split = json.loads((tmp_path / "a" / "split.json").read_text())
    assert len(split["train"]) == 6


def test_pix2pix_2d_trains_on_slices(fake_data, tmp_path):
    config = {"base": 4, "levels": 2, "dropout_levels": 1, "discriminator_base": 4, "slices_per_volume": 4}
    summary = train(
        TrainOptions(
            model="pix2pix-2d", data=str(fake_data), run_dir=str(tmp_path), epochs=1, lr=2e-4, model_config=config
        )
    )
    assert np.isfinite(summary["best"]["val_mae"]) and summary["history"][0]["g_l1"] > 0


def test_cycle_and_identity_losses_are_the_direct_computations():
    torch.manual_seed(0)
    model = build_model(
        "cyclegan-3d", {"base": 2, "blocks": 1, "discriminator_base": 4, "pool_size": 0, "identity_weight": 0.5}
    )
    t1, pet = torch.rand(1, 1, 16, 16, 16), 2 * torch.rand(1, 1, 16, 16, 16)
    t1_mask = (torch.rand_like(t1) > 0.3).float()
    pet_mask = (torch.rand_like(pet) > 0.3).float()
    losses = model.training_losses({"t1": t1, "mask": t1_mask, "pet": pet, "pet_mask": pet_mask}, "generator")

    def l1(a, b, m):
        return ((a - b).abs() * m).sum() / m.sum()

    fake_pet, fake_t1 = model.to_pet(t1) * t1_mask, model.to_t1(pet) * pet_mask
    cycle = l1(model.to_t1(fake_pet) * t1_mask, t1, t1_mask) + l1(model.to_pet(fake_t1) * pet_mask, pet, pet_mask)
    identity = l1(model.to_pet(pet) * pet_mask, pet, pet_mask) + l1(model.to_t1(t1) * t1_mask, t1, t1_mask)
    torch.testing.assert_close(losses["cycle"], 10 * cycle)
    torch.testing.assert_close(losses["identity"], 0.5 * 10 * identity)


def test_unpaired_training_says_whose_scans_it_used(fake_data, tmp_path, capsys):
    config = {"base": 2, "blocks": 1, "discriminator_base": 4, "pool_size": 0, "pairing": "disjoint-halves"}
    train(TrainOptions(model="cyclegan-3d", data=str(fake_data), run_dir=str(tmp_path), epochs=1, model_config=config))
    said = capsys.readouterr()
    assert "T1s of 3 subjects, PETs of 3, 0 subjects in both; 0 of 3 draws an own pair" in said.out + said.err
