"""oneDNN for the small 3D convolutions torch would run with its slow kernel (models/cpu_kernels.py)."""

import pytest
import torch
from torch import nn

from mri2pet_cli.models.cpu_kernels import onednn_convolutions, takes_slow_kernel

pytestmark = pytest.mark.skipif(not torch.backends.mkldnn.is_available(), reason="torch built without oneDNN")


def _net() -> nn.Module:
    torch.manual_seed(0)
    return nn.Sequential(nn.Conv3d(4, 8, 3, padding=1), nn.LeakyReLU(0.1), nn.Conv3d(8, 1, 1)).eval()


def test_small_inputs_go_through_onednn_with_the_same_result():
    net, x = _net(), torch.randn(1, 4, 12, 10, 14)
    with torch.no_grad():
        assert takes_slow_kernel(net[0], x) and not takes_slow_kernel(net[0], torch.randn(2, 4, 12, 10, 14))
        assert not takes_slow_kernel(net[0], torch.randn(1, 8, 64, 80, 64))  # 8 x 64 x 80 > 20480
        reference = net(x)
        seen = []
        hook = net[0].register_forward_hook(lambda m, i, o: seen.append(i[0].layout))
        with onednn_convolutions(net):
            fast = net(x)
        hook.remove()
    assert seen == [torch._mkldnn] and fast.layout == torch.strided
    torch.testing.assert_close(fast, reference, rtol=1e-5, atol=1e-6)
    assert not net[0]._forward_pre_hooks and not net[0]._forward_hooks  # gone after the block


def test_training_and_autocast_keep_torchs_own_kernel():
    net, x = _net(), torch.randn(1, 4, 12, 10, 14, requires_grad=True)
    with onednn_convolutions(net):
        out = net(x)  # gradients on: unchanged, and differentiable
        out.sum().backward()
        with torch.no_grad(), torch.autocast("cpu", dtype=torch.bfloat16):
            assert not takes_slow_kernel(net[0], x)
    assert x.grad is not None and x.grad.abs().sum() > 0
