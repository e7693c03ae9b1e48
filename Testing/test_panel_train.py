"""The Train panel's presenter headless, with real runs: every kind has an installed default config (issue 16
item 3), polling after the module was left or the scene closed is a no-op (item 4), start returns at once and
a queued run is followed, Slurm is never asked on the GUI thread (item 5), leaving ends the panel's commands
(item 6)."""

from __future__ import annotations

import json
import subprocess
import sys
import time
from pathlib import Path

import pytest

from MedGradeCoreLib.panel import JobRunner
from MedGradeTrainLib import panel_support as ps
from MedGradeTrainLib.job_record import write_job
from MedGradeTrainLib.panel.presenter import TrainParameters, TrainPresenter
from MedGradeTrainLib.runner.config import resolve_config

from test_panel_segment import wrapper_fields

REPO = Path(__file__).resolve().parents[1]


def _presenter(p: TrainParameters | None) -> TrainPresenter:
    return TrainPresenter(JobRunner(), JobRunner(), None, p)


def test_parameters_match_the_module_parameter_node():
    assert wrapper_fields(REPO / "MedGradeTrain" / "MedGradeTrain.py", "MedGradeTrainParameterNode") == \
        set(TrainParameters.__dataclass_fields__)


@pytest.mark.parametrize("kind", ps.PANEL_KINDS)
def test_every_kind_has_an_installed_default_config_the_runner_accepts(kind, tmp_path):
    path = ps.default_config(kind)
    assert path is not None and path.parent == ps.DEFAULT_CONFIGS and "configs" not in path.parents[1].name
    data = ps.effective_config(kind, None, tmp_path / "cohort", tmp_path / "labels.csv", epochs=3, folds=3)
    assert data["kind"]["name"] == kind and data["train"]["epochs"] == 3 and data["register"] is True
    cohort_key = ps.COHORT_KEYS[kind][0]
    if cohort_key:  # the panel's cohort lands where the kind reads it
        node = data["kind"]
        for name in cohort_key.split("."):
            node = node[name]
        assert str(tmp_path / "cohort") in (node if isinstance(node, list) else [node])
    resolve_config(data, f"default config of {kind}", tmp_path)  # the runner's own validation


def test_default_configs_are_package_data_and_cmake_resources():
    import tomllib

    data = tomllib.loads((REPO / "pyproject.toml").read_text())
    patterns = data["tool"]["setuptools"]["package-data"]["*"]
    assert "default_configs/*.json" in patterns
    cmake = (REPO / "MedGradeTrain" / "CMakeLists.txt").read_text()
    for path in ps.DEFAULT_CONFIGS.glob("*.json"):
        assert f"MedGradeTrainLib/default_configs/{path.name}" in cmake


def test_polling_after_leaving_the_module_or_closing_the_scene_is_a_no_op(tmp_path):
    p = TrainParameters(runFolder=tmp_path / "run")
    presenter = _presenter(p)
    assert presenter.follow()
    presenter.params = None  # what exit() / the scene's StartCloseEvent do
    result = presenter.poll()
    assert result.keep_following is False and result.records == []
    assert all(not a.enabled for a in presenter.actions().values())


def test_start_returns_at_once_and_the_run_is_followed_to_its_end(tmp_path):
    p = TrainParameters(modelKind="toy-regression", runFolder=tmp_path / "run", epochs=1, folds=2, device="cpu")
    presenter = _presenter(p)
    assert presenter.actions()["start"].enabled
    t0 = time.monotonic()
    assert presenter.start()
    assert time.monotonic() - t0 < 2.0, "start waited for the command"
    assert not presenter.actions()["start"].enabled
    outcome = presenter.jobs.wait(timeout=120)
    assert outcome.status == "done", outcome.message + outcome.log
    seen, deadline = [], time.monotonic() + 240
    while time.monotonic() < deadline:
        result = presenter.poll()
        seen += result.records
        if not result.keep_following:
            break
        time.sleep(0.5)
    assert result.status == "done", (result.status, seen[-3:])
    assert any(r.get("event") == "epoch" for r in seen) and presenter.curves()
    assert not presenter.actions()["cancel"].enabled and not presenter.actions()["resume"].enabled


def test_a_queued_run_is_followed_and_cancellable(tmp_path):
    run = tmp_path / "run"
    waiting = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"])  # a run waiting for a GPU
    try:
        write_job(run, {"launcher": "local", "status": "queued", "pid": waiting.pid})
        presenter = _presenter(TrainParameters(runFolder=run))
        presenter.follow()
        result = presenter.poll()
        assert result.status == "queued" and result.keep_following
        assert presenter.actions()["cancel"].enabled
    finally:
        waiting.kill()
        waiting.wait()


def test_slurm_state_is_asked_in_the_background(tmp_path, monkeypatch):
    from MedGradeTrainLib import slurm

    def on_the_gui_thread(*a, **k):
        raise AssertionError("squeue/scontrol called by the panel's poll")

    monkeypatch.setattr(slurm, "job_state", on_the_gui_thread)
    run = tmp_path / "run"
    write_job(run, {"launcher": "slurm", "job_id": "4242"})
    presenter = _presenter(TrainParameters(runFolder=run))
    presenter.follow()
    result = presenter.poll()
    assert result.status == "pending" and result.keep_following
    assert presenter.status_jobs.job.args == ["jobs", str(run), "--json"]
    presenter.status_jobs.wait(timeout=60)
    presenter._scheduler_answer(type("J", (), {"log": [json.dumps({"run_dir": str(run), "status": "running"})]}))
    assert presenter.poll().status == "running"


def test_leaving_the_panel_ends_its_commands(tmp_path):
    config = tmp_path / "long.json"
    config.write_text(json.dumps({"kind": {"name": "toy-regression", "size": 16}, "split": {"mode": "none"},
                                  "train": {"epochs": 100000, "batch_size": 4}, "register": False}))
    presenter = _presenter(TrainParameters(runFolder=tmp_path / "run"))
    presenter.follow()
    presenter.jobs.start(["train", "--config", str(config), "--output", str(tmp_path / "run")], "a long command")
    time.sleep(1.0)
    t0 = time.monotonic()
    presenter.shutdown()
    assert time.monotonic() - t0 < 0.5 and presenter.reader is None
    assert presenter.jobs.wait(timeout=30).status == "cancelled"


def test_a_torchrun_start_detaches_and_cancel_runs_in_the_background(tmp_path):
    from MedGradeTrainLib.job_record import read_job

    p = TrainParameters(modelKind="toy-regression", runFolder=tmp_path / "run", epochs=500, launcher="torchrun",
                        device="cpu")
    presenter = _presenter(p)
    assert presenter.start()
    outcome = presenter.jobs.wait(timeout=60)  # the launch command ends at once: the run is detached
    assert outcome.status == "done", outcome.message + outcome.log
    assert read_job(p.runFolder)["launcher"] == "torchrun" and outcome.elapsed_s < 30
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline and presenter.status() not in ("running",):
        time.sleep(0.5)
    assert presenter.status() == "running" and presenter.actions()["cancel"].enabled
    t0 = time.monotonic()
    assert presenter.cancel()
    assert time.monotonic() - t0 < 1.0  # `medgrade cancel` runs in the background
    assert presenter.jobs.wait(timeout=60).status == "done"
    assert presenter.status() in ("cancelled", "stopped") and presenter.actions()["resume"].enabled
