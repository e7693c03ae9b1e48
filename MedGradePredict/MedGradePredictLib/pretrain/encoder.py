"""ViT encoder for (U)MAE pre-training and the fine-tuned classifiers.

Patches of every view are embedded by one convolution, get a fixed 2D sine-cosine position embedding
(MONAI's ``build_sincos_position_embedding``) and are concatenated after a learnable global token.
Two block types of the same size:

* ``"ccp"`` (UMAE): *cross-convolution projection* -- q, k and v of the view tokens come from two 3x3
  convolutions, one over the views stacked one below the other (view-major ordering: a token's
  neighbours are its spatial neighbours in the same view) and one over the views' rows interleaved
  (position-major ordering: a token's neighbours include the same place in the neighbouring views);
  the two projections are mapped back to token order and averaged. The global token gets a linear q/k/v.
* ``"linear"`` (plain MAE/ViT): MONAI's ``TransformerBlock`` (linear q/k/v).
"""

from __future__ import annotations

import warnings
from dataclasses import asdict, dataclass, field

import torch
import torch.nn.functional as F
from monai.networks.blocks import MLPBlock, TransformerBlock
from monai.networks.blocks.pos_embed_utils import build_sincos_position_embedding
from torch import nn


def sincos_2d(grid: tuple[int, int], dim: int) -> torch.Tensor:
    """MONAI's fixed 2D sine-cosine position embedding [1, rows*cols, dim] (row-major, as the patches)."""
    with warnings.catch_warnings():  # MONAI calls torch.meshgrid without indexing= ("ij" is what it means)
        warnings.simplefilter("ignore", UserWarning)
        return build_sincos_position_embedding(list(grid), dim, 2).data.clone()


def transformer_block(dim: int, mlp_dim: int, heads: int) -> TransformerBlock:
    """MONAI's pre-norm transformer block (linear q/k/v). MONAI builds a cross-attention LayerNorm even
    without cross-attention; it is frozen so that every trainable parameter gets a gradient (DDP)."""
    blk = TransformerBlock(dim, mlp_dim, heads, qkv_bias=True)
    blk.norm_cross_attn.requires_grad_(False)
    return blk


@dataclass
class EncoderConfig:
    image_size: tuple[int, int] = (64, 64)  # (rows, cols) in pixels, multiples of patch_size
    patch_size: int = 8
    in_channels: int = 1  # per view
    dim: int = 64
    depth: int = 4
    heads: int = 4
    mlp_ratio: float = 4.0
    attention: str = "ccp"  # "ccp" (UMAE) or "linear" (plain MAE / ViT)

    def __post_init__(self) -> None:
        self.image_size = tuple(int(v) for v in (self.image_size if isinstance(self.image_size, (list, tuple))
                                                 else (self.image_size, self.image_size)))
        if any(v % self.patch_size for v in self.image_size):
            raise ValueError(f"image_size {self.image_size} is not a multiple of patch_size {self.patch_size}")
        if self.dim % 4 or self.dim % self.heads:
            raise ValueError(f"dim {self.dim} must be divisible by 4 and by heads {self.heads}")
        if self.attention not in ("ccp", "linear"):
            raise ValueError(f"attention must be 'ccp' or 'linear', got {self.attention!r}")

    @property
    def grid(self) -> tuple[int, int]:
        return self.image_size[0] // self.patch_size, self.image_size[1] // self.patch_size

    def to_dict(self) -> dict:
        d = asdict(self)
        d["image_size"] = list(self.image_size)
        return d


@dataclass
class Layout:
    """How the view tokens after the global token are arranged: ``views`` grids of ``rows x cols``."""

    views: int
    rows: int
    cols: int
    present: torch.Tensor | None = field(default=None)  # [B, views] bool; absent views are ignored


def _attend(q: torch.Tensor, k: torch.Tensor, v: torch.Tensor, heads: int,
            key_mask: torch.Tensor | None) -> torch.Tensor:
    """Multi-head scaled dot-product attention; ``key_mask`` [B, Lk] True = may be attended."""
    b, lq, d = q.shape
    split = lambda t: t.reshape(b, t.shape[1], heads, d // heads).transpose(1, 2)  # noqa: E731
    mask = None if key_mask is None else key_mask[:, None, None, :]
    out = F.scaled_dot_product_attention(split(q), split(k), split(v), attn_mask=mask)
    return out.transpose(1, 2).reshape(b, lq, d)


class CrossConvProjection(nn.Module):
    """q, k, v of the view tokens from 3x3 convolutions over two orderings of the views, averaged."""

    def __init__(self, dim: int):
        super().__init__()
        self.conv_a = nn.Conv2d(dim, 3 * dim, 3, padding=1)  # view-major ordering
        self.conv_b = nn.Conv2d(dim, 3 * dim, 3, padding=1)  # position-major (interleaved rows) ordering
        self.global_qkv = nn.Linear(dim, 3 * dim)

    @staticmethod
    def order_a(t: torch.Tensor) -> torch.Tensor:
        """[B, V, h, w, D] -> [B, D, V*h, w]: views stacked one below the other."""
        b, v, h, w, d = t.shape
        return t.reshape(b, v * h, w, d).permute(0, 3, 1, 2)

    @staticmethod
    def order_b(t: torch.Tensor) -> torch.Tensor:
        """[B, V, h, w, D] -> [B, D, h*V, w]: row r of view 0, row r of view 1, ..., then row r+1."""
        b, v, h, w, d = t.shape
        return t.transpose(1, 2).reshape(b, h * v, w, d).permute(0, 3, 1, 2)

    @staticmethod
    def unorder_a(y: torch.Tensor, v: int) -> torch.Tensor:
        b, c, vh, w = y.shape
        return y.permute(0, 2, 3, 1).reshape(b, v, vh // v, w, c)

    @staticmethod
    def unorder_b(y: torch.Tensor, v: int) -> torch.Tensor:
        b, c, hv, w = y.shape
        return y.permute(0, 2, 3, 1).reshape(b, hv // v, v, w, c).transpose(1, 2)

    def forward(self, x: torch.Tensor, layout: Layout) -> torch.Tensor:
        """x [B, 1 + V*h*w, D] -> qkv [B, 1 + V*h*w, 3D]."""
        b, _, d = x.shape
        t = x[:, 1:].reshape(b, layout.views, layout.rows, layout.cols, d)
        if layout.present is not None:  # an absent view contributes zeros (like padding) to its neighbours
            t = t * layout.present[:, :, None, None, None].to(t.dtype)
        a = self.unorder_a(self.conv_a(self.order_a(t)), layout.views)
        c = self.unorder_b(self.conv_b(self.order_b(t)), layout.views)
        tokens = ((a + c) / 2).reshape(b, -1, 3 * d)
        return torch.cat([self.global_qkv(x[:, :1]), tokens], 1)


class CCPBlock(nn.Module):
    """Pre-norm transformer block whose attention takes q, k, v from the cross-convolution projection."""

    def __init__(self, dim: int, heads: int, mlp_dim: int):
        super().__init__()
        self.heads = heads
        self.norm1 = nn.LayerNorm(dim)
        self.qkv = CrossConvProjection(dim)
        self.proj = nn.Linear(dim, dim)
        self.norm2 = nn.LayerNorm(dim)
        self.mlp = MLPBlock(dim, mlp_dim, 0.0, "GELU")

    def forward(self, x: torch.Tensor, layout: Layout) -> torch.Tensor:
        q, k, v = self.qkv(self.norm1(x), layout).chunk(3, -1)
        key_mask = None
        if layout.present is not None:
            per_token = layout.present.repeat_interleave(layout.rows * layout.cols, 1)
            key_mask = torch.cat([torch.ones_like(per_token[:, :1]), per_token], 1)
        x = x + self.proj(_attend(q, k, v, self.heads, key_mask))
        return x + self.mlp(self.norm2(x))


class ViTEncoder(nn.Module):
    def __init__(self, cfg: EncoderConfig):
        super().__init__()
        self.cfg = cfg
        d = cfg.dim
        self.patch_embed = nn.Conv2d(cfg.in_channels, d, cfg.patch_size, cfg.patch_size)
        self.register_buffer("pos_embed", sincos_2d(cfg.grid, d))
        self.global_token = nn.Parameter(torch.zeros(1, 1, d))
        mlp = int(d * cfg.mlp_ratio)
        if cfg.attention == "ccp":
            self.blocks = nn.ModuleList(CCPBlock(d, cfg.heads, mlp) for _ in range(cfg.depth))
        else:
            self.blocks = nn.ModuleList(transformer_block(d, mlp, cfg.heads) for _ in range(cfg.depth))
        self.norm = nn.LayerNorm(d)
        nn.init.normal_(self.global_token, std=0.02)

    def check_images(self, images: torch.Tensor) -> None:
        if images.shape[-3] != self.cfg.in_channels or tuple(images.shape[-2:]) != self.cfg.image_size:
            raise ValueError(f"the encoder takes {self.cfg.in_channels}x{self.cfg.image_size[0]}x"
                             f"{self.cfg.image_size[1]} images, got {tuple(images.shape[-3:])}")

    def embed(self, images: torch.Tensor) -> torch.Tensor:
        """[B, C, H, W] -> patch tokens with position embedding [B, N, D] (N row-major over the grid)."""
        self.check_images(images)
        return self.patch_embed(images).flatten(2).transpose(1, 2) + self.pos_embed

    def encode(self, tokens: torch.Tensor, layout: Layout | None) -> torch.Tensor:
        """Global token + ``tokens`` [B, L, D] through the blocks -> [B, 1 + L, D] (normalised)."""
        x = torch.cat([self.global_token.expand(tokens.shape[0], -1, -1), tokens], 1)
        for blk in self.blocks:
            x = blk(x, layout) if isinstance(blk, CCPBlock) else blk(x)
        return self.norm(x)

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        """One unmasked view [B, C, H, W] -> [B, 1 + N, D] (fine-tuning and feature extraction)."""
        rows, cols = self.cfg.grid
        return self.encode(self.embed(images), Layout(1, rows, cols))
