"""Copy an exported model into weights/ as shipped: the card kept, parameters only training uses left out.

python benchmarks/gpu_training/ship_weights.py runs/gpu2-export/dualglow-v2/dual-glow.pt [OUT_DIR]
"""

from __future__ import annotations

import sys
from pathlib import Path

from mri2pet_cli.models.registry import load_model
from mri2pet_cli.models.weights import save_weights

AUTOMATIC = ("name", "file", "sha256", "size_bytes", "architecture", "not_shipped", "training_parts_shipped")


def ship(weights: Path, out_dir: Path) -> Path:
    name = weights.stem
    model, card, _ = load_model(name, weights)
    files = save_weights(model, out_dir, {k: v for k, v in card.items() if k not in AUTOMATIC}, overwrite=True)
    return files.weights


if __name__ == "__main__":
    print(ship(Path(sys.argv[1]), Path(sys.argv[2] if len(sys.argv) > 2 else "weights")))
