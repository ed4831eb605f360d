"""DUAL-GLOW v6: the mean's age path is learned from the training pairs (T1, PET, age) alone, and with the T1
fixed the age moves the PET by that subject's own age-only map."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from mri2pet_cli.errors import Mri2PetError
from mri2pet_cli.models.age_effect import PairsAgeModel, blur
from mri2pet_cli.models.dualglow import DualGlow
from mri2pet_cli.models.weights import load_state
from mri2pet_cli.space.atlas import region_labels, template_maps
from mri2pet_cli.space.grid import default_grid

FRONTAL_DROP = 0.1  # SUVR per decade in frontal grey matter, anatomy fixed


def pairs(ages: list[float]) -> tuple[torch.Tensor, ...]:
    """Template brains (the MNI tissue maps, mildly varied) whose frontal grey-matter uptake falls with age."""
    grid = default_grid()
    maps = template_maps(grid)
    frontal = np.isin(maps.aal, region_labels("Frontal_Sup"))
    rng = np.random.default_rng(0)
    t1s, pets = [], []
    for age in ages:
        gm = maps.gm * rng.uniform(0.95, 1.05)
        t1s.append(0.25 * maps.csf + 0.6 * gm + 1.0 * maps.wm)
        uptake = 1.4 * gm + 0.9 * maps.wm + 0.05 * maps.csf - FRONTAL_DROP * (age - 70) / 10 * gm * frontal
        pets.append(blur(uptake[None].astype(np.float32), 6.0, grid.spacing)[0])
    mask = np.broadcast_to(maps.brain_mask, (len(ages), *grid.shape))

    def tensor(a):
        return torch.from_numpy(np.asarray(a, dtype=np.float32)[:, None] * mask[:, None])

    return tensor(t1s), tensor(pets), torch.from_numpy(mask[:, None].astype(np.float32)), maps


def v6(**options) -> DualGlow:
    torch.manual_seed(0)
    return DualGlow(
        levels=2, steps=1, hidden=4, relation_hidden=4, age_embedding=4, mean_network="unet", mean_base=4,
        mean_levels=2, pet_scale=1.0, mean_age="pairs", pet_fwhm_mm=6.0, **options,
    )  # fmt: skip


def test_v6_learns_the_age_path_from_pairs_and_moves_the_pet_by_the_age_only_map():
    ages = [58.0, 62, 66, 70, 74, 78, 82, 86, 90, 64]
    t1, pet, mask, maps = pairs(ages)
    model = v6()
    model.fit_data_statistics(t1, pet, mask, age=np.array(ages), diagnosis=["CN"] * len(ages))
    assert model.pairs_age.numel() > 0
    fitted_vector = model.pairs_age.clone()
    # fine-tuning: initial weights without a pairs path are loaded after the fit; the run's own fit wins
    initial = {k: v for k, v in v6().state_dict().items() if k != "pairs_age"}
    load_state(model, {"state_dict": initial}, "initial.pt", architecture="dual-glow", partial=True)
    model.before_training()
    torch.testing.assert_close(model.pairs_age, fitted_vector)
    fitted = PairsAgeModel.from_vector(model.pairs_age.numpy())
    assert fitted.effect.n_pairs == len(ages)
    model.eval()
    with torch.no_grad():
        model.mean_net.head.bias += 2.0  # keep the PET above the clamp at 0

    one, one_mask = t1[:1], mask[:1]
    at = {a: model.synthesize(one, one_mask, torch.tensor([a]), temperature=0.0)[0] for a in (60.0, 90.0)}
    frontal = torch.from_numpy(np.isin(maps.aal, region_labels("Frontal_Sup")))[None, None] & (one_mask > 0)
    change = float((at[90.0] - at[60.0])[frontal].mean()) / 3.0
    per_decade, _ = fitted.subject_terms(one[0, 0].numpy(), one_mask[0, 0].numpy(), maps.aal, 2.5)
    assert change == pytest.approx(float(per_decade[frontal[0, 0].numpy()].mean()), abs=1e-4)
    assert change < -0.02  # falls, as the pairs' frontal uptake does (blurred with its neighbours)

    # --scan-age S --age A: the flows conditioned on S, the mean moved by the same map from S to A
    older = model.synthesize(one, one_mask, torch.tensor([90.0]), temperature=0.0, scan_age=torch.tensor([60.0]))[0]
    same = model.synthesize(one, one_mask, torch.tensor([60.0]), temperature=0.0, scan_age=torch.tensor([60.0]))[0]
    assert float((older - same)[frontal].mean()) / 3.0 == pytest.approx(change, abs=1e-4)
    assert model.supports_scan_age()
    assert len(model._subject_terms_cache) == 1  # one T1 through four syntheses: segmented once
    model.synthesize(t1[1:2], mask[1:2], torch.tensor([70.0]), temperature=0.0)
    assert len(model._subject_terms_cache) == 2

    reloaded = v6()
    reloaded.load_state_dict(model.state_dict())
    torch.testing.assert_close(reloaded.pairs_age, model.pairs_age)

    # from v5 weights (a learned per-voxel age slope, no pairs path): this run's pairs replace both
    reloaded.mean_age_slope.data = torch.full((1, 1, *one.shape[2:]), 0.05)
    reloaded.pairs_age = torch.zeros(0, dtype=torch.float64)
    reloaded._pairs_fit = model.pairs_age.clone()
    reloaded.before_training()
    assert reloaded.mean_age_slope.numel() == 0
    torch.testing.assert_close(reloaded.pairs_age, model.pairs_age)


def test_v6_needs_ages_and_the_model_grid():
    t1, pet, mask, _ = pairs([70.0] * 3)
    few = v6()
    few.fit_data_statistics(t1, pet, mask, age=np.array([70.0, np.nan, 60.0]))
    with pytest.raises(Mri2PetError, match="2 training pairs have an age \\(10 needed\\)"):
        few.before_training()
    few.pairs_age = torch.ones(3, dtype=torch.float64)  # as initial weights carry one: kept
    few.before_training()
    assert few.pairs_age.tolist() == [1.0, 1.0, 1.0]
    small = torch.rand(10, 1, 8, 8, 8)
    with pytest.raises(Mri2PetError, match="model grid"):
        v6().fit_data_statistics(small, small, torch.ones_like(small), age=np.arange(10) + 60.0)
    with pytest.raises(ValueError, match="mean_network"):
        DualGlow(levels=2, steps=1, hidden=4, mean_age="pairs")


def test_every_card_choice_says_what_the_authors_release_does():
    from mri2pet_cli.models.dualglow import AUTHORS_RELEASE

    notes = DualGlow(levels=2, steps=1, hidden=4, mean_network="unet", mean_base=4, mean_levels=2).card_notes()
    assert set(notes["choices"]) <= set(AUTHORS_RELEASE)
    assert notes["authors_release"] == AUTHORS_RELEASE
