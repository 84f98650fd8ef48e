"""Generator v1: re-synthesise a face from one reference image and Face Mesh landmarks.

>>> from facelink.generator import Generator
>>> gen = Generator(reference_rgb, reference_landmarks)     # once per reference
>>> frame = gen.render(driving_landmarks)                   # (H, W, 3) uint8, reference size

Training-free: a backward flow rasterised from a triangle mesh over the landmarks (plus rings
that carry hair, neck and background), mouth and eye interiors from per-reference atlases, and
one bilinear sample in a tiny ONNX graph.  See ``docs/generator.md``.
"""

from ._eyes import EyeControls
from ._generator import Generator

__all__ = ["EyeControls", "Generator"]
