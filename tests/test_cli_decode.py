"""``facelink decode`` end to end, in-process: frames, timestamps, free view, motion transfer, bad streams."""

import json

import av
import numpy as np
import pytest
from PIL import Image

from facelink.bitstream import FlkWriter, iter_flk
from facelink.cli import main
from test_cli_encode import _write_video


@pytest.fixture(scope="module")
def stream(tmp_path_factory, face_models, portrait):
    """A signed stream of 20 frames of the portrait drifting, with a 3-frame gap without a face."""
    d = tmp_path_factory.mktemp("dec")
    crop = np.asarray(Image.fromarray(portrait[10:330, 60:380]).resize((256, 256)))
    frames = []
    for i in range(20):
        f = np.zeros((256, 288, 3), np.uint8)
        if not 8 <= i < 11:
            f[:, i : i + 256] = crop
        frames.append(f)
    video = _write_video(d / "talk.mp4", frames, fps=25)
    out = d / "talk.flk"
    assert main(["encode", str(video), "-o", str(out)]) == 0
    return out


def _frames(path):
    with av.open(str(path)) as c:
        s = c.streams.video[0]
        return [(f.to_ndarray(format="rgb24"), float(f.pts * s.time_base)) for f in c.decode(s)]


def test_one_frame_per_encoded_frame_with_the_same_timestamps(stream, tmp_path, capsys):
    out = tmp_path / "o.mp4"
    assert main(["decode", str(stream), "-o", str(out), "--json"]) == 0
    info = json.loads(capsys.readouterr().out)
    assert info["frames"] == 20 and info["held_frames"] == 3
    assert (info["width"], info["height"]) == (288, 256)
    assert info["verification"]["intact"] is True
    got = _frames(out)
    assert len(got) == 20
    assert np.allclose([t for _, t in got], np.arange(20) / 25, atol=1e-3)
    # frames without a face hold the last good frame
    assert np.abs(got[8][0].astype(int) - got[7][0].astype(int)).mean() < 3


def test_free_view_changes_the_face_and_limits_are_enforced(stream, tmp_path, capsys):
    a, b = tmp_path / "a.mp4", tmp_path / "b.mp4"
    assert main(["decode", str(stream), "-o", str(a)]) == 0
    assert main(["decode", str(stream), "-o", str(b), "--pose", "25,0,0"]) == 0
    fa, fb = _frames(a), _frames(b)
    assert np.abs(fa[5][0].astype(int) - fb[5][0].astype(int)).mean() > 2
    assert main(["decode", str(stream), "-o", str(b), "--pose", "45,0,0"]) == 2
    assert "within ±30" in capsys.readouterr().err


@pytest.mark.skipif(__import__("facelink.generator._refine", fromlist=["x"]).default_refiner_path() is None, reason="no shipped refiner")
def test_refiner_on_changes_only_the_face(stream, tmp_path, capsys):
    a, b = tmp_path / "warp.mp4", tmp_path / "refined.mp4"
    assert main(["decode", str(stream), "-o", str(a)]) == 0
    assert main(["decode", str(stream), "-o", str(b), "--refiner", "on"]) == 0
    fa, fb = _frames(a), _frames(b)
    assert len(fa) == len(fb) == 20
    d = np.abs(fa[5][0].astype(int) - fb[5][0].astype(int)).mean(axis=2)
    assert 0.3 < d.mean() < 10  # a correction of the face, not a different picture
    assert main(["decode", str(stream), "-o", str(b), "--refiner", str(tmp_path / "none.onnx")]) == 1
    assert "refiner model not found" in capsys.readouterr().err


def test_motion_transfer_needs_a_face_in_the_target(stream, portrait, tmp_path, capsys):
    target = tmp_path / "other.png"
    Image.fromarray(np.ascontiguousarray(portrait[:, ::-1])).save(target)  # a different picture of a face
    out = tmp_path / "t.mp4"
    assert main(["decode", str(stream), "-o", str(out), "--reference", str(target), "--json"]) == 0
    info = json.loads(capsys.readouterr().out)
    assert (info["width"], info["height"]) == (512, 512) and info["frames"] == 20
    blank = tmp_path / "blank.png"
    Image.fromarray(np.full((200, 200, 3), 128, np.uint8)).save(blank)
    assert main(["decode", str(stream), "-o", str(tmp_path / "x.mp4"), "--reference", str(blank)]) == 1
    assert "no face found" in capsys.readouterr().err


def test_tampered_stream_is_refused_without_output(stream, tmp_path, capsys):
    packets = list(iter_flk(stream))
    i = next(k for k, p in enumerate(packets) if p[3] == 4)  # a predicted frame
    bad = bytearray(packets[i])
    bad[-1] ^= 0x01
    packets[i] = bytes(bad)
    forged = tmp_path / "forged.flk"
    with FlkWriter(forged) as w:
        for p in packets:
            w.write(p)
    out = tmp_path / "o.mp4"
    assert main(["decode", str(forged), "-o", str(out)]) == 3
    assert "failed verification" in capsys.readouterr().err
    assert not out.exists()


def test_untrusted_signer_needs_insecure(stream, tmp_path, capsys):
    empty_trust = tmp_path / "trust"
    empty_trust.mkdir(mode=0o700)
    out = tmp_path / "o.mp4"
    assert main(["decode", str(stream), "-o", str(out), "--trust", str(empty_trust)]) == 3
    err = capsys.readouterr().err
    assert "Traceback" not in err and err.count("\n") == 1
    assert main(["decode", str(stream), "-o", str(out), "--trust", str(empty_trust), "--insecure"]) == 0


@pytest.mark.parametrize("content", [b"", b"not a stream at all", b"\x89FLK\r\n\x1a\n"])
def test_empty_and_foreign_files(tmp_path, capsys, content):
    src = tmp_path / "s.flk"
    src.write_bytes(content)
    rc = main(["decode", str(src), "-o", str(tmp_path / "o.mp4"), "--insecure"])
    err = capsys.readouterr().err
    assert rc == 3 and "Traceback" not in err and err.strip().count("\n") == 0


def test_truncated_stream(stream, tmp_path, capsys):
    data = stream.read_bytes()
    cut = tmp_path / "cut.flk"
    cut.write_bytes(data[: len(data) - 40])
    assert main(["decode", str(cut), "-o", str(tmp_path / "o.mp4")]) == 3
    assert "Traceback" not in capsys.readouterr().err


def test_missing_file_is_exit_1(tmp_path, capsys):
    assert main(["decode", str(tmp_path / "nope.flk"), "-o", str(tmp_path / "o.mp4")]) == 1
    assert "no such file" in capsys.readouterr().err


def test_negative_pose_angles_as_written_and_single_angle_options(stream, tmp_path, capsys):
    a, b, c, z = tmp_path / "a.mp4", tmp_path / "b.mp4", tmp_path / "c.mp4", tmp_path / "z.mp4"
    assert main(["decode", str(stream), "-o", str(a), "--pose", "-20,0,-5"]) == 0  # not "expected one argument"
    assert main(["decode", str(stream), "-o", str(z)]) == 0
    assert main(["decode", str(stream), "-o", str(b), "--pose=-20,0,-5"]) == 0
    assert main(["decode", str(stream), "-o", str(c), "--yaw", "-20", "--roll", "-5"]) == 0
    fa, fb, fc, fz = (_frames(p) for p in (a, b, c, z))

    def diff(x, y, i):
        return np.abs(x[i][0].astype(int) - y[i][0].astype(int)).mean()

    for i in (3, 12):
        assert diff(fa, fz, i) > 2, "the head turned"
        assert diff(fa, fb, i) < 0.5 and diff(fa, fc, i) < 0.5, "the same re-pose, however it was written"
    capsys.readouterr()


@pytest.mark.parametrize(
    "argv, message",
    [
        (["--pose", "-45,0,0"], "yaw must be within ±30"),
        (["--pose", "-1.5,-25,0"], "pitch must be within ±20"),
        (["--yaw", "-31"], "--yaw must be within ±30"),
        (["--roll", "21"], "--roll must be within ±20"),
        (["--pose", "1,0,0", "--yaw", "2"], "not both"),
        (["--pose", "-1,0"], "YAW,PITCH,ROLL"),
    ],
)
def test_pose_usage_errors(tmp_path, capsys, argv, message):
    assert main(["decode", str(tmp_path / "s.flk"), "-o", str(tmp_path / "o.mp4"), *argv]) == 2
    err = capsys.readouterr().err
    assert message in err and err.count("\n") == 1


def test_decode_and_verify_print_the_same_session_id(stream, tmp_path, capsys):
    import hashlib

    from facelink.provenance import parse_manifest, sidecar_path

    out = tmp_path / "o.mp4"
    assert main(["decode", str(stream), "-o", str(out), "--json"]) == 0
    dec = json.loads(capsys.readouterr().out)
    header = next(iter(iter_flk(stream)))  # the signed session header packet
    tag = hashlib.sha256(header).hexdigest()[:8]
    assert dec["session"] == tag and dec["sessions"] == [tag]
    assert parse_manifest(sidecar_path(out).read_bytes()).sessions[0].session_tag == tag
    assert main(["verify", str(out), "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["session"] == tag
    assert main(["decode", str(stream), "-o", str(out)]) == 0
    assert f"session {tag}" in capsys.readouterr().err
