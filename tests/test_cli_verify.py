"""``facelink verify``: exit codes, JSON keys and messages on marked, unmarked, short and broken inputs."""

from __future__ import annotations

import json

import pytest
from facelink.cli import main
from facelink.io import VideoWriter
from facelink.watermark import (
    P_THRESHOLD,
    PUBLIC_MARK_KEY,
    MarkKey,
    Watermarker,
    WatermarkPayload,
)
from test_watermark import scene

PAYLOAD = WatermarkPayload(bytes.fromhex("5e551011"), bytes.fromhex("7ec31e"))
KEYS = {"synthetic", "p_value", "frames_analyzed", "frames_marked", "session", "sender", "receiver", "signature_valid", "payload_bits_ok", "reason"}
OTHER = MarkKey(bytes.fromhex("00112233445566778899aabbccddeeff"))


def _write(path, frames, fps=25):
    h, w = frames[0].shape[:2]
    with VideoWriter(str(path), w, h, fps, crf=18) as vw:
        for i, f in enumerate(frames):
            vw.write(f, i / fps)
    return str(path)


@pytest.fixture(scope="module")
def clips(tmp_path_factory):
    d = tmp_path_factory.mktemp("verify")
    frames = scene(40, 160, seed=21)
    wm = Watermarker(PUBLIC_MARK_KEY, PAYLOAD)
    theirs = Watermarker(OTHER, PAYLOAD)
    (d / "notes.txt").write_text("not a video\n")
    return {
        "marked": _write(d / "marked.mp4", [wm.embed(f, 640 + i) for i, f in enumerate(frames)]),
        "unmarked": _write(d / "unmarked.mp4", frames),
        "short": _write(d / "short.mp4", [wm.embed(f, i) for i, f in enumerate(frames[:4])]),
        "other": _write(d / "other.mp4", [theirs.embed(f, i) for i, f in enumerate(frames)]),
        "text": str(d / "notes.txt"),
        "missing": str(d / "nope.mp4"),
        "dir": str(d),
    }


def _run(capsys, *argv):
    code = main(["verify", *argv])
    out, err = capsys.readouterr()
    return code, out, err


def _json(capsys, *argv):
    code, out, err = _run(capsys, *argv, "--json")
    lines = out.strip().splitlines()
    assert len(lines) == 1, out
    return code, json.loads(lines[0]), err


def test_marked_clip(clips, capsys):
    code, r, _ = _json(capsys, clips["marked"])
    assert code == 0
    assert KEYS <= set(r)
    assert r["synthetic"] is True and r["p_value"] < P_THRESHOLD
    assert r["frames_analyzed"] == 40 and r["frames_marked"] == 40
    assert r["session"] == "5e551011" and r["receiver"] == "7ec31e" and r["payload_bits_ok"] is True
    assert r["sender"] is None and r["signature_valid"] is None and r["reason"] is None
    assert r["first_frame_index"] == 640 and r["counter"] == 10
    code, out, _ = _run(capsys, clips["marked"])
    assert code == 0 and "SYNTHETIC" in out and "5e551011" in out


def test_unmarked_clip(clips, capsys):
    code, r, _ = _json(capsys, clips["unmarked"])
    assert code == 0 and KEYS <= set(r)
    assert r["synthetic"] is False and r["p_value"] >= P_THRESHOLD
    assert r["session"] is None and r["receiver"] is None and r["payload_bits_ok"] is False
    assert r["frames_marked"] == 0 and r["frames_analyzed"] == 40 and r["reason"]
    code, out, _ = _run(capsys, clips["unmarked"])
    assert code == 0 and "no FaceLink mark" in out


def test_too_short_clip(clips, capsys):
    code, r, _ = _json(capsys, clips["short"])
    assert code == 0 and KEYS <= set(r)
    assert r["synthetic"] is False and r["p_value"] is None and "too short" in r["reason"]
    assert r["frames_analyzed"] == 4


def test_other_mark_key(clips, capsys):
    code, r, _ = _json(capsys, clips["other"])
    assert code == 0 and r["synthetic"] is False
    code, r, _ = _json(capsys, clips["other"], "--mark-key", OTHER.hex())
    assert code == 0 and r["synthetic"] is True and r["receiver"] == "7ec31e"
    assert r["mark_key"] == OTHER.fingerprint and OTHER.hex() not in json.dumps(r)
    code, r, _ = _json(capsys, clips["marked"], "--mark-key", "public")
    assert r["synthetic"] is True and r["mark_key"] == "public"


@pytest.mark.parametrize("which", ["text", "missing", "dir"])
def test_unreadable_inputs_exit_1_with_one_line(clips, capsys, which):
    code, out, err = _run(capsys, clips[which], "--json")
    assert code == 1 and json.loads(out) == {"error": err.strip(), "code": 1}  # --json: the error on stdout too
    assert len(err.strip().splitlines()) == 1 and err.startswith("facelink: error: ")
    code, out, _ = _run(capsys, clips[which])
    assert code == 1 and out == ""
    assert "Traceback" not in err


def test_usage_errors_exit_2(clips, capsys):
    for argv in (["--mark-key", "zz"], ["--mark-key", "0011"], ["--max-frames", "3"], ["--bogus"], ["--require-clean", "--require-synthetic"]):
        code, out, err = _run(capsys, clips["marked"], *argv)
        assert code == 2 and out == "" and len(err.strip().splitlines()) == 1
        code, out, err = _run(capsys, clips["marked"], *argv, "--json")
        assert code == 2 and json.loads(out) == {"error": err.strip(), "code": 2}
    code, _, _ = _run(capsys)
    assert code == 2


def test_trust_dir_and_max_frames(clips, capsys):
    code, r, _ = _json(capsys, clips["marked"], "--trust", clips["dir"], "--max-frames", "24")
    assert code == 0 and r["frames_analyzed"] == 24 and r["synthetic"] is True
    code, _, err = _run(capsys, clips["marked"], "--trust", clips["missing"])
    assert code == 1 and "trust directory" in err


def test_analysis_of_real_clip_when_data_present(capsys):
    from facelink.datasets import real_clips

    clips = real_clips()
    if not clips:
        pytest.skip("../shared/data is absent: no real clip to check")
    code, r, _ = _json(capsys, str(clips[0].path), "--max-frames", "60")
    assert code == 0 and r["synthetic"] is False and r["frames_analyzed"] == 60


def test_require_flags_turn_findings_into_exit_3(clips, capsys):
    # without a --require flag the exit code says only that the analysis ran
    assert _run(capsys, clips["unmarked"])[0] == 0
    code, r, err = _json(capsys, clips["marked"], "--require-synthetic")
    assert code == 0 and r["requirement_failed"] is None
    code, r, err = _json(capsys, clips["unmarked"], "--require-synthetic")
    assert code == 3 and r["synthetic"] is False and "--require-synthetic" in r["requirement_failed"] and "--require-synthetic" in err
    code, r, _ = _json(capsys, clips["unmarked"], "--require-clean")
    assert code == 0
    code, r, err = _json(capsys, clips["marked"], "--require-clean")
    assert code == 3 and "mark was found" in err
    # a marked clip without a manifest has no valid provenance
    code, r, err = _json(capsys, clips["marked"], "--require-valid")
    assert code == 3 and r["verdict"] == "none" and "provenance is none" in err
