"""Add a model's CN reference (the reports' z-scores) to its card, from its training cohort.

`mri2pet train --export` writes this entry itself; this script adds it to a card exported before
that existed. It runs the model on the CN subjects of the card's training split, the same way
`synthesize` does, and writes the key-region mean and SD into the card (the weights are untouched).

    python benchmarks/card_cn_reference.py --data runs/cohort-v2 --model unet
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from mri2pet_cli.evaluation.run import same_cohort
from mri2pet_cli.io import write_text_atomic
from mri2pet_cli.models.registry import load_model
from mri2pet_cli.models.runtime import resolve_device
from mri2pet_cli.models.weights import find_weights, read_card
from mri2pet_cli.preprocessing.cohort import prepare_dataset
from mri2pet_cli.training.export import cn_reference_of


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", type=Path, required=True, help="the model's training cohort")
    parser.add_argument("--model", required=True)
    args = parser.parse_args()
    files = find_weights(args.model)
    card = read_card(files.card)
    if not same_cohort(args.data, card):
        raise SystemExit(f"{args.data} is not the cohort the card was trained on (seed and simulator version)")
    model, _, _ = load_model(args.model)
    records, _ = prepare_dataset(args.data)
    by_id = {r.subject_id: r for r in records}
    train = [by_id[s] for s in card["training_data"]["split"]["train"] if s in by_id]
    reference = cn_reference_of(model, train, resolve_device("cpu"))
    card["cn_reference"] = reference
    write_text_atomic(json.dumps(card, indent=2), files.card, overwrite=True)
    print(json.dumps(reference, indent=2))


if __name__ == "__main__":
    main()
