"""The seeds' own comparisons, from the model cards' test metrics, grouped by the test split each card used.

- seed 003 Table 1: axial-only vs three-plane pix2pix (MSE, PSNR, SSIM) against its baseline "each PET vs
  all other training PETs" (our population baseline);
- CycleGAN trained with independent draws vs disjoint halves (pairs never seen);
- 2D vs 3D (seed 001 on memory and context): pix2pix-2d, pix2pix-3d and unet, with the model time and the
  peak memory of one synthesis on this CPU (each measured in its own process).

Usage: python benchmarks/seed_comparisons.py [NAME=CARD ...] (defaults below); writes
benchmarks/results/seed_comparisons.json. The cards of configurations we do not ship (axial-only pix2pix,
CycleGAN on disjoint halves) are kept in benchmarks/results/cards/; where a card's weights are not in the
checkout, its time and memory are the card's own (``"timing": "card"``) instead of a fresh probe.

Cards trained on different simulator versions were tested on different subjects: each row names its test
split ("v3, 40 test subjects"), the baselines are given per split, and the printout compares rows only
within one split. The two configurations we do not ship exist only on v2 (their weights are gone), so the
axial-only and disjoint-halves comparisons stay v2 comparisons until they are retrained.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
DEFAULT_CARDS = {
    "pix2pix-2d (three planes)": "weights/pix2pix-2d.json",
    "pix2pix-2d (axial)": "benchmarks/results/cards/pix2pix-2d-axial.json",
    "cyclegan-3d (independent draws)": "weights/cyclegan-3d.json",
    "cyclegan-3d (disjoint halves)": "benchmarks/results/cards/cyclegan-3d-disjoint-halves.json",
    "pix2pix-3d": "weights/pix2pix-3d.json",
    "unet": "weights/unet.json",
    "gla-gan": "weights/gla-gan.json",
    "dual-glow (1 sample)": "weights/dual-glow.json",
}
MEMORY_PROBE = """
import resource, sys, time, torch
from mri2pet_cli.models.registry import load_model
torch.set_num_threads(2)
model, card, _ = load_model(sys.argv[1], sys.argv[2])
t1 = torch.rand(1, 1, 64, 80, 64)
mask = torch.ones_like(t1)
model.synthesize(t1, mask, torch.tensor([70.0]))
start = time.perf_counter()
model.synthesize(t1, mask, torch.tensor([70.0]))
print(time.perf_counter() - start, resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024**2)
"""


def probe(name: str, weights: Path) -> dict:
    out = subprocess.run(
        [sys.executable, "-c", MEMORY_PROBE, name, str(weights)], capture_output=True, text=True, check=True, cwd=ROOT
    )
    seconds, peak_gb = (float(v) for v in out.stdout.split())
    return {"model_seconds_cpu": round(seconds, 2), "peak_memory_gb": round(peak_gb, 2)}


def card_timing(card: dict) -> dict:
    """The time and peak memory the card records for one synthesis on the CPU."""
    recorded = card.get("model_seconds_per_subject_cpu")
    seconds = recorded.get("seconds", recorded.get("mean")) if isinstance(recorded, dict) else recorded
    return {"model_seconds_cpu": seconds, "peak_memory_gb": card.get("peak_memory_gb")}


METRICS = ("mae", "mse", "psnr", "ssim")


def split_of_card(card: dict) -> str:
    """'v3, 40 test subjects': the simulator version and size of the split the card's test metrics used.
    The two reconstructed v2 cards (no training data recorded) say so in their ``source``."""
    data = card.get("training_data")
    if data is None:
        return "v2, 15 test subjects"
    return f"v{data.get('cohort_version', 2)}, {data['split_sizes']['test']} test subjects"


def main(cards: dict[str, str]) -> dict:
    rows, baselines = {}, {}
    for label, path in cards.items():
        card = json.loads((ROOT / path).read_text())
        models = card["test_metrics"]["models"]
        own, split = models[card["name"]], split_of_card(card)
        rows[label] = {m: round(own[m]["mean"], 4) for m in METRICS} | {"test_split": split}
        rows[label] |= {"epochs": card["training"]["epochs"], "config": card["architecture"]["config"]}
        weights = (ROOT / path).with_suffix(".pt")
        if weights.exists():
            rows[label] |= probe(card["name"], weights) | {"timing": "measured now"}
        else:
            rows[label] |= card_timing(card) | {"timing": "card"}
        others = {k: v for k, v in models.items() if k != card["name"]}
        if others and split not in baselines:  # one split, one set of baselines
            baselines[split] = {k: {m: round(v[m]["mean"], 4) for m in METRICS} for k, v in others.items()}
    for split in sorted({row["test_split"] for row in rows.values()}, reverse=True):
        print(f"\n{split}\n{'model':34s} {'MAE':>7s} {'MSE':>7s} {'PSNR':>6s} {'SSIM':>6s} {'s/subj':>7s} {'GB':>5s}")
        for label, row in rows.items():
            if row["test_split"] != split:
                continue
            seconds, peak = row["model_seconds_cpu"], row["peak_memory_gb"]
            print(
                f"{label:34s} {row['mae']:7.4f} {row['mse']:7.4f} {row['psnr']:6.2f} {row['ssim']:6.3f}"
                f" {seconds if seconds is None else f'{seconds:.2f}':>7} {peak if peak is None else f'{peak:.2f}':>5}"
            )
        for label, row in baselines.get(split, {}).items():
            print(f"{label:34s} {row['mae']:7.4f} {row['mse']:7.4f} {row['psnr']:6.2f} {row['ssim']:6.3f}")
    result = {
        "about": "rows compare only within one test split (each row's test_split); baselines per split",
        "models": rows,
        "baselines": baselines,
    }
    out = ROOT / "benchmarks" / "results" / "seed_comparisons.json"
    out.write_text(json.dumps(result, indent=2))
    return result


if __name__ == "__main__":
    given = dict(arg.split("=", 1) for arg in sys.argv[1:])
    main(given or DEFAULT_CARDS)
