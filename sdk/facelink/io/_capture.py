"""Capture sources and video outputs behind one interface, named by URI.

``open_source(uri)`` gives an iterable of :class:`~facelink.io.Frame` (RGB uint8
``(H, W, 3)``, time in seconds from the first frame, index); ``open_output(uri, w, h,
fps)`` gives an object with ``write(image, time)`` and ``close()``.  The backends:

=============  ====================================================  ================================
backend        sources                                               outputs
=============  ====================================================  ================================
``jetson``     ``csi://N``, ``v4l2:///dev/videoN``, ``rtsp://…``,    ``display://N``, ``rtsp://@:PORT/…``,
               ``rtp://…``, ``webrtc://…``, ``file://…``             ``rtp://…``, ``webrtc://…``, files
``picamera2``  ``picam://N`` (Raspberry Pi camera N)                 —
``opencv``     ``/dev/videoN``, camera index ``N``, files, rtsp      ``display://N`` (``cv2.imshow``)
``pyav``       files, ``/dev/videoN`` (FFmpeg's v4l2), rtsp, http    files (H.264 through libx264)
=============  ====================================================  ================================

``auto`` (or ``$FACELINK_IO`` when set) picks jetson-utils when it imports and handles the
URI, picamera2 for ``picam://``, else OpenCV (cameras, display) or PyAV (files, streams).
Files always go through PyAV under ``auto``: exact timestamps, the same frames everywhere.
Hardware packages are imported only when a URI needs them; a missing one is one
:class:`~facelink.errors.BackendUnavailable` line naming the package and how to install it.

The pure parts (:func:`parse_uri`, :func:`select_source_backend`,
:func:`select_output_backend`, :func:`jetson_argv`, :func:`picamera_to_rgb`,
:func:`default_jetson_encoder`) take values in and give values out; the classes own the devices.
"""

from __future__ import annotations

import functools
import os
import re
import sys
import time
from abc import ABC, abstractmethod
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from fractions import Fraction
from typing import Any

import numpy as np

from ..errors import BackendUnavailable, InputError
from ._video import Frame, VideoInfo, VideoReader, VideoWriter

__all__ = [
    "CAPTURE_BACKENDS",
    "CaptureSource",
    "MediaURI",
    "VideoOutput",
    "default_jetson_encoder",
    "jetson_argv",
    "open_output",
    "open_source",
    "output_is_file",
    "parse_uri",
    "picamera_to_rgb",
    "select_output_backend",
    "select_source_backend",
]

#: capture/output backends, in the order ``auto`` prefers them where several fit
CAPTURE_BACKENDS = ("jetson", "picamera2", "opencv", "pyav")

#: which URI kinds each backend can read from / write to
_SOURCE_KINDS = {
    "jetson": {"csi", "v4l2", "file", "rtsp", "rtp", "webrtc"},
    "picamera2": {"picam"},
    "opencv": {"v4l2", "file", "rtsp", "http"},
    "pyav": {"v4l2", "file", "rtsp", "http"},
}
_OUTPUT_KINDS = {
    "jetson": {"display", "file", "rtsp", "rtp", "webrtc"},
    "opencv": {"display"},
    "pyav": {"file"},
}

_SCHEMES = {
    "csi": "csi",
    "v4l2": "v4l2",
    "file": "file",
    "rtsp": "rtsp",
    "rtsps": "rtsp",
    "rtp": "rtp",
    "webrtc": "webrtc",
    "http": "http",
    "https": "http",
    "display": "display",
    "picam": "picam",
    "picamera2": "picam",
}

_URI_HELP = "use a file path, /dev/videoN, a camera index, csi://N, picam://N, rtsp://…, webrtc://… or display://N"

_INSTALL = {
    "jetson": "jetson-utils (on JetPack: build it from github.com/dusty-nv/jetson-utils or use a jetson-containers image; "
    "in a virtual environment create it with --system-site-packages)",
    "picamera2": "picamera2 (on Raspberry Pi OS: sudo apt install python3-picamera2; "
    "in a virtual environment create it with --system-site-packages)",
    "opencv": "OpenCV (pip install 'facelink[opencv]')",
    "pyav": "PyAV (pip install av)",
}


# ------------------------------------------------------------------------------ URIs (pure)


@dataclass(frozen=True)
class MediaURI:
    """A parsed source/output URI.

    ``kind`` is one of ``file``, ``v4l2``, ``csi``, ``picam``, ``rtsp``, ``rtp``,
    ``webrtc``, ``http``, ``display``; ``location`` is the path, device or network
    address; ``index`` the camera/display number where the URI has one.
    """

    uri: str
    kind: str
    location: str
    index: int | None = None

    @property
    def is_file(self) -> bool:
        return self.kind == "file"


def parse_uri(uri: str) -> MediaURI:
    """Parse a source or output URI; :class:`InputError` (one line) for anything unusable.

    ``0`` → camera 0 (``/dev/video0``); ``/dev/video2`` and ``v4l2:///dev/video2`` → V4L2;
    ``file://clip.mp4`` and ``clip.mp4`` → a file; ``picamera2://1`` = ``picam://1``.
    """
    if not isinstance(uri, str):
        raise TypeError(f"uri must be a str, not {type(uri).__name__}")
    text = uri.strip()
    if not text:
        raise InputError(f"empty source/output URI; {_URI_HELP}")
    if text.isdigit():
        n = int(text)
        return MediaURI(uri, "v4l2", f"/dev/video{n}", n)
    m = re.fullmatch(r"([A-Za-z][A-Za-z0-9+.-]*)://(.*)", text, re.DOTALL)
    if m is None:
        if text.startswith("/dev/video"):
            return MediaURI(uri, "v4l2", text, _video_index(text))
        return MediaURI(uri, "file", text)
    scheme, rest = m.group(1).lower(), m.group(2)
    kind = _SCHEMES.get(scheme)
    if kind is None:
        raise InputError(f"{uri}: unknown URI scheme '{scheme}://'; {_URI_HELP}")
    if kind in ("csi", "picam", "display"):
        n = rest or "0"
        if not n.isdigit():
            raise InputError(f"{uri}: expected {scheme}://N with a number N (e.g. {scheme}://0)")
        return MediaURI(uri, kind, n, int(n))
    if kind == "v4l2":
        dev = f"/dev/video{rest}" if rest.isdigit() else rest
        if not dev.startswith("/dev/"):
            raise InputError(f"{uri}: expected v4l2:///dev/videoN")
        return MediaURI(uri, "v4l2", dev, _video_index(dev))
    if kind == "file":
        if not rest:
            raise InputError(f"{uri}: no path after file://")
        return MediaURI(uri, "file", rest)
    if not rest or rest.startswith("/") and kind != "http":
        raise InputError(f"{uri}: no address after {scheme}://")
    return MediaURI(uri, kind, text)


def _video_index(dev: str) -> int | None:
    m = re.fullmatch(r"/dev/video(\d+)", dev)
    return int(m.group(1)) if m else None


def _env_backend(backend: str) -> str:
    if backend == "auto":
        backend = os.environ.get("FACELINK_IO", "auto").strip().lower() or "auto"
    if backend != "auto" and backend not in CAPTURE_BACKENDS:
        raise ValueError(f"unknown I/O backend {backend!r}; expected auto or one of {', '.join(CAPTURE_BACKENDS)}")
    return backend


def select_source_backend(target: MediaURI, backend: str = "auto", available: Callable[[str], bool] | None = None) -> str:
    """The backend that reads ``target``: ``backend`` itself when it can, else ``auto``'s pick.

    ``available(name)`` says whether a backend's package imports (default: try it).
    Files go through PyAV under ``auto``; cameras prefer jetson-utils, then OpenCV, then
    PyAV; ``picam://`` is picamera2's; ``csi://``, ``rtp://`` and ``webrtc://`` need jetson-utils.
    """
    have = available or backend_available
    backend = _env_backend(backend)
    if backend != "auto":
        if target.kind not in _SOURCE_KINDS.get(backend, ()):
            raise InputError(f"{target.uri}: the {backend} backend cannot read {target.kind} sources")
        return backend
    kind = target.kind
    if kind == "picam":
        return "picamera2"
    if kind in ("csi", "rtp", "webrtc"):
        return "jetson"
    if kind == "file" or kind == "http":
        return "pyav"
    if kind == "v4l2":
        return "jetson" if have("jetson") else "opencv" if have("opencv") else "pyav"
    if kind == "rtsp":
        return "jetson" if have("jetson") else "pyav"
    raise InputError(f"{target.uri}: {kind} is an output, not a source; {_URI_HELP}")


def select_output_backend(target: MediaURI, backend: str = "auto", available: Callable[[str], bool] | None = None) -> str:
    """The backend that writes ``target`` (see :func:`select_source_backend`).

    Files are written by PyAV under ``auto``; ``display://`` by jetson-utils, else OpenCV;
    network outputs (``rtsp://@:PORT/…``, ``rtp://``, ``webrtc://``) need jetson-utils.
    """
    have = available or backend_available
    backend = _env_backend(backend)
    if backend != "auto":
        if target.kind not in _OUTPUT_KINDS.get(backend, ()):
            raise InputError(f"{target.uri}: the {backend} backend cannot write {target.kind} outputs")
        return backend
    kind = target.kind
    if kind == "file":
        return "pyav"
    if kind == "display":
        return "jetson" if have("jetson") else "opencv"
    if kind in ("rtsp", "rtp", "webrtc"):
        return "jetson"
    raise InputError(f"{target.uri}: a {kind} URI is a source, not an output; write a file, display://0 or rtsp://@:8554/NAME")


def output_is_file(uri: str) -> bool:
    """Whether ``uri`` names a file (the CLI writes files atomically, other outputs live)."""
    return parse_uri(uri).is_file


def jetson_argv(
    io: str,
    *,
    width: int | None = None,
    height: int | None = None,
    rate: float | None = None,
    codec: str | None = None,
    encoder: str | None = None,
    bitrate: int | None = None,
    flip: str | None = None,
    loop: int | None = None,
    headless: bool = False,
    extra: Sequence[str] = (),
) -> list[str]:
    """The ``argv`` for jetson-utils' ``videoSource(uri, argv=…)`` (``io="input"``) or
    ``videoOutput(uri, argv=…)`` (``io="output"``), in its own option names:
    ``--input-width/--input-height/--input-rate/--input-codec/--input-flip/--input-loop``,
    ``--output-codec/--output-encoder/--bitrate/--headless``.  The first item is a program
    name, as in ``sys.argv``.
    """
    if io not in ("input", "output"):
        raise ValueError("io must be 'input' or 'output'")
    argv = ["facelink"]

    def opt(name: str, value: Any, positive: bool = True) -> None:
        if value is None:
            return
        if positive and not value > 0:
            raise ValueError(f"--{name} must be positive, got {value}")
        argv.append(f"--{name}={value}")

    opt(f"{io}-width", width)
    opt(f"{io}-height", height)
    opt(f"{io}-rate", None if rate is None else float(rate))
    if codec is not None:
        argv.append(f"--{io}-codec={codec.lower()}")
    if io == "input":
        if flip is not None:
            argv.append(f"--input-flip={flip}")
        opt("input-loop", loop, positive=False)
        if encoder is not None or bitrate is not None:
            raise ValueError("encoder and bitrate are output options")
    else:
        if encoder is not None:
            if encoder not in ("cpu", "v4l2", "omx"):
                raise ValueError(f"encoder must be cpu, v4l2 or omx, not {encoder!r}")
            argv.append(f"--output-encoder={encoder}")
        opt("bitrate", bitrate)
        if headless:
            argv.append("--headless")
    argv.extend(extra)
    return argv


def default_jetson_encoder(model: str | None) -> str | None:
    """The ``--output-encoder`` a board needs: ``cpu`` on a Jetson Orin Nano (no NVENC), else
    ``None`` (jetson-utils' default, the hardware encoder).  ``model`` is the device-tree model
    string, e.g. ``"NVIDIA Jetson Orin Nano Developer Kit"``."""
    if model and "orin nano" in model.lower():
        return "cpu"
    return None


def jetson_model() -> str | None:
    """This board's model string (``/proc/device-tree/model``), or None off a Jetson."""
    try:
        with open("/proc/device-tree/model", "rb") as f:
            return f.read().rstrip(b"\x00").decode("utf-8", "replace").strip() or None
    except OSError:
        return None


#: libcamera format name -> (channels in the array, indices that give R, G, B)
_PICAMERA_ORDER = {
    "RGB888": (3, [2, 1, 0]),  # libcamera's RGB888 is B,G,R in memory
    "BGR888": (3, [0, 1, 2]),  # and BGR888 is R,G,B
    "XRGB8888": (4, [2, 1, 0]),  # B,G,R,X
    "XBGR8888": (4, [0, 1, 2]),  # R,G,B,X
}


def picamera_to_rgb(array: np.ndarray, fmt: str) -> np.ndarray:
    """An array from picamera2's ``capture_array`` in libcamera format ``fmt`` -> RGB uint8 (H, W, 3).

    libcamera names formats by the 32-bit word, little-endian: ``"RGB888"`` arrives as
    B,G,R bytes per pixel and ``"BGR888"`` as R,G,B.  Returns a new contiguous array.
    """
    if not isinstance(array, np.ndarray):
        raise TypeError(f"array must be a numpy array, not {type(array).__name__}")
    spec = _PICAMERA_ORDER.get(fmt)
    if spec is None:
        raise ValueError(f"unsupported picamera2 format {fmt!r}; use one of {', '.join(_PICAMERA_ORDER)}")
    channels, order = spec
    if array.dtype != np.uint8 or array.ndim != 3 or array.shape[2] != channels:
        raise ValueError(f"a {fmt} frame must be uint8 (H, W, {channels}), got {array.dtype} {array.shape}")
    return np.ascontiguousarray(array[:, :, order])


# ------------------------------------------------------------------------------ lazy imports


def _missing(backend: str, uri: str, exc: BaseException) -> BackendUnavailable:
    why = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
    return BackendUnavailable(f"{uri}: needs {_INSTALL[backend]}; it does not import here ({why})")


@functools.cache
def _import_jetson() -> Any:
    try:
        import jetson_utils  # JetPack 5/6 jetson-utils

        return jetson_utils
    except ImportError as first:
        try:
            import jetson.utils  # older installs: the jetson.utils package name
        except ImportError:
            raise first from None
        return jetson.utils


@functools.cache
def _import_cv2() -> Any:
    import cv2

    return cv2


def _import_picamera2() -> Any:
    from picamera2 import Picamera2

    return Picamera2


def backend_available(name: str) -> bool:
    """Whether a backend's package imports here (jetson-utils, OpenCV, picamera2, PyAV)."""
    try:
        if name == "jetson":
            _import_jetson()
        elif name == "opencv":
            _import_cv2()
        elif name == "picamera2":
            _import_picamera2()
        elif name == "pyav":
            import av  # noqa: F401
        else:
            return False
        return True
    except Exception:  # noqa: BLE001 - a broken install (missing CUDA library, ...) counts as absent
        return False


def _need(backend: str, uri: str) -> Any:
    try:
        if backend == "jetson":
            return _import_jetson()
        if backend == "opencv":
            return _import_cv2()
        if backend == "picamera2":
            return _import_picamera2()
    except Exception as e:  # noqa: BLE001
        raise _missing(backend, uri, e) from None
    raise ValueError(backend)


# ------------------------------------------------------------------------------ sources


class _Closable(ABC):
    """Context-manager plumbing shared by sources and outputs: ``with`` closes."""

    _closed = False

    def close(self) -> None:
        self._closed = True

    def __enter__(self):
        return self

    def __exit__(self, *exc) -> None:
        self.close()


class CaptureSource(_Closable):
    """A live source: ``width``, ``height``, ``fps``, ``info``, iteration over :class:`Frame`, ``close()``.

    Times are seconds since the first frame (the device's own clock where it has one).
    Subclasses implement ``_grab() -> (image, device_time_or_None) | None`` (None: end of stream).
    """

    backend = ""
    live = True

    def __init__(self, uri: str, timeout: float) -> None:
        self.uri = uri
        self.timeout = timeout
        self.width = self.height = 0
        self.fps = Fraction(30)
        self._pending: tuple[np.ndarray, float | None] | None = None
        self._t0: float | None = None
        self._last = -1.0
        self._index = 0
        self._closed = False

    @property
    def info(self) -> VideoInfo:
        return VideoInfo(self.width, self.height, self.fps, None)

    def _learn_size(self) -> None:
        """Read one frame now when the device does not report its size before capturing."""
        if self.width > 0 and self.height > 0:
            return
        got = self._grab()
        if got is None:
            raise InputError(f"{self.uri}: the source ended before its first frame")
        self._pending = got
        self.height, self.width = got[0].shape[:2]

    @abstractmethod
    def _grab(self) -> tuple[np.ndarray, float | None] | None:
        """The next (RGB image, device time in s or None), or None at the end of the stream."""

    def read(self) -> Frame | None:
        """The next frame, or None at the end of the stream."""
        if self._closed:
            return None
        got, self._pending = (self._pending, None) if self._pending is not None else (self._grab(), None)
        if got is None:
            return None
        image, device_t = got
        now = device_t if device_t is not None else time.monotonic()
        if self._t0 is None:
            self._t0 = now
        t = now - self._t0
        if t <= self._last:  # keep times strictly increasing
            t = self._last + 1e-6
        self._last = t
        frame = Frame(image, t, self._index)
        self._index += 1
        return frame

    def __iter__(self) -> Iterator[Frame]:
        while (frame := self.read()) is not None:
            yield frame


class JetsonSource(CaptureSource):
    """jetson-utils ``videoSource``: CSI/V4L2 cameras, RTSP/RTP/WebRTC streams, files (hardware decode)."""

    backend = "jetson"

    def __init__(self, target: MediaURI, *, width=None, height=None, fps=None, options: Sequence[str] = (), timeout=10.0):
        super().__init__(target.uri, timeout)
        self._ju = _need("jetson", target.uri)
        self.live = not target.is_file
        argv = jetson_argv("input", width=width, height=height, rate=fps, extra=options)
        try:
            self._src = self._ju.videoSource(jetson_uri(target), argv=argv)
        except Exception as e:  # noqa: BLE001 - jetson-utils raises plain Exception
            raise InputError(f"{target.uri}: jetson-utils cannot open it ({_first_line(e)})") from None
        self.width, self.height = int(self._src.GetWidth()), int(self._src.GetHeight())
        rate = float(self._src.GetFrameRate() or 0)
        self.fps = Fraction(rate).limit_denominator(1001) if rate > 0 else Fraction(fps or 30).limit_denominator(1001)
        self._learn_size()

    def _grab(self):
        ju, src = self._ju, self._src
        deadline = time.monotonic() + self.timeout
        while True:
            try:
                img = src.Capture(format="rgb8", timeout=1000)
            except Exception as e:  # noqa: BLE001 - older releases raise on timeout and at end of stream
                if not src.IsStreaming():
                    return None
                if time.monotonic() > deadline:
                    raise InputError(f"{self.uri}: no frame for {self.timeout:g} s ({_first_line(e)})") from None
                continue
            if img is None:  # a timeout (JetPack 5+/6 returns None)
                if not src.IsStreaming():
                    return None
                if time.monotonic() > deadline:
                    raise InputError(f"{self.uri}: no frame for {self.timeout:g} s; is the camera connected?")
                continue
            ju.cudaDeviceSynchronize()
            image = np.array(ju.cudaToNumpy(img), dtype=np.uint8, copy=True)  # the ring buffer is reused
            if image.ndim == 3 and image.shape[2] > 3:
                image = np.ascontiguousarray(image[:, :, :3])
            ts = int(getattr(img, "timestamp", 0) or 0)  # ns, where this jetson-utils release records it
            return image, (ts / 1e9 if ts > 0 else None)

    def close(self) -> None:
        if not self._closed:
            super().close()
            self._src.Close()


class PiCameraSource(CaptureSource):
    """A Raspberry Pi camera through picamera2 (libcamera): ``picam://N``."""

    backend = "picamera2"
    #: libcamera format requested for the main stream: B,G,R bytes (see :func:`picamera_to_rgb`)
    FORMAT = "RGB888"

    def __init__(self, target: MediaURI, *, width=None, height=None, fps=None, timeout=10.0):
        super().__init__(target.uri, timeout)
        Picamera2 = _need("picamera2", target.uri)
        try:
            self._cam = Picamera2(target.index or 0)
        except (IndexError, RuntimeError, OSError) as e:
            raise InputError(f"{target.uri}: no such Raspberry Pi camera ({_first_line(e)}); `rpicam-hello --list-cameras` lists them") from None
        size = (int(width or 640), int(height or 480))
        controls = {"FrameRate": float(fps)} if fps else {}
        try:
            config = self._cam.create_video_configuration(main={"size": size, "format": self.FORMAT}, controls=controls)
            self._cam.configure(config)
            self._cam.start()
        except Exception as e:  # noqa: BLE001 - libcamera errors come as several types
            self._cam.close()
            raise InputError(f"{target.uri}: cannot start the camera at {size[0]}x{size[1]} ({_first_line(e)})") from None
        self.width, self.height = config["main"]["size"]
        self.fps = Fraction(fps or 30).limit_denominator(1001)

    def _grab(self):
        request = self._cam.capture_request()
        try:
            array = request.make_array("main")
            meta = request.get_metadata()
        finally:
            request.release()
        ts = meta.get("SensorTimestamp") if isinstance(meta, dict) else None
        return picamera_to_rgb(array[:, : self.width], self.FORMAT), (ts / 1e9 if ts else None)

    def close(self) -> None:
        if not self._closed:
            super().close()
            try:
                self._cam.stop()
            finally:
                self._cam.close()


class OpenCVSource(CaptureSource):
    """``cv2.VideoCapture``: V4L2 cameras by path or index, files, network streams."""

    backend = "opencv"

    def __init__(self, target: MediaURI, *, width=None, height=None, fps=None, timeout=10.0):
        super().__init__(target.uri, timeout)
        cv2 = self._cv2 = _need("opencv", target.uri)
        self.live = not target.is_file
        if target.is_file:
            _check_file(target)
        spec: int | str = target.index if target.kind == "v4l2" and target.index is not None else target.location
        if target.kind == "v4l2" and (target.index is None or sys.platform.startswith("linux")) and not os.path.exists(target.location):
            raise InputError(f"{target.uri}: no such camera device")
        self._cap = cv2.VideoCapture(spec)
        if not self._cap.isOpened():
            self._cap.release()
            what = "camera" if target.kind == "v4l2" else "video"
            raise InputError(f"{target.uri}: OpenCV cannot open it as a {what}")
        for prop, value in ((cv2.CAP_PROP_FRAME_WIDTH, width), (cv2.CAP_PROP_FRAME_HEIGHT, height), (cv2.CAP_PROP_FPS, fps)):
            if value:
                self._cap.set(prop, float(value))
        self.width = int(self._cap.get(cv2.CAP_PROP_FRAME_WIDTH))
        self.height = int(self._cap.get(cv2.CAP_PROP_FRAME_HEIGHT))
        rate = float(self._cap.get(cv2.CAP_PROP_FPS) or 0)
        self.fps = Fraction(rate).limit_denominator(1001) if 0 < rate < 1000 else Fraction(fps or 30).limit_denominator(1001)
        self._learn_size()

    def _grab(self):
        cv2 = self._cv2
        ok, bgr = self._cap.read()
        if not ok or bgr is None:
            return None
        if bgr.ndim == 2:
            rgb = cv2.cvtColor(bgr, cv2.COLOR_GRAY2RGB)
        else:
            rgb = cv2.cvtColor(bgr, cv2.COLOR_BGRA2RGB if bgr.shape[2] == 4 else cv2.COLOR_BGR2RGB)
        t = None
        if not self.live:  # a file: its own timestamps
            t = float(self._cap.get(cv2.CAP_PROP_POS_MSEC)) / 1000.0
        return rgb, t

    def close(self) -> None:
        if not self._closed:
            super().close()
            self._cap.release()


class _LiveReader(CaptureSource):
    """A PyAV reader of a camera or network stream, its times rebased to the first frame."""

    backend = "pyav"

    def __init__(self, reader: VideoReader, timeout: float = 10.0) -> None:
        super().__init__(reader.uri, timeout)
        self._reader = reader
        self._it = iter(reader)
        self.width, self.height, self.fps = reader.width, reader.height, reader.fps

    def _grab(self):
        f = next(self._it, None)
        return None if f is None else (f.image, f.time)

    def close(self) -> None:
        if not self._closed:
            super().close()
            self._reader.close()


def _check_file(target: MediaURI) -> None:
    path = target.location
    if not os.path.exists(path):
        raise InputError(f"{target.uri}: no such file")
    if os.path.isdir(path):
        raise InputError(f"{target.uri}: is a directory, expected a video file")


def jetson_uri(target: MediaURI) -> str:
    """The URI jetson-utils expects for ``target`` (``v4l2:///dev/videoN``, ``file://PATH``, …)."""
    if target.kind == "v4l2":
        return f"v4l2://{target.location}"
    if target.kind == "file":
        return f"file://{target.location}"
    if target.kind in ("csi", "display"):
        return f"{target.kind}://{target.index}"
    return target.location


def _first_line(e: BaseException) -> str:
    s = str(e)
    return s.splitlines()[0] if s else type(e).__name__


def open_source(
    uri: str,
    *,
    backend: str = "auto",
    width: int | None = None,
    height: int | None = None,
    fps: float | None = None,
    options: Sequence[str] = (),
    timeout: float = 10.0,
) -> CaptureSource | VideoReader:
    """Open a camera, stream or file for reading; iterate it for :class:`Frame`\\ s.

    ``width``/``height``/``fps`` request a capture mode from cameras (files keep theirs);
    ``options`` are extra jetson-utils arguments (e.g. ``["--input-flip=rotate-180"]``);
    ``timeout`` is how long a live source may go without a frame.  The result has
    ``width``, ``height``, ``fps``, ``info``, ``live``, ``backend`` and ``close()``.
    """
    target = parse_uri(uri)
    name = select_source_backend(target, backend)
    if name == "jetson":
        return JetsonSource(target, width=width, height=height, fps=fps, options=options, timeout=timeout)
    if name == "picamera2":
        return PiCameraSource(target, width=width, height=height, fps=fps, timeout=timeout)
    if name == "opencv":
        return OpenCVSource(target, width=width, height=height, fps=fps, timeout=timeout)
    # PyAV
    if target.is_file:
        _check_file(target)
        return VideoReader(target.location)
    if target.kind == "v4l2":
        if not os.path.exists(target.location):
            raise InputError(f"{target.uri}: no such camera device")
        opts = {}
        if width and height:
            opts["video_size"] = f"{int(width)}x{int(height)}"
        if fps:
            opts["framerate"] = f"{float(fps):g}"
        return _LiveReader(VideoReader(target.location, format="v4l2", options=opts), timeout)
    return _LiveReader(VideoReader(target.location), timeout)


# ------------------------------------------------------------------------------ outputs


class VideoOutput(_Closable):
    """Where rendered frames go: ``write(image, time)``, ``close()``, ``is_open`` (False once a
    display window was closed or a stream stopped), ``set_status(text)`` (a window title)."""

    backend = ""

    def __init__(self, uri: str, width: int, height: int, fps: Fraction) -> None:
        self.uri = uri
        self.width, self.height, self.fps = width, height, fps
        self.frames = 0
        self._closed = False

    @property
    def is_open(self) -> bool:
        return not self._closed

    def set_status(self, text: str) -> None:
        """Show ``text`` where the output can (a window's title); otherwise nothing."""

    @abstractmethod
    def write(self, image: np.ndarray, time: float) -> None:
        """Show or record one RGB frame at ``time`` seconds."""


class FileOutput(VideoOutput):
    """An H.264 MP4 through PyAV (libx264 on the CPU: the Orin Nano has no hardware encoder either way)."""

    backend = "pyav"

    def __init__(self, path: str, width: int, height: int, fps: Fraction, audio_rate: int | None = None) -> None:
        super().__init__(path, width, height, fps)
        parent = os.path.dirname(path) or "."
        if os.path.isdir(path):
            raise InputError(f"{path}: is a directory")
        if not os.path.isdir(parent):
            raise InputError(f"{parent}: output directory does not exist")
        self._w = VideoWriter(path, width, height, fps, audio_rate=audio_rate)

    def write(self, image: np.ndarray, time: float) -> None:
        self._w.write(_fit(image, self.width, self.height), time)  # the writer pads odd sizes itself
        self.frames += 1

    @property
    def has_audio(self) -> bool:
        return self._w.has_audio

    def write_audio(self, samples: np.ndarray, time: float) -> None:
        """Mono PCM at the writer's audio rate, its first sample at ``time`` s (the frames' clock)."""
        self._w.write_audio(samples, time)

    def close(self) -> None:
        if not self._closed:
            super().close()
            self._w.close()


class OpenCVDisplay(VideoOutput):
    """A window through ``cv2.imshow``; ``fullscreen`` for kiosks; Esc or q closes it."""

    backend = "opencv"

    def __init__(self, uri: str, width: int, height: int, fps: Fraction, *, fullscreen: bool = False, title: str = "FaceLink"):
        super().__init__(uri, width, height, fps)
        cv2 = self._cv2 = _need("opencv", uri)
        if sys.platform.startswith("linux") and not (os.environ.get("DISPLAY") or os.environ.get("WAYLAND_DISPLAY")):
            raise BackendUnavailable(f"{uri}: no display output on this machine ($DISPLAY is not set); write a file (-o OUT.mp4) instead")
        self.title = title
        try:
            cv2.namedWindow(title, cv2.WINDOW_NORMAL)
            if fullscreen:
                cv2.setWindowProperty(title, cv2.WND_PROP_FULLSCREEN, cv2.WINDOW_FULLSCREEN)
            else:
                cv2.resizeWindow(title, width, height)
        except cv2.error as e:
            raise BackendUnavailable(
                f"{uri}: no display output: this OpenCV has no GUI support ({_first_line(e)}); pip install opencv-python, not -headless"
            ) from None
        self._bgr = np.empty((height, width, 3), np.uint8)

    @property
    def is_open(self) -> bool:
        if self._closed:
            return False
        try:
            return self.frames == 0 or self._cv2.getWindowProperty(self.title, self._cv2.WND_PROP_VISIBLE) >= 1
        except self._cv2.error:
            return False

    def set_status(self, text: str) -> None:
        if not self._closed:
            self._cv2.setWindowTitle(self.title, text)

    def write(self, image: np.ndarray, time: float) -> None:
        cv2 = self._cv2
        if image.shape[:2] != self._bgr.shape[:2]:
            self._bgr = np.empty((image.shape[0], image.shape[1], 3), np.uint8)
        cv2.cvtColor(image, cv2.COLOR_RGB2BGR, dst=self._bgr)
        cv2.imshow(self.title, self._bgr)
        key = cv2.waitKey(1) & 0xFF
        self.frames += 1
        if key in (27, ord("q")):
            self._closed = True
            cv2.destroyWindow(self.title)

    def close(self) -> None:
        if not self._closed:
            super().close()
            try:
                self._cv2.destroyWindow(self.title)
            except self._cv2.error:
                pass


class JetsonOutput(VideoOutput):
    """jetson-utils ``videoOutput``: an OpenGL window, RTSP/RTP/WebRTC streams, files (GStreamer encoders).

    ``encoder`` is jetson-utils' ``--output-encoder`` (``cpu``, ``v4l2``, ``omx``); by default
    ``cpu`` on an Orin Nano, which has no hardware video encoder, else the hardware one.
    Frames are copied into one mapped CUDA buffer, reallocated only when the size changes.
    """

    backend = "jetson"

    def __init__(
        self,
        target: MediaURI,
        width: int,
        height: int,
        fps: Fraction,
        *,
        encoder: str | None = None,
        codec: str | None = None,
        bitrate: int | None = None,
        options: Sequence[str] = (),
    ) -> None:
        super().__init__(target.uri, width, height, fps)
        self._ju = _need("jetson", target.uri)
        compressed = target.kind != "display"
        if encoder is None and compressed:
            encoder = default_jetson_encoder(jetson_model())
        self.encoder = encoder if compressed else None
        argv = jetson_argv(
            "output", rate=float(fps) if fps else None, codec=codec, encoder=self.encoder, bitrate=bitrate,
            headless=compressed, extra=options,
        )  # fmt: skip
        try:
            self._out = self._ju.videoOutput(jetson_uri(target), argv=argv)
        except Exception as e:  # noqa: BLE001
            raise InputError(f"{target.uri}: jetson-utils cannot open it ({_first_line(e)})") from None
        self._buf = None
        self._view: np.ndarray | None = None

    @property
    def is_open(self) -> bool:
        return not self._closed and (self.frames == 0 or bool(self._out.IsStreaming()))

    def set_status(self, text: str) -> None:
        self._out.SetStatus(text)

    def write(self, image: np.ndarray, time: float) -> None:
        h, w = image.shape[:2]
        if self._view is None or self._view.shape[:2] != (h, w):
            self._buf = self._ju.cudaAllocMapped(width=w, height=h, format="rgb8")
            self._view = self._ju.cudaToNumpy(self._buf)
        self._view[...] = image.reshape(self._view.shape)
        self._out.Render(self._buf)
        self.frames += 1

    def close(self) -> None:
        if not self._closed:
            super().close()
            self._out.Close()


def _fit(image: np.ndarray, width: int, height: int) -> np.ndarray:
    if image.shape[1] == width and image.shape[0] == height:
        return image
    from PIL import Image

    return np.asarray(Image.fromarray(image).resize((width, height), Image.Resampling.BILINEAR))


def open_output(
    uri: str,
    width: int,
    height: int,
    fps: Fraction | float = 30,
    *,
    backend: str = "auto",
    encoder: str | None = None,
    codec: str | None = None,
    bitrate: int | None = None,
    fullscreen: bool = False,
    title: str = "FaceLink",
    options: Sequence[str] = (),
    audio_rate: int | None = None,
) -> VideoOutput:
    """Open a file, window or network stream for ``width`` x ``height`` RGB frames.

    ``audio_rate``: a file gets an audio track at this rate (``write_audio``); windows and
    streams carry no sound.

    ``encoder``/``codec``/``bitrate`` apply to jetson-utils' compressed outputs (the Orin
    Nano needs ``encoder="cpu"``, which is the default there); ``fullscreen`` to windows
    (OpenCV; jetson-utils opens its window maximised).
    """
    if not (isinstance(width, int) and isinstance(height, int)) or width <= 0 or height <= 0:
        raise ValueError(f"output size must be positive integers, got {width}x{height}")
    rate = Fraction(fps).limit_denominator(1001) if fps else Fraction(30)
    target = parse_uri(uri)
    name = select_output_backend(target, backend)
    if name == "pyav":
        return FileOutput(target.location, width, height, rate, audio_rate=audio_rate)
    if name == "opencv":
        if target.kind == "display" and not backend_available("opencv"):
            raise BackendUnavailable(
                f"{uri}: no display output on this machine: needs jetson-utils, or OpenCV with GUI support (pip install 'facelink[opencv]')"
            )
        return OpenCVDisplay(uri, width, height, rate, fullscreen=fullscreen, title=title)
    return JetsonOutput(target, width, height, rate, encoder=encoder, codec=codec, bitrate=bitrate, options=options)


def check_output(uri: str, backend: str = "auto") -> str:
    """Fail early (before any frame exists) when ``uri`` cannot be written here; returns the backend."""
    target = parse_uri(uri)
    name = select_output_backend(target, backend)
    if name == "opencv" and target.kind == "display":
        if not backend_available("opencv"):
            raise BackendUnavailable(
                f"{uri}: no display output on this machine: needs jetson-utils, or OpenCV with GUI support (pip install 'facelink[opencv]')"
            )
        if sys.platform.startswith("linux") and not (os.environ.get("DISPLAY") or os.environ.get("WAYLAND_DISPLAY")):
            raise BackendUnavailable(f"{uri}: no display output on this machine ($DISPLAY is not set); write a file (-o OUT.mp4) instead")
    elif name == "jetson":
        _need("jetson", uri)
    elif name == "pyav":
        path = target.location
        parent = os.path.dirname(path) or "."
        if os.path.isdir(path):
            raise InputError(f"{path}: is a directory")
        if not os.path.isdir(parent):
            raise InputError(f"{parent}: output directory does not exist")
    return name
