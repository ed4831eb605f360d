"""oneDNN for the small 3D convolutions that torch would run with its slow reference kernel on the CPU.

For a float32 input of one volume, torch picks oneDNN only when channels x depth x height exceeds
20480 (aten ``use_mkldnn``); below that it uses ``slow_conv3d``, 4-6x slower here: in the
``unet`` forward at 64 x 80 x 64 five such layers took 155 of 520 ms. Passing those inputs as oneDNN
tensors runs the same convolution through oneDNN (outputs differ by about 1e-6 relative, the usual
difference between two kernels). Inference only: with gradients on, or under autocast, nothing changes.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

import torch
from torch import nn

SLOW_KERNEL_LIMIT = 20480  # aten's threshold on N * C * D * H (N = 1 here) for float32 convolutions on the CPU


def _autocast_on() -> bool:
    try:
        return torch.is_autocast_enabled("cpu")
    except TypeError:  # torch < 2.4
        return torch.is_autocast_cpu_enabled()


def takes_slow_kernel(conv: nn.Conv3d, x: torch.Tensor) -> bool:
    """Whether torch would run ``conv`` on ``x`` with its slow reference kernel (and oneDNN can take it)."""
    return (
        x.device.type == "cpu"
        and x.dtype == torch.float32
        and x.layout == torch.strided
        and x.dim() == 5
        and x.shape[0] == 1  # torch takes oneDNN itself for batches
        and conv.groups == 1
        and conv.padding_mode == "zeros"
        and tuple(conv.dilation) == (1, 1, 1)
        and x.shape[1] * x.shape[2] * x.shape[3] <= SLOW_KERNEL_LIMIT
        and not torch.is_grad_enabled()
        and not _autocast_on()
    )


def _to_onednn(conv: nn.Conv3d, inputs: tuple):
    x = inputs[0]
    if takes_slow_kernel(conv, x):
        return (x.contiguous().to_mkldnn(), *inputs[1:])
    return None


def _to_dense(conv: nn.Conv3d, inputs: tuple, output: torch.Tensor):
    return output.to_dense() if output.layout == torch._mkldnn else None


@contextmanager
def onednn_convolutions(model: nn.Module, enabled: bool = True) -> Iterator[None]:
    """While inside, ``model``'s 3D convolutions that would take the slow kernel run through oneDNN."""
    if not enabled or not torch.backends.mkldnn.is_available():
        yield
        return
    handles = []
    for module in model.modules():
        if isinstance(module, nn.Conv3d):
            handles.append(module.register_forward_pre_hook(_to_onednn))
            handles.append(module.register_forward_hook(_to_dense))
    try:
        yield
    finally:
        for handle in handles:
            handle.remove()
