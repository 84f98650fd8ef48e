"""Media I/O: video files and capture URIs (PyAV), still images (Pillow)."""

from ._image import MAX_REFERENCE_SIDE, load_image
from ._video import Frame, VideoReader, VideoWriter, open_video, probe_video

__all__ = ["Frame", "MAX_REFERENCE_SIDE", "VideoReader", "VideoWriter", "load_image", "open_video", "probe_video"]
