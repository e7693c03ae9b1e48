"""Masks for masked-autoencoder pre-training.

*Uniform noise masking* (UNM, as in UMAE / UM-MAE's uniform + secondary masking):

1. regular step: the patch grid is cut into 2x2 cells and exactly ``4 * w`` patches of every cell are
   masked (``w`` a multiple of 0.25; default 0.75, i.e. one visible patch per cell). The visible patches
   then form a regular grid of ``(H/2, W/2 * n_vis)`` tokens, which the cross-convolution projection
   convolves over;
2. noise step: exactly ``round(s * n_visible)`` of those visible patches (default ``s`` = 0.25), chosen at
   random, are masked too (the encoder sees a mask token there and they are reconstructed).

Final masked fraction: ``w + s * (1 - w)`` (0.8125 for the defaults), exact up to the rounding of one
patch per sample. Plain MAE uses :func:`random_masking` (an exact ``round(ratio * N)`` per sample).
Randomness comes from ``generator`` (or torch's global generator, which the runner seeds).
"""

from __future__ import annotations

from dataclasses import dataclass

import torch


@dataclass
class Masking:
    """One batch of masks over a patch grid of ``N = H * W`` patches."""

    visible_idx: torch.Tensor  # [B, M] long: patch indices the encoder sees (cell-major for UNM)
    noise: torch.Tensor  # [B, M] bool: of those, the ones replaced by a mask token (UNM noise step)
    mask: torch.Tensor  # [B, N] bool: patches to reconstruct (True = masked; the loss runs here only)
    regular_mask: torch.Tensor  # [B, N] bool: masked by the regular step alone
    layout: tuple[int, int] | None  # (rows, cols) of the visible-token grid, None for random masking


def _check_ratio(name: str, value: float) -> None:
    if not 0.0 <= value < 1.0:
        raise ValueError(f"{name} must be in [0, 1), got {value}")


def cell_indices(grid: tuple[int, int]) -> torch.Tensor:
    """[G, 4] patch indices (row-major over ``grid``) of every 2x2 cell, cells in row-major order."""
    h, w = grid
    if h % 2 or w % 2:
        raise ValueError(f"uniform masking needs an even patch grid, got {h}x{w}")
    ci, cj = torch.meshgrid(torch.arange(h // 2), torch.arange(w // 2), indexing="ij")
    top = (2 * ci) * w + 2 * cj
    return torch.stack([top, top + 1, top + w, top + w + 1], -1).reshape(-1, 4)


def uniform_noise_masking(batch: int, grid: tuple[int, int], w: float = 0.75, s: float = 0.25,
                          generator: torch.Generator | None = None, device: torch.device | str = "cpu") -> Masking:
    """UNM over ``batch`` samples of a ``grid`` = (rows, cols) patch grid (see the module docstring)."""
    _check_ratio("w", w)
    _check_ratio("s", s)
    per_cell = 4 * w
    if abs(per_cell - round(per_cell)) > 1e-9 or round(per_cell) >= 4:
        raise ValueError(f"w must be 0, 0.25, 0.5 or 0.75 (a whole number of the 4 patches of a cell), got {w}")
    n_vis = 4 - int(round(per_cell))
    cells = cell_indices(grid)
    g, n = cells.shape[0], grid[0] * grid[1]
    order = torch.rand(batch, g, 4, generator=generator).argsort(-1)
    keep = order[..., :n_vis].sort(-1).values  # which of the 4 stay visible, in position order
    visible = cells.unsqueeze(0).expand(batch, -1, -1).gather(2, keep).reshape(batch, g * n_vis)
    regular = torch.ones(batch, n, dtype=torch.bool)
    regular.scatter_(1, visible, False)
    m = g * n_vis
    n_noise = int(round(s * m))
    rank = torch.rand(batch, m, generator=generator).argsort(-1).argsort(-1)
    noise = rank < n_noise
    mask = regular.clone()
    mask.scatter_(1, visible, noise)
    layout = (grid[0] // 2, (grid[1] // 2) * n_vis)
    return Masking(visible.to(device), noise.to(device), mask.to(device), regular.to(device), layout)


def random_masking(batch: int, n: int, ratio: float = 0.75, generator: torch.Generator | None = None,
                   device: torch.device | str = "cpu") -> Masking:
    """Plain MAE masking: exactly ``round(ratio * n)`` random patches of each sample masked."""
    _check_ratio("ratio", ratio)
    n_keep = n - int(round(ratio * n))
    if n_keep < 1:
        raise ValueError(f"masking ratio {ratio} leaves no visible patch of {n}")
    visible = torch.rand(batch, n, generator=generator).argsort(-1)[:, :n_keep].sort(-1).values
    mask = torch.ones(batch, n, dtype=torch.bool)
    mask.scatter_(1, visible, False)
    noise = torch.zeros(batch, n_keep, dtype=torch.bool)
    return Masking(visible.to(device), noise.to(device), mask.to(device), mask.clone().to(device), None)


def expected_fraction(w: float, s: float, grid: tuple[int, int]) -> float:
    """The exact final masked fraction UNM produces on ``grid`` (``w + s (1 - w)`` up to rounding)."""
    g = (grid[0] // 2) * (grid[1] // 2)
    n_vis = 4 - int(round(4 * w))
    return (g * (4 - n_vis) + int(round(s * g * n_vis))) / (4 * g)
