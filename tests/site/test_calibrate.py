"""`mri2pet calibrate` writes per-region intervals (and a familiarity reference from a split's training part);
`synthesize` shows them, names the calibration and the input's familiarity, and refuses another model's file."""

import json
import shutil

import numpy as np
import pytest
from typer.testing import CliRunner

from mri2pet_cli.cli import app
from mri2pet_cli.models.registry import build_model
from mri2pet_cli.models.weights import save_weights
from mri2pet_cli.preprocessing.cohort import write_split
from mri2pet_cli.reporting.key_regions import cn_reference, key_region_rows
from tests.fake_data import write_fake_dataset

runner = CliRunner()


@pytest.fixture(scope="module")
def calibrated(tmp_path_factory):
    import torch

    torch.manual_seed(0)
    root = tmp_path_factory.mktemp("calibrate")
    data = write_fake_dataset(root / "data", n=20)
    weights = save_weights(build_model("unet", {"base": 4, "levels": 2}), root / "weights", {"version": "test"})
    ids = [f"sub-{i:03d}" for i in range(1, 21)]
    write_split({"train": ids[:10], "validation": [], "test": [], "calibration": ids[10:]}, root / "split.json")
    out = root / "weights" / "unet.calibration.json"
    args = ["calibrate", "--model", "unet", "--weights", str(weights.weights), "--data", str(data)]
    result = runner.invoke(app, [*args, "--split", str(root / "split.json"), "-o", str(out)])
    return root, data, weights, out, result, args


def test_calibrate_writes_intervals_and_the_familiarity_reference(calibrated):
    root, _, weights, out, result, _ = calibrated
    assert result.exit_code == 0, result.output
    calibration = json.loads(out.read_text())
    assert calibration["n_subjects"] == 10 and calibration["subjects"][0] == "sub-011"
    assert calibration["weights_sha256"] == json.loads(weights.card.read_text())["sha256"]
    widths = calibration["half_width_suvr"]
    key_regions = [k for k in widths if not k.isdigit()]  # the tiny sphere holds only the central ones
    assert key_regions and len(widths) > 20 and all(np.isfinite(v) and v > 0 for v in widths.values())
    familiarity = json.loads((root / "weights" / "unet.familiarity.json").read_text())
    assert familiarity["n_subjects"] == 10 and familiarity["thresholds"]["outside"] > 0
    assert "calibrated unet on 10 subjects" in result.output


def test_too_few_pairs_and_an_existing_file_are_refused(calibrated, tmp_path):
    _, _, _, out, _, args = calibrated
    few = write_fake_dataset(tmp_path / "few", n=6)
    result = runner.invoke(app, ["calibrate", *args[1:-1], str(few), "-o", str(tmp_path / "c.json")])
    assert result.exit_code != 0 and "6 paired subjects are too few to calibrate" in result.output
    again = runner.invoke(app, [*args, "-o", str(out)])
    assert again.exit_code != 0 and "--overwrite" in again.output


def test_synthesize_shows_the_intervals_and_the_familiarity(calibrated, preprocessed_run, tmp_path):
    root, _, weights, out, _, _ = calibrated
    _, prep, _ = preprocessed_run
    args = ["synthesize", str(prep), "--weights", str(weights.weights), "-o", str(tmp_path / "a")]
    result = runner.invoke(app, args)
    assert result.exit_code == 0, result.output
    folder = tmp_path / "a" / "sub-001"
    record = json.loads((folder / "sub-001_desc-unet_synthesis.json").read_text())
    assert record["calibration"]["file"] == str(out.resolve()) and record["calibration"]["n_subjects"] == 10
    assert record["familiarity"]["verdict"] in ("typical", "unusual", "outside")
    widths = json.loads(out.read_text())["half_width_suvr"]
    shown = [r for r in record["key_regions"] if "interval90_suvr" in r]
    assert shown and all(r["interval90_suvr"] == pytest.approx(widths[r["region"]]) for r in shown)
    header = (folder / "sub-001_desc-unet_roi.csv").read_text().splitlines()[0]
    assert header.endswith(",interval90_suvr")
    page = (folder / "sub-001_desc-unet_report.html").read_text()
    assert "90 % interval" in page and "Familiarity of the input" in page

    other = tmp_path / "other"
    shutil.copytree(root / "weights", other)
    calibration = json.loads(out.read_text()) | {"weights_sha256": "0" * 64}
    (other / "lab.json").write_text(json.dumps(calibration))
    wrong = runner.invoke(app, [*args[:-1], str(tmp_path / "b"), "--calibration", str(other / "lab.json")])
    assert wrong.exit_code != 0 and "made for other weights" in wrong.output


def test_z_scores_are_age_matched_withheld_outside_the_norms_and_for_unfamiliar_inputs():
    rng = np.random.default_rng(0)
    ages = rng.uniform(55, 90, 40)
    means = [{"frontal": 1.5 - 0.004 * (a - 70) + rng.normal(0, 0.02)} for a in ages]
    card = {"cn_reference": cn_reference(means, "test norms", list(ages))}
    fit = card["cn_reference"]["age_model"]
    assert fit["regions"]["frontal"]["slope_per_year"] == pytest.approx(-0.004, abs=0.0015)
    old = key_region_rows({"frontal": 1.40}, card, age=88.0, half_widths={"frontal": 0.05})[0]
    young = key_region_rows({"frontal": 1.40}, card, age=60.0)[0]
    assert old["z"] > young["z"] and old["norm"] == "age-matched (age 88)"
    assert old["z_interval90"][0] < old["z"] < old["z_interval90"][1]
    child = key_region_rows({"frontal": 1.40}, card, age=28.0)[0]
    assert child["z"] is None and "outside the norms' ages" in child["z_note"]
    unknown = key_region_rows({"frontal": 1.40}, card)[0]
    assert unknown["z"] is not None and "no age given" in unknown["norm"]
    strange = key_region_rows({"frontal": 1.40}, card, age=70.0, familiarity={"verdict": "outside"})[0]
    assert strange["z"] is None and "outside the model's training" in strange["z_note"]


def test_models_verify_checks_that_a_calibration_fits_the_weights_beside_it(calibrated, tmp_path, monkeypatch):
    from mri2pet_cli.models.weights import WEIGHTS_ENV, verify_all

    root, _, _, out, _, _ = calibrated
    folder = tmp_path / "weights"
    shutil.copytree(root / "weights", folder)
    monkeypatch.setenv(WEIGHTS_ENV, str(folder))

    def here() -> dict[str, bool]:  # the rows of this folder (the repository's weights are listed too)
        return {name: ok for name, ok, message in verify_all() if str(folder) in message}

    assert here() == {"unet": True, "unet.calibration": True}  # the familiarity reference is no card
    stale = json.loads(out.read_text()) | {"weights_sha256": "f" * 64}
    (folder / "unet.calibration.json").write_text(json.dumps(stale))
    assert here() == {"unet": True, "unet.calibration": False}
