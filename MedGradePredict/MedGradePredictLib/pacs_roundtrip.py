"""Pull a study by StudyInstanceUID from a PACS (DICOMweb or DIMSE), run the cascade on its MR series, push the
SEG + SR + PDF back. Nothing is pushed unless all three were built; what did and did not arrive is reported."""

from __future__ import annotations

import shutil
import tempfile
import time
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

from MedGradeCoreLib.errors import InputError
from MedGradeCoreLib.pacs import PacsError, PacsSettings, StoreReport, connect, pull_mr_study
from MedGradeCoreLib.progress import Progress

from .cascade import CascadeResult, CascadeSettings, run_case


@dataclass
class RoundTrip:
    study: str
    peer: str
    result: CascadeResult
    pushed: StoreReport | None
    seconds: dict[str, float] = field(default_factory=dict)  # pull, cascade, push
    notes: list[str] = field(default_factory=list)

    def summary(self) -> dict[str, Any]:
        return {"study": self.study, "peer": self.peer, "patient_id": self.result.patient_id,
                "folder": str(self.result.folder), "seconds": self.seconds, "notes": self.notes,
                "arrived": self.pushed.arrived if self.pushed else [], "grades": self.result.summary()["grades"]}


def _patient_label(files: list[Path], study: str) -> str:
    import pydicom

    ds = pydicom.dcmread(files[0], stop_before_pixels=True, specific_tags=["PatientID"])
    return str(ds.get("PatientID") or "") or f"study-{study[-12:]}"


def round_trip(study: str, output: str | Path, pacs: PacsSettings, via: str = "dicomweb",
               settings: CascadeSettings | None = None, push: bool = True,
               progress: Progress | None = None) -> RoundTrip:
    """See the module docstring; the pulled files live in a temporary folder removed afterwards."""
    progress = progress or Progress()
    peer = connect(pacs, via)
    settings = settings or CascadeSettings()
    seconds: dict[str, float] = {}
    pulled = Path(tempfile.mkdtemp(prefix="medgrade-pacs-"))
    try:
        progress(0.0, f"pulling study {study} from {peer.name}")
        start = time.perf_counter()
        files, notes = pull_mr_study(peer, study, pulled)
        seconds["pull"] = round(time.perf_counter() - start, 3)
        run_settings = replace(settings, dicom_out=True, patient_id=settings.patient_id or _patient_label(files, study))
        start = time.perf_counter()
        try:
            result = run_case(pulled, output, run_settings, progress.sub(0.05, 0.9))
        except InputError as exc:  # it names the temporary folder: name the study and the peer instead
            raise PacsError(peer.name, study, f"pulled, but not usable: {exc.problem}") from None
        seconds["cascade"] = round(time.perf_counter() - start, 3)
    finally:
        shutil.rmtree(pulled, ignore_errors=True)
    from MedGradeCoreLib.dicom_out.write import DicomResult, FOLDER, PDF, SEG, SR

    folder = result.folder / FOLDER
    missing = [name for name, f in (("SEG", SEG), ("SR", SR), ("PDF", PDF)) if not (folder / f).is_file()]
    if missing:
        raise PacsError(peer.name, study, f"nothing pushed: {', '.join(missing)} not built "
                                          f"({'; '.join(result.warnings) or 'see ' + str(result.folder)})")
    report = None
    if push:
        progress(0.9, f"pushing SEG + SR + PDF to {peer.name}")
        start = time.perf_counter()
        datasets = DicomResult(folder, {k: folder / f for k, f in (("seg", SEG), ("sr", SR), ("pdf", PDF))}).datasets()
        report = peer.store(study, datasets)
        seconds["push"] = round(time.perf_counter() - start, 3)
        report.check()
    progress(1.0, "done")
    return RoundTrip(study, peer.name, result, report, seconds, notes + result.warnings)
