"""A training step of our generators against the same networks built from MONAI blocks (issue 14).

    pip install monai   # not a dependency of mri2pet; only this measurement uses it
    python benchmarks/monai_step_comparison.py

In one process, on the model grid (batch 2, float32, 2 threads): forward + L1 + backward + Adam step
of (a) the pix2pix-3d / unet U-Net (4 levels, 16-128 channels, two 3x3x3 convolutions per level,
instance norm) and MONAI's ``BasicUNet`` with the same features; (b) one GLA-GAN residual generator
(filters 16, 16, 32, 16) and a stack of MONAI ``ResidualUnit``s with the same widths. Reports the
seconds and our/MONAI ratio; writes benchmarks/results/monai_step_comparison.json.
"""

from __future__ import annotations

import json
import time
from pathlib import Path

import torch
from torch import nn

from mri2pet_cli.models.glagan import residual_generator
from mri2pet_cli.models.pix2pix import UNetGenerator


def step_seconds(network: nn.Module, repeats: int = 3) -> float:
    x = torch.rand(2, 1, 64, 80, 64)
    target = torch.rand(2, 1, 64, 80, 64)
    optimizer = torch.optim.Adam(network.parameters(), lr=1e-4)
    times = []
    for _ in range(repeats + 1):
        start = time.perf_counter()
        out = network(x)
        loss = (out[:, :1] - target).abs().mean()
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        times.append(time.perf_counter() - start)
    return min(times[1:])


def main() -> None:
    from monai.networks.blocks import ResidualUnit
    from monai.networks.nets import BasicUNet

    torch.set_num_threads(2)
    torch.manual_seed(0)
    ours_unet = UNetGenerator(base=16, levels=4, dropout_levels=0, suvr_max=3.0)
    monai_unet = BasicUNet(spatial_dims=3, in_channels=1, out_channels=1, features=(16, 32, 64, 128, 128, 16))
    ours_res = residual_generator((16, 16, 32, 16))
    widths = (1, 16, 16, 32, 16)
    monai_res = nn.Sequential(
        *(
            ResidualUnit(3, cin, cout, strides=1, subunits=2, norm="BATCH", act=("LEAKYRELU", {"negative_slope": 0.2}))
            for cin, cout in zip(widths[:-1], widths[1:])
        )
    )
    rows = {}
    for name, ours, theirs in (("U-Net", ours_unet, monai_unet), ("residual generator", ours_res, monai_res)):
        a, b = step_seconds(ours), step_seconds(theirs)
        rows[name] = {
            "ours_s": a,
            "monai_s": b,
            "ratio_ours_to_monai": a / b,
            "params_ours": sum(p.numel() for p in ours.parameters()),
            "params_monai": sum(p.numel() for p in theirs.parameters()),
        }
        print(name, json.dumps(rows[name]), flush=True)
    out = Path(__file__).parent / "results" / "monai_step_comparison.json"
    out.write_text(json.dumps({"batch": 2, "grid": [64, 80, 64], "threads": 2, "networks": rows}, indent=2))


if __name__ == "__main__":
    main()
