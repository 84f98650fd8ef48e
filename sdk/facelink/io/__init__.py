"""Media I/O: video files (PyAV), capture sources and outputs by URI (jetson-utils, picamera2,
OpenCV, PyAV), still images (Pillow)."""

from ._capture import (
    CAPTURE_BACKENDS,
    CaptureSource,
    MediaURI,
    VideoOutput,
    default_jetson_encoder,
    jetson_argv,
    open_output,
    open_source,
    parse_uri,
    picamera_to_rgb,
    select_output_backend,
    select_source_backend,
)
from ._image import MAX_REFERENCE_SIDE, load_image
from ._video import BackgroundWriter, Frame, VideoReader, VideoWriter, open_video, probe_video

__all__ = [
    "CAPTURE_BACKENDS",
    "MAX_REFERENCE_SIDE",
    "CaptureSource",
    "Frame",
    "MediaURI",
    "VideoOutput",
    "VideoReader",
    "VideoWriter",
    "BackgroundWriter",
    "default_jetson_encoder",
    "jetson_argv",
    "load_image",
    "open_output",
    "open_source",
    "open_video",
    "parse_uri",
    "picamera_to_rgb",
    "probe_video",
    "select_output_backend",
    "select_source_backend",
]
