"""What the three panels' presenters share, without Qt: the background-job runner they are given
(:class:`~MedGradeCoreLib.panel.job_runner.JobRunner`) and the enabled-state record they return."""

from MedGradeCoreLib.panel.job_runner import JobOutcome, JobRunner, JobView
from MedGradeCoreLib.panel.state import Action, path_text

__all__ = ["Action", "JobOutcome", "JobRunner", "JobView", "path_text"]
