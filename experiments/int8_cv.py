"""INT8 on the cross-validation patients (issue 20): each fold's KiNet grading model of ``grade_cv.py``
(``--work``'s fold bundles) exported to ONNX FP32, dynamic INT8 and static INT8 (calibrated on up to 16 of
that fold's *training* patients), each variant predicting the fold's held-out test patients; pooled patient AUC (Near
fusion) per variant, the paired DeLong difference INT8 - torch, and the largest per-patient change of the
probability.

    python experiments/int8_cv.py --pre /tmp/lgg-pre --work /tmp/grade-cv --out experiments/results/grade_cv/int8.json
"""

from __future__ import annotations

import argparse
import json
import shutil
import time
from pathlib import Path

import numpy as np
import torch

from MedGradeCoreLib.onnx_models import export_bundle
from MedGradePredictLib.evaluate import binary_metrics, delong_test
from MedGradePredictLib.model_bundle import load_grading_bundle
from MedGradePredictLib.train import predict_cases

import grade_cv
from lgg_common import hardware, load_pre, save_json

VARIANTS = ("torch", "onnx-fp32", "onnx-int8-dynamic", "onnx-int8-static")


def calibration_folder(pre: str, patients: list[str], dest: Path) -> Path:
    dest.mkdir(parents=True, exist_ok=True)
    for pid in sorted(patients)[:16]:
        (dest / pid).symlink_to(Path(pre).resolve() / pid, target_is_directory=True)
    return dest


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--pre", required=True)
    ap.add_argument("--work", required=True, help="grade_cv.py's --work folder")
    ap.add_argument("--out", required=True)
    ap.add_argument("--threads", type=int, default=2)
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    runs = Path(args.work) / "runs" / "kinet"
    split = json.loads((Path(args.out).parent / "kinet-folds.json").read_text())
    scratch = Path(args.work) / "int8"
    shutil.rmtree(scratch, ignore_errors=True)
    s = json.loads((Path(args.out).parent / "kinet.json").read_text())["settings"]  # the CV's own input grid
    cv = argparse.Namespace(k=s["k"], size=s["size"], spacing=s["spacing"], width=s["width"])
    cases = {c.patient_id: c for c in grade_cv.cohort_cases(load_pre(args.pre), cv)}
    rows: list[dict] = []
    t0 = time.perf_counter()
    for sp in split["splits"]:
        src = runs / "splits" / sp["name"] / "bundle"
        calib = calibration_folder(args.pre, sp["train"], scratch / sp["name"] / "calibration")
        folders = {"torch": src,
                   "onnx-fp32": export_bundle(src, out=scratch / sp["name"] / "fp32"),
                   "onnx-int8-dynamic": export_bundle(src, int8="dynamic", out=scratch / sp["name"] / "int8d"),
                   "onnx-int8-static": export_bundle(src, int8="static", out=scratch / sp["name"] / "int8",
                                                     calibration=calib)}
        test = [cases[p] for p in sp["test"]]
        preds = {v: predict_cases(load_grading_bundle(f, "cpu"), test, sp["name"]) for v, f in folders.items()}
        for i, c in enumerate(test):
            rows.append({"patient_id": c.patient_id, "fold": sp["name"], "label": c.label,
                         **{v: preds[v][i]["probability_near"] for v in VARIANTS}})
        print(sp["name"], "done", flush=True)
    y = [r["label"] for r in rows]
    out = {"rows": rows, "n": len(rows), "seconds": time.perf_counter() - t0, "hardware": hardware(),
           "metrics": {v: binary_metrics(y, [r[v] for r in rows], n_boot=2000) for v in VARIANTS},
           "int8_minus_torch": delong_test(y, [r["onnx-int8-static"] for r in rows], [r["torch"] for r in rows]),
           "int8_dynamic_minus_torch": delong_test(y, [r["onnx-int8-dynamic"] for r in rows],
                                                   [r["torch"] for r in rows]),
           "fp32_minus_torch": delong_test(y, [r["onnx-fp32"] for r in rows], [r["torch"] for r in rows]),
           "max_abs_probability_change": {v: float(max(abs(r[v] - r["torch"]) for r in rows)) for v in VARIANTS[1:]},
           "decisions_changed_at_0.5": {v: int(sum((r[v] >= 0.5) != (r["torch"] >= 0.5) for r in rows))
                                        for v in VARIANTS[1:]}}
    save_json(args.out, out)
    print({v: round(m["auc"], 4) for v, m in out["metrics"].items()}, out["max_abs_probability_change"], flush=True)


if __name__ == "__main__":
    main()
