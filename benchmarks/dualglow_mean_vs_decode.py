"""DUAL-GLOW's T = 0 decode against its own conditional mean network alone (issue 36's ablation).

    python benchmarks/dualglow_mean_vs_decode.py --data runs/cohort-v3 [--weights weights/dual-glow.pt]
        [--split benchmarks/splits/v3_n200_seed0.json]

The PET flow models the residual around m(T1, age) (a U-Net of the T1 plus the pairs age path). The shipped
estimate is the decode of the prior mean (T = 0) through the flow; this scores it beside m(T1, age) alone, on
the split's validation and test subjects, with the export's own scoring (masked MAE in SUVR, PSNR, SSIM).
Writes benchmarks/results/dualglow_mean_vs_decode.json.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import numpy as np

from mri2pet_cli.evaluation.scoring import score
from mri2pet_cli.models.registry import load_model
from mri2pet_cli.models.runtime import predict, resolve_device
from mri2pet_cli.preprocessing.cohort import load_arrays, prepare_dataset, read_split

ROOT = Path(__file__).resolve().parents[1]


class MeanNetworkOnly:
    """The model's conditional mean m(T1, age), in place of the flow's decode (same masking and clamp)."""

    def __init__(self, model):
        self.model = model

    def to(self, device):
        self.model = self.model.to(device)
        return self

    def eval(self):
        self.model.eval()
        return self

    def modules(self):  # the oneDNN kernel hooks go on the model's own convolutions
        return self.model.modules()

    def synthesize(self, t1, mask, age=None, **_):
        return self.model.conditional_mean(t1, mask, age), None


def summary(rows: list[dict]) -> dict[str, float]:
    return {key: round(float(np.mean([r[key] for r in rows])), 4) for key in ("mae", "psnr", "ssim")}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--data", type=Path, required=True)
    parser.add_argument("--weights", type=Path, default=None, help="default: the shipped weights")
    parser.add_argument("--split", type=Path, default=ROOT / "benchmarks" / "splits" / "v3_n200_seed0.json")
    parser.add_argument("--out", type=Path, default=ROOT / "benchmarks" / "results" / "dualglow_mean_vs_decode.json")
    args = parser.parse_args()
    model, card, _ = load_model("dual-glow", args.weights)
    split = read_split(args.split, args.data)
    result = {"weights_sha256": card["sha256"], "split": str(args.split), "parts": {}}
    for part in ("validation", "test"):
        records, _ = prepare_dataset(args.data, only=split[part])
        arrays = load_arrays(records)
        scored = {}
        for name, net in (("T = 0 decode", model), ("mean network alone", MeanNetworkOnly(model))):
            pred, _ = predict(net, arrays.t1, arrays.mask, arrays.age, device=resolve_device("cpu"), precision="fp32")
            scored[name] = summary(score(pred, arrays))
        result["parts"][part] = {"n": len(arrays.ids), **scored}
        print(part, json.dumps(scored), flush=True)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(result, indent=1))
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
