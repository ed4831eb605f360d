"""The shipped v3 split, run chains on the cards (a replayed first epoch matches the log), and the
retrain-everything command: resumable, skips what is done, exports by validation."""

import importlib.util
import json
import shlex
import sys
from pathlib import Path

import pytest
from typer.testing import CliRunner

from mri2pet_cli.cli import app
from mri2pet_cli.errors import Mri2PetError
from mri2pet_cli.preprocessing.cohort import read_split, split_subjects, write_split
from mri2pet_cli.training import TrainOptions, export_run, train
from tests.fake_data import write_fake_dataset

ROOT = Path(__file__).resolve().parents[2]
TINY = {"base": 4, "levels": 2}


@pytest.fixture(scope="module")
def fake_data(tmp_path_factory):
    return write_fake_dataset(tmp_path_factory.mktemp("fake"), n=10)


def load_retrain_all():
    spec = importlib.util.spec_from_file_location("retrain_all", ROOT / "benchmarks" / "retrain_all.py")
    module = importlib.util.module_from_spec(spec)
    sys.modules["retrain_all"] = module  # dataclasses look their module up there
    spec.loader.exec_module(module)
    return module


def test_the_shipped_v3_split_has_four_disjoint_parts_of_the_sizes_the_issues_need():
    path = ROOT / "benchmarks" / "splits" / "v3_n200_seed0.json"
    split = read_split(path)
    assert len(split["test"]) >= 30 and len(split["calibration"]) >= 20 and len(split["validation"]) >= 10
    everyone = sum(split.values(), [])
    assert len(everyone) == len(set(everyone)) == 200
    cohort = json.loads(path.read_text())["cohort"]
    assert (cohort["version"], cohort["n"], cohort["seed"]) == (3, 200, 0)
    # drawn by the library from the seed: the file can be re-made
    ids = [f"sub-{i:03d}" for i in range(1, 201)]
    assert split_subjects(ids, 0, 0.1, 0.2, 0.125) == split


def test_the_v4_split_holds_the_same_subjects_in_each_part_for_the_version_4_cohort():
    splits = ROOT / "benchmarks" / "splits"
    v3, v4 = read_split(splits / "v3_n200_seed0.json"), read_split(splits / "v4_n200_seed0.json")
    assert v3 == v4  # versions 3 and 4 draw the same subjects: one split serves both
    cohort = json.loads((splits / "v4_n200_seed0.json").read_text())["cohort"]
    assert (cohort["version"], cohort["n"], cohort["seed"]) == (4, 200, 0)


def test_a_calibration_part_leaves_test_and_validation_as_they_were():
    ids = [f"s{i}" for i in range(40)]
    plain, four = split_subjects(ids, 5, 0.1, 0.2), split_subjects(ids, 5, 0.1, 0.2, 0.25)
    assert "calibration" not in plain and len(four["calibration"]) == 10
    assert (four["test"], four["validation"]) == (plain["test"], plain["validation"])
    assert set(four["train"]) | set(four["calibration"]) == set(plain["train"])


def test_split_files_that_overlap_or_name_another_cohort_are_refused(tmp_path):
    bad = tmp_path / "overlap.json"
    write_split({"train": ["a", "b"], "validation": ["c"], "test": ["b"]}, bad)
    with pytest.raises(Mri2PetError, match="overlap.json: subject b is in both"):
        read_split(bad)
    cohort = tmp_path / "cohort"
    cohort.mkdir()
    description = {"mri2pet_simulation": {"version": 3, "n": 200, "seed": 1}}
    (cohort / "dataset_description.json").write_text(json.dumps(description))
    with pytest.raises(Mri2PetError, match="drawn for another simulated cohort .* seed 1 \\(split: 0\\)"):
        read_split(ROOT / "benchmarks" / "splits" / "v3_n200_seed0.json", cohort)


def test_the_card_lists_each_run_and_a_replayed_first_epoch_matches_the_log(fake_data, tmp_path):
    common = dict(model="unet", data=str(fake_data), batch_size=2, model_config=TINY, seed=4, device="cpu")
    train(TrainOptions(run_dir=str(tmp_path / "run"), epochs=1, **common))
    train(TrainOptions(run_dir=str(tmp_path / "run"), epochs=2, **common), resume=True)
    export_run(tmp_path / "run", tmp_path / "export", device="cpu")
    training = json.loads((tmp_path / "export" / "unet.json").read_text())["training"]
    assert [point["epoch"] for point in training["learning_curve"]] == [1, 2]
    runs = training["runs"]
    assert [(r["first_epoch"], r["last_epoch"]) for r in runs] == [(1, 1), (2, 2)]
    assert runs[1]["command"].endswith("--resume") and runs[0]["data_sha256"] == runs[1]["data_sha256"]
    assert runs[0]["start_weights_sha256"] is None
    words = shlex.split(runs[0]["command"])
    assert words[:2] == ["mri2pet", "train"]
    words[words.index("-o") + 1] = str(tmp_path / "replay")
    result = CliRunner().invoke(app, [*words[1:], "--device", "cpu"])
    assert result.exit_code == 0, result.output
    logged = json.loads((tmp_path / "run" / "history.jsonl").read_text().splitlines()[0])
    replayed = json.loads((tmp_path / "replay" / "history.jsonl").read_text().splitlines()[0])
    assert replayed["val_mae"] == pytest.approx(logged["val_mae"], rel=1e-6)
    assert replayed["loss"] == pytest.approx(logged["loss"], rel=1e-6)


def test_retrain_all_trains_exports_and_skips_what_is_done(fake_data, tmp_path, monkeypatch):
    retrain = load_retrain_all()
    monkeypatch.setitem(retrain.RECIPES, "unet", retrain.Recipe(1, 1e-3, 2, 1, 3e-4, TINY))
    split = tmp_path / "split.json"
    ids = [f"sub-{i:03d}" for i in range(1, 11)]
    write_split(split_subjects(ids, 0, 0.2, 0.2, 0.2), split)
    args = ["--cohort", str(fake_data), "--runs", str(tmp_path / "runs"), "--models", "unet", "--split", str(split)]
    args += ["--device", "cpu", "--weights-dir", str(tmp_path / "no-weights")]
    assert retrain.main(args) == 0
    summary = json.loads((tmp_path / "runs" / "retrain_summary.json").read_text())
    assert summary["unet"]["status"] == "trained" and summary["unet"]["validation_mae_shipped"] is None
    card = json.loads((tmp_path / "runs" / "unet" / "export" / "unet.json").read_text())
    assert card["training_data"]["split_sizes"] == {"test": 2, "validation": 2, "calibration": 2, "train": 4}
    assert retrain.main(args) == 0  # a finished model is not trained again
    assert json.loads((tmp_path / "runs" / "retrain_summary.json").read_text())["unet"]["status"] == "done before"
    export = tmp_path / "runs" / "unet" / "export"
    (export / "unet.json").unlink()  # killed between the weights and the card: the half export goes ...
    assert retrain.exported(tmp_path / "runs" / "unet", "unet") is None and not (export / "unet.pt").exists()
    options, recipe = retrain.parse_args(args), retrain.RECIPES["unet"]
    command = retrain.train_command("unet", options, tmp_path / "runs" / "unet", recipe, 1, False)
    assert command[-1] == "--resume"  # ... and the next run resumes the checkpoint and exports again


def test_replay_check_swaps_only_the_paths_it_is_given_and_reads_a_difference():
    spec = importlib.util.spec_from_file_location("replay_check", ROOT / "benchmarks" / "replay_check.py")
    replay = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(replay)
    command = "mri2pet train --model unet --data runs/a -o runs/b --epochs 2 --init-weights weights/unet.pt"
    words = replay.replay_words(command, Path("/tmp/out"), None, "old/unet.pt")
    assert words[words.index("-o") + 1] == "/tmp/out" and words[words.index("--data") + 1] == "runs/a"
    assert words[words.index("--init-weights") + 1] == "old/unet.pt" and words[words.index("--epochs") + 1] == "2"
    logged = [{"epoch": 1, "loss": 0.5, "val_mae": 0.1}, {"epoch": 2, "loss": 0.4, "val_mae": 0.09}]
    rows = replay.compare(logged, [{"epoch": 1, "loss": 0.5, "val_mae": 0.1000001}])
    assert len(rows) == 1 and rows[0]["loss"]["difference"] == 0.0
    assert rows[0]["val_mae"]["difference"] == pytest.approx(1e-7)


def test_a_recipe_sets_the_run_precision_and_the_table_reads_it(tmp_path):
    """bf16 where the recipe's note says it is safe (cyclegan-3d); the train default (auto) elsewhere."""
    retrain = load_retrain_all()
    recipes = retrain.read_recipes()
    assert recipes["cyclegan-3d"].precision == "bf16" and recipes["unet"].precision == "auto"
    options = retrain.parse_args(["--cohort", str(tmp_path), "--runs", str(tmp_path / "runs")])
    for model, precision in (("cyclegan-3d", "bf16"), ("unet", "auto")):
        command = retrain.train_command(model, options, tmp_path / model, recipes[model], 1, False)
        assert command[command.index("--precision") + 1] == precision
