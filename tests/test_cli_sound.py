"""Sound through the file pipeline: a talking video's audio is Opus-coded into the signed
stream by ``encode`` and comes out of ``decode`` in sync with the generated frames."""

from __future__ import annotations

import json

import numpy as np
import pytest
from PIL import Image

from facelink.audio import RATE, find_click, read_audio_track
from facelink.bitstream import PacketType, iter_flk, parse_packet
from facelink.cli import main
from facelink.io import VideoWriter

FPS = 25
SECONDS = 2.0
CLICK_AT = 1.2


@pytest.fixture(scope="module")
def face_crop(portrait):
    return np.asarray(Image.fromarray(portrait[10:330, 60:380]).resize((256, 256)))


def _voice() -> np.ndarray:
    """A hum with a click at CLICK_AT (what the A/V check looks for)."""
    t = np.arange(int(SECONDS * RATE)) / RATE
    x = 0.05 * np.sin(2 * np.pi * 180 * t).astype(np.float32)
    k = int(CLICK_AT * RATE)
    x[k : k + 96] += 0.9 * np.hanning(96).astype(np.float32)
    return x


@pytest.fixture(scope="module")
def talking_with_sound(tmp_path_factory, face_crop):
    path = tmp_path_factory.mktemp("snd") / "talk.mp4"
    with VideoWriter(str(path), 256, 256, FPS, audio_rate=RATE) as vw:
        for i in range(int(SECONDS * FPS)):
            vw.write(np.roll(face_crop, i % 6, axis=1), i / FPS)
            if i == 0:
                vw.write_audio(_voice(), 0.0)
    return path


def test_encode_carries_the_sound_and_decode_plays_it_in_sync(face_models, talking_with_sound, tmp_path, capsys):
    flk = tmp_path / "s.flk"
    assert main(["encode", str(talking_with_sound), "-o", str(flk), "--json"]) == 0
    st = json.loads(capsys.readouterr().out)
    pkts = [parse_packet(p) for p in iter_flk(flk)]
    audio = [p for p in pkts if p.TYPE == PacketType.AUDIO]
    assert pkts[0].version == 3 and pkts[0].audio is not None
    assert len(audio) == st["audio_packets"] > 0 and st["audio_bytes"] == sum(len(bytes(p)) for p in audio)
    assert 4 < st["kbps_audio"] < 16  # Opus at 8 kbit/s plus packet framing
    assert st["kbps_all_in"] > st["kbps_keypoints"] + st["kbps_audio"]
    out = tmp_path / "out.mp4"
    assert main(["decode", str(flk), "-o", str(out), "--json"]) == 0
    dec = json.loads(capsys.readouterr().out)
    assert dec["frames"] == SECONDS * FPS and dec["audio_seconds"] > SECONDS - 0.1 and dec["audio_concealed"] == 0
    track = read_audio_track(str(out))
    assert track is not None and abs(track.seconds - SECONDS) < 0.15
    click = find_click(track.samples, RATE, track.start)
    assert click is not None and abs(click - CLICK_AT) <= 1.0 / FPS, click  # A/V within one frame


def test_no_audio_keeps_the_silent_stream(face_models, talking_with_sound, tmp_path, capsys):
    flk = tmp_path / "s.flk"
    assert main(["encode", str(talking_with_sound), "-o", str(flk), "--no-audio", "--json"]) == 0
    st = json.loads(capsys.readouterr().out)
    assert st["audio_packets"] == 0 and all(p[3] != PacketType.AUDIO for p in iter_flk(flk))
    out = tmp_path / "out.mp4"
    assert main(["decode", str(flk), "-o", str(out)]) == 0
    assert read_audio_track(str(out)) is None


@pytest.mark.parametrize("value", ["3", "40", "nan"])
def test_audio_rate_out_of_range_is_a_usage_error(talking_with_sound, tmp_path, capsys, value):
    assert main(["encode", str(talking_with_sound), "-o", str(tmp_path / "s.flk"), "--audio-kbps", value]) == 2
    assert "--audio-kbps must be 6..24" in capsys.readouterr().err
