"""The FPG loss: per-pixel cross-entropy weighted by the Focus Prior Graph, optionally plus Dice."""

from __future__ import annotations

import torch
import torch.nn.functional as F
from monai.losses import DiceLoss
from torch import nn

from .fpg import fpg_weight_map


class FPGLoss(nn.Module):
    """``sum(W * CE) / sum(W)`` (+ ``dice_weight`` * MONAI Dice loss).

    ``weights`` is either the FPG weight map ``W`` (``(B, H, W)``) or ``None`` for plain CE —
    the ablation rows without FPG use the same class with ``weights=None``.
    """

    def __init__(self, dice_weight: float = 0.0):
        super().__init__()
        self.dice_weight = dice_weight
        self.dice = DiceLoss(to_onehot_y=True, softmax=True, include_background=False, smooth_nr=1e-5,
                             smooth_dr=1e-5)

    def forward(self, logits: torch.Tensor, target: torch.Tensor, weights: torch.Tensor | None = None
                ) -> torch.Tensor:
        """``logits`` (B, C, H, W), ``target`` (B, H, W) long or (B, 1, H, W), ``weights`` (B, H, W)."""
        if target.ndim == logits.ndim:
            target = target[:, 0]
        target = target.long()
        ce = F.cross_entropy(logits.float(), target, reduction="none")
        if weights is None:
            loss = ce.mean()
        else:
            w = weights.reshape(ce.shape).float()
            loss = (w * ce).sum() / w.sum().clamp_min(1e-8)
        if self.dice_weight:
            loss = loss + self.dice_weight * self.dice(logits.float(), target[:, None])
        return loss


def fpg_weights_from_prior(prior: torch.Tensor, s_neg: float, s_pos: float) -> torch.Tensor:
    """Torch version of :func:`fpg.fpg_weight_map` for priors already on the device."""
    return fpg_weight_map(prior, s_neg, s_pos)


def grade_loss(logits: torch.Tensor | None, grade: torch.Tensor) -> torch.Tensor | None:
    """Cross-entropy of the grade branch over samples with a known grade (``-1`` = unknown)."""
    if logits is None:
        return None
    known = grade >= 0
    if not bool(known.any()):
        return None
    return F.cross_entropy(logits[known].float(), grade[known].long())
