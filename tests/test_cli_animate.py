"""``facelink animate``: a portrait talking from speech, watermarked and marked audio-driven."""

from __future__ import annotations

import json
import shutil

import numpy as np
import pytest
from PIL import Image

from facelink.animate._features import SAMPLE_RATE
from facelink.animate._model import model_path
from facelink.audio import read_audio_track
from facelink.cli import main

pytestmark = pytest.mark.skipif(not model_path().is_file(), reason="the audio -> motion model is not shipped in this checkout")


def _speech(path, seconds: float = 1.6) -> str:
    """Syllable-like bursts: a voiced buzz switched on and off four times a second."""
    import wave

    t = np.arange(int(seconds * SAMPLE_RATE)) / SAMPLE_RATE
    buzz = np.sign(np.sin(2 * np.pi * 140 * t)) * 0.3 + 0.2 * np.sin(2 * np.pi * 700 * t)
    env = (np.sin(2 * np.pi * 4 * t) > 0).astype(float)
    x = (buzz * env * 0.5 * 32767).astype(np.int16)
    with wave.open(str(path), "wb") as w:
        w.setnchannels(1)
        w.setsampwidth(2)
        w.setframerate(SAMPLE_RATE)
        w.writeframes(x.tobytes())
    return str(path)


@pytest.fixture(scope="module")
def portrait_png(tmp_path_factory, portrait):
    path = tmp_path_factory.mktemp("anim") / "portrait.png"
    Image.fromarray(np.asarray(Image.fromarray(portrait[10:330, 60:380]).resize((256, 256)))).save(path)
    return str(path)


def test_animate_makes_a_speaking_watermarked_audio_driven_video(face_models, portrait_png, tmp_path, capsys):
    wav = _speech(tmp_path / "speech.wav")
    out = tmp_path / "talk.mp4"
    assert main(["animate", "--audio", wav, "--reference", portrait_png, "-o", str(out), "--json", "--fps", "25"]) == 0
    st = json.loads(capsys.readouterr().out)
    assert (st["frames"], st["width"], st["height"], st["fps"]) == (40, 256, 256, 25.0)
    assert abs(st["seconds"] - 1.6) < 0.01 and st["source"] == "audio-driven"
    track = read_audio_track(str(out))
    assert track is not None and abs(track.seconds - 1.6) < 0.15  # the speech is in the video
    assert main(["verify", str(out), "--json"]) == 0
    v = json.loads(capsys.readouterr().out)
    assert v["synthetic"] and v["verdict"] == "valid" and v["motion_source"] == "audio-driven"


def test_the_same_seed_gives_the_same_motion_and_another_seed_another(face_models, portrait):
    from facelink.animate._stream import animate_stream
    from facelink.bitstream import PacketType, parse_packet
    from facelink.face._reference import make_reference

    ref = make_reference(np.asarray(Image.fromarray(portrait[10:330, 60:380]).resize((256, 256))), face_models)
    t = np.arange(int(1.0 * SAMPLE_RATE)) / SAMPLE_RATE
    pcm = (0.3 * np.sin(2 * np.pi * 150 * t) * (np.sin(2 * np.pi * 3 * t) > 0)).astype(np.float32)

    def frames(seed):
        s = animate_stream(ref, pcm, seed=seed, audio_kbps=None, backend="onnxruntime")
        return [p[4:] for p in s.packets if p[3] in (PacketType.KEY_FRAME, PacketType.PREDICTED_FRAME)]

    a, b, c = frames(1), frames(1), frames(2)
    assert len(a) == 30 and a == b and a != c


def test_bad_requests_are_one_line_errors(portrait_png, tmp_path, capsys, monkeypatch):
    out = str(tmp_path / "o.mp4")
    assert main(["animate", "--audio", str(tmp_path / "missing.wav"), "--reference", portrait_png, "-o", out]) != 0
    assert "missing.wav: no such file" in capsys.readouterr().err
    silent = tmp_path / "silent.png"
    Image.new("RGB", (8, 8)).save(silent)
    assert main(["animate", "--audio", str(silent), "--reference", portrait_png, "-o", out]) != 0
    err = capsys.readouterr().err
    assert "silent.png" in err and err.count("\n") == 1
    monkeypatch.setattr(shutil, "which", lambda name: None)
    assert main(["animate", "--text", "hello", "--reference", portrait_png, "-o", out]) != 0
    assert "needs espeak-ng" in capsys.readouterr().err
    assert main(["animate", "--text", "hi", "--audio", "x.wav", "--reference", portrait_png, "-o", out]) == 2
