"""Brain extraction benchmark (run by hand): every method on the shared real heads with skull -- seconds,
peak memory, Dice between methods and against TCGA-FG-6692's BraTS-space brain, tumour fraction kept.

    MEDGRADE_SAMPLE_MIRROR=../shared/data nice -n 15 python bench/bench_brain_extraction.py [--no-full-swiss]

The machine is shared: wall seconds follow the load; CPU seconds (``time.process_time``, OMP_NUM_THREADS=1)
are the steadier figure and the speed-up is computed from them. Each method runs in its own child process (``ru_maxrss`` is its own peak; deep models loaded once there, the
first case also timed as "cold"), cases in sequence; the parent compares the masks. Tumour labels: brain1's
expert label; TCGA-FG-6692's BraTS-space model label brought to the native T1c by an affine registration of
the BraTS-space T1c (Mattes MI) -- T1c only (the native sequences are not co-registered).
"""

from __future__ import annotations

import argparse
import json
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

FG = "glioma-native/TCGA-FG-6692/"
CASES = {"brain1": "brain-mr/brain1_image.nrrd", "FG-6692 t1c": FG + "t1c.nii.gz", "FG-6692 t1": FG + "t1.nii.gz",
         "FG-6692 t2": FG + "t2.nii.gz", "FG-6692 flair": FG + "flair.nii.gz", "MPRAGE sagittal": "dicom"}
METHODS = ["deepbet", "hd-bet", "swiss-fast", "swiss-full"]


def _image(name: str):
    import SimpleITK as sitk

    from MedGradeSegmentLib.preprocess.orient import orient, to_float
    from MedGradeCoreLib.sample_data import fetch_dataset, sample_path

    if CASES[name] == "dicom":
        from MedGradeCoreLib.io import load_case

        folder = next(iter(fetch_dataset("dicom-t1-mprage").values())).parent
        image = next(iter(load_case(folder).images.values()))
    else:
        image = sitk.ReadImage(str(sample_path(CASES[name])))
    return to_float(orient(image, "LPS"))


def child(method: str, names: list[str], out: Path) -> dict:
    import SimpleITK as sitk

    from MedGradeSegmentLib.preprocess.brain_extraction import deep_brain_mask, load_extractor
    from MedGradeSegmentLib.preprocess.skullstrip import skull_strip, swiss_atlas

    images = {n: _image(n) for n in names}
    start = time.perf_counter()
    if method.startswith("swiss"):
        swiss_atlas()
    else:
        load_extractor(method, "cpu")
    rows = {"load_seconds": time.perf_counter() - start, "cases": {}}
    for i, name in enumerate(names):
        runs = 2 if i == 0 and not method.startswith("swiss") else 1  # first deep call is cold (TorchScript)
        for r in range(runs):
            t, cpu = time.perf_counter(), time.process_time()
            if method.startswith("swiss"):
                mask = skull_strip(images[name], method.split("-")[1])
            else:
                mask, _ = deep_brain_mask(images[name], method, "cpu")
            seconds = time.perf_counter() - t
            rows.setdefault("cpu", {})[name] = time.process_time() - cpu
            if r == 0 and runs == 2:
                rows["cold_seconds"] = seconds
        sitk.WriteImage(mask, str(out / f"{method}__{name}.nii.gz"))
        rows["cases"][name] = seconds
    rows["peak_mb"] = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0
    return rows


def _tumours(work: Path) -> dict:
    import SimpleITK as sitk

    from MedGradeSegmentLib.preprocess import PreprocessConfig
    from MedGradeSegmentLib.preprocess.orient import orient, to_float
    from MedGradeSegmentLib.preprocess.pipeline import dilated
    from MedGradeSegmentLib.preprocess.registration import register
    from MedGradeCoreLib.sample_data import sample_path

    out = {"brain1": orient(sitk.ReadImage(str(sample_path("brain-mr/brain1_label.nrrd"))), "LPS") > 0}
    native = _image("FG-6692 t1c")
    ref = sitk.ReadImage(str(work / "hd-bet__FG-6692 t1c.nii.gz"))
    ref.CopyInformation(native)  # written as NIfTI: float32 geometry, same grid
    bet = to_float(orient(sitk.ReadImage(str(sample_path(FG + "brats-space/t1c_bet.nii.gz"))), "LPS"))
    seg = orient(sitk.ReadImage(str(sample_path(FG + "brats-space/seg_model_fusion.nii.gz"))), "LPS") > 0
    reg = register(sitk.Mask(native, ref), bet, PreprocessConfig(reg_init="moments", affine=True, reg_sampling=0.05),
                   dilated(ref, 5.0))
    out["FG-6692 t1c"] = sitk.Resample(seg, native, reg.transform, sitk.sitkNearestNeighbor, 0, sitk.sitkUInt8)
    brats_brain = sitk.Resample(sitk.Cast(bet > 0, sitk.sitkUInt8), native, reg.transform, sitk.sitkNearestNeighbor,
                                0, sitk.sitkUInt8)
    return out, brats_brain


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--child", nargs=2, metavar=("METHOD", "OUT"))
    ap.add_argument("--cases", nargs="+", default=list(CASES))
    ap.add_argument("--no-full-swiss", action="store_true")
    ap.add_argument("--full-swiss-cases", nargs="+", default=["brain1", "FG-6692 t1c"])
    ap.add_argument("--reuse", nargs=2, metavar=("WORKDIR", "LOG"),
                    help="only compare: masks of an earlier run in WORKDIR, its 'method: {json}' lines in LOG")
    args = ap.parse_args()
    if args.child:
        print(json.dumps(child(args.child[0], args.cases, Path(args.child[1]))))
        return

    import numpy as np
    import SimpleITK as sitk

    from MedGradeSegmentLib.preprocess.pipeline import dilated
    from MedGradeSegmentLib.preprocess.quality import volume_ml

    work = Path(args.reuse[0]) if args.reuse else Path(tempfile.mkdtemp(prefix="bench-bet-"))
    results = {}
    if args.reuse:
        for line in Path(args.reuse[1]).read_text().splitlines():
            method, sep, data = line.partition(": ")
            if sep and method in METHODS and data.startswith("{"):
                results[method] = json.loads(data)
    for method in [] if args.reuse else METHODS:
        if method == "swiss-full" and args.no_full_swiss:
            continue
        names = args.full_swiss_cases if method == "swiss-full" else args.cases
        cmd = [sys.executable, __file__, "--child", method, str(work), "--cases", *names]
        proc = subprocess.run(cmd, capture_output=True, text=True)
        if proc.returncode:
            print(f"{method} failed:\n{proc.stderr[-2000:]}", file=sys.stderr)
            continue
        results[method] = json.loads(proc.stdout.strip().splitlines()[-1])
        print(f"{method}: {json.dumps(results[method])}", file=sys.stderr, flush=True)
    tumours, brats_brain = _tumours(work)

    grids = {name: _image(name) for name in args.cases}

    def mask(method: str, name: str):
        path = work / f"{method}__{name}.nii.gz"
        if not path.is_file():
            return None
        m = sitk.ReadImage(str(path))
        m.CopyInformation(grids[name])  # NIfTI stores float32 geometry: back onto the exact input grid
        return m

    def dice(a, b) -> float:
        f = sitk.LabelOverlapMeasuresImageFilter()
        f.Execute(sitk.Cast(a, sitk.sitkUInt8), sitk.Cast(b, sitk.sitkUInt8))
        return f.GetDiceCoefficient()

    print("\n| method | case | wall s | CPU s | peak MB | brain ml | Dice vs hd-bet | Dice vs deepbet | Dice vs BraTS brain "
          "| tumour kept (surface / within 3 mm) |")
    print("|---|---|---|---|---|---|---|---|---|---|")
    for method, res in results.items():
        for name, secs in res["cases"].items():
            m = mask(method, name)
            cells = [method, name, f"{secs:.1f}", f"{res['cpu'][name]:.1f}", f"{res['peak_mb']:.0f}",
                     f"{volume_ml(m):.0f}"]
            for other in ("hd-bet", "deepbet"):
                o = mask(other, name)
                cells.append("—" if o is None or other == method else f"{dice(m, o):.3f}")
            cells.append(f"{dice(m, brats_brain):.3f}" if name == "FG-6692 t1c" else "—")
            if name in tumours:
                t = sitk.GetArrayFromImage(tumours[name]).astype(bool)
                a = sitk.GetArrayFromImage(m).astype(bool)
                near = sitk.GetArrayFromImage(dilated(m, 3.0)).astype(bool)
                cells.append(f"{a[t].mean():.3f} / {near[t].mean():.3f}")
            else:
                cells.append("—")
            print("| " + " | ".join(cells) + " |")
    print("\n| method | model load s | first (cold) call s | median wall s | median CPU s | speed-up vs full Swiss "
          "(CPU s, same cases) |")
    print("|---|---|---|---|---|---|")
    full = results.get("swiss-full", {}).get("cases", {})
    for method, res in results.items():
        same = [n for n in full if n in res["cases"]]
        full_cpu = results.get("swiss-full", {}).get("cpu", {})
        ratio = (np.median([full_cpu[n] for n in same]) / np.median([res["cpu"][n] for n in same])) if same else None
        print(f"| {method} | {res['load_seconds']:.1f} | {res.get('cold_seconds', float('nan')):.1f} | "
              f"{np.median(list(res['cases'].values())):.1f} | {np.median(list(res['cpu'].values())):.1f} | "
              f"{'—' if ratio is None else f'{ratio:.1f}x'} |")


if __name__ == "__main__":
    main()
