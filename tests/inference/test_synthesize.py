"""`mri2pet synthesize` end to end on one simulated raw T1, with small random weights (about a minute)."""

import json
from pathlib import Path

import nibabel as nib
import numpy as np
import pytest
from typer.testing import CliRunner

from mri2pet_cli.cli import app
from mri2pet_cli.models.registry import build_model
from mri2pet_cli.models.weights import save_weights

runner = CliRunner()


@pytest.fixture(scope="module")
def weights(tmp_path_factory):
    import torch

    torch.manual_seed(0)
    folder = tmp_path_factory.mktemp("weights")
    files = save_weights(build_model("unet", {"base": 4, "levels": 2}), folder, {"version": "test"})
    return files.weights


@pytest.fixture(scope="module")
def synthesized(simulated_cohort, weights, tmp_path_factory):
    out = tmp_path_factory.mktemp("synth")
    t1 = simulated_cohort / "sub-001" / "anat" / "sub-001_T1w.nii.gz"
    pet = simulated_cohort / "sub-001" / "pet" / "sub-001_pet.nii.gz"
    args = ["synthesize", str(t1), "--weights", str(weights), "--reference-pet", str(pet), "-o", str(out)]
    return out, t1, runner.invoke(app, args), args


def test_writes_pet_in_native_and_mni_space_with_reports(synthesized):
    out, t1, result, _ = synthesized
    assert result.exit_code == 0, result.output
    folder = out / "sub-001"
    native = nib.load(str(folder / "sub-001_space-T1w_desc-unet_pet.nii.gz"))
    source = nib.load(str(t1))
    assert native.shape == source.shape
    np.testing.assert_allclose(native.affine, source.affine, atol=1e-5)
    assert int(native.header["sform_code"]) == int(source.header["sform_code"])
    mni = nib.load(str(folder / "sub-001_space-MNI152_desc-unet_pet.nii.gz"))
    assert mni.shape == (64, 80, 64)
    assert np.isfinite(mni.get_fdata()).all() and mni.get_fdata().max() > 0
    rows = (folder / "sub-001_desc-unet_roi.csv").read_text().splitlines()
    assert rows[0] == "label,region,mean_suvr,std_suvr,volume_mni_ml,volume_native_ml" and len(rows) == 117
    assert "Precuneus_L" in rows[67]
    description = native.header["descrip"].tobytes()
    assert b"mri2pet" in description and b"synthetic FDG-PET" in description
    page = (folder / "sub-001_desc-unet_report.html").read_text()
    assert "data:image/png;base64," in page and "Research use only" in page
    record = json.loads((folder / "sub-001_desc-unet_synthesis.json").read_text())
    assert Path(record["inputs"]["t1"]).is_absolute() and Path(record["model"]["weights"]).is_absolute()
    assert record["model"]["sha256"] and record["metrics_vs_reference"]["data_range"] > 0
    assert {"model", "preprocess.registration", "write"} <= set(record["timings_s"])


def test_refuses_to_overwrite_and_age_is_noted(synthesized):
    out, _, _, args = synthesized
    again = runner.invoke(app, [*args, "--age", "70"])
    assert again.exit_code == 1
    assert "does not use age" in again.output and "--overwrite" in again.output


def test_a_rerun_skips_what_is_finished(synthesized):
    out, _, _, args = synthesized
    record_path = out / "sub-001" / "sub-001_desc-unet_synthesis.json"
    record = json.loads(record_path.read_text())
    assert record["request"]["t1_sha256"] and "sub-001_desc-unet_roi.csv" in record["output_sha256"]
    stamp = record_path.stat().st_mtime_ns
    again = runner.invoke(app, args)
    assert again.exit_code == 0, again.output
    assert "skipped 1 (finished before), done 0" in again.output and record_path.stat().st_mtime_ns == stamp
    summary = json.loads((out / "batch_summary.json").read_text())
    assert summary["skipped"] == ["sub-001"] and summary["n_failed"] == 0


def test_from_a_preprocess_folder_a_killed_subject_is_redone_and_another_reference_rescales(
    preprocessed_run, weights, tmp_path
):
    from mri2pet_cli.inference.synthesis import SynthesisOptions, reused_preprocessing
    from mri2pet_cli.preprocessing.inputs import find_subjects

    _, prep, _ = preprocessed_run
    args = ["synthesize", str(prep), "--weights", str(weights), "-o", str(tmp_path / "a")]
    first = runner.invoke(app, args)
    assert first.exit_code == 0 and "preprocessing reused from" in first.output
    folder = tmp_path / "a" / "sub-001"
    record_path, csv = folder / "sub-001_desc-unet_synthesis.json", folder / "sub-001_desc-unet_roi.csv"
    record, original = json.loads(record_path.read_text()), csv.read_text()
    assert record["preprocessing_reused_from"] == str(prep.resolve())
    assert record["metrics_vs_reference"] is not None  # the PET named by the sidecar is the reference
    assert "preprocess.registration" not in record["timings_s"]
    (subject,) = find_subjects([prep])
    assert reused_preprocessing(subject, SynthesisOptions(qc="warn")) is None  # other options: done again
    csv.write_text("broken")  # a file that no longer matches its record ...
    record_path.unlink()  # ... and a run killed before its record: redone without --overwrite
    redo = runner.invoke(app, args)
    assert redo.exit_code == 0, redo.output
    assert "all 1 subjects written" in redo.output and csv.read_text() == original
    assert json.loads(record_path.read_text())["request"] == record["request"]

    pons_args = [*args[:-1], str(tmp_path / "b"), "--ref-region", "pons"]
    result = runner.invoke(app, pons_args)
    assert result.exit_code == 0, result.output
    name = "sub-001_space-MNI152_desc-unet_pet.nii.gz"
    cerebellar = nib.load(str(folder / name)).get_fdata()
    pons = nib.load(str(tmp_path / "b" / "sub-001" / name)).get_fdata()
    brain = cerebellar > 0
    ratio = pons[brain] / cerebellar[brain]  # one factor: the cerebellar-SUVR PET's mean in the pons
    assert ratio.std() < 1e-4 * ratio.mean() and abs(ratio.mean() - 1) > 0.01
    record = json.loads((tmp_path / "b" / "sub-001" / "sub-001_desc-unet_synthesis.json").read_text())
    assert record["reference_region"]["name"] == "pons" and record["units"].startswith("SUVR (pons reference")
    assert all("z" not in row for row in record["key_regions"])
    assert "reference: pons" in (tmp_path / "b" / "sub-001" / "sub-001_desc-unet_report.html").read_text()
    wrong = runner.invoke(app, [*args, "--ref-region", "pon"])
    assert wrong.exit_code == 2 and "did you mean 'pons'" in wrong.output


def test_ctrl_c_keeps_the_batch_summary_of_what_was_finished(tmp_path, weights, tiny_image, monkeypatch):
    import nibabel as nib

    import mri2pet_cli.inference.batch as batch

    inputs = tmp_path / "in"
    inputs.mkdir()
    for name in ("sub-a", "sub-b", "sub-c"):
        nib.save(tiny_image, inputs / f"{name}.nii.gz")

    def first_then_ctrl_c(subject, **kwargs):
        if subject.subject_id != "sub-a":
            raise KeyboardInterrupt
        return {"outputs": {}}

    monkeypatch.setattr(batch, "synthesize", first_then_ctrl_c)
    result = runner.invoke(app, ["synthesize", str(inputs), "--weights", str(weights), "-o", str(tmp_path / "o")])
    assert result.exit_code == 130 and "interrupted" in result.output
    summary = json.loads((tmp_path / "o" / "batch_summary.json").read_text())
    assert summary["interrupted"] and summary["done"] == ["sub-a"] and summary["not_run"] == ["sub-b", "sub-c"]


def test_bad_inputs(tmp_path, weights, tiny_path):
    unknown = runner.invoke(app, ["synthesize", str(tiny_path), "--model", "dual-glo"])
    assert unknown.exit_code == 2 and "unknown model 'dual-glo'" in unknown.output
    broken = tmp_path / "unet.pt"
    broken.write_bytes(weights.read_bytes()[:1000])
    (tmp_path / "unet.json").write_text(weights.with_suffix(".json").read_text())
    corrupt = runner.invoke(app, ["synthesize", str(tiny_path), "--weights", str(broken), "-o", str(tmp_path / "o")])
    assert corrupt.exit_code == 2 and "does not match its model card" in corrupt.output
    missing = runner.invoke(app, ["synthesize", str(tmp_path / "nope.nii.gz"), "--weights", str(weights)])
    assert missing.exit_code == 2 and "file not found" in missing.output
    old = runner.invoke(app, ["synthesize", str(tiny_path), "--weights", str(weights), "--age", "150"])
    assert old.exit_code == 2 and "outside 30-100" in old.output
    assert "Traceback" not in unknown.output + corrupt.output + missing.output + old.output


def test_dual_glow_age_series_with_uncertainty(simulated_cohort, tmp_path):
    import torch

    torch.manual_seed(0)
    model = build_model("dual-glow", {"levels": 2, "steps": 1, "hidden": 4, "relation_hidden": 4, "age_embedding": 4})
    with torch.no_grad():  # off the identity initialisation, so that age and samples matter
        for p in model.parameters():
            p.add_(0.05 * torch.randn_like(p))
    weights = save_weights(model, tmp_path / "w", {"version": "test"}).weights
    t1 = simulated_cohort / "sub-001" / "anat" / "sub-001_T1w.nii.gz"
    args = ["synthesize", str(t1), "--model", "dual-glow", "--weights", str(weights), "-o", str(tmp_path / "o")]
    result = runner.invoke(app, [*args, "--age", "60", "--age", "85", "--samples", "2"])
    assert result.exit_code == 0, result.output
    folder = tmp_path / "o" / "sub-001"
    young = nib.load(str(folder / "sub-001_age-60_space-MNI152_desc-dualglow_pet.nii.gz")).get_fdata()
    old = nib.load(str(folder / "sub-001_age-85_space-MNI152_desc-dualglow_pet.nii.gz")).get_fdata()
    assert not np.allclose(young, old)
    std = nib.load(str(folder / "sub-001_age-60_space-T1w_desc-dualglow_stat-std_pet.nii.gz"))
    assert std.get_fdata().max() > 0
    curve = (folder / "sub-001_desc-dualglow_agecurve.csv").read_text().splitlines()
    assert curve[0].startswith("age,posterior_cingulate") and len(curve) == 3
    assert (folder / "sub-001_desc-dualglow_agecurve.png").exists()
    # every file of the series is named, not only the last
    assert "age 60" in result.output and "age 85" in result.output and "agecurve.png" in result.output
    for name in (p.name for p in folder.iterdir()):  # BIDS: entity labels are alphanumeric
        for entity in name.split(".")[0].split("_")[1:-1]:
            assert entity.split("-")[1].isalnum(), name
    # weights without a measured age-only effect cannot say what this brain looks like at another age
    refused = runner.invoke(app, [*args, "--age", "85", "--scan-age", "70"])
    assert refused.exit_code != 0 and "no measured age-only effect" in refused.output


def _synthesize_twice(t1, tmp_path, *options: str) -> list[dict[str, bytes]]:
    """Run `synthesize` twice into two folders; the data (not the gzip stream) of every NIfTI written."""
    runs = []
    for name in ("first", "second"):
        out = tmp_path / name
        result = runner.invoke(app, ["synthesize", str(t1), "-o", str(out), *options])
        assert result.exit_code == 0, result.output
        runs.append({p.name: np.asanyarray(nib.load(str(p)).dataobj).tobytes() for p in out.rglob("*.nii.gz")})
    return runs


def test_same_input_same_bytes_unet(synthesized, tmp_path):
    out, _, _, args = synthesized  # the module's first run, against a second one into another folder
    result = runner.invoke(app, [a if a != str(out) else str(tmp_path) for a in args])
    assert result.exit_code == 0, result.output
    first, second = ({p.name: np.asanyarray(nib.load(str(p)).dataobj).tobytes() for p in d.rglob("*.nii.gz")}
                     for d in (out, tmp_path))
    assert first.keys() == second.keys() and len(first) >= 2
    for name in first:
        assert first[name] == second[name], name


@pytest.mark.slow
def test_same_input_same_bytes_dual_glow_samples(simulated_cohort, tmp_path):
    t1 = simulated_cohort / "sub-001" / "anat" / "sub-001_T1w.nii.gz"
    first, second = _synthesize_twice(t1, tmp_path, "--model", "dual-glow", "--samples", "2", "--seed", "3")
    assert any("std" in name for name in first)
    for name in first:
        assert first[name] == second[name], name
