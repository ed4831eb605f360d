"""AD classification from regional features, with nested cross-validation (the seeds' yardstick).

The classifier is a linear SVM as in the seeds (logistic regression as a check): standardisation and C
inside one scikit-learn ``Pipeline``, C chosen by ``GridSearchCV`` on the training folds only, outer
folds by ``StratifiedGroupKFold`` so that no subject is ever on both sides. The outer split is repeated
with seeds ``seed, seed + 1, ...``; every feature set sees the same splits, so rows can be compared
subject by subject. A subject's score is its out-of-fold decision value averaged over the repeats;
the metrics are computed from these scores (threshold 0), their 95 % intervals by a percentile
bootstrap over subjects. AUCs of two feature sets on the same subjects are compared with DeLong's test.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

CLASSIFIERS = ("svm", "logistic", "boosting")
C_GRID = tuple(float(c) for c in np.logspace(-3, 2, 6))
INNER_FOLDS = 3
BOOTSTRAP_SAMPLES = 1000
BINARY_METRICS = ("acc", "sen", "spe", "f1", "mcc", "auc")
MULTICLASS_METRICS = ("acc", "balanced_acc", "f1_macro", "mcc", "auc_macro")
# Names labs use for the same groups, read as the three the study knows.
DIAGNOSIS_SYNONYMS = {
    "NC": "CN",
    "HC": "CN",
    "CONTROL": "CN",
    "NORMAL": "CN",
    "EMCI": "MCI",
    "LMCI": "MCI",
    "SMCI": "MCI",
    "PMCI": "MCI",
    "DEMENTIA": "AD",
    "ALZHEIMER": "AD",
}


@dataclass(frozen=True)
class Task:
    name: str
    classes: tuple[str, ...]  # the last one is the positive class of a binary task

    @property
    def binary(self) -> bool:
        return len(self.classes) == 2


TASKS = (Task("CN vs AD", ("CN", "AD")), Task("MCI vs AD", ("MCI", "AD")), Task("CN vs MCI vs AD", ("CN", "MCI", "AD")))


def normalise_diagnosis(value: str | None) -> str | None:
    if value is None or str(value).strip().lower() in ("", "n/a", "na", "nan"):
        return None
    key = str(value).strip().upper()
    return DIAGNOSIS_SYNONYMS.get(key, key)


def task_subjects(task: Task, diagnoses: list[str | None], folds: int) -> tuple[np.ndarray, np.ndarray] | str:
    """Indices and class labels (0..k-1) of the subjects in ``task``, or why the task cannot run."""
    index = np.array([i for i, d in enumerate(diagnoses) if d in task.classes], dtype=int)
    labels = np.array([task.classes.index(diagnoses[i]) for i in index], dtype=int)
    counts = {c: int(np.sum(labels == k)) for k, c in enumerate(task.classes)}
    if min(counts.values()) < folds:
        return f"{task.name}: too few subjects for {folds}-fold cross-validation ({counts})"
    return index, labels


def make_classifier(kind: str, binary: bool, seed: int, inner_folds: int = INNER_FOLDS):
    """Impute + standardise + linear classifier, C by an inner stratified group k-fold (nested CV).

    A region missing from a subject's mask (NaN) takes the mean of the subjects the pipeline is fitted
    on: inside cross-validation, the training fold's, never the test subjects'.

    With fewer than two training subjects in some class there is nothing to select C on: C = 1.
    """
    from sklearn.impute import SimpleImputer
    from sklearn.linear_model import LogisticRegression
    from sklearn.model_selection import GridSearchCV, StratifiedGroupKFold
    from sklearn.pipeline import Pipeline
    from sklearn.preprocessing import StandardScaler
    from sklearn.svm import LinearSVC

    if kind == "boosting":  # gradient-boosted trees, no C to select; a region no training subject has is dropped
        from sklearn.ensemble import HistGradientBoostingClassifier
        from sklearn.impute import SimpleImputer
        from sklearn.pipeline import Pipeline

        # min_samples_leaf 4: scikit-learn's 20 leaves trees fitted on 10 or 20 labelled subjects without a
        # single split (a constant, AUC 0.5), which made the rival look worse than it is at small n
        trees = HistGradientBoostingClassifier(
            max_depth=3, max_iter=100, learning_rate=0.1, min_samples_leaf=4, random_state=seed
        )
        return Pipeline([("impute", SimpleImputer(strategy="mean")), ("classify", trees)])
    if kind == "svm":
        estimator = LinearSVC(max_iter=20_000, random_state=seed)
    elif kind == "logistic":
        estimator = LogisticRegression(max_iter=5_000)
    else:
        raise ValueError(f"unknown classifier {kind!r}: choose from {CLASSIFIERS}")
    impute = SimpleImputer(strategy="mean", keep_empty_features=True)  # a region no training subject has: 0
    pipeline = Pipeline([("impute", impute), ("scale", StandardScaler()), ("classify", estimator)])
    if inner_folds < 2:
        return pipeline.set_params(classify__C=1.0)
    return GridSearchCV(
        pipeline,
        {"classify__C": list(C_GRID)},
        cv=StratifiedGroupKFold(inner_folds, shuffle=True, random_state=seed),
        scoring="roc_auc" if binary else "balanced_accuracy",
    )


def outer_splits(labels: np.ndarray, groups: np.ndarray, folds: int, repeats: int, seed: int):
    """(train, test) index pairs of every repeat: the same for every feature set."""
    from sklearn.model_selection import StratifiedGroupKFold

    splits = []
    for repeat in range(repeats):
        splitter = StratifiedGroupKFold(folds, shuffle=True, random_state=seed + repeat)
        splits.append(list(splitter.split(np.zeros(len(labels)), labels, groups)))
    return splits


def out_of_fold_scores(
    fit_features: np.ndarray,
    eval_features: np.ndarray,
    labels: np.ndarray,
    groups: np.ndarray,
    *,
    kind: str = "svm",
    folds: int = 5,
    repeats: int = 5,
    seed: int = 0,
    fit_allowed: np.ndarray | None = None,
    extra: tuple[np.ndarray, np.ndarray] | None = None,
    jobs: int = 1,
) -> np.ndarray:
    """Out-of-fold decision values of every subject, averaged over the repeats.

    Each outer fold trains on ``fit_features`` of its training subjects (only those ``fit_allowed``)
    and scores ``eval_features`` of its test subjects; ``extra`` (features, labels) are subjects that
    join every training fold and are never tested (e.g. T1-only subjects with a synthetic PET).
    Binary: shape (n,), positive = class 1;
    multi-class: (n, k). ``jobs`` folds run at once (the result does not depend on it).
    """
    from joblib import Parallel, delayed

    binary = len(np.unique(labels)) == 2
    allowed = np.ones(len(labels), bool) if fit_allowed is None else np.asarray(fit_allowed, bool)
    work = [
        (train[allowed[train]], test, seed + repeat)
        for repeat, folds_of_repeat in enumerate(outer_splits(labels, groups, folds, repeats, seed))
        for train, test in folds_of_repeat
    ]
    fitted = Parallel(n_jobs=jobs)(
        delayed(_fold_scores)(fit_features, eval_features, labels, groups, train, test, kind, binary, fold_seed, extra)
        for train, test, fold_seed in work
    )
    total = np.zeros((len(labels),) if binary else (len(labels), len(np.unique(labels))))
    for (_train, test, _seed), values in zip(work, fitted):
        total[test] += values
    return total / repeats


def _fold_scores(fit_features, eval_features, labels, groups, train, test, kind, binary, seed, extra) -> np.ndarray:
    features, targets, members = fit_features[train], labels[train], groups[train]
    if extra is not None and len(extra[1]):
        features = np.concatenate([features, extra[0]])
        targets = np.concatenate([targets, extra[1]])
        members = np.concatenate([members, -1 - np.arange(len(extra[1]))])  # each its own group
    smallest = int(np.bincount(targets).min())
    model = make_classifier(kind, binary, seed, min(INNER_FOLDS, smallest))
    fit_options = {"groups": members} if smallest >= 2 and kind != "boosting" else {}  # nested C search
    model.fit(features, targets, **fit_options)
    return model.decision_function(eval_features[test])


def predicted_labels(scores: np.ndarray) -> np.ndarray:
    return (scores > 0).astype(int) if scores.ndim == 1 else np.argmax(scores, axis=1)


def rank_auc(positive: np.ndarray, scores: np.ndarray) -> float:
    """AUC by the Mann-Whitney rank sum (ties count one half), as ``roc_auc_score``."""
    from scipy.stats import rankdata

    n_pos, n_neg = int(positive.sum()), int((~positive).sum())
    ranks = rankdata(scores)
    return float((ranks[positive].sum() - n_pos * (n_pos + 1) / 2) / (n_pos * n_neg))


def confusion(labels: np.ndarray, predicted: np.ndarray, k: int) -> np.ndarray:
    """Rows: true class, columns: predicted class."""
    return np.bincount(labels * k + predicted, minlength=k * k).reshape(k, k).astype(np.float64)


def _ratio(top: float, bottom: float) -> float:
    return float(top / bottom) if bottom else 0.0


def matthews(table: np.ndarray) -> float:
    """Matthews correlation of a k x k confusion table (Gorodkin's R_K for k > 2)."""
    total, correct = table.sum(), np.trace(table)
    true, predicted = table.sum(axis=1), table.sum(axis=0)
    top = correct * total - true @ predicted
    bottom = np.sqrt(total**2 - predicted @ predicted) * np.sqrt(total**2 - true @ true)
    return _ratio(top, bottom)


def binary_metrics(labels: np.ndarray, scores: np.ndarray) -> dict[str, float]:
    """ACC, SEN, SPE, F1, MCC and AUC of decision values (threshold 0; positive class 1).

    Computed here in numpy (the bootstrap calls it thousands of times); tested equal to scikit-learn.
    """
    table = confusion(labels, predicted_labels(scores), 2)
    (tn, fp), (fn, tp) = table
    return {
        "acc": _ratio(tp + tn, table.sum()),
        "sen": _ratio(tp, tp + fn),
        "spe": _ratio(tn, tn + fp),
        "f1": _ratio(2 * tp, 2 * tp + fp + fn),
        "mcc": matthews(table),
        "auc": rank_auc(labels == 1, scores),
    }


def multiclass_metrics(labels: np.ndarray, scores: np.ndarray) -> dict[str, float]:
    """ACC, balanced ACC, macro F1, MCC and the mean one-vs-rest AUC of each class's decision value."""
    k = scores.shape[1]
    table = confusion(labels, predicted_labels(scores), k)
    recall = [_ratio(table[c, c], table[c].sum()) for c in range(k)]
    f1 = [_ratio(2 * table[c, c], table[c].sum() + table[:, c].sum()) for c in range(k)]
    return {
        "acc": _ratio(np.trace(table), table.sum()),
        "balanced_acc": float(np.mean(recall)),
        "f1_macro": float(np.mean(f1)),
        "mcc": matthews(table),
        "auc_macro": float(np.mean([rank_auc(labels == c, scores[:, c]) for c in range(k)])),
    }


def metrics_of(labels: np.ndarray, scores: np.ndarray) -> dict[str, float]:
    return binary_metrics(labels, scores) if scores.ndim == 1 else multiclass_metrics(labels, scores)


def bootstrap_intervals(
    labels: np.ndarray,
    scores: np.ndarray,
    metrics: Callable[[np.ndarray, np.ndarray], dict[str, float]] = metrics_of,
    *,
    samples: int = BOOTSTRAP_SAMPLES,
    seed: int = 0,
    level: float = 0.95,
) -> dict[str, tuple[float, float]]:
    """Percentile bootstrap over subjects; resamples that lack a class are drawn again."""
    rng = np.random.default_rng(seed)
    n_classes = len(np.unique(labels))
    draws: list[dict[str, float]] = []
    while len(draws) < samples:
        pick = rng.integers(0, len(labels), len(labels))
        if len(np.unique(labels[pick])) == n_classes:
            draws.append(metrics(labels[pick], scores[pick]))
    tail = 100 * (1 - level) / 2
    intervals = {}
    for key in draws[0]:
        low, high = np.percentile([d[key] for d in draws], [tail, 100 - tail])
        intervals[key] = (float(low), float(high))
    return intervals


def delong_test(labels: np.ndarray, scores_a: np.ndarray, scores_b: np.ndarray) -> dict[str, float]:
    """DeLong, DeLong & Clarke-Pearson (1988): two correlated AUCs on the same subjects.

    Returns both AUCs, their difference (a - b), its standard error and the two-sided p-value.
    """
    from scipy.stats import norm

    positive, negative = labels == 1, labels == 0
    m, n = int(positive.sum()), int(negative.sum())
    components = []
    for scores in (scores_a, scores_b):
        x, y = scores[positive][:, None], scores[negative][None, :]
        psi = (x > y) + 0.5 * (x == y)
        components.append((psi.mean(axis=1), psi.mean(axis=0), psi.mean()))
    aucs = np.array([c[2] for c in components])
    v10 = np.stack([c[0] for c in components])  # (2, m)
    v01 = np.stack([c[1] for c in components])  # (2, n)
    covariance = np.cov(v10) / m + np.cov(v01) / n
    variance = covariance[0, 0] + covariance[1, 1] - 2 * covariance[0, 1]
    difference = float(aucs[0] - aucs[1])
    se = float(np.sqrt(max(variance, 0.0)))
    p = 1.0 if se == 0 else float(2 * norm.sf(abs(difference) / se))
    return {"auc_a": float(aucs[0]), "auc_b": float(aucs[1]), "difference": difference, "se": se, "p": p}


def subjects_without_pet(labels: np.ndarray, fraction: float, seed: int) -> np.ndarray:
    """A seeded, class-stratified choice of subjects treated as having no real PET (complete-dataset rows)."""
    rng = np.random.default_rng(seed)
    missing = np.zeros(len(labels), bool)
    for k in np.unique(labels):
        members = np.flatnonzero(labels == k)
        missing[rng.choice(members, size=int(round(fraction * len(members))), replace=False)] = True
    return missing
