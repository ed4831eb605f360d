"""3D Glow building blocks (Kingma & Dhariwal 2018, in 3D as DUAL-GLOW uses them).

Every layer maps ``x -> (y, logdet)`` and has an exact ``inverse``. Log-determinants are per sample.
``positions`` (optional, (B, 1, D, H, W) of 0 / 1): count the log-determinant only at those positions
(a likelihood of the brain without the background; the map itself is the same everywhere).
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn


def squeeze3d(x: torch.Tensor) -> torch.Tensor:
    """(B, C, D, H, W) -> (B, 8C, D/2, H/2, W/2): space to channels, invertible, log-det 0."""
    b, c, d, h, w = x.shape
    x = x.view(b, c, d // 2, 2, h // 2, 2, w // 2, 2)
    return x.permute(0, 1, 3, 5, 7, 2, 4, 6).reshape(b, c * 8, d // 2, h // 2, w // 2)


def unsqueeze3d(x: torch.Tensor) -> torch.Tensor:
    b, c, d, h, w = x.shape
    x = x.view(b, c // 8, 2, 2, 2, d, h, w)
    return x.permute(0, 1, 5, 2, 6, 3, 7, 4).reshape(b, c // 8, d * 2, h * 2, w * 2)


def counted_positions(x: torch.Tensor, positions: torch.Tensor | None) -> torch.Tensor | int:
    """Per sample, how many positions of ``x`` the log-determinant counts (all, or those of ``positions``)."""
    return x[0, 0].numel() if positions is None else positions.flatten(1).sum(dim=1).to(x.dtype)


def level_positions(mask: torch.Tensor, levels: int) -> list[torch.Tensor]:
    """``mask`` at each level's latent resolution: a latent position counts where its block touches the mask."""
    out, m = [], (mask > 0).to(mask.dtype)
    for _ in range(levels):
        m = F.max_pool3d(m, 2)
        out.append(m)
    return out


def full_precision(x: torch.Tensor) -> torch.Tensor:
    """float32 for bf16 / fp16 tensors (autocast), float64 stays float64 (tests)."""
    return x if x.dtype == torch.float64 else x.float()


def haar_matrix() -> torch.Tensor:
    """Orthonormal 3D Haar transform of a 2x2x2 block (rows: filters), finest detail first, block mean last.

    Rows are ordered by the number of high-pass axes (3, 2, 1, 0), so the first half of the channels
    holds the finest detail: the half that a multi-scale split leaves at this level.
    """
    low, high = torch.tensor([1.0, 1.0]) / 2**0.5, torch.tensor([1.0, -1.0]) / 2**0.5
    rows = []
    for codes in sorted(
        [(a, b, c) for a in (0, 1) for b in (0, 1) for c in (0, 1)], key=lambda code: (-sum(code), code)
    ):
        fx, fy, fz = (high if code else low for code in codes)
        rows.append(torch.einsum("i,j,k->ijk", fx, fy, fz).reshape(8))
    return torch.stack(rows)


class HaarSqueeze(nn.Module):
    """Squeeze followed by a fixed orthonormal 3D Haar transform (log-det 0).

    Output channels are (frequency, input channel): the finest details of every input channel first.
    Choice (not in DUAL-GLOW): with the plain squeeze a level's split may keep coarse content; with Haar
    the latent left at a fine level starts as fine detail and the block means travel to coarser levels.
    """

    def __init__(self) -> None:
        super().__init__()
        self.register_buffer("haar", haar_matrix())

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = squeeze3d(full_precision(x))
        b, c8, *spatial = y.shape
        with torch.autocast(y.device.type, enabled=False):  # float32 under autocast: the map synthesis inverts
            y = torch.einsum("fk,bck...->bfc...", self.haar.to(y.dtype), y.view(b, c8 // 8, 8, *spatial))
        return y.reshape(b, c8, *spatial)

    def inverse(self, y: torch.Tensor) -> torch.Tensor:
        b, c8, *spatial = y.shape
        y = full_precision(y)
        with torch.autocast(y.device.type, enabled=False):
            x = torch.einsum("fk,bfc...->bck...", self.haar.to(y.dtype), y.view(b, 8, c8 // 8, *spatial))
        return unsqueeze3d(x.reshape(b, c8, *spatial))


class ActNorm(nn.Module):
    """Per-channel affine map, initialised from the first batch to zero mean and unit variance."""

    def __init__(self, channels: int) -> None:
        super().__init__()
        self.bias = nn.Parameter(torch.zeros(1, channels, 1, 1, 1))
        self.log_scale = nn.Parameter(torch.zeros(1, channels, 1, 1, 1))
        self.register_buffer("initialized", torch.tensor(False))

    @torch.no_grad()
    def _init(self, x: torch.Tensor) -> None:
        mean = x.mean(dim=(0, 2, 3, 4), keepdim=True)
        std = x.std(dim=(0, 2, 3, 4), keepdim=True)
        self.bias.data.copy_(-mean)
        self.log_scale.data.copy_(-torch.log(std + 1e-6))
        self.initialized.fill_(True)

    def forward(self, x: torch.Tensor, positions: torch.Tensor | None = None) -> tuple[torch.Tensor, torch.Tensor]:
        if self.training and not bool(self.initialized):
            self._init(x)
        y = (x + self.bias) * torch.exp(self.log_scale)
        logdet = self.log_scale.sum() * counted_positions(x, positions)
        return y, logdet.expand(x.shape[0])

    def inverse(self, y: torch.Tensor) -> torch.Tensor:
        return y * torch.exp(-self.log_scale) - self.bias


class InvConv1x1(nn.Module):
    """Invertible 1x1x1 convolution, LU-decomposed: W = P L (U + diag(sign * exp(log_s)))."""

    def __init__(self, channels: int, seed: int = 0, init: str = "rotation") -> None:
        super().__init__()
        if init == "reverse":  # a channel reversal: the couplings alternate halves, as in RealNVP
            q = torch.eye(channels).flip(0)
        else:  # Glow: a random rotation
            generator = torch.Generator().manual_seed(seed)
            q, _ = torch.linalg.qr(torch.randn(channels, channels, generator=generator))
        p, lower, upper = torch.linalg.lu(q)
        s = torch.diag(upper)
        self.register_buffer("p", p)
        self.register_buffer("sign_s", torch.sign(s))
        self.register_buffer("lower_mask", torch.tril(torch.ones(channels, channels), -1))
        self.register_buffer("eye", torch.eye(channels))
        self.lower = nn.Parameter(lower)
        self.upper = nn.Parameter(torch.triu(upper, 1))
        self.log_s = nn.Parameter(torch.log(torch.abs(s)))

    def weight(self) -> torch.Tensor:
        lower = self.lower * self.lower_mask + self.eye
        upper = self.upper * self.lower_mask.T + torch.diag(self.sign_s * torch.exp(self.log_s))
        return self.p @ lower @ upper

    def forward(self, x: torch.Tensor, positions: torch.Tensor | None = None) -> tuple[torch.Tensor, torch.Tensor]:
        # W and the convolution in float32 under autocast: the log-determinant (log_s) is W's, and the
        # inverse used at synthesis is W's inverse, so training must use W unrounded
        x = full_precision(x)
        with torch.autocast(x.device.type, enabled=False):
            w = self.weight().to(x.dtype)
            y = F.conv3d(x, w.view(*w.shape, 1, 1, 1))
        logdet = self.log_s.sum() * counted_positions(x, positions)
        return y, logdet.expand(x.shape[0])

    def inverse(self, y: torch.Tensor) -> torch.Tensor:
        y = full_precision(y)
        with torch.autocast(y.device.type, enabled=False):
            w_inv = torch.linalg.inv(self.weight().double()).to(y.dtype)
            return F.conv3d(y, w_inv.view(*w_inv.shape, 1, 1, 1))


class ZeroConv3d(nn.Conv3d):
    """A 3x3x3 convolution that starts at zero (so every coupling starts as the identity)."""

    def __init__(self, cin: int, cout: int) -> None:
        super().__init__(cin, cout, 3, padding=1)
        nn.init.zeros_(self.weight)
        nn.init.zeros_(self.bias)


def conv_features(cin: int, hidden: int) -> nn.Sequential:
    """3x3x3 conv, then 1x1x1 conv, each followed by a ReLU: the first two layers of the paper's CNN."""
    return nn.Sequential(
        nn.Conv3d(cin, hidden, 3, padding=1),
        nn.ReLU(inplace=True),
        nn.Conv3d(hidden, hidden, 1),
        nn.ReLU(inplace=True),
    )


def zero_ended_cnn(cin: int, cout: int, hidden: int) -> nn.Sequential:
    """``conv_features``, then a zero-initialised 3x3x3 conv: the paper's three-layer CNN.

    Used for the couplings' s and t and for the relation networks; the zero end makes each start as
    the identity (couplings) or as N(0, I) (priors).
    """
    return nn.Sequential(*conv_features(cin, hidden), ZeroConv3d(hidden, cout))


class AffineCoupling(nn.Module):
    """Eqs. 13-14 of DUAL-GLOW: half the channels pass, the other half get y = x * exp(s) + t.

    s and t come from a small 3D CNN of the passing half (three convolutions, as in the paper).
    s is bounded with tanh (scale ``S_LIMIT``): a choice for stable training in low precision.
    """

    S_LIMIT = 2.0

    def __init__(self, channels: int, hidden: int) -> None:
        super().__init__()
        half = channels // 2
        self.net = zero_ended_cnn(half, 2 * (channels - half), hidden)

    def _st(self, xa: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        raw_s, t = self.net(xa).to(xa.dtype).chunk(2, dim=1)  # only the s, t network runs in low precision
        return self.S_LIMIT * torch.tanh(raw_s / self.S_LIMIT), t

    def forward(self, x: torch.Tensor, positions: torch.Tensor | None = None) -> tuple[torch.Tensor, torch.Tensor]:
        xa, xb = x.chunk(2, dim=1)
        s, t = self._st(xa)
        yb = xb * torch.exp(s) + t
        counted = s if positions is None else s * positions.to(s.dtype)
        return torch.cat([xa, yb], dim=1), counted.flatten(1).sum(dim=1)

    def inverse(self, y: torch.Tensor) -> torch.Tensor:
        ya, yb = y.chunk(2, dim=1)
        s, t = self._st(ya)
        return torch.cat([ya, (yb - t) * torch.exp(-s)], dim=1)


class FlowStep(nn.Module):
    """actnorm -> invertible 1x1x1 convolution -> affine coupling."""

    def __init__(self, channels: int, hidden: int, seed: int = 0, mixing: str = "rotation") -> None:
        super().__init__()
        self.layers = nn.ModuleList(
            [ActNorm(channels), InvConv1x1(channels, seed, mixing), AffineCoupling(channels, hidden)]
        )

    def forward(self, x: torch.Tensor, positions: torch.Tensor | None = None) -> tuple[torch.Tensor, torch.Tensor]:
        total = torch.zeros(x.shape[0], device=x.device, dtype=x.dtype)
        for layer in self.layers:
            x, logdet = layer(x, positions)
            total = total + logdet
        return x, total

    def inverse(self, y: torch.Tensor) -> torch.Tensor:
        for layer in reversed(self.layers):
            y = layer.inverse(y)
        return y


class MultiScaleFlow(nn.Module):
    """Glow's multi-scale architecture (Fig. 3 of DUAL-GLOW): at each level squeeze, K steps, then split.

    ``forward(x)`` returns the per-level latents [z_1, ..., z_L] (z_L the top level) and the
    log-determinant; ``inverse(latents)`` rebuilds x exactly. ``forward(x, positions=level_positions(...))``
    counts the log-determinant inside those positions only; ``forward(x, with_rests=True)`` also returns
    the halves each split passed upwards (what the coarser latents are made of), and ``inverse([z_L],
    draw=fn)`` builds the lower latents top-down, ``z_i = fn(i, rest_i)``: priors conditioned on them.
    ``squeeze="haar"`` uses HaarSqueeze and starts the 1x1x1 convolutions as channel reversals, so that
    at initialisation each level's latent is the finest Haar detail; ``"plain"`` is Glow's squeeze with
    random rotations.
    """

    def __init__(
        self,
        in_channels: int = 1,
        levels: int = 3,
        steps: int = 4,
        hidden: int = 32,
        checkpoint: bool = False,
        squeeze: str = "plain",
    ):
        super().__init__()
        if squeeze not in ("plain", "haar"):
            raise ValueError(f"squeeze must be 'plain' or 'haar', not {squeeze!r}")
        self.levels = levels
        self.checkpoint = checkpoint
        self.haar = HaarSqueeze() if squeeze == "haar" else None
        mixing = "reverse" if squeeze == "haar" else "rotation"
        self.blocks = nn.ModuleList()
        channels = in_channels
        self.latent_channels, self.rest_channels = [], []
        for level in range(levels):
            channels *= 8
            steps_here = [FlowStep(channels, hidden, 100 * level + k, mixing) for k in range(steps)]
            self.blocks.append(nn.ModuleList(steps_here))
            if level < levels - 1:
                self.latent_channels.append(channels // 2)
                channels = channels - channels // 2
                self.rest_channels.append(channels)
            else:
                self.latent_channels.append(channels)

    def _run(self, step: FlowStep, x: torch.Tensor, positions: torch.Tensor | None):
        if self.checkpoint and self.training:
            from torch.utils.checkpoint import checkpoint

            return checkpoint(step, x, positions, use_reentrant=False)
        return step(x, positions)

    def forward(self, x: torch.Tensor, positions: list[torch.Tensor] | None = None, with_rests: bool = False):
        logdet = torch.zeros(x.shape[0], device=x.device, dtype=x.dtype)
        latents, rests = [], []
        h = x
        for level, block in enumerate(self.blocks):
            h = self.haar(h) if self.haar is not None else squeeze3d(h)
            for step in block:
                h, ld = self._run(step, h, None if positions is None else positions[level])
                logdet = logdet + ld
            if level < self.levels - 1:
                z, h = h[:, : self.latent_channels[level]], h[:, self.latent_channels[level] :]
                latents.append(z)
                rests.append(h)
            else:
                latents.append(h)
        return (latents, logdet, rests) if with_rests else (latents, logdet)

    def inverse(self, latents: list[torch.Tensor], draw=None) -> torch.Tensor:
        h = latents[-1]
        for level in reversed(range(self.levels)):
            if level < self.levels - 1:
                z = latents[level] if draw is None else draw(level, h)
                h = torch.cat([z, h], dim=1)
            for step in reversed(self.blocks[level]):
                h = step.inverse(h)
            h = self.haar.inverse(h) if self.haar is not None else unsqueeze3d(h)
        return h


def gaussian_log_prob(
    z: torch.Tensor, mean: torch.Tensor, log_std: torch.Tensor, positions: torch.Tensor | None = None
) -> torch.Tensor:
    """Sum over all but the batch axis of log N(z; mean, exp(log_std)^2) (``positions``: only there)."""
    import math

    lp = -0.5 * (math.log(2 * math.pi) + 2 * log_std + (z - mean) ** 2 * torch.exp(-2 * log_std))
    if positions is not None:
        lp = lp * positions.to(lp.dtype)
    return lp.flatten(1).sum(dim=1)


class GradientReversal(torch.autograd.Function):
    """Identity forward, gradient times -1 backward (Ganin & Lempitsky 2015)."""

    @staticmethod
    def forward(ctx, x):  # type: ignore[override]
        return x.view_as(x)

    @staticmethod
    def backward(ctx, grad):  # type: ignore[override]
        return -grad
