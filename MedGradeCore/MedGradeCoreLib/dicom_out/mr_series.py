"""A volume that is not DICOM (NIfTI/NRRD/MHA) written as a single-frame MR Image series (pydicom), so that a
Segmentation and a report can reference real instances. Only what is known is filled in: the patient id the
user gave, the voxels and their geometry; every other patient attribute is left empty (type 2), and
``DerivationDescription`` says where the pixels came from.
"""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import numpy as np
import pydicom
import SimpleITK as sitk
from pydicom.dataset import FileMetaDataset
from pydicom.uid import ExplicitVRLittleEndian, MRImageStorage, generate_uid

from MedGradeCoreLib import __version__
from MedGradeCoreLib.errors import InputError

MARK = "MedGrade:"  # DerivationDescription prefix of series written here (references.SourceSeries.synthetic)


def _pixels(image: sitk.Image, source: str) -> tuple[np.ndarray, str]:
    """int16/uint16 voxels (frames, rows, columns) and what was done to them."""
    arr = sitk.GetArrayFromImage(image)
    if arr.ndim != 3:
        raise InputError(source, f"is not a single-channel 3D volume ({arr.ndim}D); cannot write an MR series")
    finite = np.isfinite(arr)
    if not finite.all():
        arr = np.where(finite, arr, 0)
    if np.issubdtype(arr.dtype, np.integer) and arr.min() >= -32768 and arr.max() <= 32767:
        return arr.astype(np.int16), "voxel values copied"
    lo, hi = float(arr.min()), float(arr.max())
    scale = 4095.0 / (hi - lo) if hi > lo else 1.0
    return np.round((arr - lo) * scale).astype(np.int16), f"voxel values scaled linearly to 0-4095 (from {lo:g}..{hi:g})"


def write_mr_series(image: sitk.Image, folder: str | Path, patient_id: str, source: str, *,
                    study_uid: str | None = None, series_description: str = "", series_number: int = 1,
                    patient_name: str = "", patient_sex: str = "", patient_age_years: float | None = None,
                    study_date: str | None = None, frame_of_reference_uid: str | None = None) -> list[Path]:
    """Write ``image`` as ``folder/<k>.dcm`` (one MR Image per slice) and return the files in slice order."""
    pixels, how = _pixels(image, source)
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    direction = np.asarray(image.GetDirection(), float).reshape(3, 3)
    origin, spacing = np.asarray(image.GetOrigin(), float), image.GetSpacing()
    now = dt.datetime.now()
    study_uid = study_uid or generate_uid()
    series_uid, frame_uid = generate_uid(), frame_of_reference_uid or generate_uid()
    files = []
    for k in range(pixels.shape[0]):
        meta = FileMetaDataset()
        meta.MediaStorageSOPClassUID, meta.MediaStorageSOPInstanceUID = MRImageStorage, generate_uid()
        meta.TransferSyntaxUID = ExplicitVRLittleEndian
        ds = pydicom.Dataset()
        ds.file_meta = meta
        ds.SpecificCharacterSet = "ISO_IR 192"
        ds.SOPClassUID, ds.SOPInstanceUID = MRImageStorage, meta.MediaStorageSOPInstanceUID
        ds.PatientName, ds.PatientID, ds.PatientBirthDate, ds.PatientSex = patient_name, patient_id, "", patient_sex
        if patient_age_years is not None:
            ds.PatientAge = f"{min(int(patient_age_years), 999):03d}Y"
        ds.StudyInstanceUID, ds.StudyID, ds.AccessionNumber, ds.ReferringPhysicianName = study_uid, "", "", ""
        ds.StudyDate = study_date or now.strftime("%Y%m%d")
        ds.StudyTime = now.strftime("%H%M%S")
        ds.Modality, ds.SeriesInstanceUID, ds.SeriesNumber = "MR", series_uid, series_number
        ds.SeriesDescription = series_description[:64]
        ds.Laterality, ds.PatientPosition = "", ""  # type 2C, unknown
        ds.FrameOfReferenceUID, ds.PositionReferenceIndicator = frame_uid, ""
        ds.Manufacturer = ""
        ds.InstanceNumber = k + 1
        ds.ImageType = ["DERIVED", "SECONDARY", "OTHER"]
        ds.DerivationDescription = f"{MARK} {how} from {Path(source).name} (medgrade {__version__})"[:1024]
        ds.ContentDate, ds.ContentTime = ds.StudyDate, ds.StudyTime
        ds.PixelSpacing = [f"{spacing[1]:.6g}", f"{spacing[0]:.6g}"]  # row spacing (y), column spacing (x)
        ds.SliceThickness = f"{spacing[2]:.6g}"
        ds.ImageOrientationPatient = [f"{v:.6f}" for v in (*direction[:, 0], *direction[:, 1])]
        ds.ImagePositionPatient = [f"{v:.6f}" for v in origin + k * spacing[2] * direction[:, 2]]
        ds.SamplesPerPixel, ds.PhotometricInterpretation = 1, "MONOCHROME2"
        ds.Rows, ds.Columns = int(pixels.shape[1]), int(pixels.shape[2])
        ds.BitsAllocated, ds.BitsStored, ds.HighBit, ds.PixelRepresentation = 16, 16, 15, 1
        ds.ScanningSequence, ds.SequenceVariant, ds.ScanOptions = "RM", "NONE", ""
        ds.MRAcquisitionType, ds.RepetitionTime, ds.EchoTime, ds.EchoTrainLength = "3D", "", "", ""
        ds.PixelData = pixels[k].tobytes()
        path = folder / f"{k + 1:05d}.dcm"
        ds.save_as(path, enforce_file_format=True)
        files.append(path)
    return files
