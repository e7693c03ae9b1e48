"""The demo: the whole pipeline on the bundled real case, written as files, a Slicer scene, a report and a PNG.

sample case (registry) -> the cascade of ``medgrade run`` (preprocess: deep brain extraction, register, 1 mm,
z-score -> segment with the shipped default model (the U-Net, best validated; glioma-lgg-tcga, FLAIR + T1c) -> grading slices on the new mask ->
grade G2/G3 with the shipped KiNet -> headless Slicer scene + patient report) -> an overview picture. Every step uses
the same code as the CLI and the Slicer panels; a second demo into the same folder skips up-to-date stages.
"""

from __future__ import annotations

import json
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from MedGradeCoreLib.errors import InputError
from MedGradeCoreLib.progress import Progress
from MedGradeSegmentLib.commands.segment import DEFAULT_MODEL as DEFAULT_SEG_MODEL

DEFAULT_DATASET = "tcga-fg-6692"
DEFAULT_GRADE_MODEL = "kinet-lgg-g2g3-t1c-flair-v1"


@dataclass
class DemoSummary:
    output: Path
    patient_id: str
    seconds: dict[str, float] = field(default_factory=dict)
    files: dict[str, str] = field(default_factory=dict)
    lesion_ml: float = 0.0
    brain_ml: float = 0.0
    grades: list[dict[str, Any]] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)

    def to_json(self) -> str:
        d = dict(self.__dict__, output=str(self.output))
        return json.dumps(d, indent=1, default=str)


def _case_folder(dataset: str) -> Path:
    from MedGradeCoreLib.sample_data import fetch_dataset

    paths = fetch_dataset(dataset)
    folders = {p.parent for p in paths.values()}
    if len(folders) != 1:
        raise InputError(dataset, "the demo needs a sample dataset whose files lie in one case folder")
    return folders.pop()


def run_demo(output: str | Path, dataset: str = DEFAULT_DATASET, seg_model: str = DEFAULT_SEG_MODEL,
             grade_model: str = DEFAULT_GRADE_MODEL, device: str = "cpu", progress: Progress | None = None
             ) -> DemoSummary:
    """The cascade (``medgrade run``) on the sample case with the shipped models, plus the overview picture.
    Stages already up to date in ``output`` (a previous demo) are skipped."""
    import SimpleITK as sitk

    from MedGradePredictLib.cascade import CascadeSettings, run_case
    from MedGradeCoreLib.overview import render_overview
    from MedGradeSegmentLib.preprocess import PreprocessConfig, read_preprocessed

    progress = progress or Progress()
    out = Path(output)
    out.mkdir(parents=True, exist_ok=True)
    t = time.perf_counter()
    progress(0.0, "the cascade on the sample case")
    settings = CascadeSettings(preprocess=PreprocessConfig(brain_device=device), seg_model=seg_model,
                               grade_models=[grade_model], device=device)
    result = run_case(_case_folder(dataset), out, settings, progress.sub(0.0, 0.9))
    secs = {s.name: round(s.seconds, 2) for s in result.stages}
    case, info = read_preprocessed(result.files["preprocessed"])
    lesion = sitk.Cast(sitk.ReadImage(str(Path(result.files["segmentation"]) / "lesion_mask.nii.gz")), sitk.sitkUInt8)
    seg_info = json.loads((Path(result.files["segmentation"]) / "segmentation.json").read_text())
    grades = result.grades
    progress(0.9, "the overview picture")
    start = time.perf_counter()
    arr = sitk.GetArrayViewFromImage(lesion)
    lesion_z = [int(z) for z in arr.reshape(arr.shape[0], -1).any(axis=1).nonzero()[0]]
    images = {s: case.images[s] for s in ("t1c", "t2", "flair") if s in case.images}
    png = render_overview(images, out / "overview.png", masks={"brain": case.meta["brain_mask"], "lesion (AI)": lesion},
                          heatmap=grades[0].heatmap if grades else None,
                          slices=_overview_slices(lesion_z, grades[0].slices_used if grades else []),
                          title=f"{case.patient_id}: MedGrade demo (research models, not for diagnosis)")
    secs["overview"] = round(time.perf_counter() - start, 2)
    secs["total"] = round(time.perf_counter() - t, 2)
    summary = DemoSummary(
        output=out, patient_id=case.patient_id, seconds=secs, files=dict(result.files, overview=str(png)),
        lesion_ml=round(float(seg_info["volume_ml"]), 2),
        brain_ml=float(info.get("quality", {}).get("brain_volume_ml", 0.0)),
        grades=[{k2: g.to_dict()[k2] for k2 in ("task", "predicted_level", "probability", "fusion", "model_id")}
                for g in grades],
        warnings=list(info.get("quality", {}).get("warnings", [])) + list(seg_info.get("warnings", []))
        + list(result.warnings))
    (out / "summary.json").write_text(summary.to_json())
    progress(1.0, "done")
    return summary


def _overview_slices(lesion_slices: list[int] | None, graded: list[int], n: int = 5) -> list[int] | None:
    """The slices grading used (their heat map) plus lesion slices spread around them, ``n`` in all."""
    if not lesion_slices:
        return sorted(graded) or None
    rest = [z for z in _spread(lesion_slices, n) if z not in graded]
    return sorted(set(graded[:n]) | set(rest[: max(0, n - len(graded))]))


def _spread(values: list[int], n: int) -> list[int]:
    if len(values) <= n:
        return list(values)
    step = (len(values) - 1) / (n - 1)
    return [values[round(i * step)] for i in range(n)]
