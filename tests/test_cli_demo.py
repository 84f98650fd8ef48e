"""``facelink demo``: a short run, and speed figures that say what they measure."""

from __future__ import annotations

import json

from facelink.cli import main


def test_demo_report_labels_its_speed_figures(face_models, portrait, tmp_path, capsys):
    out = tmp_path / "demo"
    assert main(["demo", "--out", str(out), "--seconds", "1", "--backend", "onnxruntime"]) == 0
    err = capsys.readouterr().err
    rep = json.loads((out / "report.json").read_text())
    assert (out / "demo.mp4").is_file() and rep["frames"] == 25
    # the demo speaks: its speech went over the signed link and is the video's sound track
    from facelink.audio import read_audio_track

    track = read_audio_track(str(out / "demo.mp4"))
    assert rep["kbps_audio"] > 4 and rep["speech"]["source"] in ("espeak-ng", "tones")
    assert track is not None and abs(track.seconds - rep["speech"]["seconds"]) < 0.1 and float(abs(track.samples).max()) > 0.05
    sp = rep["speed"]
    fw, fh = sp["face_box"]
    assert 0 < fw <= rep["width"] and 0 < fh <= rep["height"]
    assert sp["face_box_share"] == round(fw * fh / (rep["width"] * rep["height"]), 3) < 0.5, "the demo portrait's face is small"
    assert 0 < sp["receiver_fps"] and "onnxruntime" in sp["measured_on"]
    assert "face box" in sp["note"] and "decode --json" in sp["note"]
    # the printed summary carries the same labels
    assert f"face box {fw}x{fh}" in err and "generator alone" in err and "end to end" in err and "slower" in err
