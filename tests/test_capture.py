"""Capture sources and outputs by URI (facelink.io._capture): URI parsing and backend choice,
the picamera2 format conversion and jetson-utils argv (pure), the PyAV and OpenCV paths on
clips the tests write, and the CLI's errors for bad URIs.  jetson-utils and picamera2 run
only where they import (on a Jetson / a Raspberry Pi)."""

from __future__ import annotations

import importlib.util
import itertools
import os
import threading
import time

import numpy as np
import pytest
from facelink.cli import main
from facelink.errors import BackendUnavailable, InputError
from facelink.io import (
    jetson_argv,
    open_output,
    open_source,
    parse_uri,
    picamera_to_rgb,
    select_output_backend,
    select_source_backend,
)
from facelink.io._capture import (
    _LiveReader,
    backend_available,
    check_output,
    default_jetson_encoder,
    jetson_uri,
)
from facelink.io._video import VideoReader

HAS_CV2 = backend_available("opencv")
HAS_JETSON = backend_available("jetson")
HAS_PICAMERA2 = importlib.util.find_spec("picamera2") is not None


def _pattern(i: int, h: int = 48, w: int = 64) -> np.ndarray:
    """A frame whose quadrants are flat colours (survive H.264) and whose brightness encodes i."""
    img = np.zeros((h, w, 3), np.uint8)
    img[: h // 2, : w // 2] = (220, 30, 30)  # red
    img[: h // 2, w // 2 :] = (30, 220, 30)  # green
    img[h // 2 :, : w // 2] = (30, 30, 220)  # blue
    img[h // 2 :, w // 2 :] = min(10 * i, 250)
    return img


@pytest.fixture()
def clip(tmp_path):
    """A 12-frame 64x48 clip at 30 fps written through open_output (PyAV)."""
    path = tmp_path / "clip.mp4"
    with open_output(str(path), 64, 48, 30) as out:
        assert out.backend == "pyav"
        for i in range(12):
            out.write(_pattern(i), i / 30)
        assert out.frames == 12
    return path


def _quadrant_means(img: np.ndarray) -> np.ndarray:
    h, w = img.shape[:2]
    return np.array([img[: h // 2 - 4, : w // 2 - 4].mean((0, 1)), img[: h // 2 - 4, w // 2 + 4 :].mean((0, 1)), img[h // 2 + 4 :, : w // 2 - 4].mean((0, 1))])


# ------------------------------------------------------------------ URIs (pure)


@pytest.mark.parametrize(
    "uri, kind, location, index",
    [
        ("0", "v4l2", "/dev/video0", 0),
        ("2", "v4l2", "/dev/video2", 2),
        ("/dev/video1", "v4l2", "/dev/video1", 1),
        ("v4l2:///dev/video3", "v4l2", "/dev/video3", 3),
        ("v4l2://4", "v4l2", "/dev/video4", 4),
        ("csi://0", "csi", "0", 0),
        ("picam://1", "picam", "1", 1),
        ("picamera2://0", "picam", "0", 0),
        ("display://0", "display", "0", 0),
        ("rtsp://cam.local:8554/live", "rtsp", "rtsp://cam.local:8554/live", None),
        ("rtsp://@:8554/face", "rtsp", "rtsp://@:8554/face", None),
        ("webrtc://@:8554/face", "webrtc", "webrtc://@:8554/face", None),
        ("rtp://192.0.2.1:1234", "rtp", "rtp://192.0.2.1:1234", None),
        ("https://example.org/a.mp4", "http", "https://example.org/a.mp4", None),
        ("file:///tmp/a.mp4", "file", "/tmp/a.mp4", None),
        ("file://rel/a.mp4", "file", "rel/a.mp4", None),
        ("clip.mp4", "file", "clip.mp4", None),
    ],
)
def test_parse_uri(uri, kind, location, index):
    u = parse_uri(uri)
    assert (u.kind, u.location, u.index, u.uri) == (kind, location, index, uri)


@pytest.mark.parametrize(
    "uri, message",
    [
        ("", "empty source/output URI"),
        ("foo://x", "unknown URI scheme 'foo://'"),
        ("csi://left", "expected csi://N with a number N"),
        ("v4l2://camera", "expected v4l2:///dev/videoN"),
        ("file://", "no path after file://"),
        ("rtsp://", "no address after rtsp://"),
    ],
)
def test_bad_uris_are_one_line_input_errors(uri, message):
    with pytest.raises(InputError, match="^" + ".*" + message.replace("(", r"\(").replace(")", r"\)")) as e:
        parse_uri(uri)
    assert "\n" not in str(e.value)


def test_jetson_uri_spellings():
    assert jetson_uri(parse_uri("/dev/video1")) == "v4l2:///dev/video1"
    assert jetson_uri(parse_uri("0")) == "v4l2:///dev/video0"
    assert jetson_uri(parse_uri("clip.mp4")) == "file://clip.mp4"
    assert jetson_uri(parse_uri("csi://1")) == "csi://1"
    assert jetson_uri(parse_uri("rtsp://@:8554/x")) == "rtsp://@:8554/x"


def _have(*names):
    return lambda name: name in names


@pytest.mark.parametrize(
    "uri, have, expected",
    [
        ("clip.mp4", ("jetson", "opencv"), "pyav"),  # files: always PyAV under auto
        ("/dev/video0", ("jetson", "opencv"), "jetson"),
        ("/dev/video0", ("opencv",), "opencv"),
        ("/dev/video0", (), "pyav"),
        ("0", ("opencv",), "opencv"),
        ("csi://0", (), "jetson"),  # only jetson-utils can: opening it names the package
        ("picam://0", ("jetson", "opencv"), "picamera2"),
        ("rtsp://cam/live", ("jetson",), "jetson"),
        ("rtsp://cam/live", ("opencv",), "pyav"),
        ("webrtc://@:8554/in", ("opencv",), "jetson"),
        ("https://example.org/a.mp4", (), "pyav"),
    ],
)
def test_auto_source_backend(uri, have, expected, monkeypatch):
    monkeypatch.delenv("FACELINK_IO", raising=False)
    assert select_source_backend(parse_uri(uri), available=_have(*have)) == expected


@pytest.mark.parametrize(
    "uri, have, expected",
    [
        ("out.mp4", ("jetson", "opencv"), "pyav"),
        ("display://0", ("jetson", "opencv"), "jetson"),
        ("display://0", ("opencv",), "opencv"),
        ("display://0", (), "opencv"),  # opening it says what is missing
        ("rtsp://@:8554/face", ("opencv",), "jetson"),
        ("webrtc://@:8554/face", (), "jetson"),
        ("rtp://192.0.2.1:1234", (), "jetson"),
    ],
)
def test_auto_output_backend(uri, have, expected, monkeypatch):
    monkeypatch.delenv("FACELINK_IO", raising=False)
    assert select_output_backend(parse_uri(uri), available=_have(*have)) == expected


def test_explicit_backend_must_handle_the_uri(monkeypatch):
    monkeypatch.delenv("FACELINK_IO", raising=False)
    assert select_source_backend(parse_uri("clip.mp4"), "opencv") == "opencv"
    assert select_source_backend(parse_uri("clip.mp4"), "jetson") == "jetson"
    with pytest.raises(InputError, match="the picamera2 backend cannot read v4l2 sources"):
        select_source_backend(parse_uri("/dev/video0"), "picamera2")
    with pytest.raises(InputError, match="the pyav backend cannot write display outputs"):
        select_output_backend(parse_uri("display://0"), "pyav")
    with pytest.raises(InputError, match="display is an output, not a source"):
        select_source_backend(parse_uri("display://0"))
    with pytest.raises(InputError, match="is a source, not an output"):
        select_output_backend(parse_uri("csi://0"))
    with pytest.raises(ValueError, match="unknown I/O backend"):
        select_source_backend(parse_uri("clip.mp4"), "gstreamer")


def test_facelink_io_environment_overrides_auto(monkeypatch):
    monkeypatch.setenv("FACELINK_IO", "opencv")
    assert select_source_backend(parse_uri("clip.mp4"), available=_have()) == "opencv"
    assert select_source_backend(parse_uri("clip.mp4"), "pyav") == "pyav"  # an explicit choice wins


# ------------------------------------------------------------------ jetson-utils argv, Orin Nano encoder (pure)


def test_jetson_argv_uses_jetson_utils_option_names():
    assert jetson_argv("input") == ["facelink"]
    assert jetson_argv("input", width=1280, height=720, rate=30, flip="rotate-180", loop=-1, codec="H264") == [
        "facelink", "--input-width=1280", "--input-height=720", "--input-rate=30.0", "--input-codec=h264",
        "--input-flip=rotate-180", "--input-loop=-1",
    ]  # fmt: skip
    assert jetson_argv("output", rate=25, codec="h265", encoder="cpu", bitrate=2_000_000, headless=True, extra=["--output-save=x.mp4"]) == [
        "facelink", "--output-rate=25.0", "--output-codec=h265", "--output-encoder=cpu", "--bitrate=2000000", "--headless",
        "--output-save=x.mp4",
    ]  # fmt: skip
    with pytest.raises(ValueError, match="positive"):
        jetson_argv("input", width=0)
    with pytest.raises(ValueError, match="encoder must be"):
        jetson_argv("output", encoder="nvenc")
    with pytest.raises(ValueError, match="output options"):
        jetson_argv("input", encoder="cpu")
    with pytest.raises(ValueError):
        jetson_argv("sideways")


@pytest.mark.parametrize(
    "model, encoder",
    [
        ("NVIDIA Jetson Orin Nano Developer Kit", "cpu"),
        ("NVIDIA Jetson Orin Nano Engineering Reference Developer Kit Super", "cpu"),
        ("NVIDIA Jetson Orin NX Engineering Reference Developer Kit", None),
        ("Jetson AGX Orin", None),
        (None, None),
    ],
)
def test_orin_nano_records_with_the_cpu_encoder(model, encoder):
    assert default_jetson_encoder(model) == encoder


# ------------------------------------------------------------------ picamera2's BGR-named formats (pure)


def test_picamera_rgb888_is_bgr_in_memory():
    rgb = _pattern(3)
    as_delivered = np.ascontiguousarray(rgb[:, :, ::-1])  # libcamera RGB888: B,G,R bytes
    out = picamera_to_rgb(as_delivered, "RGB888")
    assert out.dtype == np.uint8 and out.flags["C_CONTIGUOUS"] and np.array_equal(out, rgb)
    assert out[0, 0].tolist() == [220, 30, 30]  # red stays red


def test_picamera_bgr888_is_rgb_in_memory():
    rgb = _pattern(5)
    out = picamera_to_rgb(rgb.copy(), "BGR888")
    assert np.array_equal(out, rgb) and out is not rgb


def test_picamera_four_channel_formats():
    rgb = _pattern(7)
    x = np.full(rgb.shape[:2] + (1,), 255, np.uint8)
    assert np.array_equal(picamera_to_rgb(np.concatenate([rgb[:, :, ::-1], x], axis=2), "XRGB8888"), rgb)
    assert np.array_equal(picamera_to_rgb(np.concatenate([rgb, x], axis=2), "XBGR8888"), rgb)


def test_picamera_conversion_rejects_bad_input():
    with pytest.raises(ValueError, match="unsupported picamera2 format 'YUV420'"):
        picamera_to_rgb(np.zeros((4, 4, 3), np.uint8), "YUV420")
    with pytest.raises(ValueError, match=r"must be uint8 \(H, W, 3\)"):
        picamera_to_rgb(np.zeros((4, 4, 4), np.uint8), "RGB888")
    with pytest.raises(ValueError, match="uint8"):
        picamera_to_rgb(np.zeros((4, 4, 3), np.float32), "RGB888")
    with pytest.raises(TypeError):
        picamera_to_rgb([[1, 2, 3]], "RGB888")


# ------------------------------------------------------------------ PyAV: files in and out


@pytest.mark.parametrize("spell", ["path", "file://"])
def test_pyav_file_round_trip(clip, spell):
    uri = str(clip) if spell == "path" else f"file://{clip}"
    with open_source(uri) as src:
        assert (src.backend, src.live, src.width, src.height) == ("pyav", False, 64, 48)
        assert abs(float(src.fps) - 30) < 0.01
        frames = list(src)
    assert len(frames) == 12
    assert [f.index for f in frames] == list(range(12))
    assert np.allclose([f.time for f in frames], np.arange(12) / 30, atol=1e-3)
    for i, f in enumerate(frames):
        assert f.image.shape == (48, 64, 3) and f.image.dtype == np.uint8
        assert np.abs(_quadrant_means(f.image) - _quadrant_means(_pattern(i))).max() < 12  # colours survive (RGB order)
        assert abs(f.image[36:, 44:].mean() - min(10 * i, 250)) < 6


def test_live_reader_rebases_times_to_the_first_frame(clip):
    with _LiveReader(VideoReader(str(clip))) as src:
        assert src.live and src.backend == "pyav" and (src.width, src.height) == (64, 48)
        first = src.read()
        rest = list(src)
    assert first.time == 0.0 and first.index == 0
    times = [first.time] + [f.time for f in rest]
    assert len(times) == 12 and all(b > a for a, b in itertools.pairwise(times))
    assert abs(times[-1] - 11 / 30) < 1e-3


def test_file_sources_fail_with_one_line(tmp_path):
    with pytest.raises(InputError, match="no such file"):
        open_source(str(tmp_path / "missing.mp4"))
    with pytest.raises(InputError, match="is a directory"):
        open_source(f"file://{tmp_path}")
    junk = tmp_path / "junk.mp4"
    junk.write_bytes(b"not a video at all" * 10)
    with pytest.raises(InputError, match="cannot open as video"):
        open_source(str(junk))


def test_missing_camera_device_is_an_input_error(monkeypatch):
    monkeypatch.delenv("FACELINK_IO", raising=False)
    dev = "/dev/video97"
    assert not os.path.exists(dev)
    with pytest.raises(InputError, match="no such camera device"):
        open_source(dev, backend="pyav")
    if HAS_CV2:
        with pytest.raises(InputError, match="no such camera device"):
            open_source(dev, backend="opencv")


def test_file_output_resizes_and_checks_its_directory(tmp_path):
    path = tmp_path / "o.mp4"
    with open_output(f"file://{path}", 32, 32, 25) as out:
        out.write(np.zeros((64, 64, 3), np.uint8), 0.0)  # another size: fitted
        out.write(np.full((32, 32, 3), 200, np.uint8), 0.04)
        assert out.is_open
    with open_source(str(path)) as src:
        frames = list(src)
    assert len(frames) == 2 and frames[1].image.shape == (32, 32, 3) and frames[1].image.mean() > 180
    with pytest.raises(InputError, match="output directory does not exist"):
        open_output(str(tmp_path / "nope" / "o.mp4"), 32, 32)
    with pytest.raises(ValueError, match="positive"):
        open_output(str(path), 0, 32)


# ------------------------------------------------------------------ OpenCV


@pytest.mark.skipif(not HAS_CV2, reason="OpenCV (cv2) is not installed: pip install 'facelink[opencv]'")
def test_opencv_reads_the_same_clip(clip):
    with open_source(str(clip), backend="opencv") as src:
        assert (src.backend, src.live, src.width, src.height) == ("opencv", False, 64, 48)
        assert abs(float(src.fps) - 30) < 0.01
        frames = list(src)
    assert len(frames) == 12 and [f.index for f in frames] == list(range(12))
    times = [f.time for f in frames]
    assert times[0] == 0.0 and all(b > a for a, b in itertools.pairwise(times))
    with open_source(str(clip)) as ref:
        for f, g in zip(frames, ref):
            assert f.image.shape == g.image.shape == (48, 64, 3)
            assert np.abs(f.image.astype(int) - g.image.astype(int)).mean() < 4  # RGB, not BGR


@pytest.mark.skipif(not HAS_CV2, reason="OpenCV (cv2) is not installed: pip install 'facelink[opencv]'")
def test_opencv_refuses_what_it_cannot_open(tmp_path):
    junk = tmp_path / "junk.avi"
    junk.write_bytes(b"\x00" * 100)
    with pytest.raises(InputError, match="OpenCV cannot open it as a video"):
        open_source(str(junk), backend="opencv")


def test_display_without_a_screen_says_so(monkeypatch):
    monkeypatch.delenv("DISPLAY", raising=False)
    monkeypatch.delenv("WAYLAND_DISPLAY", raising=False)
    monkeypatch.delenv("FACELINK_IO", raising=False)
    if HAS_JETSON:
        pytest.skip("jetson-utils is present: display://0 goes to its OpenGL window")
    with pytest.raises(BackendUnavailable, match="no display output") as e:
        check_output("display://0")
    assert "\n" not in str(e.value)
    with pytest.raises(BackendUnavailable, match="no display output"):
        open_output("display://0", 64, 48)


# ------------------------------------------------------------------ missing hardware packages: one line naming them


@pytest.mark.skipif(HAS_JETSON, reason="jetson-utils is installed here")
@pytest.mark.parametrize("uri", ["csi://0", "webrtc://@:8554/in"])
def test_jetson_uris_without_jetson_utils_name_the_package(uri):
    with pytest.raises(BackendUnavailable, match=r"needs jetson-utils .*--system-site-packages.*does not import here"):
        open_source(uri)


@pytest.mark.skipif(HAS_JETSON, reason="jetson-utils is installed here")
def test_stream_outputs_without_jetson_utils_name_the_package():
    with pytest.raises(BackendUnavailable, match="needs jetson-utils"):
        open_output("rtsp://@:8554/face", 64, 48)
    with pytest.raises(BackendUnavailable, match="needs jetson-utils"):
        check_output("webrtc://@:8554/face")


@pytest.mark.skipif(HAS_PICAMERA2, reason="picamera2 is installed here")
def test_picam_without_picamera2_names_the_package():
    with pytest.raises(BackendUnavailable, match=r"needs picamera2 \(on Raspberry Pi OS: sudo apt install python3-picamera2"):
        open_source("picam://0")


# ------------------------------------------------------------------ the real hardware paths (skip elsewhere)


@pytest.mark.skipif(not HAS_JETSON, reason="jetson-utils is not importable (runs on a Jetson with jetson-utils)")
def test_jetson_utils_reads_and_writes_a_file(clip, tmp_path):
    with open_source(str(clip), backend="jetson") as src:
        assert src.backend == "jetson" and (src.width, src.height) == (64, 48) and not src.live
        frames = list(src)
    assert len(frames) >= 10 and frames[0].image.shape == (48, 64, 3)
    assert np.abs(_quadrant_means(frames[0].image) - _quadrant_means(_pattern(0))).max() < 20
    out_path = tmp_path / "jetson.mp4"
    with open_output(str(out_path), 64, 48, 30, backend="jetson") as out:
        for f in frames:
            out.write(f.image, f.time)
    assert out_path.exists() and out_path.stat().st_size > 0


@pytest.mark.skipif(not HAS_PICAMERA2, reason="picamera2 is not installed (runs on a Raspberry Pi)")
def test_picamera2_captures_rgb_frames():
    try:
        src = open_source("picam://0", width=640, height=480)
    except InputError as e:
        pytest.skip(f"no Raspberry Pi camera attached: {e}")
    with src:
        frames = [src.read() for _ in range(5)]
    assert all(f.image.shape == (480, 640, 3) and f.image.dtype == np.uint8 for f in frames)
    assert all(b.time > a.time for a, b in itertools.pairwise(frames))


# ------------------------------------------------------------------ through the CLI: exit codes and one-line errors


@pytest.fixture()
def tx_key(tmp_path):
    kd = tmp_path / "keys"
    assert main(["keys", "generate", "tx", "--dir", str(kd)]) == 0
    return kd / "tx.key"


def _send(tx_key, src, *extra):
    return main(["send", src, "--to", "tcp://127.0.0.1:9", "--key", str(tx_key), "--no-curve", "--wait", "0", *extra])


def test_cli_send_bad_uris(tx_key, capsys, monkeypatch):
    monkeypatch.delenv("FACELINK_IO", raising=False)
    capsys.readouterr()
    assert _send(tx_key, "foo://x") == 1
    err = capsys.readouterr().err
    assert "facelink: error: foo://x: unknown URI scheme 'foo://'" in err and "Traceback" not in err
    assert _send(tx_key, "/dev/video97") == 1
    assert "no such camera device" in capsys.readouterr().err
    assert _send(tx_key, "display://0") == 1
    assert "is an output, not a source" in capsys.readouterr().err
    if not HAS_JETSON:
        assert _send(tx_key, "csi://0") == 1
        assert "needs jetson-utils" in capsys.readouterr().err
    if not HAS_PICAMERA2:
        assert _send(tx_key, "picam://0") == 1
        assert "needs picamera2" in capsys.readouterr().err
    assert _send(tx_key, "0", "--input-width", "0") == 2
    assert "--input-width must be positive" in capsys.readouterr().err
    assert _send(tx_key, "clip.mp4", "--io-backend", "gstreamer") == 2


def test_cli_receive_bad_outputs(tmp_path, capsys, monkeypatch):
    monkeypatch.delenv("DISPLAY", raising=False)
    monkeypatch.delenv("WAYLAND_DISPLAY", raising=False)
    monkeypatch.delenv("FACELINK_IO", raising=False)
    base = ["receive", "--listen", "tcp://127.0.0.1:*", "--no-curve", "--insecure", "--timeout", "1"]
    capsys.readouterr()
    assert main(base + ["-o", "bar://x"]) == 1
    assert "unknown URI scheme 'bar://'" in capsys.readouterr().err
    assert main(base + ["-o", "/dev/video0"]) == 1
    assert "is a source, not an output" in capsys.readouterr().err
    assert main(base + ["-o", str(tmp_path / "no" / "out.mp4")]) == 1
    assert "output directory does not exist" in capsys.readouterr().err
    assert main(base + ["-o", "x.mp4", "--bitrate", "0"]) == 2
    if not HAS_JETSON:
        assert main(base + ["-o", "rtsp://@:8554/face"]) == 1
        assert "needs jetson-utils" in capsys.readouterr().err
        assert main(base + ["-o", "display://0"]) == 1
        err = capsys.readouterr().err
        assert "no display output" in err and err.count("\n") == 1


# ------------------------------------------------------------------ `facelink send` on a live source


@pytest.fixture()
def face_clip(tmp_path, portrait):
    path = tmp_path / "face.mp4"
    img = portrait[::2, ::2].copy()  # 256 x 256
    with open_output(str(path), img.shape[1], img.shape[0], 30) as out:
        for i in range(20):
            out.write(np.roll(img, int(4 * np.sin(i / 4)), axis=1), i / 30)
    return path


def test_live_reference_keeps_the_source_open(face_clip, face_models):
    from facelink.cli._send import live_reference

    with _LiveReader(VideoReader(str(face_clip))) as src:
        reference, anchor = live_reference(src, face_models, 8, None)
        rest = list(src)  # the stream goes on after the reference frame
    assert anchor is None and reference.image.shape == (256, 256, 3)
    assert len(rest) == 19 and rest[0].index == 1


def test_send_streams_a_live_source_unpaced_from_one_open(face_clip, face_models, tx_key, monkeypatch, capsys):
    """The CLI's live branch: reference from the open source, then every later frame sent (a PyAV
    reader of a real clip stands in for the camera, as a stream URI would be read)."""
    import json

    from facelink.cli import _send
    from facelink.security import TrustStore, load_identity
    from facelink.transport import Receiver

    opened = []

    def open_live(args):
        opened.append(args.input)
        return _LiveReader(VideoReader(str(face_clip)))

    monkeypatch.setattr(_send, "open_capture", open_live)
    tx = load_identity(tx_key)
    result = {}
    with Receiver("tcp://127.0.0.1:*", None, trust=TrustStore(keys=(tx.public,)), curve=False) as rx:
        t = threading.Thread(
            target=lambda: result.setdefault("code", main(["send", "camera://", "--to", rx.bound, "--key", str(tx_key), "--no-curve", "--json", "--backend", "onnxruntime"])),
            daemon=True,
        )
        t.start()
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline and not (rx.core.summary() and rx.core.summary().end_verified):
            rx.poll(0.05)
        t.join(30)
        v = rx.core.summary()
    assert result.get("code") == 0 and opened == ["camera://"]
    out = json.loads([line for line in capsys.readouterr().out.splitlines() if line.startswith("{")][0])
    assert out["frames_sent"] + out["frames_skipped"] == 19  # every frame after the reference frame
    assert v.end_verified and v.intact and v.frames_verified == out["frames_sent"] > 0


def test_send_a_camera_with_a_microphone(face_clip, face_models, tx_key, monkeypatch, capsys):
    """``--mic``: a live source's sound (FFmpeg's sine generator stands in for an ALSA mic) goes
    into the signed session as AUDIO packets that the receiver verifies."""
    import json

    from facelink.bitstream import PacketType, packet_type
    from facelink.cli import _send
    from facelink.security import TrustStore, load_identity
    from facelink.transport import Receiver

    monkeypatch.setattr(_send, "open_capture", lambda args: _LiveReader(VideoReader(str(face_clip))))
    tx = load_identity(tx_key)
    result, audio = {}, []
    argv = ["send", "camera://", "--to", "", "--key", str(tx_key), "--no-curve", "--json", "--backend", "onnxruntime",
            "--mic", "lavfi:sine=frequency=440:sample_rate=44100"]  # fmt: skip
    with Receiver("tcp://127.0.0.1:*", None, trust=TrustStore(keys=(tx.public,)), curve=False) as rx:
        argv[3] = rx.bound
        t = threading.Thread(target=lambda: result.setdefault("code", main(argv)), daemon=True)
        t.start()
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline and not (rx.core.summary() and rx.core.summary().end_verified):
            for r in rx.poll(0.05):
                if packet_type(r.delivery.packet) == PacketType.AUDIO and r.delivery.verdict is not None:
                    audio.append(r.delivery.packet)
        t.join(30)
        v = rx.core.summary()
    assert result.get("code") == 0
    out = json.loads([line for line in capsys.readouterr().out.splitlines() if line.startswith("{")][0])
    assert out["audio_packets"] == len(audio) > 0 and v.end_verified and v.intact


@pytest.mark.parametrize(
    ("extra", "message"),
    [(["--mic", "default"], "a microphone is FORMAT:DEVICE"), (["--mic", "alsa:hw:99"], "cannot open the microphone"),
     (["--mic", "lavfi:sine", "--no-audio"], "--mic and --no-audio contradict")],
)  # fmt: skip
def test_microphone_problems_are_one_line_errors(face_clip, face_models, tx_key, monkeypatch, capsys, extra, message):
    from facelink.cli import _send

    monkeypatch.setattr(_send, "open_capture", lambda args: _LiveReader(VideoReader(str(face_clip))))
    code = main(["send", "camera://", "--to", "tcp://127.0.0.1:9", "--key", str(tx_key), "--no-curve", "--backend", "onnxruntime", *extra])
    err = capsys.readouterr().err
    assert code != 0 and message in err
