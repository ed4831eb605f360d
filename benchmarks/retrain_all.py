"""Retrain, validate, export and (optionally) ship every registered model with one command.

The recipes (epochs, rates, configs) are data: benchmarks/retrain_recipes.json.

    python benchmarks/retrain_all.py --cohort runs/cohort-v3 [--runs runs/retrain-v3] [--models all|unet,...]
        [--split benchmarks/splits/v3_n200_seed0.json] [--init-weights weights/] [--device auto]
        [--epochs unet=6,...] [--ship]

Each model trains in its own run folder (``RUNS/<model>``) through `mri2pet train`, as a subprocess whose
plain log goes to ``RUNS/<model>/train.log``: a checkpoint every epoch, so a kill at any point loses at
most one epoch and rerunning the same command goes on where it stopped (``--resume`` where a checkpoint
exists; a finished export is kept). ``--init-weights weights/`` starts each model from its shipped weights
(a shorter fine-tuning recipe), so a model can be improved over several runs on 2 cores. Every card lists
its chain of runs (``training.runs``: the replayable command, epochs, start weights' hash, data hash).

Shipping is by validation only: ``--ship`` copies a new export into ``weights/`` when its MAE on the split's
validation subjects beats the shipped weights' on the same subjects (``--force`` ships regardless). The test
and calibration subjects are never used to choose. Results: ``RUNS/retrain_summary.json``.

The cohort is the simulator's (not patient data):
``mri2pet simulate runs/cohort-v3 --n 200 --seed 0 --sim-version 3 --jobs 2`` renders the one the shipped
split file names (version 3: the shipped weights' cohort; version 4, the default now, is the next retraining's).
"""

from __future__ import annotations

import argparse
import json
import shutil
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
DEFAULT_SPLIT = ROOT / "benchmarks" / "splits" / "v3_n200_seed0.json"
RECIPES_FILE = ROOT / "benchmarks" / "retrain_recipes.json"


@dataclass(frozen=True)
class Recipe:
    """How one model is trained: from scratch (``epochs``, ``lr``) or from its shipped weights
    (``finetune_epochs``, ``finetune_lr``); ``config`` is the model's JSON options; ``precision`` is
    `train --precision` (auto: bf16 on a GPU, fp32 on the CPU; bf16 where the recipe's note says it is safe)."""

    epochs: int
    lr: float
    batch_size: int
    finetune_epochs: int
    finetune_lr: float
    config: dict = field(default_factory=dict)
    precision: str = "auto"


def read_recipes(path: Path = RECIPES_FILE) -> dict[str, Recipe]:
    """The recipes table (data, with the reasons in its notes): one per registered model."""
    models = json.loads(path.read_text())["models"]
    return {name: Recipe(**{k: v for k, v in fields.items() if k != "note"}) for name, fields in models.items()}


RECIPES: dict[str, Recipe] = read_recipes()


def parse_epochs(text: str | None) -> dict[str, int]:
    if not text:
        return {}
    pairs = [item.split("=", 1) for item in text.split(",") if item.strip()]
    return {name.strip(): int(value) for name, value in pairs}


def train_command(model: str, args, run_dir: Path, recipe: Recipe, epochs: int, finetune: bool) -> list[str]:
    """The `mri2pet train` command of one model's run (resumed where its folder has a checkpoint)."""
    mri2pet = str(Path(sys.executable).with_name("mri2pet"))
    command = [mri2pet, "train", "--model", model, "--data", str(args.cohort), "-o", str(run_dir)]
    command += ["--epochs", str(epochs), "--batch-size", str(recipe.batch_size), "--seed", str(args.seed)]
    command += ["--lr", f"{recipe.finetune_lr if finetune else recipe.lr:g}", "--device", args.device]
    command += ["--precision", recipe.precision]
    split = Path(args.split).resolve()
    split = split.relative_to(ROOT) if split.is_relative_to(ROOT) else split  # the card's command replays anywhere
    command += ["--config", json.dumps(recipe.config), "--split", str(split), "--jobs", str(args.jobs)]
    command += ["--export", "--export-dir", str(run_dir / "export")]
    if finetune:
        command += ["--init-weights", str(Path(args.init_weights) / f"{model}.pt")]
    if (run_dir / "checkpoint.pt").exists():
        command.append("--resume")
    return command


def exported(run_dir: Path, model: str) -> Path | None:
    """The run's exported card where weights and card are both there; a half export is removed."""
    weights, card = run_dir / "export" / f"{model}.pt", run_dir / "export" / f"{model}.json"
    if weights.exists() and card.exists():
        return card
    for path in (weights, card):
        path.unlink(missing_ok=True)  # killed between the two writes: export again
    return None


def run_model(model: str, args, log) -> dict:
    """Train and export one model (or find it done); what happened, with the wall time."""
    recipe = RECIPES[model]
    run_dir = Path(args.runs) / model
    run_dir.mkdir(parents=True, exist_ok=True)
    if (card := exported(run_dir, model)) is not None:
        log(f"{model}: exported already ({card}); skipped")
        return {"status": "done before", "card": str(card)}
    finetune = bool(args.init_weights)
    epochs = args.epochs.get(model, recipe.finetune_epochs if finetune else recipe.epochs)
    command = train_command(model, args, run_dir, recipe, epochs, finetune)
    log(f"{model}: {' '.join(command[1:])}")
    started = time.perf_counter()
    with open(run_dir / "train.log", "a", encoding="utf-8") as out:
        code = subprocess.call(command, stdout=out, stderr=subprocess.STDOUT, cwd=ROOT)
    seconds = time.perf_counter() - started
    card = exported(run_dir, model)
    if code != 0 or card is None:
        log(f"{model}: failed (exit {code}) after {seconds:.0f} s; see {run_dir / 'train.log'}")
        return {"status": "failed", "exit_code": code, "seconds": seconds}
    log(f"{model}: trained and exported in {seconds:.0f} s")
    return {"status": "trained", "card": str(card), "seconds": seconds}


def validation_mae_of(model: str, weights: Path, args) -> float:
    """Masked MAE (SUVR) of ``weights`` on the split's validation subjects: the only score that ships."""
    import numpy as np

    from mri2pet_cli.evaluation.scoring import score
    from mri2pet_cli.models.registry import load_model
    from mri2pet_cli.models.runtime import predict, resolve_device
    from mri2pet_cli.preprocessing.cohort import load_arrays, prepare_dataset, read_split

    split = read_split(args.split, args.cohort)
    records, _ = prepare_dataset(args.cohort, only=split["validation"])
    arrays = load_arrays(records)
    net, _, _ = load_model(model, weights)
    device = resolve_device(args.device)
    pred, _ = predict(net, arrays.t1, arrays.mask, arrays.age, device=device, precision="fp32")
    return float(np.mean([row["mae"] for row in score(pred, arrays)]))


def compare_and_ship(model: str, result: dict, args, log) -> None:
    """Validation MAE of the new export against the shipped weights; ship when better (or --force)."""
    if "card" not in result:
        return
    new_weights = Path(result["card"]).with_suffix(".pt")
    shipped = Path(args.weights_dir) / f"{model}.pt"
    result["validation_mae_new"] = validation_mae_of(model, new_weights, args)
    result["validation_mae_shipped"] = validation_mae_of(model, shipped, args) if shipped.exists() else None
    better = result["validation_mae_shipped"] is None or result["validation_mae_new"] < result["validation_mae_shipped"]
    result["better_on_validation"] = better
    shipped_mae = result["validation_mae_shipped"]
    shipped_text = "none shipped" if shipped_mae is None else f"{shipped_mae:.4f}"
    log(f"{model}: validation MAE new {result['validation_mae_new']:.4f}, shipped {shipped_text}")
    if args.ship and (better or args.force):
        for suffix in (".pt", ".json"):
            shutil.copy2(new_weights.with_suffix(suffix), Path(args.weights_dir) / f"{model}{suffix}")
        result["shipped"] = True
        log(f"{model}: shipped to {args.weights_dir}")


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--cohort", required=True, help="the simulated cohort (BIDS-like, as `simulate` writes it)")
    parser.add_argument("--runs", default="runs/retrain", help="one run folder per model under here")
    parser.add_argument("--models", default="all", help="all, or a comma list in the order to train")
    parser.add_argument("--split", default=str(DEFAULT_SPLIT), help="train/validation/calibration/test split")
    parser.add_argument("--init-weights", default=None, help="a weights folder: fine-tune from its files")
    parser.add_argument("--device", default="auto")
    parser.add_argument("--epochs", type=parse_epochs, default={}, help="override, e.g. unet=2,gla-gan=10")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--jobs", type=int, default=1, help="preprocessing processes (first run only)")
    parser.add_argument("--weights-dir", default=str(ROOT / "weights"), help="the shipped weights to compare with")
    parser.add_argument("--ship", action="store_true", help="copy exports that beat the shipped weights")
    parser.add_argument("--force", action="store_true", help="with --ship: ship even when not better")
    args = parser.parse_args(argv)
    args.model_list = list(RECIPES) if args.models == "all" else [m.strip() for m in args.models.split(",")]
    unknown = [m for m in args.model_list if m not in RECIPES]
    if unknown:
        parser.error(f"no recipe for {', '.join(unknown)} (known: {', '.join(RECIPES)})")
    return args


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    models = args.model_list
    Path(args.runs).mkdir(parents=True, exist_ok=True)
    summary_path = Path(args.runs) / "retrain_summary.json"

    def log(line: str) -> None:
        print(f"{time.strftime('%H:%M:%S')} {line}", flush=True)

    summary = json.loads(summary_path.read_text()) if summary_path.exists() else {}
    for model in models:
        result = run_model(model, args, log)
        compare_and_ship(model, result, args, log)
        summary[model] = result
        summary_path.write_text(json.dumps(summary, indent=2))
    failed = [m for m in models if summary[m]["status"] == "failed"]
    log(f"done: {len(models) - len(failed)} of {len(models)} models; failed: {', '.join(failed) or 'none'}")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
