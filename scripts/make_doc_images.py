#!/usr/bin/env python3
"""Pictures for docs/ from real runs on the sample data (nothing drawn by hand).

Always: the native sample case as read by MedGrade, and the BraTS-space case with its lesion label.
When the pipeline commands exist (``medgrade preprocess`` / ``segment``), also their outputs.
Run: MEDGRADE_SAMPLE_MIRROR=../shared/data python scripts/make_doc_images.py
"""

from __future__ import annotations

import subprocess
import sys
import tempfile
from pathlib import Path

import SimpleITK as sitk

from MedGradeSegmentLib.io.loader import load_case
from MedGradeSegmentLib.overview import render_overview
from MedGradeSegmentLib.sample_data import fetch_dataset
from MedGradeTrainLib.cli import build_parser

OUT = Path(__file__).resolve().parents[1] / "docs" / "images"


def _commands() -> set[str]:
    sub = next(a for a in build_parser()._actions if a.dest == "command")
    return set(sub.choices)


def native_case() -> Path:
    files = fetch_dataset("tcga-fg-6692")
    folder = next(iter(files.values())).parent
    case = load_case(folder, patient_id="TCGA-FG-6692")
    return render_overview(case.images, OUT / "input-native-case.png", count=4,
                           title="TCGA-FG-6692 as read (native T1/T1c/T2/FLAIR, skull on)")


def labelled_case() -> Path:
    files = {Path(k).name: v for k, v in fetch_dataset("tcga-fg-6692-brats-space").items()}
    images = {s: sitk.ReadImage(str(files[f"{s}_bet.nii.gz"])) for s in ("t1c", "t2")}
    label = sitk.ReadImage(str(files["seg_model_fusion.nii.gz"]))
    core = sitk.Cast((label == 1) | (label == 3) | (label == 4), sitk.sitkUInt8)  # necrotic + enhancing core
    return render_overview(images, OUT / "lesion-outline.png", masks={"lesion (core)": core}, count=4,
                           title="TCGA-FG-6692 in SRI24 space, lesion core outlined")


def pipeline(commands: set[str]) -> list[Path]:
    made = []
    if "preprocess" not in commands:
        print("medgrade preprocess is not available yet: preprocessing pictures skipped")
        return made
    folder = next(iter(fetch_dataset("tcga-fg-6692").values())).parent
    with tempfile.TemporaryDirectory() as tmp:
        subprocess.run([sys.executable, "-m", "MedGradeTrainLib.cli", "preprocess", str(folder), "--output", tmp,
                        "--patient-id", "TCGA-FG-6692", "--overview"], check=True)
        pngs = sorted(Path(tmp).rglob("*.png"))
        for png in pngs:
            target = OUT / f"preprocess-{png.name}"
            target.write_bytes(png.read_bytes())
            made.append(target)
    return made


def main() -> int:
    OUT.mkdir(parents=True, exist_ok=True)
    made = [native_case(), labelled_case(), *pipeline(_commands())]
    for p in made:
        print(p)
    return 0


if __name__ == "__main__":
    sys.exit(main())
