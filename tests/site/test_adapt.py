"""`mri2pet adapt` on a tiny cohort: k-fold under 20 pairs, resumes after a kill without redoing finished runs,
and refuses to export weights that do not beat the base model without --force."""

import json

import pytest
from typer.testing import CliRunner

from mri2pet_cli.cli import app
from mri2pet_cli.models.registry import build_model, load_model
from mri2pet_cli.models.weights import save_weights
from mri2pet_cli.site import adapt as adapt_module
from mri2pet_cli.site.adapt import local_splits
from tests.fake_data import write_fake_dataset

runner = CliRunner()


@pytest.fixture(scope="module")
def lab(tmp_path_factory):
    import torch

    torch.manual_seed(0)
    root = tmp_path_factory.mktemp("lab")
    data = write_fake_dataset(root / "data", n=6, seed=3)
    base = save_weights(build_model("unet", {"base": 4, "levels": 2}), root / "base", {"version": "test"})
    return root, data, base


def test_local_splits_are_k_fold_under_20_pairs_and_one_hold_out_from_20():
    ids = [f"s{i:02d}" for i in range(12)]
    folds = local_splits(ids, 0)
    assert len(folds) == 5 and sorted(sum((f["validation"] for f in folds), [])) == ids
    assert all(not set(f["train"]) & set(f["validation"]) for f in folds)
    (holdout,) = local_splits([f"s{i:02d}" for i in range(30)], 0)
    assert len(holdout["validation"]) == 6 and len(holdout["train"]) == 24


def test_adapt_resumes_after_a_kill_and_exports_a_better_model(lab, monkeypatch):
    root, data, base = lab
    out = root / "adapted"
    args = ["adapt", "--model", "unet", "--weights", str(base.weights), "--data", str(data), "-o", str(out)]
    args += ["--epochs", "2", "--lr", "0.01"]
    calls, killed_once = [], []
    real_train = adapt_module.train

    def killed_on_the_fourth_run(options, **kwargs):
        calls.append(options.run_dir)
        if len(calls) == 4 and not killed_once:
            killed_once.append(True)
            raise KeyboardInterrupt
        return real_train(options, **kwargs)

    monkeypatch.setattr(adapt_module, "train", killed_on_the_fourth_run)
    killed = runner.invoke(app, args)
    assert killed.exit_code != 0 and not (out / "unet.pt").exists()
    first_calls = list(calls)
    calls.clear()
    result = runner.invoke(app, args)
    assert result.exit_code == 0, result.output
    assert first_calls[0] not in calls  # fold 1 finished before the kill: reused, not trained again
    card = json.loads((out / "unet.json").read_text())
    adaptation = card["adaptation"]
    assert adaptation["local_pairs"] == 6 and adaptation["base_sha256"] == json.loads(base.card.read_text())["sha256"]
    validation = adaptation["local_validation"]
    assert validation["scheme"].startswith("5-fold") and validation["adapted_mae"] < validation["base_mae"]
    assert "adapted unet on 6 local pairs" in result.output
    assert "test_metrics" not in card and "base_test_metrics" in adaptation  # the base's figures are not these
    model, loaded_card, _ = load_model("unet", str(out / "unet.pt"))  # what synthesize --weights does: hash-checked
    assert loaded_card["sha256"] == card["sha256"] and model.config() == {"base": 4, "levels": 2} | model.config()


def test_adapt_refuses_weights_no_better_than_the_base_without_force(lab):
    root, data, base = lab
    args = ["adapt", "--model", "unet", "--weights", str(base.weights), "--data", str(data), "--epochs", "1"]
    args += ["--lr", "0", "-o"]
    refused = runner.invoke(app, [*args, str(root / "same")])
    assert refused.exit_code != 0 and "did not beat the base unet" in refused.output
    assert not (root / "same" / "unet.pt").exists()
    forced = runner.invoke(app, [*args, str(root / "same"), "--force"])
    assert forced.exit_code == 0 and "NOT better" in forced.output and (root / "same" / "unet.pt").exists()


def test_adapt_defaults_to_the_models_own_learning_rate(lab, monkeypatch):
    from dataclasses import replace

    from mri2pet_cli.models import registry

    root, data, base = lab
    monkeypatch.setitem(registry._MODELS, "unet", replace(registry._MODELS["unet"], adapt_lr=1.25e-4))
    seen = []

    def stop_at_the_first_run(options, **kwargs):
        seen.append(options.lr)
        raise KeyboardInterrupt

    monkeypatch.setattr(adapt_module, "train", stop_at_the_first_run)
    args = ["adapt", "--model", "unet", "--weights", str(base.weights), "--data", str(data)]
    runner.invoke(app, args + ["-o", str(root / "default-lr")])
    runner.invoke(app, args + ["-o", str(root / "own-lr"), "--lr", "0.003"])
    assert seen == [1.25e-4, 0.003]
    # DUAL-GLOW's flows need the gentler rate (models/dualglow.py says why)
    assert registry.get_model_info("dual-glow").adapt_lr < registry.get_model_info("unet").adapt_lr
