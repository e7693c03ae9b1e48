"""Overview pictures of a case: axial slices of each sequence with mask outlines and an optional heat map.

Used by the demo, the documentation and ``medgrade preprocess --overview``. Matplotlib, Agg backend.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import SimpleITK as sitk

MASK_COLOURS = ("#ffd400", "#ff3b30", "#34c759", "#0a84ff")


def _axial(img: sitk.Image, z: int) -> np.ndarray:
    return sitk.GetArrayViewFromImage(img)[z]


def pick_slices(reference: sitk.Image, mask: sitk.Image | None, count: int) -> list[int]:
    """``count`` axial indices spread over the mask's extent (or the non-zero extent of the image)."""
    arr = sitk.GetArrayViewFromImage(mask if mask is not None else reference)
    zs = np.flatnonzero(arr.reshape(arr.shape[0], -1).any(axis=1))
    if zs.size == 0:
        zs = np.arange(arr.shape[0])
    return sorted({int(round(z)) for z in np.linspace(zs[0], zs[-1], count + 2)[1:-1]} or {int(zs[0])})


def render_overview(images: dict[str, sitk.Image], out_png: str | Path, masks: dict[str, sitk.Image] | None = None,
                    heatmap: sitk.Image | None = None, slices: list[int] | None = None, count: int = 4,
                    title: str = "") -> Path:
    """Grid of rows = sequences (+ heat map row), columns = axial slices. All images on one grid."""
    import matplotlib

    matplotlib.use("Agg")
    matplotlib.rcParams["text.parse_math"] = False  # names and titles are text, never mathtext ("$")
    import matplotlib.pyplot as plt

    masks = masks or {}
    ref = next(iter(images.values()))
    if slices is None:
        first_mask = next(iter(masks.values()), None)
        slices = pick_slices(ref, first_mask, count)
    rows = list(images.items()) + ([("heat map", images[next(iter(images))])] if heatmap is not None else [])
    sx, sy = ref.GetSpacing()[:2]
    fig, axes = plt.subplots(len(rows), len(slices), figsize=(2.4 * len(slices), 2.4 * len(rows)), squeeze=False)
    for r, (name, img) in enumerate(rows):
        for c, z in enumerate(slices):
            ax = axes[r][c]
            a = _axial(img, z)
            fg = a[a != a[0, 0]]  # window on the foreground, not the constant background
            lo, hi = np.percentile(fg if fg.size > 100 else a, [1, 99.5]) if a.any() else (0, 1)
            ax.imshow(a, cmap="gray", vmin=lo, vmax=hi if hi > lo else lo + 1, aspect=sy / sx)
            if name == "heat map" and heatmap is not None:
                h = _axial(heatmap, z)
                ax.imshow(np.ma.masked_less_equal(h, 0.05), cmap="jet", alpha=0.5, vmin=0, vmax=1, aspect=sy / sx)
            else:
                for i, (mname, m) in enumerate(masks.items()):
                    ma = _axial(m, z)
                    if ma.any():
                        ax.contour(ma > 0, levels=[0.5], colors=MASK_COLOURS[i % len(MASK_COLOURS)], linewidths=1)
            ax.set_xticks([]), ax.set_yticks([])
            if c == 0:
                ax.set_ylabel(name)
            if r == 0:
                ax.set_title(f"z={z}", fontsize=8)
    if masks:
        handles = [plt.Line2D([], [], color=MASK_COLOURS[i % len(MASK_COLOURS)], label=n) for i, n in enumerate(masks)]
        fig.legend(handles=handles, loc="lower center", ncol=len(handles), fontsize=8)
    if title:
        fig.suptitle(title, fontsize=10)
    fig.tight_layout(rect=(0, 0.04 if masks else 0, 1, 0.97 if title else 1))
    out_png = Path(out_png)
    out_png.parent.mkdir(parents=True, exist_ok=True)
    from MedGradeCoreLib.outputs import PNG_COMPRESSION_LEVEL

    fig.savefig(out_png, dpi=110, pil_kwargs={"compress_level": PNG_COMPRESSION_LEVEL})
    plt.close(fig)
    return out_png
