"""KiNet: two sequence side branches (the thesis's T1c-IN and T2-IN; the sequences are a setting) plus a
Merge-IN main branch of ResNeSt-like stages.

Widths (``w`` = side width at scale 1): side branches w, 2w, 4w, 8w over four scales.
The main branch joins the side maps by *concatenation* at the first three scales (the thesis chose
concatenation over element-wise sums):

- scale 1: ``f1 = [A_1, B_1, M_1]`` with ``M_1`` the Merge-IN stem (2w channels): side pair : main = 1:1
  (without Merge-IN, ``f1 = [A_1, B_1]``);
- scale 2: ``f2 = [A_2, M_2, B_2]`` with M_2 = main stage 2 of f1, 4w channels (1:2:1);
- scale 3: ``f3 = [A_3, M_3, B_3]`` with M_3 = main stage 3 of f2, 16w channels (1:4:1);
- scale 4: ``M_4`` = main stage 4 of f3.

Choice where the thesis is silent: at scale 1 the ratio 1:1 is read as (both side maps) : (Merge-IN
map), which keeps 1:2:1 and 1:4:1 at scales 2-3 with the same side widths.

A classifier (global average pooling + linear) sits on f1, f2, f3, M_4 and on the concatenated
pooled vectors (optionally with metadata such as age and sex); each side branch has its own, keyed by
its sequence name. The concatenated pooled vector is the multi-scale feature vector for the LightGBM
head. Convolutions and linear layers start from Kaiming (He) normal initialisation, as in the thesis.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field

import torch
from torch import nn
import torch.nn.functional as F

from .mix_inputs import merge_in
from .resnest import stage, stem


@dataclass
class NetOutput:
    """What every grading network returns (KiNet and the baselines)."""

    logits: torch.Tensor  # the network's decision, [B, classes]
    heads: dict[str, torch.Tensor] = field(default_factory=dict)  # named logits for the loss terms
    pairs: list[tuple[torch.Tensor, torch.Tensor]] = field(default_factory=list)  # Siamese pairs
    features: torch.Tensor | None = None  # multi-scale feature vector, [B, F]


@dataclass
class KiNetConfig:
    sequences: tuple[str, str] = ("t1c", "t2")
    in_channels: int = 2  # per sequence (2 for MIX)
    width: int = 8
    blocks: int = 1
    radix: int = 2
    merge_in: bool = True
    n_meta: int = 0  # metadata columns fed to the concatenated classifier (0 = no metadata)
    num_classes: int = 2

    def to_dict(self) -> dict:
        d = asdict(self)
        d["sequences"] = list(self.sequences)
        return d


def _side(cin: int, w: int, blocks: int, radix: int) -> nn.ModuleList:
    return nn.ModuleList([
        nn.Sequential(stem(cin, w), stage(w, w, blocks, 1, radix)),
        stage(w, 2 * w, blocks, 2, radix),
        stage(2 * w, 4 * w, blocks, 2, radix),
        stage(4 * w, 8 * w, blocks, 2, radix),
    ])


def kaiming_init(module: nn.Module) -> None:
    """Kaiming (He) normal weights for convolutions and linear layers, zero biases; BatchNorm 1/0."""
    for m in module.modules():
        if isinstance(m, (nn.Conv2d, nn.Linear)):
            nn.init.kaiming_normal_(m.weight, mode="fan_out" if isinstance(m, nn.Conv2d) else "fan_in",
                                    nonlinearity="relu")
            if m.bias is not None:
                nn.init.zeros_(m.bias)
        elif isinstance(m, nn.BatchNorm2d):
            nn.init.ones_(m.weight)
            nn.init.zeros_(m.bias)


def _gap(x: torch.Tensor) -> torch.Tensor:
    return F.adaptive_avg_pool2d(x, 1).flatten(1)


class KiNet(nn.Module):
    def __init__(self, cfg: KiNetConfig):
        super().__init__()
        self.cfg = cfg
        w, b, r, c = cfg.width, cfg.blocks, cfg.radix, cfg.in_channels
        if len(cfg.sequences) != 2 or cfg.sequences[0] == cfg.sequences[1]:
            raise ValueError(f"KiNet needs two distinct sequences, got {list(cfg.sequences)}")
        self.side_a = _side(c, w, b, r)  # sequences[0] (T1c in the thesis)
        self.side_b = _side(c, w, b, r)  # sequences[1] (T2 in the thesis; FLAIR for TCGA-LGG)
        self.merge = (nn.Sequential(stem(2 * c, 2 * w), stage(2 * w, 2 * w, b, 1, r)) if cfg.merge_in else None)
        f1 = 4 * w if cfg.merge_in else 2 * w
        self.main2 = stage(f1, 4 * w, b, 2, r)
        self.main3 = stage(8 * w, 16 * w, b, 2, r)
        self.main4 = stage(24 * w, 16 * w, b, 2, r)
        widths = {"s1": f1, "s2": 8 * w, "s3": 24 * w, "s4": 16 * w}
        self.fc = nn.ModuleDict({k: nn.Linear(v, cfg.num_classes) for k, v in widths.items()})
        self.fc["side_a"] = nn.Linear(8 * w, cfg.num_classes)
        self.fc["side_b"] = nn.Linear(8 * w, cfg.num_classes)
        self.feature_dim = sum(widths.values())
        self.fc["cat"] = nn.Linear(self.feature_dim + cfg.n_meta, cfg.num_classes)
        kaiming_init(self)

    def forward(self, inputs: dict[str, torch.Tensor], meta: torch.Tensor | None = None) -> NetOutput:
        sa, sb = self.cfg.sequences
        a, b = inputs[sa], inputs[sb]
        fa, fb = [], []
        for la, lb in zip(self.side_a, self.side_b):
            a, b = la(a), lb(b)
            fa.append(a)
            fb.append(b)
        f1 = torch.cat([fa[0], fb[0]], 1)
        if self.merge is not None:
            f1 = torch.cat([f1, self.merge(merge_in(inputs, self.cfg.sequences))], 1)
        f2 = torch.cat([fa[1], self.main2(f1), fb[1]], 1)
        f3 = torch.cat([fa[2], self.main3(f2), fb[2]], 1)
        m4 = self.main4(f3)
        pooled = {"s1": _gap(f1), "s2": _gap(f2), "s3": _gap(f3), "s4": _gap(m4)}
        heads = {k: self.fc[k](v) for k, v in pooled.items()}
        heads[sa] = self.fc["side_a"](_gap(fa[3]))
        heads[sb] = self.fc["side_b"](_gap(fb[3]))
        feats = torch.cat(list(pooled.values()), 1)
        cat_in = feats
        if self.cfg.n_meta:
            if meta is None:
                raise ValueError("this KiNet was built with metadata inputs; pass meta")
            cat_in = torch.cat([feats, meta.to(feats.dtype)], 1)
        heads["cat"] = self.fc["cat"](cat_in)
        pairs = [(_gap(x), _gap(y)) for x, y in zip(fa, fb)]
        return NetOutput(heads["cat"], heads, pairs, feats)
