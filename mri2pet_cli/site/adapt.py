"""`mri2pet adapt`: fine-tune a model on a lab's own pairs, and export it only where local validation says it helps.

With 20 pairs or more, a fifth of them (at least 4) is held out to validate each epoch; training stops when
the validation MAE has not improved for ``patience`` epochs and the best epoch is kept. With fewer, k-fold
cross-validation (k = 5, or n below 5) picks the number of epochs from the mean out-of-fold curve, and the
exported model is trained on all pairs for that many epochs. Either way the base model is scored on the same
held-out subjects; adapted weights are exported only when they beat it (``force``: anyway, with the figures).

Every run lives in ``OUT_DIR/work/``: a killed ``adapt`` resumes each run from its last epoch, and a rerun of
the same command reuses every finished one. Training runs use a constant learning rate (warm-up in the first
epoch, as every ``--init-weights`` run): early stopping then ends a run without a schedule to finish.
"""

from __future__ import annotations

import hashlib
import json
import time
from dataclasses import replace
from pathlib import Path

import numpy as np

from mri2pet_cli import __version__
from mri2pet_cli.console import say, stage
from mri2pet_cli.errors import Mri2PetError
from mri2pet_cli.evaluation.scoring import validation_mae
from mri2pet_cli.io import check_writable, write_text_atomic
from mri2pet_cli.models.registry import get_model_info, load_model
from mri2pet_cli.models.runtime import resolve_device
from mri2pet_cli.models.weights import save_weights
from mri2pet_cli.preprocessing.cohort import data_fingerprint, load_arrays, prepare_dataset, write_split
from mri2pet_cli.training.export import cn_reference_of
from mri2pet_cli.training.loop import train
from mri2pet_cli.training.options import TrainOptions

HOLD_OUT_FROM = 20  # pairs from which one hold-out split replaces k-fold
MIN_PAIRS = 4


def local_splits(ids: list[str], seed: int, folds: int = 5) -> list[dict[str, list[str]]]:
    """The validation scheme: one hold-out split (>= 20 pairs) or k folds (fewer)."""
    order = list(np.random.default_rng(seed).permutation(sorted(ids)))
    if len(ids) >= HOLD_OUT_FROM:
        n_val = max(4, round(0.2 * len(ids)))
        return [{"train": sorted(order[n_val:]), "validation": sorted(order[:n_val]), "test": []}]
    k = min(folds, len(ids))
    return [
        {"train": sorted(s for j, s in enumerate(order) if j % k != f), "validation": sorted(order[f::k]), "test": []}
        for f in range(k)
    ]


def run_until_stopped(options: TrainOptions, max_epochs: int, patience: int | None) -> list[dict]:
    """Train epoch by epoch (resuming the run folder) until ``max_epochs``, or ``patience`` epochs without a
    better validation MAE; the history."""
    history: list[dict] = []
    summary_path = Path(options.run_dir) / "summary.json"  # a finished (or earlier) call's epochs
    if summary_path.exists():
        history = json.loads(summary_path.read_text())["history"]
    while len(history) < max_epochs:
        if patience is not None and history:
            best = int(np.argmin([h["val_mae"] for h in history]))
            if len(history) - 1 - best >= patience:
                break
        summary = train(replace(options, epochs=len(history) + 1), resume=True)
        history = summary["history"]
    return history


def adapt(
    model_name: str,
    data: str | Path,
    out_dir: str | Path,
    *,
    weights: str | None = None,
    epochs: int = 20,
    patience: int = 3,
    lr: float | None = None,
    batch_size: int = 2,
    seed: int = 0,
    device: str = "auto",
    jobs: int = 1,
    force: bool = False,
    overwrite: bool = False,
) -> dict:
    """Fine-tune ``model_name`` (its shipped weights, or ``weights``) on the pairs in ``data``; see the module."""
    from mri2pet_cli.models.weights import find_weights

    out_dir = Path(out_dir)
    lr = get_model_info(model_name).adapt_lr if lr is None else lr
    base_files = find_weights(model_name, weights)
    check_writable(out_dir / f"{model_name}.pt", overwrite)
    records, failed = prepare_dataset(data, jobs=jobs)
    if len(records) < MIN_PAIRS:
        raise Mri2PetError(f"{data}: {len(records)} paired subjects are too few to adapt (at least {MIN_PAIRS})")
    base, base_card, _ = load_model(model_name, str(base_files.weights))
    dev = resolve_device(device)
    by_id = {r.subject_id: r for r in records}
    splits = local_splits(list(by_id), seed)
    # one folder per question asked: a rerun of the same command reuses it, another data set or setting does not
    key = json.dumps([data_fingerprint(records), base_card.get("sha256"), epochs, patience, lr, batch_size, seed])
    work = out_dir / "work" / hashlib.sha256(key.encode()).hexdigest()[:12]
    common = TrainOptions(
        model=model_name,
        data=str(data),
        run_dir="",
        epochs=epochs,
        batch_size=batch_size,
        lr=lr,
        seed=seed,
        device=device,
        schedule="constant",
        jobs=jobs,
        init_weights=str(base_files.weights),
    )
    curves, base_maes = [], []
    for f, split in enumerate(splits):
        folder = work / (f"fold-{f + 1}" if len(splits) > 1 else "holdout")
        folder.mkdir(parents=True, exist_ok=True)
        write_split(split, folder / "split.json")
        stage(
            f"adapting {model_name}: {folder.name} ({len(split['train'])} train, {len(split['validation'])} validation)"
        )
        options = replace(common, run_dir=str(folder / "run"), split_file=str(folder / "split.json"))
        history = run_until_stopped(options, epochs, patience if len(splits) == 1 else None)
        curves.append([h["val_mae"] for h in history])
        validation = load_arrays([by_id[s] for s in split["validation"]])
        base_maes.append(validation_mae(base, validation, dev, "fp32"))
    base_mae = float(np.mean(base_maes))
    if len(splits) == 1:
        best_epoch = int(np.argmin(curves[0])) + 1
        adapted_mae = float(min(curves[0]))
        scheme = (
            f"hold-out: {len(splits[0]['validation'])} of {len(records)} pairs, early stopping (patience {patience})"
        )
        final_run = work / "holdout" / "run"
    else:
        mean_curve = np.mean(np.array(curves), axis=0)
        best_epoch = int(np.argmin(mean_curve)) + 1
        adapted_mae = float(mean_curve[best_epoch - 1])
        scheme = f"{len(splits)}-fold cross-validation over {len(records)} pairs; epochs chosen on the mean fold curve"
        final_run = work / "all"
        final_split = {
            "train": sorted(by_id),
            "validation": sorted(by_id),
            "test": [],
            "validation_in_sample": True,
        }  # validation: in-sample log only
        write_split(final_split, work / "all-split.json")
        stage(f"adapting {model_name}: all {len(records)} pairs for {best_epoch} epochs")
        run_until_stopped(
            replace(common, run_dir=str(final_run), split_file=str(work / "all-split.json")), best_epoch, None
        )
    validation = {
        "scheme": scheme,
        "lr": lr,
        "base_mae": base_mae,
        "adapted_mae": adapted_mae,
        "epochs": best_epoch,
        "curves_val_mae": curves,
        "improvement_pct": 100.0 * (base_mae - adapted_mae) / base_mae,
    }
    better = adapted_mae < base_mae
    result = {"model": model_name, "pairs": len(records), "failed": failed, "validation": validation, "better": better}
    write_text_atomic(json.dumps(result, indent=2), out_dir / "adapt_summary.json", overwrite=True)
    if not better and not force:
        raise Mri2PetError(
            f"{data}: fine-tuning did not beat the base {model_name} on local validation "
            f"(MAE {adapted_mae:.4f} against {base_mae:.4f}); nothing exported",
            hint="--force exports it anyway; more pairs, fewer epochs or a lower --lr may help",
        )
    model = final_model(final_run, model_name, best_epoch, len(splits) == 1)
    card = adapted_card(base_card, base_files, records, validation, data)
    local_cn = [r for r in records if (r.diagnosis or "").upper() == "CN"]
    if len(local_cn) >= 10 and (norms := cn_reference_of(model.to(dev), local_cn, dev)):
        card["cn_reference"] = norms | {"source": norms["source"].replace("its training split", "this site's pairs")}
        card.pop("cn_reference_note")
    files = save_weights(model, out_dir, card, overwrite=overwrite)
    write_familiarity(base_files.weights, records, files.weights, overwrite)
    say(
        f"adapted {model_name} on {len(records)} local pairs: validation MAE {adapted_mae:.4f} against the base "
        f"model's {base_mae:.4f} ({validation['improvement_pct']:+.1f} %), {best_epoch} epochs; wrote {files.weights}"
        + ("" if better else " (--force: it is NOT better than the base model)"),
        event="done",
    )
    return result | {"weights": str(files.weights), "card": str(files.card)}


def final_model(run_dir: Path, model_name: str, epoch: int, best: bool):
    """The hold-out run's best epoch, or the all-pairs run's last one."""
    import torch

    from mri2pet_cli.models.registry import build_model
    from mri2pet_cli.training.checkpoints import load_run_model

    if best:
        return load_run_model(run_dir)[0]
    state = torch.load(run_dir / "checkpoint.pt", map_location="cpu", weights_only=True)
    if state["epoch"] + 1 != epoch:
        raise Mri2PetError(f"{run_dir}: the run stopped at epoch {state['epoch'] + 1}, {epoch} were asked")
    model = build_model(model_name, state["options"]["model_config"])
    model.load_state_dict(state["state_dict"])
    return model.eval()


def adapted_card(base_card: dict, base_files, records: list, validation: dict, data) -> dict:
    """The base card, with what adaptation changed and measured; norms only where the local CN subjects give them."""
    # the base's own figures describe the base: kept under adaptation, not as these weights' test metrics
    base_only = ("sha256", "size_bytes", "file", "name", "cn_reference", "test_metrics", "training")
    card = {k: v for k, v in base_card.items() if k not in base_only}
    local_cn = [r for r in records if (r.diagnosis or "").upper() == "CN"]
    card |= {
        "version": __version__,
        "created": time.strftime("%Y-%m-%d"),
        "adaptation": {
            "base_weights": str(Path(base_files.weights).resolve()),
            "base_sha256": base_card.get("sha256"),
            "local_pairs": len(records),
            "local_data": str(Path(data).resolve()),
            "local_data_sha256": data_fingerprint(records),
            "local_validation": validation,
            "base_test_metrics": base_card.get("test_metrics"),
            "base_training": base_card.get("training"),
        },
        "limitations": (
            "Fine-tuned on a site's own pairs: its local validation figures above are the only measure of how "
            "it does there. The base model's limitations hold too: " + str(base_card.get("limitations", ""))
        ),
        "cn_reference_note": (
            f"no z-score norms: adapted weights need their own, from at least 10 local CN subjects "
            f"(participants.tsv diagnosis); {len(local_cn)} here"
        ),
    }
    return card


def write_familiarity(base_weights: Path, records: list, weights: Path, overwrite: bool) -> None:
    """The base reference's training T1s and the local ones: what the adapted model has seen."""
    from mri2pet_cli.site.familiarity import (
        BLOCKS,
        FORMAT,
        build_reference,
        familiarity_path_for,
        load_reference,
        records_features,
    )

    base = load_reference(familiarity_path_for(Path(base_weights)))
    if base is None or base.get("format", 1) < FORMAT:
        return  # synthesize then says that the adapted weights have no (current) reference
    ids, local = records_features(records)
    features = {block: np.vstack([np.asarray(base["training_features"][block]), local[block]]) for block in BLOCKS}
    source = f"{base['source']} and {len(ids)} local pairs"
    reference = build_reference(features, base["subjects"] + ids, source)
    write_text_atomic(json.dumps(reference), familiarity_path_for(weights), overwrite=True)
