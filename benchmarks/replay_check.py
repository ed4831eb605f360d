"""Issue 33: does a card's recorded command re-make its logged run? Replay the first epochs and compare.

    python benchmarks/replay_check.py weights/unet.json [--run 0] [--epochs 1] [--data runs/cohort-v3]
        [--start-weights OLD.pt]

Takes run ``--run`` of the card's chain (``training.runs``), runs its `mri2pet train` command into a fresh
folder (``-o`` replaced, ``--data`` replaced where the cohort lives elsewhere), stops it once ``--epochs``
epochs are logged, and compares each replayed epoch's training loss and validation MAE with the card's
learning curve. Writes benchmarks/results/replay_<model>.json.

What "matching" means: the same data (the script compares the card's data sha256 first), seed, thread count and
machine give the same numbers to float precision; another CPU or thread count may differ in the last
digits (README, Reproducibility). Preprocessing with another thread count (``--jobs``) moves registrations
in the 7th digit and so the model-grid files: the script prints whether the cohort's training and
validation files are the ones the run saw (their sha256, as `mri2pet train` records it). A run that started
from other weights needs those weights (``--start-weights``, or the recorded path; their card beside them) with
the recorded sha256, which the script checks before it starts.
"""

from __future__ import annotations

import argparse
import json
import shlex
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from mri2pet_cli.completion import sha256_file

ROOT = Path(__file__).resolve().parents[1]


def current_data_sha256(data: str, split_file: str) -> str:
    """The fingerprint `mri2pet train` would record for the split's training and validation subjects."""
    from mri2pet_cli.preprocessing.cohort import data_fingerprint, prepare_dataset, read_split

    split = read_split(ROOT / split_file, data)
    by_id = {r.subject_id: r for r in prepare_dataset(data, only=split["train"] + split["validation"])[0]}
    return data_fingerprint([by_id[s] for s in split["train"] + split["validation"]])


def replay_words(command: str, run_dir: Path, data: str | None, start: str | None = None) -> list[str]:
    """The recorded command with its output folder (and, if asked, its data folder and start weights) replaced."""
    words = shlex.split(command)
    for flag, value in (("-o", str(run_dir)), ("--data", data), ("--init-weights", start)):
        if value is not None and flag in words:
            words[words.index(flag) + 1] = value
    words[0] = str(Path(sys.executable).with_name("mri2pet"))
    return words


def logged_epochs(run_dir: Path) -> list[dict]:
    path = run_dir / "history.jsonl"
    if not path.exists():
        return []
    return [json.loads(line) for line in path.read_text().splitlines() if line.strip()]


def run_until(words: list[str], run_dir: Path, epochs: int, log: Path) -> list[dict]:
    """Start the command; stop it once ``epochs`` epochs are in its history (or when it ends)."""
    with open(log, "w", encoding="utf-8") as out:
        process = subprocess.Popen(words, stdout=out, stderr=subprocess.STDOUT, cwd=ROOT)
        while process.poll() is None and len(logged_epochs(run_dir)) < epochs:
            time.sleep(5)
        if process.poll() is None:
            process.terminate()
            process.wait(timeout=60)
    return logged_epochs(run_dir)[:epochs]


def compare(card_curve: list[dict], replayed: list[dict]) -> list[dict]:
    rows = []
    for mine in replayed:
        logged = next((c for c in card_curve if c["epoch"] == mine["epoch"]), None)
        if logged is None:
            continue
        row = {"epoch": mine["epoch"]}
        for key in ("loss", "val_mae"):
            if key in logged and key in mine:
                row[key] = {"logged": logged[key], "replayed": mine[key], "difference": mine[key] - logged[key]}
        rows.append(row)
    return rows


def main(argv: list[str] | None = None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("card", type=Path)
    parser.add_argument("--run", type=int, default=0, help="which run of the card's chain")
    parser.add_argument("--epochs", type=int, default=1, help="epochs to replay")
    parser.add_argument("--data", default=None, help="the cohort, where it is not at the recorded path")
    parser.add_argument("--start-weights", default=None, help="the run's start weights, where not at their path")
    args = parser.parse_args(argv)
    card = json.loads(args.card.read_text())
    run = card["training"]["runs"][args.run]
    recorded = shlex.split(run["command"])
    if run.get("start_weights_sha256"):
        start = ROOT / (args.start_weights or recorded[recorded.index("--init-weights") + 1])
        if not start.exists() or sha256_file(start) != run["start_weights_sha256"]:
            raise SystemExit(f"{start}: not the start weights this run recorded (sha256 {run['start_weights_sha256']})")
    data = args.data or recorded[recorded.index("--data") + 1]
    data_sha = current_data_sha256(data, recorded[recorded.index("--split") + 1])
    print(f"data: {'the files the run saw' if data_sha == run.get('data_sha256') else 'OTHER files than the run saw'}")
    with tempfile.TemporaryDirectory(prefix="replay-", dir=ROOT / "runs" if (ROOT / "runs").is_dir() else None) as tmp:
        run_dir = Path(tmp) / card["name"]
        words = replay_words(run["command"], run_dir, args.data, args.start_weights)
        started = time.perf_counter()
        replayed = run_until(words, run_dir, args.epochs, Path(tmp) / "train.log")
        seconds = time.perf_counter() - started
        if not replayed:  # it stopped before its first epoch: say why
            raise SystemExit("the replay logged no epoch:\n" + (Path(tmp) / "train.log").read_text()[-2000:])
    rows = compare(card["training"]["learning_curve"], replayed)
    result = {
        "card": str(args.card),
        "command": shlex.join(words[1:]),
        "recorded_data_sha256": run.get("data_sha256"),
        "replayed_data_sha256": data_sha,
        "same_data": data_sha == run.get("data_sha256"),
        "epochs": rows,
        "seconds": round(seconds, 1),
        "identical": bool(rows) and all(v["difference"] == 0 for r in rows for k, v in r.items() if k != "epoch"),
    }
    for row in rows:
        parts = [f"{k} logged {v['logged']:.8f} replayed {v['replayed']:.8f}" for k, v in row.items() if k != "epoch"]
        print(f"epoch {row['epoch']}: " + "; ".join(parts))
    print("identical" if result["identical"] else "not identical", f"({seconds:.0f} s)")
    out = ROOT / "benchmarks" / "results" / f"replay_{card['name']}.json"
    out.write_text(json.dumps(result, indent=2) + "\n")
    return result


if __name__ == "__main__":
    main()
