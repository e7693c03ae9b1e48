"""Compression levels of what the cascade writes (run by hand): seconds and bytes per zlib level.

    MEDGRADE_SAMPLE_MIRROR=../shared/data nice -n 15 python bench/bench_outputs.py [--folder CASCADE_CASE_DIR]
        [--repeat 3] [--slices N]

- images: the bundled case's four sequences (TCGA-FG-6692) and, with ``--folder`` (a ``medgrade run`` case
  folder), its float lesion probability map and Grad-CAM heat maps, written as ``.nii.gz`` (what
  ``outputs.write_image`` writes) and ``.nrrd`` (what the scene writes) at every level;
- PNG: the report's key-slice picture of the bundled case (``overview.render_overview``), saved by Pillow at
  every level.

Each time is the best of ``--repeat`` writes. Printed per level: seconds, MB, and against the library default
(ITK's, Pillow's 6); then the level chosen by the rule: the fastest level whose bytes are within 10 % of the
smallest. ``--slices N`` keeps N axial slices (a rehearsal on a tiny input). The load average is printed beside
the timings: compare levels within one run.
"""

from __future__ import annotations

import argparse
import io
import os
import tempfile
import time
from pathlib import Path

LEVELS = list(range(0, 10))
WITHIN = 0.10  # bytes within 10 % of the smallest


def load() -> str:
    return " ".join(f"{x:.2f}" for x in os.getloadavg())


def _best(fn, repeat: int) -> float:
    times = []
    for _ in range(repeat):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return min(times)


def images(folder: Path | None, slices: int | None) -> dict[str, object]:
    import SimpleITK as sitk

    from MedGradeCoreLib.sample_data import fetch_dataset

    files = fetch_dataset("tcga-fg-6692")
    out = {Path(p).name: sitk.ReadImage(str(p)) for p in files.values() if str(p).endswith((".nii.gz", ".nrrd"))}
    if folder is not None:
        extra = [folder / "segmentation" / "lesion_probability.nii.gz", *sorted(folder.glob("grading/*/heatmaps/*"))]
        out.update({f"{p.parent.name}/{p.name}": sitk.ReadImage(str(p)) for p in extra if p.is_file()})
    if slices:
        out = {k: v[:, :, v.GetSize()[2] // 2:v.GetSize()[2] // 2 + slices] for k, v in out.items()}
    return out


def image_table(imgs: dict[str, object], repeat: int, work: Path) -> dict[str, dict[int, tuple[float, int]]]:
    """{suffix: {level: (seconds, bytes)}} summed over the images."""
    import SimpleITK as sitk

    table: dict[str, dict[int, tuple[float, int]]] = {}
    for suffix in (".nii.gz", ".nrrd"):
        rows = {}
        for level in [-1] + LEVELS:
            secs, size = 0.0, 0
            for i, img in enumerate(imgs.values()):
                path = work / f"img{i}{suffix}"
                secs += _best(lambda: sitk.WriteImage(img, str(path), True, level), repeat)
                size += path.stat().st_size
            rows[level] = (secs, size)
        table[suffix] = rows
    return table


def png_table(imgs: dict[str, object], repeat: int, work: Path) -> dict[int, tuple[float, int]]:
    """{level: (seconds, bytes)} of the report's key-slice picture saved by Pillow."""
    from PIL import Image

    from MedGradeCoreLib.overview import render_overview

    volumes = {k: v for k, v in imgs.items() if "/" not in k}
    picture = Image.open(render_overview(volumes, work / "overview.png")).convert("RGBA")
    picture.load()
    rows = {}
    for level in LEVELS:
        buf = io.BytesIO()

        def save() -> None:
            buf.seek(0)
            buf.truncate()
            picture.save(buf, format="PNG", compress_level=level)

        rows[level] = (_best(save, repeat), buf.tell())
    return rows


def choose(rows: dict[int, tuple[float, int]]) -> int:
    """The fastest level whose bytes are within :data:`WITHIN` of the smallest; -1 (the default) when the writer
    ignores the level (every level the same bytes: ITK's NIfTI writer)."""
    if len({b for _, b in rows.values()}) == 1:
        return -1
    smallest = min(b for _, b in rows.values())
    ok = [lv for lv, (_, b) in rows.items() if lv >= 0 and b <= smallest * (1 + WITHIN)]
    return min(ok, key=lambda lv: rows[lv][0])


def _print(title: str, rows: dict[int, tuple[float, int]], default: int) -> int:
    base_s, base_b = rows[default]
    print(f"\n{title}\n| level | seconds | MB | time vs default | size vs default |\n|---|---|---|---|---|")
    for lv, (s, b) in rows.items():
        print(f"| {'default' if lv == -1 else lv} | {s:.3f} | {b / 1e6:.2f} | {s / max(base_s, 1e-9):.2f}x | "
              f"{b / max(base_b, 1):.2f}x |")
    level = choose(rows)
    print(f"chosen: level {level} ({rows[level][0]:.3f} s, {rows[level][1] / 1e6:.2f} MB)" if level >= 0 else
          "chosen: the default (every level wrote the same bytes: the writer ignores the level)")
    return level


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--folder", type=Path, help="a `medgrade run` case folder (adds its probability and heat maps)")
    ap.add_argument("--repeat", type=int, default=3)
    ap.add_argument("--slices", type=int, help="keep N axial slices of every image (a rehearsal)")
    args = ap.parse_args()
    imgs = images(args.folder, args.slices)
    print(f"images: {', '.join(f'{k} {v.GetSize()} {v.GetPixelIDTypeAsString()}' for k, v in imgs.items())}")
    with tempfile.TemporaryDirectory(prefix="bench-outputs-") as tmp:
        before = load()
        table = image_table(imgs, args.repeat, Path(tmp))
        pngs = png_table(imgs, args.repeat, Path(tmp))
        print(f"load {before} -> {load()}")
    chosen = {suffix: _print(f"{suffix} (all images together)", rows, -1) for suffix, rows in table.items()}
    chosen["png"] = _print("report PNG (key slices, Pillow)", {-1: pngs[6], **pngs}, 6)
    image = chosen[".nrrd"] if chosen[".nii.gz"] == -1 else chosen[".nii.gz"]
    print(f"\nIMAGE_COMPRESSION_LEVEL = {image}  (.nii.gz: {chosen['.nii.gz']}, .nrrd: {chosen['.nrrd']})"
          f"\nPNG_COMPRESSION_LEVEL = {chosen['png']}  (MedGradeCoreLib/outputs.py)")


if __name__ == "__main__":
    main()
