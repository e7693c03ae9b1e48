"""Print the experiment figures as Markdown tables from ``results/`` (what the README and the manifests quote).

    python experiments/report.py experiments/results
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

import numpy as np


def _f(d: dict | None, key: str, digits: int = 3) -> str:
    v = (d or {}).get(key) or {}
    if not v or v.get("mean") is None:
        return "n/a"
    return f"{v['mean']:.{digits}f} ± {v['sd']:.{digits}f}"


def seg(results: Path) -> None:
    """The segmentation CV table (seg_cv.py): per-patient 3D Dice with its bootstrap 95% CI, same folds."""
    print("| model | parameters | 3D Dice (mean ± SD) [95% CI] | median | per fold | slice DSC, all slices | "
          "max HD (mm) | HD95 (mm) | optimiser steps per fold | wall (min) | patients |")
    print("|---|---|---|---|---|---|---|---|---|---|---|")
    hw = None
    for m in ("mignet", "unet", "swin"):
        p = results / "seg_cv" / m / "summary.json"
        if not p.is_file():
            continue
        d = json.loads(p.read_text())
        hw = d.get("hardware", hw)
        pp = d.get("per_patient") or {}
        dice = pp.get("dice_3d") or {}
        ci = dice.get("ci95_bootstrap") or [float("nan")] * 2
        folds = " / ".join(f"{(f['per_patient_summary'] or {}).get('dice_3d', {}).get('mean', float('nan')):.2f}"
                           for f in d.get("folds", []))
        cum = [int(s.get("global_step") or 0) for s in d.get("splits", [])]  # the runner counts over folds
        steps = " / ".join(map(str, d.get("optimizer_steps_per_fold") or [b - a for a, b in zip([0] + cum, cum)]))
        print(f"| {m} | {d.get('parameters', 'n/a'):,} | {_f(pp, 'dice_3d')} [{ci[0]:.3f}, {ci[1]:.3f}] | "
              f"{dice.get('median', float('nan')):.3f} | {folds} | {_f(pp, 'slice_dsc_all')} | "
              f"{_f(pp, 'hd_max_mm', 1)} | {_f(pp, 'hd95_mm', 1)} | {steps} | "
              f"{d.get('wall_seconds', float('nan')) / 60:.0f} | {pp.get('n_patients')} |")
    if hw:
        print(f"\nHardware: {hw}.")
    paired(results)


def paired(results: Path) -> None:
    """MIG-Net minus U-Net per-patient 3D Dice on the test patients both were scored on (same folds): mean
    difference, bootstrap 95% CI (2,000 resamples of patients, seed 0), Wilcoxon signed-rank p."""
    import numpy as np
    from scipy.stats import wilcoxon

    d = {}
    for m in ("mignet", "unet"):
        p = results / "seg_cv" / m / "summary.json"
        if p.is_file():
            d[m] = {r["patient_id"]: r["dice_3d"] for r in json.loads(p.read_text())["patients"]}
    if len(d) < 2:
        return
    ids = sorted(set(d["mignet"]) & set(d["unet"]))
    diff = np.array([d["mignet"][i] - d["unet"][i] for i in ids])
    rng = np.random.default_rng(0)
    boot = diff[rng.integers(0, len(diff), (2000, len(diff)))].mean(1)
    print(f"\nMIG-Net - U-Net, per-patient 3D Dice on the same {len(ids)} test patients: {diff.mean():+.3f} "
          f"[95% CI {np.percentile(boot, 2.5):+.3f}, {np.percentile(boot, 97.5):+.3f}], Wilcoxon p = "
          f"{wilcoxon(diff).pvalue:.3g}")


def grade(results: Path) -> None:
    print("| method | input | fusion | patient AUC [95% CI bootstrap] | accuracy | kappa | Brier | slice AUC | "
          "inner-validation loss (mean of folds) |")
    print("|---|---|---|---|---|---|---|---|---|")
    heat = []
    for folder, m in (("grade_cv", "kinet"), ("grade_cv", "early"), ("grade_cv", "radiomics"),
                      ("grade_cv_1mm", "kinet"), ("grade_cv_1mm", "early")):
        p = results / folder / f"{m}.json"
        if not p.is_file():
            if folder == "grade_cv":
                print(f"| {m} | | not run | | | | | | |")
            continue
        d = json.loads(p.read_text())
        s = d.get("settings", {})
        grid = f"{s.get('size')} px at {s.get('spacing')} mm" if m != "radiomics" else "3D, native grid"
        val = [f["best_metric"] for f in d.get("folds", []) if f.get("best_metric") is not None]
        for fusion, r in d["fused"].items():
            pt = r["patient"]
            ci = pt.get("auc_ci95") or [float("nan")] * 2
            sl = r.get("slice", {}).get("auc")
            print(f"| {m} | {grid} | {fusion} | {pt['auc']:.3f} [{ci[0]:.3f}, {ci[1]:.3f}] | {pt['accuracy']:.3f} | "
                  f"{pt['kappa']:.3f} | {pt['brier']:.3f} | {'' if sl is None else f'{sl:.3f}'} | "
                  f"{f'{np.mean(val):.3f}' if val else ''} |")
        if d.get("heatmap"):
            heat.append((grid, d["heatmap"]))
    for grid, h in heat:
        print(f"\nGrad-CAM of each fold's KiNet on its own test patients ({grid}, n = {h['n']}): share of the hottest "
              f"10% of brain voxels within 10 mm of the lesion, median {h['median_share_near']:.2f}, mean "
              f"{h['mean_share_near']:.2f} (uniform map {h['mean_uniform_share']:.2f}); patients at >= 0.6: "
              f"{h['share_at_least_0.6']:.0%}")
    p = results / "grade_cv_1mm" / "int8.json"
    if p.is_file():
        d = json.loads(p.read_text())
        aucs = ", ".join(f"{v} {m['auc']:.3f}" for v, m in d["metrics"].items())
        print(f"\nONNX and INT8 on the CV patients (each fold's 1 mm KiNet model on its own test patients, n = {d['n']}): "
              f"AUC (Near) {aucs}")
        for v, key in (("onnx-int8-dynamic", "int8_dynamic_minus_torch"), ("onnx-int8-static", "int8_minus_torch")):
            t = d.get(key)
            if t and v in d["max_abs_probability_change"]:
                print(f"- {v}: AUC - torch {t['difference']:+.4f} (DeLong p = {t['p_value']:.3g}); largest probability "
                      f"change {d['max_abs_probability_change'][v]:.3f}; decisions changed at 0.5: "
                      f"{d['decisions_changed_at_0.5'][v]}")
        print(f"- onnx-fp32: largest probability change {d['max_abs_probability_change']['onnx-fp32']:.1e}, decisions "
              f"changed {d['decisions_changed_at_0.5']['onnx-fp32']}")


def compare(results: Path) -> dict:
    """DeLong's test (MedGradePredictLib.evaluate.delong_test) of KiNet (Near) against each baseline, same patients."""
    from MedGradePredictLib.evaluate import delong_test

    rows = {}
    for m, key in (("kinet", "p_near"), ("early", "p_near"), ("radiomics", "p_all")):
        p = results / "grade_cv" / f"{m}.json"
        if p.is_file():
            rows[m] = {r["patient_id"]: (r["label"], r[key]) for r in json.loads(p.read_text())["rows"]}
    for m in ("kinet", "early"):
        p = results / "grade_cv_1mm" / f"{m}.json"
        if p.is_file():
            rows[f"{m}_1mm"] = {r["patient_id"]: (r["label"], r["p_near"]) for r in json.loads(p.read_text())["rows"]}
    out = {}
    for kinet, name, others in (("kinet", "KiNet 128 px (Near)", ("early", "radiomics")),
                                ("kinet_1mm", "KiNet 1 mm (Near)", ("early_1mm", "early", "radiomics"))):
        if kinet not in rows:
            continue
        ids = sorted(rows[kinet])
        y = [rows[kinet][i][0] for i in ids]
        for other in others:
            if other in rows and set(rows[other]) == set(ids):
                t = delong_test(y, [rows[kinet][i][1] for i in ids], [rows[other][i][1] for i in ids])
                r = out[f"{kinet}_near_vs_{other}"] = {k: v for k, v in t.items() if not isinstance(v, (list, dict))}
                print(f"{name} vs {other}: AUC {r['auc_a']:.3f} vs {r['auc_b']:.3f}, difference {r['difference']:+.3f} "
                      f"(95% CI {float(t['ci95'][0]):+.3f} to {float(t['ci95'][1]):+.3f}), DeLong p = {r['p_value']:.3g}")
    return out


if __name__ == "__main__":
    root = Path(sys.argv[1] if len(sys.argv) > 1 else "experiments/results")
    seg(root)
    print()
    grade(root)
    print()
    compare(root)
