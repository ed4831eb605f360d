"""The seeds' study on a paired cohort: the questions of classification, trends, agreement and
conventions, asked in order of real vs each model's synthetic PET (what ``api.evaluate`` runs)."""

from __future__ import annotations

import contextlib
import functools
import time
import warnings
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from mri2pet_cli.console import say, tracked
from mri2pet_cli.evaluation import agreement, classification, conventions, features, label_efficiency, trends
from mri2pet_cli.preprocessing.cohort import Arrays
from mri2pet_cli.reporting.key_regions import key_region_means
from mri2pet_cli.space.grid import ModelGrid

COUNTERFACTUAL_AGES = (60.0, 70.0, 80.0, 90.0)
CURVE_TASKS = (classification.TASKS[0], classification.Task("CN vs MCI", ("CN", "MCI")))


@dataclass
class StudySettings:
    folds: int = 5
    repeats: int = 5
    missing_pet_fraction: float = 0.5
    seed: int = 0
    jobs: int = 1  # outer folds fitted at once
    curve_draws: int = 10  # label-efficiency curves: random draws of the labelled subjects at each n


@dataclass
class StudyInputs:
    """One cohort's model-grid arrays, labels and every model's synthetic PET (same subject order)."""

    arrays: Arrays
    grid: ModelGrid
    labels: np.ndarray  # AAL on the model grid
    diagnoses: list[str | None]
    synthetic: dict[str, np.ndarray]
    image_scores: dict[str, list[dict]]  # per model: per-subject rows of scoring.score
    age_models: dict[str, object] = field(default_factory=dict)  # age-conditioned models, for the series
    simulated_cohort: Path | None = None  # a cohort written by `simulate`, whose truth files are read
    t1_only: Arrays | None = None  # subjects with a T1 and no PET: training rows of the complete-dataset experiment
    t1_only_diagnoses: list[str | None] = field(default_factory=list)
    t1_only_synthetic: dict[str, np.ndarray] = field(default_factory=dict)


def regional_matrix(volumes: np.ndarray, arrays: Arrays, labels: np.ndarray) -> np.ndarray:
    return np.stack([features.regional_values(v, labels, arrays.mask[i]) for i, v in enumerate(volumes)])


def feature_sets(inputs: StudyInputs) -> dict[str, np.ndarray]:
    """Every feature matrix the classification rows use: 'mri', 'real', and each model's name."""
    arrays, labels = inputs.arrays, inputs.labels
    sets = {"real": regional_matrix(arrays.pet, arrays, labels)}
    sets |= {name: regional_matrix(pet, arrays, labels) for name, pet in inputs.synthetic.items()}
    with tracked("grey-matter and CSF features", len(arrays.ids)) as advance:
        tissue, large = [], []
        for i, subject in enumerate(arrays.ids):
            tissue.append(features.t1_tissue_features(arrays.t1[i], arrays.mask[i], labels))
            large.append(features.t1_large_region_features(arrays.t1[i], arrays.mask[i], labels))
            advance(subject)
    sets["t1 tissue"] = np.stack(tissue)  # regional grey matter, then regional CSF
    sets["t1 large regions"] = np.stack(large)
    sets["mri"] = sets["t1 tissue"][:, : len(features.region_order())]
    if inputs.t1_only is not None:  # their synthetic PETs, as extra sets "t1-only:<model>"
        for name, pet in inputs.t1_only_synthetic.items():
            sets[f"t1-only:{name}"] = regional_matrix(pet, inputs.t1_only, labels)
    return sets  # NaN where a region lies outside a subject's mask: each classifier fills it inside its folds


def classification_rows(
    sets: dict[str, np.ndarray],
    models: list[str],
    diagnoses: list[str | None],
    settings: StudySettings,
    t1_only_diagnoses: list[str | None] = (),
) -> tuple[list[dict], list[dict], list[dict], list[str]]:
    """(rows, paired AUC tests, complete-dataset rows, messages) for every task the data allow.

    CN vs AD gets every row (MRI + PET, train real / test synthetic, logistic check, paired tests and
    the complete-dataset experiment); MCI vs AD and CN vs MCI vs AD the three main feature sets.
    """
    rows, tests, complete, messages = [], [], [], []
    groups_all = np.arange(len(diagnoses))
    for task in classification.TASKS:
        chosen = classification.task_subjects(task, diagnoses, settings.folds)
        if isinstance(chosen, str):
            messages.append(chosen)
            continue
        index, labels = chosen
        groups = groups_all[index]

        run = functools.partial(_task_scores, index=index, labels=labels, groups=groups, settings=settings)
        primary = task == classification.TASKS[0]  # CN vs AD: every row; the other tasks: the main ones
        specs: dict[str, tuple] = {"MRI only": (sets["mri"], None), "real PET": (sets["real"], None)}
        if primary:
            specs["MRI + real PET"] = (np.hstack([sets["mri"], sets["real"]]), None)
        for name in models:
            specs[f"synthetic PET: {name}"] = (sets[name], None)
            if primary:
                specs[f"MRI + synthetic PET: {name}"] = (np.hstack([sets["mri"], sets[name]]), None)
                specs[f"trained on real, tested on synthetic: {name}"] = (sets["real"], sets[name])
        if primary:  # the check classifier, on the rows the targets are about
            specs |= {f"{row} (logistic)": (fit, None, "logistic") for row, (fit, _) in list(specs.items())[:2]}
            specs |= {f"synthetic PET: {m} (logistic)": (sets[m], None, "logistic") for m in models}
        scores: dict[str, np.ndarray] = {}
        with tracked(f"classification {task.name}", len(specs)) as advance:
            for row_name, (fit, evaluate, *kind) in specs.items():
                scores[row_name] = run(fit, evaluate, kind=kind[0] if kind else "svm")
                classifier = "logistic regression" if kind else "linear SVM"
                name = row_name.removesuffix(" (logistic)")
                rows.append(_row(task, name, classifier, labels, scores[row_name], settings.seed))
                advance(row_name)
        if primary:
            tests += _auc_tests(task, labels, scores, models)
            extra_labels = [task.classes.index(d) if d in task.classes else -1 for d in t1_only_diagnoses]
            complete += _complete_dataset(task, index, labels, groups, sets, models, settings, extra_labels)
    return rows, tests, complete, messages


def _task_scores(
    fit: np.ndarray,
    evaluate: np.ndarray | None = None,
    *,
    index: np.ndarray,
    labels: np.ndarray,
    groups: np.ndarray,
    settings: StudySettings,
    kind: str = "svm",
) -> np.ndarray:
    """Out-of-fold scores of one feature set (``evaluate``: other features for the test folds)."""
    return classification.out_of_fold_scores(
        fit[index],
        (fit if evaluate is None else evaluate)[index],
        labels,
        groups,
        kind=kind,
        folds=settings.folds,
        repeats=settings.repeats,
        seed=settings.seed,
        jobs=settings.jobs,
    )


def _row(task, row_name: str, classifier: str, labels: np.ndarray, scores: np.ndarray, seed: int) -> dict:
    values = classification.metrics_of(labels, scores)
    intervals = classification.bootstrap_intervals(labels, scores, seed=seed)
    roc = {}
    if np.ndim(scores) == 1:  # binary: the out-of-fold ROC curve (the CSV leaves it out, the JSON and figure keep it)
        from sklearn.metrics import roc_curve

        fpr, tpr, _ = roc_curve(labels, scores)
        roc = {"roc": {"fpr": np.round(fpr, 4).tolist(), "tpr": np.round(tpr, 4).tolist()}}
    return roc | {
        "task": task.name,
        "features": row_name,
        "classifier": classifier,
        "n": len(labels),
        "class_counts": {c: int(np.sum(labels == k)) for k, c in enumerate(task.classes)},
        **{key: values[key] for key in values},
        **{f"{key}_low": intervals[key][0] for key in values},
        **{f"{key}_high": intervals[key][1] for key in values},
    }


def _auc_tests(task, labels: np.ndarray, scores: dict[str, np.ndarray], models: list[str]) -> list[dict]:
    pairs = []
    for name in models:
        pairs.append(("real PET", f"synthetic PET: {name}"))
        pairs.append(("MRI + synthetic PET: " + name, "MRI only"))
    tests = []
    for a, b in pairs:
        tests.append({"task": task.name, "a": a, "b": b, **classification.delong_test(labels, scores[a], scores[b])})
    return tests


def ad_z_map(sets: dict[str, np.ndarray], models: list[str], diagnoses: list, grid: ModelGrid) -> dict:
    """Each AAL region's mean z of the AD subjects against the CN subjects, real PET and each model's synthetic
    PET (each against CN of its own source), and how well each model's regional z pattern follows the real one."""
    dx = np.array([d or "" for d in diagnoses])
    normal, disease = dx == "CN", dx == "AD"
    if normal.sum() < 3 or disease.sum() < 1:
        return {}
    maps = {}
    for source in ("real", *models):
        values = sets[source]
        with warnings.catch_warnings():  # regions outside every mask stay NaN
            warnings.simplefilter("ignore", RuntimeWarning)
            mean, sd = np.nanmean(values[normal], axis=0), np.nanstd(values[normal], axis=0, ddof=1)
            z = np.nanmean((values[disease] - mean) / np.where(sd > 0, sd, np.nan), axis=0)
        maps["real PET" if source == "real" else source] = z
    real = maps["real PET"]
    agreement_with_real = {}
    for name in models:
        ok = np.isfinite(real) & np.isfinite(maps[name])
        agreement_with_real[name] = float(np.corrcoef(real[ok], maps[name][ok])[0, 1]) if ok.sum() > 2 else None
    return {
        "n_cn": int(normal.sum()),
        "n_ad": int(disease.sum()),
        "regions": features.region_order(),
        "z": {k: [None if not np.isfinite(v) else float(v) for v in z] for k, z in maps.items()},
        "pearson_r_with_real": agreement_with_real,
        "grid": grid.describe(),
    }


def label_efficiency_rows(
    sets: dict[str, np.ndarray], models: list[str], inputs: StudyInputs, settings: StudySettings
) -> tuple[list[dict], list[str]]:
    """Label-efficiency curves (CN vs AD, CN vs MCI): real PET, the T1-only rivals (with age), each model's
    synthetic PET and T1 + synthetic, trained on 10-80 labelled subjects and on all."""
    rows, messages = [], []
    age = np.asarray(inputs.arrays.age, dtype=np.float64)
    for task in CURVE_TASKS:
        chosen = classification.task_subjects(task, inputs.diagnoses, settings.folds)
        if isinstance(chosen, str):
            messages.append(f"label-efficiency curves: {chosen}")
            continue
        index, labels = chosen
        rivals = label_efficiency.rival_sets(sets["t1 tissue"][index], age[index], sets["t1 large regions"][index])
        candidates = {"real PET": (sets["real"][index], "logistic"), **rivals}
        t1 = rivals[label_efficiency.T1_RIVALS[0]][0]  # regional GM + CSF + age
        for name in models:
            candidates[f"synthetic PET: {name}"] = (sets[name][index], "logistic")
            candidates[f"T1 + synthetic PET: {name}"] = (np.hstack([t1, sets[name][index]]), "logistic")
        with tracked(f"label-efficiency curves {task.name}", 1) as advance:
            found = label_efficiency.curves(
                candidates, labels, draws=settings.curve_draws, seed=settings.seed, folds=settings.folds
            )
            advance(task.name)
        rows += [{"task": task.name, **row} for row in found]
    return rows, messages


def _complete_dataset(task, index, labels, groups, sets, models, settings: StudySettings, extra_labels) -> list[dict]:
    """Training without the real PET of a fraction of subjects: paired subjects only, or filled by a model.

    Subjects of the cohort with a T1 and no PET at all (``extra_labels``: their class in the task, -1 when
    not in it) join the training of the filled rows with their synthetic PET.
    """
    missing = classification.subjects_without_pet(labels, settings.missing_pet_fraction, settings.seed)
    common = {"folds": settings.folds, "repeats": settings.repeats, "seed": settings.seed, "jobs": settings.jobs}
    real = sets["real"][index]
    paired_only = classification.out_of_fold_scores(real, real, labels, groups, fit_allowed=~missing, **common)
    base = classification.metrics_of(labels, paired_only)["auc"]
    rows = [_complete_row(task, "paired subjects only", labels, paired_only, base, missing, settings.seed)]
    keep = np.array([k >= 0 for k in extra_labels], bool)
    for name in models:
        filled = np.where(missing[:, None], sets[name][index], real)
        extra = None
        if keep.any() and f"t1-only:{name}" in sets:
            extra = (sets[f"t1-only:{name}"][keep], np.asarray(extra_labels)[keep])
        scores = classification.out_of_fold_scores(filled, real, labels, groups, extra=extra, **common)
        row = _complete_row(task, f"missing PET filled by {name}", labels, scores, base, missing, settings.seed)
        rows.append(row | {"t1_only_subjects_in_training": int(keep.sum()) if extra else 0})
    all_real = classification.out_of_fold_scores(real, real, labels, groups, **common)
    rows.append(_complete_row(task, "every real PET (upper bound)", labels, all_real, base, missing, settings.seed))
    return rows


def _complete_row(task, training: str, labels, scores, base_auc: float, missing, seed: int) -> dict:
    values = classification.binary_metrics(labels, scores)
    low, high = classification.bootstrap_intervals(labels, scores, seed=seed)["auc"]
    return {
        "task": task.name,
        "training": training,
        "subjects_without_pet": int(missing.sum()),
        "n": len(labels),
        **values,
        "auc_low": low,
        "auc_high": high,
        "auc_gain": values["auc"] - base_auc,
    }


def age_trend_rows(inputs: StudyInputs) -> tuple[list[dict], dict[str, list[dict]]]:
    """Cohort slopes for real and every model's PET, and the per-subject regional values they come from."""
    arrays, labels = inputs.arrays, inputs.labels
    values = {"real PET": [trends.trend_region_means(p, arrays.mask[i], labels) for i, p in enumerate(arrays.pet)]}
    for name, pet in inputs.synthetic.items():
        values[name] = [trends.trend_region_means(p, arrays.mask[i], labels) for i, p in enumerate(pet)]
    rows = [
        {"source": source, **row}
        for source, per_subject in values.items()
        for row in trends.cohort_slopes(per_subject, arrays.age, inputs.diagnoses)
    ]
    return rows, values


def counterfactual_rows(inputs: StudyInputs, device) -> tuple[list[dict], list[str]]:
    """Age series of each age-conditioned model against the simulator's counterfactual truth.

    A model with a measured age-only effect is given each subject's own age as the scan age
    (`synthesize --scan-age`): this brain at each age; the others are given each age as the age at the scan.
    """
    from mri2pet_cli.models.runtime import predict
    from mri2pet_cli.simulation.cohort import truth_age_paths

    if not inputs.age_models:
        return [], ["counterfactual age series: no age-conditioned model among those evaluated"]
    if inputs.simulated_cohort is None:
        return [], ["counterfactual age series: the cohort has no simulator truth (simulate --truth-ages)"]
    arrays, labels = inputs.arrays, inputs.labels
    with_truth = [
        i
        for i, s in enumerate(arrays.ids)
        if all(truth_age_paths(inputs.simulated_cohort, s, a)["age_only_pet"].exists() for a in COUNTERFACTUAL_AGES)
    ]
    if len(with_truth) < 2:
        ages = ",".join(f"{a:g}" for a in COUNTERFACTUAL_AGES)
        return [], [
            f"counterfactual age series: {len(with_truth)} subjects have truth at every one of the ages {ages} "
            f"(it needs two or more: simulate --truth-ages {ages})"
        ]
    import nibabel as nib

    from mri2pet_cli.preprocessing.normalise import model_output_to_suvr, to_suvr

    per_subject: dict[str, list[dict[str, float]]] = {"truth: age only": [], "truth: aged": []}
    for i in with_truth:
        brain = arrays.mask[i] > 0
        for kind, key in (("truth: age only", "age_only_pet"), ("truth: aged", "aged_pet")):
            series = []
            for age in COUNTERFACTUAL_AGES:
                path = truth_age_paths(inputs.simulated_cohort, arrays.ids[i], age)[key]
                suvr, _ = to_suvr(nib.load(str(path)).get_fdata(dtype=np.float32), inputs.grid, brain)
                series.append(trends.trend_region_means(suvr, arrays.mask[i], labels))
            per_subject[kind].append(trends.series_slopes(COUNTERFACTUAL_AGES, series))
    messages = []
    for name, model in inputs.age_models.items():
        with_scan_age = model.supports_scan_age()
        if with_scan_age:
            messages.append(f"counterfactual age series: {name} with each subject's own age as the scan age")
        with tracked(f"age series {name}", len(with_truth)) as advance:
            per_subject[name] = []
            for i in with_truth:
                ages = np.array(COUNTERFACTUAL_AGES, np.float32)
                stack = np.repeat(arrays.t1[i : i + 1], len(ages), axis=0)
                masks = np.repeat(arrays.mask[i : i + 1], len(ages), axis=0)
                scan = np.full(len(ages), arrays.age[i], np.float32)
                known = with_scan_age and np.isfinite(arrays.age[i])
                pets, _ = predict(model, stack, masks, ages, scan_age=scan if known else None, device=device)
                brain = arrays.mask[i] > 0  # as `synthesize --age` writes it: SUVR of the model's output
                suvrs = [model_output_to_suvr(p, inputs.grid, brain)[0] for p in pets]
                series = [trends.trend_region_means(p, arrays.mask[i], labels) for p in suvrs]
                per_subject[name].append(trends.series_slopes(COUNTERFACTUAL_AGES, series))
                advance(arrays.ids[i])
    return trends.summarise_series(per_subject), messages


def key_region_values(inputs: StudyInputs) -> dict[str, list[dict[str, float]]]:
    """Key-region SUVR of every subject: real PET and each model."""
    arrays, labels = inputs.arrays, inputs.labels
    volumes = {"real PET": arrays.pet, **inputs.synthetic}
    return {
        source: [key_region_means(p, labels, arrays.mask[i] > 0) for i, p in enumerate(pet)]
        for source, pet in volumes.items()
    }


def agreement_rows(
    inputs: StudyInputs, sets: dict[str, np.ndarray], keys: dict[str, list[dict[str, float]]]
) -> tuple[list[dict], list[dict], list[dict]]:
    """Bland-Altman per key region, per-region errors, and paired Wilcoxon tests between models."""
    bland, regions = [], []
    names = features.region_feature_names("suvr")
    for name in inputs.synthetic:
        bland += [{"model": name, **row} for row in agreement.key_region_agreement(keys["real PET"], keys[name])]
        regions += [{"model": name, **row} for row in agreement.region_errors(sets["real"], sets[name], names)]
    tests = agreement.paired_model_tests({name: inputs.image_scores[name] for name in inputs.synthetic})
    return bland, regions, tests


def convention_rows(inputs: StudyInputs) -> list[dict]:
    """Mean and SD over subjects of each model's scores in the other papers' conventions."""
    arrays = inputs.arrays
    rows = []
    for name, pet in inputs.synthetic.items():
        with tracked(f"metric conventions {name}", len(arrays.ids)) as advance:
            scores = []
            for i, subject in enumerate(arrays.ids):
                scores.append(conventions.convention_scores(arrays.pet[i], pet[i], arrays.mask[i]))
                advance(subject)
        for key in scores[0]:
            values = np.array([s[key] for s in scores])
            rows.append({"model": name, "score": key, "mean": float(values.mean()), "sd": float(values.std())})
    return rows


@contextlib.contextmanager
def timed(timings: dict[str, float], key: str) -> Iterator[None]:
    """Add the seconds the block takes to ``timings[key]``."""
    start = time.perf_counter()
    yield
    timings[key] = timings.get(key, 0.0) + round(time.perf_counter() - start, 2)


def run_study(inputs: StudyInputs, settings: StudySettings, device=None) -> dict:
    """Every question of the study; a question the data cannot answer is skipped with its reason."""
    models = list(inputs.synthetic)
    messages: list[str] = []
    unknown = [s for s, d in zip(inputs.arrays.ids, inputs.diagnoses) if d is None]
    if unknown:
        messages.append(f"{len(unknown)} subjects without a diagnosis are left out of the classification")
    timings: dict[str, float] = {}
    with timed(timings, "features"):
        sets = feature_sets(inputs)
    with timed(timings, "classification"):
        rows, auc_tests, complete, skipped = classification_rows(
            sets, models, inputs.diagnoses, settings, inputs.t1_only_diagnoses
        )
    messages += skipped
    with timed(timings, "label-efficiency curves"):
        curve_rows, curve_messages = label_efficiency_rows(sets, models, inputs, settings)
    messages += curve_messages
    z_map = ad_z_map(sets, models, inputs.diagnoses, inputs.grid)
    with timed(timings, "age trends"):
        trend_rows, trend_values = age_trend_rows(inputs)
        series_rows, series_messages = counterfactual_rows(inputs, device)
    messages += series_messages
    with timed(timings, "agreement"):
        keys = key_region_values(inputs)
        bland, region_rows, model_tests = agreement_rows(inputs, sets, keys)
    with timed(timings, "metric conventions"):
        convention_table = convention_rows(inputs)
    for message in messages:
        say(message, event="study_skipped")
    return {
        "settings": settings.__dict__,
        "n_subjects": len(inputs.arrays.ids),
        "subjects": inputs.arrays.ids,
        "diagnoses": inputs.diagnoses,
        "diagnosis_counts": {d: inputs.diagnoses.count(d) for d in sorted({d for d in inputs.diagnoses if d})},
        "classification": rows,
        "auc_tests": auc_tests,
        "complete_dataset": complete,
        "label_efficiency": curve_rows,
        "ad_z_map": z_map,
        "age_trends": trend_rows,
        "age_values": trend_values,
        "counterfactual_series": series_rows,
        "bland_altman": bland,
        "region_errors": region_rows,
        "model_tests": model_tests,
        "conventions": convention_table,
        "messages": messages,
        "timings_s": timings,
        "key_values": {
            source: {r: np.array([v[r] for v in values]) for r in agreement.AGREEMENT_REGIONS}
            for source, values in keys.items()
        },
    }
