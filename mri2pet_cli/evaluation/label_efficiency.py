"""Label-efficiency curves: with the labels a lab has, does synthetic PET beat its best T1-only classifier?

A synthetic PET is a function of the T1. It can only help a lab where it extracts features better than
what the lab could fit on its own labels: when labels are few and the generator learned from many pairs.
So each feature set is trained on n labelled subjects (n = 10, 20, 40, 80: repeated random draws,
stratified by class, at least two per class) and scored on every subject not drawn; "all" is
cross-validation, scored out of fold. Rivals that see only the T1 and the age, as a lab would fit them:
regional grey matter + CSF (116 AAL regions each) + age with logistic regression, gradient-boosted trees on
the same features, and logistic regression on 33 large regions' grey matter + CSF (fractions and
posteriors) + age, the features of the simulator's documented "T1 ceiling".

Intervals: at each n, the 2.5-97.5 % range over the draws of the AUC on the undrawn subjects, and of the
paired difference (same draw, same scored subjects) between a set and the best T1-only rival at that n
(best by mean AUC: chosen on the same draws, so the rival is favoured, not the synthetic PET). For "all",
a paired bootstrap over subjects. Below ``MIN_PER_CLASS`` scored subjects per class, no verdict is given.
"""

from __future__ import annotations

import numpy as np

from mri2pet_cli.evaluation import classification

LABELLED_N = (10, 20, 40, 80)
MIN_PER_CLASS = 30  # scored subjects per class below which a verdict is withheld
TOO_FEW = "too few subjects to tell"
T1_RIVALS = (
    "T1: grey matter + CSF + age (logistic)",
    "T1: grey matter + CSF + age (boosted trees)",
    "T1: large regions' grey matter + CSF + age (logistic)",
)


def rival_sets(
    tissue: np.ndarray, age: np.ndarray, large_regions: np.ndarray | None = None
) -> dict[str, tuple[np.ndarray, str]]:
    """The T1-only rivals: (features, classifier kind) from regional GM + CSF and the age; with
    ``large_regions`` (features.t1_large_region_features) also the large-region rival."""
    features = np.column_stack([tissue, age])
    rivals = {T1_RIVALS[0]: (features, "logistic"), T1_RIVALS[1]: (features, "boosting")}
    if large_regions is not None:
        rivals[T1_RIVALS[2]] = (np.column_stack([large_regions, age]), "logistic")
    return rivals


def stratified_draw(labels: np.ndarray, n: int, rng: np.random.Generator) -> np.ndarray | None:
    """Indices of n subjects drawn in the classes' proportions (at least two per class); None if n is too big
    to leave at least two subjects of each class unscored."""
    classes = np.unique(labels)
    counts = np.array([np.sum(labels == c) for c in classes])
    if n >= len(labels) - 2 * len(classes) or n < 2 * len(classes):
        return None
    share = np.maximum(2, np.round(n * counts / counts.sum()).astype(int))
    share[np.argmax(share)] -= share.sum() - n
    if np.any(share < 2) or np.any(share > counts - 2):
        return None
    picks = [rng.choice(np.flatnonzero(labels == c), size=k, replace=False) for c, k in zip(classes, share)]
    return np.sort(np.concatenate(picks))


def fit_and_score(features: np.ndarray, kind: str, labels: np.ndarray, train: np.ndarray, seed: int) -> np.ndarray:
    """Decision values on every subject of a classifier fitted on ``train`` only. C = 1 on standardised
    features at every n: with 10-80 labels an inner search for C would itself be noise, and one classifier
    keeps the curve's points comparable (the study's main table searches C by nested cross-validation)."""
    model = classification.make_classifier(kind, True, seed, inner_folds=1)
    model.fit(features[train], labels[train])
    return model.decision_function(features)


def _interval(values: list[float]) -> tuple[float, float, float]:
    array = np.asarray(values, dtype=np.float64)
    return float(array.mean()), float(np.percentile(array, 2.5)), float(np.percentile(array, 97.5))


def curves(
    sets: dict[str, tuple[np.ndarray, str]],
    labels: np.ndarray,
    *,
    sizes: tuple[int, ...] = LABELLED_N,
    draws: int = 20,
    seed: int = 0,
    folds: int = 5,
    repeats: int = 2,
) -> list[dict]:
    """One row per (labelled n, feature set): AUC on the undrawn subjects (mean and range over draws) and the
    paired difference to the best T1-only rival; n = "all" by cross-validation with a paired bootstrap."""
    rows: list[dict] = []
    for n in sizes:
        per_set: dict[str, list[float]] = {name: [] for name in sets}
        scored_counts = []
        rng = np.random.default_rng([seed, n])
        for draw in range(draws):
            train = stratified_draw(labels, n, rng)
            if train is None:
                break
            test = np.setdiff1d(np.arange(len(labels)), train)
            scored_counts.append(np.bincount(labels[test]).min())
            for name, (features, kind) in sets.items():
                scores = fit_and_score(features, kind, labels, train, seed + draw)
                per_set[name].append(classification.rank_auc(labels[test] == 1, scores[test]))
        if not scored_counts:
            continue
        rows += _rows_at(str(n), per_set, int(min(scored_counts)), "range over draws")
    splits = classification.outer_splits(labels, np.arange(len(labels)), folds, repeats, seed)
    out_of_fold = {name: _out_of_fold(f, kind, labels, splits, seed) for name, (f, kind) in sets.items()}
    boot = _bootstrap_aucs(labels, out_of_fold, seed)
    rows += _rows_at("all", boot, int(np.bincount(labels).min()), "paired bootstrap over subjects")
    return rows


def _out_of_fold(features: np.ndarray, kind: str, labels: np.ndarray, splits, seed: int) -> np.ndarray:
    """Cross-validated decision values (the same classifier as at every n), averaged over the repeats."""
    total = np.zeros(len(labels))
    for repeat in splits:
        for train, test in repeat:
            total[test] += fit_and_score(features, kind, labels, train, seed)[test]
    return total / len(splits)


def _bootstrap_aucs(labels: np.ndarray, scores: dict[str, np.ndarray], seed: int, n_boot: int = 500) -> dict:
    """AUC of each set on the same bootstrap resamples of the subjects (first entry: the full sample)."""
    rng = np.random.default_rng(seed)
    out = {name: [classification.rank_auc(labels == 1, s)] for name, s in scores.items()}
    for _ in range(n_boot):
        pick = rng.integers(0, len(labels), len(labels))
        if len(np.unique(labels[pick])) < 2:
            continue
        for name, s in scores.items():
            out[name].append(classification.rank_auc(labels[pick] == 1, s[pick]))
    return out


def _rows_at(n: str, per_set: dict[str, list[float]], scored_per_class: int, interval: str) -> list[dict]:
    rivals = [name for name in per_set if name in T1_RIVALS]
    best = max(rivals, key=lambda name: np.mean(per_set[name])) if rivals else None
    rows = []
    for name, aucs in per_set.items():
        mean, low, high = _interval(aucs)
        row = {"labelled_n": n, "features": name, "auc": mean, "auc_low": low, "auc_high": high}
        row |= {"scored_per_class": scored_per_class, "interval": interval, "draws": len(aucs)}
        if best is not None and name not in T1_RIVALS:
            difference = np.asarray(aucs) - np.asarray(per_set[best])
            d_mean, d_low, d_high = _interval(list(difference))
            row |= {"best_t1_only": best, "difference": d_mean, "difference_low": d_low, "difference_high": d_high}
            row["verdict"] = verdict(d_low, d_high, scored_per_class)
        rows.append(row)
    return rows


def verdict(low: float, high: float, scored_per_class: int) -> str:
    """What the interval of (set - best T1-only) says, or that the sample cannot say it."""
    if scored_per_class < MIN_PER_CLASS:
        return TOO_FEW
    if low > 0:
        return "better than the best T1-only classifier"
    if high < 0:
        return "worse than the best T1-only classifier"
    return "no difference shown"
