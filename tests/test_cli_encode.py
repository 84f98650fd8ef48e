"""``facelink encode`` end to end, in-process, with the issue's bad inputs."""

import json

import numpy as np
import pytest
from PIL import Image

from facelink.bitstream import PacketType, iter_flk, parse_packet
from facelink.cli import main
from facelink.io import VideoWriter


def _write_video(path, frames, fps=25):
    h, w = frames[0].shape[:2]
    with VideoWriter(str(path), w, h, fps) as vw:
        for i, f in enumerate(frames):
            vw.write(f, i / fps)
    return path


@pytest.fixture(scope="module")
def face_crop(portrait):
    return np.asarray(Image.fromarray(portrait[10:330, 60:380]).resize((256, 256)))


@pytest.fixture(scope="module")
def talking_video(tmp_path_factory, face_crop):
    """30 frames of the portrait drifting sideways, with the face gone for frames 12-17."""
    frames = []
    for i in range(30):
        f = np.zeros((256, 320, 3), np.uint8)
        if not 12 <= i < 18:
            f[:, i : i + 256] = face_crop
        frames.append(f)
    return _write_video(tmp_path_factory.mktemp("v") / "talk.mp4", frames)


def _packets(path):
    return [parse_packet(p) for p in iter_flk(path)]


def test_encode_json_and_stream_contents(face_models, talking_video, tmp_path, capsys):
    out = tmp_path / "s.flk"
    rc = main(["encode", str(talking_video), "-o", str(out), "--json", "--key-interval", "10"])
    assert rc == 0
    stats = json.loads(capsys.readouterr().out)
    assert stats["frames"] == 30 and stats["face_frames"] == 24
    assert 0 < stats["kbps"] < 10 and stats["bytes"] > 0 and stats["reference_bytes"] > 1000
    pkts = _packets(out)
    types = [p.TYPE for p in pkts]
    assert types[0] == PacketType.SESSION_HEADER and types[-2:] == [PacketType.END, PacketType.SEAL]
    frames = [p for p in pkts if p.TYPE in (PacketType.KEY_FRAME, PacketType.PREDICTED_FRAME, PacketType.NO_FACE)]
    assert len(frames) == 30
    assert [p.TYPE for p in frames[12:18]] == [PacketType.NO_FACE] * 6
    assert frames[18].TYPE == PacketType.KEY_FRAME, "a face re-entering starts with a key frame"
    counted = (PacketType.REFERENCE_CHUNK, PacketType.SEAL)
    assert sum(len(bytes(p)) for p in pkts if p.TYPE not in counted) == stats["bytes"]
    assert sum(len(bytes(p)) for p in pkts if p.TYPE == PacketType.SEAL) == stats["seal_bytes"] > 0
    assert len(stats["signer"]) == 16, "signed with the local key by default"
    import hashlib

    header = next(iter(iter_flk(out)))
    assert stats["session"] == hashlib.sha256(header).hexdigest()[:8], "the id `facelink verify` shows"
    assert stats["session_id"] == pkts[0].session_id.hex()


def test_quality_presets_order_the_rate(face_models, talking_video, tmp_path, capsys):
    rates = {}
    for q in ("low", "high"):
        assert main(["encode", str(talking_video), "-o", str(tmp_path / f"{q}.flk"), "--quality", q, "--json"]) == 0
        rates[q] = json.loads(capsys.readouterr().out)["bytes"]
    assert rates["low"] < rates["high"]


def test_external_reference_image(face_models, talking_video, face_crop, tmp_path, capsys):
    ref = tmp_path / "ref.png"
    Image.fromarray(face_crop).save(ref)
    assert main(["encode", str(talking_video), "-o", str(tmp_path / "r.flk"), "--reference", str(ref), "--json"]) == 0
    header = _packets(tmp_path / "r.flk")[0]
    assert dict(header.extensions).get(1), "anchor pose carried in the header"


@pytest.mark.parametrize(
    "make, message",
    [
        (lambda d: d / "missing.mp4", "no such file"),
        (lambda d: (d / "empty.mp4").write_bytes(b"") and d / "empty.mp4" or d / "empty.mp4", "cannot open"),
        (lambda d: (d / "text.mp4").write_text("hello, not a video\n") and d / "text.mp4", "cannot open"),
        (lambda d: d, "directory"),
    ],
)
def test_bad_inputs_are_one_line_errors(face_models, tmp_path, capsys, make, message):
    src = make(tmp_path)
    rc = main(["encode", str(src), "-o", str(tmp_path / "o.flk")])
    err = capsys.readouterr().err.strip()
    assert rc == 1 and message in err and "\n" not in err and "Traceback" not in err
    assert not (tmp_path / "o.flk").exists(), "no partial output"


def test_video_without_a_face(face_models, tmp_path, capsys):
    rng = np.random.default_rng(0)
    src = _write_video(tmp_path / "noface.mp4", [rng.integers(0, 255, (96, 128, 3), dtype=np.uint8) for _ in range(8)])
    assert main(["encode", str(src), "-o", str(tmp_path / "o.flk")]) == 1
    assert "no face" in capsys.readouterr().err


def test_truncated_mp4_without_index_is_a_clear_error(face_models, talking_video, tmp_path, capsys):
    data = talking_video.read_bytes()
    cut = tmp_path / "cut.mp4"
    cut.write_bytes(data[: len(data) // 2])  # the moov index sits at the end: gone
    assert main(["encode", str(cut), "-o", str(tmp_path / "o.flk")]) == 1
    assert "cannot open as video" in capsys.readouterr().err


def test_truncated_streamable_video_encodes_what_decodes(face_models, face_crop, tmp_path, capsys):
    frames = []
    for i in range(30):
        f = np.zeros((256, 320, 3), np.uint8)
        f[:, 2 * i : 2 * i + 256] = face_crop
        frames.append(f)
    full = _write_video(tmp_path / "full.mkv", frames)
    data = full.read_bytes()
    cut = tmp_path / "cut.mkv"
    cut.write_bytes(data[: len(data) * 93 // 100])  # past the key frame, before the end
    assert main(["encode", str(cut), "-o", str(tmp_path / "o.flk"), "--json"]) == 0
    stats = json.loads(capsys.readouterr().out)
    assert 5 < stats["frames"] < 30 and stats["face_frames"] == stats["frames"]


def test_usage_errors_exit_2(tmp_path, capsys):
    assert main(["encode"]) == 2
    assert main(["encode", "x.mp4", "-o", "y.flk", "--quality", "ultra"]) == 2
    assert main(["encode", "x.mp4", "-o", "y.flk", "--kbps", "-3"]) == 2
    assert main(["encode", "x.mp4", "-o", "y.flk", "--kbps", "2", "--quality", "low"]) == 2
    assert main(["nonsense"]) == 2
    err = capsys.readouterr().err
    assert "Traceback" not in err


def test_output_directory_must_exist(face_models, talking_video, tmp_path, capsys):
    assert main(["encode", str(talking_video), "-o", str(tmp_path / "nope" / "o.flk")]) == 1
    assert "does not exist" in capsys.readouterr().err


@pytest.mark.parametrize("command", [["encode", "x.mp4", "-o", "y.flk"], ["send", "x.mp4", "--to", "tcp://127.0.0.1:5555"]])
@pytest.mark.parametrize("kbps", ["0.1", "2.9", "nan", "inf", "0"])
def test_unreachable_kbps_is_refused_naming_the_range(tmp_path, capsys, command, kbps):
    assert main([*command, "--kbps", kbps]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "Traceback" not in err
    if kbps in ("0.1", "2.9"):
        assert "lowest operating point" in err and "3 (low)" in err and "4.8 (high)" in err


def test_lowest_reachable_kbps_is_accepted():
    from argparse import Namespace

    from facelink.cli._encode import codec_params
    from facelink.codec import QUALITY_PRESETS

    assert codec_params(Namespace(kbps=3.0, quality=None, key_interval=None)) == QUALITY_PRESETS["low"]
    assert codec_params(Namespace(kbps=100.0, quality=None, key_interval=None)) == QUALITY_PRESETS["high"]


@pytest.mark.parametrize("command", [["decode", "s.flk", "-o", "o.mp4"], ["demo"], ["receive", "--listen", "tcp://*:5555"]])
def test_refiner_value_is_a_usage_error(capsys, command):
    assert main([*command, "--refiner", "maybe"]) == 2
    err = capsys.readouterr().err
    assert "--refiner" in err and "on, int8, off or a MODEL.onnx" in err and err.count("\n") == 1


def test_json_states_keypoints_seals_reference_and_all_in_rate(face_models, talking_video, tmp_path, capsys):
    out = tmp_path / "s.flk"
    assert main(["encode", str(talking_video), "-o", str(out), "--json"]) == 0
    st = json.loads(capsys.readouterr().out)
    raw = list(iter_flk(out))
    total = sum(len(p) for p in raw)
    ref = sum(len(p) for p in raw if p[3] == PacketType.REFERENCE_CHUNK)
    assert st["reference_packet_bytes"] == ref > st["reference_bytes"] > 1000
    assert st["bytes"] + st["seal_bytes"] + ref == total, "keypoints + seals + reference = the whole stream"
    d = st["duration_s"]
    assert st["kbps_keypoints"] == pytest.approx(8 * st["bytes"] / d / 1000, rel=1e-3) and st["kbps"] == st["kbps_keypoints"]
    assert st["kbps_seals"] == pytest.approx(8 * st["seal_bytes"] / d / 1000, rel=1e-3) and st["kbps_seals"] > 0
    assert st["kbps_all_in"] == pytest.approx(8 * total / d / 1000, rel=1e-3)
    a = st["reference_amortised_kbps"]
    assert a["this_clip"] == pytest.approx(8 * ref / d / 1000, rel=1e-3)
    assert a["1_min"] == pytest.approx(8 * ref / 60 / 1000, rel=1e-3) and a["10_min"] == pytest.approx(a["1_min"] / 10, rel=1e-2)
    assert (st["reference_width"], st["reference_height"], st["reference_quality"]) == (320, 256, 92)
    assert main(["encode", str(talking_video), "-o", str(out)]) == 0
    err = capsys.readouterr().err
    assert "keypoints" in err and "seals" in err and "over 1 min" in err and "all-in" in err


def test_smaller_reference_options(face_models, talking_video, tmp_path, capsys):
    full, small = tmp_path / "full.flk", tmp_path / "small.flk"
    assert main(["encode", str(talking_video), "-o", str(full), "--json"]) == 0
    big = json.loads(capsys.readouterr().out)
    argv = ["encode", str(talking_video), "-o", str(small), "--json", "--reference-size", "160", "--reference-quality", "60"]
    assert main(argv) == 0
    st = json.loads(capsys.readouterr().out)
    assert (st["reference_width"], st["reference_height"], st["reference_quality"]) == (160, 128, 60)
    assert st["reference_bytes"] < big["reference_bytes"] / 2
    assert st["kbps_all_in"] < big["kbps_all_in"]
    # the receiver renders at the (smaller) reference's size, still watermarked
    video = tmp_path / "small.mp4"
    assert main(["decode", str(small), "-o", str(video), "--json"]) == 0
    dec = json.loads(capsys.readouterr().out)
    assert (dec["width"], dec["height"], dec["frames"]) == (160, 128, 30)
    assert main(["verify", str(video), "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["synthetic"] is True


@pytest.mark.parametrize("argv, message", [
    (["--reference-quality", "10"], "--reference-quality must be in 30..95"),
    (["--reference-quality", "100"], "--reference-quality must be in 30..95"),
    (["--reference-size", "64"], "--reference-size must be at least 128"),
])  # fmt: skip
def test_reference_option_usage_errors(tmp_path, capsys, argv, message):
    assert main(["encode", str(tmp_path / "x.mp4"), "-o", str(tmp_path / "y.flk"), *argv]) == 2
    err = capsys.readouterr().err
    assert message in err and err.count("\n") == 1
    assert main(["send", str(tmp_path / "x.mp4"), "--to", "tcp://127.0.0.1:5555", *argv]) == 2
    err = capsys.readouterr().err
    assert err.startswith("facelink send: ") and message in err and err.count("\n") == 1


def test_a_shrunk_first_frame_reference_is_anchored_in_frame_coordinates(face_models, talking_video):
    """The receiver maps motion through the anchor: a shrunk reference needs one, at the frame's scale."""
    from facelink.io import VideoReader
    from facelink.keypoints import canonicalize, default_basis
    from facelink.sender import prepare_reference
    from test_capture import _LiveReader

    from facelink.cli._send import live_reference

    full, none = prepare_reference(str(talking_video), face_models, 16)
    small, anchor = prepare_reference(str(talking_video), face_models, 16, max_side=160, quality=70)
    assert none is None and full.image.shape == (256, 320, 3)
    assert small.image.shape == (128, 160, 3) and len(small.blob) < len(full.blob) / 2
    own = canonicalize(default_basis(), full.landmarks)[1]  # the first frame's pose, in frame pixels
    assert anchor.scale == pytest.approx(own.scale, rel=0.05) and anchor.tx == pytest.approx(own.tx, abs=3)
    with _LiveReader(VideoReader(str(talking_video))) as src:
        live, live_anchor = live_reference(src, face_models, 16, None, quality=70, max_side=160)
    assert live.image.shape == (128, 160, 3) and live_anchor.scale == pytest.approx(own.scale, rel=0.05)
