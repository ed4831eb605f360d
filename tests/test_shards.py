"""Sharded batches (issue 18): the split, the manifests, and merge == one unsharded run."""

import json

import pytest
import torch
from typer.testing import CliRunner

from mri2pet_cli.cli import app
from mri2pet_cli.errors import Mri2PetError
from mri2pet_cli.models.registry import build_model
from mri2pet_cli.models.weights import save_weights
from mri2pet_cli.shards import Shard, parse_shard, select

runner = CliRunner()


def test_parse_shard_by_hand_and_from_job_arrays():
    assert parse_shard("2/4", {}) == Shard(2, 4)
    assert parse_shard("auto/4", {"SLURM_ARRAY_TASK_ID": "3"}) == Shard(3, 4)
    assert parse_shard("auto/4", {"SLURM_ARRAY_TASK_ID": "0", "SLURM_ARRAY_TASK_MIN": "0"}) == Shard(1, 4)
    assert parse_shard("auto/2", {"PBS_ARRAY_INDEX": "2"}) == Shard(2, 2)
    for bad in ("5/4", "0/4", "x/2", "2", "2/0", "auto/3"):
        with pytest.raises(Mri2PetError, match="--shard"):
            parse_shard(bad, {})


def test_shards_cover_every_subject_once_whatever_the_order():
    ids = [f"sub-{i:03d}" for i in range(23)]
    parts = [select(ids, str, Shard(k, 4)) for k in range(1, 5)]
    assert sorted(sum(parts, [])) == ids
    assert max(map(len, parts)) - min(map(len, parts)) <= 1
    assert select(list(reversed(ids)), str, Shard(2, 4)) == parts[1]


def files_of(folder):
    return sorted(str(p.relative_to(folder)) for p in folder.rglob("*") if p.is_file() and "shards" not in p.parts)


def test_two_shards_and_merge_give_the_unsharded_run(simulated_cohort, tmp_path):
    torch.manual_seed(0)
    weights = save_weights(build_model("unet", {"base": 4, "levels": 2}), tmp_path / "w", {"version": "test"}).weights
    inputs = tmp_path / "t1s"
    inputs.mkdir()
    good = simulated_cohort / "sub-001" / "anat" / "sub-001_T1w.nii.gz"
    (inputs / "sub-001_T1w.nii.gz").write_bytes(good.read_bytes())
    (inputs / "sub-002_T1w.nii.gz").write_text("not an image")
    common = ["synthesize", str(inputs), "--weights", str(weights)]
    whole = runner.invoke(app, [*common, "-o", str(tmp_path / "whole")])
    assert whole.exit_code == 1, whole.output  # sub-002 fails, in both runs
    for k in (1, 2):
        part = runner.invoke(app, [*common, "-o", str(tmp_path / "sharded"), "--shard", f"{k}/2"])
        assert part.exit_code == (0 if k == 1 else 1), part.output
        assert f"shard {k}/2: 1 of 2 subjects" in part.output
    partial = runner.invoke(app, ["merge", str(tmp_path / "sharded")])
    assert partial.exit_code == 1 and "sub-002" in partial.output
    assert files_of(tmp_path / "whole") == files_of(tmp_path / "sharded")
    for name in ("cohort_roi.csv", "batch_failures.tsv", "batch_summary.json"):
        assert (tmp_path / "whole" / name).read_text() == (tmp_path / "sharded" / name).read_text(), name
    table = (tmp_path / "whole" / "cohort_roi.csv").read_text().splitlines()
    assert table[0].startswith("subject,label,region") and len(table) > 100 and table[1].startswith("sub-001,")
    (tmp_path / "sharded" / "shards" / "shard-2-of-2.json").unlink()
    missing = runner.invoke(app, ["merge", str(tmp_path / "sharded")])
    assert missing.exit_code == 1 and "missing shards: 2" in missing.output
    summary = json.loads((tmp_path / "sharded" / "batch_summary.json").read_text())
    assert summary["done"] == ["sub-001"] and summary["failed"] == {}
    empty = runner.invoke(app, ["merge", str(tmp_path / "nothing")])
    assert empty.exit_code == 2 and "no shard manifests" in empty.output
