"""Background ``medgrade`` commands for the panels: environment, progress bar, status, Cancel, errors."""

from __future__ import annotations

import logging
import os
import shutil
import sys
import time
import traceback
from typing import Any, Callable

import qt
import slicer

from MedGradeCoreLib.jobs import BackgroundJob

try:  # Slicer's translation function (Slicer >= 5.4); identity elsewhere
    from slicer.i18n import tr as _
except ImportError:  # pragma: no cover - older Slicer is refused at start-up anyway
    def _(text: str) -> str:
        return text

from . import MODULE_DIR


def libraryRoot() -> str:
    """The model library Slicer uses: $MEDGRADE_MODELS, the ``MedGrade/ModelLibraryPath`` setting, else
    ``<Slicer settings folder>/MedGrade/models`` (kept across Slicer versions)."""
    root = os.environ.get("MEDGRADE_MODELS") or qt.QSettings().value("MedGrade/ModelLibraryPath") or os.path.join(
        os.path.dirname(slicer.app.slicerUserSettingsFilePath), "MedGrade", "models")
    os.environ["MEDGRADE_MODELS"] = root
    return root


def medgradeEnvironment() -> dict[str, str]:
    """Environment of the background processes: the core and every MedGrade Lib importable, the same library."""
    dirs = [str(MODULE_DIR)]
    for name in ("medgradesegment", "medgradepredict", "medgradetrain"):
        module = getattr(slicer.modules, name, None)
        if module is not None:
            dirs.append(os.path.dirname(module.path))
    paths = list(dict.fromkeys(dirs)) + [p for p in os.environ.get("PYTHONPATH", "").split(os.pathsep) if p]
    return {"PYTHONPATH": os.pathsep.join(paths), "MEDGRADE_MODELS": libraryRoot()}


def pythonExecutable() -> str:
    """Slicer's own Python launcher (so the child has Slicer's packages), else this interpreter."""
    return shutil.which("PythonSlicer") or sys.executable


def runSync(args: list[str], timeout: float = 1800) -> BackgroundJob:
    """Run ``medgrade <args>`` to completion (self-tests); raises with the command's reason on failure."""
    job = BackgroundJob(args, python=pythonExecutable(), env=medgradeEnvironment()).start()
    rc = job.wait(timeout)
    job.poll()
    if rc != 0:
        raise RuntimeError(f"medgrade {args[0]} failed: {job.error_message()}\n" + "\n".join(job.log))
    return job


class JobRunner:
    """Runs one ``medgrade`` command in the background: progress bar, status, Cancel, errors."""

    def __init__(self, progressBar: Any, statusLabel: Any, cancelButton: Any, busyWidgets: Any = (),
                 logWidget: Any = None, elapsedLabel: Any = None) -> None:
        self.progressBar, self.statusLabel, self.cancelButton = progressBar, statusLabel, cancelButton
        self.busyWidgets, self.logWidget, self.elapsedLabel = list(busyWidgets), logWidget, elapsedLabel
        self.started = 0.0
        self.job: BackgroundJob | None = None
        self._title, self._onSuccess = "", None
        self.timer = qt.QTimer()
        self.timer.setInterval(200)
        self.timer.connect("timeout()", self._poll)
        self.cancelButton.connect("clicked()", self.cancel)

    @property
    def running(self) -> bool:
        return self.job is not None and self.job.running

    def start(self, args: list[str], title: str, onSuccess: Callable[[], str | None]) -> None:
        """Run ``medgrade <args>`` in a background process and call ``onSuccess`` after."""
        if self.running:
            slicer.util.errorDisplay(_("{title} is still running; cancel it or wait.").format(title=self._title))
            return
        logging.info(f"MedGrade: medgrade {' '.join(args)}")
        self._title, self._onSuccess = title, onSuccess
        self.job = BackgroundJob(args, python=pythonExecutable(), env=medgradeEnvironment()).start()
        self.started = time.monotonic()
        if self.logWidget is not None:
            self.logWidget.clear()
            self.logWidget.appendPlainText("medgrade " + " ".join(args))
        self.progressBar.value = 0
        self.progressBar.visible = True
        self.statusLabel.text = _("{title}...").format(title=title)
        self.cancelButton.enabled = True
        for w in self.busyWidgets:
            w.enabled = False
        self.timer.start()

    def cancel(self) -> None:
        if self.running:
            self.statusLabel.text = _("Cancelling {title}...").format(title=self._title)
            self.job.cancel()  # the whole process tree (PythonSlicer starts the interpreter as a child)

    def elapsed(self) -> str:
        seconds = int(time.monotonic() - self.started)
        return f"{seconds // 60}:{seconds % 60:02d}"

    def _drain(self) -> None:
        for event in self.job.poll():
            if event.kind == "progress":
                self.progressBar.value = int(round(100 * event.fraction))
                if event.message:
                    self.statusLabel.text = f"{self._title}: {event.message}"
            else:
                logging.info(f"MedGrade: {event.message}")
                if self.logWidget is not None:
                    self.logWidget.appendPlainText(event.message)

    def _poll(self) -> None:
        self._drain()
        if self.elapsedLabel is not None:
            self.elapsedLabel.text = _("Elapsed: {time}").format(time=self.elapsed())
        if self.job.running:
            return
        self.timer.stop()
        self.job.wait(timeout=10)
        self._drain()
        self.cancelButton.enabled = False
        self.progressBar.visible = False
        for w in self.busyWidgets:
            w.enabled = True
        if self.job.cancelled:
            self.statusLabel.text = _("{title}: cancelled after {time}").format(title=self._title, time=self.elapsed())
            return
        if self.job.returncode != 0:
            fullLog = "\n".join(self.job.log)
            logging.error(f"MedGrade: {self._title} failed (exit {self.job.returncode}):\n{fullLog}")
            self.statusLabel.text = _("{title} failed after {time}").format(title=self._title, time=self.elapsed())
            slicer.util.errorDisplay(_("{title} failed: {reason}").format(title=self._title, reason=self.job.error_message()),
                                     detailedText=fullLog[-20000:])
            return
        try:
            summary = self._onSuccess()  # may return a one-line summary for the status line
            done = _("{title}: done in {time}").format(title=self._title, time=self.elapsed())
            self.statusLabel.text = f"{done}. {summary}" if isinstance(summary, str) and summary else done
        except Exception as exc:  # noqa: BLE001 - reason shown, traceback logged
            logging.error(traceback.format_exc())
            slicer.util.errorDisplay(_("{title}: the result could not be loaded: {reason}").format(title=self._title, reason=exc),
                                     detailedText=traceback.format_exc())
