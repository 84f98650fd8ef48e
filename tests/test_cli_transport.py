"""``facelink keys``, ``facelink send`` and ``facelink receive``, run in-process over ``ipc://`` endpoints."""

from __future__ import annotations

import atexit
import itertools
import json
import os
import shutil
import tempfile
import threading
import time

import numpy as np
import pytest
import zmq
from facelink.cli import main
from facelink.codec import QUALITY_PRESETS
from facelink.security import load_identity
from facelink.transport import Sender
from test_codec import _motion, _reference
from test_security_seal import make_stream

WAIT = 30.0


_IPC_DIR = tempfile.mkdtemp(prefix="fl-ipc-")  # short: ipc paths are limited to ~100 bytes
atexit.register(shutil.rmtree, _IPC_DIR, True)
_ipc_names = itertools.count()


def _endpoint() -> str:
    """A fresh ``ipc://`` endpoint: only this test can bind it (no free-port race with other processes)."""
    return f"ipc://{_IPC_DIR}/rx{next(_ipc_names)}"


@pytest.fixture()
def keys(tmp_path):
    """tx and rx identities in tmp/keys, tx trusted in tmp/trust."""
    kd, td = tmp_path / "keys", tmp_path / "trust"
    assert main(["keys", "generate", "tx", "--dir", str(kd)]) == 0
    assert main(["keys", "generate", "rx", "--dir", str(kd)]) == 0
    assert main(["keys", "trust", str(kd / "tx.pub"), "--dir", str(td)]) == 0
    return kd, td


class _Run(threading.Thread):
    """``facelink ...`` in a thread (the receiver side of a test)."""

    def __init__(self, argv):
        super().__init__(daemon=True)
        self.argv = argv
        self.code = None

    def run(self):
        self.code = main(self.argv)

    def result(self, timeout=WAIT):
        self.join(timeout)
        assert not self.is_alive(), f"facelink {' '.join(self.argv[:2])} did not finish within {timeout} s"
        return self.code


def _json_lines(text: str) -> list[dict]:
    return [json.loads(line) for line in text.splitlines() if line.startswith("{")]


# ---------------------------------------------------------------- keys


def test_keys_generate_show_trust_revoke(tmp_path, capsys, keys):
    kd, td = keys
    capsys.readouterr()
    assert main(["keys", "generate", "tx", "--dir", str(kd)]) == 1
    assert "already exists" in capsys.readouterr().err
    assert main(["keys", "show", "--dir", str(kd), "--json"]) == 0
    shown = _json_lines(capsys.readouterr().out)[0]
    names = {k["name"]: k for k in shown["keys"]}
    assert set(names) == {"tx", "rx"} and len(names["tx"]["fingerprint"]) == 16
    fp = names["tx"]["fingerprint"]
    assert main(["keys", "show", "tx", "--dir", str(kd)]) == 0
    assert fp in capsys.readouterr().out
    assert main(["keys", "show", "--trust", str(td), "--json"]) == 0
    assert [k["fingerprint"] for k in _json_lines(capsys.readouterr().out)[0]["trusted"]] == [fp]
    assert main(["keys", "revoke", fp, "--dir", str(td), "--json"]) == 0
    out = _json_lines(capsys.readouterr().out)[0]
    assert out["fingerprint"] == fp and len(out["removed"]) == 1
    assert main(["keys", "trust", str(kd / "tx.pub"), "--dir", str(td)]) == 1
    assert "is revoked" in capsys.readouterr().err
    assert main(["keys", "generate", "bad/name", "--dir", str(kd)]) == 2


def test_send_and_receive_refuse_a_world_readable_key(tmp_path, capsys, keys):
    kd, td = keys
    assert td.is_dir()
    os.chmod(kd / "tx.key", 0o644)
    os.chmod(kd / "rx.key", 0o644)
    capsys.readouterr()
    code = main(["send", str(tmp_path / "x.mp4"), "--to", "tcp://127.0.0.1:9", "--key", str(kd / "tx.key"), "--no-curve"])
    assert code == 1 and "permissions 0644 are too open; run `chmod 600" in capsys.readouterr().err
    code = main(["receive", "--listen", "tcp://127.0.0.1:*", "--key", str(kd / "rx.key"), "--trust", str(td)])
    assert code == 1 and "too open" in capsys.readouterr().err


def test_receive_usage_and_output_errors(tmp_path, capsys, keys):
    kd, td = keys
    base = ["receive", "--listen", "tcp://127.0.0.1:*", "--key", str(kd / "rx.key"), "--trust", str(td)]
    assert main(base + ["-o", "display://0"]) == 1
    assert "no display output" in capsys.readouterr().err
    assert main(base + ["--timeout", "-1"]) == 2
    assert main(["receive", "--listen", "tcp://127.0.0.1:*", "--trust", str(td)]) == 2  # Curve needs --key
    assert main(["receive", "--listen", "127.0.0.1:5", "--key", str(kd / "rx.key")]) == 1
    assert main(["send", "x.mp4", "--to", "tcp://127.0.0.1:9", "--key", str(kd / "tx.key")]) == 2  # no --receiver-key
    assert "--receiver-key" in capsys.readouterr().err


# ---------------------------------------------------------------- receive with a scripted sender (no face models)


def _scripted_sender(endpoint, kd, *, curve, frames=45, wait=10.0):
    """A Python Sender streaming synthetic keypoints as tx."""
    ref = _reference(size=(64, 64))
    motion = _motion(ref, n=frames)
    rx = load_identity(kd / "rx.key")
    s = Sender(
        endpoint, load_identity(kd / "tx.key"), reference=ref, params=QUALITY_PRESETS["medium"], width=64, height=64,
        fps=30, receiver_key=rx.public.curve if curve else None, curve=curve,
    )  # fmt: skip
    s.open()
    try:
        if s.wait_connected(wait):
            for i in range(frames):
                s.send_frame(i, i / 30, motion[i])
                s.service(1 / 120)
    finally:
        s.close(linger=1.0)
    return s.stats


@pytest.mark.parametrize("curve", [True, False])
def test_receive_verifies_a_signed_session(tmp_path, capsys, keys, curve):
    kd, td = keys
    ep = _endpoint()
    argv = ["receive", "--listen", ep, "--trust", str(td), "--key", str(kd / "rx.key"), "--json",
            "--timeout", "20", "--refcache", str(tmp_path / "rc")]  # fmt: skip
    r = _Run(argv + ([] if curve else ["--no-curve"]))
    r.start()
    stats = _scripted_sender(ep, kd, curve=curve)
    assert r.result() == 0
    out = _json_lines(capsys.readouterr().out)[0]
    assert out["verify"]["intact"] and out["verify"]["frames_verified"] == stats.frames_sent == 45
    assert out["verify"]["seals_accepted"] == stats.seals
    assert out["curve"] is curve and out["latency_ms_p50"] is not None


def test_untrusted_sender_is_refused_at_the_curve_handshake(tmp_path, capsys, keys):
    kd, _ = keys
    other = tmp_path / "other"
    assert main(["keys", "trust", str(kd / "rx.pub"), "--dir", str(other)]) == 0  # trusts rx, not tx
    ep = _endpoint()
    r = _Run(["receive", "--listen", ep, "--trust", str(other), "--key", str(kd / "rx.key"), "--timeout", "2"])
    r.start()
    stats = _scripted_sender(ep, kd, curve=True, wait=2.0)
    assert r.result() == 1  # nothing ever arrived
    assert "no session received within 2 s" in capsys.readouterr().err
    assert stats.auth_failures > 0 and stats.frames_sent == 0


@pytest.mark.parametrize("revoke", [False, True])
def test_untrusted_or_revoked_signer_exits_3_on_a_plain_link(tmp_path, capsys, keys, revoke):
    kd, td = keys
    if revoke:
        assert main(["keys", "revoke", str(kd / "tx.pub"), "--dir", str(td)]) == 0
        assert main(["keys", "trust", str(kd / "tx.pub"), "--dir", str(td)]) == 1
    else:
        td = tmp_path / "empty"
        td.mkdir(mode=0o700)
    ep = _endpoint()
    r = _Run(["receive", "--listen", ep, "--trust", str(td), "--no-curve", "--timeout", "4"])
    r.start()
    _scripted_sender(ep, kd, curve=False, frames=10, wait=3.0)  # refused, logged, not fatal
    assert r.result() == 3
    err = capsys.readouterr().err
    assert ("is revoked" if revoke else "is not trusted") in err
    assert "warning: refused a connection" in err and "no session accepted; 1 connection(s) refused" in err


def _wait_listening(endpoint: str, timeout: float = WAIT) -> None:
    """Until a receiver (maybe in another process) has bound the ``ipc://`` endpoint."""
    path = endpoint[len("ipc://") :]
    deadline = time.monotonic() + timeout
    while not os.path.exists(path):
        if time.monotonic() > deadline:
            raise AssertionError(f"nothing listens on {endpoint} after {timeout} s")
        time.sleep(0.01)


def _push_raw(endpoint, packets):
    ctx = zmq.Context()
    sock = ctx.socket(zmq.DEALER)
    sock.setsockopt(zmq.LINGER, 2000)
    sock.connect(endpoint)  # the receiver is bound: messages queue until the connection is up
    for p in packets:
        sock.send(p)
    sock.close()
    ctx.term()


@pytest.mark.parametrize("insecure", [False, True])
def test_unsigned_stream_needs_insecure(tmp_path, capsys, keys, insecure):
    _, td = keys
    ep = _endpoint()
    argv = ["receive", "--listen", ep, "--trust", str(td), "--no-curve", "--json"]
    r = _Run(argv + (["--insecure", "--timeout", "20"] if insecure else ["--timeout", "4"]))  # a refusal is not fatal: it waits
    r.start()
    _wait_listening(ep)
    _push_raw(ep, make_stream(n=20, signed=False, created_us=_now_us()))
    if insecure:
        assert r.result() == 0
        out = _json_lines(capsys.readouterr().out)[0]
        assert out["frames"] == 20 and out["verify"]["signed"] is False and not out["verify"]["intact"]
    else:
        assert r.result() == 3
        assert "stream is not signed" in capsys.readouterr().err


def _now_us() -> int:
    """A session started now (``receive`` refuses recordings older than --max-age, 300 s by default)."""
    return int(time.time() * 1e6)


@pytest.mark.parametrize("max_age", [None, "0"])
def test_an_old_recording_is_refused_by_default(tmp_path, capsys, keys, max_age):
    kd, td = keys
    old = make_stream(load_identity(kd / "tx.key"), n=20, live=True, created_us=_now_us() - 3600 * 10**6)  # an hour old
    ep = _endpoint()
    argv = ["receive", "--listen", ep, "--trust", str(td), "--no-curve", "--timeout", "4", "--json"]
    r = _Run(argv + ([] if max_age is None else ["--max-age", max_age]))
    r.start()
    _wait_listening(ep)
    _push_raw(ep, old)
    if max_age is None:
        assert r.result() == 3
        err = capsys.readouterr().err
        assert "warning: refused a connection" in err and "a replayed recording" in err and "longer ago than the allowed 300 s" in err
    else:  # --max-age 0: freshness off (e.g. unsynchronised clocks)
        assert r.result() == 0
        assert _json_lines(capsys.readouterr().out)[0]["verify"]["end_verified"]


def test_tampered_stream_exits_3(tmp_path, capsys, keys):
    kd, td = keys
    tx = load_identity(kd / "tx.key")
    stream = make_stream(tx, n=40, live=True, created_us=_now_us())
    bad = bytearray(stream[20])
    bad[-1] ^= 1
    stream[20] = bytes(bad)
    ep = _endpoint()
    r = _Run(["receive", "--listen", ep, "--trust", str(td), "--no-curve", "--timeout", "20", "--json"])
    r.start()
    _wait_listening(ep)
    _push_raw(ep, stream)
    assert r.result() == 3
    out = _json_lines(capsys.readouterr().out)[0]
    assert out["verify"]["spans_mismatch"] == 1 and out["verify"]["end_verified"]


# ---------------------------------------------------------------- the real thing: video in, video out


@pytest.fixture()
def clip(tmp_path, portrait):
    from facelink.io import VideoWriter

    from facelink.audio import RATE

    path = tmp_path / "clip.mp4"
    img = portrait[::2, ::2].copy()  # 256 x 256
    t = np.arange(RATE) / RATE  # one second of sound: a hum, and a click at CLICK_AT
    sound = (0.05 * np.sin(2 * np.pi * 180 * t)).astype(np.float32)
    k = int(CLICK_AT * RATE)
    sound[k : k + 96] += 0.9 * np.hanning(96).astype(np.float32)
    with VideoWriter(str(path), img.shape[1], img.shape[0], 30, audio_rate=RATE) as w:
        for i in range(30):
            w.write(np.roll(img, int(4 * np.sin(i / 5)), axis=1), i / 30)
            if i == 0:
                w.write_audio(sound, 0.0)
    return path


#: where the test clip's sound clicks (s): the recording must have it there, within a frame
CLICK_AT = 0.6


def test_send_to_receive_end_to_end(tmp_path, capsys, keys, clip, face_models):
    kd, td = keys
    ep = _endpoint()
    out_mp4 = tmp_path / "out.mp4"
    r = _Run(
        ["receive", "--listen", ep, "--trust", str(td), "--key", str(kd / "rx.key"), "-o", str(out_mp4),
         "--timeout", "120", "--json", "--refcache", str(tmp_path / "rc"), "--backend", "onnxruntime", "--speaker", "null:"]
    )  # fmt: skip
    r.start()
    code = main(
        ["send", str(clip), "--to", ep, "--key", str(kd / "tx.key"), "--receiver-key", str(kd / "rx.pub"),
         "--fast", "--wait", "20", "--backend", "onnxruntime"]
    )  # fmt: skip
    assert code == 0
    assert r.result(120) == 0
    captured = capsys.readouterr()
    out = _json_lines(captured.out)[0]
    v = out["verify"]
    assert v["intact"] and v["signer_name"] == "tx" and v["frames_verified"] == out["frames"] > 0
    assert out["sound_played_s"] > 0.8 and out["speaker_error"] is None  # the clip's 1 s of sound went to the speaker
    # a file recording keeps every decodable frame, also from a sender bursting them (--fast),
    # without --every-frame; with a cold reference cache the frames sent before the reference
    # arrived (one round trip) cannot be decoded
    assert out["frames"] - 3 <= out["frames_written"] <= out["frames"] and out_mp4.exists()
    from facelink.io import probe_video

    info = probe_video(str(out_mp4))
    assert (info.width, info.height) == (256, 256)
    assert "frames sent" in captured.err
    # the sound went over the link, sealed with the frames, into the recording in sync
    from facelink.audio import RATE, find_click, read_audio_track

    track = read_audio_track(str(out_mp4))
    assert track is not None
    click = find_click(track.samples, RATE, track.start)
    assert click is not None and abs(click - CLICK_AT) <= 1 / 30, click
    # one session id everywhere: send and receive print the one verify shows and the manifest records
    from facelink.provenance import parse_manifest, sidecar_path

    tag = parse_manifest(sidecar_path(out_mp4).read_bytes()).sessions[0].session_tag
    assert out["session"] == tag and f"session {tag}" in captured.err.split("frames sent")[1]
    assert main(["verify", str(out_mp4), "--json", "--trust", str(td)]) == 0
    assert json.loads(capsys.readouterr().out)["session"] == tag


# ---------------------------------------------------------------- Ctrl-C: a clean end on both sides


def _default_sigint() -> None:
    """In the child before exec: Ctrl-C handled normally, even when this test run was started
    in the background with SIGINT ignored (a shell's ``cmd &``), which the child would inherit."""
    import signal

    signal.signal(signal.SIGINT, signal.SIG_DFL)


def _facelink_subprocess(argv):
    import subprocess
    import sys

    code = "import sys; from facelink.cli import main; sys.exit(main(sys.argv[1:]))"
    return subprocess.Popen(
        [sys.executable, "-c", code, *argv], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, preexec_fn=_default_sigint
    )


def test_receiver_ctrl_c_prints_its_summary_and_exits_0(tmp_path, keys):
    import signal

    kd, td = keys
    ep = _endpoint()
    proc = _facelink_subprocess(["receive", "--listen", ep, "--trust", str(td), "--no-curve", "--json"])
    try:
        _wait_listening(ep)
        stream = make_stream(load_identity(kd / "tx.key"), n=30, live=True, created_us=_now_us())
        _push_raw(ep, stream[: len(stream) // 2])  # no End: the receiver keeps waiting
        time.sleep(1.0)
        proc.send_signal(signal.SIGINT)
        out, err = proc.communicate(timeout=WAIT)
    finally:
        if proc.poll() is None:
            proc.kill()
    assert proc.returncode == 0, err
    summary = _json_lines(out)[0]
    assert summary["interrupted"] and summary["frames"] > 0 and summary["verify"]["spans_mismatch"] == 0


def test_sender_ctrl_c_ends_the_stream_with_end_and_a_final_seal(tmp_path, keys, portrait, face_models):
    import signal

    from facelink.io import VideoWriter
    from facelink.security import TrustStore
    from facelink.transport import Receiver

    kd, _ = keys
    clip = tmp_path / "long.mp4"
    img = portrait[::2, ::2].copy()
    with VideoWriter(str(clip), img.shape[1], img.shape[0], 30) as w:
        for i in range(300):  # 10 s at its native rate: still running when Ctrl-C comes
            w.write(np.roll(img, int(4 * np.sin(i / 5)), axis=1), i / 30)
    tx = load_identity(kd / "tx.key")
    with Receiver("tcp://127.0.0.1:*", None, trust=TrustStore(keys=(tx.public,)), curve=False) as receiver:
        proc = _facelink_subprocess(
            ["send", str(clip), "--to", receiver.bound, "--key", str(kd / "tx.key"), "--no-curve", "--json", "--backend", "onnxruntime"]
        )
        try:
            deadline = time.monotonic() + 60
            while time.monotonic() < deadline and receiver.core.stats().frames < 10:
                receiver.poll(0.05)
            assert receiver.core.stats().frames >= 10, "the sender started streaming"
            proc.send_signal(signal.SIGINT)
            deadline = time.monotonic() + WAIT
            while time.monotonic() < deadline and not receiver.core.summary().end_verified:
                receiver.poll(0.05)
            out, err = proc.communicate(timeout=WAIT)
        finally:
            if proc.poll() is None:
                proc.kill()
        v = receiver.core.summary()
    assert proc.returncode == 0, err
    assert _json_lines(out)[0]["interrupted"] is True
    assert v.end_verified and v.intact and v.frames_verified < 300


def test_receive_status_rate_survives_sparse_samples():
    """The status line's rate comes from at least two samples however far apart they are."""
    from facelink.cli._receive import _sample, _status

    window: list = []
    for t in (0.0, 5.0, 10.0):  # one status line every 5 s (no terminal)
        _sample(window, t, int(30 * t), int(500 * t))
    assert len(window) == 2 and window[0][0] == 5.0
    text = _status(window, [], None)
    assert "30.0 fps" in text and "4.00 kbps" in text
    for t in (10.5, 11.0, 11.5, 12.0, 12.5):  # every 0.5 s: the last ~2 s
        _sample(window, t, int(30 * t), int(500 * t))
    assert window[0][0] == 10.5 and "30.0 fps" in _status(window, [], None)
