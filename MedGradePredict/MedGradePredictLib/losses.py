"""The BMS loss of KiNet (weighted multi-scale cross-entropy + Siamese similarity) and the baselines' loss.

``L = w_a L_A + w_master L_master + w_b L_B`` (A, B = the two sequence branches, T1c and T2 in the thesis
with 0.35 and 0.25), ``L_master = sum_i beta_i L_si + beta_5 L_cat``;
``L_siamese = sum_i beta_i 1/(2N) sum_n ||A_n,i - B_n,i||^2`` over the scales i = 1..4 between the two
sequence branches' pooled features (eq. 4-5: each scale weighted by its beta_i, like the master loss);
BMS total = ``w_total L + w_siamese L_siamese``. With ``bms`` off KiNet is trained on the cross-entropy of
its final (concatenated) classifier alone.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass

import torch
import torch.nn.functional as F

from .kinet import NetOutput


@dataclass
class LossConfig:
    bms: bool = True
    w_a: float = 0.35  # first sequence's branch (T1c in the thesis)
    w_master: float = 0.4
    w_b: float = 0.25  # second sequence's branch (T2 in the thesis)
    betas: tuple[float, float, float, float, float] = (0.025, 0.025, 0.2, 0.35, 0.4)
    w_total: float = 1.0
    w_siamese: float = 1.0

    def to_dict(self) -> dict:
        d = asdict(self)
        d["betas"] = list(self.betas)
        return d


def siamese_similarity(pairs: list[tuple[torch.Tensor, torch.Tensor]],
                       weights: list[float] | tuple[float, ...] | None = None) -> torch.Tensor:
    """``sum_i w_i 1/(2N) sum_n ||A_n,i - B_n,i||^2`` (``weights`` default 1 per scale)."""
    weights = [1.0] * len(pairs) if weights is None else list(weights)
    if len(weights) < len(pairs):
        raise ValueError(f"{len(pairs)} Siamese scales but {len(weights)} weights")
    total = pairs[0][0].new_zeros(())
    for w, (a, b) in zip(weights, pairs):
        total = total + w * ((a - b) ** 2).sum() / (2 * a.shape[0])
    return total


MASTER_HEADS = ("s1", "s2", "s3", "s4", "cat")


def side_heads(out: NetOutput) -> list[str]:
    """KiNet's two side-branch heads (named after their sequences), in branch order."""
    return [k for k in out.heads if k not in MASTER_HEADS]


def bms_terms(out: NetOutput, target: torch.Tensor, cfg: LossConfig) -> dict[str, torch.Tensor]:
    """Every term of the BMS loss (tensors), including ``total``."""
    ce = {k: F.cross_entropy(v.float(), target) for k, v in out.heads.items()}
    master = sum(b * ce[k] for b, k in zip(cfg.betas, MASTER_HEADS))
    side_a, side_b = side_heads(out)
    main = cfg.w_a * ce[side_a] + cfg.w_master * master + cfg.w_b * ce[side_b]
    sia = siamese_similarity([(a.float(), b.float()) for a, b in out.pairs], cfg.betas[:len(out.pairs)])
    terms = {f"L_{k}": v for k, v in ce.items()}
    terms.update(L_master=master, L=main, L_siamese=sia, total=cfg.w_total * main + cfg.w_siamese * sia)
    return terms


def grading_loss(out: NetOutput, target: torch.Tensor, cfg: LossConfig) -> dict[str, torch.Tensor]:
    """The training loss for any grading network; ``terms["total"]`` is what is minimised."""
    kinet = set(MASTER_HEADS) <= set(out.heads) and len(side_heads(out)) == 2
    if kinet and cfg.bms:
        return bms_terms(out, target, cfg)
    main = F.cross_entropy(out.logits.float(), target)
    terms = {"L_decision": main}
    aux = [F.cross_entropy(v.float(), target) for k, v in out.heads.items() if not kinet and k != "decision"]
    total = main + (sum(aux) / len(aux) if aux else 0.0)
    terms["total"] = total
    return terms
