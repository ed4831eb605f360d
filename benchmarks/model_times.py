"""Model time of every shipped model on one preprocessed subject, with and without oneDNN for the small
3D convolutions (models/cpu_kernels.py), and how far the two outputs lie apart.

    python benchmarks/model_times.py                      # simulates and preprocesses one subject first
    python benchmarks/model_times.py --preprocessed runs/preproc-acc --subject sub-104

Runs `evaluation.predict` (what `synthesize` runs) on the CPU with 2 torch threads, best of 3 after a
warm-up, one sample at T = 0 and, for dual-glow, also 8 samples. Writes benchmarks/results/model_times.json.
"""

from __future__ import annotations

import argparse
import json
import tempfile
import time
from pathlib import Path

import numpy as np
import torch

import mri2pet_cli.models.cpu_kernels as cpu_kernels
from mri2pet_cli.inference.synthesis import cached_model
from mri2pet_cli.models.registry import model_names
from mri2pet_cli.models.runtime import predict
from mri2pet_cli.preprocessing.pipeline import preprocess
from mri2pet_cli.preprocessing.storage import load_preprocessed


def subject_arrays(args) -> tuple[np.ndarray, np.ndarray, str]:
    if args.preprocessed:
        result = load_preprocessed(args.preprocessed, args.subject)
        return result.t1, result.mask, f"{args.preprocessed}/{args.subject}"
    from mri2pet_cli.simulation.cohort import simulate_cohort, subject_paths

    folder = Path(tempfile.mkdtemp(prefix="mri2pet-times-"))
    simulate_cohort(folder, 1, seed=3)
    result = preprocess(subject_paths(folder, "sub-001")["t1"])
    return result.t1, result.mask, "simulated v2 subject (seed 3, sub-001)"


def best_time(model, t1, mask, age, samples: int) -> tuple[float, np.ndarray]:
    predict(model, t1, mask, age, device="cpu", samples=samples)
    times, out = [], None
    for _ in range(3):
        start = time.perf_counter()
        out, _ = predict(model, t1, mask, age, device="cpu", samples=samples, temperature=1.0 if samples > 1 else 0.0)
        times.append(time.perf_counter() - start)
    return min(times), out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--preprocessed", type=Path, help="a folder written by `mri2pet preprocess`")
    parser.add_argument("--subject", default="sub-001")
    args = parser.parse_args()
    torch.set_num_threads(2)
    t1, mask, source = subject_arrays(args)
    t1, mask, age = t1[None], mask[None].astype(np.float32), np.array([70.0], np.float32)
    rows = []
    limit = cpu_kernels.SLOW_KERNEL_LIMIT
    for name in model_names():
        model = cached_model(name, None)[0]
        for samples in (1, 8) if name == "dual-glow" else (1,):
            timed = {}
            for label, value in (("torch_kernels", -1), ("onednn_small_convolutions", limit)):
                cpu_kernels.SLOW_KERNEL_LIMIT = value  # -1: no input qualifies, torch chooses as usual
                timed[label] = best_time(model, t1, mask, age, samples)
            cpu_kernels.SLOW_KERNEL_LIMIT = limit
            diff = np.abs(timed["torch_kernels"][1] - timed["onednn_small_convolutions"][1])[mask > 0]
            rows.append(
                {
                    "model": name,
                    "samples": samples,
                    "seconds_torch_kernels": round(timed["torch_kernels"][0], 3),
                    "seconds_onednn": round(timed["onednn_small_convolutions"][0], 3),
                    "max_abs_diff_suvr": float(diff.max()),
                }
            )
            print(json.dumps(rows[-1]), flush=True)
    out = Path(__file__).parent / "results" / "model_times.json"
    record = {"subject": source, "device": "cpu", "torch_threads": torch.get_num_threads(), "rows": rows}
    out.write_text(json.dumps(record, indent=2))


if __name__ == "__main__":
    main()
