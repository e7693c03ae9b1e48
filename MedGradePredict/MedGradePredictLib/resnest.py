"""ResNeSt-like split-attention residual blocks (Zhang et al., 2020), 2D, small widths allowed."""

from __future__ import annotations

import torch
from torch import nn
import torch.nn.functional as F


class SplitAttentionConv(nn.Module):
    """3x3 conv producing ``radix`` splits, fused by channel attention with a softmax over splits."""

    def __init__(self, cin: int, cout: int, stride: int = 1, radix: int = 2, reduction: int = 4):
        super().__init__()
        self.radix, self.cout = radix, cout
        self.conv = nn.Conv2d(cin * radix, cout * radix, 3, stride, 1, groups=radix, bias=False)
        self.bn = nn.BatchNorm2d(cout * radix)
        inter = max(cout * radix // reduction, 8)
        self.fc1 = nn.Conv2d(cout, inter, 1)
        self.bn1 = nn.BatchNorm2d(inter)
        self.fc2 = nn.Conv2d(inter, cout * radix, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = x.repeat(1, self.radix, 1, 1)  # each split sees the whole input (cardinality 1)
        x = F.relu(self.bn(self.conv(x)))
        b = x.shape[0]
        splits = x.view(b, self.radix, self.cout, *x.shape[2:])
        gap = F.adaptive_avg_pool2d(splits.sum(1), 1)
        att = self.fc2(F.relu(self.bn1(self.fc1(gap)))).view(b, self.radix, self.cout, 1, 1)
        att = torch.softmax(att, dim=1)
        return (splits * att).sum(1)


class ResNeStBlock(nn.Module):
    """1x1 -> split-attention 3x3 -> 1x1 with an average-pool shortcut when shape changes."""

    def __init__(self, cin: int, cout: int, stride: int = 1, radix: int = 2):
        super().__init__()
        self.conv1 = nn.Conv2d(cin, cout, 1, bias=False)
        self.bn1 = nn.BatchNorm2d(cout)
        self.splat = SplitAttentionConv(cout, cout, stride, radix)
        self.conv3 = nn.Conv2d(cout, cout, 1, bias=False)
        self.bn3 = nn.BatchNorm2d(cout)
        self.short: nn.Module = nn.Identity()
        if stride != 1 or cin != cout:
            pool = nn.AvgPool2d(stride, stride, ceil_mode=True) if stride > 1 else nn.Identity()
            self.short = nn.Sequential(pool, nn.Conv2d(cin, cout, 1, bias=False), nn.BatchNorm2d(cout))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = F.relu(self.bn1(self.conv1(x)))
        y = self.bn3(self.conv3(self.splat(y)))
        return F.relu(y + self.short(x))


def stage(cin: int, cout: int, blocks: int = 1, stride: int = 2, radix: int = 2) -> nn.Sequential:
    """One resolution stage: ``blocks`` blocks, the first one strided."""
    layers = [ResNeStBlock(cin, cout, stride, radix)]
    layers += [ResNeStBlock(cout, cout, 1, radix) for _ in range(blocks - 1)]
    return nn.Sequential(*layers)


def stem(cin: int, cout: int) -> nn.Sequential:
    """3x3 conv (stride 2) + 3x3 max-pool (stride 2) stem used by every branch (ResNet-style /4)."""
    return nn.Sequential(nn.Conv2d(cin, cout, 3, 2, 1, bias=False), nn.BatchNorm2d(cout), nn.ReLU(inplace=True),
                         nn.MaxPool2d(3, 2, 1))
