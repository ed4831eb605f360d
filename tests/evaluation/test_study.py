"""The study (issue 16): classification with nested CV, intervals, DeLong, trends, agreement, conventions, CLI."""

import json
from dataclasses import replace

import numpy as np
import pytest
from scipy.stats import norm
from sklearn.metrics import confusion_matrix, f1_score, matthews_corrcoef, roc_auc_score
from typer.testing import CliRunner

from mri2pet_cli.cli import app
from mri2pet_cli.evaluation import classification, conventions, label_efficiency, trends
from mri2pet_cli.evaluation.agreement import bland_altman, paired_model_tests
from mri2pet_cli.training import TrainOptions, export_run, train
from tests.fake_data import write_fake_dataset

runner = CliRunner()


def toy(n: int, separation: float, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    labels = np.repeat([0, 1], n // 2)
    features = rng.normal(size=(n, 10))
    features[:, 0] += separation * labels
    return features, labels


def scores_of(features, labels, **kwargs):
    groups = np.arange(len(labels))
    return classification.out_of_fold_scores(features, features, labels, groups, folds=4, repeats=2, **kwargs)


@pytest.mark.parametrize("kind", ("svm", "logistic"))  # the linear ones; trees: test_label_efficiency
def test_classifier_separates_a_separable_toy_and_not_noise(kind):
    features, labels = toy(60, separation=6.0)
    assert classification.binary_metrics(labels, scores_of(features, labels, kind=kind))["auc"] > 0.97
    noise, _ = toy(60, separation=0.0, seed=1)
    assert abs(classification.binary_metrics(labels, scores_of(noise, labels, kind=kind))["auc"] - 0.5) < 0.2


def test_folds_never_split_a_subject():
    groups = np.repeat(np.arange(20), 2)  # two rows (e.g. visits) per subject
    labels = np.repeat(np.repeat([0, 1], 10), 2)
    for folds in classification.outer_splits(labels, groups, folds=4, repeats=3, seed=0):
        for fit_rows, test_rows in folds:
            assert not set(groups[fit_rows]) & set(groups[test_rows])


def test_nested_selection_never_sees_the_test_fold(monkeypatch):
    features, labels = toy(40, separation=2.0)
    features[:, -1] = np.arange(40)  # a row id the spy reads back
    seen: list[tuple[set, set]] = []

    class Spy:
        def __init__(self, real):
            self.real = real

        def fit(self, x, y, groups=None):
            self.fitted = set(x[:, -1].astype(int))
            self.real.fit(x, y, groups=groups)
            return self

        def decision_function(self, x):
            seen.append((self.fitted, set(x[:, -1].astype(int))))
            return self.real.decision_function(x)

    make = classification.make_classifier
    monkeypatch.setattr(classification, "make_classifier", lambda *a, **k: Spy(make(*a, **k)))
    scores_of(features, labels)
    assert len(seen) == 8 and all(not fitted & tested for fitted, tested in seen)


def test_a_missing_region_is_filled_from_the_training_fold_only():
    features, labels = toy(40, separation=2.0)
    features[::3, 1] = np.nan  # a region outside some subjects' masks
    train, test = np.arange(0, 30), np.arange(30, 40)
    features[test, 1] = np.where(np.isnan(features[test, 1]), np.nan, 1e6)  # what a leak would average in
    model = classification.make_classifier("logistic", True, 0, inner_folds=1).fit(features[train], labels[train])
    assert model.named_steps["impute"].statistics_[1] == pytest.approx(np.nanmean(features[train, 1]))
    assert np.isfinite(model.decision_function(features[test])).all()
    assert np.isfinite(scores_of(features, labels)).all()


def test_metrics_equal_scikit_learn():
    from sklearn.metrics import balanced_accuracy_score

    rng = np.random.default_rng(3)
    labels = rng.integers(0, 2, 50)
    scores = np.round(rng.normal(size=50) + labels, 1)  # rounded: ties in the AUC too
    values = classification.binary_metrics(labels, scores)
    tn, fp, fn, tp = confusion_matrix(labels, scores > 0).ravel()
    assert values["sen"] == pytest.approx(tp / (tp + fn)) and values["spe"] == pytest.approx(tn / (tn + fp))
    assert values["acc"] == pytest.approx((tp + tn) / 50)
    assert values["auc"] == pytest.approx(roc_auc_score(labels, scores))
    assert values["f1"] == pytest.approx(f1_score(labels, scores > 0))
    assert values["mcc"] == pytest.approx(matthews_corrcoef(labels, scores > 0))
    labels = rng.integers(0, 3, 60)
    scores = rng.normal(size=(60, 3)) + np.eye(3)[labels]
    values, predicted = classification.multiclass_metrics(labels, scores), scores.argmax(axis=1)
    assert values["balanced_acc"] == pytest.approx(balanced_accuracy_score(labels, predicted))
    assert values["f1_macro"] == pytest.approx(f1_score(labels, predicted, average="macro"))
    assert values["mcc"] == pytest.approx(matthews_corrcoef(labels, predicted))
    expected = np.mean([roc_auc_score(labels == c, scores[:, c]) for c in range(3)])
    assert values["auc_macro"] == pytest.approx(expected)


def test_bootstrap_interval_covers_the_true_auc():
    true_auc = norm.cdf(1 / np.sqrt(2))  # positives N(1, 1) against negatives N(0, 1)
    rng = np.random.default_rng(0)
    covered = 0
    for draw in range(40):
        labels = np.repeat([0, 1], 40)
        scores = rng.normal(size=80) + labels
        interval = classification.bootstrap_intervals(
            labels, scores, lambda y, s: {"auc": classification.rank_auc(y == 1, s)}, samples=300, seed=draw
        )["auc"]
        covered += interval[0] <= true_auc <= interval[1]
    assert covered >= 34  # 95 % nominal; 34 of 40 allows for chance and the percentile method


def test_delong_matches_auc_and_bootstrap_spread():
    rng = np.random.default_rng(1)
    labels = np.repeat([0, 1], 60)
    a = rng.normal(size=120) + labels
    b = a + rng.normal(scale=1.0, size=120)
    result = classification.delong_test(labels, a, b)
    assert result["auc_a"] == pytest.approx(roc_auc_score(labels, a))
    assert result["auc_b"] == pytest.approx(roc_auc_score(labels, b))
    differences = []
    for _ in range(400):
        pick = rng.integers(0, 120, 120)
        differences.append(roc_auc_score(labels[pick], a[pick]) - roc_auc_score(labels[pick], b[pick]))
    assert result["se"] == pytest.approx(np.std(differences), rel=0.25)
    assert classification.delong_test(labels, a, a)["p"] == 1.0


def test_missing_pet_choice_is_stratified_and_seeded():
    labels = np.repeat([0, 1], [30, 10])
    missing = classification.subjects_without_pet(labels, 0.5, seed=4)
    assert missing[labels == 0].sum() == 15 and missing[labels == 1].sum() == 5
    assert np.array_equal(missing, classification.subjects_without_pet(labels, 0.5, seed=4))


def test_diagnosis_synonyms_and_task_needs():
    assert [classification.normalise_diagnosis(d) for d in ("hc", "LMCI", "Dementia", "n/a", "AD")] == [
        "CN",
        "MCI",
        "AD",
        None,
        "AD",
    ]
    reason = classification.task_subjects(classification.TASKS[0], ["CN", "AD", "AD"], folds=5)
    assert isinstance(reason, str) and "too few" in reason


def test_age_slope_recovers_a_known_trend():
    ages = np.linspace(55, 90, 40)
    values = 1.5 - 0.004 * ages + np.random.default_rng(0).normal(scale=0.01, size=40)
    slope = trends.slope_per_decade(ages, values)
    assert slope["low"] < -0.04 < slope["high"] and slope["slope"] == pytest.approx(-0.04, abs=0.01)
    series = [{"frontal": 1.0 - 0.003 * a, "ad_pattern": 1.0} for a in (60, 70, 80, 90)]
    assert trends.series_slopes((60, 70, 80, 90), series)["frontal"] == pytest.approx(-0.03)


def test_bland_altman_and_paired_tests():
    real = np.linspace(1.0, 2.0, 30)
    result = bland_altman(real, real + 0.1 + 0.05 * np.sin(np.arange(30)))
    assert result["bias"] == pytest.approx(0.1, abs=0.01) and result["low"] < result["bias"] < result["high"]
    rows = {"a": [{"mae": 0.1 + 0.01 * i, "ssim": 0.9} for i in range(10)]}
    rows["b"] = [{"mae": 0.2 + 0.01 * i, "ssim": 0.9} for i in range(10)]
    tests = {t["metric"]: t for t in paired_model_tests(rows)}
    assert tests["mae"]["p"] < 0.01 and tests["ssim"]["p"] == 1.0


def test_conventions_equal_scikit_image():
    from skimage.metrics import peak_signal_noise_ratio, structural_similarity

    rng = np.random.default_rng(2)
    real = rng.random((24, 20, 18)) * 3
    synthetic = real + rng.normal(scale=0.3, size=real.shape)
    mask = np.zeros(real.shape, bool)
    mask[4:20, 4:16, 3:15] = True
    options = dict(gaussian_weights=True, sigma=1.5, use_sample_covariance=False)
    ref, out = conventions.min_max(real), conventions.min_max(synthetic)
    box = conventions.whole_box_scores(real, synthetic)
    assert box["ssim"] == pytest.approx(structural_similarity(ref, out, data_range=1.0, **options), rel=1e-6)
    assert box["psnr"] == pytest.approx(peak_signal_noise_ratio(ref, out, data_range=1.0), rel=1e-6)
    ref, out = conventions.min_max(real, 255), conventions.min_max(synthetic, 255)
    expected = np.mean(
        [structural_similarity(ref[:, :, k], out[:, :, k], data_range=255, **options) for k in range(3, 15)]
    )
    assert conventions.axial_slice_ssim(real, synthetic, mask) == pytest.approx(expected, rel=1e-6)


@pytest.fixture(scope="module")
def diagnosed_data(tmp_path_factory):
    """16 tiny subjects, half AD with a lower PET in one half of the brain."""
    folder = write_fake_dataset(tmp_path_factory.mktemp("study"), n=16, seed=5)
    import nibabel as nib

    rows = ["participant_id\tage\tsex\tdiagnosis"]
    for i in range(16):
        sid, diagnosis = f"sub-{i + 1:03d}", ("CN", "AD")[i % 2]
        rows.append(f"{sid}\t{60 + 2 * i}\tF\t{diagnosis}")
        if diagnosis == "AD":
            path = next((folder / sid).glob("*pet*.nii.gz"))
            image = nib.load(str(path))
            data = image.get_fdata().astype(np.float32)
            data[:, 8:] *= 0.7
            nib.save(nib.Nifti1Image(data, image.affine, image.header), str(path))
    # one subject with a T1 and no PET: it joins the training of the complete-dataset rows
    from mri2pet_cli.preprocessing.storage import load_preprocessed, save_preprocessed

    donor = load_preprocessed(folder, "sub-002")
    t1_only = replace(donor, pet=None, pet_to_t1=None)
    save_preprocessed(t1_only, folder, "sub-017", sources={})
    rows.append("sub-017\t75\tM\tAD")
    (folder / "participants.tsv").write_text("\n".join(rows) + "\n")
    return folder


def test_study_through_the_cli_writes_html_csv_json(diagnosed_data, tmp_path, monkeypatch):
    options = dict(
        model="unet", data=str(diagnosed_data), epochs=1, batch_size=4, model_config={"base": 4, "levels": 2}
    )
    train(TrainOptions(run_dir=str(tmp_path / "run"), **options, seed=1))
    export_run(tmp_path / "run", tmp_path / "weights", device="cpu")
    monkeypatch.setenv("MRI2PET_WEIGHTS_DIR", str(tmp_path / "weights"))
    out = tmp_path / "study"
    args = ["evaluate", "--data", str(diagnosed_data), "--model", "unet", "-o", str(out), "--folds", "2"]
    args += ["--repeats", "1", "--curve-draws", "2"]
    result = runner.invoke(app, [*args, "--subjects", str(diagnosed_data / "participants.tsv")])
    assert result.exit_code == 0, result.output
    assert "study: CN vs AD AUC" in result.output
    study = json.loads((out / "study.json").read_text())
    rows = {(r["task"], r["features"], r["classifier"]) for r in study["classification"]}
    assert ("CN vs AD", "real PET", "linear SVM") in rows and ("CN vs AD", "synthetic PET: unet", "linear SVM") in rows
    assert ("CN vs AD", "trained on real, tested on synthetic: unet", "linear SVM") in rows
    real = next(r for r in study["classification"] if r["features"] == "real PET" and r["task"] == "CN vs AD")
    assert real["auc"] > 0.9  # the AD half-brain drop is easy to see in real PET
    assert any("MCI" in m for m in study["messages"])  # no MCI subjects: those tasks are skipped and said
    complete = {r["training"]: r for r in study["complete_dataset"]}
    assert {"paired subjects only", "missing PET filled by unet"} <= set(complete)
    assert complete["missing PET filled by unet"]["t1_only_subjects_in_training"] == 1
    for name in ("study.html", "study_classification.csv", "study_age_trends.csv", "study_conventions.csv"):
        assert (out / name).stat().st_size > 0
    assert "Targets" in (out / "study.html").read_text()
    curves = [r for r in study["label_efficiency"] if r["task"] == "CN vs AD"]
    assert {r["labelled_n"] for r in curves} == {"10", "all"}  # 16 subjects: n = 20 would leave too few
    names = {r["features"] for r in curves}
    assert {"real PET", "synthetic PET: unet", "T1 + synthetic PET: unet"} <= names
    assert set(label_efficiency.T1_RIVALS) <= names and len(names) == 6  # the three T1-only rivals
    assert {r["verdict"] for r in curves if "verdict" in r} == {"too few subjects to tell"}
    assert (out / "study_label_efficiency.png").stat().st_size > 0
    assert real["roc"]["fpr"][0] == 0 and real["roc"]["tpr"][-1] == 1  # the out-of-fold ROC curve
    assert (out / "study_roc.png").stat().st_size > 0 and "roc" not in (out / "study_classification.csv").read_text()
    z_map = study["ad_z_map"]
    assert (z_map["n_cn"], z_map["n_ad"]) == (8, 8) and len(z_map["z"]["real PET"]) == 116
    real_z = [z for z in z_map["z"]["real PET"] if z is not None]
    assert real_z and min(real_z) < -2  # the AD half-brain drop, against CN
    assert (out / "study_ad_z_map.png").stat().st_size > 0 and "Regional AD z-map" in (out / "study.html").read_text()
    cached = list((diagnosed_data / "mri2pet-synth").glob("unet-*/*.npy"))
    assert len(cached) == 17  # the T1-only subject's synthetic PET too
