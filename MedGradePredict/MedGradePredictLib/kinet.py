"""KiNet: T1c-IN and T2-IN side branches plus a Merge-IN main branch of ResNeSt-like stages.

Widths (``w`` = side width at scale 1): side branches w, 2w, 4w, 8w over four scales.
The main branch concatenates the side maps at the first three scales:

- scale 1: ``f1 = [T1c_1, T2_1]`` (1:1); with Merge-IN, the Merge-IN stem output (2w, same
  resolution) is added to it, so switching Merge-IN off removes only the merged-image path;
- scale 2: ``f2 = [T1c_2, M_2, T2_2]`` with M_2 = main stage 2 of f1, 4w channels (1:2:1);
- scale 3: ``f3 = [T1c_3, M_3, T2_3]`` with M_3 = main stage 3 of f2, 16w channels (1:4:1);
- scale 4: ``M_4`` = main stage 4 of f3.

A classifier (global average pooling + linear) sits on f1, f2, f3, M_4 and on the concatenated
pooled vectors (optionally with metadata such as age and sex); the side branches have their own.
The concatenated pooled vector is the multi-scale feature vector for the LightGBM head.
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


def _gap(x: torch.Tensor) -> torch.Tensor:
    return F.adaptive_avg_pool2d(x, 1).flatten(1)


class KiNet(nn.Module):
    def __init__(self, cfg: KiNetConfig):
        super().__init__()
        self.cfg = cfg
        w, b, r, c = cfg.width, cfg.blocks, cfg.radix, cfg.in_channels
        self.t1c = _side(c, w, b, r)
        self.t2 = _side(c, w, b, r)
        self.merge = (nn.Sequential(stem(2 * c, 2 * w), stage(2 * w, 2 * w, b, 1, r)) if cfg.merge_in else None)
        self.main2 = stage(2 * w, 4 * w, b, 2, r)
        self.main3 = stage(8 * w, 16 * w, b, 2, r)
        self.main4 = stage(24 * w, 16 * w, b, 2, r)
        widths = {"s1": 2 * w, "s2": 8 * w, "s3": 24 * w, "s4": 16 * w}
        self.fc = nn.ModuleDict({k: nn.Linear(v, cfg.num_classes) for k, v in widths.items()})
        self.fc["t1c"] = nn.Linear(8 * w, cfg.num_classes)
        self.fc["t2"] = nn.Linear(8 * w, cfg.num_classes)
        self.feature_dim = sum(widths.values())
        self.fc["cat"] = nn.Linear(self.feature_dim + cfg.n_meta, cfg.num_classes)

    def forward(self, inputs: dict[str, torch.Tensor], meta: torch.Tensor | None = None) -> NetOutput:
        sa, sb = self.cfg.sequences
        a, b = inputs[sa], inputs[sb]
        fa, fb = [], []
        for la, lb in zip(self.t1c, self.t2):
            a, b = la(a), lb(b)
            fa.append(a)
            fb.append(b)
        f1 = torch.cat([fa[0], fb[0]], 1)
        if self.merge is not None:
            f1 = f1 + self.merge(merge_in(inputs, self.cfg.sequences))
        f2 = torch.cat([fa[1], self.main2(f1), fb[1]], 1)
        f3 = torch.cat([fa[2], self.main3(f2), fb[2]], 1)
        m4 = self.main4(f3)
        pooled = {"s1": _gap(f1), "s2": _gap(f2), "s3": _gap(f3), "s4": _gap(m4)}
        heads = {k: self.fc[k](v) for k, v in pooled.items()}
        heads["t1c"] = self.fc["t1c"](_gap(fa[3]))
        heads["t2"] = self.fc["t2"](_gap(fb[3]))
        feats = torch.cat(list(pooled.values()), 1)
        cat_in = feats
        if self.cfg.n_meta:
            if meta is None:
                raise ValueError("this KiNet was built with metadata inputs; pass meta")
            cat_in = torch.cat([feats, meta.to(feats.dtype)], 1)
        heads["cat"] = self.fc["cat"](cat_in)
        pairs = [(_gap(x), _gap(y)) for x, y in zip(fa, fb)]
        return NetOutput(heads["cat"], heads, pairs, feats)
