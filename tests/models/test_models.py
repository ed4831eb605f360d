"""Registry, weights and cards, train / resume / export / evaluate on a tiny preprocessed dataset."""

import json

import numpy as np
import pytest
import torch
from typer.testing import CliRunner

from mri2pet_cli.cli import app
from mri2pet_cli.errors import Mri2PetError, UnknownNameError
from mri2pet_cli.inference.synthesis import check_age
from mri2pet_cli.models.base import Synthesizer
from mri2pet_cli.models.registry import build_model, get_model_info, load_model, model_names, register
from mri2pet_cli.models.weights import WeightsError, find_weights, save_weights, verify_all
from mri2pet_cli.training import TrainOptions, train
from tests.fake_data import write_fake_dataset

runner = CliRunner()
TINY_CONFIGS = {
    "unet": {"base": 4, "levels": 2},
    "pix2pix-3d": {"base": 4, "levels": 2, "dropout_levels": 1, "discriminator_base": 4},
    "gla-gan": {"width": 0.0625},
    "pix2pix-2d": {"base": 4, "levels": 2, "dropout_levels": 1, "discriminator_base": 4, "slices_per_volume": 4},
    "cyclegan-3d": {"base": 2, "blocks": 1, "discriminator_base": 4, "pool_size": 2},
}
TINY = {"base": 4, "levels": 2}


@pytest.fixture(scope="module")
def fake_data(tmp_path_factory):
    return write_fake_dataset(tmp_path_factory.mktemp("fake"))


def test_registry_knows_unet_and_suggests_close_names():
    assert "unet" in model_names()
    assert get_model_info("unet").training == "paired"
    with pytest.raises(UnknownNameError, match="did you mean 'unet'") as info:
        get_model_info("unte")
    assert "available:" in str(info.value)


def test_registering_a_name_twice_is_an_error():
    with pytest.raises(ValueError, match="twice"):
        register("unet", summary="again")(object)


@pytest.mark.parametrize("name", model_names())
def test_every_registered_model_runs_on_a_tiny_volume(name):
    model = build_model(name, TINY_CONFIGS.get(name))
    assert isinstance(model, Synthesizer)
    t1 = torch.rand(2, 1, 16, 16, 16)
    mask = torch.ones_like(t1)
    batch = {"t1": t1, "mask": mask, "pet": 2 * t1, "age": torch.tensor([60.0, 70.0])}
    optimizers = model.configure_optimizers(1e-3)
    before = [p.detach().clone() for p in model.parameters()]
    for step, indices in model.update_steps():  # every update (generator and discriminator) steps once
        losses = model.training_losses(batch, step) if step else model.training_losses(batch)
        for opt in optimizers:
            opt.zero_grad()
        losses["loss"].backward()
        assert torch.isfinite(losses["loss"])
        for i in indices or range(len(optimizers)):
            optimizers[i].step()
    moved = {id(p) for p, b in zip(model.parameters(), before) if not torch.equal(p, b)}
    for opt in optimizers:  # every optimiser (generator and discriminator) moved some of its parameters
        assert any(id(p) in moved for group in opt.param_groups for p in group["params"])
    model.eval()
    pet, _ = model.synthesize(t1, mask, torch.tensor([60.0, 70.0]))
    assert pet.shape == t1.shape and (pet >= 0).all()
    assert build_model(name, model.config()).config() == model.config()


@pytest.mark.parametrize("name", model_names())
def test_every_registered_model_synthesizes_under_bf16_autocast(name):
    """`--precision bf16` (autocast) with a mask that leaves slices empty, as real brain masks do."""
    from mri2pet_cli.models.runtime import predict

    model = build_model(name, TINY_CONFIGS.get(name)).eval()
    t1 = np.random.default_rng(0).random((1, 16, 16, 16), dtype=np.float32)
    mask = np.zeros_like(t1)
    mask[:, 4:12, 4:12, 4:12] = 1.0
    pet, _ = predict(model, t1, mask, np.array([70.0], dtype=np.float32), precision="bf16")
    assert pet.dtype == np.float32 and pet.shape == t1.shape
    assert np.isfinite(pet).all() and (pet[mask == 0] == 0).all()


def test_missing_and_out_of_range_age():
    @register("needs-age-test", summary="test model that needs age", conditioning="age", age_required=True)
    class NeedsAge(Synthesizer):
        pass

    with pytest.raises(Mri2PetError, match="needs the subject's age"):
        check_age(None, "needs-age-test", "sub-x")
    with pytest.raises(Mri2PetError, match="outside 30-100"):
        check_age(140.0, "unet", "sub-x")
    check_age(None, "unet", "sub-x")


def test_weights_round_trip_hash_and_corruption(tmp_path, monkeypatch):
    model = build_model("unet", TINY)
    files = save_weights(model, tmp_path, {"version": "test", "intended_use": "tests"})
    card = json.loads(files.card.read_text())
    assert card["sha256"] and card["size_bytes"] == files.weights.stat().st_size
    monkeypatch.setenv("MRI2PET_WEIGHTS_DIR", str(tmp_path))
    loaded, card2, _ = load_model("unet")
    for key, value in model.state_dict().items():
        torch.testing.assert_close(loaded.state_dict()[key], value)
    assert all(ok for name, ok, _ in verify_all() if name == "unet" and str(tmp_path) in _)
    with pytest.raises(WeightsError, match="already exists"):
        save_weights(model, tmp_path, {})
    raw = bytearray(files.weights.read_bytes())
    raw[len(raw) // 2] ^= 0xFF
    files.weights.write_bytes(bytes(raw))
    with pytest.raises(WeightsError, match="does not match its model card") as info:
        load_model("unet")
    assert "restore" in str(info.value)
    result = runner.invoke(app, ["models", "verify"])
    assert result.exit_code == 1 and "BAD" in result.output


def test_weights_that_are_not_a_checkpoint(tmp_path):
    path = tmp_path / "unet.pt"
    path.write_bytes(b"not a torch file")
    from mri2pet_cli.models.weights import sha256_of

    (tmp_path / "unet.json").write_text(json.dumps({"sha256": sha256_of(path)}))
    with pytest.raises(WeightsError, match="not a loadable weights file"):
        load_model("unet", path)
    with pytest.raises(WeightsError, match="not found"):
        find_weights("unet", tmp_path / "missing.pt")


def test_train_resume_matches_an_uninterrupted_run(fake_data, tmp_path):
    common = dict(model="unet", data=str(fake_data), epochs=2, batch_size=2, model_config=TINY, seed=3)
    straight = train(TrainOptions(run_dir=str(tmp_path / "a"), **common))
    train(TrainOptions(run_dir=str(tmp_path / "b"), **{**common, "epochs": 1}))
    with pytest.raises(Mri2PetError, match="--resume"):
        train(TrainOptions(run_dir=str(tmp_path / "b"), **common))
    resumed = train(TrainOptions(run_dir=str(tmp_path / "b"), **common), resume=True)
    assert len(resumed["history"]) == 2
    logged = [json.loads(line)["epoch"] for line in (tmp_path / "b" / "history.jsonl").read_text().splitlines()]
    assert logged == [1, 2] == [h["epoch"] for h in resumed["history"]]  # counted from 1, as the console says
    assert 1 <= resumed["best"]["epoch"] <= 2
    a = torch.load(tmp_path / "a" / "checkpoint.pt", weights_only=True)["state_dict"]
    b = torch.load(tmp_path / "b" / "checkpoint.pt", weights_only=True)["state_dict"]
    for key in a:
        torch.testing.assert_close(a[key], b[key])
    assert straight["history"][-1]["val_mae"] == pytest.approx(resumed["history"][-1]["val_mae"])
    split = json.loads((tmp_path / "a" / "split.json").read_text())
    assert sorted(sum(split.values(), [])) == [f"sub-{i:03d}" for i in range(1, 9)]
    train(TrainOptions(run_dir=str(tmp_path / "a"), **{**common, "epochs": 1}), overwrite=True)
    logged = [json.loads(line)["epoch"] for line in (tmp_path / "a" / "history.jsonl").read_text().splitlines()]
    assert logged == [1]  # a fresh start does not keep the earlier run's epochs
    assert not set(split["train"]) & set(split["test"])


def test_a_recorded_split_trains_without_the_test_subjects(fake_data, tmp_path):
    import shutil

    common = dict(model="unet", data=str(fake_data), epochs=1, batch_size=2, model_config=TINY, seed=3)
    train(TrainOptions(run_dir=str(tmp_path / "first"), **common))
    split_file = tmp_path / "first" / "split.json"
    split = json.loads(split_file.read_text())
    slim = tmp_path / "slim"  # a copy without the test subjects (e.g. what travels to a GPU machine)
    shutil.copytree(fake_data, slim)
    for subject in split["test"]:
        shutil.rmtree(next(slim.rglob(subject)))
    train(TrainOptions(run_dir=str(tmp_path / "second"), **{**common, "data": str(slim)}, split_file=str(split_file)))
    assert json.loads((tmp_path / "second" / "split.json").read_text()) == split
    for subject in split["train"][:1]:
        shutil.rmtree(next(slim.rglob(subject)))
    with pytest.raises(Mri2PetError, match="missing: " + split["train"][0]):
        options = {**common, "data": str(slim)}
        train(TrainOptions(run_dir=str(tmp_path / "third"), **options, split_file=str(split_file)))
    (tmp_path / "bad.json").write_text('{"train": []}')
    with pytest.raises(Mri2PetError, match="bad.json: a split file needs"):
        train(TrainOptions(run_dir=str(tmp_path / "fourth"), **common, split_file=str(tmp_path / "bad.json")))


def test_fine_tuning_starts_from_verified_weights(fake_data, tmp_path):
    from mri2pet_cli.training import export_run

    common = dict(model="unet", data=str(fake_data), epochs=1, batch_size=2, model_config=TINY)
    train(TrainOptions(run_dir=str(tmp_path / "first"), **common, seed=1))
    files = export_run(tmp_path / "first", tmp_path / "export", device="cpu")
    start = torch.load(tmp_path / "export" / "unet.pt", weights_only=True)["state_dict"]
    # a learning rate of 0 keeps the starting weights: the run began from them, not from a fresh init
    train(TrainOptions(run_dir=str(tmp_path / "tuned"), **{**common, "lr": 0.0}, seed=2, init_weights=files["weights"]))
    state = torch.load(tmp_path / "tuned" / "checkpoint.pt", weights_only=True)
    for key, value in start.items():
        torch.testing.assert_close(state["state_dict"][key], value)
    card = json.loads((tmp_path / "export" / "unet.json").read_text())
    assert state["initialised_from"]["sha256"] == card["sha256"]
    assert state["initialised_from"]["new_parameters"] == []
    (tmp_path / "export" / "unet.pt").write_bytes(b"corrupt")
    with pytest.raises(WeightsError, match="sha256"):
        train(TrainOptions(run_dir=str(tmp_path / "bad"), **common, init_weights=files["weights"]))


def test_cli_train_export_list_info_evaluate(fake_data, tmp_path, monkeypatch):
    run = tmp_path / "run"
    result = runner.invoke(
        app,
        [
            "train",
            "--model",
            "unet",
            "--data",
            str(fake_data),
            "-o",
            str(run),
            "--epochs",
            "2",
            "--config",
            json.dumps(TINY),
            "--export",
        ],
    )
    assert result.exit_code == 0, result.output
    assert "baseline: population" in result.output
    card = json.loads((run / "export" / "unet.json").read_text())
    from mri2pet_cli.models.weights import below_baseline

    assert ("warning:" in result.output) == (below_baseline(card) is not None)  # a tiny run says so when worse
    assert card["training_data"]["kind"].startswith("SIMULATED")
    assert set(card["test_metrics"]["models"]) == {"unet", "baseline: mean training PET", "baseline: population"}
    monkeypatch.setenv("MRI2PET_WEIGHTS_DIR", str(run / "export"))
    result = runner.invoke(app, ["models", "list"])
    assert result.exit_code == 0 and str(run / "export") in result.output.replace("\n", "")
    result = runner.invoke(app, ["models", "info", "unet"])
    assert result.exit_code == 0 and "intended use: Research only" in result.output and "sha256: " in result.output
    result = runner.invoke(app, ["models", "info", "unet", "--json"])
    assert result.exit_code == 0 and json.loads(result.output)["intended_use"].startswith("Research only")
    out = tmp_path / "eval"
    # fake_data is not a simulated cohort the card names: every paired subject is scored, baselines leave-one-out
    result = runner.invoke(app, ["evaluate", "--data", str(fake_data), "--model", "unet", "-o", str(out)])
    assert result.exit_code == 0, result.output
    scored = json.loads((out / "evaluation.json").read_text())
    everyone = sorted(p.name for p in fake_data.glob("sub-*"))
    assert scored["test_subjects"] == everyone and scored["baseline_source"].startswith("leave-one-out")
    assert set(scored["summary"]) == {"unet", "baseline: mean training PET", "baseline: population"}
    n = len(everyone)
    assert (out / "evaluation.png").exists() and (out / "evaluation.csv").read_text().count("\n") == 1 + 3 * n
    listed, train_list = tmp_path / "ids.txt", tmp_path / "train.tsv"
    listed.write_text(f"{everyone[0]}\nsub-999\n")
    train_list.write_text("participant_id\tage\n" + "".join(f"{s}\t70\n" for s in everyone[1:]))
    args = ["evaluate", "--data", str(fake_data), "--model", "unet", "-o", str(tmp_path / "e3")]
    result = runner.invoke(app, [*args, "--subjects", str(listed), "--train-subjects", str(train_list)])
    assert result.exit_code == 0, result.output
    scored = json.loads((tmp_path / "e3" / "evaluation.json").read_text())
    assert scored["test_subjects"] == [everyone[0]] and scored["missing_subjects"] == ["sub-999"]
    assert scored["n_train_for_baselines"] == n - 1 and "sub-999" in result.output
    again = runner.invoke(app, ["evaluate", "--data", str(fake_data), "--model", "unet", "-o", str(out)])
    assert again.exit_code == 2 and "--overwrite" in again.output
    bad = runner.invoke(app, ["evaluate", "--data", str(fake_data), "--model", "unet-x", "-o", str(tmp_path / "e2")])
    assert bad.exit_code == 2 and "did you mean 'unet'" in bad.output


def test_metrics_match_scikit_image():
    from skimage.metrics import peak_signal_noise_ratio, structural_similarity

    from mri2pet_cli.evaluation.metrics import image_metrics, psnr, ssim

    rng = np.random.default_rng(0)
    a = rng.random((20, 24, 22))
    b = a + 0.1 * rng.standard_normal(a.shape)
    expected = structural_similarity(
        a, b, gaussian_weights=True, sigma=1.5, use_sample_covariance=False, data_range=1.0
    )
    assert ssim(a, b, None, 1.0) == pytest.approx(expected, rel=1e-10)
    assert psnr(a, b, None, 1.0) == pytest.approx(peak_signal_noise_ratio(a, b, data_range=1.0), rel=1e-10)
    mask = np.ones(a.shape, bool)
    metrics = image_metrics(a, a, mask)
    assert metrics["mae"] == 0 and metrics["ssim"] == pytest.approx(1.0) and metrics["ms_ssim"] == pytest.approx(1.0)
    worse = image_metrics(a, a + 0.3 * rng.standard_normal(a.shape), mask)
    better = image_metrics(a, b, mask)
    assert worse["ssim"] < better["ssim"] and worse["psnr"] < better["psnr"] and worse["ms_ssim"] < better["ms_ssim"]


def test_shipped_weights_leave_out_what_only_training_uses(tmp_path):
    name = "pix2pix-3d"
    model = build_model(name, TINY_CONFIGS[name])
    files = save_weights(model, tmp_path, {"version": "test"})
    state = torch.load(files.weights, weights_only=True)["state_dict"]
    prefixes = model.training_only_prefixes()
    assert prefixes and not any(k.startswith(prefixes) for k in state)
    assert json.loads(files.card.read_text())["not_shipped"]["parameters"] == list(prefixes)
    loaded, _, _ = load_model(name, files.weights)
    t1 = torch.rand(1, 1, 16, 16, 16)
    torch.testing.assert_close(
        loaded.synthesize(t1, torch.ones_like(t1))[0], model.eval().synthesize(t1, torch.ones_like(t1))[0]
    )
    missing_generator = {k: v for k, v in state.items() if not k.startswith(next(iter(state)).split(".")[0])}
    with pytest.raises(WeightsError, match="missing"):
        from mri2pet_cli.models.weights import load_state

        load_state(build_model(name, TINY_CONFIGS[name]), {"state_dict": missing_generator}, "x.pt", architecture=name)


def test_cyclegan_ships_its_whole_game_and_still_reads_files_without_it(tmp_path):
    """A later run (--init-weights) continues the reverse generator and both judges, not one generator."""
    from mri2pet_cli.models.weights import load_state

    name = "cyclegan-3d"
    model = build_model(name, TINY_CONFIGS[name])
    files = save_weights(model, tmp_path, {"version": "test"})
    state = torch.load(files.weights, weights_only=True)["state_dict"]
    prefixes = model.training_only_prefixes()
    assert all(any(k.startswith(p) for k in state) for p in prefixes)
    card = json.loads(files.card.read_text())
    assert "not_shipped" not in card and card["training_parts_shipped"]["parameters"] == list(prefixes)
    resumed = build_model(name, TINY_CONFIGS[name])
    assert load_state(resumed, {"state_dict": state}, files.weights, architecture=name) == []
    torch.testing.assert_close(resumed.judge_t1.state_dict(), model.judge_t1.state_dict())
    generator_only = {k: v for k, v in state.items() if not k.startswith(prefixes)}  # a v2-era file
    fresh = build_model(name, TINY_CONFIGS[name])
    left = load_state(fresh, {"state_dict": generator_only}, "old.pt", architecture=name)
    assert left and all(k.startswith(prefixes) for k in left)


def test_cyclegan_skips_the_identity_passes_when_the_term_is_off():
    model = build_model("cyclegan-3d", {**TINY_CONFIGS["cyclegan-3d"], "identity_weight": 0.0})
    calls = []
    model.to_pet.register_forward_hook(lambda *_: calls.append("to_pet"))
    model.to_t1.register_forward_hook(lambda *_: calls.append("to_t1"))
    t1 = torch.rand(1, 1, 16, 16, 16)
    losses = model.training_losses({"t1": t1, "mask": torch.ones_like(t1), "pet": torch.rand_like(t1)})
    assert len(calls) == 4 and float(losses["identity"]) == 0.0  # translate both ways, then cycle back
    model.options["identity_weight"] = 0.5
    calls.clear()
    losses = model.training_losses({"t1": t1, "mask": torch.ones_like(t1), "pet": torch.rand_like(t1)})
    assert len(calls) == 6 and float(losses["identity"]) > 0


def test_a_card_below_its_baseline_gives_a_warning():
    from mri2pet_cli.models.weights import below_baseline

    def card(mae, ssim):
        metrics = {"mae": {"mean": mae}, "ssim": {"mean": ssim}}
        baseline = {"mae": {"mean": 0.135}, "ssim": {"mean": 0.85}}
        return {"name": "m", "test_metrics": {"models": {"m": metrics, "baseline: mean training PET": baseline}}}

    assert below_baseline(card(0.09, 0.91)) is None
    assert "MAE 0.263 vs 0.135, SSIM 0.359 vs 0.850" in below_baseline(card(0.263, 0.359))
    assert below_baseline({"name": "m"}) is None


def test_leave_one_out_baselines_equal_one_call_per_subject_on_the_others():
    from mri2pet_cli.evaluation import mean_training_baseline, population_baseline
    from mri2pet_cli.evaluation.run import leave_one_out
    from mri2pet_cli.preprocessing.cohort import Arrays, subset

    rng = np.random.default_rng(0)
    n, shape = 4, (12, 14, 12)
    mask = np.zeros((n, *shape), np.float32)
    mask[:, 2:10, 2:12, 2:10] = 1
    pet = (rng.random((n, *shape)) * mask).astype(np.float32)
    t1 = rng.random((n, *shape)).astype(np.float32)
    cohort = Arrays([f"sub-{i}" for i in range(n)], t1, mask, pet, np.full(n, 70.0))
    baselines = {"mean": mean_training_baseline, "population": population_baseline}
    got = leave_one_out(baselines, cohort)
    for name, baseline in baselines.items():
        expected = []
        for sid in cohort.ids:
            expected += baseline(subset(cohort, [s for s in cohort.ids if s != sid]), subset(cohort, [sid]))
        assert got[name] == expected


@pytest.mark.slow  # run with -m slow (kept out of the default suite for its time)
def test_dual_glow_v5_run_keeps_the_epoch_with_the_best_validation_likelihood(fake_data, tmp_path):
    config = {"levels": 2, "steps": 1, "hidden": 4, "relation_hidden": 4, "age_embedding": 4}
    config |= {"pet_conditioned_priors": True, "masked_likelihood": True}
    config |= {"log_std_limit": 3.0, "select_by": "val_nll"}
    common = dict(model="dual-glow", data=str(fake_data), epochs=3, batch_size=2, model_config=config, seed=1)
    summary = train(TrainOptions(run_dir=str(tmp_path / "run"), lr=3e-3, **common))
    scores = [h["val_score"] for h in summary["history"]]
    assert all(np.isfinite(scores))
    assert summary["best"]["epoch"] == 1 + int(np.argmin(scores))
    assert summary["best"]["val_score"] == min(scores)
    assert summary["best"]["val_mae"] == summary["history"][summary["best"]["epoch"] - 1]["val_mae"]
    plain = train(TrainOptions(run_dir=str(tmp_path / "mae"), **{**common, "model": "unet", "model_config": TINY}))
    assert "val_score" not in plain["history"][0] and "val_score" not in plain["best"]
