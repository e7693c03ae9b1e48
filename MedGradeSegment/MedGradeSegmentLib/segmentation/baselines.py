"""Baselines through the same training code (MONAI U-Net 2D, MONAI SwinUNETR 2D), and
:func:`build_model`, which builds any segmentation model from a manifest's ``architecture``."""

from __future__ import annotations

from typing import Any

import torch
from monai.networks.nets import SwinUNETR, UNet
from torch import nn

from .mignet import MIGNet, MIGNetConfig


class SegOnly(nn.Module):
    """Wraps a plain segmentation network so it returns ``(logits, None)`` like MIG-Net."""

    def __init__(self, net: nn.Module, divisor: int):
        super().__init__()
        self.net = net
        self.divisor = divisor

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, None]:
        return self.net(x), None


def unet2d(width: int = 16, in_channels: int = 1, num_classes: int = 2) -> SegOnly:
    """MONAI residual U-Net, 5 levels (``width`` .. ``16*width`` channels)."""
    net = UNet(spatial_dims=2, in_channels=in_channels, out_channels=num_classes,
               channels=tuple(width * 2 ** i for i in range(5)), strides=(2, 2, 2, 2), num_res_units=2)
    return SegOnly(net, 16)


def swinunetr2d(width: int = 24, in_channels: int = 1, num_classes: int = 2) -> SegOnly:
    """MONAI SwinUNETR with ``spatial_dims=2`` (the benchmark's reference)."""
    net = SwinUNETR(in_channels=in_channels, out_channels=num_classes, feature_size=width, spatial_dims=2)
    return SegOnly(net, 32)


def build_model(architecture: dict[str, Any], prior: torch.Tensor | None = None) -> nn.Module:
    """A model from ``{"name": "MIGNet" | "UNet" | "SwinUNETR", ...}``."""
    name = architecture.get("name", "MIGNet")
    if name == "MIGNet":
        return MIGNet(MIGNetConfig.from_dict(architecture), prior)
    if name == "UNet":
        return unet2d(architecture.get("width", 16), architecture.get("in_channels", 1),
                      architecture.get("num_classes", 2))
    if name == "SwinUNETR":
        return swinunetr2d(architecture.get("width", 24), architecture.get("in_channels", 1),
                           architecture.get("num_classes", 2))
    raise ValueError(f"unknown segmentation architecture {name!r} (MIGNet, UNet, SwinUNETR)")


def input_divisor(model: nn.Module) -> int:
    """Input sizes must be multiples of this."""
    if isinstance(model, MIGNet):
        return model.config.divisor
    return getattr(model, "divisor", 32)
