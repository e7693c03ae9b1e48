"""The training runner (MedGradeTrainLib.runner) on its test kind (slices of the real brain1 MR):
config files, patient-level splits, verified checkpoints, SIGKILL-and-resume to identical weights,
progress lines followed during a run."""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest
import torch

from MedGradeCoreLib.errors import InputError
from MedGradeTrainLib.runner import checkpoint as ckpt
from MedGradeTrainLib.runner.config import load_config
from MedGradeTrainLib.runner.kind import Patient
from MedGradeTrainLib.runner.progress_log import follow, read_progress
from MedGradeTrainLib.runner.splits import SplitLeakError, make_splits, read_split_file

REPO = Path(__file__).resolve().parents[1]
TOY = REPO / "configs" / "tiny-toy.yaml"


def test_config_files_yaml_and_json(tmp_path):
    cfg = load_config(TOY)
    assert cfg["kind"]["name"] == "toy-regression" and cfg["train"]["epochs"] == 2
    assert cfg["train"]["optimizer"]["lr"] == 1e-2  # the kind's default under the user's values
    assert cfg["split"]["seed"] == 0 and cfg["train"]["device"] == "auto"
    (tmp_path / "a.json").write_text(json.dumps({"kind": {"name": "toy-regression"}, "train": {"epohcs": 3}}))
    with pytest.raises(InputError, match="unknown setting.*'train': epohcs"):
        load_config(tmp_path / "a.json")
    (tmp_path / "b.json").write_text(json.dumps({"kind": {"name": "nope"}}))
    with pytest.raises(InputError, match="unknown model kind 'nope'"):
        load_config(tmp_path / "b.json")
    (tmp_path / "c.yaml").write_text("kind: [unclosed")
    with pytest.raises(InputError, match="not valid YAML"):
        load_config(tmp_path / "c.yaml")


def test_patient_level_stratified_splits_and_leaks(tmp_path):
    pts = [Patient(f"P{i:02d}", i % 2, "A" if i < 10 else "B", [f"P{i:02d}-a", f"P{i:02d}-b"]) for i in range(20)]
    pts.append(Patient("P00", 0, "A", ["P00-c"]))  # a second case of P00: one patient, one row
    s = make_splits(pts, "kfold", 4, seed=3)
    assert s == make_splits(pts, "kfold", 4, seed=3)  # fixed seed -> same split
    vals = [p for f in s["splits"] for p in f["val"]]
    assert sorted(vals) == sorted({p.patient_id for p in pts})  # each patient validated exactly once
    for f in s["splits"]:
        assert not set(f["train"]) & set(f["val"])
        assert sum(int(p[1:]) % 2 for p in f["val"]) in (2, 3)  # stratified: 5 patients, 2-3 positives
    h = make_splits(pts, "holdout", val_fraction=0.25, test_fraction=0.2, seed=0)
    assert len(h["test"]) == 4 and not set(h["test"]) & set(h["splits"][0]["train"] + h["splits"][0]["val"])
    bad = {"splits": [{"name": "fold0", "train": ["P01", "P02"], "val": ["P02", "P03"]}]}
    (tmp_path / "split.json").write_text(json.dumps(bad))
    with pytest.raises(SplitLeakError, match="patient 'P02' is in both fold0 train and fold0 validation"):
        read_split_file(tmp_path / "split.json")


def test_partial_or_corrupt_checkpoint_is_refused_and_previous_used(tmp_path):
    for step in (1, 2, 3):
        ckpt.save_verified({"step": step, "w": torch.full((3,), float(step))}, tmp_path / f"step-{step:09d}.pt")
    (tmp_path / "step-000000003.pt").write_bytes((tmp_path / "step-000000003.pt").read_bytes()[:-50])  # truncated
    (tmp_path / "step-000000002.pt.sha256").unlink()  # killed before its sha256 was written
    seen: list[str] = []
    state = ckpt.latest_valid(tmp_path, warn=seen.append)
    assert state["step"] == 1
    assert "step-000000003.pt: checkpoint is corrupt" in seen[0] and "using the previous checkpoint" in seen[0]
    assert "step-000000002.pt: checkpoint is partial" in seen[1]


def _medgrade(*args: str, **kw) -> subprocess.Popen:
    return subprocess.Popen([sys.executable, "-m", "MedGradeCoreLib.cli", *args], stdout=subprocess.DEVNULL,
                            stderr=subprocess.PIPE, text=True, **kw)


def _wait_until_unlocked(run: Path, hang_s: float = 120.0) -> None:
    """The killed command's forked worker (which holds the run folder's lock) dies with its parent, a moment
    later: wait for the lock to be free before resuming (a generous hang time-out, not a timing claim)."""
    from MedGradeCoreLib.errors import InputError
    from MedGradeCoreLib.outputs import OutputLock

    deadline = time.monotonic() + hang_s
    while True:
        try:
            with OutputLock(run):
                return
        except InputError:
            if time.monotonic() > deadline:
                raise
            time.sleep(0.05)


def kill_resume_and_compare(cfg: dict, tmp_path: Path, kill_at: int) -> list[dict]:
    """Train ``cfg`` in a child process, SIGKILL it once the progress file shows optimizer step ``kill_at``
    (mid-epoch), resume it with ``medgrade resume``, train the same config uninterrupted, and check every
    split ends with the same weights; returns the killed run's progress records."""
    from MedGradeCoreLib.cli import main
    from MedGradeTrainLib.runner.loop import run_training

    cfg = json.loads(json.dumps(cfg))
    cfg["train"]["checkpoint_every_steps"] = 1
    (tmp_path / "cfg.json").write_text(json.dumps(cfg))
    run = tmp_path / "killed"
    proc = _medgrade("train", "--config", str(tmp_path / "cfg.json"), "--output", str(run))
    seen: list[dict] = []
    for rec in follow(run, poll_s=0.01, stop=lambda: proc.poll() is not None):
        seen.append(rec)
        b, n = map(int, re.search(r"step (\d+)/(\d+)", rec.get("message", "")).groups()) if \
            rec["event"] == "step" else (0, 0)
        if rec["event"] == "step" and rec["step"] >= kill_at and b < n:  # mid-epoch, once its checkpoint is on disk
            sha = run / "splits" / rec["split"] / "checkpoints" / f"step-{rec['step']:09d}.pt.sha256"
            while not sha.is_file() and proc.poll() is None:
                time.sleep(0.002)
            os.kill(proc.pid, signal.SIGKILL)
            break
    proc.wait()
    assert proc.returncode == -signal.SIGKILL, proc.stderr.read()
    _wait_until_unlocked(run)
    assert not (run / "summary.json").exists() and seen[-1]["event"] == "step"
    steps_seen = [r["step"] for r in seen if r["event"] == "step"]
    assert steps_seen == list(range(1, len(steps_seen) + 1))  # followed live: monotonic, none skipped
    assert main(["resume", str(run)]) == 0
    run_training(cfg, tmp_path / "clean", stdout=None)
    splits = sorted(p.name for p in (tmp_path / "clean" / "splits").iterdir())
    for split in splits:
        a = ckpt.load_verified(run / "splits" / split / "final.pt")["model"]
        b = ckpt.load_verified(tmp_path / "clean" / "splits" / split / "final.pt")["model"]
        assert a.keys() == b.keys()
        for k in a:
            torch.testing.assert_close(a[k], b[k], rtol=1e-5, atol=1e-6, msg=f"{split} {k}")
    recs = read_progress(run)
    assert [r["seq"] for r in recs] == list(range(len(recs)))  # no line repeated, none lost
    steps = [r["step"] for r in recs if r["event"] == "step"]
    assert steps == list(range(1, len(steps) + 1))  # every optimizer step once, in order, across the resume
    assert steps == [r["step"] for r in read_progress(tmp_path / "clean") if r["event"] == "step"]
    resumed = [r for r in recs if r["event"] == "resume"]
    assert resumed and resumed[0]["batch"] > 0 and recs[-1]["event"] == "done"  # resumed mid-epoch
    for r in recs:
        if r["event"] == "step":
            assert {"run_id", "split", "epoch", "step", "loss", "metric", "lr", "eta_s", "gpu_mem_mb"} <= set(r)
    for split in splits:  # one metrics row per epoch, none repeated by the resume
        rows = (run / "splits" / split / "metrics.csv").read_text().splitlines()
        assert rows[0].startswith("epoch,train_loss") and [r.split(",")[0] for r in rows[1:]] == \
            [str(e) for e in range(1, len(rows))]
    assert json.loads((run / "run.json").read_text())["status"] == "done"
    return recs


def test_schedule_accumulation_and_early_stopping(tmp_path):
    """Per-step OneCycleLR from torch, 2-batch gradient accumulation (half the optimizer steps), and early
    stopping on the validation metric when it cannot improve (learning rate 0)."""
    from MedGradeTrainLib.runner.loop import run_training

    cfg = load_config(TOY)
    cfg["split"] = {**cfg["split"], "mode": "holdout", "val_fraction": 0.3}
    cfg["final_fit"] = False
    cfg["train"].update(epochs=3, accumulate=2, checkpoint_every_steps=0,
                        scheduler={"name": "OneCycleLR", "interval": "step"})
    res = run_training(cfg, tmp_path / "sched", stdout=None)
    steps = [r for r in read_progress(tmp_path / "sched") if r["event"] == "step"]
    batches = json.loads((tmp_path / "sched" / "splits" / "holdout" / "metrics.jsonl").read_text().splitlines()[0])
    per_epoch = -(-batches["samples"] // 4 // 2)  # ceil(batches / accumulate); batch size 4
    assert len(steps) == 3 * per_epoch
    opt = torch.optim.AdamW([torch.zeros(1, requires_grad=True)], lr=1e-2)
    ref = torch.optim.lr_scheduler.OneCycleLR(opt, max_lr=1e-2, total_steps=3 * per_epoch)
    expected = []
    for _ in steps:
        opt.step()
        ref.step()
        expected.append(opt.param_groups[0]["lr"])
    assert [r["lr"] for r in steps] == pytest.approx(expected)
    assert res.summary["splits"][0]["epochs_run"] == 3

    cfg["train"].update(epochs=6, accumulate=1, scheduler=None, optimizer={"name": "SGD", "lr": 0.0},
                        early_stopping={"patience": 2})
    res = run_training(cfg, tmp_path / "stop", stdout=None)
    split = res.summary["splits"][0]
    assert split["stopped_early"] and split["epochs_run"] == 3 and split["best_epoch"] == 1
    assert any(r["event"] == "early_stop" for r in read_progress(tmp_path / "stop"))
