"""The BMS loss of KiNet (weighted multi-scale cross-entropy + Siamese similarity) and the baselines' loss.

``L = w_t1c L_T1c + w_master L_master + w_t2 L_T2``, ``L_master = sum_i beta_i L_si + beta_5 L_cat``;
``L_siamese = sum over scales of 1/(2N) sum_n ||A_n - B_n||^2`` between the two sequence branches'
pooled features; BMS total = ``w_total L + w_siamese L_siamese``. With ``bms`` off KiNet is trained on
the cross-entropy of its final (concatenated) classifier alone.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass

import torch
import torch.nn.functional as F

from .kinet import NetOutput


@dataclass
class LossConfig:
    bms: bool = True
    w_t1c: float = 0.35
    w_master: float = 0.4
    w_t2: float = 0.25
    betas: tuple[float, float, float, float, float] = (0.025, 0.025, 0.2, 0.35, 0.4)
    w_total: float = 1.0
    w_siamese: float = 1.0

    def to_dict(self) -> dict:
        d = asdict(self)
        d["betas"] = list(self.betas)
        return d


def siamese_similarity(pairs: list[tuple[torch.Tensor, torch.Tensor]]) -> torch.Tensor:
    """``sum_scales 1/(2N) sum_n ||A_n - B_n||^2``."""
    total = pairs[0][0].new_zeros(())
    for a, b in pairs:
        total = total + ((a - b) ** 2).sum() / (2 * a.shape[0])
    return total


def bms_terms(out: NetOutput, target: torch.Tensor, cfg: LossConfig) -> dict[str, torch.Tensor]:
    """Every term of the BMS loss (tensors), including ``total``."""
    ce = {k: F.cross_entropy(v.float(), target) for k, v in out.heads.items()}
    master = sum(b * ce[k] for b, k in zip(cfg.betas, ("s1", "s2", "s3", "s4", "cat")))
    main = cfg.w_t1c * ce["t1c"] + cfg.w_master * master + cfg.w_t2 * ce["t2"]
    sia = siamese_similarity([(a.float(), b.float()) for a, b in out.pairs])
    terms = {f"L_{k}": v for k, v in ce.items()}
    terms.update(L_master=master, L=main, L_siamese=sia, total=cfg.w_total * main + cfg.w_siamese * sia)
    return terms


def grading_loss(out: NetOutput, target: torch.Tensor, cfg: LossConfig) -> dict[str, torch.Tensor]:
    """The training loss for any grading network; ``terms["total"]`` is what is minimised."""
    kinet = {"t1c", "t2", "s1", "s2", "s3", "s4", "cat"} <= set(out.heads)
    if kinet and cfg.bms:
        return bms_terms(out, target, cfg)
    main = F.cross_entropy(out.logits.float(), target)
    terms = {"L_decision": main}
    aux = [F.cross_entropy(v.float(), target) for k, v in out.heads.items() if not kinet and k != "decision"]
    total = main + (sum(aux) / len(aux) if aux else 0.0)
    terms["total"] = total
    return terms
