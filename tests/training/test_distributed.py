"""torchrun on the CPU (gloo): two processes train to the weights of one with the same global batch."""

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import torch

from mri2pet_cli.training import TrainOptions, train
from mri2pet_cli.training.distributed import Distributed
from tests.fake_data import write_fake_dataset

TINY = {"base": 4, "levels": 2}


def test_a_batch_is_shared_by_subject_with_weights_that_sum_to_one():
    import numpy as np

    index = np.array([3, 5, 8, 9, 11])
    parts = [Distributed(rank, 2).share(index) for rank in (0, 1)]
    assert sorted(np.concatenate([p[0] for p in parts])) == list(index)
    assert sum(p[1] for p in parts) == pytest.approx(1.0)
    empty = Distributed(2, 3).share(np.array([4, 6]))
    assert empty[1] == 0.0 and len(empty[0]) == 1  # takes part in the all-reduce with weight 0


def test_torchrun_two_cpu_processes_match_one(tmp_path):
    data = write_fake_dataset(tmp_path / "data", n=8, seed=2)
    common = dict(model="unet", data=str(data), epochs=2, batch_size=4, model_config=TINY, seed=3, device="cpu")
    train(TrainOptions(run_dir=str(tmp_path / "one"), augment=False, precision="fp32", **common))
    script = shutil.which("mri2pet", path=str(Path(sys.executable).parent))
    command = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node", "2", script]
    command += ["train", "--model", "unet", "--data", str(data), "-o", str(tmp_path / "two"), "--epochs", "2"]
    command += ["--batch-size", "4", "--config", json.dumps(TINY), "--seed", "3", "--device", "cpu"]
    command += ["--no-augment", "--precision", "fp32"]
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    done = subprocess.run(command, capture_output=True, text=True, timeout=300, env=env)
    assert done.returncode == 0, done.stderr[-3000:]
    one = torch.load(tmp_path / "one" / "checkpoint.pt", weights_only=True)
    two = torch.load(tmp_path / "two" / "checkpoint.pt", weights_only=True)
    for key, value in one["state_dict"].items():
        torch.testing.assert_close(two["state_dict"][key], value, rtol=1e-4, atol=1e-5)
    history = (tmp_path / "two" / "history.jsonl").read_text().splitlines()
    assert len(history) == 2  # rank 0 wrote each epoch once
    summary = json.loads((tmp_path / "two" / "summary.json").read_text())
    assert summary["processes"] == 2
    # the checkpoint of two processes resumes in one
    resumed = train(TrainOptions(run_dir=str(tmp_path / "two"), **{**common, "epochs": 3}), resume=True)
    assert [h["epoch"] for h in resumed["history"]] == [1, 2, 3]


@pytest.mark.gpu
@pytest.mark.skipif(torch.cuda.device_count() < 2, reason="needs two CUDA GPUs (NCCL)")
def test_torchrun_two_gpus_nccl(tmp_path):
    data = write_fake_dataset(tmp_path / "data", n=8, seed=2)
    script = shutil.which("mri2pet", path=str(Path(sys.executable).parent))
    command = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node", "2", script]
    command += ["train", "--model", "unet", "--data", str(data), "-o", str(tmp_path / "run"), "--epochs", "1"]
    command += ["--batch-size", "4", "--config", json.dumps(TINY), "--device", "cuda"]
    done = subprocess.run(command, capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stderr[-3000:]
    assert json.loads((tmp_path / "run" / "summary.json").read_text())["processes"] == 2
