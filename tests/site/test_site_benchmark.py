"""benchmarks/site_adaptation.py: a from-scratch start shares nothing with the shipped weights."""

import argparse
import importlib.util
from pathlib import Path

import torch

from mri2pet_cli.models.registry import load_model_checkpoint

BENCHMARKS = Path(__file__).resolve().parents[2] / "benchmarks"


def load_benchmark():
    spec = importlib.util.spec_from_file_location("site_adaptation", BENCHMARKS / "site_adaptation.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_scratch_dual_glow_has_a_random_mean_network_and_learns_its_age_slope(tmp_path):
    benchmark = load_benchmark()
    args = argparse.Namespace(model="dual-glow", weights=None)
    scratch, card, _ = load_model_checkpoint("dual-glow", benchmark.scratch_weights(args, tmp_path))
    unet, _, _ = load_model_checkpoint("unet")
    assert scratch["config"]["mean_init"] is None and scratch["config"]["mean_age"] == "learned"
    assert card["version"] == "random init"
    mean_weights = [k for k in scratch["state_dict"] if k.startswith("mean_net.") and k.endswith(".0.weight")]
    assert mean_weights
    # the shipped dual-glow's mean network starts from the shipped unet; a scratch run must not
    for key in mean_weights:
        assert not torch.equal(scratch["state_dict"][key], unet["state_dict"][key.removeprefix("mean_net.")])
    assert "pairs_age" not in scratch["state_dict"] or scratch["state_dict"]["pairs_age"].numel() == 0
