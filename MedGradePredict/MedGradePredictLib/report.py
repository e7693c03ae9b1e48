"""One-page patient report of a cascade run: ``report.html`` (self-contained, pictures embedded) and
``report.pdf`` (matplotlib, always available), written atomically. The pictures are rendered in a temporary
folder and live only inside the two (no ``report_files/`` left beside them: nobody opens it).

Pictures first: the key slices with the brain and lesion outlines, and each task's heat map on the slices it
graded; then each task's answer with its probability, the model's validated figures and the reader's findings
beside it; volumes; warnings; provenance (model ids, sha256, brain extractor, versions).
"""

from __future__ import annotations

import base64
import html
import json
import os
import platform
from pathlib import Path
from typing import Any

import numpy as np
import SimpleITK as sitk

from MedGradeCoreLib import __version__
from MedGradeCoreLib.overview import render_overview
from MedGradeSegmentLib.preprocess.quality import volume_ml

NOT_FOR_DIAGNOSIS = ("Research software, not for diagnosis: check each model's validated figures and the data it was "
                     "trained on before reading its answer.")


def _spread(values: list[int], n: int) -> list[int]:
    if len(values) <= n:
        return sorted(values)
    return sorted({values[round(i * (len(values) - 1) / (n - 1))] for i in range(n)})


def _validated(metrics: dict[str, Any]) -> list[str]:
    """``"holdout_pseudo_patients: AUC 0.97 (95% CI 0.83-1.00), n=8"`` lines from a manifest's metrics."""
    lines = []
    for name, m in (metrics or {}).items():
        if not isinstance(m, dict):
            continue
        parts = []
        if "auc" in m:
            ci = m.get("auc_ci95")
            parts.append(f"AUC {m['auc']:.2f}" + (f" (95% CI {ci[0]:.2f}-{ci[1]:.2f})" if ci else ""))
        for k, label in (("accuracy", "accuracy"), ("sensitivity", "sensitivity"), ("specificity", "specificity")):
            if isinstance(m.get(k), (int, float)):
                parts.append(f"{label} {m[k]:.2f}")
        if "n" in m:
            parts.append(f"n={m['n']}")
        if parts:
            lines.append(f"{name}: " + ", ".join(parts))
    return lines or ["no validated figures in the model's manifest"]


def _torch_version() -> str:
    """The installed torch's version, read from its package metadata (an ONNX run never imports torch)."""
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version("torch")
    except PackageNotFoundError:
        return "absent"


def report_data(case: Any, lesion: sitk.Image, grades: list[Any], entries: list[Any], stages: list[Any],
                warnings: list[str], settings: Any) -> dict[str, Any]:
    """Everything the report shows, as JSON-ready data (also written as ``report.json``)."""
    by_id = {e.model_id: e for e in entries}
    pre = case.meta.get("brain_extraction") or {}
    answers = []
    for g in grades:
        e = by_id.get(g.model_id)
        answers.append({
            "task": g.task, "answer": g.predicted_level, "probability": round(float(g.probability), 4),
            "positive_class": g.positive_class, "negative_class": g.negative_class, "fusion": g.fusion,
            "slices_used": list(g.slices_used), "model_id": g.model_id, "weights_sha256": g.weights_sha256,
            "bundle_sha256": getattr(e, "sha256", ""), "validated": _validated(getattr(e, "metrics", {})),
            "trained_on": getattr(e, "trained_on", ""), "reader_findings": dict(g.reader_findings)})
    brain = case.meta.get("brain_mask")
    return {
        "patient_id": case.patient_id, "answers": answers,
        "volumes_ml": {"brain": round(volume_ml(brain), 1) if brain is not None else None,
                       "lesion": round(volume_ml(lesion), 2)},
        "clinical": {k: v for k, v in case.clinical.items() if v not in (None, "")},
        "findings": dict(settings.findings), "warnings": list(warnings),
        "provenance": {"medgrade": __version__, "torch": _torch_version(), "python": platform.python_version(),
                       "brain_extraction": pre, "segmentation_model": settings.seg_model,
                       "stages": [{"name": s.name, "key": s.key, "ran": s.ran, "seconds": s.seconds} for s in stages]},
        "disclaimer": NOT_FOR_DIAGNOSIS,
    }


def _pictures(files: Path, case: Any, lesion: sitk.Image, grades: list[Any]) -> list[tuple[str, Path]]:
    ref = case.reference if case.reference in case.images else next(iter(case.images))
    images = {s: case.images[s] for s in (ref, "t2", "flair") if s in case.images}
    masks = {"brain": case.meta["brain_mask"]} if case.meta.get("brain_mask") is not None else {}
    masks["lesion (AI)"] = lesion
    arr = sitk.GetArrayViewFromImage(lesion)
    zs = [int(z) for z in np.flatnonzero(arr.reshape(arr.shape[0], -1).any(axis=1))]
    key = _spread(zs, 4) if zs else None
    out = [("Key slices: brain (yellow) and lesion (red) outlines",
            render_overview(images, files / "key_slices.png", masks=masks, slices=key))]
    for i, g in enumerate(grades):
        if g.heatmap is None:
            continue
        slices = _spread(sorted(g.slices_used), 4) or key
        out.append((f"{g.task}: heat map (Grad-CAM) on the graded slices",
                    render_overview({ref: case.images[ref]}, files / f"heatmap_{i}.png", masks={"lesion (AI)": lesion},
                                    heatmap=g.heatmap, slices=slices)))
    return out


def _img_tag(path: Path) -> str:
    data = base64.b64encode(path.read_bytes()).decode()
    return f'<img src="data:image/png;base64,{data}" style="max-width:100%">'


def _html(data: dict[str, Any], pictures: list[tuple[str, Path]]) -> str:
    e = html.escape
    rows = []
    for a in data["answers"]:
        findings = "<br>".join(f"{e(k)}: {e(str(v))}" for k, v in a["reader_findings"].items()) or "—"
        bar = f'<div style="background:#ddd;width:160px"><div style="background:#c0392b;width:{160 * a["probability"]:.0f}px;height:10px"></div></div>'
        rows.append(f"<tr><td><b>{e(a['task'])}</b></td><td><b>{e(a['answer'])}</b><br>p({e(a['positive_class'])}) = "
                    f"{a['probability']:.2f}{bar}</td><td>{'<br>'.join(e(v) for v in a['validated'])}"
                    f"<br><small>trained on: {e(a['trained_on'] or 'not stated')}</small></td><td>{findings}</td></tr>")
    answers = ("<table><tr><th>task</th><th>answer</th><th>model's validated figures</th><th>reader's findings</th></tr>"
               + "".join(rows) + "</table>") if rows else "<p>No grading model was run.</p>"
    warn = "".join(f"<li>{e(w)}</li>" for w in data["warnings"])
    prov = data["provenance"]
    bet = prov["brain_extraction"]
    prov_rows = [("MedGrade", prov["medgrade"]), ("PyTorch", prov["torch"]), ("Python", prov["python"]),
                 ("brain extraction", f"{bet.get('method', '?')} on {bet.get('device', '?')}, "
                                      f"margin {bet.get('lesion_margin_mm', '?')} mm"),
                 ("segmentation model", prov["segmentation_model"])]
    prov_rows += [(f"grading model {a['model_id']}", f"weights sha256 {a['weights_sha256'][:16]}…, bundle "
                                                     f"{a['bundle_sha256'][:16]}…") for a in data["answers"]]
    stages = ", ".join(f"{s['name']} {'%.1f s' % s['seconds'] if s['ran'] else '(up to date)'}"
                       for s in prov["stages"])
    figs = "".join(f"<figure>{_img_tag(p)}<figcaption>{e(c)}</figcaption></figure>" for c, p in pictures)
    vol = data["volumes_ml"]
    clinical = ", ".join(f"{e(k)} {e(str(v))}" for k, v in data["clinical"].items()) or "not given"
    return f"""<!DOCTYPE html><html lang="en"><head><meta charset="utf-8"><title>MedGrade report {e(data['patient_id'])}</title>
<style>body{{font-family:sans-serif;max-width:1000px;margin:auto;font-size:13px}}table{{border-collapse:collapse;width:100%}}
td,th{{border:1px solid #ccc;padding:4px;vertical-align:top;text-align:left}}figure{{margin:6px 0}}
.warn{{background:#fff3cd;padding:4px 10px}}.note{{color:#a00}}</style></head><body>
<h2>MedGrade — patient {e(data['patient_id'])}</h2><p class="note">{e(data['disclaimer'])}</p>
{figs}
<h3>Answers</h3>{answers}
<h3>Volumes</h3><p>brain {vol['brain']} ml · lesion (AI) {vol['lesion']} ml · clinical: {clinical}</p>
{f'<h3>Warnings</h3><ul class="warn">{warn}</ul>' if warn else ''}
<h3>Provenance</h3><table>{''.join(f'<tr><td>{e(k)}</td><td>{e(str(v))}</td></tr>' for k, v in prov_rows)}</table>
<p><small>stages: {e(stages)}</small></p></body></html>"""


def _pdf(path: Path, data: dict[str, Any], pictures: list[tuple[str, Path]]) -> None:
    """One A4 page: the pictures, then the answers, volumes, warnings and provenance as text."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    with matplotlib.rc_context({"text.parse_math": False}):  # text is text: "$" in a finding is no mathtext
        _pdf_page(plt, path, data, pictures)


def _pdf_page(plt: Any, path: Path, data: dict[str, Any], pictures: list[tuple[str, Path]]) -> None:
    fig = plt.figure(figsize=(8.27, 11.69))
    fig.text(0.05, 0.97, f"MedGrade — patient {data['patient_id']}", fontsize=14, weight="bold")
    fig.text(0.05, 0.955, data["disclaimer"], fontsize=7, color="#a00")
    top, height = 0.94, 0.55 / max(1, len(pictures))
    for caption, p in pictures:
        img = plt.imread(str(p))
        ax = fig.add_axes((0.05, top - height, 0.9, height - 0.015))
        ax.imshow(img)
        ax.set_axis_off()
        fig.text(0.05, top - height - 0.005, caption, fontsize=7)
        top -= height + 0.01
    lines = []
    for a in data["answers"]:
        lines.append(f"{a['task']}: {a['answer']}  (p({a['positive_class']}) = {a['probability']:.2f}; model "
                     f"{a['model_id']})")
        lines += [f"    validated: {v}" for v in a["validated"]]
        lines += [f"    reader: {k} = {v}" for k, v in a["reader_findings"].items()]
    vol = data["volumes_ml"]
    lines.append(f"brain {vol['brain']} ml, lesion (AI) {vol['lesion']} ml")
    lines += [f"warning: {w}" for w in data["warnings"]]
    bet = data["provenance"]["brain_extraction"]
    lines.append(f"MedGrade {data['provenance']['medgrade']}, torch {data['provenance']['torch']}, brain extraction "
                 f"{bet.get('method', '?')} ({bet.get('device', '?')}), segmentation "
                 f"{data['provenance']['segmentation_model']}")
    fig.text(0.05, top - 0.01, "\n".join(lines[:40]), fontsize=7, va="top", family="monospace", wrap=True)
    fig.savefig(path, format="pdf")
    plt.close(fig)


def write_report(folder: Path, case: Any, lesion: sitk.Image, grades: list[Any], entries: list[Any],
                 stages: list[Any], warnings: list[str], settings: Any) -> dict[str, Path]:
    """Write ``report.html``, ``report.pdf`` and ``report.json`` in ``folder``."""
    import shutil
    import tempfile

    data = report_data(case, lesion, grades, entries, stages, warnings, settings)
    with tempfile.TemporaryDirectory(prefix="medgrade-report-") as files:
        out = _write_files(folder, data, _pictures(Path(files), case, lesion, grades))
    shutil.rmtree(folder / "report_files", ignore_errors=True)  # an earlier version's pictures folder
    return out


def _write_files(folder: Path, data: dict[str, Any], pictures: list[tuple[str, Path]]) -> dict[str, Path]:
    """The three files, each written to a partial file first, then all renamed (the HTML last)."""
    out = {"html": folder / "report.html", "pdf": folder / "report.pdf", "json": folder / "report.json"}
    writers = (("html", lambda p: p.write_text(_html(data, pictures), encoding="utf-8")),
               ("pdf", lambda p: _pdf(p, data, pictures)),
               ("json", lambda p: p.write_text(json.dumps(data, indent=1, default=str))))
    tmps = {key: out[key].with_name(f".{out[key].name}.partial") for key, _ in writers}
    try:  # every file written first, then all renamed: a failed report leaves the previous one whole
        for key, write in writers:
            write(tmps[key])
    except BaseException:
        for tmp in tmps.values():
            tmp.unlink(missing_ok=True)
        raise
    for key in ("pdf", "json", "html"):  # the HTML (the stage's marker) last
        os.replace(tmps[key], out[key])
    return out
