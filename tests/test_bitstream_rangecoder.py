"""Range coder: frozen tables, byte-exact vectors, round trips, strict decoding, efficiency."""

from __future__ import annotations

import hashlib
import math
import re
import struct
from pathlib import Path

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from facelink.bitstream.rangecoder import (
    MAX_ABS_VALUE,
    NUM_SCALES,
    RICE_K,
    RICE_LIMIT,
    SCALES,
    decode_ints,
    encode_ints,
    estimate_bits,
    fit_scale_index,
    frequency_table,
)
from facelink.errors import InvalidPacket

from _support import FUZZ, golden  # noqa: E402

DATA = Path(__file__).parent / "data" / "bitstream"
SPEC = Path(__file__).parents[1] / "docs" / "bitstream.md"

PROPERTY = settings(max_examples=300, deadline=None)

#: SHA-256 over the 64 frequency tables (32 little-endian u16 each) followed by RICE_K as bytes
TABLES_SHA256 = "366e8cc83d0af63a36e10dde35d4df31b1ebcf8689fc606f088d06c7db57bceb"


def laplace_pmf(values: np.ndarray, b: float) -> np.ndarray:
    """Probability of integer ``values`` under the Laplace(0, b) mass of [v - 1/2, v + 1/2]."""
    a = np.abs(values).astype(np.float64)
    inner = np.where(a == 0, 0.0, np.exp(-(a - 0.5) / b))
    return np.where(a == 0, 1 - np.exp(-0.5 / b), 0.5 * (inner - np.exp(-(a + 0.5) / b)))


def laplace_samples(b: float, n: int, seed: int) -> np.ndarray:
    return np.rint(np.random.default_rng(seed).laplace(0.0, b, n)).astype(np.int64)


# ---------------------------------------------------------------- tables


def test_scale_table_is_log_spaced_from_0_05_to_200() -> None:
    assert len(SCALES) == NUM_SCALES == 64
    assert SCALES[0] == pytest.approx(0.05, rel=1e-15)
    assert SCALES[-1] == pytest.approx(200.0, rel=1e-15)
    ratios = np.diff(np.log(SCALES))
    assert np.allclose(ratios, math.log(4000) / 63, rtol=1e-12)


def test_frequency_tables_are_valid_distributions() -> None:
    for i in range(NUM_SCALES):
        freq = frequency_table(i)
        assert len(freq) == 32
        assert sum(freq) == 1 << 15
        assert min(freq) >= 1
        # mirrored values (symbols 2n-1, 2n) differ by at most one leftover count
        for n in range(1, 16):
            assert abs(freq[2 * n - 1] - freq[2 * n]) <= 1
        # non-increasing in |v| for the value symbols
        mags = [freq[0]] + [max(freq[2 * n - 1], freq[2 * n]) for n in range(1, 16)]
        assert all(a >= b for a, b in zip(mags, mags[1:]))


def test_frequency_tables_match_frozen_checksum() -> None:
    blob = b"".join(struct.pack("<32H", *frequency_table(i)) for i in range(NUM_SCALES)) + bytes(RICE_K)
    assert hashlib.sha256(blob).hexdigest() == TABLES_SHA256


def test_tables_reproduce_with_plain_float64() -> None:
    """The documented float64 recipe (what a C port would do) gives identical tables."""
    total, nsym = 1 << 15, 32
    for i in range(NUM_SCALES):
        b = math.exp(math.log(0.05) + i * math.log(4000) / 63)
        tail = np.exp(-(np.arange(16) + 0.5) / b)
        p = np.empty(nsym)
        p[0] = 1 - tail[0]
        p[1:31:2] = (tail[:-1] - tail[1:]) / 2
        p[2:31:2] = p[1:31:2]
        p[31] = tail[15]
        scaled = p * (total - nsym)
        floors = np.floor(scaled)
        freq = 1 + floors.astype(np.int64)
        order = sorted(range(nsym), key=lambda s: (floors[s] - scaled[s], s))
        for s in order[: total - int(freq.sum())]:
            freq[s] += 1
        assert tuple(freq.tolist()) == frequency_table(i), i


def test_rice_parameters_minimise_expected_escape_length() -> None:
    for i, b in enumerate(SCALES):
        theta = math.exp(-1 / b)
        x = np.arange(int(80 * b) + 200)
        p = (1 - theta) * theta**x
        expected = []
        for k in range(16):
            q = x >> k
            expected.append(float((p * np.where(q < RICE_LIMIT, q + k + 2, RICE_LIMIT + 21)).sum()))
        assert int(np.argmin(expected)) == RICE_K[i], i


def test_frequency_table_rejects_bad_index() -> None:
    with pytest.raises(ValueError, match=r"scale index must be in 0\.\.63, got 64"):
        frequency_table(64)
    with pytest.raises(TypeError):
        frequency_table(True)


# ---------------------------------------------------------------- byte-exact vectors

VECTORS: list[tuple[list[int], bytes | int]] = [
    ([], b""),
    ([0] * 22, 20),
    ([1, 0, -1, 0, 0, 2, 0, 0, -1, 1, 0, 0, 0, -2, 0, 1, 0, 0, 0, -1, 0, 0], 20),
    ([12, -30, 4, 150, -75, 40, 3, -2, 0, 7, -9, 11, 25, -1, 0, 5, -18, 2, 33, -6, 1, -44], 48),
    ([MAX_ABS_VALUE, -MAX_ABS_VALUE, 16, -16, 15, -15], 0),
    (list(range(-32, 32)), bytes(range(64))),
    ([16 + (RICE_LIMIT << 7) - 1, -(16 + (RICE_LIMIT << 7)), 16 + (RICE_LIMIT << 7) + 1], 63),
]


def test_golden_vectors() -> None:
    blob = b""
    for values, idx in VECTORS:
        payload = encode_ints(values, idx)
        blob += struct.pack("<H", len(payload)) + payload
    stored = golden("rangecoder_vectors.bin", blob)
    assert stored == blob
    pos = 0
    for values, idx in VECTORS:
        (n,) = struct.unpack_from("<H", stored, pos)
        payload = stored[pos + 2 : pos + 2 + n]
        pos += 2 + n
        assert decode_ints(payload, idx, len(values)).tolist() == values
    assert pos == len(stored)


def test_zero_values_encode_to_nothing() -> None:
    assert encode_ints([], b"") == b""
    assert encode_ints([0] * 70, 30) == b""
    assert decode_ints(b"", 30, 70).tolist() == [0] * 70
    assert decode_ints(b"", b"", 0).dtype == np.int32


def test_every_scale_and_edge_value_round_trips() -> None:
    for i in range(NUM_SCALES):
        k = RICE_K[i]
        edges = [0, 1, -1, 15, -15, 16, -16, 17, MAX_ABS_VALUE, -MAX_ABS_VALUE, MAX_ABS_VALUE - 1]
        edges += [16 + (RICE_LIMIT << k) - 1, 16 + (RICE_LIMIT << k), -(16 + (RICE_LIMIT << k) + 1)]
        payload = encode_ints(edges, i)
        assert decode_ints(payload, i, len(edges)).tolist() == edges


def test_worst_case_payload_fits_frame_limit() -> None:
    from facelink.bitstream.packets import MAX_FRAME_PAYLOAD

    worst = max(len(encode_ints([v] * 70, i)) for i in range(NUM_SCALES) for v in (MAX_ABS_VALUE, -MAX_ABS_VALUE))
    assert worst <= MAX_FRAME_PAYLOAD


# ---------------------------------------------------------------- arguments


def test_out_of_range_values_raise_value_error() -> None:
    for bad in (MAX_ABS_VALUE + 1, -MAX_ABS_VALUE - 1, 1 << 40):
        with pytest.raises(ValueError, match=r"\|value\| must be <= 1048576"):
            encode_ints([0, bad], 5)
        with pytest.raises(ValueError, match=r"\|value\| must be <= 1048576"):
            estimate_bits([bad], 5)


@pytest.mark.parametrize(
    ("values", "idx", "error", "message"),
    [
        ([1, 2], b"\x01", ValueError, "got 1 scale indices for 2 values"),
        ([1, 2], [1, 2, 3], ValueError, "got 3 scale indices for 2 values"),
        ([1], b"\x40", ValueError, "scale index must be in 0..63, got 64"),
        ([1], [-1], ValueError, "scale index must be in 0..63, got -1"),
        ([1], 64, ValueError, "scale index must be in 0..63, got 64"),
        ([1], "a", TypeError, "scale_idx must be bytes, an int or a sequence of ints, got str"),
        (np.array([1.0]), 3, TypeError, "values must have an integer dtype, got float64"),
        (np.zeros((2, 2), dtype=np.int32), 3, ValueError, r"values must be one-dimensional, got shape \(2, 2\)"),
        (b"\x01", 3, TypeError, "values must be a sequence of ints, got bytes"),
        ([1.5], 3, TypeError, "float"),
    ],
)
def test_bad_arguments(values: object, idx: object, error: type[Exception], message: str) -> None:
    with pytest.raises(error, match=message):
        encode_ints(values, idx)  # type: ignore[arg-type]


def test_decode_argument_errors() -> None:
    with pytest.raises(TypeError, match="data must be bytes, got str"):
        decode_ints("ab", 3, 1)  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="count must be >= 0"):
        decode_ints(b"", 3, -1)
    with pytest.raises(ValueError, match="got 2 scale indices for 3 values"):
        decode_ints(b"", b"\x01\x02", 3)


def test_numpy_inputs_are_accepted() -> None:
    values = np.array([3, -2, 0, 40], dtype=np.int16)
    idx = np.array([10, 20, 30, 40], dtype=np.uint8)
    assert encode_ints(values, list(idx)) == encode_ints(values.tolist(), bytes(idx.tolist()))
    assert encode_ints(values, np.int64(25)) == encode_ints([3, -2, 0, 40], 25)


# ---------------------------------------------------------------- strict decoding


def test_non_canonical_payloads_are_rejected() -> None:
    values = [3, -1, 0, 2, 7, -4, 0, 1]
    payload = encode_ints(values, 22)
    assert payload and payload[-1] != 0
    for suffix in (b"\x00", b"\x01", b"\x01\x02\x03\x04\x05"):
        with pytest.raises(InvalidPacket, match="range-coded payload is corrupt"):
            decode_ints(payload + suffix, 22, len(values))


@pytest.mark.parametrize(
    ("data", "message"),
    [
        (b"\x00", "range-coded payload is corrupt: ends with a zero byte"),
        (b"\x01", "range-coded payload is corrupt: final byte is not canonical"),
        (b"\x01\x02", "range-coded payload is corrupt: 1 trailing byte after the code"),
        (b"\x01\x02\x03", "range-coded payload is corrupt: 2 trailing bytes after the code"),
        (b"\xff\xff\xff\xff", "range-coded payload is corrupt: first code word is FFFFFFFF"),
    ],
)
def test_corrupt_payload_messages(data: bytes, message: str) -> None:
    with pytest.raises(InvalidPacket) as excinfo:
        decode_ints(data, b"", 0)
    assert str(excinfo.value) == message


def test_escape_magnitude_beyond_limit_is_rejected() -> None:
    # scale 0, value code ESCAPE, then 20 one-bits and an all-ones raw field
    # decodes to a magnitude above 2**20: the decoder must refuse it.
    with pytest.raises(InvalidPacket, match="escaped magnitude 1048611 exceeds 1048576"):
        decode_ints(b"\xff\xff\xff\xfe\xff\xff\xff\xff\xff\xff\xff", 0, 1)


@PROPERTY
@given(
    st.lists(
        st.tuples(
            st.one_of(st.integers(-20, 20), st.integers(-MAX_ABS_VALUE, MAX_ABS_VALUE)),
            st.integers(0, NUM_SCALES - 1),
        ),
        max_size=80,
    )
)
def test_any_values_round_trip(pairs: list[tuple[int, int]]) -> None:
    values = [v for v, _ in pairs]
    idx = bytes(i for _, i in pairs)
    payload = encode_ints(values, idx)
    assert not payload.endswith(b"\x00")
    decoded = decode_ints(payload, idx, len(values))
    assert decoded.dtype == np.int32
    assert decoded.tolist() == values
    # the flush costs at most one byte over the ideal length (plus rounding of the ranges)
    assert 8 * len(payload) <= estimate_bits(values, idx) + 8 + 0.01 * len(values)


@FUZZ
@given(st.binary(max_size=24), st.lists(st.integers(0, NUM_SCALES - 1), max_size=24))
def test_decoding_arbitrary_bytes_is_strict(data: bytes, idx: list[int]) -> None:
    try:
        decoded = decode_ints(data, idx, len(idx))
    except InvalidPacket:
        return
    assert len(decoded) == len(idx)
    assert np.all(np.abs(decoded.astype(np.int64)) <= MAX_ABS_VALUE)
    # every accepted payload is the canonical encoding of what it decodes to
    assert encode_ints(decoded, idx) == data


# ---------------------------------------------------------------- efficiency


@pytest.mark.parametrize("b", [0.3, 0.7, 2.0, 8.0, 40.0, 150.0])
def test_coded_size_is_close_to_ideal_entropy(b: float) -> None:
    samples = laplace_samples(b, 3000, seed=int(b * 1000))
    ideal = float(-np.log2(laplace_pmf(samples, b)).sum())
    idx = fit_scale_index(samples)
    payload = encode_ints(samples, idx)
    assert 8 * len(payload) <= 1.03 * ideal + 16
    assert abs(8 * len(payload) - estimate_bits(samples, idx)) <= 16
    assert decode_ints(payload, idx, len(samples)).tolist() == samples.tolist()


@pytest.mark.parametrize("b", [0.1, 0.7, 3.0, 20.0, 120.0])
def test_fit_scale_index_recovers_the_scale(b: float) -> None:
    samples = laplace_samples(b, 20000, seed=7)
    nearest = int(np.argmin(np.abs(np.log(SCALES) - math.log(b))))
    assert abs(fit_scale_index(samples) - nearest) <= 1


def test_fit_scale_index_minimises_estimated_bits() -> None:
    rng = np.random.default_rng(3)
    for _ in range(20):
        samples = laplace_samples(float(np.exp(rng.uniform(-3, 5.5))), 200, seed=int(rng.integers(1 << 30)))
        samples[0] = int(rng.integers(-5000, 5000))
        bits = [estimate_bits(samples, i) for i in range(NUM_SCALES)]
        assert fit_scale_index(samples) == int(np.argmin(bits))
        assert fit_scale_index(samples.astype(np.float64)) == int(np.argmin(bits))


def test_fit_scale_index_argument_errors() -> None:
    with pytest.raises(ValueError, match="samples is empty"):
        fit_scale_index(np.array([], dtype=np.int32))
    with pytest.raises(ValueError, match="whole numbers"):
        fit_scale_index(np.array([0.5]))
    with pytest.raises(ValueError, match=r"\|v\| <= 1048576"):
        fit_scale_index(np.array([1 << 21]))
    with pytest.raises(TypeError, match="samples must be integers"):
        fit_scale_index(np.array(["a"]))



def test_specification_matches_the_tables() -> None:
    """docs/bitstream.md must list the frozen tables, their checksum and the test vectors."""
    spec = SPEC.read_text(encoding="utf-8")
    rows = re.findall(r"^ ?(\d+): ((?:\d+ ){31}\d+)$", spec, flags=re.MULTILINE)
    assert [int(i) for i, _ in rows] == list(range(NUM_SCALES))
    for i, freqs in rows:
        assert tuple(int(f) for f in freqs.split()) == frequency_table(int(i))
    assert TABLES_SHA256 in spec
    for values, idx in VECTORS:
        payload = encode_ints(values, idx)
        if 0 < len(payload) <= 32:
            assert f"`{payload.hex()}`" in spec
