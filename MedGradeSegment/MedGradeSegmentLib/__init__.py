"""MedGradeSegmentLib: images in -> preprocessed case and lesion mask out.

Preprocessing (brain extraction, registration, resampling, normalisation), the segmentation networks,
losses, training data and inference, and mask corrections. Plain Python (no Qt); the shared ground
(case, IO, scene layer, jobs, model library) is :mod:`MedGradeCoreLib`.
"""

from MedGradeCoreLib import __version__  # noqa: F401  (one version for the whole extension)
