"""facelink.capi: the flat, C-friendly API (status codes, per-thread errors, handles, threads).

The C side (native/) is tested by ``make -C native test``; here: the Python contract, the
agreement of the Python enums with native/include/facelink.h, and (when a C compiler is
available) libfacelink.so loaded into this running interpreter through ctypes.
"""

from __future__ import annotations

import ctypes
import json
import os
import re
import shutil
import subprocess
import threading
import time
from fractions import Fraction
from pathlib import Path

import numpy as np
import pytest
from facelink import capi
from facelink.capi import FrameKind, PixelFormat, Status

ROOT = Path(__file__).resolve().parents[1]
HEADER = ROOT / "native" / "include" / "facelink.h"
SID = bytes(range(16))
CREATED = 1_700_000_000_000_000


def _enum(prefix: str) -> dict[str, int]:
    text = HEADER.read_text()
    return {m[0]: int(m[1]) for m in re.findall(rf"\b{prefix}([A-Z0-9_]+) = (\d+)", text)}


# --- contract with the C header ----------------------------------------------------------


def test_status_codes_match_the_header() -> None:
    assert _enum("FACELINK_") and {k: v for k, v in _enum("FACELINK_").items() if k == "OK" or k.startswith("E_")} == {
        s.name: s.value for s in Status
    }


def test_pixel_formats_and_frame_kinds_match_the_header() -> None:
    assert _enum("FACELINK_PIXEL_") == {f.name: f.value for f in PixelFormat}
    assert _enum("FACELINK_FRAME_") == {k.name: k.value for k in FrameKind}


def test_abi_version_matches_the_header() -> None:
    text = HEADER.read_text()
    major = int(re.search(r"#define FACELINK_ABI_VERSION_MAJOR (\d+)", text)[1])  # type: ignore[index]
    minor = int(re.search(r"#define FACELINK_ABI_VERSION_MINOR (\d+)", text)[1])  # type: ignore[index]
    assert (capi.ABI_VERSION_MAJOR, capi.ABI_VERSION_MINOR) == (major, minor)
    assert capi.ABI_VERSION == (major << 16) | minor


def test_status_names_and_bytes_per_pixel() -> None:
    assert capi.status_name(0) == "FACELINK_OK"
    assert capi.status_name(Status.E_BAD_HANDLE) == "FACELINK_E_BAD_HANDLE"
    assert capi.status_name(99) == "FACELINK_E_UNKNOWN"
    assert [capi.bytes_per_pixel(f) for f in PixelFormat] == [3, 3, 4, 4, 1]
    assert capi.bytes_per_pixel(0) == 0
    assert capi.version() == __import__("facelink").__version__


# --- errors and last_error ---------------------------------------------------------------


def test_success_clears_last_error() -> None:
    st, h = capi.receiver_create(99)
    assert (st, h) == (Status.E_INVALID_ARGUMENT, 0)
    assert capi.last_error() == "facelink_receiver_create: format 99 is not a pixel format (1 RGB24, 2 BGR24, 3 RGBA32, 4 BGRA32, 5 GRAY8)"
    st, h = capi.receiver_create()
    assert st == Status.OK and capi.last_error() == ""
    assert capi.receiver_destroy(h) == Status.OK


def test_last_error_is_per_thread() -> None:
    barrier = threading.Barrier(3)
    seen: dict[int, list[str]] = {0: [], 1: [], 2: []}

    def worker(i: int) -> None:
        for n in range(30):
            if i == 0:
                capi.receiver_create(100 + n)
            elif i == 1:
                capi.receiver_create(yaw=-31 - n)
            else:
                _, h = capi.receiver_create()
                capi.receiver_destroy(h)
            barrier.wait(timeout=10)  # everyone has failed (or succeeded) before anyone reads
            seen[i].append(capi.last_error())
            barrier.wait(timeout=10)

    threads = [threading.Thread(target=worker, args=(i,)) for i in range(3)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=30)
    assert seen[0] == [f"facelink_receiver_create: format {100 + n} is not a pixel format (1 RGB24, 2 BGR24, 3 RGBA32, 4 BGRA32, 5 GRAY8)" for n in range(30)]
    assert seen[1] == [f"facelink_receiver_create: yaw must be in -30..30, got {-31 - n}" for n in range(30)]
    assert seen[2] == [""] * 30


def test_unexpected_exceptions_become_internal_errors(monkeypatch: pytest.MonkeyPatch) -> None:
    def boom(*a, **k):
        raise RuntimeError("boom\nsecond line")

    monkeypatch.setattr(capi._receiver, "_pose_offset", boom)
    st, h = capi.receiver_create()
    assert (st, h) == (Status.E_INTERNAL, 0)
    assert capi.last_error().startswith("facelink_receiver_create: internal error (RuntimeError: boom second line)")
    assert "\n" not in capi.last_error()


# --- handles -----------------------------------------------------------------------------


def test_receiver_handle_lifecycle() -> None:
    live = capi._live_handles()
    st, r = capi.receiver_create()
    assert st == Status.OK and r > 0 and capi._live_handles() == live + 1
    assert capi.receiver_push(r, None) == (Status.E_INVALID_ARGUMENT, None)
    assert capi.last_error() == "facelink_receiver_push: packet is NULL"
    assert capi.receiver_push(r, b"") == (Status.E_INVALID_ARGUMENT, None)
    assert capi.last_error() == "facelink_receiver_push: packet size is 0"
    assert capi.receiver_push(r, b"not a packet")[0] == Status.E_INVALID_PACKET
    assert capi.last_error().startswith("facelink_receiver_push: bad packet magic")
    assert capi.receiver_push(r, "text") == (Status.E_INVALID_ARGUMENT, None)
    assert capi.sender_start(r) == (Status.E_BAD_HANDLE, None)
    assert capi.last_error() == f"facelink_sender_start: {r:#x} is a receiver handle, not a sender handle"
    assert capi.receiver_destroy(r) == Status.OK and capi._live_handles() == live
    assert capi.receiver_push(r, b"x") == (Status.E_BAD_HANDLE, None)
    assert capi.last_error() == f"facelink_receiver_push: receiver handle {r:#x} was destroyed"
    assert capi.receiver_destroy(r) == Status.E_BAD_HANDLE
    assert capi.receiver_destroy(None) == Status.OK and capi.receiver_destroy(0) == Status.OK
    assert capi.last_error() == ""


@pytest.mark.parametrize(
    ("handle", "message"),
    [
        (None, "receiver handle is NULL"),
        (0, "receiver handle is NULL"),
        (0x7FFF0002, "0x7fff0002 is not a FaceLink handle"),
        (-5, "-0x5 is not a FaceLink handle"),
        (True, "receiver handle must be an integer, got bool"),
        ("0x12", "receiver handle must be an integer, got str"),
    ],
)
def test_bad_handles(handle: object, message: str) -> None:
    assert capi.receiver_push(handle, b"x") == (Status.E_BAD_HANDLE, None)
    assert capi.last_error() == f"facelink_receiver_push: {message}"


def test_handles_are_unique_across_threads_and_never_reused() -> None:
    got: list[int] = []
    lock = threading.Lock()

    def worker() -> None:
        mine = []
        for _ in range(50):
            st, h = capi.receiver_create()
            assert st == Status.OK
            mine.append(h)
            assert capi.receiver_destroy(h) == Status.OK
        with lock:
            got.extend(mine)

    threads = [threading.Thread(target=worker) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=30)
    assert len(got) == 200 and len(set(got)) == 200


class _SlowRenderer:
    """Stands in for the receiver's RendererSession: each render blocks until released."""

    verifier = None

    def __init__(self) -> None:
        self.entered = threading.Event()
        self.release = threading.Event()
        self.events: list[str] = []

    def render(self, packet: bytes):
        self.entered.set()
        if not self.release.wait(timeout=10):
            raise TimeoutError("test never released the renderer")
        self.events.append("push returned")


def _wait_until(cond, timeout: float = 10.0) -> bool:
    deadline = time.monotonic() + timeout
    while not cond():
        if time.monotonic() > deadline:
            return False
        time.sleep(0.005)
    return True


def test_destroy_waits_for_the_call_in_flight() -> None:
    st, r = capi.receiver_create()
    assert st == Status.OK
    slow = _SlowRenderer()
    capi._registry[r].session = slow  # type: ignore[attr-defined]
    results: list[tuple] = []
    pusher = threading.Thread(target=lambda: results.append(capi.receiver_push(r, b"FL")))
    pusher.start()
    assert slow.entered.wait(timeout=10)

    def destroy() -> None:
        status = capi.receiver_destroy(r)
        slow.events.append("destroy returned")
        results.append(("destroy", status))

    destroyer = threading.Thread(target=destroy)
    destroyer.start()
    # destroy unregisters the handle at once, then waits for the push in flight
    assert _wait_until(lambda: capi.receiver_push(r, b"FL") == (Status.E_BAD_HANDLE, None))
    assert "destroy returned" not in slow.events
    slow.release.set()
    pusher.join(timeout=10)
    destroyer.join(timeout=10)
    assert slow.events == ["push returned", "destroy returned"], "destroy returned before the push in flight"
    assert results == [(Status.OK, None), ("destroy", Status.OK)]


# --- images ------------------------------------------------------------------------------


def _layout(rgb: np.ndarray, fmt: PixelFormat, pad: int) -> tuple[bytes, int]:
    h, w, _ = rgb.shape
    bpp = capi.bytes_per_pixel(fmt)
    buf = np.full((h, w * bpp + pad), 0xAB, np.uint8)
    px = buf[:, : w * bpp].reshape(h, w, bpp)
    if fmt == PixelFormat.GRAY8:
        px[:, :, 0] = rgb[:, :, 0]
    else:
        order = [0, 1, 2] if fmt in (PixelFormat.RGB24, PixelFormat.RGBA32) else [2, 1, 0]
        px[:, :, :3] = rgb[:, :, order]
    return buf.tobytes(), w * bpp + pad


@pytest.mark.parametrize("fmt", list(PixelFormat))
@pytest.mark.parametrize("pad", [0, 13])
def test_image_input_layouts(fmt: PixelFormat, pad: int) -> None:
    rng = np.random.default_rng(3)
    rgb = rng.integers(0, 256, (7, 5, 3), dtype=np.uint8)
    if fmt == PixelFormat.GRAY8:
        rgb[:, :, 1] = rgb[:, :, 2] = rgb[:, :, 0]
    data, stride = _layout(rgb, fmt, pad)
    out = capi._image_rgb("frame", bytearray(data[: stride * 6 + 5 * capi.bytes_per_pixel(fmt)]), 5, 7, stride, fmt)
    np.testing.assert_array_equal(out, rgb)
    assert out.flags.c_contiguous and out.flags.owndata


def test_image_input_is_copied() -> None:
    src = bytearray(np.arange(4 * 4 * 3, dtype=np.uint8).tobytes())
    out = capi._image_rgb("frame", src, 4, 4, 12, PixelFormat.RGB24)
    src[:] = bytes(len(src))
    assert out.sum() == sum(range(48))


@pytest.mark.parametrize("fmt", list(PixelFormat))
def test_pixel_output_layouts(fmt: PixelFormat) -> None:
    rgb = np.random.default_rng(4).integers(0, 256, (3, 4, 3), dtype=np.uint8)
    out = np.frombuffer(capi._pixels_out(rgb, fmt), np.uint8).reshape(3, 4, capi.bytes_per_pixel(fmt))
    if fmt == PixelFormat.GRAY8:
        r, g, b = (rgb[:, :, i].astype(int) for i in range(3))
        np.testing.assert_array_equal(out[:, :, 0], (77 * r + 150 * g + 29 * b + 128) >> 8)
    else:
        order = [0, 1, 2] if fmt in (PixelFormat.RGB24, PixelFormat.RGBA32) else [2, 1, 0]
        np.testing.assert_array_equal(out[:, :, :3], rgb[:, :, order])
        if out.shape[2] == 4:
            assert (out[:, :, 3] == 255).all()


_REF = bytes(16 * 16 * 3)


@pytest.mark.parametrize(
    ("args", "kwargs", "message"),
    [
        ((None, 16, 16, 48, 1), {}, "reference data is NULL"),
        ((_REF, 16, 16, 47, 1), {}, "reference stride 47 is less than width * bytes_per_pixel = 48"),
        ((_REF[:700], 16, 16, 48, 1), {}, "reference size 700 is less than stride * (height - 1) + width * bytes_per_pixel = 768"),
        ((_REF, 16, 16, 48, 0), {}, "reference format 0 is not a pixel format"),
        ((_REF, 0, 16, 48, 1), {}, "reference width must be in 1..16384, got 0"),
        ((_REF, 16, 16.0, 48, 1), {}, "reference height must be an integer, got float"),
        ((np.zeros((16, 32, 3), np.uint8)[:, ::2], 16, 16, 48, 1), {}, "reference data must be a contiguous buffer"),
        ((_REF, 16, 16, 48, 1), {"width": 0}, "width must be in 1..65535, got 0"),
        ((_REF, 16, 16, 48, 1), {"fps_num": 30, "fps_den": 0}, "fps_den must be in 1..2147483648, got 0"),
        ((_REF, 16, 16, 48, 1), {"quality": "ultra"}, "quality must be one of low, medium, high, got 'ultra'"),
        ((_REF, 16, 16, 48, 1), {"kbps": float("inf")}, "kbps must be finite, got inf"),
        ((_REF, 16, 16, 48, 1), {"session_id": b"short"}, "session_id must be 16 bytes, got 5"),
        ((_REF, 16, 16, 48, 1), {"created_us": -2}, "created_us must be in -1..9223372036854775807, got -2"),
    ],
)
def test_sender_create_validates_before_loading_anything(args: tuple, kwargs: dict, message: str) -> None:
    kw = {"width": 64, "height": 48} | kwargs
    assert capi.sender_create(*args, **kw) == (Status.E_INVALID_ARGUMENT, 0)
    assert capi.last_error().startswith(f"facelink_sender_create: {message}")


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"yaw": 31.0}, "yaw must be in -30..30, got 31"),
        ({"pitch": float("nan")}, "pitch must be finite, got nan"),
        ({"roll": "1"}, "roll must be a number, got str"),
        ({"backend": ""}, "backend is empty"),
        ({"backend": "cuda9"}, "unknown backend 'cuda9'; choose one of"),
        ({"target": b"\0" * 12, "target_width": 2, "target_height": 2, "target_stride": 5}, "target stride 5 is less than width * bytes_per_pixel = 6"),
    ],
)
def test_receiver_create_validates(kwargs: dict, message: str) -> None:
    assert capi.receiver_create(**kwargs) == (Status.E_INVALID_ARGUMENT, 0)
    assert capi.last_error().startswith(f"facelink_receiver_create: {message}")


# --- files, keys, verification -------------------------------------------------------------


def test_image_load(tmp_path: Path) -> None:
    from PIL import Image

    rgb = np.random.default_rng(5).integers(0, 256, (6, 9, 3), dtype=np.uint8)
    Image.fromarray(rgb).save(tmp_path / "x.png")
    st, data, w, h, stride = capi.image_load(str(tmp_path / "x.png"), PixelFormat.BGRA32)
    assert (st, w, h, stride) == (Status.OK, 9, 6, 36)
    px = np.frombuffer(data, np.uint8).reshape(6, 9, 4)
    np.testing.assert_array_equal(px[:, :, 2::-1], rgb)
    assert capi.image_load(os.fsencode(tmp_path / "x.png"))[0] == Status.OK  # bytes paths, as from C
    assert capi.image_load(str(tmp_path / "missing.png")) == (Status.E_INPUT, None, 0, 0, 0)
    assert capi.last_error() == f"facelink_image_load: {tmp_path / 'missing.png'}: no such file"
    assert capi.image_load(None)[0] == Status.E_INVALID_ARGUMENT and capi.last_error() == "facelink_image_load: path is NULL"


def test_file_errors(tmp_path: Path) -> None:
    assert capi.encode_file(None, "x.flk") == (Status.E_INVALID_ARGUMENT, None)
    assert capi.encode_file(str(tmp_path / "none.mp4"), str(tmp_path / "nodir" / "o.flk"))[0] == Status.E_INPUT
    assert capi.last_error().endswith("nodir: output directory does not exist")
    assert capi.encode_file(str(tmp_path / "none.mp4"), str(tmp_path / "o.flk"))[0] == Status.E_INPUT
    assert not (tmp_path / "o.flk").exists() and not list(tmp_path.glob(".o.flk*"))
    junk = tmp_path / "junk.flk"
    junk.write_bytes(b"not a stream at all")
    assert capi.decode_file(str(junk), str(tmp_path / "o.mp4"), insecure=True)[0] == Status.E_INVALID_PACKET
    assert not (tmp_path / "o.mp4").exists()
    assert capi.decode_file(str(junk), str(tmp_path / "o.mp4"), yaw=40)[0] == Status.E_INVALID_ARGUMENT
    assert capi.decode_file(str(junk), str(tmp_path / "o.mp4"), insecure=2)[0] == Status.E_INVALID_ARGUMENT
    assert capi.last_error() == "facelink_decode_file: insecure must be 0 or 1, got 2"


def test_keys_generate(tmp_path: Path) -> None:
    if not capi.features()["keys"]:
        pytest.skip("facelink.security has no key generation in this build")
    st, fp, report = capi.keys_generate("kiosk-1", str(tmp_path))
    assert st == Status.OK and re.fullmatch(r"[0-9a-f]{16}", fp)
    assert json.loads(report) == {"name": "kiosk-1", "fingerprint": fp, "key": str(tmp_path / "kiosk-1.key"), "pub": str(tmp_path / "kiosk-1.pub")}
    assert (tmp_path / "kiosk-1.key").stat().st_mode & 0o777 == 0o600
    assert capi.keys_generate("kiosk-1", str(tmp_path))[0] == Status.E_INPUT
    assert "already exists" in capi.last_error()
    assert capi.keys_generate("../x", str(tmp_path)) == (Status.E_INVALID_ARGUMENT, None, None)
    assert capi.keys_generate(None) == (Status.E_INVALID_ARGUMENT, None, None)


def test_optional_features_report_unsupported(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setattr(capi._keys, "_security_module", lambda: None)
    monkeypatch.setattr(capi._keys, "_verify_function", lambda: None)
    assert capi.features() == {"keys": False, "verify": False}
    assert capi.keys_generate("k", str(tmp_path)) == (Status.E_UNSUPPORTED, None, None)
    assert capi.last_error().startswith("facelink_keys_generate: key management is not available in this facelink build")
    assert capi.verify_file("v.mp4") == (Status.E_UNSUPPORTED, None)
    assert capi.last_error().startswith("facelink_verify_file: watermark verification is not available")


def test_verify_file_wiring(monkeypatch: pytest.MonkeyPatch) -> None:
    calls = []

    def fake_verify(path: str, trust: str | None = None) -> dict:
        calls.append((path, trust))
        return {"synthetic": True, "p_value": 1e-9, "sender": None}

    monkeypatch.setattr(capi._keys, "_verify_function", lambda: fake_verify)
    st, report = capi.verify_file(b"/v/clip.mp4", "/trust")
    assert st == Status.OK and json.loads(report) == {"p_value": 1e-9, "sender": None, "synthetic": True}
    assert capi.verify_file("/v/clip.mp4")[0] == Status.OK
    assert calls == [("/v/clip.mp4", "/trust"), ("/v/clip.mp4", None)]


# --- with the face models: equality with the Python API -----------------------------------

SIZE = 192


@pytest.fixture(scope="module")
def clip(portrait, face_models) -> list[np.ndarray]:
    from PIL import Image

    base = Image.fromarray(portrait).resize((SIZE, SIZE), Image.Resampling.LANCZOS)
    return [np.asarray(base.rotate(2.0 * i, resample=Image.Resampling.BILINEAR, translate=(i, 0))) for i in range(4)]


@pytest.fixture(scope="module")
def python_stream(clip) -> tuple[list[bytes], list[np.ndarray]]:
    """Packets and decoded frames from the plain Python API."""
    import dataclasses

    from facelink.codec import QUALITY_PRESETS
    from facelink.face import create_models, create_tracker
    from facelink.io import Frame
    from facelink.receiver import FrameRenderer
    from facelink.sender import FrameEncoder, make_reference

    ref = make_reference(clip[0], create_models("auto"))
    enc = FrameEncoder(ref, QUALITY_PRESETS["medium"], width=SIZE, height=SIZE, fps=Fraction(30), tracker=create_tracker("auto"), session_id=SID)
    enc.codec.header = dataclasses.replace(enc.codec.header, created_us=CREATED)
    packets = enc.start() + [enc.push(Frame(f, i / 30, i))[0] for i, f in enumerate(clip)] + [enc.end()]
    renderer = FrameRenderer()
    frames = [r.image.copy() for r in renderer.render_all(packets)]
    return packets, frames


def _capi_send(clip: list[np.ndarray], fmt: PixelFormat = PixelFormat.RGB24, pad: int = 0) -> list[bytes]:
    data, stride = _layout(clip[0], fmt, pad)
    st, s = capi.sender_create(data, SIZE, SIZE, stride, fmt, width=SIZE, height=SIZE, session_id=SID, created_us=CREATED)
    assert st == Status.OK, capi.last_error()
    st, packets = capi.sender_start(s)
    assert st == Status.OK
    for i, f in enumerate(clip):
        data, stride = _layout(f, fmt, pad)
        st, pk, kind = capi.sender_push(s, data, SIZE, SIZE, stride, fmt, i, i / 30)
        assert st == Status.OK and kind in (FrameKind.KEY, FrameKind.PREDICTED), capi.last_error()
        packets += pk
    st, pk = capi.sender_end(s)
    assert capi.sender_destroy(s) == Status.OK
    return packets + pk


def test_sender_matches_the_python_api(clip, python_stream) -> None:
    assert _capi_send(clip) == python_stream[0]
    assert _capi_send(clip, PixelFormat.BGRA32, pad=8) == python_stream[0]


def test_receivers_on_threads_match_the_python_api(python_stream) -> None:
    packets, frames = python_stream
    out: dict[PixelFormat, list[bytes]] = {}

    def decode(fmt: PixelFormat) -> None:
        st, r = capi.receiver_create(fmt)
        got = []
        for p in packets:
            st, f = capi.receiver_push(r, p)
            assert st == Status.OK, capi.last_error()
            if f is not None:
                assert (f.width, f.height, f.stride, f.format) == (SIZE, SIZE, SIZE * capi.bytes_per_pixel(fmt), fmt)
                assert f.index == len(got) and not f.held and f.kind in (FrameKind.KEY, FrameKind.PREDICTED)
                got.append(f.data)
        capi.receiver_destroy(r)
        out[fmt] = got

    threads = [threading.Thread(target=decode, args=(fmt,)) for fmt in (PixelFormat.RGB24, PixelFormat.BGR24, PixelFormat.GRAY8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=120)
    assert out[PixelFormat.RGB24] == [f.tobytes() for f in frames]
    assert out[PixelFormat.BGR24] == [capi._pixels_out(f, PixelFormat.BGR24) for f in frames]
    assert out[PixelFormat.GRAY8] == [capi._pixels_out(f, PixelFormat.GRAY8) for f in frames]


def test_sender_call_order(clip) -> None:
    f = clip[0]
    st, s = capi.sender_create(f, SIZE, SIZE, SIZE * 3, PixelFormat.RGB24, width=SIZE, height=SIZE)
    assert st == Status.OK
    assert capi.sender_push(s, f, SIZE, SIZE, SIZE * 3, 1, 0, 0.0) == (Status.E_STATE, None, 0)
    assert capi.last_error() == "facelink_sender_push: call facelink_sender_start first and send its packets"
    assert capi.sender_end(s) == (Status.E_STATE, None)
    assert capi.sender_start(s)[0] == Status.OK
    assert capi.sender_start(s) == (Status.E_STATE, None)
    assert capi.sender_push(s, f[:96], SIZE, 96, SIZE * 3, 1, 0, 0.0)[0] == Status.E_INVALID_ARGUMENT
    assert capi.last_error() == f"facelink_sender_push: frame is {SIZE}x96, the sender was created for {SIZE}x{SIZE}"
    assert capi.sender_push(s, f, SIZE, SIZE, SIZE * 3, 1, 3, 0.0)[0] == Status.OK
    assert capi.sender_push(s, f, SIZE, SIZE, SIZE * 3, 1, 3, 0.1)[0] == Status.E_INVALID_ARGUMENT
    assert capi.last_error() == "facelink_sender_push: index 3 must be greater than the previous frame's 3"
    st, stats = capi.sender_stats(s)
    assert st == Status.OK and (stats.frames, stats.face_frames, stats.key_frames) == (1, 1, 1)
    assert capi.sender_end(s)[0] == Status.OK
    assert capi.sender_push(s, f, SIZE, SIZE, SIZE * 3, 1, 4, 0.2) == (Status.E_STATE, None, 0)
    assert capi.sender_destroy(s) == Status.OK


def test_sender_reference_without_a_face(face_models) -> None:
    blank = bytes(64 * 64 * 3)
    assert capi.sender_create(blank, 64, 64, 192, 1, width=64, height=64) == (Status.E_NO_FACE, 0)
    assert capi.last_error() == "facelink_sender_create: reference image: no face found"


# --- libfacelink.so inside this interpreter (ctypes) ---------------------------------------


@pytest.fixture(scope="module")
def libfacelink(tmp_path_factory: pytest.TempPathFactory) -> ctypes.CDLL:
    if not (shutil.which("make") and (shutil.which("cc") or shutil.which("gcc"))):
        pytest.skip("no C compiler or make: libfacelink.so cannot be built here")
    build = tmp_path_factory.mktemp("native")
    import sys

    done = subprocess.run(
        ["make", "-C", str(ROOT / "native"), "lib", f"BUILD={build}", f"PYTHON={sys.executable}"],
        capture_output=True, text=True, timeout=300, check=False,
    )  # fmt: skip
    if done.returncode != 0:
        pytest.fail(f"make -C native lib failed:\n{done.stdout}\n{done.stderr}")
    lib = ctypes.CDLL(str(build / "libfacelink.so"))
    lib.facelink_last_error.restype = ctypes.c_char_p
    lib.facelink_version.restype = ctypes.c_char_p
    lib.facelink_status_name.restype = ctypes.c_char_p
    lib.facelink_receiver_push.argtypes = [ctypes.c_void_p, ctypes.c_char_p, ctypes.c_size_t, ctypes.c_void_p, ctypes.POINTER(ctypes.c_int32)]
    lib.facelink_receiver_destroy.argtypes = [ctypes.c_void_p]
    return lib


def test_c_library_inside_a_running_interpreter(libfacelink: ctypes.CDLL) -> None:
    lib = libfacelink
    assert lib.facelink_abi_version() == capi.ABI_VERSION
    assert lib.facelink_init() == 0 and lib.facelink_last_error() == b""
    assert lib.facelink_version().decode() == capi.version()
    handle = ctypes.c_void_p()
    assert lib.facelink_receiver_create(None, ctypes.byref(handle)) == 0
    frame = ctypes.create_string_buffer(128)  # >= sizeof(facelink_frame)
    has = ctypes.c_int32(7)
    assert lib.facelink_receiver_push(handle, b"junk", 4, frame, ctypes.byref(has)) == Status.E_INVALID_PACKET
    assert lib.facelink_last_error().startswith(b"facelink_receiver_push: bad packet magic") and has.value == 0
    assert lib.facelink_status_name(Status.E_INVALID_PACKET) == b"FACELINK_E_INVALID_PACKET"
    # the same process-wide handle table: a C handle is a capi handle
    assert capi.receiver_destroy(handle.value) == Status.OK
    assert lib.facelink_receiver_destroy(handle) == Status.E_BAD_HANDLE
    assert lib.facelink_last_error().decode() == f"facelink_receiver_destroy: receiver handle {handle.value:#x} was destroyed"


class _CImage(ctypes.Structure):
    _fields_ = [
        ("data", ctypes.c_void_p), ("size", ctypes.c_size_t), ("width", ctypes.c_int32),
        ("height", ctypes.c_int32), ("stride", ctypes.c_int32), ("format", ctypes.c_int32),
    ]  # fmt: skip


class _CSenderConfig(ctypes.Structure):
    _fields_ = [
        ("width", ctypes.c_int32), ("height", ctypes.c_int32), ("fps_num", ctypes.c_int32),
        ("fps_den", ctypes.c_int32), ("quality", ctypes.c_char_p), ("kbps", ctypes.c_double),
        ("key_interval", ctypes.c_int32), ("backend", ctypes.c_char_p), ("session_id", ctypes.c_void_p),
        ("created_us", ctypes.c_int64),
    ]  # fmt: skip


class _CPackets(ctypes.Structure):
    _fields_ = [("count", ctypes.c_size_t), ("data", ctypes.c_void_p), ("offsets", ctypes.POINTER(ctypes.c_size_t))]

    def packets(self) -> list[bytes]:
        return [ctypes.string_at(self.data + self.offsets[i], self.offsets[i + 1] - self.offsets[i]) for i in range(self.count)]


class _CFrame(ctypes.Structure):
    _fields_ = [("index", ctypes.c_int64), ("time", ctypes.c_double), ("kind", ctypes.c_int32), ("held", ctypes.c_int32), ("image", _CImage)]


def _gc_objects() -> int:
    import gc

    gc.collect()
    return len(gc.get_objects())


def test_c_library_round_trip_leaks_no_python_objects(libfacelink: ctypes.CDLL, clip, python_stream) -> None:
    """A sender and a receiver driven through the C ABI: same packets and frames as the Python
    API, and no Python objects left behind per call (LSan and memcheck cannot see leaked
    references to GC-tracked objects: the collector's lists keep them reachable)."""
    lib = libfacelink
    cfg = _CSenderConfig()
    lib.facelink_sender_config_init(ctypes.byref(cfg))
    sid = ctypes.create_string_buffer(SID, 16)
    cfg.width, cfg.height, cfg.session_id, cfg.created_us = SIZE, SIZE, ctypes.cast(sid, ctypes.c_void_p), CREATED
    frames = [ctypes.create_string_buffer(f.tobytes(), f.nbytes) for f in clip]
    images = [_CImage(ctypes.cast(b, ctypes.c_void_p), f.nbytes, SIZE, SIZE, SIZE * 3, PixelFormat.RGB24) for b, f in zip(frames, clip)]
    sender, receiver = ctypes.c_void_p(), ctypes.c_void_p()
    assert lib.facelink_sender_create(ctypes.byref(cfg), ctypes.byref(images[0]), ctypes.byref(sender)) == 0, lib.facelink_last_error()
    assert lib.facelink_receiver_create(None, ctypes.byref(receiver)) == 0
    lib.facelink_sender_push.argtypes = [ctypes.c_void_p, ctypes.c_void_p, ctypes.c_int64, ctypes.c_double, ctypes.c_void_p, ctypes.c_void_p]
    lib.facelink_receiver_push.argtypes = [ctypes.c_void_p, ctypes.c_char_p, ctypes.c_size_t, ctypes.c_void_p, ctypes.POINTER(ctypes.c_int32)]
    sent: list[bytes] = []
    got: list[bytes] = []

    def deliver(pk: _CPackets) -> None:
        for p in pk.packets():
            sent.append(p)
            frame, has = _CFrame(), ctypes.c_int32()
            assert lib.facelink_receiver_push(receiver, p, len(p), ctypes.byref(frame), ctypes.byref(has)) == 0
            if has.value:
                got.append(ctypes.string_at(frame.image.data, frame.image.size))
        lib.facelink_packets_free(ctypes.byref(pk))

    pk = _CPackets()
    assert lib.facelink_sender_start(sender, ctypes.byref(pk)) == 0
    deliver(pk)
    for i in range(len(clip)):
        assert lib.facelink_sender_push(sender, ctypes.byref(images[i]), i, i / 30, ctypes.byref(pk), None) == 0
        deliver(pk)
    assert lib.facelink_sender_end(sender, ctypes.byref(pk)) == 0
    deliver(pk)
    assert sent == python_stream[0]
    assert got == [f.tobytes() for f in python_stream[1]]

    # steady state: many more calls through every wrapper, then count Python objects
    def calls(start: int, n: int) -> None:
        bad = _CImage(None, 0, SIZE, SIZE, SIZE * 3, 1)
        for i in range(start, start + n):
            assert lib.facelink_sender_push(sender, ctypes.byref(images[i % len(clip)]), i, i / 30, ctypes.byref(pk), None) == 0
            deliver(pk)
            assert lib.facelink_sender_push(sender, ctypes.byref(bad), i, 0.0, ctypes.byref(pk), None) != 0
            assert lib.facelink_receiver_push(receiver, b"junk", 4, ctypes.byref(_CFrame()), ctypes.byref(ctypes.c_int32())) != 0
            assert lib.facelink_sender_stats_get(sender, ctypes.byref(ctypes.create_string_buffer(64))) == 0

    # a fresh session (the first one has ended) and a fresh receiver for it
    lib.facelink_sender_destroy.argtypes = [ctypes.c_void_p]
    sender2 = ctypes.c_void_p()
    assert lib.facelink_sender_create(ctypes.byref(cfg), ctypes.byref(images[0]), ctypes.byref(sender2)) == 0
    lib.facelink_sender_destroy(sender)
    sender = sender2
    assert lib.facelink_sender_start(sender, ctypes.byref(pk)) == 0
    receiver_old = receiver
    receiver = ctypes.c_void_p()
    assert lib.facelink_receiver_create(None, ctypes.byref(receiver)) == 0
    lib.facelink_receiver_destroy(receiver_old)
    deliver(pk)
    calls(0, 10)  # warm up caches
    before = _gc_objects()
    calls(10, 40)
    growth = _gc_objects() - before
    lib.facelink_sender_destroy(sender)
    lib.facelink_receiver_destroy(receiver)
    assert growth < 40, f"{growth} Python objects left behind by 160 C calls"
