"""The seeds' own comparisons on the held-out v2 test split, from the model cards' test metrics.

- seed 003 Table 1: axial-only vs three-plane pix2pix (MSE, PSNR, SSIM) against its baseline "each PET vs
  all other training PETs" (our population baseline);
- CycleGAN trained with independent draws vs disjoint halves (pairs never seen);
- 2D vs 3D (seed 001 on memory and context): pix2pix-2d, pix2pix-3d and unet, with the model time and the
  peak memory of one synthesis on this CPU (each measured in its own process).

Usage: python benchmarks/seed_comparisons.py [NAME=CARD ...] (defaults below); writes
benchmarks/results/seed_comparisons.json. The cards of configurations we do not ship (axial-only pix2pix,
CycleGAN on disjoint halves) are kept in benchmarks/results/cards/; where a card's weights are not in the
checkout, its time and memory are the card's own (``"timing": "card"``) instead of a fresh probe.
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


def main(cards: dict[str, str]) -> dict:
    rows, baselines = {}, {}
    for label, path in cards.items():
        card = json.loads((ROOT / path).read_text())
        models = card["test_metrics"]["models"]
        own = models[card["name"]]
        rows[label] = {m: round(own[m]["mean"], 4) for m in ("mae", "mse", "psnr", "ssim")}
        rows[label] |= {"epochs": card["training"]["epochs"], "config": card["architecture"]["config"]}
        weights = (ROOT / path).with_suffix(".pt")
        if weights.exists():
            rows[label] |= probe(card["name"], weights) | {"timing": "measured now"}
        else:
            rows[label] |= card_timing(card) | {"timing": "card"}
        if not baselines:  # the same split in every card: its baselines once
            metrics = {k: v for k, v in models.items() if k != card["name"]}
            baselines = {
                k: {m: round(v[m]["mean"], 4) for m in ("mae", "mse", "psnr", "ssim")} for k, v in metrics.items()
            }
    print(f"{'model':34s} {'MAE':>7s} {'MSE':>7s} {'PSNR':>6s} {'SSIM':>6s} {'s/subj':>7s} {'GB':>5s}")
    for label, row in rows.items():
        seconds, peak = row["model_seconds_cpu"], row["peak_memory_gb"]
        print(
            f"{label:34s} {row['mae']:7.4f} {row['mse']:7.4f} {row['psnr']:6.2f} {row['ssim']:6.3f}"
            f" {seconds if seconds is None else f'{seconds:.2f}':>7} {peak if peak is None else f'{peak:.2f}':>5}"
        )
    for label, row in baselines.items():
        print(f"{label:34s} {row['mae']:7.4f} {row['mse']:7.4f} {row['psnr']:6.2f} {row['ssim']:6.3f}")
    result = {
        "test_split": "v2 cohort, 15 held-out subjects (the unet run's split)",
        "models": rows,
        "baselines": baselines,
    }
    out = ROOT / "benchmarks" / "results" / "seed_comparisons.json"
    out.write_text(json.dumps(result, indent=2))
    return result


if __name__ == "__main__":
    given = dict(arg.split("=", 1) for arg in sys.argv[1:])
    main(given or DEFAULT_CARDS)
