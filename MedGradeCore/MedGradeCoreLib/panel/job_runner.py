"""One ``medgrade`` command at a time in the background, for a panel's presenter (no Qt).

The presenter calls :meth:`JobRunner.start` with what to do when the command succeeds; whoever owns the
clock calls :meth:`JobRunner.poll` (the widget's ``qt.QTimer``, a test's loop, a self-test's
``slicer.app.processEvents`` loop). Progress, log lines and the outcome go to a :class:`JobView` (the widget's
progress bar and status line; nothing headless). Cancel never waits: the tree is ended in the background.
"""

from __future__ import annotations

import logging
import time
import traceback
from dataclasses import dataclass
from typing import Any, Callable

from MedGradeCoreLib.jobs import BackgroundJob


@dataclass
class JobOutcome:
    title: str
    status: str  # done | failed | cancelled | busy
    message: str = ""  # done: the success callback's summary; failed: the one-line reason
    log: str = ""
    elapsed_s: float = 0.0


class JobView:
    """What a job shows while it runs (the widget overrides these; headless they do nothing)."""

    def started(self, title: str, args: list[str]) -> None: ...

    def progress(self, fraction: float, message: str) -> None: ...

    def line(self, text: str) -> None: ...

    def finished(self, outcome: JobOutcome) -> None: ...


class JobRunner:
    def __init__(self, python: str | None = None, env: Callable[[], dict[str, str]] | dict[str, str] | None = None,
                 view: JobView | None = None) -> None:
        self.python, self._env, self.view = python, env, view or JobView()
        self.job: BackgroundJob | None = None
        self.title = ""
        self.started = 0.0
        self.outcome: JobOutcome | None = None
        self._on_success: Callable[[BackgroundJob], Any] | None = None

    @property
    def running(self) -> bool:
        return self.job is not None and self.job.running

    @property
    def busy(self) -> bool:
        """A job started and not yet reported (its result may still be loading)."""
        return self.job is not None and self.outcome is None

    def start(self, args: list[str], title: str, on_success: Callable[[BackgroundJob], Any] | None = None) -> bool:
        """``medgrade ARGS`` in the background; ``on_success(job)`` runs on the poller's thread when it exits 0
        (its return value, a string, is the outcome's message). False (and a ``busy`` outcome) while another runs."""
        if self.busy:
            self.view.finished(JobOutcome(title, "busy", f"{self.title} is still running; cancel it or wait."))
            return False
        env = self._env() if callable(self._env) else self._env
        logging.info(f"MedGrade: medgrade {' '.join(args)}")
        self.title, self._on_success, self.outcome = title, on_success, None
        self.job = BackgroundJob(args, python=self.python, env=env).start()
        self.started = time.monotonic()
        self.view.started(title, list(args))
        return True

    def cancel(self) -> None:
        """End the running command's whole process tree, without waiting (the GUI thread never blocks)."""
        if self.running:
            self.job.cancel(wait=False)

    def elapsed(self) -> float:
        return time.monotonic() - self.started if self.job is not None else 0.0

    def poll(self) -> JobOutcome | None:
        """Forward new progress and log lines; when the command has ended, run the success callback once and
        return the outcome (None while it runs, or when nothing was started)."""
        if self.job is None or self.outcome is not None:
            return None
        self._drain()
        if self.job.running:
            return None
        self.job.wait(timeout=5)  # exited: only the reader thread's last lines remain
        self._drain()
        self.outcome = self._finish()
        self.view.finished(self.outcome)
        return self.outcome

    def wait(self, timeout: float = 3600.0, idle: Callable[[], None] | None = None,
             interval: float = 0.1) -> JobOutcome:
        """Poll until the command has ended (tests; self-tests pass ``idle=slicer.app.processEvents`` so that
        Slicer stays responsive). A command still running after ``timeout`` is cancelled."""
        deadline = time.monotonic() + timeout
        while True:
            outcome = self.poll()
            if outcome is not None:
                return outcome
            if self.job is None:
                raise RuntimeError("no job was started")
            if time.monotonic() > deadline:
                self.cancel()
            if idle is not None:
                idle()
            time.sleep(interval)

    def _drain(self) -> None:
        for event in self.job.poll():
            if event.kind == "progress" and event.fraction is not None:
                self.view.progress(event.fraction, event.message)
            else:
                self.view.line(event.message)

    def _finish(self) -> JobOutcome:
        job, log = self.job, "\n".join(self.job.log)
        if job.cancelled:
            return JobOutcome(self.title, "cancelled", "", log, self.elapsed())
        if job.returncode != 0:
            logging.error(f"MedGrade: {self.title} failed (exit {job.returncode}):\n{log}")
            return JobOutcome(self.title, "failed", job.error_message() or f"exit code {job.returncode}", log,
                              self.elapsed())
        try:
            summary = self._on_success(job) if self._on_success else None
        except Exception as exc:  # noqa: BLE001 - the reason is shown, the traceback logged
            logging.error(traceback.format_exc())
            return JobOutcome(self.title, "failed", f"the result could not be loaded: {exc}", log, self.elapsed())
        return JobOutcome(self.title, "done", summary if isinstance(summary, str) else "", log, self.elapsed())
