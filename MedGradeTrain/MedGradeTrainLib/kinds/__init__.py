"""Model kinds shipped with MedGrade, trained by :mod:`MedGradeTrainLib.runner` (imported on first use)."""
