"""Reading cases: NIfTI/NRRD/MHA files, BraTS folders, DICOM folders, the research client's slice layout, CSVs.

Every reader returns the one :class:`~MedGradeCoreLib.case.Case` type or raises
:class:`~MedGradeCoreLib.errors.InputError` naming the file or folder and the problem.
"""

from MedGradeCoreLib.io.brats import brats_layout
from MedGradeCoreLib.io.clinical_csv import ki67_level, read_clinical_csv, read_labels_csv, write_csv
from MedGradeCoreLib.io.dicom import SeriesInfo, find_dicom, is_dicom_folder, read_dicom_series, scan_dicom_folder
from MedGradeCoreLib.io.images import VOLUME_SUFFIXES, is_volume_file, read_image, validate_image
from MedGradeCoreLib.io.lgg_tcga import LggRecord, iter_lgg_cohort, load_lgg_case, read_lgg_cohort, sample_lgg_cohort
from MedGradeCoreLib.io.loader import find_images, iter_cohort, lesion_mask_on_grid, load_case, read_research_client_case
from MedGradeCoreLib.io.research_client import read_slice_folder, write_research_client_case

__all__ = [
    "VOLUME_SUFFIXES", "LggRecord", "SeriesInfo", "brats_layout", "find_dicom", "find_images", "is_dicom_folder",
    "is_volume_file", "iter_cohort", "iter_lgg_cohort", "load_lgg_case", "read_lgg_cohort",
    "sample_lgg_cohort", "ki67_level", "lesion_mask_on_grid", "load_case", "read_clinical_csv",
    "read_dicom_series", "read_image", "read_labels_csv", "read_research_client_case", "read_slice_folder",
    "scan_dicom_folder", "validate_image", "write_csv", "write_research_client_case",
]

