"""Round trip through a real PACS: Orthanc (Debian packages) on free localhost ports, a TCGA-LGG case written as a
DICOM MR study and the real sagittal MPRAGE series uploaded; ``medgrade pacs`` pulls by StudyInstanceUID (DICOMweb),
runs the cascade and pushes SEG + SR + PDF; what arrived is read back and checked against the NIfTI outputs. The
DIMSE path (C-FIND / C-GET / C-STORE) runs against the same server. Skipped, with the reason, where Orthanc cannot
start."""

from __future__ import annotations

import json
import socket
from pathlib import Path

import highdicom as hd
import numpy as np
import pydicom
import pytest
import SimpleITK as sitk

from dicom_helpers import LGG, MPRAGE, lgg_case, write_lgg_study
from orthanc_server import PASSWORD, USER, start_orthanc
from test_dicom_out import dciodvfy_errors
from MedGradeCoreLib.cli import main
from MedGradeCoreLib.dicom_out.pdf import pdf_bytes
from MedGradeCoreLib.dicom_out.references import load_source_series
from MedGradeCoreLib.dicom_out.sr import read_report
from MedGradeCoreLib.pacs import PacsError, connect, load_settings, pull_mr_study

pytestmark = pytest.mark.skipif(not MPRAGE.is_dir() or not LGG.is_dir(), reason="../shared/data not present")


@pytest.fixture(scope="module")
def orthanc(tmp_path_factory):
    server, why = start_orthanc(tmp_path_factory.mktemp("orthanc"))
    if server is None:
        print(f"SKIPPED: Orthanc cannot start here: {why}")
        pytest.skip(f"Orthanc cannot start: {why}")
    yield server
    server.stop()


@pytest.fixture(scope="module")
def studies(orthanc, tmp_path_factory):
    """{"lgg": (study uid, local folder), "mprage": (...)} uploaded to Orthanc."""
    lgg = tmp_path_factory.mktemp("lgg_study")
    uid = write_lgg_study(lgg_case(), lgg)
    orthanc.upload(sorted(lgg.rglob("*.dcm")))
    orthanc.upload(sorted(MPRAGE.glob("*.dcm")))
    mprage_uid = str(pydicom.dcmread(next(MPRAGE.glob("*.dcm")), stop_before_pixels=True).StudyInstanceUID)
    return {"lgg": (uid, lgg), "mprage": (mprage_uid, MPRAGE)}


@pytest.fixture()
def pacs_env(orthanc, monkeypatch):
    env = {"MEDGRADE_PACS_URL": orthanc.dicomweb, "MEDGRADE_PACS_USER": USER, "MEDGRADE_PACS_PASSWORD": PASSWORD,
           "MEDGRADE_PACS_HOST": "127.0.0.1", "MEDGRADE_PACS_PORT": str(orthanc.dicom_port),
           "MEDGRADE_PACS_AET": "ORTHANC", "MEDGRADE_PACS_TIMEOUT": "30"}
    for k, v in env.items():
        monkeypatch.setenv(k, v)
    return env


def instances_of(orthanc, study: str) -> dict[str, list[pydicom.Dataset]]:
    """Every instance Orthanc holds for ``study``, read back over DICOMweb, by modality."""
    peer = connect(load_settings(env={"MEDGRADE_PACS_URL": orthanc.dicomweb, "MEDGRADE_PACS_USER": USER,
                                      "MEDGRADE_PACS_PASSWORD": PASSWORD}), "dicomweb")
    out: dict[str, list[pydicom.Dataset]] = {}
    for s in peer.series(study):
        out.setdefault(s["modality"], []).extend(peer.client.retrieve_series(study, s["uid"]))
    return out


@pytest.mark.slow
def test_pull_run_push_over_dicomweb_and_read_back(orthanc, studies, pacs_env, tmp_path, capsys):
    study, local = studies["lgg"]
    code = main(["pacs", study, "--output", str(tmp_path / "out"), "--device", "cpu", "--no-scene"])
    printed = capsys.readouterr()
    assert code == 0, printed.err[-3000:]
    summary = json.loads(printed.out.strip().splitlines()[-1])
    case = Path(summary["folder"])
    held = instances_of(orthanc, study)
    [seg], [sr], [doc] = held["SEG"], held["SR"], held["DOC"]
    assert len(held["MR"]) == 2 * sitk.ReadImage(str(lgg_case() / "t1c.nii.gz")).GetSize()[2]
    # the SEG: parses with highdicom, references the t1c series and its instances, frames = the NIfTI mask mapped
    seg = hd.seg.Segmentation.from_dataset(seg)
    source = load_source_series(local, "t1c")
    [ref] = seg.ReferencedSeriesSequence
    assert ref.SeriesInstanceUID == source.series_uid
    assert {i.ReferencedSOPInstanceUID for i in ref.ReferencedInstanceSequence} == {d.SOPInstanceUID for d in
                                                                                     source.datasets}
    mask = sitk.ReadImage(str(case / "segmentation" / "lesion_mask.nii.gz"))
    brain = sitk.ReadImage(str(case / "preprocessed" / "brain_mask.nii.gz"))
    uids = [str(d.SOPInstanceUID) for d in source.datasets]
    frames = seg.get_pixels_by_source_instance(uids, segment_numbers=[1, 2], ignore_spatial_locations=True)
    assert frames[..., 0].any() and np.array_equal(frames[..., 0], source.frames(mask))
    assert np.array_equal(frames[..., 1], source.frames(sitk.Cast(brain != 0, sitk.sitkUInt8)))
    assert seg.PatientID == source.datasets[0].PatientID and seg.StudyInstanceUID == study
    # the SR states predictions.json's numbers and references this SEG; the PDF is the report
    stated = read_report(sr)
    predictions = [json.loads(p.read_text())["results"][0] for p in (case / "grading").glob("*/predictions.json")]
    assert predictions and len(stated["grades"]) == len(predictions)
    for p in predictions:
        got = stated["grades"][p["model_id"]]
        assert got["probability"] == p["probability"] and got["fusion"] == p["fusion"]
        assert got["level"].startswith(p["predicted_level"]) and got["seg_uid"] == seg.SOPInstanceUID
    seg_json = json.loads((case / "segmentation" / "segmentation.json").read_text())
    assert stated["volume_ml"] == seg_json["volume_ml"]
    assert pdf_bytes(doc) == (case / "report.pdf").read_bytes()
    for name in ("seg.dcm", "sr.dcm", "report_pdf.dcm"):
        assert dciodvfy_errors(case / "dicom" / name) == [], name
    assert set(summary["seconds"]) == {"pull", "cascade", "push"} and len(summary["arrived"]) == 3

    # all three or nothing: with the PDF gone (its stage still up to date), nothing is pushed
    (case / "dicom" / "report_pdf.dcm").unlink()
    code = main(["pacs", study, "--output", str(tmp_path / "out"), "--device", "cpu", "--no-scene"])
    err = capsys.readouterr().err
    assert code == 2 and "nothing pushed: PDF not built" in err and "Traceback" not in err
    assert {k: len(v) for k, v in instances_of(orthanc, study).items()} == {k: len(v) for k, v in held.items()}


def test_dimse_find_get_and_store_against_the_same_orthanc(orthanc, studies, pacs_env, tmp_path):
    study, local = studies["mprage"]
    peer = connect(load_settings(), "dimse")
    [series] = peer.series(study)
    assert series["modality"] == "MR" and series["uid"] == load_source_series(local, "t1").series_uid
    files, notes = pull_mr_study(peer, study, tmp_path / "pulled")
    assert len(files) == len(list(MPRAGE.glob("*.dcm"))) and notes == []
    original = {str(d.SOPInstanceUID): d for d in (pydicom.dcmread(f) for f in MPRAGE.glob("*.dcm"))}
    for f in files[:5]:
        got = pydicom.dcmread(f)
        assert got.PixelData == original[str(got.SOPInstanceUID)].PixelData
    # a SEG on the pulled series, sent back by C-STORE, is found by C-FIND
    from test_dicom_out import SEGMENTER, ball, centroid_mm, preprocessed_like
    from MedGradeCoreLib.dicom_out.seg import build_segmentation

    source = load_source_series(tmp_path / "pulled", "t1")
    lesion = ball(preprocessed_like(source.grid), centroid_mm(source.grid > 100), 12.0)
    seg = build_segmentation(source, lesion, SEGMENTER)
    report = peer.store(study, [seg]).check()
    assert report.arrived == [f"SEG {seg.SOPInstanceUID}"]
    assert {s["modality"] for s in peer.series(study)} == {"MR", "SEG"}
    with pytest.raises(PacsError, match="has no MR series|not found"):
        pull_mr_study(peer, "1.2.3.4.5", tmp_path / "none")


def test_bad_studies_and_servers_give_one_line_errors(orthanc, studies, pacs_env, tmp_path, monkeypatch, capsys):
    lgg_uid, lgg = studies["lgg"]
    # a study holding no MR series (only a SEG of a series the PACS does not have)
    other = tmp_path / "other"
    write_lgg_study(lgg_case(), other, sequences=("t1c",))
    from test_dicom_out import SEGMENTER
    from MedGradeCoreLib.dicom_out.seg import build_segmentation

    source = load_source_series(other, "t1c")
    seg = build_segmentation(source, sitk.Cast(sitk.ReadImage(str(lgg_case() / "mask.nii.gz")) > 0, sitk.sitkUInt8),
                             SEGMENTER)
    seg.save_as(tmp_path / "seg.dcm")
    orthanc.upload([tmp_path / "seg.dcm"])
    # a study whose T1c series has one slice in another orientation (mixed geometry)
    mixed = tmp_path / "mixed"
    mixed_uid = write_lgg_study(lgg_case(), mixed)
    odd = sorted((mixed / "t1c").glob("*.dcm"))[5]
    ds = pydicom.dcmread(odd)
    ds.ImageOrientationPatient = [0, 1, 0, 0, 0, -1]
    ds.save_as(odd)
    orthanc.upload(sorted(mixed.rglob("*.dcm")))
    cases = [(["pacs", source.study_uid], f"study {source.study_uid}: has no MR series (it holds SEG"),
             (["pacs", mixed_uid], f"study {mixed_uid}: pulled, but not usable: series 't1c' (series 1): slices "
                                   "have different orientations"),
             (["pacs", "1.2.3.999"], "study 1.2.3.999: not found on this server"),
             (["pacs", "1.2.3.999", "--via", "dimse"], "ORTHANC@127.0.0.1")]
    for argv, expected in cases:
        assert main(argv + ["--output", str(tmp_path / "o")]) == 2
        err = capsys.readouterr().err
        assert expected in err and err.count("\n") == 1 and "Traceback" not in err, err
    # 4xx: a wrong password
    monkeypatch.setenv("MEDGRADE_PACS_PASSWORD", "wrong")
    assert main(["pacs", lgg_uid, "--output", str(tmp_path / "o")]) == 2
    assert "the server answered HTTP 401" in capsys.readouterr().err
    # a server that accepts the connection and never answers: the time-out, named
    silent = socket.socket()
    silent.bind(("127.0.0.1", 0))
    silent.listen(4)  # the kernel accepts; nobody reads or answers
    monkeypatch.setenv("MEDGRADE_PACS_URL", f"http://127.0.0.1:{silent.getsockname()[1]}/dicom-web")
    monkeypatch.setenv("MEDGRADE_PACS_TIMEOUT", "1")
    try:
        assert main(["pacs", lgg_uid, "--output", str(tmp_path / "o")]) == 2
        assert f"study {lgg_uid}: QIDO-RS search: no answer within 1 s" in capsys.readouterr().err
    finally:
        silent.close()
    assert not (tmp_path / "o").exists() or not any((tmp_path / "o").rglob("*.dcm"))


def test_a_refused_instance_is_reported_with_what_arrived(orthanc, studies, pacs_env, tmp_path):
    study, local = studies["lgg"]
    source = load_source_series(local, "t1c")
    from test_dicom_out import SEGMENTER
    from MedGradeCoreLib.dicom_out.seg import build_segmentation

    seg = build_segmentation(source, sitk.Cast(sitk.ReadImage(str(lgg_case() / "mask.nii.gz")) > 0, sitk.sitkUInt8),
                             SEGMENTER)
    foreign = pydicom.dcmread(next(MPRAGE.glob("*.dcm")))  # another study: STOW-RS to this study refuses it
    report = connect(load_settings(), "dicomweb").store(study, [seg, foreign])
    assert report.arrived == [f"SEG {seg.SOPInstanceUID}"] and report.refused[0].startswith(f"MR {foreign.SOPInstanceUID}")
    with pytest.raises(PacsError, match=f"partial push: arrived SEG {seg.SOPInstanceUID}; NOT stored MR"):
        report.check()


def test_settings_come_from_a_file_or_the_environment(tmp_path):
    f = tmp_path / "pacs.toml"
    f.write_text('[dicomweb]\nurl = "https://pacs.example.org/dicom-web"\nusername = "u"\npassword = "p"\n'
                 'timeout_s = 5\n[dimse]\nhost = "pacs"\nport = 104\ncalled_aet = "PACS"\n')
    f.chmod(0o644)
    s = load_settings(f, env={})
    assert (s.url, s.username, s.password, s.host, s.port, s.called_aet, s.timeout_s) == \
        ("https://pacs.example.org/dicom-web", "u", "p", "pacs", 104, "PACS", 5.0)
    assert "readable by other users" in s.warnings[0] and "p" not in repr(s).split("password")[0][-3:]
    s = load_settings(f, env={"MEDGRADE_PACS_PASSWORD": "q", "MEDGRADE_PACS_PORT": "11112"})
    assert s.password == "q" and s.port == 11112
    from MedGradeCoreLib.errors import InputError

    bad = tmp_path / "bad.toml"
    bad.write_text('[dicomweb]\nurl = "pacs.example.org"\n')
    with pytest.raises(InputError, match="must start with http"):
        load_settings(bad, env={})
    with pytest.raises(InputError, match="PACS settings file not found"):
        load_settings(tmp_path / "none.toml", env={})
