"""Keypoint representation after face-vid2vid: identity once, then pose + expression per frame."""

from ._basis import ExpressionBasis, default_basis
from ._fit import KeypointFitter, canonicalize
from ._pose import Pose, euler_from_matrix, matrix_from_euler, similarity_fit

__all__ = [
    "ExpressionBasis",
    "KeypointFitter",
    "Pose",
    "canonicalize",
    "default_basis",
    "euler_from_matrix",
    "matrix_from_euler",
    "similarity_fit",
]
