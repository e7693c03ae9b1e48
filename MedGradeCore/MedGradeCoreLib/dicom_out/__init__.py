"""DICOM out: a result as DICOM Segmentation, TID 1500 Comprehensive 3D SR and Encapsulated PDF (highdicom,
pydicom), in the source study, referencing the source series (``references``)."""

from MedGradeCoreLib.dicom_out.seg import Algorithm
from MedGradeCoreLib.dicom_out.write import DicomResult, resolve_source, write_dicom

__all__ = ["Algorithm", "DicomResult", "resolve_source", "write_dicom"]
