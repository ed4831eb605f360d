"""Issue 32: a model at other sites. Loss without adaptation, familiarity AUROC, conformal coverage, adaptation curves.

Runs in parts (each cached in OUT/<part>.json; predictions cached beside each cohort's preprocessing), so
hours of CPU can be spread over several runs:

    mri2pet simulate runs/site-near --site near --n 40 --seed 11 --sim-version 3
    mri2pet simulate runs/site-far --site far --n 40 --seed 12 --sim-version 3  # held-out: shift, familiarity, coverage
    mri2pet simulate runs/site-far80 --site far --n 80 --seed 12 --sim-version 3  # adapt: pool 1-40, held-out 41-80
    mri2pet simulate runs/site-far-ref --site far --n 200 --seed 15 --sim-version 3  # the 200-pair reference
    mri2pet simulate runs/site-clinic --site clinic --n 40 --seed 13 --sim-version 3   # added after the first results
    mri2pet simulate runs/site-modern --site modern --n 40 --seed 14 --sim-version 3  # added after the score was frozen
    python benchmarks/site_adaptation.py --part shift        # MAE / SSIM at home (test split), near, far
    python benchmarks/site_adaptation.py --part familiarity  # AUROC far vs home, near vs home; Spearman with MAE
    python benchmarks/site_adaptation.py --part coverage     # shipped calibration at each site; local conformal
    python benchmarks/site_adaptation.py --part adapt --far runs/site-far80 --pairs 20   # a point of the curve
    python benchmarks/site_adaptation.py --part adapt --far runs/site-far80 --pairs 20 --draw 1  # another draw
    python benchmarks/site_adaptation.py --part reference --far runs/site-far80  # adapted on runs/site-far-ref

A site cohort's last 40 subjects (by id) are held out; up to 40 before them are its pool of local pairs
(adaptation uses the first n of them). The conformal part calibrates on 20 held-out subjects drawn at
random and tests on the other 20, over 50 draws. The home site's held-out subjects are the v3 split's test part.
The adapt and reference parts add their points to OUT/adapt_<site>_<model>.json (--model unet or dual-glow).
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
SPLIT = ROOT / "benchmarks" / "splits" / "v3_n200_seed0.json"
RECIPES = ROOT / "benchmarks" / "retrain_recipes.json"
POOL, HELD_OUT = 40, 40


def site_subjects(folder: Path) -> tuple[list[str], list[str]]:
    from mri2pet_cli.preprocessing.cohort import paired_subject_ids

    ids = paired_subject_ids(folder)
    return ids[: min(POOL, len(ids) - HELD_OUT)], ids[-HELD_OUT:]


def predictions(model_name: str, weights: str | None, folder: Path, ids: list[str]):
    """(arrays, synthetic SUVR volumes) of ``ids``; the model's outputs cached beside the preprocessing."""
    from mri2pet_cli.evaluation.cache import cache_root, cached_predict
    from mri2pet_cli.models.registry import load_model
    from mri2pet_cli.models.runtime import resolve_device
    from mri2pet_cli.preprocessing.cohort import load_arrays, prepare_dataset
    from mri2pet_cli.preprocessing.normalise import model_output_to_suvr
    from mri2pet_cli.space.grid import default_grid

    records, _ = prepare_dataset(folder, jobs=2, only=ids)
    model, card, _ = load_model(model_name, weights)
    arrays = load_arrays(records)
    raw = cached_predict(model, card, arrays, cache_root(records[0].preproc_dir), device=resolve_device("cpu"))
    grid = default_grid()
    suvr = np.stack([model_output_to_suvr(raw[i], grid, arrays.mask[i] > 0)[0] for i in range(len(raw))])
    return arrays, suvr


def sites(args) -> dict[str, tuple[Path, list[str]]]:
    """Each site's folder and held-out subjects (home: the split's test part)."""
    held = {"home": (args.home, json.loads(SPLIT.read_text())["test"])}
    for name, folder in (("near", args.near), ("far", args.far), ("clinic", args.clinic), ("modern", args.modern)):
        if (folder / "participants.tsv").exists():
            held[name] = (folder, site_subjects(folder)[1])
    return held


def part_shift(args) -> dict:
    from mri2pet_cli.evaluation.metrics import image_metrics
    from mri2pet_cli.evaluation.scoring import summarize

    out = {}
    for name, (folder, ids) in sites(args).items():
        arrays, suvr = predictions(args.model, args.weights, folder, ids)
        rows = [image_metrics(arrays.pet[i], suvr[i], arrays.mask[i] > 0) for i in range(len(ids))]
        out[name] = {k: v for k, v in summarize(rows).items() if k in ("mae", "psnr", "ssim", "pearson_r")}
        print(f"{name}: n {len(ids)}, MAE {out[name]['mae']['mean']:.4f}, SSIM {out[name]['ssim']['mean']:.3f}")
    return out


def familiarity_records(folder: Path, ids: list[str], reference: dict) -> list[dict]:
    from mri2pet_cli.preprocessing.cohort import prepare_dataset
    from mri2pet_cli.site.familiarity import BLOCKS, familiarity, records_features

    records, _ = prepare_dataset(folder, jobs=2, only=ids)
    _, features = records_features(records)
    return [familiarity({block: features[block][i] for block in BLOCKS}, reference) for i in range(len(ids))]


def familiarity_scores(folder: Path, ids: list[str], reference: dict, block: str | None = None) -> np.ndarray:
    """Each subject's familiarity score (``block``: that block's score alone)."""
    records = familiarity_records(folder, ids, reference)
    return np.array([r["score"] if block is None else r["blocks"][block] for r in records])


def part_familiarity(args) -> dict:
    from scipy.stats import spearmanr
    from sklearn.metrics import roc_auc_score

    from mri2pet_cli.models.weights import find_weights
    from mri2pet_cli.site.familiarity import familiarity_path_for, load_reference

    reference = load_reference(familiarity_path_for(find_weights(args.model, args.weights).weights))
    scores, maes, verdicts, blocks = {}, {}, {}, {}
    for name, (folder, ids) in sites(args).items():
        records = familiarity_records(folder, ids, reference)
        scores[name] = np.array([r["score"] for r in records])
        blocks[name] = {b: np.array([r["blocks"][b] for r in records]) for b in records[0]["blocks"]}
        maes[name] = subject_maes(args.model, args.weights, folder, ids)
        limits = reference["thresholds"]
        verdicts[name] = {
            "typical": int(np.sum(scores[name] <= limits["unusual"])),
            "unusual": int(np.sum((scores[name] > limits["unusual"]) & (scores[name] <= limits["outside"]))),
            "outside": int(np.sum(scores[name] > limits["outside"])),
        }
    out = {"thresholds": reference["thresholds"], "verdicts": verdicts}
    for name in scores:
        if name != "home":
            labels = np.r_[np.zeros(len(scores["home"])), np.ones(len(scores[name]))]
            out[f"auroc_{name}_vs_home"] = float(roc_auc_score(labels, np.r_[scores["home"], scores[name]]))
            for block in blocks[name]:
                both = np.r_[blocks["home"][block], blocks[name][block]]
                out[f"auroc_{name}_vs_home_{block}_only"] = float(roc_auc_score(labels, both))
    out["auroc_scan_variety_at_home"] = variety_aurocs(args, reference)
    all_scores = np.concatenate(list(scores.values()))
    all_maes = np.concatenate([maes[n] for n in scores])
    out["spearman_score_mae_mixed"] = float(spearmanr(all_scores, all_maes)[0])
    out["score_median"] = {n: float(np.median(s)) for n, s in scores.items()}
    print(json.dumps(out, indent=2))
    return out


def variety_aurocs(args, reference: dict) -> dict:
    """A shift the score was not designed on: home subjects outside training (validation, calibration and test
    parts) with one kind of scan variety against those with none."""
    from sklearn.metrics import roc_auc_score

    from mri2pet_cli.simulation.cohort import subject_paths

    split = json.loads(SPLIT.read_text())
    ids = split["validation"] + split["calibration"] + split["test"]
    scores = dict(zip(ids, familiarity_scores(args.home, ids, reference)))
    kinds = {s: json.loads(subject_paths(args.home, s)["truth_json"].read_text())["subject"]["extras"] for s in ids}
    kinds = {s: set(k.get("variety", {})) for s, k in kinds.items()}
    clean = [scores[s] for s in ids if not kinds[s]]
    out = {"n_clean": len(clean)}
    for kind in ("neck", "origin_offset", "thick_slices", "low_contrast", "cut_fov", "motion"):
        shifted = [scores[s] for s in ids if kind in kinds[s]]
        if len(shifted) >= 3:
            labels = np.r_[np.zeros(len(clean)), np.ones(len(shifted))]
            out[kind] = {"n": len(shifted), "auroc": float(roc_auc_score(labels, np.r_[clean, shifted]))}
    return out


def regional(folder: Path, ids: list[str], args) -> tuple[np.ndarray, np.ndarray, list[str]]:
    """(real, synthetic) regional SUVR arrays (subjects, regions) over the key regions and AAL regions."""
    from mri2pet_cli.site.calibration import regional_arrays, regional_suvr
    from mri2pet_cli.space.atlas import template_maps
    from mri2pet_cli.space.grid import default_grid

    arrays, suvr = predictions(args.model, args.weights, folder, ids)
    labels = template_maps(default_grid()).aal
    real = [regional_suvr(arrays.pet[i], labels, arrays.mask[i]) for i in range(len(ids))]
    synth = [regional_suvr(suvr[i], labels, arrays.mask[i]) for i in range(len(ids))]
    return regional_arrays(real, synth)


def part_coverage(args) -> dict:
    from mri2pet_cli.models.weights import find_weights
    from mri2pet_cli.site.calibration import calibration_path_for
    from mri2pet_cli.site.conformal import coverage_of, regional_half_widths

    shipped = json.loads(calibration_path_for(find_weights(args.model, args.weights).weights).read_text())
    out: dict = {"shipped_calibration_subjects": shipped["n_subjects"], "sites": {}}
    for name, (folder, ids) in sites(args).items():
        real, synth, keys = regional(folder, ids, args)
        widths = np.array([shipped["half_width_suvr"].get(k, np.nan) for k in keys])
        keep = np.isfinite(widths)
        entry = {"shipped_coverage": coverage_of(real[:, keep], synth[:, keep], widths[keep])}
        rng = np.random.default_rng(0)
        local = []
        for _ in range(args.draws):
            order = rng.permutation(len(ids))
            cal, test = order[:20], order[20:]
            local.append(coverage_of(real[test], synth[test], regional_half_widths(real[cal], synth[cal])))
        entry |= {
            "local_coverage_mean": float(np.mean(local)),
            "local_coverage_range": [float(np.min(local)), float(np.max(local))],
            "draws": args.draws,
            "median_half_width_shipped": float(np.median(widths[keep])),
            "median_residual": float(np.median(np.abs(real - synth))),
        }
        out["sites"][name] = entry
        print(name, json.dumps(entry))
    return out


def part_adapt(args) -> dict:
    """Points of the curve: the model adapted with n pool pairs of a site, and trained from scratch on them.
    Draw 0 takes the first n of the pool; draw k > 0 takes n drawn at random (seed k), for the spread."""
    folder = site_folder(args)
    pool = site_subjects(folder)[0]
    out = {"base": {"held_out_mae": held_out_mae(args, args.weights)}}
    for n in [int(p) for p in args.pairs.split(",")]:
        chosen = pool[:n] if args.draw == 0 else sorted(np.random.default_rng(args.draw).choice(pool, n, replace=False))
        tag = f"{args.model}-{args.site}-{n}" + (f"-draw{args.draw}" if args.draw else "")
        lr_tag = f"-lr{args.adapt_lr:g}" if args.adapt_lr else ""
        subset_dir = args.out / "pairs" / tag
        link_subset(folder, list(chosen), subset_dir)
        result = {"pairs": list(chosen)} if args.draw else {}
        for start in args.starts.split(","):
            key = start + (f" lr {args.adapt_lr:g}" if args.adapt_lr and start == "adapted" else "")
            weights_dir = args.out / "weights" / f"{tag}-{start}{lr_tag if start == 'adapted' else ''}"
            result[key] = adapt_and_score(args, subset_dir, weights_dir, start)
        out[str(n) if args.draw == 0 else f"{n}/draw-{args.draw}"] = result
        print(n, json.dumps({k: v["held_out_mae"] for k, v in result.items() if k != "pairs"}))
    return out


def part_reference(args) -> dict:
    """The reference of the curve: the model adapted (from its base weights) on every pair of a separate cohort
    of the same site (the issue's 200 pairs), scored on the same held-out subjects as the curve."""
    from mri2pet_cli.preprocessing.cohort import paired_subject_ids

    n = len(paired_subject_ids(args.reference_data))
    weights_dir = args.out / "weights" / f"{args.model}-{args.site}-reference-{n}"
    result = adapt_and_score(args, args.reference_data, weights_dir, "adapted")
    result["pairs"] = n
    result["data"] = str(
        args.reference_data.relative_to(ROOT) if args.reference_data.is_absolute() else args.reference_data
    )
    print(f"reference: {n} pairs, held-out MAE {result['held_out_mae']:.4f}")
    return {"reference": result}


def adapt_and_score(args, data_dir: Path, weights_dir: Path, start: str) -> dict:
    """``mri2pet adapt`` on ``data_dir`` (from the base weights, or from a fresh initialisation with the model's
    from-scratch learning rate), then the held-out MAE of the site; a finished run is reused."""
    command = [str(Path(sys.executable).parent / "mri2pet"), "adapt", "--model", args.model]
    command += ["--data", str(data_dir), "-o", str(weights_dir), "--epochs", str(args.epochs), "--force"]
    if start == "scratch":
        lr = json.loads(RECIPES.read_text())["models"][args.model]["lr"]
        command += ["--lr", str(lr), "--weights", str(scratch_weights(args, weights_dir.parent))]
    else:
        command += ["--weights", args.weights] if args.weights else []
        command += ["--lr", str(args.adapt_lr)] if args.adapt_lr else []
    started = time.perf_counter()
    if not (weights_dir / f"{args.model}.pt").exists():
        subprocess.run(command, check=True)
    card = json.loads((weights_dir / f"{args.model}.json").read_text())
    return {
        "held_out_mae": held_out_mae(args, str(weights_dir / f"{args.model}.pt")),
        "local_validation": card["adaptation"]["local_validation"],
        "seconds": time.perf_counter() - started,
        "command": " ".join(command[1:]).replace(str(ROOT) + "/", ""),
    }


def held_out_mae(args, weights: str | None) -> float:
    """Mean MAE (SUVR, in the brain) of ``weights`` over the site's held-out subjects."""
    folder = site_folder(args)
    return float(np.mean(subject_maes(args.model, weights, folder, site_subjects(folder)[1])))


def subject_maes(model_name: str, weights: str | None, folder: Path, ids: list[str]) -> list[float]:
    """Each subject's MAE (SUVR, in the brain) of the model's synthetic PET against the real one."""
    from mri2pet_cli.evaluation.metrics import image_metrics

    arrays, suvr = predictions(model_name, weights, folder, ids)
    return [image_metrics(arrays.pet[i], suvr[i], arrays.mask[i] > 0)["mae"] for i in range(len(ids))]


def site_folder(args) -> Path:
    return args.near if args.site == "near" else args.far


def link_subset(folder: Path, ids: list[str], target: Path) -> None:
    """A dataset of ``ids`` only: their preprocessed files, linked (no copy), and a participants table."""
    from mri2pet_cli.preprocessing.cohort import CACHE

    cache = target
    cache.mkdir(parents=True, exist_ok=True)
    for sid in ids:
        if not (cache / sid).exists():
            (cache / sid).symlink_to((folder / CACHE / sid).resolve())
    rows = (folder / "participants.tsv").read_text().splitlines()
    keep = [rows[0]] + [r for r in rows[1:] if r.split("\t")[0] in ids]
    (cache / "participants.tsv").write_text("\n".join(keep) + "\n")


# A from-scratch start shares nothing with the shipped weights: DUAL-GLOW's mean network starts random (not the
# shipped unet) and learns its age slope by gradient (the pairs path needs >= 10 aged pairs, more than a fold has)
SCRATCH_CONFIG = {"dual-glow": {"mean_init": None, "mean_age": "learned"}}


def scratch_weights(args, folder: Path) -> Path:
    """Freshly initialised weights of the model (the 'from scratch' start), with a card so adapt can read them."""
    import torch

    from mri2pet_cli.models.registry import build_model, load_model_checkpoint
    from mri2pet_cli.models.weights import save_weights

    target = folder / f"scratch-init-{args.model}" / f"{args.model}.pt"
    if not target.exists():
        checkpoint, _, _ = load_model_checkpoint(args.model, args.weights)
        torch.manual_seed(0)
        config = checkpoint["config"] | SCRATCH_CONFIG.get(args.model, {})
        save_weights(build_model(args.model, config), target.parent, {"version": "random init"})
    return target


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--part", choices=("shift", "familiarity", "coverage", "adapt", "reference"), required=True)
    parser.add_argument("--model", default="unet")
    parser.add_argument("--weights", default=None)
    parser.add_argument("--home", type=Path, default=ROOT / "runs" / "cohort-v3")
    parser.add_argument("--near", type=Path, default=ROOT / "runs" / "site-near")
    parser.add_argument("--far", type=Path, default=ROOT / "runs" / "site-far")
    parser.add_argument("--clinic", type=Path, default=ROOT / "runs" / "site-clinic")
    parser.add_argument("--modern", type=Path, default=ROOT / "runs" / "site-modern")
    parser.add_argument("--site", choices=("near", "far"), default="far")
    parser.add_argument("--pairs", default="20", help="comma list of local pair counts (adapt part)")
    parser.add_argument("--epochs", type=int, default=12, help="most epochs of each adaptation")
    parser.add_argument("--draw", type=int, default=0, help="adapt part: 0 = the first n pool pairs, k = n at random")
    parser.add_argument("--starts", default="adapted,scratch", help="adapt part: adapted, scratch or both")
    parser.add_argument("--adapt-lr", type=float, default=None, help="adapted runs: this --lr (default: adapt's)")
    parser.add_argument("--reference-data", type=Path, default=ROOT / "runs" / "site-far-ref")
    parser.add_argument("--draws", type=int, default=50, help="random calibration / test draws (coverage part)")
    parser.add_argument("--out", type=Path, default=ROOT / "benchmarks" / "results" / "site_adaptation")
    args = parser.parse_args()
    args.out.mkdir(parents=True, exist_ok=True)
    result = globals()[f"part_{args.part}"](args)
    accumulates = args.part in ("adapt", "reference")  # points of one curve, added run by run
    name = f"adapt_{args.site}_{args.model}" if accumulates else args.part
    path = args.out / f"{name}.json"
    previous = json.loads(path.read_text()) if path.exists() and accumulates else {}
    merged = previous | {key: previous.get(key, {}) | value for key, value in result.items()}  # one run per start
    path.write_text(json.dumps(merged, indent=2))
    print(f"wrote {path}")


if __name__ == "__main__":
    main()
