"""Preprocessing: orientation, N4, skull stripping, co-registration, 1 mm grid, z-score, slice sampling."""

from .config import PreprocessConfig
from .io import read_preprocessed, write_preprocessed
from .pipeline import PreprocessResult, preprocess_case
from .quality import QualityReport

__all__ = ["PreprocessConfig", "PreprocessResult", "QualityReport", "preprocess_case", "read_preprocessed",
           "write_preprocessed"]
