"""Per-view decoders with residual cross-attention (RCA), and the masked reconstruction loss.

A view's decoder starts from its full token sequence (encoder outputs where the encoder saw the view,
a mask token elsewhere, plus a sine-cosine position embedding). RCA: for every other view j in turn,
``x = x + Attn(q = x, k = x_j, v = x)`` -- the view's own tokens are query and value, the other view's
tokens are the keys (aligned views share the token grid, so the attention map is square); then
``x = x + MLP(x)``, three transformer blocks (MONAI) and a linear projection to the patch pixels.
Plain MAE uses the same decoder without the RCA and its MLP.
"""

from __future__ import annotations

import torch
from monai.networks.blocks import MLPBlock
from torch import nn

from .encoder import _attend, transformer_block


class ResidualCrossAttention(nn.Module):
    """One RCA term: attention with q, v from the view's tokens and k from another view's tokens."""

    def __init__(self, dim: int, heads: int):
        super().__init__()
        self.heads = heads
        self.norm_x, self.norm_other = nn.LayerNorm(dim), nn.LayerNorm(dim)
        self.q, self.k, self.v = nn.Linear(dim, dim), nn.Linear(dim, dim), nn.Linear(dim, dim)
        self.proj = nn.Linear(dim, dim)

    def forward(self, x: torch.Tensor, other: torch.Tensor) -> torch.Tensor:
        if x.shape != other.shape:
            raise ValueError(f"RCA needs views with the same token grid, got {tuple(x.shape)} and {tuple(other.shape)}")
        xn, on = self.norm_x(x), self.norm_other(other)
        return self.proj(_attend(self.q(xn), self.k(on), self.v(xn), self.heads, None))


class ViewDecoder(nn.Module):
    def __init__(self, dim: int, heads: int, depth: int, mlp_ratio: float, patch_pixels: int, rca: bool = True):
        super().__init__()
        mlp = int(dim * mlp_ratio)
        self.rca = ResidualCrossAttention(dim, heads) if rca else None
        self.rca_norm = nn.LayerNorm(dim) if rca else None
        self.rca_mlp = MLPBlock(dim, mlp, 0.0, "GELU") if rca else None
        self.blocks = nn.ModuleList(transformer_block(dim, mlp, heads) for _ in range(depth))
        self.norm = nn.LayerNorm(dim)
        self.pred = nn.Linear(dim, patch_pixels)

    def forward(self, x: torch.Tensor, others: list[tuple[torch.Tensor, torch.Tensor]] = ()) -> torch.Tensor:
        """x [B, 1 + N, D]; ``others``: (tokens [B, 1 + N, D], present [B] bool) of the other views.
        Returns the predicted pixels of the N patches, [B, N, patch_pixels]."""
        if self.rca is not None:
            for other, present in others:
                x = x + present[:, None, None].to(x.dtype) * self.rca(x, other)
            x = x + self.rca_mlp(self.rca_norm(x))
        for blk in self.blocks:
            x = blk(x)
        return self.pred(self.norm(x))[:, 1:]


def patchify(images: torch.Tensor, patch: int) -> torch.Tensor:
    """[B, C, H, W] -> [B, N, patch*patch*C], patches row-major (the encoder's token order)."""
    b, c, h, w = images.shape
    x = images.reshape(b, c, h // patch, patch, w // patch, patch)
    return x.permute(0, 2, 4, 3, 5, 1).reshape(b, (h // patch) * (w // patch), patch * patch * c)


def unpatchify(patches: torch.Tensor, patch: int, size: tuple[int, int], channels: int) -> torch.Tensor:
    b, n, _ = patches.shape
    gh, gw = size[0] // patch, size[1] // patch
    x = patches.reshape(b, gh, gw, patch, patch, channels).permute(0, 5, 1, 3, 2, 4)
    return x.reshape(b, channels, size[0], size[1])


def masked_mse(pred: torch.Tensor, target: torch.Tensor, mask: torch.Tensor,
               norm_pix: bool = False) -> tuple[torch.Tensor, torch.Tensor]:
    """Sum of squared errors per patch (mean over its pixels) over masked patches only, and their count.

    ``norm_pix``: each target patch is normalised by its own mean and standard deviation (MAE's option)."""
    if norm_pix:
        mean, var = target.mean(-1, keepdim=True), target.var(-1, keepdim=True)
        target = (target - mean) / (var + 1e-6).sqrt()
    per_patch = ((pred - target) ** 2).mean(-1)
    m = mask.to(per_patch.dtype)
    return (per_patch * m).sum(), m.sum()
