"""DICOM-out and PACS benchmark (run by hand):

1. time to build and write SEG (lesion + brain) + TID 1500 SR + Encapsulated PDF for a 155-slice case: the real
   TCGA-FG-6692 T1c in BraTS space (240x240x155) written as a DICOM MR series, its lesion label and brain;
2. a pull -> run -> push round trip against a local Orthanc (DICOMweb and DIMSE) on a TCGA-LGG case written as a
   DICOM study (T1c + FLAIR), next to the cascade's own time (the sum of its stages).

    MEDGRADE_SAMPLE_MIRROR=../shared/data nice -n 15 python bench/bench_dicom.py [--rounds 3] [--no-pacs]
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

import SimpleITK as sitk

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "Testing"))  # the Orthanc and DICOM-study helpers of the tests
DATA = Path(os.environ.get("MEDGRADE_SAMPLE_MIRROR", ROOT.parent / "shared" / "data"))


def one_page_pdf(path: Path) -> Path:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig = plt.figure(figsize=(8.27, 11.69))
    fig.text(0.1, 0.9, "MedGrade benchmark report", fontsize=20)
    fig.savefig(path)
    plt.close(fig)
    return path


def bench_writing(rounds: int, work: Path) -> None:
    from MedGradeCoreLib.dicom_out import Algorithm, write_dicom
    from MedGradeCoreLib.dicom_out.mr_series import write_mr_series
    from MedGradeCoreLib.dicom_out.references import load_source_series

    brats = DATA / "glioma-native" / "TCGA-FG-6692" / "brats-space"
    t1c = sitk.ReadImage(str(next(brats.glob("*t1c*_bet.nii.gz"))))
    write_mr_series(t1c, work / "series", "TCGA-FG-6692", "t1c_bet.nii.gz", series_description="t1c")
    start = time.perf_counter()
    source = load_source_series(work / "series", "t1c")
    load_s = time.perf_counter() - start
    lesion = sitk.Cast(sitk.ReadImage(str(brats / "seg_model_fusion.nii.gz")) > 0, sitk.sitkUInt8)
    brain = sitk.Cast(t1c > 0, sitk.sitkUInt8)
    pdf = one_page_pdf(work / "report.pdf")
    grades = [{"task": "grade-g2-g3", "positive_class": "G3", "predicted_level": "G3", "probability": 0.65,
               "fusion": "near", "model_id": "kinet-lgg-g2g3-t1c-flair-v1", "weights_sha256": "0" * 64}]
    times = []
    for i in range(rounds):
        start, cpu = time.perf_counter(), time.process_time()
        result = write_dicom(work / f"out{i}", source, lesion, Algorithm("mignet-lgg-flair-t1c-v1", "0" * 64), 20.5,
                             brain, grades, pdf)
        times.append((time.perf_counter() - start, time.process_time() - cpu))
    sizes = {k: round(p.stat().st_size / 1e6, 2) for k, p in result.files.items()}
    print(f"source series {source.grid.GetSize()} read in {load_s:.2f} s; objects MB {sizes}")
    print(f"SEG + SR + PDF for {source.grid.GetSize()[2]} slices: median {statistics.median(t for t, _ in times):.2f} s "
          f"wall, {statistics.median(c for _, c in times):.2f} s CPU over {rounds} rounds "
          f"({', '.join(f'{t:.2f}' for t, _ in times)})")


def bench_round_trip(work: Path) -> None:
    from dicom_helpers import lgg_case, write_lgg_study
    from orthanc_server import PASSWORD, USER, start_orthanc
    from MedGradeCoreLib.pacs import load_settings
    from MedGradePredictLib.cascade import CascadeSettings
    from MedGradePredictLib.pacs_roundtrip import round_trip

    server, why = start_orthanc(work / "orthanc")
    if server is None:
        print(f"round trip not measured: {why}")
        return
    try:
        study = write_lgg_study(lgg_case(), work / "study")
        server.upload(sorted((work / "study").rglob("*.dcm")))
        pacs = load_settings(env={"MEDGRADE_PACS_URL": server.dicomweb, "MEDGRADE_PACS_USER": USER,
                                  "MEDGRADE_PACS_PASSWORD": PASSWORD, "MEDGRADE_PACS_HOST": "127.0.0.1",
                                  "MEDGRADE_PACS_PORT": str(server.dicom_port), "MEDGRADE_PACS_AET": "ORTHANC"})
        for via in ("dicomweb", "dimse"):
            start = time.perf_counter()
            trip = round_trip(study, work / f"run-{via}", pacs, via, CascadeSettings(device="cpu", scene=False))
            total = time.perf_counter() - start
            stages = {s.name: s.seconds for s in trip.result.stages}
            print(f"{via}: round trip {total:.1f} s = pull {trip.seconds['pull']:.1f} + cascade "
                  f"{trip.seconds['cascade']:.1f} (its stages {sum(stages.values()):.1f}: {stages}) + push "
                  f"{trip.seconds['push']:.2f} s; arrived {len(trip.pushed.arrived)} objects")
    finally:
        server.stop()


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--no-pacs", action="store_true", help="only the writing benchmark")
    args = ap.parse_args()
    print(f"load average {os.getloadavg()[0]:.1f} on {os.cpu_count()} CPUs")
    with tempfile.TemporaryDirectory(prefix="bench-dicom-") as tmp:
        bench_writing(args.rounds, Path(tmp))
        if not args.no_pacs:
            bench_round_trip(Path(tmp))
    print(f"load average {os.getloadavg()[0]:.1f} at the end")


if __name__ == "__main__":
    main()
