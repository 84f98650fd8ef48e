"""Face Mesh landmark indices that several stages share (the encoder, the codec, the generator)."""

from __future__ import annotations

__all__ = ["LIPS_INNER", "LIPS_INNER_LOWER", "LIPS_INNER_UPPER", "LIPS_OUTER"]

#: inner lip contour, corner (78) to corner (308): upper and lower halves
LIPS_INNER_UPPER = (78, 191, 80, 81, 82, 13, 312, 311, 310, 415, 308)
LIPS_INNER_LOWER = (78, 95, 88, 178, 87, 14, 317, 402, 318, 324, 308)
#: the closed inner-lip polygon (upper left->right, then lower right->left)
LIPS_INNER = LIPS_INNER_UPPER + LIPS_INNER_LOWER[-2:0:-1]
#: outer lip contour (closed polygon)
LIPS_OUTER = (61, 185, 40, 39, 37, 0, 267, 269, 270, 409, 291, 375, 321, 405, 314, 17, 84, 181, 91, 146)
