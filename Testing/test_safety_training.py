"""Issue 18, items 8, 9, 13, 17, 23, 24, 25: training refuses what would make a run wrong or unsafe before the
run folder exists (config values, YAML alias bombs, unregistered kind modules), stops a diverged run, never
registers a non-finite bundle, keeps one trainer per run folder, refuses one-class training sets and says
what happens when every checkpoint is corrupt."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch

from MedGradeCoreLib.cli import main
from MedGradeCoreLib.errors import InputError, MedGradeError
from MedGradeTrainLib.kinds.toy import ToyRegression
from MedGradeTrainLib.runner import checkpoint as ckpt
from MedGradeTrainLib.runner.config import load_config, read_config_file
from MedGradeTrainLib.runner.kind import Patient, register_kind
from MedGradeTrainLib.runner.loop import run_training

BASE = {"kind": {"name": "toy-regression", "size": 8}, "seed": 0, "split": {"mode": "kfold", "folds": 2},
        "train": {"epochs": 1, "batch_size": 4, "max_steps_per_epoch": 2, "device": "cpu"}, "register": False}


def _cfg(tmp_path: Path, name: str = "c.json", **train) -> Path:
    cfg = json.loads(json.dumps(BASE))
    cfg["train"].update(train)
    path = tmp_path / name
    path.write_text(json.dumps(cfg))
    return path


BOMB = """kind: &k0 {name: toy-regression}
a: &a ["lol","lol","lol","lol","lol","lol","lol","lol","lol"]
b: &b [*a,*a,*a,*a,*a,*a,*a,*a,*a]
c: &c [*b,*b,*b,*b,*b,*b,*b,*b,*b]
d: &d [*c,*c,*c,*c,*c,*c,*c,*c,*c]
e: &e [*d,*d,*d,*d,*d,*d,*d,*d,*d]
f: &f [*e,*e,*e,*e,*e,*e,*e,*e,*e]
g: &g [*f,*f,*f,*f,*f,*f,*f,*f,*f]
"""


@pytest.mark.parametrize("where", ["kind", "train"])
def test_yaml_alias_bomb_is_refused_before_expanding(tmp_path, capsys, where):
    bomb = BOMB + ("kind: {name: toy-regression, x: *g}\n" if where == "kind" else "train: {epochs: *g}\n")
    path = tmp_path / "bomb.yaml"
    path.write_text(bomb.replace("kind: &k0 {name: toy-regression}\n", ""))
    with pytest.raises(InputError, match="YAML aliases"):
        read_config_file(path)
    assert main(["train", "--config", str(path), "--output", str(tmp_path / "run")]) == 2
    assert "aliases" in capsys.readouterr().err and not (tmp_path / "run").exists()


@pytest.mark.parametrize("key, value, message", [
    ("max_steps_per_epoch", -1, "train.max_steps_per_epoch must be a positive integer"),
    ("epochs", True, "train.epochs must be a positive integer"),
    ("optimizer", {"name": "AdamW", "lr": float("nan")}, "NaN is not a number"),
    ("optimizer", {"name": "AdamW", "lr": -1e-3}, "train.optimizer.lr"),
    ("optimizer", {"name": "AdamW", "lr": "fast"}, "train.optimizer.lr"),
    ("num_workers", -2, "train.num_workers must be a non-negative integer"),
    ("num_workers", "2", "train.num_workers"),
    ("device", "cuda:99", "train.device 'cuda:99'"),
    ("device", "gpu please", "train.device must be"),
    ("amp", "yes", "train.amp must be true or false"),
])
def test_bad_train_values_are_refused_before_the_run_folder_exists(tmp_path, capsys, key, value, message):
    cfg = json.loads(json.dumps(BASE))
    cfg["train"][key] = value
    path = tmp_path / "c.json"
    path.write_text(json.dumps(cfg, allow_nan=True))
    run = tmp_path / "run"
    assert main(["train", "--config", str(path), "--output", str(run)]) == 2
    assert message in capsys.readouterr().err
    assert not run.exists(), "a refused config left a run folder behind (it would block the retry)"


def test_yaml_infinite_lr_is_refused(tmp_path):
    path = tmp_path / "c.yaml"
    path.write_text("kind: toy-regression\ntrain: {optimizer: {name: SGD, lr: .inf}}\n")
    with pytest.raises(InputError, match="optimizer.lr must be a finite number"):
        load_config(path)


def test_kind_module_cannot_import_an_unregistered_module(tmp_path, monkeypatch):
    marker = tmp_path / "ran.txt"
    (tmp_path / "evil_kind_plugin.py").write_text(f"open({str(marker)!r}, 'w').write('code ran')\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    for kind in ({"name": "evil", "module": "evil_kind_plugin"},
                 {"name": "toy-regression", "module": "evil_kind_plugin"},
                 {"name": "toy-regression", "module": "os"}):
        path = tmp_path / "c.json"
        path.write_text(json.dumps({**BASE, "kind": kind}))
        with pytest.raises(InputError, match="registered"):
            load_config(path)
        assert main(["train", "--config", str(path), "--output", str(tmp_path / "run")]) == 2
    assert not marker.exists(), "a config file made MedGrade import and run a module"
    path.write_text(json.dumps({**BASE, "kind": {"name": "toy-regression", "module": "MedGradeTrainLib.kinds.toy"}}))
    assert load_config(path)["kind"]["name"] == "toy-regression"  # the shipped module may be named


def test_diverged_training_stops_and_registers_nothing(tmp_path):
    cfg = json.loads(json.dumps(BASE))
    cfg["train"].update(optimizer={"name": "SGD", "lr": 1e18}, epochs=3, amp=False)
    cfg.update(register=True, models_root=str(tmp_path / "models"))
    with pytest.raises(MedGradeError, match="training diverged"):
        run_training(cfg, tmp_path / "run")
    assert json.loads((tmp_path / "run" / "run.json").read_text())["status"] == "failed"
    assert not (tmp_path / "models").exists() or not any((tmp_path / "models").rglob("manifest.json"))


@register_kind
class _PoisonedToy(ToyRegression):
    """A finite loss, then NaN weights: the bundle writer must never see them."""

    name = "test-poisoned-toy"

    def training_step(self, model, batch, device):
        terms = super().training_step(model, batch, device)
        with torch.no_grad():
            model[-1].bias.fill_(float("nan"))
        return terms


def test_bundle_with_non_finite_weights_is_never_registered(tmp_path):
    cfg = json.loads(json.dumps(BASE))
    cfg["kind"]["name"] = "test-poisoned-toy"
    cfg["train"].update(max_steps_per_epoch=1)
    cfg.update(register=True, models_root=str(tmp_path / "models"), split={"mode": "none"})
    with pytest.raises(MedGradeError, match="non-finite weights"):
        run_training(cfg, tmp_path / "run")
    assert not (tmp_path / "models").exists() or not any((tmp_path / "models").rglob("manifest.json"))


@register_kind
class _OneClassToy(ToyRegression):
    name = "test-one-class-toy"
    classifies = True

    def patients(self):
        return [Patient(p.patient_id, 1 if self.settings.get("one_class") else p.label, p.site, p.cases)
                for p in super().patients()]


def test_one_class_training_set_is_refused(tmp_path):
    cfg = json.loads(json.dumps(BASE))
    cfg["kind"].update(name="test-one-class-toy", one_class=True)
    with pytest.raises(InputError, match="1 class"):
        run_training(cfg, tmp_path / "run")


def test_fold_validated_on_one_class_is_reported_not_scored(tmp_path):
    kind = _OneClassToy({"size": 8}, tmp_path)
    pats = kind.patients()
    zeros = [p.patient_id for p in pats if p.label == 0]
    ones = [p.patient_id for p in pats if p.label == 1]
    assert len(zeros) >= 4 and len(ones) >= 4
    everyone = zeros + ones
    val0 = zeros[:3]  # fold0 validates on class 0 only
    val1 = zeros[3:5] + ones[:2]
    split = {"splits": [{"name": "fold0", "train": [p for p in everyone if p not in val0], "val": val0},
                        {"name": "fold1", "train": [p for p in everyone if p not in val1], "val": val1}], "test": []}
    (tmp_path / "split.json").write_text(json.dumps(split))
    cfg = json.loads(json.dumps(BASE))
    cfg["kind"]["name"] = "test-one-class-toy"
    cfg.update(split={"file": str(tmp_path / "split.json")}, final_fit=False)
    result = run_training(cfg, tmp_path / "run")
    assert list(result.summary["unscored_splits"]) == ["fold0"]
    fold1 = next(s for s in result.summary["splits"] if s["name"] == "fold1")
    assert result.summary["metric_mean"] == pytest.approx(fold1["best_metric"])


def test_every_corrupt_checkpoint_is_said_to_restart(tmp_path):
    for step in (1, 2):
        ckpt.save_verified({"step": step}, tmp_path / f"step-{step:09d}.pt")
        (tmp_path / f"step-{step:09d}.pt").write_bytes(b"garbage")
    seen: list[str] = []
    assert ckpt.latest_valid(tmp_path, warn=seen.append) is None
    assert "using the previous checkpoint" in seen[0]
    assert "using the previous checkpoint" not in seen[-1] and "starts again from its first step" in seen[-1]


def test_one_trainer_per_run_folder(tmp_path):
    cfg = json.loads(json.dumps(BASE))
    cfg["kind"]["delay_s"] = 0.5
    cfg["train"].update(epochs=20)
    path = tmp_path / "slow.json"
    path.write_text(json.dumps(cfg))
    run = tmp_path / "run"
    env = dict(os.environ)
    env.pop("MEDGRADE_IN_PROCESS", None)
    first = subprocess.Popen([sys.executable, "-m", "MedGradeCoreLib.cli", "train", "--config", str(path), "--output",
                              str(run)], stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True, env=env)
    try:
        deadline = time.time() + 60
        while time.time() < deadline and not any(run.glob("splits/*/checkpoints/step-*.pt")) and first.poll() is None:
            time.sleep(0.2)
        assert first.poll() is None, first.stderr.read() if first.stderr else ""
        job_before = (run / "job.json").read_text() if (run / "job.json").exists() else None
        for argv in (["train", "--config", str(path), "--output", str(run)], ["resume", str(run)],
                     ["resume", str(run), "--detach"]):
            out = subprocess.run([sys.executable, "-m", "MedGradeCoreLib.cli", *argv], capture_output=True,
                                 text=True, env=env, timeout=120)
            assert out.returncode == 2 and "in use by process" in out.stderr, out.stderr
        assert first.poll() is None, "a second trainer disturbed the first"
        assert ((run / "job.json").read_text() if (run / "job.json").exists() else None) == job_before
    finally:
        first.terminate()
        first.wait(60)


def test_resume_refuses_a_recorded_gpu_that_is_not_there(tmp_path, capsys):
    run = tmp_path / "run"
    run.mkdir()
    cfg = load_config(_cfg(tmp_path))
    cfg["train"]["device"] = "cuda:99"
    (run / "config.json").write_text(json.dumps(cfg))
    assert main(["resume", str(run)]) == 2
    assert "train.device 'cuda:99'" in capsys.readouterr().err
    assert sorted(p.name for p in run.iterdir()) == ["config.json"]
