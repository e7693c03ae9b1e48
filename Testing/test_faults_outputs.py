"""Inputs never lost, outputs never half-true (issue 10, items 5-8), with hostile situations built on the fly:
an output folder around an input, two runs into one output, a full disk, Ctrl-C / SIGTERM inside ITK."""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import SimpleITK as sitk

from MedGradeCoreLib.errors import InputError, MedGradeError
from MedGradeCoreLib.cli import main

LIBS = Path(__file__).resolve().parents[1]
ENV = dict(os.environ, PYTHONPATH=os.pathsep.join(str(LIBS / m) for m in
                                                   ("MedGradeSegment", "MedGradePredict", "MedGradeTrain")))


@pytest.fixture
def raw_case(sample, tmp_path) -> Path:
    """A lab's only copy of a raw case: tmp/raw/case1/t1c.nrrd (real brain MR with skull)."""
    case = tmp_path / "raw" / "case1"
    case.mkdir(parents=True)
    shutil.copy(sample("brain-mr/brain1_image.nrrd"), case / "t1c.nrrd")
    return case


def _tree(folder: Path) -> dict[str, bytes]:
    return {str(p.relative_to(folder)): p.read_bytes() for p in sorted(folder.rglob("*")) if p.is_file()}


# --- 5. an output that is, contains or lies inside an input is refused before any work -----------------------

@pytest.mark.parametrize("where", ["parent", "same", "inside"])
def test_preprocess_output_around_an_input_is_refused_before_work(raw_case, capsys, monkeypatch, where):
    import MedGradeSegmentLib.preprocess as pre

    monkeypatch.setattr(pre, "preprocess_case", lambda *a, **k: pytest.fail("work started"))
    before = _tree(raw_case.parent)
    output = {"parent": raw_case.parent, "same": raw_case, "inside": raw_case / "pre"}[where]
    assert main(["preprocess", str(raw_case), "--output", str(output)]) == 2
    err = capsys.readouterr().err
    assert "error:" in err and {"parent": "contains the input", "same": "is the input",
                                "inside": "lies inside the input"}[where] in err
    assert _tree(raw_case.parent) == before  # the raw image is untouched, nothing added


def test_segment_and_predict_refuse_an_output_around_the_case(raw_case, capsys):
    assert main(["segment", str(raw_case), "--output", str(raw_case.parent)]) == 2
    assert "contains the input" in capsys.readouterr().err
    assert main(["predict", str(raw_case), "--model", "x", "--output", str(raw_case)]) == 2
    assert "is the input" in capsys.readouterr().err


def test_preprocess_never_replaces_a_folder_it_did_not_write(raw_case, tmp_path, capsys):
    out = tmp_path / "out"
    theirs = out / "case1"
    theirs.mkdir(parents=True)
    (theirs / "notes.txt").write_text("someone's work")
    assert main(["preprocess", str(raw_case), "--output", str(out), "--no-skull-strip", "--spacing", "3",
                 "--slices", "3"]) == 1
    assert "not written by medgrade" in capsys.readouterr().err
    assert (theirs / "notes.txt").read_text() == "someone's work"


# --- 6. one writer per output case: "in use by process N", never success for a result not in place ----------

def _hold_lock(target: Path) -> subprocess.Popen:
    code = ("import sys, time\nfrom MedGradeCoreLib.outputs import OutputLock\n"
            "with OutputLock(sys.argv[1]):\n    print('held', flush=True)\n    time.sleep(60)\n")
    proc = subprocess.Popen([sys.executable, "-c", code, str(target)], stdout=subprocess.PIPE, text=True, env=ENV)
    assert proc.stdout is not None and proc.stdout.readline().strip() == "held"
    return proc


def test_second_run_into_the_same_output_case_is_refused(raw_case, tmp_path, capsys):
    out = tmp_path / "out"
    other = _hold_lock(out / "case1")  # another medgrade process is writing out/case1
    try:
        code = main(["preprocess", str(raw_case), "--output", str(out), "--no-skull-strip", "--spacing", "3",
                     "--slices", "3"])
        err = capsys.readouterr()
        assert code == 1 and f"in use by process {other.pid}" in err.err and "written" not in err.out
        assert not (out / "case1").exists()
        seg = tmp_path / "seg"
        seg_holder = _hold_lock(seg)
        try:
            assert main(["segment", str(raw_case), "--output", str(seg)]) == 2
            assert f"in use by process {seg_holder.pid}" in capsys.readouterr().err
        finally:
            seg_holder.kill()
            seg_holder.wait()
    finally:
        other.kill()
        other.wait()
    # the holder is gone (killed, not cleaned up): its lock died with it and the run goes through
    assert main(["preprocess", str(raw_case), "--output", str(out), "--no-skull-strip", "--spacing", "3",
                 "--slices", "3"]) == 0
    assert "written" in capsys.readouterr().out and (out / "case1" / "case.json").is_file()
    assert sorted(p.name for p in out.iterdir()) == ["case1"]  # no .old, .partial or lock left


def test_success_is_never_reported_for_a_result_that_is_not_in_place(tmp_path, monkeypatch):
    from MedGradeCoreLib import outputs

    monkeypatch.setattr(outputs, "_commit", lambda *a: None)  # a rename that silently did nothing
    with pytest.raises(MedGradeError, match="the result is not in place after writing; it was not saved"):
        with outputs.staged_folder(tmp_path / "result") as tmp:
            (tmp / "x.txt").write_text("x")


# --- 7. a full disk: nothing truncated is left, and later commands give a clear error ------------------------

_FULL_DISK = """
import resource, signal, sys
import SimpleITK as sitk
from MedGradeCoreLib.errors import MedGradeError
from MedGradeSegmentLib.segmentation.infer import SegmentationResult
from MedGradeSegmentLib.segmentation.segment_case import write_result
image = sitk.ReadImage(sys.argv[1])
mask = sitk.Cast(sitk.ReadImage(sys.argv[2]) > 0, sitk.sitkUInt8)
result = SegmentationResult(mask=mask, probability=sitk.Cast(image, sitk.sitkFloat32), info={"volume_ml": 1.0})
signal.signal(signal.SIGXFSZ, signal.SIG_IGN)
resource.setrlimit(resource.RLIMIT_FSIZE, (20000, 20000))  # every file stops at 20 kB: a full disk
try:
    write_result(result, sys.argv[3])
except MedGradeError as exc:
    print("error:", exc)
    sys.exit(2)
"""


@pytest.mark.skipif(sys.platform == "win32", reason="RLIMIT_FSIZE is POSIX")
def test_segment_output_on_a_full_disk_leaves_no_truncated_files(sample, tmp_path, capsys):
    case = tmp_path / "case"
    (case / "segmentation").mkdir(parents=True)
    proc = subprocess.run([sys.executable, "-c", _FULL_DISK, str(sample("brain-mr/brain1_image.nrrd")),
                           str(sample("brain-mr/brain1_label.nrrd")), str(case / "segmentation")],
                          capture_output=True, text=True, env=ENV, timeout=120)
    assert proc.returncode == 2, proc.stderr[-2000:]
    assert "cannot write the output" in proc.stdout
    assert list((case / "segmentation").iterdir()) == [] and [p.name for p in case.iterdir()] == ["segmentation"]
    # what the old behaviour left behind (truncated files) now gives save-correction a clear error
    good = sample("brain-mr/brain1_label.nrrd")
    (case / "segmentation" / "lesion_mask.nii.gz").write_bytes(b"\x1f\x8b\x08\x00" + b"\x00" * 40)
    (case / "segmentation" / "segmentation.json").write_text('{"model_id": "x", "vol')
    assert main(["save-correction", str(case), str(good), "--user", "ann"]) == 2
    err = capsys.readouterr().err
    assert "segmentation.json" in err and "unreadable" in err and "Traceback" not in err
    (case / "segmentation" / "segmentation.json").write_text('{"model_id": "x"}')
    assert main(["save-correction", str(case), str(good), "--user", "ann"]) == 2
    assert "lesion_mask.nii.gz" in capsys.readouterr().err
    assert not (case / "corrections").exists() or not any((case / "corrections").iterdir())


def _without_permission_override() -> None:
    """preexec_fn for root: drop CAP_DAC_OVERRIDE and CAP_DAC_READ_SEARCH from the bounding set (the command
    then execs without them), so file permissions hold for it as for any user."""
    import ctypes

    libc = ctypes.CDLL(None, use_errno=True)
    for cap in (1, 2):  # CAP_DAC_OVERRIDE, CAP_DAC_READ_SEARCH (linux/capability.h)
        if libc.prctl(24, cap, 0, 0, 0) != 0:  # PR_CAPBSET_DROP
            raise OSError(ctypes.get_errno(), "prctl(PR_CAPBSET_DROP)")


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="Linux capabilities")
def test_read_only_output_is_a_clear_error(raw_case, tmp_path):
    """A folder the user may not write to. Root ignores folder permissions, so as root the command runs
    without the capabilities that let it: the permission check is the kernel's either way, never skipped."""
    out = tmp_path / "ro"
    out.mkdir()
    out.chmod(0o555)  # read-only for everyone, its owner too
    try:
        proc = subprocess.run([sys.executable, "-m", "MedGradeCoreLib.cli", "preprocess", str(raw_case), "--output",
                               str(out), "--no-skull-strip"], capture_output=True, text=True, env=ENV, timeout=300,
                              preexec_fn=_without_permission_override if os.geteuid() == 0 else None)
        assert proc.returncode != 0, proc.stderr[-2000:]
        assert f"error: case1: {out}: cannot write there (Permission denied)" in proc.stderr, proc.stderr[-2000:]
        assert "Traceback" not in proc.stderr
        assert list(out.iterdir()) == [] and [p.name for p in raw_case.iterdir()] == ["t1c.nrrd"]
    finally:
        out.chmod(0o700)


def test_output_path_that_is_a_file_is_a_clear_error(raw_case, tmp_path, capsys):
    target = tmp_path / "seg.txt"
    target.write_text("x")
    assert main(["segment", str(raw_case), "--output", str(target)]) == 2
    assert "is a file, not a folder" in capsys.readouterr().err


# --- 8. SIGINT / SIGTERM stop a command promptly, even inside a long ITK call, clean up, exit non-zero -----

def _cpu_s(pid: int) -> float:
    """CPU seconds (user + system, all threads) a process has used so far."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


@pytest.mark.parametrize("sig", [signal.SIGINT, signal.SIGTERM])
@pytest.mark.parametrize("method", ["deepbet", "swiss"])  # torch inference; Swiss: atlas registration in ITK
@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="POSIX signals, reads /proc")
def test_signal_during_brain_extraction_stops_cleans_up_and_fails(raw_case, tmp_path, sig, method):
    out = tmp_path / "out"
    proc = subprocess.Popen([sys.executable, "-m", "MedGradeCoreLib.cli", "preprocess", str(raw_case), "--output",
                             str(out), "--progress-json", "--brain-extraction", method, "--brain-device", "cpu"],
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, env=ENV,
                            start_new_session=True)
    try:
        assert proc.stdout is not None
        lines = []
        for line in proc.stdout:  # until the brain mask stage starts
            lines.append(line)
            if "brain mask" in line:
                break
        [child] = Path(f"/proc/{proc.pid}/task/{proc.pid}/children").read_text().split()  # the command's process
        start = _cpu_s(int(child))
        # inside the extractor, however busy the machine: some CPU seconds of its work (Swiss: its silent
        # first phase, atlas alignment in ITK, takes ~16 CPU s on brain1)
        work = {"deepbet": 1.5, "swiss": 8.0}[method]
        for _ in range(6000):
            if _cpu_s(int(child)) - start >= work:
                break
            time.sleep(0.05)
        at_signal = _cpu_s(int(child))
        proc.send_signal(sig)
        after = 0.0  # the command's CPU seconds after the signal, read until it is gone (work, not wall time)
        for _ in range(2400):  # a 2-minute hang time-out, not a speed bound
            try:
                after = _cpu_s(int(child)) - at_signal
            except (FileNotFoundError, ProcessLookupError):
                break
            time.sleep(0.05)
        rest, _ = proc.communicate(timeout=120)
        # honoured at once, not when the ITK / torch call returns (the Swiss atlas registration: ~15 CPU s)
        assert after < 3.0, f"the command worked on for {after:.1f} CPU s after {signal.Signals(sig).name}"
        assert proc.returncode == 128 + sig, "".join(lines) + rest
        assert f"stopped by {signal.Signals(sig).name}" in rest and "written" not in rest
        assert '"registration"' not in rest, rest[-2000:]  # stopped inside the brain mask stage, not after it
        assert not out.exists() or list(out.iterdir()) == []  # no case folder, no partial, no lock
        assert [p.name for p in raw_case.iterdir()] == ["t1c.nrrd"]
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="reads /proc")
def test_the_command_process_dies_with_a_killed_medgrade(raw_case, tmp_path):
    """`medgrade` runs the command in a child process; SIGKILL of medgrade (a job runner's last resort)
    must not leave that child running on."""
    proc = subprocess.Popen([sys.executable, "-m", "MedGradeCoreLib.cli", "preprocess", str(raw_case), "--output",
                             str(tmp_path / "out"), "--progress-json"], stdout=subprocess.PIPE, text=True, env=ENV)
    assert proc.stdout is not None
    for line in proc.stdout:
        if "brain mask" in line:
            break
    children = Path(f"/proc/{proc.pid}/task/{proc.pid}/children").read_text().split()
    assert len(children) == 1
    proc.kill()
    proc.wait()
    deadline = time.monotonic() + 60  # a hang time-out: it normally goes within a second
    while time.monotonic() < deadline and _alive(int(children[0])):
        time.sleep(0.05)
    assert not _alive(int(children[0]))


def _alive(pid: int) -> bool:
    try:
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0] != "Z"  # a zombie is dead
    except (FileNotFoundError, ProcessLookupError):
        return False
