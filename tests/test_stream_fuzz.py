"""Stream-level robustness: corrupted and truncated keypoint streams give InvalidPacket or frames, nothing else."""

import io

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from facelink.bitstream import iter_flk, write_flk
from facelink.codec import QUALITY_PRESETS, StreamDecoder, StreamEncoder
from facelink.errors import InvalidPacket
from _support import FUZZ_EXAMPLES as FUZZ
from test_codec import _motion, _reference


@pytest.fixture(scope="module")
def stream():
    ref = _reference(size=(64, 64))
    enc = StreamEncoder(ref, QUALITY_PRESETS["medium"].with_(key_interval=8), width=64, height=64, fps=30)
    pkts = enc.start()
    for i, lm in enumerate(_motion(ref, n=20)):
        pkts.append(enc.encode(i, i / 30, None if i in (11, 12) else lm)[0])
    pkts.append(enc.end())
    return pkts


def _decode_all(packets) -> int:
    dec = StreamDecoder()
    n = 0
    for p in packets:
        try:
            f = dec.feed(p)
        except InvalidPacket:
            continue
        if f is not None:
            n += 1
            if f.pose is not None:
                lm = dec.landmarks(f)
                assert np.all(np.isfinite(lm))
    return n


def test_every_byte_flip_of_every_frame_packet(stream):
    frames = [i for i, p in enumerate(stream) if p[3] in (3, 4, 5, 7)]
    for i in frames:
        p = stream[i]
        for pos in range(len(p)):
            bad = bytearray(p)
            bad[pos] ^= 0xFF
            _decode_all(stream[:i] + [bytes(bad)] + stream[i + 1 :])


def test_every_byte_flip_of_the_header(stream):
    h = stream[0]
    for pos in range(len(h)):
        bad = bytearray(h)
        bad[pos] ^= 0x55
        _decode_all([bytes(bad)] + stream[1:])


def test_flk_truncated_at_every_offset(stream):
    buf = io.BytesIO()
    write_flk(buf, stream)
    data = buf.getvalue()
    step = max(1, len(data) // 1500)
    for cut in range(0, len(data), step):
        got = []
        try:
            for p in iter_flk(io.BytesIO(data[:cut])):
                got.append(p)
        except InvalidPacket:
            pass
        _decode_all(got)


@pytest.mark.fuzz
@settings(max_examples=FUZZ, deadline=None, suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture])
@given(junk=st.lists(st.binary(min_size=0, max_size=64), min_size=1, max_size=6))
def test_random_packets_after_a_valid_start(stream, junk):
    # frame-typed junk with a valid prefix reaches the payload decoders
    prefixed = [stream[5][:4] + j for j in junk]
    _decode_all(stream[:3] + junk + prefixed + stream[3:6])


@pytest.mark.fuzz
@settings(max_examples=max(200, FUZZ // 5), deadline=None)
@given(data=st.binary(max_size=200), cut=st.integers(0, 100000), flip=st.integers(0, 100000))
def test_reference_blob_parser_never_crashes(data, cut, flip):
    from facelink.codec import Reference

    blob = bytearray(_BLOB)
    blob[flip % len(blob)] ^= 0xA5
    for candidate in (data, bytes(blob), _BLOB[: cut % len(_BLOB)], _BLOB[:14] + data):
        try:
            Reference.parse(candidate)
        except InvalidPacket:
            pass


_BLOB = _reference(size=(32, 48)).blob
