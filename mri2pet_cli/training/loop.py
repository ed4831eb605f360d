"""One training loop for every registered model, in phases: open the run, load the data, build the model,
then epochs (updates, validation, checkpoint) until the schedule ends."""

from __future__ import annotations

import functools
import json
import time
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path

import numpy as np

from mri2pet_cli.console import stage
from mri2pet_cli.errors import Mri2PetError, OutputExistsError
from mri2pet_cli.evaluation.scoring import validation_mae, validation_score
from mri2pet_cli.io import write_text_atomic
from mri2pet_cli.models.registry import build_model, get_model_info, load_model_checkpoint
from mri2pet_cli.models.runtime import resolve_device
from mri2pet_cli.models.weights import load_state
from mri2pet_cli.preprocessing.cohort import (
    Arrays,
    check_split_present,
    data_fingerprint,
    load_arrays,
    prepare_dataset,
    read_split,
    split_subjects,
    subset,
    write_split,
)
from mri2pet_cli.training.batches import augment_batch, make_batch, run_updates
from mri2pet_cli.training.checkpoints import cpu_state, read_checkpoint, save_atomic, write_checkpoint
from mri2pet_cli.training.distributed import Distributed
from mri2pet_cli.training.options import TrainOptions, learning_rate, replay_command, set_learning_rate


@dataclass
class RunData:
    split: dict[str, list[str]]
    train: Arrays
    validation: Arrays
    failed: dict[str, str]
    fingerprint: str  # sha256 of the training and validation subjects' preprocessed files


@dataclass
class Progress:
    """What a checkpoint carries from epoch to epoch."""

    history: list[dict] = field(default_factory=list)
    best: dict = field(default_factory=lambda: {"val_mae": float("inf"), "epoch": 0})
    start_epoch: int = 0
    initialised_from: dict | None = None
    runs: list[dict] = field(default_factory=list)  # each start or resume: command, first epoch, data hash


def open_run(options: TrainOptions, resume: bool, overwrite: bool) -> tuple[TrainOptions, dict | None]:
    """The run folder, made; on ``resume`` its checkpoint and the options it was started with."""
    run_dir = Path(options.run_dir)
    checkpoint_path = run_dir / "checkpoint.pt"
    if checkpoint_path.exists() and not (resume or overwrite):
        raise OutputExistsError(f"{run_dir}: holds a training run", hint="pass --resume to continue it or --overwrite")
    run_dir.mkdir(parents=True, exist_ok=True)
    if not (resume and checkpoint_path.exists()):
        return options, None
    state = read_checkpoint(checkpoint_path, options.model)
    saved = state["options"]
    return TrainOptions(**{**saved, "epochs": options.epochs, "device": options.device, "jobs": options.jobs}), state


def load_run_data(options: TrainOptions, state: dict | None, writes: bool) -> RunData:
    """Preprocess what is not cached, fix the split (the checkpoint's, a recorded one, or a new draw)."""
    stage(f"preparing data in {options.data} (preprocessing what is not cached)")
    records, failed = prepare_dataset(options.data, jobs=options.jobs)
    if state:
        split = state["split"]
    elif options.split_file:
        split = read_split(options.split_file, options.data)
    else:
        ids = [r.subject_id for r in records]
        split = split_subjects(ids, options.seed, options.val_fraction, options.test_fraction)
    if writes:
        write_split(split, Path(options.run_dir) / "split.json")
    by_id = {r.subject_id: r for r in records}
    # the test subjects are needed only by export / evaluate: training may run on a copy without them
    check_split_present(split, ("train", "validation"), by_id, options.data)
    seen = [by_id[s] for s in split["train"] + split["validation"]]
    arrays = load_arrays(seen)
    data = RunData(
        split, subset(arrays, split["train"]), subset(arrays, split["validation"]), failed, data_fingerprint(seen)
    )
    if get_model_info(options.model).age_required and np.isnan(data.train.age).any():
        raise Mri2PetError(f"{options.data}: model {options.model} needs every subject's age in participants.tsv")
    return data


def load_initial_weights(options: TrainOptions) -> tuple[dict, dict]:
    """The verified weights file named by ``options.init_weights`` and a record of where it came from."""
    checkpoint, card, files = load_model_checkpoint(options.model, options.init_weights)
    provenance = {"file": files.weights.name, "sha256": card.get("sha256"), "training": card.get("training")}
    return checkpoint, provenance


def build_run_model(options: TrainOptions, state: dict | None, data: RunData, device):
    """The model and its optimizers: from the checkpoint (resume), or fresh (data statistics, then any
    initial weights). Returns the options (an initial file's config merged in), model, optimizers, progress."""
    import torch

    initial, provenance = None, None
    if options.init_weights and not state:
        initial, provenance = load_initial_weights(options)
        options = replace(options, model_config={**initial["config"], **options.model_config})
    torch.manual_seed(options.seed)
    model = build_model(options.model, options.model_config).to(device)
    optimizers = model.configure_optimizers(options.lr)
    if state:
        model.load_state_dict(state["state_dict"])
        for opt, opt_state in zip(optimizers, state["optimizers"]):
            opt.load_state_dict(opt_state)
        progress = Progress(
            state["history"], state["best"], state["epoch"] + 1, state.get("initialised_from"), state.get("runs", [])
        )
        if progress.start_epoch < options.epochs:
            progress.runs.append(run_record(options, data, progress.start_epoch, resumed=True))
        return options, model, optimizers, progress
    volumes = (data.train.t1, data.train.pet, data.train.mask)
    model.fit_data_statistics(
        *(torch.from_numpy(v[:, None]).to(device) for v in volumes),
        age=data.train.age,
        diagnosis=data.train.diagnosis or None,
    )
    if initial:
        provenance["new_parameters"] = load_state(
            model, initial, options.init_weights, architecture=options.model, partial=True
        )
    model.before_training()
    runs = [run_record(options, data, 0, start_weights=provenance["sha256"] if provenance else None)]
    return options, model, optimizers, Progress(initialised_from=provenance, runs=runs)


def run_record(options: TrainOptions, data: RunData, start_epoch: int, *, resumed=False, start_weights=None) -> dict:
    """One link of a run's chain: the command that (re)started it, from which epoch, on which data."""
    command = replay_command(options) + (" --resume" if resumed else "")
    record = {"command": command, "first_epoch": start_epoch + 1, "data_sha256": data.fingerprint}
    return record | ({} if resumed else {"start_weights_sha256": start_weights})


def draws_per_epoch(model, n: int) -> int:
    """How many (T1, PET) draws an epoch makes of ``n`` subjects; for unpaired models, whose scans they are."""
    t1_draw, pet_draw = model.draw_pairs(n, np.random.default_rng(0))
    if pet_draw is None:
        return len(t1_draw)
    own = int(np.sum(t1_draw == pet_draw))
    stage(
        f"unpaired training: T1s of {len(set(t1_draw))} subjects, PETs of {len(set(pet_draw))}, "
        f"{len(set(t1_draw) & set(pet_draw))} subjects in both; {own} of {len(t1_draw)} draws an own pair"
    )
    return len(t1_draw)


def train_epoch(
    model, optimizers, options: TrainOptions, train_set: Arrays, epoch: int, steps: int, device, ranks, report
) -> dict[str, float]:
    """One pass over the training subjects; the mean of each logged loss."""
    import torch

    set_learning_rate(optimizers, learning_rate(options, epoch))
    model.train()
    rng = np.random.default_rng([options.seed, epoch])  # per-epoch stream: a resumed run repeats it
    torch.manual_seed(options.seed * 100_003 + epoch)  # dropout and the like: a resumed epoch draws the same
    order, pet_order = model.draw_pairs(len(train_set.ids), rng)
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
    return {k: v / steps for k, v in sums.items()}


def is_better(val_mae: float, own_score: float | None, best: dict) -> bool:
    """Whether this epoch beats the best so far: by the model's own validation score where it has one
    (e.g. DUAL-GLOW's validation likelihood), else by validation MAE."""
    if own_score is not None:
        return own_score < best.get("val_score", float("inf"))
    return val_mae < best["val_mae"]


def validate_epoch(model, val_set: Arrays, options: TrainOptions, device, progress: Progress, entry: dict) -> bool:
    """Score the epoch on the validation subjects into ``entry``; update the best; whether it improved."""
    model.eval()
    val_mae = validation_mae(model, val_set, device, options.precision)
    own_score = validation_score(model, val_set, device, options.precision)  # e.g. bits/voxel; None: MAE
    entry["val_mae"] = val_mae
    if own_score is not None:
        entry["val_score"] = own_score
    if not is_better(val_mae, own_score, progress.best):
        return False
    progress.best = {"val_mae": val_mae, "epoch": entry["epoch"]}
    if own_score is not None:
        progress.best |= {"val_score": own_score, "selected_by": "the model's validation score (lower is better)"}
    return True


def train(options: TrainOptions, *, resume: bool = False, overwrite: bool = False, report=None) -> dict:
    """Train ``options.model`` on ``options.data``; checkpoints in ``run_dir`` every epoch.

    ``report(epoch, step, steps, logs)`` is called after every step (for a progress bar).
    Returns the run summary (also written to run_dir/summary.json).
    """
    get_model_info(options.model)
    options, state = open_run(options, resume, overwrite)
    run_dir = Path(options.run_dir)
    ranks = Distributed.from_environment()  # torchrun: one process per device; otherwise a no-op
    device = ranks.start(resolve_device(options.device))
    report = report if ranks.writes else None  # one progress display, rank 0's
    data = load_run_data(options, state, ranks.writes)
    options, model, optimizers, progress = build_run_model(options, state, data, device)
    if ranks.writes:  # the log holds this run's epochs only: none on a fresh start, the checkpoint's on resume
        lines = "".join(json.dumps(h) + "\n" for h in progress.history)
        write_text_atomic(lines, run_dir / "history.jsonl", overwrite=True)
    steps = int(np.ceil(draws_per_epoch(model, len(data.train.ids)) / options.batch_size))
    for epoch in range(progress.start_epoch, options.epochs):
        started = time.perf_counter()
        losses = train_epoch(model, optimizers, options, data.train, epoch, steps, device, ranks, report)
        # epochs count from 1 in every file and line a user reads; the checkpoint's "epoch" is the 0-based index
        entry = {"epoch": epoch + 1, **losses}
        improved = validate_epoch(model, data.validation, options, device, progress, entry)
        seconds = time.perf_counter() - started
        entry |= {"seconds": seconds, "steps_per_second": steps / seconds}
        progress.history.append(entry)
        if not ranks.writes:  # rank 0 writes for every rank
            continue
        with open(run_dir / "history.jsonl", "a", encoding="utf-8") as log:
            log.write(json.dumps(entry) + "\n")
        if improved:
            save_atomic(cpu_state(model), run_dir / "best.pt")
        write_checkpoint(
            run_dir / "checkpoint.pt",
            model,
            optimizers,
            options,
            data.split,
            epoch,
            history=progress.history,
            best=progress.best,
            initialised_from=progress.initialised_from,
            runs=progress.runs,
        )
        if report:
            report(epoch, steps - 1, steps, {"val_mae": entry["val_mae"], "loss": entry["loss"], "seconds": seconds})
    summary = {
        "options": asdict(options),
        "device": str(device),
        "processes": ranks.world,
        "split_sizes": {k: len(v) for k, v in data.split.items()},
        "preprocessing_failures": data.failed,
        "history": progress.history,
        "best": progress.best,
        "runs": progress.runs,
        "train_seconds": float(sum(h["seconds"] for h in progress.history)),
    }
    if ranks.writes:
        (run_dir / "summary.json").write_text(json.dumps(summary, indent=2))
    ranks.stop()
    return summary
