"""Keypoint codec: closed-loop prediction, key frames, loss recovery, late join, rate knobs."""

import math

import numpy as np
import pytest

from facelink import bitstream as bs
from facelink.codec import QUALITY_PRESETS, CodecParams, FrameKind, Reference, StreamDecoder, StreamEncoder, params_for_kbps
from facelink.errors import InvalidPacket
from facelink.keypoints import KeypointFitter, Pose, default_basis


def _reference(seed=0, size=(256, 256)):
    rng = np.random.default_rng(seed)
    basis = default_basis()
    lm = KeypointFitter(basis, basis.mean, 0).reconstruct(Pose(0.05, 0.0, 0.02, size[1] / 2, size[0] / 2, 60), np.zeros(0))
    img = (rng.random((size[0], size[1], 3)) * 255).astype(np.uint8)
    return Reference.create(img, lm)


def _motion(ref: Reference, n=90, k=16, seed=1):
    """Smooth head motion and expression: (n, 468, 3) landmarks."""
    basis = default_basis()
    fitter, pose0 = KeypointFitter.from_reference(basis, ref.landmarks, k)
    rng = np.random.default_rng(seed)
    phase = rng.random(k) * 6.28
    out = []
    for i in range(n):
        t = i / 30
        c = basis.std[:k] * np.sin(2 * t + phase)
        p = Pose(pose0.yaw + 0.2 * math.sin(t), pose0.pitch + 0.1 * math.sin(1.3 * t), pose0.roll, pose0.tx + 5 * math.sin(t), pose0.ty, pose0.scale * (1 + 0.03 * math.sin(t)))
        out.append(fitter.reconstruct(p, c))
    return np.array(out)


def _encode(ref, frames, params=QUALITY_PRESETS["medium"], faces=None):
    enc = StreamEncoder(ref, params, width=ref.width, height=ref.height, fps=30, session_id=b"\x01" * 16, created_us=1)
    start = enc.start()
    pkts, truth = [], []
    for i, lm in enumerate(frames):
        p, kf = enc.encode(i, i / 30, None if faces is not None and not faces[i] else lm)
        pkts.append(p)
        truth.append(kf)
    return enc, start, pkts, truth, enc.end()


def test_decoder_reconstructs_exactly_what_the_encoder_predicted():
    ref = _reference()
    frames = _motion(ref)
    enc, start, pkts, truth, end = _encode(ref, frames)
    dec = StreamDecoder()
    assert all(dec.feed(p) is None for p in start)
    assert dec.ready
    for p, kf in zip(pkts, truth):
        got = dec.feed(p)
        assert got.kind == kf.kind and got.index == kf.index
        assert abs(got.time - kf.time) < 1e-9
        assert np.array_equal(got.coeffs, kf.coeffs)
        assert np.allclose(got.pose.as_array(), kf.pose.as_array(), rtol=0, atol=1e-12)
    assert dec.feed(end) is None and dec.ended


def test_fidelity_and_rate_at_medium():
    ref = _reference()
    frames = _motion(ref, n=300)
    enc, start, pkts, truth, end = _encode(ref, frames)
    dec = StreamDecoder()
    for p in start:
        dec.feed(p)
    errs = []
    for p, lm in zip(pkts, frames):
        rec = dec.landmarks(dec.feed(p))
        iod = np.linalg.norm(lm[263, :2] - lm[33, :2])
        errs.append(np.mean(np.linalg.norm(rec[:, :2] - lm[:, :2], axis=1)) / iod)
    assert np.mean(errs) < 0.01  # 1 % of the inter-ocular distance
    kbps = 8 * (len(start[0]) + sum(map(len, pkts)) + len(end)) / 10.0 / 1000
    assert kbps < 6.0


def test_key_frames_follow_the_interval():
    ref = _reference()
    _, _, _, truth, _ = _encode(ref, _motion(ref, n=130), QUALITY_PRESETS["medium"].with_(key_interval=30))
    keys = [kf.index for kf in truth if kf.kind is FrameKind.KEY]
    assert keys == [0, 30, 60, 90, 120]


def test_lost_packet_holds_until_next_key_frame():
    ref = _reference()
    params = QUALITY_PRESETS["medium"].with_(key_interval=20)
    _, start, pkts, truth, _ = _encode(ref, _motion(ref, n=60), params)
    dec = StreamDecoder()
    for p in start:
        dec.feed(p)
    kinds = []
    for i, p in enumerate(pkts):
        if i == 5:
            continue  # lost
        kinds.append((i, dec.feed(p)))
    lost = [i for i, kf in kinds if kf.kind is FrameKind.LOST]
    assert lost == list(range(6, 20))
    for i, kf in kinds:
        if i >= 20:
            assert np.array_equal(kf.coeffs, truth[i].coeffs), "resumes exactly at the key frame"


def test_late_joiner_gets_header_again_and_recovers():
    ref = _reference()
    enc, start, pkts, truth, _ = _encode(ref, _motion(ref, n=40), QUALITY_PRESETS["medium"].with_(key_interval=10))
    dec = StreamDecoder()
    # joins at frame 13 without the header: nothing decodable
    assert dec.feed(pkts[13]).kind is FrameKind.LOST
    for p in start:  # header + reference re-sent
        dec.feed(p)
    outs = [dec.feed(p) for p in pkts[14:]]
    first_ok = next(o for o in outs if o.kind is not FrameKind.LOST)
    assert first_ok.index == 20 and first_ok.kind is FrameKind.KEY


def test_no_face_frames_reset_prediction():
    ref = _reference()
    faces = [True] * 10 + [False] * 5 + [True] * 10
    _, start, pkts, truth, _ = _encode(ref, _motion(ref, n=25), faces=faces)
    assert [kf.kind for kf in truth[9:16]] == [FrameKind.PREDICTED] + [FrameKind.NO_FACE] * 5 + [FrameKind.KEY]
    dec = StreamDecoder()
    for p in start:
        dec.feed(p)
    got = [dec.feed(p) for p in pkts]
    assert [g.kind for g in got] == [t.kind for t in truth]


def test_reference_digest_mismatch_is_rejected():
    ref = _reference()
    enc = StreamEncoder(ref, QUALITY_PRESETS["low"], width=256, height=256, fps=30)
    header, *chunks = enc.start()
    dec = StreamDecoder()
    dec.feed(header)
    bad = bs.parse_packet(chunks[0])
    forged = bs.ReferenceChunk(bad.digest_prefix, bad.index, bad.count, bytes([bad.data[0] ^ 1]) + bad.data[1:])
    for c in chunks[1:]:
        dec.feed(c)
    with pytest.raises(InvalidPacket):
        dec.feed(bytes(forged))
    assert not dec.ready


def test_stream_from_another_basis_is_rejected():
    ref = _reference()
    enc = StreamEncoder(ref, QUALITY_PRESETS["low"], width=256, height=256, fps=30)
    h = enc.header
    import dataclasses

    other = dataclasses.replace(h, basis_id=b"\0" * 8)
    with pytest.raises(InvalidPacket, match="basis"):
        StreamDecoder().feed(bytes(other))


def test_timestamps_survive_variable_frame_rate():
    ref = _reference()
    frames = _motion(ref, n=10)
    enc = StreamEncoder(ref, QUALITY_PRESETS["medium"], width=256, height=256, fps=30)
    dec = StreamDecoder()
    for p in enc.start():
        dec.feed(p)
    times = [0.0, 0.033, 0.071, 0.1, 0.2, 0.21, 0.25, 0.3, 0.5, 0.51]
    for i, (t, lm) in enumerate(zip(times, frames)):
        p, _ = enc.encode(i, 10.0 + t, lm)
        assert abs(dec.feed(p).time - t) <= 0.5 / 90000 + 1e-12


def test_params_validation_and_kbps_mapping():
    with pytest.raises(ValueError):
        CodecParams(k=65)
    with pytest.raises(ValueError):
        CodecParams(rot_step=0)
    with pytest.raises(ValueError):
        params_for_kbps(-1)
    assert params_for_kbps(0.1) == QUALITY_PRESETS["low"]
    assert params_for_kbps(100) == QUALITY_PRESETS["high"]
    assert params_for_kbps(4.0) == QUALITY_PRESETS["medium"]
    lo, hi = params_for_kbps(3.2), params_for_kbps(5.0)
    assert lo.k <= hi.k and lo.coeff_step >= hi.coeff_step


def test_coarser_presets_spend_fewer_bits():
    ref = _reference()
    frames = _motion(ref, n=150)
    sizes = {q: sum(map(len, _encode(ref, frames, QUALITY_PRESETS[q])[2])) for q in ("low", "medium", "high")}
    assert sizes["low"] < sizes["medium"] < sizes["high"]


def test_reference_blob_round_trip_and_corruption():
    ref = _reference()
    again = Reference.parse(ref.blob)
    assert np.array_equal(again.image, ref.image) and np.array_equal(again.landmarks, ref.landmarks)
    for cut in (0, 5, 20, len(ref.blob) - 1):
        with pytest.raises(InvalidPacket):
            Reference.parse(ref.blob[:cut])
    bad = bytearray(ref.blob)
    bad[0] ^= 0xFF
    with pytest.raises(InvalidPacket):
        Reference.parse(bytes(bad))
