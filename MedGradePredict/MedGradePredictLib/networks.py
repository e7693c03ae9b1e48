"""Build any grading network from its architecture dict (as stored in a model manifest)."""

from __future__ import annotations

from typing import Any

from torch import nn

from MedGradeCoreLib.errors import InputError

from .baselines import CentralNet, EarlyFusionResNet, LateFusionResNet
from .kinet import KiNet, KiNetConfig

ARCHITECTURES = ("kinet", "early", "late", "centralnet")


def build_network(arch: dict[str, Any]) -> nn.Module:
    """``arch``: ``{"name": kinet|early|late|centralnet, "sequences", "in_channels", "width", ...}``."""
    name = arch.get("name")
    seqs = tuple(arch.get("sequences", ("t1c", "t2")))
    cin, width = int(arch.get("in_channels", 2)), int(arch.get("width", 8))
    if name == "kinet":
        return KiNet(KiNetConfig(seqs, cin, width, int(arch.get("blocks", 1)), int(arch.get("radix", 2)),
                                 bool(arch.get("merge_in", True)), int(arch.get("n_meta", 0))))
    if name == "early":
        return EarlyFusionResNet(seqs, cin, width)
    if name == "late":
        return LateFusionResNet(seqs, cin, width)
    if name == "centralnet":
        return CentralNet(seqs, cin, width)
    raise InputError(None, f"unknown architecture {name!r}; choose one of {', '.join(ARCHITECTURES)}")
