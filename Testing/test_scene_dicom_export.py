"""The Segment panel's "Export as DICOM SEG" (headless MRML): the edited segmentation of a DICOM-loaded volume
becomes a SEG on that volume's series, voxel for voxel, AUTOMATIC or the annotator's SEMIAUTOMATIC correction."""

from __future__ import annotations

import highdicom as hd
import numpy as np
import pydicom
import pytest
import SimpleITK as sitk

from dicom_helpers import LGG, lgg_case, write_lgg_study
from MedGradeCoreLib.dicom_out.references import load_source_series
from MedGradeCoreLib.dicom_out.seg import corrected_reference
from MedGradeCoreLib.errors import InputError

pytestmark = [pytest.mark.scene, pytest.mark.skipif(not LGG.is_dir(), reason="../shared/data not present")]


@pytest.fixture()
def dicom_volume(slicer_app, tmp_path):
    """A volume node as Slicer's DICOM loader leaves it (DICOM.instanceUIDs), its files, and a lesion segmentation."""
    from MedGradeCoreLib.scene import mask_to_segmentation_node, set_provenance
    from MedGradeCoreLib.scene.volumes import sitk_to_volume_node

    write_lgg_study(lgg_case(), tmp_path / "db", sequences=("t1c",))
    source = load_source_series(tmp_path / "db", "t1c")
    files = {str(ds.SOPInstanceUID): str(f) for ds, f in zip(source.datasets, sorted((tmp_path / "db" / "t1c").glob("*.dcm")))}
    volume = sitk_to_volume_node(slicer_app.scene, source.grid, "t1c")
    volume.SetAttribute("DICOM.instanceUIDs", " ".join(str(d.SOPInstanceUID) for d in source.datasets))
    mask = sitk.Cast(sitk.ReadImage(str(lgg_case() / "mask.nii.gz")) > 0, sitk.sitkUInt8)
    seg = mask_to_segmentation_node(slicer_app.scene, mask, "lesion", reference_node=volume)
    set_provenance(seg, "segment", model_id="mignet-lgg-flair-t1c-v1", weights_sha256="89" * 32)
    return volume, seg, source, files, mask


def test_export_writes_the_scene_segmentation_as_a_seg_on_the_volume_series(dicom_volume, tmp_path):
    from MedGradeSegmentLib.scene_dicom_export import export_seg_from_scene

    volume, seg_node, source, files, mask = dicom_volume
    ai_path = export_seg_from_scene(seg_node, volume, tmp_path / "out", files.get)
    seg = hd.seg.segread(ai_path)
    assert seg.SegmentSequence[0].SegmentAlgorithmType == "AUTOMATIC"
    assert seg.SegmentSequence[0].SegmentationAlgorithmIdentificationSequence[0].AlgorithmName == \
        "mignet-lgg-flair-t1c-v1"
    uids = [str(d.SOPInstanceUID) for d in source.datasets]
    frames = seg.get_pixels_by_source_instance(uids, segment_numbers=[1], ignore_spatial_locations=True)
    assert np.array_equal(frames[..., 0], sitk.GetArrayFromImage(mask))
    corrected = export_seg_from_scene(seg_node, volume, tmp_path / "out", files.get, annotator="Dr. Ana Müller",
                                      ai_seg=ai_path)
    back = pydicom.dcmread(corrected)
    assert corrected_reference(back) == seg.SOPInstanceUID and str(back.ContentCreatorName) == "Dr. Ana Müller"
    assert sorted(p.name for p in (tmp_path / "out").iterdir()) == sorted([ai_path.name, corrected.name])


def test_a_volume_not_from_the_dicom_database_is_refused(dicom_volume, tmp_path):
    from MedGradeSegmentLib.scene_dicom_export import export_seg_from_scene

    volume, seg_node, _, files, _ = dicom_volume
    volume.RemoveAttribute("DICOM.instanceUIDs")
    with pytest.raises(InputError, match="not loaded from the DICOM database"):
        export_seg_from_scene(seg_node, volume, tmp_path / "out", files.get)
    volume.SetAttribute("DICOM.instanceUIDs", "1.2.3.4")
    with pytest.raises(InputError, match="1 of its 1 DICOM instances are not in the database"):
        export_seg_from_scene(seg_node, volume, tmp_path / "out", files.get)


def test_the_panel_call_inserts_the_seg_into_the_dicom_database(dicom_volume, tmp_path):
    from MedGradeSegmentLib.scene_dicom_export import export_to_dicom_database

    _, seg_node, source, files, _ = dicom_volume

    class Database:  # the two ctkDICOMDatabase calls the panel uses; insert copies like the real one
        def __init__(self):
            self.stored: list[pydicom.Dataset] = []

        def fileForInstance(self, uid: str) -> str:
            return files.get(uid, "")

        def insert(self, path: str) -> None:
            self.stored.append(pydicom.dcmread(path))

    db = Database()
    uid = export_to_dicom_database(seg_node, db, annotator="A. Reader")
    [stored] = db.stored
    assert stored.SOPInstanceUID == uid and stored.StudyInstanceUID == source.study_uid
    assert stored.ReferencedSeriesSequence[0].SeriesInstanceUID == source.series_uid
