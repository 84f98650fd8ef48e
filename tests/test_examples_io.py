"""The capture/telepresence examples: every one answers --help without hardware; the ones that
wrap ``facelink send/receive`` build command lines the CLI accepts; the minimal sender and
receiver run end to end over loopback ZeroMQ on a clip, and verify_clip finds the mark in
what the receiver rendered."""

from __future__ import annotations

import importlib.util
import threading
from pathlib import Path

import numpy as np
import pytest
from facelink.cli import build_parser
from test_cli_transport import _endpoint, keys  # noqa: F401 - shared endpoint helper and key fixture

EXAMPLES = Path(__file__).resolve().parents[1] / "examples"
IO_EXAMPLES = [
    "jetson_sender",
    "jetson_receiver",
    "pi_sender",
    "robot_telepresence",
    "verify_clip",
    "minimal_sender",
    "minimal_receiver",
]


def _load(name: str):
    spec = importlib.util.spec_from_file_location(f"example_{name}", EXAMPLES / f"{name}.py")
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


@pytest.mark.parametrize("name", IO_EXAMPLES)
def test_example_help_runs_without_hardware(name, capsys):
    mod = _load(name)
    with pytest.raises(SystemExit) as e:
        mod.main(["--help"])
    assert e.value.code == 0
    out = capsys.readouterr().out
    assert out.startswith("usage:") and " ".join(mod.__doc__.splitlines()[0].split()) in " ".join(out.split())


def _parses(argv):
    return build_parser().parse_args(argv)


def test_jetson_sender_builds_a_send_command():
    mod = _load("jetson_sender")
    ap_args = ["csi://0", "tcp://kiosk:5555", "--key", "robot", "--receiver-key", "kiosk.pub", "--input-width", "1280", "--input-height", "720"]
    args = _parses(mod.build_argv(_namespace(mod, ap_args)))
    assert (args.command, args.input, args.to, args.key, args.receiver_key) == ("send", "csi://0", "tcp://kiosk:5555", "robot", "kiosk.pub")
    assert (args.input_width, args.input_height, args.io_backend, args.backend) == (1280, 720, "auto", "auto")
    args = _parses(mod.build_argv(_namespace(mod, ["tcp://kiosk:5555", "--no-curve", "--key", "k"])))  # input defaults to csi://0
    assert args.input == "csi://0" and args.no_curve and args.mic is None
    args = _parses(mod.build_argv(_namespace(mod, ["tcp://kiosk:5555", "--key", "k", "--mic", "alsa:hw:1"])))
    assert args.mic == "alsa:hw:1"  # the robot's USB microphone goes along


def test_pi_sender_builds_a_send_command():
    mod = _load("pi_sender")
    args = _parses(mod.build_argv(_namespace(mod, ["tcp://kiosk:5555", "--key", "pi", "--receiver-key", "k.pub", "--quality", "low"])))
    assert (args.input, args.input_width, args.input_height, args.input_rate) == ("picam://0", 640, 480, 30.0)
    assert (args.backend, args.quality) == ("onnxruntime", "low")
    assert _parses(mod.build_argv(_namespace(mod, ["tcp://kiosk:5555", "--mic", "alsa:default"]))).mic == "alsa:default"


def test_jetson_receiver_is_a_full_screen_kiosk_unless_headless():
    mod = _load("jetson_receiver")
    args = _parses(mod.build_argv(_namespace(mod, ["tcp://*:5555", "--key", "kiosk"])))
    assert (args.command, args.listen, args.output, args.fullscreen) == ("receive", "tcp://*:5555", "display://0", True)
    assert _parses(mod.build_argv(_namespace(mod, ["tcp://*:5555", "--key", "kiosk", "--speaker", "alsa:hw:1"]))).speaker == "alsa:hw:1"
    args = _parses(mod.build_argv(_namespace(mod, ["tcp://*:5555", "--key", "kiosk", "--windowed"])))
    assert args.output == "display://0" and not args.fullscreen
    args = _parses(mod.build_argv(_namespace(mod, ["tcp://*:5555", "rtsp://@:8554/face", "--headless", "--output-encoder", "cpu", "--key", "k"])))
    assert (args.output, args.output_encoder, args.fullscreen) == ("rtsp://@:8554/face", "cpu", False)
    args = _parses(mod.build_argv(_namespace(mod, ["tcp://*:5555", "--headless", "--key", "k"])))
    assert args.output is None  # verify only
    with pytest.raises(SystemExit):
        mod.build_argv(_namespace(mod, ["tcp://*:5555", "display://0", "--headless"]))


def _namespace(mod, argv):
    """The example's own parsed arguments."""
    return mod.build_parser().parse_args(argv)


# ------------------------------------------------------------------ end to end: minimal sender -> minimal receiver -> verify_clip



def test_minimal_sender_to_minimal_receiver_then_verify_clip(tmp_path, keys, portrait, face_models, capsys):
    from facelink.io import VideoWriter, probe_video

    kd, td = keys
    clip = tmp_path / "talk.mp4"
    img = portrait[::2, ::2].copy()  # 256 x 256
    with VideoWriter(str(clip), img.shape[1], img.shape[0], 30) as w:
        for i in range(24):
            w.write(np.roll(img, int(4 * np.sin(i / 4)), axis=1), i / 30)
    out = tmp_path / "received.mp4"
    ep = _endpoint()
    receiver = _load("minimal_receiver")
    codes: dict[str, int] = {}
    t = threading.Thread(
        target=lambda: codes.setdefault("rx", receiver.main([ep, str(out), "--key", str(kd / "rx.key"), "--trust", str(td)])),
        daemon=True,
    )
    t.start()
    sender = _load("minimal_sender")
    assert sender.main([f"file://{clip}", ep, "--key", str(kd / "tx.key"), "--receiver-key", str(kd / "rx.pub")]) == 0
    t.join(120)
    assert not t.is_alive(), "the minimal receiver did not end with the session"
    assert codes["rx"] == 0
    printed = capsys.readouterr().out
    assert "frames sent" in printed and f"frames rendered to {out}" in printed
    info = probe_video(str(out))
    assert (info.width, info.height) == (256, 256)

    assert _load("verify_clip").main([str(out)]) == 0
    verdict = capsys.readouterr().out
    assert f"{out}: SYNTHETIC" in verdict
    assert _load("verify_clip").main([str(clip)]) == 0  # the camera clip itself carries no mark
    assert "no FaceLink mark found" in capsys.readouterr().out
    assert _load("verify_clip").main([str(tmp_path / "missing.mp4")]) == 1
    assert "no such file" in capsys.readouterr().err
