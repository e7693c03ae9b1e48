"""The one training runner of MedGrade: every model kind trains through :func:`run_training`.

``kind``: the contract a model kind implements; ``config``: run config files; ``splits``: patient-level
splits; ``checkpoint``: verified atomic checkpoints; ``distributed``: torchrun/DDP; ``progress_log``: the
JSON-lines progress protocol; ``loop``: the loop itself.
"""

__all__ = ["KINDS", "ModelKind", "Patient", "SplitData", "get_kind", "register_kind", "run_training", "RunResult"]


def __getattr__(name: str):  # torch is imported on first use, never when the package (or the panel) loads
    if name in ("run_training", "RunResult"):
        from . import loop

        return getattr(loop, name)
    if name in ("KINDS", "ModelKind", "Patient", "SplitData", "get_kind", "register_kind"):
        from . import kind

        return getattr(kind, name)
    raise AttributeError(name)
