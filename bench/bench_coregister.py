"""Co-registration benchmark (run by hand): a code tree's preprocessing (e.g. today's, `git archive HEAD` into a
folder) against this tree's, on real cases, each in its own process, interleaved; then accuracy of the new
transforms against the old: mean surface distance (MONAI, symmetric, mm) of the reference brain mask mapped
into each sequence by the two transforms, and Dice (MONAI) of the lesion masks the shipped segmentation model
finds on the two preprocessed cases.

    mkdir -p /tmp/base && git archive HEAD | tar -x -C /tmp/base
    MEDGRADE_SAMPLE_MIRROR=../shared/data nice -n 10 python bench/bench_coregister.py --baseline /tmp/base \\
        ../shared/data/glioma-native/TCGA-FG-6692 ../shared/data/glioma-brats-space/BraTS-GLI-00001-000

The shared CPU's load average (``uptime``) is printed beside every timing: compare the ratio, not the seconds.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).resolve().parents[1]
LIBS = ("MedGradeCore", "MedGradeSegment", "MedGradePredict", "MedGradeTrain")


def load() -> str:
    return " ".join(f"{x:.2f}" for x in os.getloadavg())


def _worker(case: str, out: str, overrides: str) -> None:
    """In the child: preprocess ``case`` with this interpreter's MedGrade and write the case folder."""
    from MedGradeCoreLib.io import load_case
    from MedGradeSegmentLib.preprocess import PreprocessConfig, preprocess_case, write_preprocessed

    cfg = PreprocessConfig(**json.loads(overrides))
    raw = load_case(Path(case), None, None, None, None, cfg.reference)
    start = time.perf_counter()
    result = preprocess_case(raw, cfg)
    seconds = time.perf_counter() - start
    folder = write_preprocessed(result, out, name="preprocessed")
    (Path(out) / "timing.json").write_text(json.dumps({"seconds": seconds, "parts": result.quality.seconds,
                                                      "registration": result.quality.registration,
                                                      "folder": str(folder)}))


def run_tree(tree: Path, case: str, out: Path, overrides: dict) -> dict:
    env = dict(os.environ, PYTHONPATH=os.pathsep.join(str(tree / lib) for lib in LIBS))
    before = load()
    subprocess.run([sys.executable, __file__, "--worker", case, str(out), json.dumps(overrides)], env=env,
                   check=True, cwd=tree)
    info = json.loads((out / "timing.json").read_text())
    info["load_before"], info["load_after"] = before, load()
    return info


def compare(old: Path, new: Path) -> dict:
    """Per sequence: brain-mask MSD (mm) between the two transforms; lesion Dice of the two segmentations."""
    import numpy as np
    import SimpleITK as sitk
    import torch
    from monai.metrics import compute_average_surface_distance, compute_dice

    info_old = json.loads((old / "case.json").read_text())
    brain = sitk.ReadImage(str(old / info_old["brain_mask"])) if "brain_mask" in info_old else None
    out: dict = {"msd_mm": {}}
    for seq, rel in info_old.get("transforms", {}).items():
        t_old, t_new = sitk.ReadTransform(str(old / rel)), sitk.ReadTransform(str(new / rel))
        # brain points moved by each transform: the reference brain mask on a 1 mm grid in the sequence's frame
        a = sitk.Resample(brain, brain, t_old.GetInverse(), sitk.sitkNearestNeighbor, 0)
        b = sitk.Resample(brain, brain, t_new.GetInverse(), sitk.sitkNearestNeighbor, 0)
        ta, tb = (torch.from_numpy(sitk.GetArrayFromImage(x).astype(bool))[None, None] for x in (a, b))
        spacing = brain.GetSpacing()[::-1]
        out["msd_mm"][seq] = round(float(compute_average_surface_distance(ta, tb, symmetric=True,
                                                                           spacing=spacing)[0, 0]), 4)
    from MedGradePredictLib.cascade import DEFAULT_SEG_MODEL
    from MedGradePredictLib.cohort import load_grading_case
    from MedGradeSegmentLib.segmentation.model_bundle import load_segmentation_model
    from MedGradeSegmentLib.segmentation.segment_case import segment_case

    seg = load_segmentation_model(DEFAULT_SEG_MODEL, "cpu")
    masks = []
    for folder in (old, new):
        c = load_grading_case(folder, None, None, None)
        res = segment_case(c, seg, c.meta.get("search_mask", c.meta.get("brain_mask")), "cpu", True)
        masks.append(sitk.GetArrayFromImage(res.mask))
    ta, tb = (torch.from_numpy(m.astype(bool))[None, None] for m in masks)
    out["lesion_dice"] = round(float(compute_dice(ta, tb)[0, 0]), 4)
    out["lesion_voxels"] = [int(np.count_nonzero(m)) for m in masks]
    return out


def main() -> None:
    if len(sys.argv) > 1 and sys.argv[1] == "--worker":
        _worker(*sys.argv[2:5])
        return
    ap = argparse.ArgumentParser()
    ap.add_argument("cases", nargs="+")
    ap.add_argument("--baseline", required=True, help="a MedGrade source tree (today's code)")
    ap.add_argument("--rounds", type=int, default=1)
    ap.add_argument("--new", default="{}", help="JSON PreprocessConfig overrides of the new run")
    args = ap.parse_args()
    work = Path(tempfile.mkdtemp(prefix="bench-coreg-"))
    for case in args.cases:
        for r in range(args.rounds):
            runs = {}
            for name, tree, over in (("baseline", Path(args.baseline), {}), ("new", HERE, json.loads(args.new))):
                out = work / f"{Path(case).name}-{r}-{name}"
                out.mkdir()
                runs[name] = run_tree(tree, case, out, over)
                print(f"{Path(case).name} {name}: preprocess {runs[name]['seconds']:.1f} s, registration "
                      f"{runs[name]['parts'].get('registration', 0):.1f} s (load {runs[name]['load_before']} -> "
                      f"{runs[name]['load_after']}) {json.dumps(runs[name]['registration'])}", flush=True)
            b, n = runs["baseline"], runs["new"]
            ratio = b["parts"].get("registration", 0) / max(n["parts"].get("registration", 0), 1e-6)
            print(f"{Path(case).name}: registration {ratio:.2f}x, preprocess {b['seconds'] / n['seconds']:.2f}x "
                  "faster (same run, under load)")
            print(f"{Path(case).name} accuracy new vs baseline: "
                  f"{json.dumps(compare(Path(b['folder']), Path(n['folder'])))}", flush=True)


if __name__ == "__main__":
    main()
