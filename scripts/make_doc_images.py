#!/usr/bin/env python3
"""Pictures for docs/ from real runs on the sample data (nothing drawn by hand).

- ``input-native-case.png``: the native sample case as MedGrade reads it;
- ``lesion-outline.png``: the same patient in SRI24 space with its model label (necrotic + enhancing core);
- ``preprocessed-case.png``: ``medgrade preprocess`` on the native case, with the brain mask it made;
- ``segmentation-result.png``: ``medgrade segment`` on that preprocessed case with the first segmentation
  model of the library (the shipped demonstrator), when one is available.
The command lines are the ones the MedGradeSegment panel builds.
Run: MEDGRADE_SAMPLE_MIRROR=../shared/data python scripts/make_doc_images.py
"""

from __future__ import annotations

import subprocess
import sys
import tempfile
from pathlib import Path

import SimpleITK as sitk

from MedGradeCoreLib.io.loader import load_case
from MedGradeCoreLib.model_library import list_models
from MedGradeCoreLib.overview import render_overview
from MedGradeSegmentLib.preprocess.io import read_preprocessed
from MedGradeCoreLib.sample_data import fetch_dataset
from MedGradeSegmentLib.scene_outputs import read_segment_output, segment_output_dir

OUT = Path(__file__).resolve().parents[1] / "docs" / "images"


def _medgrade(*args: str) -> None:
    subprocess.run([sys.executable, "-m", "MedGradeCoreLib.cli", *args], check=True)


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


def pipeline(work: Path) -> list[Path]:
    """Preprocess the native sample case, then segment it; pictures of both results."""
    folder = next(iter(fetch_dataset("tcga-fg-6692").values())).parent
    _medgrade("preprocess", str(folder), "--output", str(work), "--reference", "t1c", "--spacing", "1",
              "--slices", "20", "--patient-id", "TCGA-FG-6692")
    case_dir = work / "TCGA-FG-6692"
    case, _ = read_preprocessed(case_dir)
    made = [render_overview(case.images, OUT / "preprocessed-case.png", masks={"brain mask": case.meta["brain_mask"]},
                            count=4, title="medgrade preprocess: skull-stripped, registered to T1c, 1 mm, z-scored")]
    models = [m.model_id for m in list_models(kind="segmentation") if not m.error]
    if not models:
        print("no segmentation model in the library: segmentation picture skipped")
        return made
    out = segment_output_dir(case_dir)
    _medgrade("segment", str(case_dir), "--model", models[0], "--output", str(out), "--device", "cpu")
    seg = read_segment_output(out)
    images = {s: case.images[s] for s in ("t1c", "t2") if s in case.images}
    made.append(render_overview(images, OUT / "segmentation-result.png", masks={"AI lesion mask": seg.mask},
                                count=4, title=f"medgrade segment with {models[0]}"))
    return made


def main() -> int:
    OUT.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory() as tmp:
        made = [native_case(), labelled_case(), *pipeline(Path(tmp))]
        for p in made:
            print(p)
    return 0


if __name__ == "__main__":
    sys.exit(main())
