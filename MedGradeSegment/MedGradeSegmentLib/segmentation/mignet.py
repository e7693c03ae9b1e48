"""MIG-Net: Swin-UNet backbone (MONAI Swin Transformer blocks, 2D) with a grade branch, a
segmentation branch, dual prior guidance and inverted attention gates.

Layout (input ``H x W`` divisible by ``32``, patch size 2)::

    encoder (MONAI SwinTransformer, spatial_dims=2) -> skips x0..x3, bottleneck x4 (16C, H/32)
    grade branch:  3 DSConv -> [location prior] -> pool -> linear -> LGG/HGG logits
    seg branch:    3 DSConv -> [location prior] -> [concat grade features, 1x1 conv]
                   -> 4 x (patch expanding, [IAG on the skip], concat, 1x1 conv, Swin blocks)
                   -> final patch expanding x2 -> 1x1 conv -> class logits

Switches: ``dual_guidance`` (location + semantic prior), ``iag``, ``grade_branch``; ``fpg_loss`` is
a training switch kept here so a model records how it was trained. With all off the network is
the plain Swin-UNet (no branch stems).
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field, fields
from typing import Any

import torch
import torch.nn.functional as F
from monai.networks.nets.swin_unetr import BasicLayer, SwinTransformer
from torch import nn

from .blocks import InvertedAttentionGate, LocationPrior, PatchExpand, dsconv_stem, prior_at_feature_size


@dataclass
class MIGNetConfig:
    """Architecture and switches of a MIG-Net (also the ``architecture`` entry of a bundle manifest)."""

    in_channels: int = 1
    num_classes: int = 2
    grade_classes: int = 2  # LGG, HGG
    embed_dim: int = 48
    depths: tuple[int, ...] = (2, 2, 2, 2)
    num_heads: tuple[int, ...] = (3, 6, 12, 24)
    decoder_depths: tuple[int, ...] = (0, 1, 1, 1)  # Swin blocks per decoder level, finest first
    window_size: int = 7
    patch_size: int = 2
    prior_size: int = 224  # the training crop; alpha is stored at its bottleneck size (prior_size / divisor)
    fpg_loss: bool = True
    dual_guidance: bool = True
    iag: bool = True
    grade_branch: bool = True
    # The location prior as an *input* that follows the image (issue 17), instead of one fixed ``alpha``
    # parameter: see MIGNet.location_alpha.
    prior_input: bool = False
    name: str = field(default="MIGNet")

    def to_dict(self) -> dict[str, Any]:
        d = asdict(self)
        for k in ("depths", "num_heads", "decoder_depths"):
            d[k] = list(d[k])
        return d

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> "MIGNetConfig":
        known = {f.name for f in fields(cls)}
        kw = {k: (tuple(v) if isinstance(v, list) else v) for k, v in d.items() if k in known}
        return cls(**kw)

    @property
    def divisor(self) -> int:
        return self.patch_size * 2 ** len(self.depths)

    @property
    def has_stems(self) -> bool:
        return self.dual_guidance or self.grade_branch


class MIGNet(nn.Module):
    """Forward returns ``(segmentation logits (B, num_classes, H, W), grade logits (B, 2) or None)``."""

    def __init__(self, config: MIGNetConfig, prior: torch.Tensor | None = None):
        super().__init__()
        self.config = cfg = config
        if len(cfg.depths) != 4 or len(cfg.num_heads) != 4 or len(cfg.decoder_depths) != 4:
            raise ValueError("MIG-Net uses four Swin stages: depths, num_heads and decoder_depths need 4 entries")
        c = cfg.embed_dim
        self.encoder = SwinTransformer(in_chans=cfg.in_channels, embed_dim=c, window_size=(cfg.window_size,) * 2,
                                       patch_size=(cfg.patch_size,) * 2, depths=cfg.depths,
                                       num_heads=cfg.num_heads, spatial_dims=2)
        bott = c * 2 ** 4
        if cfg.has_stems:
            self.seg_stem = dsconv_stem(bott)
        if cfg.grade_branch:
            self.grade_stem = dsconv_stem(bott)
            self.grade_head = nn.Sequential(nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Dropout(0.2),
                                            nn.Linear(bott, cfg.grade_classes))
        if cfg.dual_guidance and cfg.prior_input:
            # FPG map on the whole working grid (prior_size x prior_size = the brain-centred field of view that
            # training slices and inference slices share); a buffer, so it travels with the weights.
            n = cfg.prior_size
            p = torch.full((n, n), 0.5) if prior is None else prior_at_feature_size(prior, (n, n))
            self.register_buffer("prior_map", p[None, None].float().clone())
            # the trainable part acts on the prior itself: a 3x3 conv initialised to the identity, so alpha
            # starts as the FPG atlas (eq. 3-3) and is learned, and being a convolution it moves with the image
            # under rotation and crop
            self.prior_conv = nn.Conv2d(1, 1, 3, padding=1)
            with torch.no_grad():
                self.prior_conv.weight.zero_()
                self.prior_conv.weight[0, 0, 1, 1] = 1.0
                self.prior_conv.bias.zero_()
        elif cfg.dual_guidance:
            n = max(cfg.prior_size // cfg.divisor, 1)
            if prior is None:
                prior = torch.full((n, n), 0.5)
            # one alpha for both branches (eq. 3-3), at the feature size, every element trained
            self.alpha = nn.Parameter(prior_at_feature_size(prior, (n, n))[None, None])
        if cfg.dual_guidance:
            self.seg_prior = LocationPrior(bott)
            if cfg.grade_branch:
                self.grade_prior = LocationPrior(bott)
                self.semantic_reduce = nn.Conv2d(2 * bott, bott, 1)
        self.expand = nn.ModuleList()
        self.gates = nn.ModuleList()
        self.reduce = nn.ModuleList()
        self.blocks = nn.ModuleList()
        for level in (3, 2, 1, 0):  # coarse to fine; level i has c * 2**i channels
            dim = c * 2 ** level
            self.expand.append(PatchExpand(dim * 2, dim))
            self.gates.append(InvertedAttentionGate(dim, dim) if cfg.iag else nn.Identity())
            self.reduce.append(nn.Conv2d(2 * dim, dim, 1))
            depth = cfg.decoder_depths[level]
            self.blocks.append(BasicLayer(dim=dim, depth=depth, num_heads=cfg.num_heads[level],
                                          window_size=(cfg.window_size,) * 2, drop_path=[0.0] * depth,
                                          qkv_bias=True) if depth else nn.Identity())
        self.final_expand = PatchExpand(c, c, scale=cfg.patch_size)
        self.head = nn.Conv2d(c, cfg.num_classes, 1)

    def location_alpha(self, x: torch.Tensor, prior: torch.Tensor | None) -> torch.Tensor:
        """``alpha`` of the location prior at the bottleneck size (``x``'s size / ``divisor``).

        With ``prior_input`` (issue 17) the FPG map is carried through the same spatial transforms as the image
        (training: the ``prior`` key of a sample is padded, rotated by 90 degrees and cropped with the image
        and the label; inference: ``prior`` is None and the stored map is on the grid the slice is already on,
        centre-padded like the slice), area-averaged to the feature size and passed through the trainable 3x3
        conv. Choice and reason (the thesis is silent on augmentation): a fixed ``alpha`` points at the wrong
        place on most training steps once the image is rotated and cropped, and at inference it was resized to
        another field of view; a prior that moves with the image is right on every step and at inference.
        Without ``prior_input`` the old fixed trainable ``alpha`` (older bundles).
        """
        if not self.config.prior_input:
            return self.alpha
        if prior is None:
            prior = self.prior_map.expand(x.shape[0], 1, -1, -1)
            ph, pw = x.shape[-2] - prior.shape[-2], x.shape[-1] - prior.shape[-1]
            # centred pad, as predict_slices pads the slice (always applied, also by 0, so that an ONNX trace
            # keeps it for every input size)
            prior = F.pad(prior, (pw // 2, pw - pw // 2, ph // 2, ph - ph // 2), value=0.0)
        prior = prior.to(x.dtype)
        # area averaging to the bottleneck (input size / divisor): an average pool with a constant kernel, which
        # ONNX exports for any input size (interpolate(mode="area") to a traced size does not)
        return self.prior_conv(F.avg_pool2d(prior, self.config.divisor))

    def forward(self, x: torch.Tensor, prior: torch.Tensor | None = None) -> tuple[torch.Tensor, torch.Tensor | None]:
        cfg = self.config
        h, w = x.shape[-2:]
        if h % cfg.divisor or w % cfg.divisor:
            raise ValueError(f"MIG-Net input size {h}x{w} must be divisible by {cfg.divisor}; pad it first")
        skips = self.encoder(x, normalize=True)
        s = skips[4]
        grade_logits = None
        alpha = self.location_alpha(x, prior) if cfg.dual_guidance else None
        if cfg.has_stems:
            s = self.seg_stem(s)
        if cfg.grade_branch:
            g = self.grade_stem(skips[4])
            if cfg.dual_guidance:
                g = self.grade_prior(g, alpha)
            grade_logits = self.grade_head(g)
        if cfg.dual_guidance:
            s = self.seg_prior(s, alpha)
            if cfg.grade_branch:
                s = self.semantic_reduce(torch.cat([s, g], dim=1))
        for i, level in enumerate((3, 2, 1, 0)):
            up = self.expand[i](s)
            skip = self.gates[i](skips[level], up) if cfg.iag else skips[level]
            s = self.blocks[i](self.reduce[i](torch.cat([up, skip], dim=1)))
        return self.head(self.final_expand(s)), grade_logits
