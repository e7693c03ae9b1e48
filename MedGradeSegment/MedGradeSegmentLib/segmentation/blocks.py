"""Building blocks of MIG-Net: depthwise-separable convolutions, inverted attention gates,
Swin-UNet patch expanding, and the FPG location prior."""

from __future__ import annotations

import torch
import torch.nn.functional as F
from einops import rearrange
from torch import nn


class DSConv(nn.Module):
    """3x3 depthwise conv -> 1x1 pointwise conv -> BatchNorm -> GELU, with a residual connection."""

    def __init__(self, channels: int, kernel_size: int = 3):
        super().__init__()
        self.depthwise = nn.Conv2d(channels, channels, kernel_size, padding=kernel_size // 2, groups=channels,
                                   bias=False)
        self.pointwise = nn.Conv2d(channels, channels, 1, bias=False)
        self.norm = nn.BatchNorm2d(channels)
        self.act = nn.GELU()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x + self.act(self.norm(self.pointwise(self.depthwise(x))))


def dsconv_stem(channels: int, n: int = 3) -> nn.Sequential:
    """The opening of each MIG-Net branch: ``n`` 3x3 depthwise-separable convolutions."""
    return nn.Sequential(*[DSConv(channels) for _ in range(n)])


class InvertedAttentionGate(nn.Module):
    """Additive attention gate that *expands* channels (Oktay's gate reduces them).

    ``a = sigmoid(psi(relu6(Wx X + Wg G + bg)) + bpsi)``; returns ``X * a``. ``G`` (the gating
    signal from the decoder) is resized to ``X``'s size when needed.
    """

    def __init__(self, x_channels: int, g_channels: int, expansion: int = 2):
        super().__init__()
        inter = x_channels * expansion
        self.wx = nn.Conv2d(x_channels, inter, 1, bias=False)
        self.wg = nn.Conv2d(g_channels, inter, 1, bias=True)  # bias = bg
        self.psi = nn.Conv2d(inter, 1, 1, bias=True)  # bias = bpsi

    def attention(self, x: torch.Tensor, g: torch.Tensor) -> torch.Tensor:
        if g.shape[-2:] != x.shape[-2:]:
            g = F.interpolate(g, size=x.shape[-2:], mode="bilinear", align_corners=False)
        return torch.sigmoid(self.psi(F.relu6(self.wx(x) + self.wg(g))))

    def forward(self, x: torch.Tensor, g: torch.Tensor) -> torch.Tensor:
        return x * self.attention(x, g)


class PatchExpand(nn.Module):
    """Swin-UNet patch expanding: linear ``C -> scale^2 * C_out`` then rearranged to ``scale``x the size."""

    def __init__(self, dim: int, out_dim: int, scale: int = 2):
        super().__init__()
        self.scale = scale
        self.expand = nn.Linear(dim, out_dim * scale * scale, bias=False)
        self.norm = nn.LayerNorm(out_dim)

    def forward(self, x: torch.Tensor) -> torch.Tensor:  # b c h w -> b c' (s h) (s w)
        x = self.expand(rearrange(x, "b c h w -> b h w c"))
        x = rearrange(x, "b h w (p q c) -> b (h p) (w q) c", p=self.scale, q=self.scale)
        return rearrange(self.norm(x), "b h w c -> b c h w")


def prior_at_feature_size(prior: torch.Tensor, size: tuple[int, int]) -> torch.Tensor:
    """The FPG map resampled to the feature map's size with anti-aliasing: area averaging (torch's
    ``interpolate(mode="area")``), so each element of ``alpha`` is the mean of the atlas pixels it covers
    and every atlas pixel contributes (plain bilinear sampling at 1/32 would read a few pixels only)."""
    p = prior.detach().float().reshape(1, 1, *prior.shape[-2:])
    if tuple(p.shape[-2:]) == tuple(size):
        return p[0, 0].clone()
    return F.interpolate(p, size=size, mode="area")[0, 0]


class LocationPrior(nn.Module):
    """FPG location prior of one branch (eq. 3-3): ``X = conv1x1(concat(alpha * X, X))``.

    ``alpha`` is *one* trainable map owned by MIG-Net and shared by both branches (given to ``forward``),
    stored at the bottleneck feature size of the training crop so every element is used and trained;
    other input sizes (whole slices at inference) resize it bilinearly.
    """

    def __init__(self, channels: int):
        super().__init__()
        self.reduce = nn.Conv2d(2 * channels, channels, 1)

    def forward(self, x: torch.Tensor, alpha: torch.Tensor) -> torch.Tensor:
        if alpha.shape[-2:] != x.shape[-2:]:
            alpha = F.interpolate(alpha, size=x.shape[-2:], mode="bilinear", align_corners=False)
        return self.reduce(torch.cat([alpha.to(x.dtype) * x, x], dim=1))
