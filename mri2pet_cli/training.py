"""One training loop for every registered model: split, seed, augment, checkpoint, resume, export."""

from __future__ import annotations

import functools
import json
import time
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path

import numpy as np

from .console import stage
from .dataset import Arrays, load_arrays, prepare_dataset, read_split, split_subjects, write_split
from .distributed import Distributed
from .errors import Mri2PetError, OutputExistsError
from .evaluation import autocast, predict, resolve_device, validation_mae, validation_score
from .io import atomic_path, write_text_atomic
from .weights import load_model_checkpoint, load_state

CHECKPOINT_FORMAT = "mri2pet-checkpoint/1"


@dataclass
class TrainOptions:
    model: str
    data: str
    run_dir: str
    epochs: int = 30
    batch_size: int = 2
    lr: float = 1e-3
    seed: int = 0
    device: str = "auto"
    precision: str = "auto"  # auto: bf16 autocast on a GPU, float32 on the CPU; bf16: autocast everywhere
    val_fraction: float = 0.125
    test_fraction: float = 0.125
    augment: bool = True
    schedule: str = "cosine"  # cosine: learning rate from lr down to 0 over the epochs; constant
    jobs: int = 1
    model_config: dict = field(default_factory=dict)
    init_weights: str | None = None  # start from these weights (fine-tuning); new parameters keep their init
    split_file: str | None = None  # a recorded split.json (another run's): compare models on the same subjects


def _save_atomic(obj, path: Path) -> None:
    import torch

    with atomic_path(path) as tmp:
        torch.save(obj, tmp)


def augment_batch(batch: dict, rng: np.random.Generator) -> dict:
    """Left-right flip, +-2 voxel shifts and +-5 % T1 gain, the same for T1, mask and PET."""
    import torch

    out = dict(batch)
    volumes = [k for k in ("t1", "mask", "pet", "pet_mask") if k in out]
    if rng.random() < 0.5:
        for k in volumes:
            out[k] = torch.flip(out[k], dims=[2])
    shifts = [int(s) for s in rng.integers(-2, 3, size=3)]
    for k in volumes:
        out[k] = torch.roll(out[k], shifts=shifts, dims=(2, 3, 4))
    out["t1"] = out["t1"] * float(rng.uniform(0.95, 1.05))
    return out


def check_split_present(split: dict, parts: tuple[str, ...], by_id: dict, data: str) -> None:
    """A one-line error naming the subjects of ``split[parts]`` that the data folder lacks."""
    missing = [s for part in parts for s in split[part] if s not in by_id]
    if missing:
        raise Mri2PetError(f"{data}: subjects of the recorded split are missing: {', '.join(missing[:5])}")


def learning_rate(options: TrainOptions, epoch: int) -> float:
    """The epoch's learning rate (a function of the epoch only, so a resumed run follows the same curve)."""
    if options.schedule == "constant":
        return options.lr
    return float(options.lr * 0.5 * (1.0 + np.cos(np.pi * epoch / max(options.epochs, 1))))


def make_batch(arrays: Arrays, index: np.ndarray, device, pet_index: np.ndarray | None = None) -> dict:
    """T1, mask, PET and age of the subjects ``index``; with ``pet_index`` (unpaired models) the PETs, and
    their brain masks as ``pet_mask``, come from those other subjects."""
    import torch

    batch = {
        "t1": torch.from_numpy(arrays.t1[index, None]),
        "mask": torch.from_numpy(arrays.mask[index, None]),
        "pet": torch.from_numpy(arrays.pet[index if pet_index is None else pet_index, None]),
        "age": torch.from_numpy(arrays.age[index]),
    }
    if pet_index is not None:
        batch["pet_mask"] = torch.from_numpy(arrays.mask[pet_index, None])
    return {k: v.to(device) for k, v in batch.items()}


def subset(arrays: Arrays, ids: list[str]) -> Arrays:
    pick = [arrays.ids.index(i) for i in ids]
    return Arrays([arrays.ids[i] for i in pick], arrays.t1[pick], arrays.mask[pick], arrays.pet[pick], arrays.age[pick])


def load_initial_weights(options: TrainOptions) -> tuple[dict, dict]:
    """The verified weights file named by ``options.init_weights`` and a record of where it came from."""
    checkpoint, card, files = load_model_checkpoint(options.model, options.init_weights)
    provenance = {"file": files.weights.name, "sha256": card.get("sha256"), "training": card.get("training")}
    return checkpoint, provenance


def run_updates(model, optimizers: list, batch: dict, device, precision: str, after_backward=None) -> dict[str, float]:
    """The model's updates for one batch, in its order (one, or discriminator then generator); their logs.

    ``after_backward()`` runs between each backward pass and its step (distributed runs average there).
    """
    logs: dict[str, float] = {}
    for step, indices in model.update_steps():
        stepping = [optimizers[i] for i in indices] if indices else optimizers
        with autocast(device, precision):
            losses = model.training_losses(batch, step) if step else model.training_losses(batch)
        for opt in optimizers:  # every gradient, so that one update's backward never leaks into the next
            opt.zero_grad(set_to_none=True)
        losses["loss"].backward()
        if after_backward:
            after_backward()
        for opt in stepping:
            opt.step()
        prefix = f"{step[0]}_" if step else ""  # g_loss, d_loss, ...
        logs |= {prefix + k: float(v.detach()) for k, v in losses.items()}
    if "loss" not in logs:
        logs["loss"] = logs.get("g_loss", 0.0)
    return logs


def is_better(val_mae: float, own_score: float | None, best: dict) -> bool:
    """Whether this epoch beats the best so far: by the model's own validation score where it has one
    (e.g. DUAL-GLOW's validation likelihood), else by validation MAE."""
    if own_score is not None:
        return own_score < best.get("val_score", float("inf"))
    return val_mae < best["val_mae"]


def set_learning_rate(optimizers, rate: float) -> None:
    """``rate`` for every parameter group, times the group's ``lr_scale`` where a model sets one."""
    for opt in optimizers:
        for group in opt.param_groups:
            group["lr"] = rate * group.get("lr_scale", 1.0)


def train(options: TrainOptions, *, resume: bool = False, overwrite: bool = False, report=None) -> dict:
    """Train ``options.model`` on ``options.data``; checkpoints in ``run_dir`` every epoch.

    ``report(epoch, step, steps, logs)`` is called after every step (for a progress bar).
    Returns the run summary (also written to run_dir/summary.json).
    """
    import torch

    from .models.registry import build_model, get_model_info

    info = get_model_info(options.model)
    run_dir = Path(options.run_dir)
    checkpoint_path = run_dir / "checkpoint.pt"
    if checkpoint_path.exists() and not (resume or overwrite):
        raise OutputExistsError(f"{run_dir}: holds a training run", hint="pass --resume to continue it or --overwrite")
    run_dir.mkdir(parents=True, exist_ok=True)
    ranks = Distributed.from_environment()  # torchrun: one process per device; otherwise a no-op
    device = ranks.start(resolve_device(options.device))
    report = report if ranks.writes else None  # one progress display, rank 0's

    state = None
    if resume and checkpoint_path.exists():
        state = torch.load(checkpoint_path, map_location="cpu", weights_only=True)
        if state.get("format") != CHECKPOINT_FORMAT or state["options"]["model"] != options.model:
            raise Mri2PetError(f"{checkpoint_path}: not a checkpoint of model {options.model!r}")
        saved = state["options"]
        options = TrainOptions(**{**saved, "epochs": options.epochs, "device": options.device, "jobs": options.jobs})

    stage(f"preparing data in {options.data} (preprocessing what is not cached)")
    records, failed = prepare_dataset(options.data, jobs=options.jobs)
    if state:
        split = state["split"]
    elif options.split_file:
        split = read_split(options.split_file)
    else:
        ids = [r.subject_id for r in records]
        split = split_subjects(ids, options.seed, options.val_fraction, options.test_fraction)
    if ranks.writes:
        write_split(split, run_dir / "split.json")
    by_id = {r.subject_id: r for r in records}
    # the test subjects are needed only by export / evaluate: training may run on a copy without them
    check_split_present(split, ("train", "validation"), by_id, options.data)
    arrays = load_arrays([by_id[s] for s in split["train"] + split["validation"]])
    train_set, val_set = subset(arrays, split["train"]), subset(arrays, split["validation"])
    if info.age_required and np.isnan(train_set.age).any():
        raise Mri2PetError(f"{options.data}: model {options.model} needs every subject's age in participants.tsv")

    initial, provenance = None, None
    if options.init_weights and not state:
        initial, provenance = load_initial_weights(options)
        options = replace(options, model_config={**initial["config"], **options.model_config})
    torch.manual_seed(options.seed)
    model = build_model(options.model, options.model_config).to(device)
    optimizers = model.configure_optimizers(options.lr)
    history: list[dict] = []
    best = {"val_mae": float("inf"), "epoch": 0}
    start_epoch = 0
    if state:
        model.load_state_dict(state["state_dict"])
        for opt, opt_state in zip(optimizers, state["optimizers"]):
            opt.load_state_dict(opt_state)
        history, best, start_epoch = state["history"], state["best"], state["epoch"] + 1
        provenance = state.get("initialised_from")
    else:
        volumes = (train_set.t1, train_set.pet, train_set.mask)
        model.fit_data_statistics(*(torch.from_numpy(v[:, None]).to(device) for v in volumes))
        if initial:
            provenance["new_parameters"] = load_state(
                model, initial, options.init_weights, architecture=options.model, partial=True
            )
        model.fit_cohort(options.data, split["train"])

    if ranks.writes:  # the log holds this run's epochs only: none on a fresh start, the checkpoint's on resume
        write_text_atomic("".join(json.dumps(h) + "\n" for h in history), run_dir / "history.jsonl", overwrite=True)
    t1_draw, pet_draw = model.draw_pairs(len(train_set.ids), np.random.default_rng(0))
    steps = int(np.ceil(len(t1_draw) / options.batch_size))
    if pet_draw is not None:  # unpaired: say whose scans it learns from
        own = int(np.sum(t1_draw == pet_draw))
        stage(
            f"unpaired training: T1s of {len(set(t1_draw))} subjects, PETs of {len(set(pet_draw))}, "
            f"{len(set(t1_draw) & set(pet_draw))} subjects in both; {own} of {len(t1_draw)} draws an own pair"
        )
    for epoch in range(start_epoch, options.epochs):
        set_learning_rate(optimizers, learning_rate(options, epoch))
        model.train()
        rng = np.random.default_rng([options.seed, epoch])  # per-epoch stream: a resumed run repeats it
        torch.manual_seed(options.seed * 100_003 + epoch)  # dropout and the like: a resumed epoch draws the same
        order, pet_order = model.draw_pairs(len(train_set.ids), rng)
        started = time.perf_counter()
        sums: dict[str, float] = {}
        for step in range(steps):
            if options.init_weights and epoch == 0:  # warm up: full-size first steps would wreck trained weights
                set_learning_rate(optimizers, learning_rate(options, epoch) * (step + 1) / steps)
            part = slice(step * options.batch_size, (step + 1) * options.batch_size)
            if pet_order is None:
                mine, weight = ranks.share(np.sort(order[part]))
                batch = make_batch(train_set, mine, device)
            else:
                positions, weight = ranks.share(np.arange(len(order[part])))
                batch = make_batch(train_set, order[part][positions], device, pet_index=pet_order[part][positions])
            if options.augment:
                batch = augment_batch(batch, rng)
            average = functools.partial(ranks.average_gradients, model, weight) if ranks.active else None
            logs = run_updates(model, optimizers, batch, device, options.precision, after_backward=average)
            for k, v in logs.items():
                sums[k] = sums.get(k, 0.0) + v
            if report:
                report(epoch, step, steps, logs)
        model.eval()
        val_mae = validation_mae(model, val_set, device, options.precision)
        own_score = validation_score(model, val_set, device, options.precision)  # e.g. bits/voxel; None: MAE
        seconds = time.perf_counter() - started
        # epochs count from 1 in every file and line a user reads; the checkpoint's "epoch" is the 0-based index
        entry = {"epoch": epoch + 1, **{k: v / steps for k, v in sums.items()}, "val_mae": val_mae, "seconds": seconds}
        if own_score is not None:
            entry["val_score"] = own_score
        entry["steps_per_second"] = steps / seconds
        history.append(entry)
        improved = is_better(val_mae, own_score, best)
        if improved:
            best = {"val_mae": val_mae, "epoch": epoch + 1}
            if own_score is not None:
                best |= {"val_score": own_score, "selected_by": "the model's validation score (lower is better)"}
        if not ranks.writes:  # rank 0 writes for every rank
            continue
        with open(run_dir / "history.jsonl", "a", encoding="utf-8") as log:
            log.write(json.dumps(entry) + "\n")
        if improved:
            _save_atomic({k: v.detach().cpu() for k, v in model.state_dict().items()}, run_dir / "best.pt")
        _save_atomic(
            {
                "format": CHECKPOINT_FORMAT,
                "options": asdict(options),
                "split": split,
                "epoch": epoch,
                "state_dict": {k: v.detach().cpu() for k, v in model.state_dict().items()},
                "optimizers": [opt.state_dict() for opt in optimizers],
                "history": history,
                "best": best,
                "initialised_from": provenance,
            },
            checkpoint_path,
        )
        if report:
            report(epoch, steps - 1, steps, {"val_mae": val_mae, "loss": entry["loss"], "seconds": seconds})
    summary = {
        "options": asdict(options),
        "device": str(device),
        "processes": ranks.world,
        "split_sizes": {k: len(v) for k, v in split.items()},
        "preprocessing_failures": failed,
        "history": history,
        "best": best,
        "train_seconds": float(sum(h["seconds"] for h in history)),
    }
    if ranks.writes:
        (run_dir / "summary.json").write_text(json.dumps(summary, indent=2))
    ranks.stop()
    return summary


def load_run_model(run_dir: str | Path):
    """The best model of a run (falls back to the last checkpoint), with the run's options and split."""
    import torch

    from .models.registry import build_model

    run_dir = Path(run_dir)
    checkpoint_path = run_dir / "checkpoint.pt"
    if not checkpoint_path.exists():
        raise Mri2PetError(f"{run_dir}: no checkpoint.pt here", hint="train first with `mri2pet train`")
    state = torch.load(checkpoint_path, map_location="cpu", weights_only=True)
    options = TrainOptions(**state["options"])
    model = build_model(options.model, options.model_config)
    best_path = run_dir / "best.pt"
    weights = (
        torch.load(best_path, map_location="cpu", weights_only=True) if best_path.exists() else state["state_dict"]
    )
    model.load_state_dict(weights)
    model.eval()
    return model, options, state


def cn_reference_of(model, records: list, device) -> dict | None:
    """The model's own output on the cognitively normal subjects among ``records``: the reports' z-score reference.

    Each PET goes through the same steps as in ``synthesize`` (point estimate, SUVR re-normalisation,
    key-region means), so a report's z compares like with like.
    """
    from .atlas import template_maps
    from .grid import default_grid
    from .key_regions import cn_reference, key_region_means
    from .preprocess import model_output_to_suvr

    normal = [r for r in records if (r.diagnosis or "").upper() == "CN"]
    if len(normal) < 3:
        return None
    grid = default_grid()
    labels = template_maps(grid).aal
    means = []
    for start in range(0, len(normal), 8):
        arrays = load_arrays(normal[start : start + 8])
        if arrays.t1.shape[1:] != grid.shape:
            return None  # data on another grid (tests' small volumes): no atlas labels to measure with
        pred, _ = predict(model, arrays.t1, arrays.mask, arrays.age, device=device, precision="fp32")
        for i in range(len(arrays.ids)):
            brain = arrays.mask[i] > 0
            pet, _ = model_output_to_suvr(pred[i], grid, brain)
            means.append(key_region_means(pet, labels, brain))
    source = f"this model's synthetic PET of the {len(means)} CN subjects of its training split (simulated)"
    return cn_reference(means, source)


def export_run(run_dir: str | Path, out_dir: str | Path, *, overwrite: bool = False, device: str = "auto") -> dict:
    """Score the run's best model on its test split (with both baselines) and write weights + card."""
    from . import __version__
    from .dataset import prepare_dataset
    from .evaluation import mean_training_baseline, population_baseline, score, summarize
    from .grid import default_grid
    from .models.registry import get_model_info
    from .weights import save_weights

    model, options, state = load_run_model(run_dir)
    info = get_model_info(options.model)
    records, _ = prepare_dataset(options.data)
    by_id = {r.subject_id: r for r in records}
    split = state["split"]
    check_split_present(split, ("train", "test"), by_id, options.data)
    test = load_arrays([by_id[s] for s in split["test"]])
    train_arrays = load_arrays([by_id[s] for s in split["train"]])
    dev = resolve_device(device)
    started = time.perf_counter()
    pred, _ = predict(model, test.t1, test.mask, test.age, device=dev, precision="fp32")
    seconds = (time.perf_counter() - started) / len(test.ids)
    metrics = {
        options.model: summarize(score(pred, test)),
        "baseline: mean training PET": summarize(mean_training_baseline(train_arrays, test)),
        "baseline: population": summarize(population_baseline(train_arrays, test)),
    }
    description = (
        json.loads((Path(options.data) / "dataset_description.json").read_text())
        if (Path(options.data) / "dataset_description.json").exists()
        else {}
    )
    history = state["history"]
    card = {
        "version": __version__,
        "summary": info.summary,
        "paper": info.paper,
        "created": time.strftime("%Y-%m-%d"),
        "intended_use": "Research only. Not a medical device; not for diagnosis or treatment decisions.",
        "training_data": {
            "kind": "SIMULATED paired cohort generated by `mri2pet simulate` (not patient data)",
            "simulation": description.get("mri2pet_simulation"),
            # a cohort written before versions existed is version 1
            "cohort_version": (description.get("mri2pet_simulation") or {}).get("version", 1)
            if description.get("mri2pet_simulation")
            else None,
            "split_sizes": {k: len(v) for k, v in split.items()},
            "split": split,
            "split_seed": options.seed,
        },
        "model_grid": default_grid().describe(),
        "input": {
            "modality": "T1-weighted MRI, preprocessed by `mri2pet preprocess`",
            "normalisation": "divided by the median inside MNI white matter (template WM > 0.9); 0 outside the brain",
        },
        "output": {"modality": "FDG-PET", "units": "SUVR, reference cerebellar cortex (AAL Cerebelum_*)"},
        "conditioning": {"kind": info.conditioning, "age_required": info.age_required},
        "training": {
            "epochs": len(history),
            "planned_epochs": options.epochs,  # fewer trained: stopped by a time limit before the schedule ended
            "best_epoch": state["best"]["epoch"],
            "best_selected_by": "validation score of the model (lower is better)"
            if "val_score" in state["best"]
            else "validation MAE",
            "batch_size": options.batch_size,
            "learning_rate": options.lr,
            "schedule": options.schedule,
            "precision": options.precision,
            "augmentation": "left-right flip, +-2 voxel shifts, +-5 % T1 gain" if options.augment else "none",
            "train_seconds": float(sum(h["seconds"] for h in history)),
            "steps_per_second": float(np.mean([h["steps_per_second"] for h in history])) if history else None,
            "device": state["options"]["device"],
            "initialised_from": state.get("initialised_from"),
            **({"where": state["where"]} if state.get("where") else {}),
        },
        "test_metrics": {
            "split": "test",
            "n": len(test.ids),
            "mask": "brain mask on the model grid",
            "data_range": "range of the reference PET (SUVR) inside the mask, per subject",
            "models": metrics,
        },
        "model_seconds_per_subject_cpu": seconds,
        "cn_reference": cn_reference_of(model, [by_id[s] for s in split["train"]], dev),
        **({"model_notes": notes} if (notes := model.card_notes()) else {}),
        "limitations": (
            "Trained and tested on simulated data only: the numbers say the code works, not how the model "
            "does on patients. Validate on your own paired data before any use."
        ),
    }
    files = save_weights(model, out_dir, card, overwrite=overwrite)
    return {"weights": str(files.weights), "card": str(files.card), "test_metrics": metrics}
