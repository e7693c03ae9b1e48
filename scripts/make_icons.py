#!/usr/bin/env python3
"""Draw MedGrade's icons (extension + one per module) as small PNGs with matplotlib."""

from __future__ import annotations

from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
from matplotlib.patches import Ellipse, Rectangle  # noqa: E402

REPO = Path(__file__).resolve().parents[1]
BLUE, RED, GREY = "#2a6fb0", "#d9482b", "#e8edf2"


def _canvas(size_px: int):
    fig = plt.figure(figsize=(1, 1), dpi=size_px)
    ax = fig.add_axes((0, 0, 1, 1))
    ax.set_xlim(0, 1)
    ax.set_ylim(0, 1)
    ax.axis("off")
    ax.add_patch(Rectangle((0.02, 0.02), 0.96, 0.96, facecolor=GREY, edgecolor=BLUE, linewidth=3))
    return fig, ax


def _brain(ax, cx=0.5, cy=0.55, scale=1.0):
    ax.add_patch(Ellipse((cx, cy), 0.62 * scale, 0.72 * scale, facecolor="#9aa7b4", edgecolor="#2b3440", lw=2))
    ax.add_patch(Ellipse((cx + 0.1 * scale, cy + 0.08 * scale), 0.2 * scale, 0.16 * scale, facecolor=RED, alpha=0.9))


def segment(ax):
    _brain(ax)
    t = np.linspace(0, 2 * np.pi, 100)
    ax.plot(0.6 + 0.14 * np.cos(t), 0.63 + 0.11 * np.sin(t), color="#ffd400", lw=3)


def predict(ax):
    _brain(ax, cx=0.36, cy=0.58, scale=0.8)
    for i, (h, c) in enumerate([(0.25, BLUE), (0.6, RED)]):
        ax.add_patch(Rectangle((0.66 + 0.14 * i, 0.12), 0.1, h, color=c))


def train(ax):
    _brain(ax, cx=0.36, cy=0.62, scale=0.7)
    x = np.linspace(0.1, 0.9, 50)
    ax.plot(x, 0.12 + 0.3 * np.exp(-4 * (x - 0.1)), color=BLUE, lw=3)


def extension(ax):
    _brain(ax, cy=0.58)
    ax.text(0.5, 0.1, "MG", ha="center", va="center", fontsize=22, fontweight="bold", color=BLUE)


def main() -> None:
    targets = {
        REPO / "Resources/Icons/MedGrade.png": (extension, 128),
        REPO / "MedGradeSegment/Resources/Icons/MedGradeSegment.png": (segment, 64),
        REPO / "MedGradePredict/Resources/Icons/MedGradePredict.png": (predict, 64),
        REPO / "MedGradeTrain/Resources/Icons/MedGradeTrain.png": (train, 64),
    }
    for path, (draw, size) in targets.items():
        fig, ax = _canvas(size)
        draw(ax)
        path.parent.mkdir(parents=True, exist_ok=True)
        fig.savefig(path, dpi=size)
        plt.close(fig)
        print(path.relative_to(REPO))


if __name__ == "__main__":
    main()
