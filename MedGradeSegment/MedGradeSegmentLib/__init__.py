"""MedGradeSegmentLib: images in -> preprocessed case and lesion mask out.

Plain Python (no Qt). MRML is touched only in :mod:`MedGradeSegmentLib.scene`.
"""

__version__ = "0.1.0"
