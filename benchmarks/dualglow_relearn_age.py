"""Does fine-tuning re-learn age from a lab's pairs? (issue 36: "fine-tuning re-learns age")

    python benchmarks/dualglow_relearn_age.py --data runs/cohort-v3 [--pairs 40] [--epochs 2]
        [--runs runs/relearn-age]

1. The shipped DUAL-GLOW with its whole age path reset: the age embedding's last layer, every prior's
   per-voxel age slope and the pairs age path (models/age_effect.py) set to zero; saved with its card.
2. `mri2pet train --init-weights` that file on the first ``--pairs`` training pairs of the shipped split, with
   their ages (the shipped recipe's options, lr 5e-5; validation and test as the split says), then exported.
   Resumable: a rerun goes on from the run's checkpoint, and an export already made is kept.
3. With the T1 fixed, the SUVR change per decade from --age 60 to 90 (the subject's own age as the scan age,
   as benchmarks/dualglow_figures.py measures it) on the first ``--subjects`` test subjects, for the shipped
   weights, the reset ones and the fine-tuned ones, next to the age-only truth the shipped card's figures hold
   (simulator truth, for measuring only; nothing here trains on it).
Writes benchmarks/results/dualglow_relearn_age.json.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import torch

from mri2pet_cli.models.registry import load_model
from mri2pet_cli.models.weights import save_weights
from mri2pet_cli.preprocessing.cohort import load_arrays, prepare_dataset
from mri2pet_cli.space.atlas import template_maps
from mri2pet_cli.space.grid import default_grid

ROOT = Path(__file__).resolve().parents[1]
SPLIT = ROOT / "benchmarks" / "splits" / "v3_n200_seed0.json"
CARD_ONLY = ("file", "sha256", "size_bytes", "architecture", "figures", "uncertainty_calibration", "test_metrics")


def reset_age_path(out_dir: Path) -> Path:
    """The shipped weights with no age in them, written with their card; returns the weights file."""
    model, card, _ = load_model("dual-glow")
    with torch.no_grad():
        last = model.age_mlp[-1]
        last.weight.zero_()
        last.bias.zero_()
        model.age_slope.zero_()
        for slope in model.age_slopes:
            slope.zero_()
        model.pairs_age = torch.zeros(0, dtype=torch.float64)
    fields = {k: v for k, v in card.items() if k not in CARD_ONLY}
    fields["training_notes"] = "the shipped weights with the age embedding, age slopes and pairs age path zeroed"
    return save_weights(model, out_dir, fields, overwrite=True).weights


def small_split(pairs: int, out: Path) -> Path:
    split = json.loads(SPLIT.read_text())
    split["train"] = split["train"][:pairs]
    split["use"] = dict(split["use"], train=f"the first {pairs} training pairs of {SPLIT.name}")
    out.write_text(json.dumps(split, indent=1))
    return out


def fine_tune(args, start: Path, split: Path, run_dir: Path) -> Path:
    """`mri2pet train` from ``start`` with the shipped recipe's options; the exported weights."""
    from mri2pet_cli.training import export_run

    export = run_dir / "export" / "dual-glow.pt"
    if export.exists() and export.with_suffix(".json").exists():
        return export
    config = json.loads((ROOT / "weights" / "dual-glow.json").read_text())["architecture"]["config"]
    command = [str(Path(sys.executable).with_name("mri2pet")), "train", "--model", "dual-glow"]
    command += ["--data", str(args.data), "-o", str(run_dir), "--epochs", str(args.epochs), "--batch-size", "2"]
    command += ["--lr", "5e-5", "--seed", "0", "--config", json.dumps(config), "--split", str(split)]
    command += ["--init-weights", str(start)]
    if (run_dir / "checkpoint.pt").exists():
        command.append("--resume")
    subprocess.run(command, check=True, cwd=ROOT)
    export_run(run_dir, run_dir / "export", overwrite=True, device="cpu")
    return export


def age_slopes(weights: Path | None, arrays, labels) -> dict[str, dict[str, float]]:
    """Mean and SD over subjects of each region's SUVR per decade, T1 fixed, ages 60-90."""
    from dualglow_figures import curve_slopes, synthetic_age_curves  # benchmarks/ is the script's folder

    model, _, _ = load_model("dual-glow", weights)
    slopes = {region: curve_slopes(c) for region, c in synthetic_age_curves(model, arrays, labels).items()}
    return {
        region: {"mean": round(float(np.mean(s)), 4), "sd": round(float(np.std(s)), 4)} for region, s in slopes.items()
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--data", type=Path, required=True)
    parser.add_argument("--pairs", type=int, default=40)
    parser.add_argument("--epochs", type=int, default=2)
    parser.add_argument("--subjects", type=int, default=25)
    parser.add_argument("--runs", type=Path, default=ROOT / "runs" / "relearn-age")
    parser.add_argument("--out", type=Path, default=ROOT / "benchmarks" / "results" / "dualglow_relearn_age.json")
    args = parser.parse_args()
    torch.set_num_threads(2)
    args.runs.mkdir(parents=True, exist_ok=True)
    reset = reset_age_path(args.runs / "reset")
    tuned = fine_tune(args, reset, small_split(args.pairs, args.runs / "split.json"), args.runs / "run")

    shipped_card = json.loads((ROOT / "weights" / "dual-glow.json").read_text())
    test_ids = shipped_card["training_data"]["split"]["test"][: args.subjects]
    records, _ = prepare_dataset(args.data, only=test_ids)
    arrays = load_arrays(records)
    labels = template_maps(default_grid()).aal
    truth = shipped_card["figures"]["age_slope_suvr_per_decade"]
    result = {"pairs": args.pairs, "epochs": args.epochs, "subjects": len(arrays.ids), "slopes": {}}
    result["truth_age_only"] = {r: round(v["truth_metabolic_mean"], 4) for r, v in truth.items()}
    for name, weights in (("shipped", None), ("age path reset", reset), (f"reset + {args.pairs} pairs", tuned)):
        result["slopes"][name] = age_slopes(weights, arrays, labels)
        row = ", ".join(f"{r} {v['mean']:+.4f}" for r, v in result["slopes"][name].items())
        print(f"{name}: {row}", flush=True)
    print("truth (age only): " + ", ".join(f"{r} {v:+.4f}" for r, v in result["truth_age_only"].items()))
    args.out.write_text(json.dumps(result, indent=1))
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
