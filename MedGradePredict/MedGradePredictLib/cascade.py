"""The cascade: a case (or a cohort) -> preprocess -> segment -> grading slices on the new mask -> grade with every
matching grading model -> Slicer scene + one-page patient report, each stage skipped when up to date.

Output of one case, ``<output>/<case>/``::

    preprocessed/   case folder (case.json, volumes, brain and search masks)   stage "preprocess"
    segmentation/   lesion_mask.nii.gz, lesion_probability.nii.gz, .json      stage "segment"
    grading/<model>/predictions.csv|json, heatmaps/                           stage "grade:<model>" (slices too)
    scene/          <case>.mrml + Data/                                       stage "scene"
    report.html, report.pdf, report.json (pictures embedded)                  stage "report"
    dicom/          seg.dcm, sr.dcm, report_pdf.dcm, dicom.json (DICOM input or --dicom-out)   stage "dicom"
    cascade.json    every stage's key, seconds and whether it ran this time

A stage's key hashes what its output depends on: the input files' sha256, the settings that stage and the
stages before it use, the model's sha256, the MedGrade version. A stage runs when its key differs from the
recorded one or its outputs are missing; so a second run skips everything, and changing one setting reruns
only the stages that depend on it. Models stay loaded between runs in one process (the panel, the bench).
"""

from __future__ import annotations

import hashlib
import json
import os
import time
from dataclasses import asdict, dataclass, field
from functools import lru_cache
from pathlib import Path
from typing import Any, Callable

import SimpleITK as sitk

from MedGradeCoreLib.case_folder import case_file, is_case_folder, sanitise_patient_id
from MedGradeCoreLib import __version__
from MedGradeCoreLib.errors import InputError, MedGradeError
from MedGradeCoreLib.hashing import sha256_file
from MedGradeSegmentLib.preprocess.config import PreprocessConfig
from MedGradeCoreLib.progress import Progress

from MedGradeSegmentLib.commands.segment import DEFAULT_MODEL as DEFAULT_SEG_MODEL
STATE = "cascade.json"


@dataclass
class CascadeSettings:
    """Everything a cascade run depends on besides the input files."""

    preprocess: PreprocessConfig = field(default_factory=PreprocessConfig)
    seg_model: str = DEFAULT_SEG_MODEL
    grade_models: list[str] | None = None  # None: every installed grading model whose inputs the case has
    device: str = "auto"
    fusion: str | None = None
    keep_largest: bool = True
    sequences: list[str] | None = None
    patient_id: str | None = None
    clinical: dict[str, Any] = field(default_factory=dict)  # age, sex... (override the case's)
    findings: dict[str, Any] = field(default_factory=dict)  # reader findings, shown beside the answers
    clinical_csv: str | None = None
    labels_csv: str | None = None
    models_root: str | None = None
    scene: bool = True
    report: bool = True
    force: bool = False  # rerun every stage
    dicom_out: bool | None = None  # SEG + SR + PDF in <case>/dicom: None = when the input is DICOM
    dicom_fractional: bool = False  # the SEG holds the lesion probability (FRACTIONAL) instead of the mask


@dataclass
class StageRecord:
    name: str
    key: str
    ran: bool
    seconds: float = 0.0
    note: str = ""
    cpu_seconds: float = 0.0  # process CPU time (all threads) of the stage
    outputs: dict[str, str] = field(default_factory=dict)  # output (relative path) -> digest of its content


@dataclass
class CascadeResult:
    patient_id: str
    folder: Path
    stages: list[StageRecord]
    grades: list[Any]
    warnings: list[str]
    files: dict[str, str]

    def ran(self) -> list[str]:
        return [s.name for s in self.stages if s.ran]

    def summary(self) -> dict[str, Any]:
        return {"patient_id": self.patient_id, "folder": str(self.folder), "files": self.files,
                "stages": [asdict(s) for s in self.stages], "warnings": self.warnings,
                "grades": [{k: g.to_dict()[k] for k in ("task", "predicted_level", "probability", "model_id")}
                           for g in self.grades]}


def _hash(*parts: Any) -> str:
    return hashlib.sha256(json.dumps(parts, sort_keys=True, default=str).encode()).hexdigest()[:20]


def input_key(path: Path) -> str:
    """sha256 over every (relative path, file sha256) of a case file or folder (hidden files ignored)."""
    if path.is_file():
        return _hash(path.name, sha256_file(path))
    files = sorted(p for p in path.rglob("*") if p.is_file() and not any(s.startswith(".") for s in
                                                                          p.relative_to(path).parts))
    return _hash([(str(p.relative_to(path)), sha256_file(p)) for p in files])


def case_label(path: Path, patient_id: str | None = None) -> str:
    name = patient_id or path.name
    for suffix in (".nii.gz", ".nii", ".nrrd", ".mha", ".mhd", ".dcm"):
        if name.lower().endswith(suffix):
            name = name[: -len(suffix)]
    return sanitise_patient_id(name)


MODEL_LOADS = {"segmentation": 0, "grading": 0}  # loads in this process (the cohort pool reports them)


@lru_cache(maxsize=4)
def _seg_model(model: str, device: str, root: str | None) -> Any:
    from MedGradeSegmentLib.segmentation.model_bundle import load_segmentation_model

    MODEL_LOADS["segmentation"] += 1
    return load_segmentation_model(model, device, root)


def _library_entry(model: str, root: str | None) -> Any:
    """The library entry of a model id (its FP32 ONNX export when one is installed: onnx_models.fast_variant) or
    bundle folder (as it is); its ``sha256`` covers every file of the bundle."""
    from MedGradeCoreLib.model_library import library_entry, find_model, list_models
    from MedGradeCoreLib.onnx_models import fast_variant

    if Path(model).is_dir():
        return library_entry(Path(model), "path")
    return fast_variant(find_model(model, root), list_models(root))


def _device_for(entry: Any, preference: str) -> str:
    """Where a model runs: an ONNX export on ONNX Runtime's CPU execution provider (so torch is never imported,
    not even to look for a GPU), a torch model on ``choose_device(preference)``."""
    from MedGradeCoreLib.devices import choose_device
    from MedGradeCoreLib.onnx_models import source_of

    return "cpu" if source_of(entry) is not None else choose_device(preference).device


@lru_cache(maxsize=16)
def _grade_model(folder: str, device: str) -> Any:
    from .model_bundle import load_grading_bundle

    MODEL_LOADS["grading"] += 1
    return load_grading_bundle(folder, device)


def grading_entries(settings: CascadeSettings, sequences: list[str]) -> tuple[list[Any], list[str]]:
    """(library entries of the grading models to run, warnings): the named ones, or every installed/shipped
    grading model whose inputs the case has."""
    from MedGradeCoreLib.model_library import find_model, list_models

    if settings.grade_models:
        entries = []
        for m in settings.grade_models:
            if Path(m).is_dir():
                from MedGradeCoreLib.model_library import library_entry

                entries.append(library_entry(Path(m), "path"))
            else:
                entries.append(_library_entry(m, settings.models_root))
        return entries, []
    usable, warnings = [], []
    for e in list_models(settings.models_root, kind="grading"):
        if e.error:
            warnings.append(f"grading model {e.model_id} skipped: {e.error}")
        elif set(e.inputs) <= set(sequences):
            usable.append(e)
    from MedGradeCoreLib.onnx_models import prefer_exports

    usable = prefer_exports(usable)  # a model with an FP32 ONNX export runs as that export (once)
    if not usable:
        warnings.append("no installed grading model matches this case's sequences "
                        f"({', '.join(sequences)}); install one with `medgrade models install`")
    return usable, warnings


class _Case:
    """The case read lazily: raw input only when preprocessing runs, the preprocessed folder when needed."""

    def __init__(self, path: Path, settings: CascadeSettings):
        self.path, self.settings = path, settings
        self._pre: Any = None

    def raw(self) -> Any:
        from MedGradeCoreLib.io import load_case

        s = self.settings
        return load_case(self.path, s.sequences, s.clinical_csv, s.labels_csv, s.patient_id,
                         s.preprocess.reference)

    def preprocessed(self, folder: Path) -> Any:
        if self._pre is None:
            from .cohort import load_grading_case

            self._pre = load_grading_case(folder, None, self.settings.clinical_csv, self.settings.labels_csv)
            self._pre.clinical.update(self.settings.clinical)
        return self._pre


class _Stages:
    """Reads and writes ``cascade.json``; decides which stage runs."""

    def __init__(self, folder: Path, force: bool):
        self.folder, self.force = folder, force
        path = folder / STATE
        try:
            data = json.loads(path.read_text()) if path.is_file() else {}
            stages = data.get("stages", {}) if isinstance(data, dict) else {}
            # a malformed cascade.json (or stage record) only means the stages run again
            self.previous = {k: v for k, v in stages.items() if isinstance(v, dict)} if isinstance(stages, dict) else {}
        except (OSError, ValueError):
            self.previous = {}
        self.records: list[StageRecord] = []

    def _digests(self, paths: list[Path]) -> dict[str, str]:
        return {(str(p.relative_to(self.folder)) if p.is_relative_to(self.folder) else str(p)): input_key(p)
                for p in paths if p.exists()}

    def up_to_date(self, name: str, key: str, outputs: list[Path], owned: list[Path] | None = None) -> bool:
        """Same key, every output there, and every owned output holding the content recorded when the stage
        ran (a deleted or altered intermediate makes the stage run again)."""
        old = self.previous.get(name, {})
        if self.force or old.get("key") != key or not all(p.exists() for p in outputs):
            return False
        recorded = old.get("outputs")
        wanted = owned if owned is not None else outputs
        return isinstance(recorded, dict) and bool(recorded) and self._digests(wanted) == recorded

    def run(self, name: str, key: str, outputs: list[Path], work: Callable[[], str | None],
            progress: Progress, owned: list[Path] | None = None) -> bool:
        """Run ``work`` unless the stage is up to date. ``outputs``: files the stage must leave; ``owned``:
        files and folders it writes whole (default ``outputs``), whose content digests are recorded."""
        if self.up_to_date(name, key, outputs, owned):
            self.records.append(StageRecord(name, key, False, 0.0, "up to date",
                                            outputs=dict(self.previous[name]["outputs"])))
            progress(1.0, f"{name}: up to date")
            return False
        progress(0.0, name)
        start, cpu = time.perf_counter(), time.process_time()
        note = work() or ""
        self.records.append(StageRecord(name, key, True, round(time.perf_counter() - start, 3), note,
                                        round(time.process_time() - cpu, 3),
                                        self._digests(owned if owned is not None else outputs)))
        self.save()  # a later failure keeps the finished stages
        return True

    def save(self) -> None:
        merged = dict(self.previous)
        merged.update({r.name: asdict(r) for r in self.records})
        tmp = self.folder / f"{STATE}.partial"
        tmp.write_text(json.dumps({"medgrade_version": __version__, "stages": merged}, indent=1))
        os.replace(tmp, self.folder / STATE)


def _replace_dir(final: Path, write: Callable[[Path], Any], marker: str) -> Any:
    """Write into a hidden temporary folder then swap it in (``outputs.staged_folder``): a failed stage leaves
    the previous output whole; a folder that is not MedGrade's (no ``marker``) is never replaced."""
    from MedGradeCoreLib.outputs import staged_folder

    with staged_folder(final, markers=(marker,)) as tmp:
        return write(tmp)


def run_case(path: str | Path, output: str | Path, settings: CascadeSettings | None = None,
             progress: Progress | None = None) -> CascadeResult:
    """The whole cascade on one case; see the module docstring."""
    from MedGradeCoreLib.outputs import OutputLock, check_output_separate

    settings = settings or CascadeSettings()
    path = Path(path)
    if not path.exists():
        raise InputError(path, "case not found")
    check_output_separate(output, [path, settings.clinical_csv, settings.labels_csv])  # before any work
    folder = Path(output) / case_label(path, settings.patient_id)
    with OutputLock(folder):  # one writer per case folder
        folder.mkdir(parents=True, exist_ok=True)
        return _run_case(path, folder, settings, progress or Progress())


def _run_case(path: Path, folder: Path, settings: CascadeSettings, progress: Progress) -> CascadeResult:
    from MedGradeCoreLib.devices import choose_device
    from MedGradeSegmentLib.preprocess import preprocess_case, write_preprocessed
    from MedGradeSegmentLib.preprocess.brain_extraction import resolve_method
    from MedGradeSegmentLib.segmentation.segment_case import MASK_NAME, write_result

    stages = _Stages(folder, settings.force)
    case = _Case(path, settings)
    warnings: list[str] = []

    progress(0.0, "hashing the input")
    in_key = input_key(path)
    # 1. preprocess (an already preprocessed case folder is used as it is)
    if is_case_folder(path):
        pre_dir, pre_key = path, _hash("preprocessed input", in_key)
    else:
        pre_dir = folder / "preprocessed"
        cfg = settings.preprocess
        method = (resolve_method(cfg.brain_extraction, choose_device(cfg.brain_device).device)
                  if cfg.skull_strip else "none")
        pre_key = _hash(in_key, cfg.to_dict(), method, settings.sequences, settings.patient_id,
                        settings.clinical_csv and sha256_file(settings.clinical_csv), __version__)

        def preprocess() -> str:
            result = preprocess_case(case.raw(), cfg, progress.sub(0.02, 0.45))
            write_preprocessed(result, folder, name="preprocessed")
            return f"brain extraction: {result.brain_extraction.get('method')}"

        stages.run("preprocess", pre_key, [case_file(pre_dir)], preprocess, progress.sub(0.02, 0.45), [pre_dir])
    # 2. segment (on the brain + margin search mask)
    seg_dir = folder / "segmentation"
    seg_entry = _library_entry(settings.seg_model, settings.models_root)  # the bundle's manifest sha256:
    seg_key = _hash(pre_key, seg_entry.model_id, seg_entry.sha256, settings.keep_largest, __version__)  # no load

    def segment() -> str:
        from MedGradeSegmentLib.segmentation.segment_case import segment_case

        device = _device_for(seg_entry, settings.device)
        seg = _seg_model(seg_entry.path, device, settings.models_root)  # verified, loaded once per process
        c = case.preprocessed(pre_dir)
        result = segment_case(c, seg, c.meta.get("search_mask", c.meta.get("brain_mask")), device,
                              settings.keep_largest, progress=progress.sub(0.45, 0.6))
        info = write_result(result, seg_dir, c)  # staged and renamed by write_result itself
        return f"lesion {info['volume_ml']:.1f} ml"

    stages.run("segment", seg_key, [seg_dir / MASK_NAME], segment, progress.sub(0.45, 0.6), [seg_dir])
    lesion = sitk.Cast(sitk.ReadImage(str(seg_dir / MASK_NAME)), sitk.sitkUInt8)
    # 3. grading slices on the new mask + grade with each matching model
    c = case.preprocessed(pre_dir)
    entries, more = grading_entries(settings, sorted(c.images))
    warnings += more
    grades = []
    for i, entry in enumerate(entries):
        grades += _grade_stage(stages, entry, c, lesion, seg_key, settings, folder, warnings,
                               progress.sub(0.6 + 0.25 * i / len(entries), 0.6 + 0.25 * (i + 1) / len(entries)))
    all_keys = _hash([(r.name, r.key) for r in stages.records])
    files = {"preprocessed": str(pre_dir), "segmentation": str(seg_dir), "grading": str(folder / "grading")}
    # 4. scene
    if settings.scene:
        scene_file = folder / "scene" / f"{case_label(path, settings.patient_id)}.mrml"

        def scene() -> str | None:
            _replace_dir(folder / "scene", lambda d: write_scene(d, pre_dir, seg_dir, grades, scene_file.stem), "Data")
            return None

        try:
            stages.run("scene", all_keys, [scene_file], scene, progress.sub(0.85, 0.9), [folder / "scene"])
            files["scene"] = str(scene_file)
        except ImportError as exc:  # slicer-core absent (pip install medgrade[scene]); inside Slicer it is there
            warnings.append(f"scene not written: {exc}")
    # 5. report
    if settings.report:
        from .report import write_report

        report_html = folder / "report.html"

        def report() -> str | None:
            out = write_report(folder, c, lesion, grades, entries, stages.records, warnings, settings)
            return None if out.get("pdf") else "no PDF renderer"

        stages.run("report", _hash(all_keys, warnings, settings.findings), [report_html], report,
                   progress.sub(0.9, 1.0), [report_html, folder / "report.json", folder / "report.pdf"])
        files["report"] = str(report_html)
        if (folder / "report.pdf").is_file():
            files["report_pdf"] = str(folder / "report.pdf")
    # 6. DICOM out (issue 19)
    from .dicom_stage import dicom_stage

    dicom_stage(stages, folder, pre_dir, seg_dir, grades, settings.dicom_out, settings.dicom_fractional, all_keys,
                files, warnings, progress.sub(0.97, 1.0))
    stages.save()
    progress(1.0, "done")
    return CascadeResult(c.patient_id, folder, stages.records, grades, warnings, files)


def _grade_stage(stages: _Stages, entry: Any, case: Any, lesion: sitk.Image, seg_key: str,
                 settings: CascadeSettings, folder: Path, warnings: list[str],
                 progress: Progress) -> list[Any]:
    from MedGradeSegmentLib.preprocess.slices import sample_slices

    from .predict import predict_case
    from .results_io import read_results, write_results

    out = folder / "grading" / entry.model_id
    key = _hash(seg_key, entry.model_id, entry.sha256, settings.fusion, settings.findings, case.clinical,
                __version__)
    has_lesion = bool(sitk.GetArrayViewFromImage(lesion).any())
    if not has_lesion:
        warnings.append(f"{entry.model_id}: no lesion was found; graded on brain slices (interpret with care)")

    def grade() -> str:
        model = _grade_model(entry.path, _device_for(entry, settings.device))
        case.mask = lesion if has_lesion else None
        slices = sample_slices(lesion, int(model.settings.k)) if has_lesion else None  # on the new mask
        result = predict_case(model, case, settings.fusion, slices=slices, reader_findings=settings.findings)
        write_results([result], out)  # staged and renamed by write_results itself
        return f"{result.predicted_level} p={result.probability:.3f}"

    stages.run(f"grade:{entry.model_id}", key, [out / "predictions.json"], grade, progress, [out])
    results, _ = read_results(out)
    return results


def write_scene(out: Path, case_dir: Path, seg_dir: Path, grades: list[Any], name: str) -> Path:
    """A Slicer scene (.mrml + data) with the preprocessed volumes, the brain and lesion masks, the grade
    table and the heat map overlay (headless MRML from slicer-core outside Slicer). Volumes the cascade wrote
    already beside the scene (the preprocessed sequences, the lesion probability, the heat maps) are referred to,
    not written again (the biggest writes of the stage: 4 volumes and two float maps)."""
    from MedGradeCoreLib.case_folder import read_case_info
    from MedGradeCoreLib.headless_app import create_headless_slicer
    from MedGradeCoreLib.scene import load_preprocessed_into_scene, refer_to_file, save_scene
    from MedGradeSegmentLib.scene_segmentation import add_segmentation_to_scene
    from MedGradeSegmentLib.segmentation.segment_case import AI_RESULT, MASK_NAME, PROBABILITY_NAME

    from .scene_grading import add_grading_to_scene

    app = create_headless_slicer()
    loaded = load_preprocessed_into_scene(app.scene, case_dir)
    reference = loaded["volumes"].get("t1c") or next(iter(loaded["volumes"].values()))
    if case_dir.resolve().is_relative_to(out.resolve().parent):  # the cascade's own copy, not the user's input
        for seq, rel in read_case_info(case_dir)["sequences"].items():
            if seq in loaded["volumes"]:
                refer_to_file(loaded["volumes"][seq], case_dir / rel)
    info = json.loads((seg_dir / AI_RESULT).read_text())
    added = add_segmentation_to_scene(app.scene, sitk.ReadImage(str(seg_dir / MASK_NAME)), reference, info,
                                      probability=sitk.ReadImage(str(seg_dir / PROBABILITY_NAME)))
    refer_to_file(added.probability_node, seg_dir / PROBABILITY_NAME)
    if grades:
        heat = add_grading_to_scene(app.scene, grades, reference, loaded["study_item"])["heatmaps"]
        for task, path in _heatmap_files(seg_dir.parent, grades).items():
            if task in heat:
                refer_to_file(heat[task], path)
    return save_scene(app.scene, out, name=name)


def _heatmap_files(folder: Path, grades: list[Any]) -> dict[str, Path]:
    """task -> the heat map file its grade stage wrote (named in ``grading/<model>/predictions.json``; the grades
    are read back from there), for tasks one model answered."""
    found: dict[str, list[Path]] = {}
    for g in grades:
        out = folder / "grading" / g.model_id
        try:
            records = json.loads((out / "predictions.json").read_text()).get("results", [])
        except (OSError, ValueError):
            continue
        for rec in records:
            if rec.get("task") == g.task and rec.get("patient_id") == g.patient_id and rec.get("heatmap"):
                found.setdefault(g.task, []).append(out / rec["heatmap"])
    return {task: paths[0] for task, paths in found.items() if len(paths) == 1}


def is_cohort(path: Path) -> bool:
    """A folder no reader takes as one case, holding case sub-folders."""
    from MedGradeSegmentLib.commands.preprocess import is_cohort_input

    return not is_case_folder(path) and is_cohort_input(path)


def case_subfolders(cohort: Path) -> list[Path]:
    """The case sub-folders of a cohort folder in name order (hidden ones skipped): the one listing of
    ``medgrade run COHORT``, its ``--shard`` and the Slurm arrays. A symlink to an enclosing folder (``/`` or up
    the tree) is refused, never followed; links to cases stored elsewhere are fine."""
    cases = sorted(d for d in cohort.iterdir() if d.is_dir() and not d.name.startswith("."))
    for d in cases:
        if d.is_symlink() and (d.resolve() == cohort.resolve() or d.resolve() in cohort.resolve().parents):
            raise InputError(d, f"symlink to an enclosing folder (-> {d.resolve()}): not followed; remove it")
    return cases


def cohort_cases(path: Path) -> list[Path]:
    """The case folders of a cohort, in name order; ``[path]`` for one case."""
    return case_subfolders(path) if path.is_dir() and is_cohort(path) else [path]


def run(path: str | Path, output: str | Path, settings: CascadeSettings | None = None,
        progress: Progress | None = None, on_error: Callable[[str, MedGradeError], None] | None = None
        ) -> list[CascadeResult]:
    """:func:`run_case` on a case, or on every case of a cohort folder (a failed case is reported through
    ``on_error`` and the others still run; without ``on_error`` the first failure raises)."""
    return run_cases(cohort_cases(Path(path)), output, settings, progress, on_error)


def run_cases(cases: list[Path], output: str | Path, settings: CascadeSettings | None = None,
              progress: Progress | None = None, on_error: Callable[[str, MedGradeError], None] | None = None,
              single_raises: bool = True) -> list[CascadeResult]:
    """:func:`run_case` on each case in turn in this process; a failure goes to ``on_error`` (raises without
    one, or, with ``single_raises``, when there is one case only: the command's own error)."""
    progress = progress or Progress()
    out = []
    for i, p in enumerate(cases):
        sub = progress.sub(i / len(cases), (i + 1) / len(cases))
        try:
            out.append(run_case(p, output, settings, sub))
        except MedGradeError as exc:
            if on_error is None or (single_raises and len(cases) == 1):
                raise
            on_error(p.name, exc)
    return out


def ensure_lesion_mask(path: str | Path, case: Any, device: str = "auto", seg_model: str = DEFAULT_SEG_MODEL,
                       progress: Progress | None = None, models_root: str | None = None) -> Any:
    """``case`` when it has a lesion mask; otherwise the case segmented first (`medgrade predict` on a case
    without a mask): a preprocessed folder is segmented as it is, anything else preprocessed (default
    settings) then segmented. Returns the case to grade, its ``mask`` the AI lesion mask."""
    from MedGradeCoreLib.devices import choose_device
    from MedGradeSegmentLib.preprocess import PreprocessConfig, preprocess_case
    from MedGradeSegmentLib.segmentation.segment_case import segment_case

    if case.mask is not None:
        return case
    progress = progress or Progress()
    dev = choose_device(device).device
    path = Path(path)
    if not is_case_folder(path):
        progress(0.0, f"{case.patient_id}: preprocessing before segmentation")
        case = preprocess_case(case, PreprocessConfig(), progress.sub(0.0, 0.6)).to_case()
    loaded = _seg_model(seg_model, dev, models_root)
    print(f"{case.patient_id}: no lesion mask: segmenting with {loaded.model_id} first", flush=True)
    result = segment_case(case, loaded, case.meta.get("search_mask", case.meta.get("brain_mask")), dev,
                          progress=progress.sub(0.6, 1.0))
    if not sitk.GetArrayViewFromImage(result.mask).any():
        raise InputError(path, f"no lesion found by {loaded.model_id}; give a mask with --mask")
    case.mask = result.mask
    from MedGradeSegmentLib.preprocess.slices import sample_slices

    case.meta["slices"] = sample_slices(result.mask, len(case.meta.get("slices") or []) or 20)
    return case
