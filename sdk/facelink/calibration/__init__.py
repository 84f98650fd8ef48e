"""INT8 calibration of the encoder models (``facelink calibrate``).

>>> from facelink.calibration import calibrate
>>> result = calibrate(["../shared/data"], "calibration/reports/run")   # doctest: +SKIP
>>> result.within_budget, result.table_path

The data recipe lives in ``calibration/`` at the top of the repository (README.md, recipe.json);
the range table the package builds its default INT8 graphs from is ``int8_ranges.json`` here
(see :mod:`facelink.models._quantize`).
"""

from ._crops import CropSet, RecordingSession, collect_crops
from ._evaluate import (
    DetectionAgreement,
    LandmarkError,
    box_iou,
    count_macs,
    jetson_estimate,
    landmark_error,
    measure_latency,
)
from ._ranges import compute_ranges, entropy_threshold, percentile_threshold
from ._recipe import METHODS, Recipe, load_recipe
from ._run import BUDGET, CalibrationResult, calibrate, calibrate_sequences
from ._sources import FrameSequence, Source, gather_sources, open_source, sample_indices

__all__ = [
    "BUDGET",
    "METHODS",
    "CalibrationResult",
    "CropSet",
    "DetectionAgreement",
    "FrameSequence",
    "LandmarkError",
    "Recipe",
    "RecordingSession",
    "Source",
    "box_iou",
    "calibrate",
    "calibrate_sequences",
    "collect_crops",
    "compute_ranges",
    "count_macs",
    "entropy_threshold",
    "gather_sources",
    "jetson_estimate",
    "landmark_error",
    "load_recipe",
    "measure_latency",
    "open_source",
    "percentile_threshold",
    "sample_indices",
]
