"""The eight rows of the thesis's ablation table: FPG loss x dual prior guidance x IAGs.

All three off is the Swin-UNet baseline. The grade branch follows dual guidance (the semantic
prior needs it), so the baseline row is a pure single-task Swin-UNet.
"""

from __future__ import annotations

import itertools
from typing import Any

from .mignet import MIGNetConfig


def _name(fpg: bool, dual: bool, iag: bool) -> str:
    if not (fpg or dual or iag):
        return "swin-unet"
    if fpg and dual and iag:
        return "mig-net"
    return "swin-unet+" + "+".join(n for n, on in (("fpg", fpg), ("dual", dual), ("iag", iag)) if on)


ABLATIONS: dict[str, dict[str, bool]] = {
    _name(f, d, i): {"fpg_loss": f, "dual_guidance": d, "iag": i, "grade_branch": d}
    for f, d, i in itertools.product((False, True), repeat=3)
}


def ablation_names() -> list[str]:
    return list(ABLATIONS)


def ablation_config(name: str, **overrides: Any) -> MIGNetConfig:
    """The MIG-Net config of one ablation row (``overrides`` set width, depths, ...)."""
    try:
        switches = ABLATIONS[name]
    except KeyError:
        raise ValueError(f"unknown ablation {name!r}; known: {', '.join(ABLATIONS)}") from None
    return MIGNetConfig(**{**switches, **overrides})
