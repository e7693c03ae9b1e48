"""The one-page patient report as an Encapsulated PDF instance.

highdicom (0.28) has no Encapsulated Document class; its ``SOPClass`` base gives the patient, study, series,
equipment and SOP common modules from the source, and the Encapsulated Document module is set here with
pydicom (the PDF bytes, MIME type, title, references to the source series, the SEG and the SR).
"""

from __future__ import annotations

import datetime as dt
from pathlib import Path
from typing import Sequence

import highdicom as hd
import pydicom
from pydicom.uid import EncapsulatedPDFStorage, ExplicitVRLittleEndian, generate_uid

from MedGradeCoreLib import __version__
from MedGradeCoreLib.dicom_out.references import SourceSeries, patient_attributes
from MedGradeCoreLib.dicom_out.seg import MANUFACTURER
from MedGradeCoreLib.errors import InputError

TITLE = "MedGrade patient report"


def build_pdf(source: SourceSeries, pdf: str | Path, references: Sequence[pydicom.Dataset] = (),
              series_number: int = 902) -> hd.SOPClass:
    """An Encapsulated PDF of ``pdf`` in the source's study, referencing its series and ``references``."""
    data = Path(pdf).read_bytes()
    if not data.startswith(b"%PDF-"):
        raise InputError(pdf, "is not a PDF file")
    first = source.datasets[0]
    now = dt.datetime.now()
    ds = hd.SOPClass(study_instance_uid=source.study_uid, series_instance_uid=generate_uid(),
                     series_number=series_number, sop_instance_uid=generate_uid(),
                     sop_class_uid=EncapsulatedPDFStorage, instance_number=1, modality="DOC",
                     manufacturer=MANUFACTURER, transfer_syntax_uid=ExplicitVRLittleEndian,
                     software_versions=f"medgrade {__version__}", series_description=TITLE,
                     content_date=now.date(), content_time=now.time(), **patient_attributes(first))
    ds.ConversionType = "WSD"  # SC Equipment module: a workstation made it
    ds.AcquisitionDateTime = now.strftime("%Y%m%d%H%M%S")
    ds.BurnedInAnnotation = "YES"  # the report names the patient
    ds.DocumentTitle = TITLE
    ds.ConceptNameCodeSequence = []
    ds.MIMETypeOfEncapsulatedDocument = "application/pdf"
    ds.EncapsulatedDocument = data + (b"\0" if len(data) % 2 else b"")
    ds.EncapsulatedDocumentLength = len(data)
    items = []
    for ref in [first, *references]:
        item = pydicom.Dataset()
        item.ReferencedSOPClassUID, item.ReferencedSOPInstanceUID = ref.SOPClassUID, ref.SOPInstanceUID
        items.append(item)
    ds.SourceInstanceSequence = items
    return ds


def pdf_bytes(ds: pydicom.Dataset) -> bytes:
    """The PDF held by an Encapsulated PDF instance (without the padding byte)."""
    data = bytes(ds.EncapsulatedDocument)
    return data[: int(ds.get("EncapsulatedDocumentLength", len(data)))]
