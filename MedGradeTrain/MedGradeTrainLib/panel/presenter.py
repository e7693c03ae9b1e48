"""The Train panel as a presenter: the run's config, which buttons are enabled for the run's state, starting,
resuming and cancelling through the job runner (never waiting on the GUI thread), and following the run's
progress file. A run's state lives in its folder; Slurm is asked for a run's state by a background
``medgrade jobs RUN --json``, never on the GUI thread. No Qt; the widget's timer calls :meth:`poll`.

``params`` is the module's parameter node in Slicer and a :class:`TrainParameters` headless (same fields);
``None`` (module left, scene closed) makes :meth:`poll` a no-op that asks the caller to stop its timer.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from MedGradeCoreLib.panel import Action, JobRunner, path_text

from .. import panel_support as ps
from ..job_record import read_job

ACTIVE = ("running", "pending", "starting", "queued")  # followed until the run leaves these
RESUMABLE = ("stopped", "cancelled", "failed")
SLURM_REFRESH_POLLS = 10  # with a 1 s timer: the scheduler is asked every 10 s, in the background


@dataclass
class TrainParameters:
    cohortFolder: Path | None = None
    labelsCsv: Path | None = None
    modelKind: str = "segmentation"
    configFile: Path | None = None
    epochs: int = 0
    batchSize: int = 0
    learningRate: float = 0.0
    folds: int = 0
    runFolder: Path | None = None
    launcher: str = "local"
    device: str = "auto"
    gpus: int = 0
    partition: str = ""


@dataclass
class PollResult:
    records: list[dict[str, Any]]
    status: str  # the run's status ("" without a run)
    keep_following: bool
    curves_changed: bool = False
    finished_bundle: bool = False  # a "done" record: the library has a new model


class TrainPresenter:
    def __init__(self, jobs: JobRunner, status_jobs: JobRunner, models_root: str | None = None,
                 params: Any = None) -> None:
        self.jobs, self.status_jobs, self.models_root, self.params = jobs, status_jobs, models_root, params
        self.reader: ps.ProgressReader | None = None
        self.followed = ""
        self._polls = 0
        self._scheduler: dict[str, Any] = {}  # the last `medgrade jobs RUN --json` answer for a Slurm run

    # --- state ---------------------------------------------------------------------------------------------
    def run_folder(self) -> str:
        return path_text(self.params.runFolder) if self.params is not None else ""

    def status(self) -> str:
        """The run's status from its folder; a Slurm run's from the last background answer of the scheduler."""
        from ..runs import run_state

        run = self.run_folder()
        if not run:
            return ""
        if read_job(run).get("launcher") == "slurm":
            if self._scheduler.get("run_dir") == str(Path(run)):
                return str(self._scheduler.get("status") or "pending")
            return "pending" if read_job(run).get("job_id") else "new"
        return run_state(run).status

    def actions(self) -> dict[str, Action]:
        p = self.params
        if p is None:
            return {k: Action(False) for k in ("start", "cancel", "resume")}
        status, busy = self.status(), self.jobs.busy
        return {
            "start": Action.when(not busy and bool(self.run_folder()) and bool(path_text(p.cohortFolder) or
                                                                               p.modelKind == "toy-regression")
                                 and status in ("", "new"),
                                 "Choose a cohort and a new run folder" if status in ("", "new") else
                                 f"the run folder holds a {status} run: resume it or choose another folder"),
            "cancel": Action.when(status in ACTIVE, "the run is not running"),
            "resume": Action.when(not busy and status in RESUMABLE, "only a stopped, cancelled or failed run resumes"),
        }

    # --- config and commands -------------------------------------------------------------------------------
    def write_config(self) -> str:
        p = self.params
        data = ps.effective_config(p.modelKind, path_text(p.configFile) or None, path_text(p.cohortFolder) or None,
                                   path_text(p.labelsCsv) or None, p.epochs, p.batchSize, p.learningRate, p.folds,
                                   "" if p.device == "auto" else p.device, self.models_root)
        return str(ps.write_requested(self.run_folder(), data))

    def start(self) -> bool:
        """Write the run's config and start ``medgrade train`` in the background (the run detaches itself)."""
        p = self.params
        args = ps.train_args(self.write_config(), self.run_folder(), p.launcher, p.gpus, p.partition)
        return self.jobs.start(args, "Starting the run", lambda job: self._launched(job))

    def resume(self) -> bool:
        p = self.params
        args = ps.resume_args(self.run_folder(), p.launcher, p.gpus, p.partition)
        return self.jobs.start(args, "Resuming the run", lambda job: self._launched(job))

    def cancel(self) -> bool:
        """``medgrade cancel RUN`` in the background (it may wait for the run to stop)."""
        return self.jobs.start(ps.cancel_args(self.run_folder()), "Cancelling the run",
                               lambda job: job.log[-1] if job.log else "cancelled")

    def _launched(self, job: Any) -> str:
        self.follow()
        return job.log[-1] if job.log else ""

    # --- following the run ---------------------------------------------------------------------------------
    def follow(self) -> bool:
        """Start following the run folder's progress file (also a run started before Slicer restarted)."""
        run = self.run_folder()
        if not run:
            return False
        self.reader, self.followed, self._polls, self._scheduler = ps.ProgressReader(run), run, 0, {}
        return True

    def poll(self) -> PollResult:
        """New progress records and whether to keep polling. Safe after the panel lost its parameter node or
        the run folder changed: then nothing is read and the caller stops its timer."""
        run = self.run_folder()
        if self.reader is None or not run or run != self.followed:
            self.reader = None
            return PollResult([], "", False)
        self._refresh_scheduler(run)
        records = self.reader.read()
        status = self.status()
        pending_launch = self.jobs.busy  # the start/resume command itself is still running
        return PollResult(records, status, status in ACTIVE or pending_launch,
                          any(r.get("event") in ("epoch", "done") for r in records),
                          any(r.get("event") == "done" for r in records))

    def _refresh_scheduler(self, run: str) -> None:
        """Every few polls a background ``medgrade jobs RUN --json`` for a Slurm run (squeue off the GUI thread)."""
        self.status_jobs.poll()
        if read_job(run).get("launcher") != "slurm" or self.status_jobs.busy:
            return
        self._polls += 1
        if self._polls % SLURM_REFRESH_POLLS == 1:
            self.status_jobs.start(["jobs", run, "--json"], "Asking Slurm", self._scheduler_answer)

    def _scheduler_answer(self, job: Any) -> str:
        for line in job.log:
            try:
                state = json.loads(line)
            except ValueError:
                continue
            if isinstance(state, dict) and "status" in state:
                self._scheduler = {"run_dir": str(Path(state.get("run_dir", ""))), "status": state["status"]}
        return ""

    def curves(self) -> dict[str, tuple[list[float], list[float]]]:
        """Loss and validation metric per epoch of every split, as plot series."""
        return {f"{split} {key}": xy for split, c in ps.curves(self.run_folder()).items() for key, xy in c.items()}

    def retrain_summary(self, model_in_use: str | None) -> str:
        return ps.retrain_summary(path_text(self.params.cohortFolder), model_in_use)

    def shutdown(self) -> None:
        """Leaving the panel: stop following; a start/cancel command still running is ended. The run itself
        is its own detached process and goes on."""
        self.reader = None
        self.jobs.cancel()
        self.status_jobs.cancel()
