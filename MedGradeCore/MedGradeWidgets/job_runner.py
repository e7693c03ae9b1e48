"""Background ``medgrade`` commands in Slicer: the presenters' :class:`MedGradeCoreLib.panel.JobRunner` polled by a
``qt.QTimer`` and shown with a progress bar, a status line, Cancel and error dialogs. Every job is cancelled
when Slicer quits (and ends itself if Slicer crashes: ``MedGradeCoreLib.jobs.watch_parent``)."""

from __future__ import annotations

import logging
import os
import shutil
import sys
from typing import Any, Callable

import qt
import slicer

from MedGradeCoreLib import jobs as core_jobs
from MedGradeCoreLib.panel import JobOutcome, JobView
from MedGradeCoreLib.panel import JobRunner as CoreJobRunner

try:  # Slicer's translation function (Slicer >= 5.4); identity elsewhere
    from slicer.i18n import tr as _
except ImportError:  # pragma: no cover - older Slicer is refused at start-up anyway
    def _(text: str) -> str:
        return text

from . import MODULE_DIR

_QUIT_HOOKED = []


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


def cancelAllOnQuit() -> None:
    """Once per Slicer session: every running MedGrade job is cancelled when the application quits."""
    if not _QUIT_HOOKED:
        slicer.app.connect("aboutToQuit()", lambda: core_jobs.cancel_all(wait=False))
        _QUIT_HOOKED.append(True)


def headlessRunner() -> CoreJobRunner:
    """A runner without widgets (self-tests: polled with :meth:`CoreJobRunner.wait` and ``processEvents``)."""
    return CoreJobRunner(pythonExecutable(), medgradeEnvironment)


def runUntilDone(args: list[str], timeout: float = 1800) -> JobOutcome:
    """Run ``medgrade <args>`` while Slicer keeps processing events (self-tests); raises with the reason."""
    runner = headlessRunner()
    runner.start(args, f"medgrade {args[0]}")
    outcome = runner.wait(timeout, idle=slicer.app.processEvents)
    if outcome.status != "done":
        raise RuntimeError(f"medgrade {args[0]} {outcome.status}: {outcome.message}\n{outcome.log[-5000:]}")
    return outcome


class _WidgetView(JobView):
    def __init__(self, owner: "JobRunner") -> None:
        self.o = owner

    def started(self, title: str, args: list[str]) -> None:
        o = self.o
        if o.logWidget is not None:
            o.logWidget.clear()
            o.logWidget.appendPlainText("medgrade " + " ".join(args))
        o.progressBar.value, o.progressBar.visible = 0, True
        o.statusLabel.text = _("{title}...").format(title=title)
        if o.cancelButton is not None:
            o.cancelButton.enabled = True
        for w in o.busyWidgets:
            w.enabled = False

    def progress(self, fraction: float, message: str) -> None:
        self.o.progressBar.value = int(round(100 * fraction))
        if message:
            self.o.statusLabel.text = f"{self.o.title}: {message}"

    def line(self, text: str) -> None:
        logging.info(f"MedGrade: {text}")
        if self.o.logWidget is not None:
            self.o.logWidget.appendPlainText(text)

    def finished(self, outcome: JobOutcome) -> None:
        o = self.o
        if outcome.status == "busy":
            slicer.util.errorDisplay(outcome.message)
            return
        o.timer.stop()
        o.progressBar.visible = False
        if o.cancelButton is not None:
            o.cancelButton.enabled = False
        for w in o.busyWidgets:
            w.enabled = True
        elapsed = f"{int(outcome.elapsed_s) // 60}:{int(outcome.elapsed_s) % 60:02d}"
        if outcome.status == "cancelled":
            o.statusLabel.text = _("{title}: cancelled after {time}").format(title=outcome.title, time=elapsed)
        elif outcome.status == "failed":
            o.statusLabel.text = _("{title} failed after {time}").format(title=outcome.title, time=elapsed)
            slicer.util.errorDisplay(_("{title} failed: {reason}").format(title=outcome.title, reason=outcome.message),
                                     detailedText=outcome.log[-20000:])
        else:
            done = _("{title}: done in {time}").format(title=outcome.title, time=elapsed)
            o.statusLabel.text = f"{done}. {outcome.message}" if outcome.message else done
        if o.onFinished is not None:
            o.onFinished(outcome)


class JobRunner(CoreJobRunner):
    """The presenters' job runner with a progress bar, status line, Cancel and an optional log and clock."""

    def __init__(self, progressBar: Any, statusLabel: Any, cancelButton: Any, busyWidgets: Any = (),
                 logWidget: Any = None, elapsedLabel: Any = None,
                 onFinished: Callable[[JobOutcome], None] | None = None) -> None:
        super().__init__(pythonExecutable(), medgradeEnvironment)
        self.progressBar, self.statusLabel, self.cancelButton = progressBar, statusLabel, cancelButton
        self.busyWidgets, self.logWidget, self.elapsedLabel = list(busyWidgets), logWidget, elapsedLabel
        self.onFinished = onFinished
        self.view = _WidgetView(self)
        self.timer = qt.QTimer()
        self.timer.setInterval(200)
        self.timer.connect("timeout()", self._tick)
        if cancelButton is not None:  # None: the panel cancels otherwise (Train: the run, not this command)
            self.cancelButton.connect("clicked()", self.onCancel)
        cancelAllOnQuit()

    def start(self, args: list[str], title: str, on_success: Callable[[Any], Any] | None = None) -> bool:
        started = super().start(args, title, on_success)
        if started:
            self.timer.start()
        return started

    def onCancel(self) -> None:
        if self.running:
            self.statusLabel.text = _("Cancelling {title}...").format(title=self.title)
            self.cancel()

    def _tick(self) -> None:
        if self.elapsedLabel is not None:
            seconds = int(self.elapsed())
            self.elapsedLabel.text = _("Elapsed: {time}").format(time=f"{seconds // 60}:{seconds % 60:02d}")
        self.poll()
