"""GLA-GAN ablations (the paper's Figures 8-9) on the v2 test split, from the exported cards.

Each ablation is a config of `gla-gan` (width 0.25) trained with the same split, batch 4, Adam 2e-4 on one
shared GPU (benchmarks/gpu_training/); export with `mri2pet_cli.training.export_run RUN OUT`, then
    python benchmarks/glagan_ablations.py runs/gpu-export
prints the table and writes benchmarks/results/glagan_ablations.json.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

ORDER = {  # label, the paper's figure
    "ablation-global": ("global module only", "Fig. 8"),
    "ablation-local": ("local module only (K = 4)", "Fig. 8"),
    "ablation-k2": ("global + local, K = 2", "Fig. 8"),
    "ablation-k4": ("global + local, K = 4 (paper's best)", "Fig. 8 / 9"),
    "ablation-k8": ("global + local, K = 8", "Fig. 8"),
    "ablation-l1": ("loss: adversarial + L1", "Fig. 9"),
    "ablation-ssim": ("loss: + SSIM", "Fig. 9"),
    "ablation-msssim": ("loss: + MS-SSIM", "Fig. 9"),
}


def main(folder: Path) -> dict:
    rows = {}
    for run, (label, figure) in ORDER.items():
        card_path = folder / run / "gla-gan.json"
        if not card_path.exists():
            print(f"{label:40s} not exported ({card_path})")
            continue
        card = json.loads(card_path.read_text())
        own = card["test_metrics"]["models"]["gla-gan"]
        training = card["training"]
        rows[run] = {
            "label": label,
            "figure": figure,
            **{m: round(own[m]["mean"], 4) for m in ("mae", "psnr", "ssim", "ms_ssim")},
            "epochs": training["epochs"],
            "planned_epochs": training.get("planned_epochs"),
            "best_epoch": training["best_epoch"],
        }
    print(f"{'ablation':40s} {'MAE':>7s} {'PSNR':>6s} {'SSIM':>6s} {'MS-SSIM':>7s} {'epochs':>7s}")
    for row in rows.values():
        print(
            f"{row['label']:40s} {row['mae']:7.4f} {row['psnr']:6.2f} {row['ssim']:6.3f} {row['ms_ssim']:7.3f}"
            f" {row['epochs']:>3d}/{row['planned_epochs']}"
        )
    result = {
        "test_split": "v2 cohort, 15 held-out subjects",
        "note": "runs shared one GPU and stopped at a time limit, so they trained different numbers of epochs "
        "(15-25 of 40): differences of a few thousandths are within what the epoch counts alone can change",
        "ablations": rows,
    }
    out = Path(__file__).parent / "results" / "glagan_ablations.json"
    out.write_text(json.dumps(result, indent=2))
    return result


if __name__ == "__main__":
    main(Path(sys.argv[1] if len(sys.argv) > 1 else "runs/gpu-export"))
