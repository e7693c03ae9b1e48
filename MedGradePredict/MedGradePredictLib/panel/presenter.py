"""The Predict panel as a presenter: which case and volumes, which grading and breast models, what is enabled,
and where a finished grading lands (tables, plot and heat maps under the input's study, the heat map over the
input in the slice views). Scene, application logic and job runner come by constructor; no Qt.

``params`` is the module's parameter node in Slicer and a :class:`GradeParameters` headless (same fields).
"""

from __future__ import annotations

import os
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable

from MedGradeCoreLib.case_folder import reference_image_path, sanitise_patient_id
from MedGradeCoreLib.errors import InputError
from MedGradeCoreLib.panel import Action, JobRunner, path_text
from MedGradeCoreLib.panel.model_choice import ModelChoice, model_items
from MedGradeCoreLib.sequence_names import guess_sequence, is_lesion_mask_name
from MedGradeSegmentLib.panel.presenter import SEQUENCES

SEXES = ("unknown", "male", "female")
FINDINGS = ("unknown", "yes", "no")
FUSIONS = ("near", "all", "large")
BREAST_KINDS = ("breast-fusion", "breast-radiomics")
BREAST_MODALITIES = (("mg", "Mammogram (MG)"), ("us", "Ultrasound (US)"), ("mri", "Breast MRI (one DCE phase)"))


@dataclass
class GradeParameters:
    caseFolder: Path | None = None
    t1cVolume: Any = None
    t2Volume: Any = None
    t1Volume: Any = None
    flairVolume: Any = None
    lesionSegmentation: Any = None
    age: int = -1
    sex: str = "unknown"
    clinicalCsv: Path | None = None
    enhancingFocus: str = "unknown"
    fusion: str = "near"
    device: str = "auto"
    heatmap: bool = True
    modelId: str = ""


class GradePresenter(ModelChoice):
    def __init__(self, scene: Any, app_logic: Any, jobs: JobRunner, params: Any = None) -> None:
        self.scene, self.app_logic, self.jobs, self.params = scene, app_logic, jobs, params
        self.model_ids: list[str] = []
        self.breast_model_ids: list[str] = []

    # --- models ------------------------------------------------------------------------------------------
    def library_changed(self, models: Callable[[str], list[Any]]) -> dict[str, list[tuple[str, str]]]:
        """Both model lists from the library (``models(kind)``), at once: the grading combo and the breast
        combo are filled together from the panel's first listing on (no refresh needed)."""
        grading = self.set_models(models("grading"))
        breast = model_items([e for k in BREAST_KINDS for e in models(k)])
        self.breast_model_ids = [i for _, i in breast]
        return {"grading": grading, "breast": breast}

    # --- state ---------------------------------------------------------------------------------------------
    def actions(self) -> dict[str, Action]:
        p = self.params
        if p is None or self.jobs.busy:
            return {k: Action(False, "a job is running" if p is not None else "")
                    for k in ("apply", "loadClinical", "runAll", "breast")}
        return {
            "apply": Action.when(bool(path_text(p.caseFolder)) and bool(p.modelId),
                                 "Choose a preprocessed case folder and a grading model"),
            "loadClinical": Action.when(bool(path_text(p.clinicalCsv)), "Choose a clinical CSV"),
            "runAll": Action.when(bool(self.loaded_volumes()), "Select the case's volumes first (T1c with FLAIR or T2)"),
            "breast": Action(True),
        }

    def loaded_volumes(self) -> list[Any]:
        """The selected volume nodes, T1c first (the reference of the case)."""
        return [v for v in (getattr(self.params, f"{s}Volume") for s in SEQUENCES) if v is not None]

    def prefill(self) -> None:
        """Empty selectors from names (volumes by sequence, a lesion mask by name or MedGrade's own step); the
        case folder from a volume MedGrade preprocessed."""
        from MedGradeSegmentLib.scene_segmentation import STEP

        p = self.params
        if p is None:
            return
        for i in range(self.scene.GetNumberOfNodesByClass("vtkMRMLScalarVolumeNode")):
            node = self.scene.GetNthNodeByClass(i, "vtkMRMLScalarVolumeNode")
            seq = guess_sequence(node.GetName() or "")
            if seq in SEQUENCES and getattr(p, f"{seq}Volume") is None:
                setattr(p, f"{seq}Volume", node)
        if p.lesionSegmentation is None:
            for i in range(self.scene.GetNumberOfNodesByClass("vtkMRMLSegmentationNode")):
                node = self.scene.GetNthNodeByClass(i, "vtkMRMLSegmentationNode")
                if is_lesion_mask_name(node.GetName() or "") or node.GetAttribute("MedGrade.step") == STEP:
                    p.lesionSegmentation = node
        for node in self.loaded_volumes():
            folder = node.GetAttribute("MedGrade.caseFolder")
            if folder and not path_text(p.caseFolder):
                p.caseFolder = Path(folder)

    def patient_name(self) -> str:
        """The case folder's name, else the subject-hierarchy patient of a selected volume, else 'case'."""
        from MedGradeCoreLib.scene.hierarchy import patient_item_of

        folder = path_text(self.params.caseFolder)
        if folder:
            return os.path.basename(os.path.normpath(folder))
        for node in self.loaded_volumes():
            patient = patient_item_of(self.scene, node)
            if patient:
                return sanitise_patient_id(self.scene.GetSubjectHierarchyNode().GetItemName(patient))
        return "case"

    def read_clinical(self) -> None:
        from MedGradeCoreLib.io.clinical_csv import read_clinical_csv

        p = self.params
        rows = read_clinical_csv(path_text(p.clinicalCsv))
        pid = os.path.basename(os.path.normpath(path_text(p.caseFolder))) if path_text(p.caseFolder) else ""
        if pid not in rows:
            raise InputError(path_text(p.clinicalCsv), f"no row for patient {pid!r}")
        if rows[pid].get("age") is not None:
            p.age = int(round(rows[pid]["age"]))
        p.sex = {"M": "male", "F": "female"}.get(rows[pid].get("sex"), "unknown")

    # --- command lines ---------------------------------------------------------------------------------
    def output_folder(self) -> str:
        """``<case>/grading``: where the panel asks ``medgrade predict`` to write."""
        return os.path.join(path_text(self.params.caseFolder), "grading")

    def predict_args(self, out_dir: str) -> list[str]:
        """``medgrade predict CASE --model ID --output DIR ...`` (reader findings recorded, never used)."""
        p, case_dir = self.params, path_text(self.params.caseFolder)
        args = ["predict", case_dir, "--model", p.modelId, "--fusion", p.fusion, "--device", p.device,
                "--output", out_dir]
        if p.lesionSegmentation is not None:  # the mask in the scene (possibly corrected or hand-drawn)
            args += ["--mask", self.export_mask(case_dir, out_dir)]
        args += ["--age", str(p.age)] if p.age >= 0 else []
        args += ["--sex", "M" if p.sex == "male" else "F"] if p.sex != "unknown" else []
        args += ["--enhancing-focus", p.enhancingFocus] if p.enhancingFocus != "unknown" else []
        return args + (["--heatmap"] if p.heatmap else [])

    def export_mask(self, case_dir: str, out_dir: str) -> str:
        """The scene's lesion segmentation as a mask on the case's reference grid."""
        import SimpleITK as sitk

        from MedGradeCoreLib.scene import segmentation_node_to_mask

        grid = sitk.ReadImage(str(reference_image_path(case_dir)))
        os.makedirs(out_dir, exist_ok=True)
        path = os.path.join(out_dir, "lesion_mask_from_scene.nii.gz")
        sitk.WriteImage(segmentation_node_to_mask(self.params.lesionSegmentation, grid), path, True)
        return path

    def run_all_inputs(self) -> tuple[str, Any]:
        """The loaded sequences written as one case folder (the cascade segments it first)."""
        import SimpleITK as sitk

        from MedGradeCoreLib.scene import volume_node_to_sitk

        volumes = self.loaded_volumes()
        if not volumes:
            raise InputError(None, "select the case's volumes first (T1c with FLAIR or T2)")
        folder = Path(tempfile.mkdtemp(prefix="MedGrade-input-")) / self.patient_name()
        folder.mkdir(parents=True)
        for seq in SEQUENCES:
            node = getattr(self.params, f"{seq}Volume")
            if node is not None:
                sitk.WriteImage(volume_node_to_sitk(node), str(folder / f"{seq}.nrrd"), True)
        return str(folder), volumes[0]

    def run_all_args(self, input_path: str, output: str) -> list[str]:
        """``medgrade run INPUT --output DIR ...`` (the cascade; no model chosen: every matching one)."""
        p = self.params
        args = ["run", input_path, "--output", output, "--device", p.device, "--fusion", p.fusion,
                "--patient-id", self.patient_name()]
        args += ["--model", p.modelId] if p.modelId else []
        args += ["--age", str(p.age)] if p.age >= 0 else []
        args += ["--sex", "M" if p.sex == "male" else "F"] if p.sex != "unknown" else []
        return args + (["--enhancing-focus", p.enhancingFocus] if p.enhancingFocus != "unknown" else [])

    # --- jobs and where their results land ----------------------------------------------------------------
    def grade(self) -> bool:
        out_dir = self.output_folder()
        args = self.predict_args(out_dir)
        return self.jobs.start(args, "Grading", lambda job: self.load_result(out_dir)["summary"])

    def load_result(self, out_dir: str) -> dict[str, Any]:
        """Tables, slice plot and heat maps under the study of the case's reference volume, the heat map over it."""
        from MedGradeCoreLib.scene import study_item_of
        from MedGradePredictLib.scene_grading import load_grading_into_scene

        reference = self.params.t1cVolume or self.params.t2Volume
        study = (study_item_of(self.scene, reference) or None) if reference is not None else None
        return load_grading_into_scene(self.scene, out_dir, study, reference)

    def grade_breast(self, selection: dict[str, tuple[Any, Any]], model_id: str = "") -> bool:
        """``selection[modality] = (volume, lesion segmentation or None)`` written as a breast case folder and
        graded in the background (``medgrade predict --heatmap``)."""
        from MedGradePredictLib.breast.scene_breast import write_case_from_scene

        chosen = {k if k != "mri" else "mri_phase1": v for k, v in selection.items() if v[0] is not None}
        work = Path(tempfile.mkdtemp(prefix="MedGradeBreast-"))
        case_dir = write_case_from_scene(chosen, work / "case")
        out_dir = work / "result"
        args = ["predict", str(case_dir), "--output", str(out_dir), "--heatmap"] + (["--model", model_id] if model_id
                                                                                     else [])
        reference = next(iter(chosen.values()))[0]
        return self.jobs.start(args, "Breast grading", lambda job: self.load_breast(out_dir, reference)["summary"])

    def load_breast(self, out_dir: str | Path, reference: Any) -> dict[str, Any]:
        """The breast result tables and Grad-CAM maps under ``reference``'s study in the subject hierarchy; the
        first map over ``reference`` in the slice views."""
        from MedGradeCoreLib.scene import place_with
        from MedGradeCoreLib.scene.display import show_volume
        from MedGradePredictLib.breast.scene_breast import load_breast_results

        result = load_breast_results(self.scene, out_dir, reference)
        for node in [result["table"], *result["contributions"], *result["heatmaps"]]:
            place_with(self.scene, node, reference)
        if result["heatmaps"]:
            show_volume(self.scene, self.app_logic, reference, result["heatmaps"][0])
        return result

    def shutdown(self) -> None:
        self.jobs.cancel()
