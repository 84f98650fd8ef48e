"""facelink.pipeline end to end, and the runners around it agreeing on every output.

One short real clip (the portrait drifting, made here) goes through encode -> decode ->
verify three ways: the Python API, the C API's Python model (:mod:`facelink.capi`, which
libfacelink.so calls one for one) and the CLI.  Streams are compared byte for byte (the
session id and creation time are fixed with ``--session-id``/``--created-us``, the C API's
``session_id``/``created_us``; Ed25519 signatures are deterministic, seal times are stream
times), reports field for field except wall-clock timings.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from facelink import capi
from facelink.bitstream import PacketType, iter_flk, packet_type
from facelink.capi import Status
from facelink.cli import main
from facelink.io import VideoWriter

SID = bytes(range(16))
CREATED = 1_700_000_000_000_000
#: report fields measured on the wall clock (differ run to run)
TIMINGS = {"fps", "track_ms_per_frame", "code_ms_per_frame", "decode_fps", "generator_fps"}


@pytest.fixture(scope="module")
def clip(tmp_path_factory, portrait) -> Path:
    """10 frames at 10 fps: the portrait sliding sideways."""
    face = np.asarray(Image.fromarray(portrait[10:330, 60:380]).resize((192, 192)))
    path = tmp_path_factory.mktemp("clip") / "talk.mp4"
    with VideoWriter(str(path), 224, 192, 10) as vw:
        for i in range(10):
            f = np.zeros((192, 224, 3), np.uint8)
            f[:, 2 * i : 2 * i + 192] = face
            vw.write(f, i / 10)
    return path


@pytest.fixture(scope="module")
def keys(tmp_path_factory):
    """A sender key on disk; a trust directory with it and this machine's receiver key; an empty one."""
    from facelink.security import generate_identity, trust_key, write_identity
    from facelink.security._local import local_identity

    d = tmp_path_factory.mktemp("keys")
    sender = generate_identity("cam")
    key, _ = write_identity(sender, d / "keys")
    trust_key(d / "trust", sender.public)
    trust_key(d / "trust", local_identity().public)
    (d / "empty").mkdir(mode=0o700)
    return sender, str(key), str(d / "trust"), str(d / "empty")


def _timeless(report: dict) -> dict:
    return {k: v for k, v in report.items() if k not in TIMINGS}


@pytest.fixture(scope="module")
def capi_files(face_models, clip, keys, tmp_path_factory):
    """encode -> decode -> verify through the C API, with a trusted key and a fixed session."""
    sender, key, trust, _ = keys
    d = tmp_path_factory.mktemp("capi")
    flk, mp4 = d / "s.flk", d / "out.mp4"
    st, enc = capi.encode_file(str(clip), str(flk), quality="low", key=key, session_id=SID, created_us=CREATED)
    assert st == Status.OK, capi.last_error()
    st, dec = capi.decode_file(str(flk), str(mp4), trust_dir=trust)
    assert st == Status.OK, capi.last_error()
    st, ver = capi.verify_file(str(mp4), trust)
    assert st == Status.OK, capi.last_error()
    return flk, mp4, json.loads(enc), json.loads(dec), json.loads(ver)


def test_capi_encode_seals_with_the_given_key(capi_files, keys) -> None:
    flk, _, enc, _, _ = capi_files
    sender = keys[0]
    kinds = [packet_type(p) for p in iter_flk(flk)]
    assert kinds[0] == PacketType.SESSION_HEADER and kinds[-2:] == [PacketType.END, PacketType.SEAL]
    assert kinds.count(PacketType.SEAL) >= 3, "header, reference and End each get a span of their own"
    assert enc["signer"] == sender.public.fingerprint and enc["seal_bytes"] > 0
    assert enc["session_id"] == SID.hex() and enc["frames"] == 10 and enc["output"] == str(flk)


def test_capi_decode_writes_the_manifest_beside_the_real_output(capi_files) -> None:
    flk, mp4, enc, dec, _ = capi_files
    manifest = Path(str(mp4) + ".facelink.json")
    assert manifest.is_file() and mp4.stat().st_size > 1000
    assert sorted(p.name for p in mp4.parent.iterdir()) == ["out.mp4", "out.mp4.facelink.json", "s.flk"], "no orphaned temporary files"
    assert dec["provenance"]["manifest"] == str(manifest) and dec["provenance"]["complete"] is True
    assert dec["frames"] == 10 and dec["output"] == str(mp4) and dec["session"] == enc["session"]
    assert dec["verification"]["signed"] and dec["verification"]["end_verified"] and not dec["partial"]


def test_capi_verify_fills_sender_and_signature(capi_files, keys) -> None:
    _, mp4, enc, _, ver = capi_files
    assert ver["synthetic"] is True and ver["session"] == enc["session"]
    assert ver["sender"] == keys[0].public.fingerprint and ver["signature_valid"] is True
    assert ver["verdict"] == "valid" and ver["copy"] == "exact" and ver["receiver"]


def test_capi_and_cli_agree_on_stream_decode_and_verify(capi_files, clip, keys, tmp_path, capsys) -> None:
    flk, mp4, enc, dec, ver = capi_files
    _, key, trust, _ = keys
    cli_flk, cli_mp4 = tmp_path / "s.flk", tmp_path / "out.mp4"
    argv = ["encode", str(clip), "-o", str(cli_flk), "--quality", "low", "--key", key]
    rc = main(argv + ["--session-id", SID.hex(), "--created-us", str(CREATED), "--json"])
    assert rc == 0
    cli_enc = json.loads(capsys.readouterr().out)
    assert cli_flk.read_bytes() == flk.read_bytes(), "the CLI and the C API write the same stream"
    assert _timeless({**cli_enc, "output": None}) == _timeless({**enc, "output": None})
    assert main(["decode", str(cli_flk), "-o", str(cli_mp4), "--trust", trust, "--json"]) == 0
    cli_dec = json.loads(capsys.readouterr().out)
    assert Path(str(cli_mp4) + ".facelink.json").is_file()
    for k in ("frames", "width", "height", "fps", "held_frames", "invalid_packets", "verification", "partial", "session", "sessions"):
        assert cli_dec[k] == dec[k], k
    assert main(["verify", str(mp4), "--trust", trust, "--json"]) == 0
    cli_ver = json.loads(capsys.readouterr().out)
    assert cli_ver.pop("requirement_failed") is None
    assert cli_ver == ver, "the C API's verify report is the CLI's JSON object"


def test_capi_encode_without_a_key_signs_with_the_local_key(face_models, clip, keys, tmp_path) -> None:
    from facelink.security._local import local_identity

    _, _, _, empty = keys
    flk = tmp_path / "s.flk"
    st, report = capi.encode_file(str(clip), str(flk), quality="low")
    assert st == Status.OK, capi.last_error()
    assert json.loads(report)["signer"] == local_identity().public.fingerprint
    assert PacketType.SEAL in {packet_type(p) for p in iter_flk(flk)}
    st, _ = capi.decode_file(str(flk), str(tmp_path / "o.mp4"), trust_dir=empty)
    assert st == Status.E_VERIFICATION and "not trusted" in capi.last_error()
    assert not (tmp_path / "o.mp4").exists() and not (tmp_path / "o.mp4.facelink.json").exists()
    st, report = capi.decode_file(str(flk), str(tmp_path / "o.mp4"), trust_dir=empty, insecure=True)
    assert st == Status.OK, capi.last_error()
    assert (tmp_path / "o.mp4.facelink.json").is_file()


def test_capi_decode_of_a_damaged_stream_still_reports(capi_files, keys, tmp_path) -> None:
    """Like the CLI's exit 3: the frames before the damage are written, labelled partial."""
    flk, *_ = capi_files
    cut = tmp_path / "cut.flk"
    cut.write_bytes(flk.read_bytes()[:-90])  # mid-record, after frames were sealed
    st, report = capi.decode_file(str(cut), str(tmp_path / "c.mp4"), trust_dir=keys[2])
    assert st == Status.E_INVALID_PACKET and "the output is partial" in capi.last_error()
    r = json.loads(report)
    assert r["partial"] is True and r["frames"] > 0 and r["provenance"]["complete"] is False
    assert (tmp_path / "c.mp4").is_file() and (tmp_path / "c.mp4.facelink.json").is_file()
    clean_cut = tmp_path / "clean.flk"
    from facelink.bitstream import write_flk

    write_flk(clean_cut, list(iter_flk(flk))[:-2])  # End and its seal missing: nothing verified to end on
    st, report = capi.decode_file(str(clean_cut), str(tmp_path / "d.mp4"), trust_dir=keys[2])
    assert (st, report) == (Status.E_VERIFICATION, None) and "no sealed End packet" in capi.last_error()
    assert not (tmp_path / "d.mp4").exists() and not (tmp_path / "d.mp4.facelink.json").exists()


def test_encoder_session_matches_encode_file(face_models, capi_files, clip, keys) -> None:
    """The live session gives the file encoder's packets, seals included, byte for byte."""
    from facelink.codec import QUALITY_PRESETS
    from facelink.face import create_models, create_tracker
    from facelink.face._reference import prepare_reference
    from facelink.io import open_video
    from facelink.pipeline import EncoderSession
    from facelink.security import load_identity

    flk, *_ = capi_files
    params = QUALITY_PRESETS["low"]
    reference, anchor = prepare_reference(str(clip), create_models("auto"), params.k)
    with open_video(str(clip)) as video:
        info = video.info
        s = EncoderSession(
            reference, params, width=info.width, height=info.height, fps=info.fps, identity=load_identity(keys[1]),
            tracker=create_tracker("auto"), anchor=anchor, session_id=SID, created_us=CREATED,
        )  # fmt: skip
        packets = s.start()
        for frame in video:
            packets += s.push(frame)[0]
    packets += s.end()
    assert packets == list(iter_flk(flk))
    assert s.stats.frames == 10


@pytest.mark.parametrize(
    ("extra", "message"),
    [
        (["--session-id", "zz"], "--session-id wants 32 hex digits (16 bytes), got 'zz'"),
        (["--session-id", "00" * 15], "--session-id wants 32 hex digits (16 bytes)"),
        (["--created-us", "-1"], "--created-us must be >= 0 (microseconds since 1970), got -1"),
    ],
)
def test_encode_session_options_are_usage_errors(tmp_path, capsys, extra, message) -> None:
    rc = main(["encode", str(tmp_path / "none.mp4"), "-o", str(tmp_path / "s.flk")] + extra)
    err = capsys.readouterr().err
    assert rc == 2 and message in err and err.strip().count("\n") == 0
    assert not (tmp_path / "s.flk").exists()


def test_capi_encode_session_id_is_checked(tmp_path) -> None:
    st, report = capi.encode_file(str(tmp_path / "none.mp4"), str(tmp_path / "s.flk"), session_id=b"short")
    assert (st, report) == (Status.E_INVALID_ARGUMENT, None)
    assert capi.last_error() == "facelink_encode_file: session_id must be 16 bytes, got 5"
