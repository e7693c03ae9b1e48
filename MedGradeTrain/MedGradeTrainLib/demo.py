"""The demo: the whole pipeline on the bundled real case, written as files, a Slicer scene and a PNG.

sample case (registry) -> read -> preprocess (skull strip, register, 1 mm, z-score) -> segment with the
shipped MIG-Net demonstrator -> grade with the shipped KiNet demonstrator -> headless Slicer scene
(.mrml + data) and an overview picture. Every step uses the same code as the CLI and the Slicer panels.
"""

from __future__ import annotations

import json
import shutil
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from MedGradeSegmentLib.errors import InputError
from MedGradeSegmentLib.progress import Progress

DEFAULT_DATASET = "tcga-fg-6692"
DEFAULT_SEG_MODEL = "mignet-demo-2patients-v2"
DEFAULT_GRADE_MODEL = "demo-kinet-toy-swap"


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
    from MedGradeSegmentLib.sample_data import fetch_dataset

    paths = fetch_dataset(dataset)
    folders = {p.parent for p in paths.values()}
    if len(folders) != 1:
        raise InputError(dataset, "the demo needs a sample dataset whose files lie in one case folder")
    return folders.pop()


def run_demo(output: str | Path, dataset: str = DEFAULT_DATASET, seg_model: str = DEFAULT_SEG_MODEL,
             grade_model: str = DEFAULT_GRADE_MODEL, device: str = "cpu", progress: Progress | None = None
             ) -> DemoSummary:
    import SimpleITK as sitk

    from MedGradePredictLib.model_bundle import load_grading_bundle
    from MedGradePredictLib.predict import predict_case
    from MedGradePredictLib.results_io import write_results
    from MedGradeSegmentLib.io import load_case
    from MedGradeSegmentLib.overview import render_overview
    from MedGradeSegmentLib.preprocess import PreprocessConfig, preprocess_case, read_preprocessed, write_preprocessed
    from MedGradeSegmentLib.preprocess.slices import sample_slices
    from MedGradeSegmentLib.segmentation.model_bundle import load_segmentation_model
    from MedGradeSegmentLib.segmentation.segment_case import segment_case, write_result

    progress = progress or Progress()
    out = Path(output)
    if out.exists():
        shutil.rmtree(out)  # the demo's own output folder: always rewritten whole
    out.mkdir(parents=True)
    t = time.perf_counter()
    secs: dict[str, float] = {}

    def lap(name: str) -> None:
        nonlocal t
        now = time.perf_counter()
        secs[name] = round(now - t, 2)
        t = now

    progress(0.0, "reading the sample case")
    case = load_case(_case_folder(dataset))
    lap("read")
    result = preprocess_case(case, PreprocessConfig(), progress.sub(0.02, 0.7))
    case_dir = write_preprocessed(result, out / "preprocessed")
    case, info = read_preprocessed(case_dir)
    lap("preprocess")

    progress(0.7, "segmenting the lesion")
    seg = load_segmentation_model(seg_model, device=device)
    seg_result = segment_case(case, seg, brain_mask=case.meta.get("search_mask"), device=device,
                              progress=progress.sub(0.7, 0.8))
    seg_info = write_result(seg_result, out / "segmentation", case)
    lap("segment")

    progress(0.8, "grading")
    grader = load_grading_bundle(grade_model, device=device)
    case.mask = seg_result.mask
    k = int(grader.settings.k)
    slices = sample_slices(seg_result.mask, k) if sitk.GetArrayViewFromImage(seg_result.mask).any() else None
    grades = [predict_case(grader, case, slices=slices)]
    write_results(grades, out / "grading")
    lap("grade")

    progress(0.9, "writing the Slicer scene and the overview picture")
    scene_file = _write_scene(out, case_dir, seg_result, grades)
    images = {s: case.images[s] for s in ("t1c", "t2", "flair") if s in case.images}
    png = render_overview(images, out / "overview.png",
                          masks={"brain": case.meta["brain_mask"], "lesion (AI)": seg_result.mask},
                          heatmap=grades[0].heatmap, slices=_overview_slices(slices, grades[0].slices_used),
                          title=f"{case.patient_id}: MedGrade demo (demonstrator models, not for diagnosis)")
    lap("scene+overview")
    summary = DemoSummary(
        output=out, patient_id=case.patient_id, seconds=secs,
        files={"preprocessed": str(case_dir), "segmentation": str(out / "segmentation"),
               "grading": str(out / "grading"), "scene": str(scene_file), "overview": str(png)},
        lesion_ml=round(float(seg_result.info["volume_ml"]), 2),
        brain_ml=float(info.get("quality", {}).get("brain_volume_ml", 0.0)),
        grades=[{k2: g.to_dict()[k2] for k2 in ("task", "predicted_level", "probability", "fusion", "model_id")}
                for g in grades],
        warnings=list(info.get("quality", {}).get("warnings", [])) + list(seg_info.get("warnings", [])))
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


def _write_scene(out: Path, case_dir: Path, seg_result: Any, grades: list[Any]) -> Path:
    from MedGradePredictLib.scene_grading import add_grading_to_scene
    from MedGradeSegmentLib.headless_app import create_headless_slicer
    from MedGradeSegmentLib.scene import load_preprocessed_into_scene, save_scene
    from MedGradeSegmentLib.scene_segmentation import add_segmentation_to_scene

    app = create_headless_slicer()
    loaded = load_preprocessed_into_scene(app.scene, case_dir)
    reference = loaded["volumes"].get("t1c") or next(iter(loaded["volumes"].values()))
    add_segmentation_to_scene(app.scene, seg_result.mask, reference, seg_result.info,
                              probability=seg_result.probability)
    add_grading_to_scene(app.scene, grades, reference, loaded["study_item"])
    return save_scene(app.scene, out / "scene", name="MedGrade-demo")
