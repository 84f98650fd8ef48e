"""Provenance end to end: decode a signed stream to MP4, then verify it -- manifest, C2PA, tampering, keys.

Needs the encoder models (to make the stream), like ``test_cli_decode``; the C2PA
checks need c2pa-python (in the ``test`` extra) and say so when it is missing.
"""

from __future__ import annotations

import json
import shutil

import av
import numpy as np
import pytest
from cryptography import x509
from cryptography.x509.oid import ExtendedKeyUsageOID
from facelink.cli import main
from facelink.io import VideoWriter
from facelink.provenance import (
    C2PA_CLAIM_SIGNING,
    c2pa_available,
    chain_path,
    load_chain,
    parse_manifest,
    read_c2pa,
    sidecar_path,
)
from facelink.security import (
    default_key_dir,
    default_trust_dir,
    generate_identity,
    load_identity,
    write_identity,
)
from test_cli_decode import stream  # noqa: F401 - the signed 20-frame stream fixture

HAS_C2PA, C2PA_WHY = c2pa_available()
needs_c2pa = pytest.mark.skipif(not HAS_C2PA, reason=f"c2pa-python unavailable: {C2PA_WHY}")


def _run(capsys, *argv):
    code = main(list(argv))
    out, err = capsys.readouterr()
    return code, out, err


def _verify(capsys, *argv):
    code, out, err = _run(capsys, "verify", *argv, "--json")
    assert code == 0, err
    return json.loads(out)


@pytest.fixture(scope="module")
def decoded(stream, tmp_path_factory):  # noqa: F811
    """The stream decoded to MP4 by this machine's local receiver key (C2PA embedded when available)."""
    d = tmp_path_factory.mktemp("prov")
    out = d / "talk.mp4"
    assert main(["decode", str(stream), "-o", str(out), "--json"]) == 0
    return out


def _trust_dir(tmp_path, *pubs):
    from facelink.security import trust_key

    t = tmp_path / "trust"
    t.mkdir(mode=0o700)
    for p in pubs:
        trust_key(t, p)
    return t


def test_decode_writes_a_signed_manifest_beside_the_video(decoded):
    side = sidecar_path(decoded)
    assert side.name == "talk.mp4.facelink.json" and side.exists()
    m = parse_manifest(side.read_bytes())
    local = load_identity(default_key_dir() / "local.key")
    assert m.receiver == local.public.ed25519 and m.video_name == "talk.mp4"
    (s,) = m.sessions
    assert s.frames == 20 and s.seals > 2 and s.sender == local.public.ed25519  # encoded and decoded on this machine
    assert s.sender_trusted is True
    import hashlib

    assert m.video_sha256 == hashlib.sha256(decoded.read_bytes()).digest()
    assert (m.c2pa_certificate_sha256 is not None) == HAS_C2PA


def test_verify_fills_sender_and_signature(decoded, capsys, tmp_path):
    r = _verify(capsys, str(decoded))  # default trust dir: this machine trusts its own key
    local = load_identity(default_key_dir() / "local.key")
    assert r["synthetic"] is True and r["receiver"] == local.fingerprint[:6]
    assert r["manifest"] == str(sidecar_path(decoded)) and r["manifest_status"] == "valid"
    assert r["sender"] == local.fingerprint and r["signature_valid"] is True
    assert r["manifest_describes_file"] is True and r["manifest_matches_mark"] is True
    assert r["receiver_trusted"] is True and r["trust"] == str(default_trust_dir())
    # an empty trust directory: valid signature, untrusted key
    t = _trust_dir(tmp_path)
    r = _verify(capsys, str(decoded), "--trust", str(t))
    assert r["signature_valid"] is False and r["receiver_trusted"] is False and "not trusted" in r["provenance"]
    code, out, _ = _run(capsys, "verify", str(decoded))
    assert code == 0 and "provenance: VALID" in out


def test_no_trust_available_gives_null(decoded, capsys, tmp_path, monkeypatch):
    monkeypatch.setenv("FACELINK_HOME", str(tmp_path / "empty-home"))
    r = _verify(capsys, str(decoded))
    assert r["trust"] is None and r["signature_valid"] is None and r["sender"] is not None
    assert r["manifest_status"] == "valid"


def test_reencoded_clip_is_not_described_but_matches_the_mark(decoded, capsys, tmp_path):
    clip = tmp_path / "reencoded.mp4"
    with av.open(str(decoded)) as c:
        frames = [f.to_ndarray(format="rgb24") for f in c.decode(video=0)]
    with VideoWriter(str(clip), frames[0].shape[1], frames[0].shape[0], 25, crf=20) as vw:
        for i, f in enumerate(frames):
            vw.write(f, i / 25)
    r = _verify(capsys, str(clip), "--manifest", str(sidecar_path(decoded)))
    assert r["synthetic"] is True
    assert r["manifest_describes_file"] is False and r["manifest_matches_mark"] is True
    assert r["content_match"] is True and r["copy"] == "re-encoded" and r["verdict"] == "valid"
    assert r["signature_valid"] is True and "re-encoded copy: content matches the whole recording" in r["provenance"]
    code, out, _ = _run(capsys, "verify", str(clip), "--manifest", str(sidecar_path(decoded)))
    assert code == 0 and "provenance: VALID (re-encoded)" in out
    # without the sidecar nothing is claimed
    r = _verify(capsys, str(clip))
    assert r["manifest"] is None and r["signature_valid"] is None and r["sender"] is None
    if HAS_C2PA:
        assert r["c2pa"]["present"] is False


def test_tampered_video_and_manifest(decoded, capsys, tmp_path):
    video = tmp_path / "t.mp4"
    shutil.copy(decoded, video)
    side = sidecar_path(video)
    shutil.copy(sidecar_path(decoded), side)
    data = bytearray(video.read_bytes())
    i = data.find(b"mdat") + 200
    data[i] ^= 0x40
    video.write_bytes(bytes(data))
    r = _verify(capsys, str(video))
    assert r["manifest_describes_file"] is False
    # altered manifest: bad signature
    doc = json.loads(side.read_bytes())
    doc["body"]["sessions"][0]["frames"] += 1
    side.write_text(json.dumps(doc))
    r = _verify(capsys, str(video))
    assert r["manifest_status"] == "bad_signature" and r["signature_valid"] is False and r["sender"] is None
    # corrupted manifest
    side.write_bytes(b"{ this is not json")
    r = _verify(capsys, str(video))
    assert r["manifest_status"] == "corrupt" and r["signature_valid"] is False
    assert "not a FaceLink provenance manifest" in r["manifest_error"]


def test_manifest_of_another_session_or_receiver(decoded, stream, capsys, tmp_path):  # noqa: F811
    # the same stream decoded by another receiver key: a valid manifest of another receiver
    from facelink.pipeline import decode_file

    other = generate_identity("other-rx")
    out = tmp_path / "other.mp4"
    decode_file(str(stream), str(out), identity=other, c2pa=False)
    r = _verify(capsys, str(decoded), "--manifest", str(sidecar_path(out)))
    assert r["manifest_status"] == "valid" and r["manifest_matches_mark"] is False
    assert r["manifest_describes_file"] is False and r["signature_valid"] is False
    assert "another session or receiver" in r["provenance"]
    # and the other receiver's own output verifies against a trust dir holding its key
    t = _trust_dir(tmp_path, other.public)
    r = _verify(capsys, str(out), "--trust", str(t))
    assert r["signature_valid"] is True and r["receiver"] == other.fingerprint[:6]
    assert r["sender_trusted"] is False  # the sender (this machine's key) is not in that directory
    assert r["c2pa"] is None or r["c2pa"]["present"] is False  # --no-c2pa equivalent at decode time


def test_revoked_receiver(decoded, capsys, tmp_path):
    from facelink.security import revoke_key

    local = load_identity(default_key_dir() / "local.key")
    t = _trust_dir(tmp_path, local.public)
    revoke_key(t, local.fingerprint)
    r = _verify(capsys, str(decoded), "--trust", str(t))
    assert r["signature_valid"] is False and "REVOKED" in r["provenance"]


def test_verify_bad_manifest_option(decoded, capsys, tmp_path):
    code, out, err = _run(capsys, "verify", str(decoded), "--manifest", str(tmp_path / "nope.json"))
    assert code == 1 and "no such manifest" in err and out == ""


# ---------------------------------------------------------------- C2PA


@needs_c2pa
def test_c2pa_manifest_in_the_mp4(decoded, capsys):
    rep = read_c2pa(decoded)
    assert rep.present and rep.valid and rep.validation_state == "Valid"
    assert rep.failures == ["signingCredential.untrusted"]  # a local CA is on no C2PA trust list
    assert rep.digital_source_type == "http://cv.iptc.org/newscodes/digitalsourcetype/trainedAlgorithmicMedia"
    assert rep.facelink and rep.signed_by_receiver
    side = parse_manifest(sidecar_path(decoded).read_bytes())
    assert rep.manifest.sessions == side.sessions and rep.manifest.video_sha256 is None
    r = _verify(capsys, str(decoded))
    assert r["c2pa"]["present"] and r["c2pa"]["valid"] and r["c2pa"]["signed_by_receiver"]
    assert "untrusted" in r["c2pa"]["reason"]


@needs_c2pa
def test_c2pa_alone_carries_the_claim(decoded, capsys, tmp_path):
    video = tmp_path / "lone.mp4"
    shutil.copy(decoded, video)  # no sidecar
    r = _verify(capsys, str(video))
    assert r["manifest"] == "c2pa" and r["manifest_status"] == "valid"
    assert r["manifest_describes_file"] is True and r["signature_valid"] is True
    data = bytearray(video.read_bytes())
    i = data.find(b"mdat") + 200
    data[i] ^= 0x40
    video.write_bytes(bytes(data))
    r = _verify(capsys, str(video))
    assert r["c2pa"]["valid"] is False and "assertion.bmffHash.mismatch" in r["c2pa"]["failures"]
    assert r["manifest_describes_file"] is False and r["manifest_matches_mark"] is True


@needs_c2pa
def test_c2pa_claim_by_another_certificate_is_not_the_receivers(decoded, tmp_path):
    """A FaceLink assertion copied into a claim signed by someone else's certificate."""
    import c2pa
    from facelink.provenance import issue_certificate, load_or_create_ca
    from facelink.provenance._c2pa import ASSERTION_LABEL

    rep_data = None
    with open(decoded, "rb") as f, c2pa.Reader("video/mp4", f) as r:
        for a in r.get_active_manifest()["assertions"]:
            if a["label"] == ASSERTION_LABEL:
                rep_data = a["data"]
    thief = generate_identity("thief")
    ca_key, ca_cert, _ = load_or_create_ca("thief-ca", tmp_path)
    chain = issue_certificate(thief, ca_key, ca_cert)
    src = tmp_path / "plain.mp4"
    with VideoWriter(str(src), 64, 64, 25) as vw:
        for i in range(10):
            vw.write(np.full((64, 64, 3), 20 * i, np.uint8), i / 25)
    definition = {"title": "x.mp4", "format": "video/mp4", "assertions": [
        {"label": "c2pa.actions", "data": {"actions": [{"action": "c2pa.created", "digitalSourceType": "http://cv.iptc.org/newscodes/digitalsourcetype/trainedAlgorithmicMedia"}]}},
        {"label": ASSERTION_LABEL, "data": rep_data},
    ]}  # fmt: skip
    signer = c2pa.Signer.from_callback(thief.sign, c2pa.C2paSigningAlg.ED25519, chain.pem().decode(), None)
    dst = tmp_path / "stolen.mp4"
    with open(src, "rb") as s, open(dst, "w+b") as d:
        c2pa.Builder(definition).sign(signer, "video/mp4", s, d)
    rep = read_c2pa(dst)
    assert rep.present and rep.valid and rep.facelink is True and rep.signed_by_receiver is False


def test_keys_cert_issues_a_c2pa_profile_chain(tmp_path, capsys):
    kd = tmp_path / "keys"
    write_identity(generate_identity("kiosk"), kd)
    code, out, err = _run(capsys, "keys", "cert", "kiosk", "--dir", str(kd), "--json")
    assert code == 0, err
    info = json.loads(out)
    assert info["ca_created"] is True and info["chain"] == str(chain_path("kiosk", kd))
    chain = load_chain(info["chain"])
    ident = load_identity(kd / "kiosk.key")
    assert chain.public_key == ident.public.ed25519
    ee = chain.certificate
    bc = ee.extensions.get_extension_for_class(x509.BasicConstraints)
    ku = ee.extensions.get_extension_for_class(x509.KeyUsage)
    eku = ee.extensions.get_extension_for_class(x509.ExtendedKeyUsage).value
    assert bc.critical and not bc.value.ca
    assert ku.critical and ku.value.digital_signature and not ku.value.key_cert_sign
    assert ExtendedKeyUsageOID.EMAIL_PROTECTION in eku and C2PA_CLAIM_SIGNING in eku
    assert ExtendedKeyUsageOID.ANY_EXTENDED_KEY_USAGE not in eku
    ee.verify_directly_issued_by(chain.ca)
    assert chain.ca.extensions.get_extension_for_class(x509.BasicConstraints).value.ca
    assert oct((kd / "local.ca.key").stat().st_mode & 0o777) == "0o600"
    # a second certificate reuses the CA
    code, out, _ = _run(capsys, "keys", "cert", "kiosk", "--dir", str(kd), "--json", "--days", "30")
    assert code == 0 and json.loads(out)["ca_created"] is False
    assert load_chain(info["chain"]).ca == chain.ca
    code, _, err = _run(capsys, "keys", "cert", "nobody", "--dir", str(kd))
    assert code == 1 and "no such identity" in err
    code, _, _ = _run(capsys, "keys", "cert", "kiosk", "--dir", str(kd), "--days", "0")
    assert code == 2


@needs_c2pa
def test_named_receiver_without_certificate_skips_c2pa_and_says_why(stream, tmp_path):  # noqa: F811
    from facelink.pipeline import decode_file

    rx = generate_identity("named-rx")
    res = decode_file(str(stream), str(tmp_path / "n.mp4"), identity=rx)
    assert res.provenance is not None and res.provenance.c2pa is False
    assert "facelink keys cert named-rx" in res.provenance.c2pa_skipped
    assert sidecar_path(tmp_path / "n.mp4").exists()


def test_non_mp4_output_skips_c2pa(stream, tmp_path):  # noqa: F811
    from facelink.pipeline import decode_file

    res = decode_file(str(stream), str(tmp_path / "n.mkv"))
    assert res.provenance.c2pa is False and "MP4" in res.provenance.c2pa_skipped
    assert parse_manifest(sidecar_path(tmp_path / "n.mkv").read_bytes()).video_name == "n.mkv"


def test_live_receiver_hook_records_the_accepted_seals(stream, decoded, tmp_path):  # noqa: F811
    """What ``facelink receive -o`` does: observe the receiver's results, render, then write_receive_provenance."""
    from fractions import Fraction

    from facelink.bitstream import iter_flk
    from facelink.provenance import write_receive_provenance
    from facelink.receiver import SessionRenderer
    from facelink.security import TrustStore
    from facelink.transport import ReceiverCore

    core = ReceiverCore(TrustStore.load(default_trust_dir()))
    renderer = SessionRenderer()
    out = tmp_path / "live.mp4"
    writer = None
    for i, p in enumerate(iter_flk(stream)):
        results = [core.feed(b"peer", p, now=i * 0.04, wall=1e9)]
        renderer.log.observe(results)
        for r in results:
            f = r.delivery.frame
            if f is not None and core.ready:
                img = renderer.render(core.session.decoder, f).image
                if writer is None:
                    writer = VideoWriter(str(out), img.shape[1], img.shape[0], Fraction(25))
                writer.write(img, f.time)
    writer.close()
    rec = write_receive_provenance(str(out), renderer, None, core.stats())
    assert rec is not None and rec.manifest_path == sidecar_path(out)
    live = rec.manifest.sessions[0]
    offline = parse_manifest(sidecar_path(decoded).read_bytes()).sessions[0]
    assert live.session_id == offline.session_id and live.frames == offline.frames == 20
    assert (live.seals, live.seal_log_sha256) == (offline.seals, offline.seal_log_sha256)
    assert write_receive_provenance(None, renderer, None) is None


# ---------------------------------------------------------------- forgeries (issue #20 item 1)


def _read_frames(path):
    with av.open(str(path)) as c:
        return [f.to_ndarray(format="rgb24") for f in c.decode(video=0)]


def _write(path, frames, fps=25, crf=18):
    with VideoWriter(str(path), frames[0].shape[1], frames[0].shape[0], fps, crf=crf) as vw:
        for i, f in enumerate(frames):
            vw.write(f, i / fps)
    return path


def _stamp(frames, manifest_path, first=0):
    """The published attack: mark frames with the payload a genuine manifest names (the mark key is public)."""
    from facelink.watermark import PUBLIC_MARK_KEY, Watermarker, WatermarkPayload

    m = parse_manifest(manifest_path.read_bytes())
    wm = Watermarker(PUBLIC_MARK_KEY, WatermarkPayload.for_session(m.sessions[0].header, m.receiver))
    return [wm.embed(np.ascontiguousarray(f), first + i) for i, f in enumerate(frames)]


def _foreign(frames):
    """Another video of the same size and length: the same face mirrored, drifting the other way, darker background."""
    out = []
    for i, f in enumerate(frames):
        g = np.ascontiguousarray(f[:, ::-1])
        g = np.roll(g, 3 * i, axis=1)
        out.append(g)
    return out


def _forged_verdict(capsys, video, manifest):
    r = _verify(capsys, str(video), "--manifest", str(manifest))
    code, out, _ = _run(capsys, "verify", str(video), "--manifest", str(manifest))
    assert code == 0 and "provenance: INVALID" in out and "VALID," not in out
    return r


def test_published_attack_stamp_and_copied_manifest_is_invalid(decoded, capsys, tmp_path):
    genuine = _read_frames(decoded)
    forged = _write(tmp_path / "forged.mp4", _stamp(_foreign(genuine), sidecar_path(decoded)))
    shutil.copy(sidecar_path(decoded), sidecar_path(forged))
    r = _verify(capsys, str(forged))
    # the mark (public key) says what the forger wanted ...
    assert r["synthetic"] is True and r["manifest_status"] == "valid" and r["manifest_matches_mark"] is True
    # ... but the pixels are not what the receiver signed
    assert r["manifest_describes_file"] is False and r["content_match"] is False
    assert r["signature_valid"] is False and r["verdict"] == "invalid" and r["sender"] is None
    assert "does not match the content it signed" in r["provenance"] and "anyone can stamp" in r["provenance"]
    _forged_verdict(capsys, forged, sidecar_path(decoded))
    code, out, err = _run(capsys, "verify", str(forged), "--require-valid")
    assert code == 3 and "--require-valid" in err


def test_spliced_and_padded_genuine_video_is_invalid(decoded, capsys, tmp_path):
    genuine = _read_frames(decoded)
    foreign = _stamp(_foreign(genuine), sidecar_path(decoded))
    spliced = genuine[:8] + foreign[8:16] + genuine[16:]  # 8 foreign frames, marked for their place
    r = _forged_verdict(capsys, _write(tmp_path / "spliced.mp4", spliced), sidecar_path(decoded))
    assert r["content_match"] is False and r["content"]["segments_failed"] >= 1 and r["signature_valid"] is False
    longer = genuine + _stamp(_foreign(genuine), sidecar_path(decoded), first=len(genuine))[:8]
    r = _forged_verdict(capsys, _write(tmp_path / "longer.mp4", longer), sidecar_path(decoded))
    assert r["content_match"] is False and "did not write" in r["content"]["reason"]


def test_genuine_excerpt_is_attributed_as_an_excerpt(decoded, capsys, tmp_path):
    genuine = _read_frames(decoded)
    clip = _write(tmp_path / "cut.mp4", genuine[4:], crf=23)
    r = _verify(capsys, str(clip), "--manifest", str(sidecar_path(decoded)))
    assert r["content_match"] is True and r["content"]["offset"] == 4 and r["copy"] == "re-encoded excerpt"
    assert r["signature_valid"] is True and "frames 4-19 of 20 (an excerpt)" in r["provenance"]


def test_other_genuine_video_of_the_same_session_is_invalid(decoded, stream, portrait, capsys, tmp_path):  # noqa: F811
    # the same signed stream rendered by the same receiver onto another face: a genuine FaceLink
    # video whose watermark names exactly the session and receiver of the first manifest
    from PIL import Image

    target = tmp_path / "other.png"
    Image.fromarray(np.ascontiguousarray(portrait[:, ::-1])).save(target)
    other = tmp_path / "other.mp4"
    assert main(["decode", str(stream), "-o", str(other), "--reference", str(target), "--no-c2pa"]) == 0
    capsys.readouterr()
    r = _verify(capsys, str(other), "--manifest", str(sidecar_path(decoded)))
    assert r["manifest_matches_mark"] is True  # the old check alone said VALID here
    assert r["content_match"] is False and r["signature_valid"] is False and r["verdict"] == "invalid"
    # its own manifest does describe it
    r = _verify(capsys, str(other))
    assert r["verdict"] == "valid" and r["copy"] == "exact"


def test_half_size_crf28_copy_is_still_attributed(decoded, capsys, tmp_path):
    from PIL import Image

    genuine = _read_frames(decoded)
    h, w = genuine[0].shape[:2]
    small = [np.asarray(Image.fromarray(f).resize((w // 2, h // 2), Image.Resampling.BICUBIC)) for f in genuine]
    clip = _write(tmp_path / "small.mp4", small, crf=28)
    r = _verify(capsys, str(clip), "--manifest", str(sidecar_path(decoded)))
    assert r["content_match"] is True and r["copy"] == "re-encoded" and r["signature_valid"] is True


# ---------------------------------------------------------------- partial streams (issue #20 item 2)


@pytest.mark.parametrize("how", ["cut-200", "cut-90", "cut-3", "garbage-1", "garbage-64"])
def test_partial_streams_are_labelled_partial_everywhere(stream, capsys, tmp_path, how):  # noqa: F811
    data = stream.read_bytes()
    if how.startswith("cut-"):
        damaged = data[: len(data) - int(how[4:])]  # bytes cut off the end: mid-record, after frames were sealed
    else:
        damaged = data + bytes(range(7, 7 + int(how.split("-")[1])))
    src = tmp_path / "damaged.flk"
    src.write_bytes(damaged)
    out = tmp_path / "partial.mp4"
    code, stdout, err = _run(capsys, "decode", str(src), "-o", str(out), "--no-c2pa", "--json")
    assert out.exists(), err  # every case here cuts after the first verified frames
    assert code == 3 and "partial" in err
    info = json.loads(stdout)
    assert info["partial"] is True and info["verification"] is not None
    assert info["provenance"]["complete"] is False and info["provenance"]["incomplete_reason"]
    m = parse_manifest(sidecar_path(out).read_bytes())
    assert m.complete is False and m.incomplete_reason
    if how.startswith("cut-"):
        assert m.sessions[0].end_verified is False
    r = _verify(capsys, str(out))
    assert r["partial"] is True and r["verdict"] == "partial" and "PARTIAL recording" in r["provenance"]
    code, line, _ = _run(capsys, "verify", str(out))
    assert code == 0 and "provenance: PARTIAL" in line and "VALID" not in line
    code, _, err = _run(capsys, "verify", str(out), "--require-valid")
    assert code == 3 and "partial" in err


def test_complete_stream_is_not_partial(decoded, capsys):
    m = parse_manifest(sidecar_path(decoded).read_bytes())
    assert m.complete is True and m.incomplete_reason is None and m.sessions[0].end_verified is True
    r = _verify(capsys, str(decoded))
    assert r["partial"] is False and r["verdict"] == "valid"


# ---------------------------------------------------------------- --insecure outputs (issue #20 item 5)


def test_untrusted_and_unsigned_streams_never_verify_as_valid(stream, capsys, tmp_path):  # noqa: F811
    from dataclasses import replace

    from facelink.bitstream import FlkWriter, PacketType, SessionHeader, iter_flk
    from facelink.security._seal import SIGNER_TAG

    empty = tmp_path / "empty-trust"
    empty.mkdir(mode=0o700)
    untrusted = tmp_path / "untrusted.mp4"
    assert main(["decode", str(stream), "-o", str(untrusted), "--trust", str(empty), "--insecure", "--no-c2pa"]) == 0
    capsys.readouterr()
    r = _verify(capsys, str(untrusted))  # this machine trusts its receiver key
    assert r["receiver_trusted"] is True and r["sender_trusted_by_receiver"] is False
    assert r["signature_valid"] is False and r["verdict"] == "invalid" and "NOT trusted by the receiver" in r["provenance"]
    code, out, _ = _run(capsys, "verify", str(untrusted))
    assert "provenance: INVALID" in out and "(not trusted by the receiver)" in out
    # an unsigned stream: the signer extension and every seal removed
    packets = []
    for p in iter_flk(stream):
        if p[3] == PacketType.SEAL:
            continue
        if p[3] == PacketType.SESSION_HEADER:
            h = SessionHeader.parse(p)
            p = bytes(replace(h, extensions=tuple(e for e in h.extensions if e[0] != SIGNER_TAG)))
        packets.append(p)
    src = tmp_path / "unsigned.flk"
    with FlkWriter(src) as w:
        for p in packets:
            w.write(p)
    unsigned = tmp_path / "unsigned.mp4"
    assert main(["decode", str(src), "-o", str(unsigned), "--insecure", "--no-c2pa"]) == 0
    capsys.readouterr()
    m = parse_manifest(sidecar_path(unsigned).read_bytes())
    assert m.sessions[0].sender is None and m.complete is False and "unsigned" in m.incomplete_reason
    r = _verify(capsys, str(unsigned))
    assert r["sender_signed"] is False and r["signature_valid"] is False and "UNSIGNED stream" in r["provenance"]
    code, out, _ = _run(capsys, "verify", str(unsigned))
    assert "provenance: INVALID, sender NONE (unsigned stream)" in out
