"""Static-model range coder for quantised per-frame values.

Every value is coded with a fixed (static) model, so each packet decodes on its
own even when earlier packets were lost.  The model for a value is a
discretised zero-mean Laplace distribution whose scale is picked from a table of
64 log-spaced scales by a one-byte *scale index* (``SCALES[i]``).

Alphabet: integers in ``[-ALPHABET_MAX, ALPHABET_MAX]`` plus an ESCAPE symbol.
An escaped value's magnitude is sent after the ESCAPE symbol with a
length-limited Rice code in bypass (probability 1/2) bits.  Values up to
``±MAX_ABS_VALUE`` (2**20) round trip.

The coder works on a 32-bit range with 8-bit renormalisation and carry
propagation on the encoder side; the encoder flushes only the bytes needed and
the decoder reads implicit zero bytes past the end of its input.  Decoding is
strict: only the exact byte string this encoder produces for some values is
accepted, anything else raises :class:`~facelink.errors.InvalidPacket`.  The
byte-exact algorithm is specified in ``docs/bitstream.md``.
"""

from __future__ import annotations

import math
import operator
from bisect import bisect_right
from collections.abc import Sequence
from decimal import Decimal, localcontext
from functools import lru_cache
from typing import NamedTuple, Union

import numpy as np

from facelink.errors import InvalidPacket

__all__ = [
    "ALPHABET_MAX",
    "MAX_ABS_VALUE",
    "NUM_SCALES",
    "PROB_BITS",
    "RICE_K",
    "RICE_LIMIT",
    "SCALES",
    "ScaleIndices",
    "decode_ints",
    "encode_ints",
    "estimate_bits",
    "fit_scale_index",
    "frequency_table",
]

#: frequencies of every model sum to 2**PROB_BITS
PROB_BITS = 15
#: the directly coded alphabet is [-ALPHABET_MAX, ALPHABET_MAX]
ALPHABET_MAX = 15
#: largest magnitude that can be coded (inclusive)
MAX_ABS_VALUE = 1 << 20
#: number of entries in :data:`SCALES`
NUM_SCALES = 64
#: escaped magnitudes whose Rice quotient reaches this are sent as raw bits
RICE_LIMIT = 20
#: Rice parameter k of the escape code, per scale index (see docs/bitstream.md)
RICE_K: tuple[int, ...] = (
    (0,) * 29 + (1,) * 5 + (2,) * 5 + (3,) * 6 + (4,) * 5 + (5,) * 5 + (6,) * 5 + (7,) * 4
)

#: a scale index for every value, one shared index, or one index per value as bytes
ScaleIndices = Union[int, bytes, bytearray, Sequence[int]]

_TOTAL = 1 << PROB_BITS
_NSYM = 2 * ALPHABET_MAX + 2  # symbols 0..30 are zigzag(value), 31 is ESCAPE
_ESC = _NSYM - 1
_RAW_BITS = 20  # magnitude bits after RICE_LIMIT one-bits
_RANGE_INIT = 0xFFFFFFFF
_BOT = 1 << 24  # renormalise while range < 2**24
_MASK32 = 0xFFFFFFFF
_DECIMAL_DIGITS = 50  # working precision of the table generator
_SCALE_MIN = "0.05"
_SCALE_RATIO = 4000  # SCALES[63] / SCALES[0]


@lru_cache(maxsize=1)
def _scale_decimals() -> tuple[Decimal, ...]:
    """``b_i`` = exp(ln 0.05 + i * ln 4000 / 63), in correctly rounded decimal maths."""
    with localcontext() as ctx:
        ctx.prec = _DECIMAL_DIGITS
        first = Decimal(_SCALE_MIN).ln()
        span = Decimal(_SCALE_RATIO).ln()
        return tuple((first + span * i / (NUM_SCALES - 1)).exp() for i in range(NUM_SCALES))


#: Laplace scale b of each model, in quantiser steps (0.05 ... 200, ratio ~1.141)
SCALES: tuple[float, ...] = tuple(float(b) for b in _scale_decimals())


def _laplace_frequencies(b: Decimal) -> tuple[int, ...]:
    """Integer frequencies (sum 2**15, each >= 1) of the discretised Laplace(0, b).

    Symbol ``zigzag(v)`` has probability mass of [v - 1/2, v + 1/2]; ESCAPE has the
    mass of both tails beyond ±(ALPHABET_MAX + 1/2).  Each symbol gets
    ``1 + floor(p * (2**15 - 32))``; the remaining counts go one each to the
    symbols with the largest fractional parts, ties to the lower symbol.
    """
    with localcontext() as ctx:
        ctx.prec = _DECIMAL_DIGITS
        half = Decimal("0.5")
        tail = [(-(n + half) / b).exp() for n in range(ALPHABET_MAX + 1)]
        prob = [Decimal(0)] * _NSYM
        prob[0] = 1 - tail[0]
        for n in range(1, ALPHABET_MAX + 1):
            prob[2 * n - 1] = prob[2 * n] = (tail[n - 1] - tail[n]) / 2
        prob[_ESC] = tail[ALPHABET_MAX]
        budget = _TOTAL - _NSYM
        scaled = [p * budget for p in prob]
    floors = [int(x) for x in scaled]
    freq = [1 + f for f in floors]
    leftover = _TOTAL - sum(freq)
    order = sorted(range(_NSYM), key=lambda s: (floors[s] - scaled[s], s))
    for s in order[:leftover]:
        freq[s] += 1
    return tuple(freq)


class _Model(NamedTuple):
    cum: tuple[int, ...]  # 33 entries, cum[0] = 0, cum[32] = 2**15
    freq: tuple[int, ...]  # 32 entries
    k: int  # Rice parameter of the escape code
    cost: tuple[float, ...]  # -log2(freq / 2**15), bits


@lru_cache(maxsize=1)
def _models() -> tuple[_Model, ...]:
    """All 64 models, built once (about 25 ms) on first use."""
    models = []
    for i in range(NUM_SCALES):
        freq = _laplace_frequencies(_scale_decimals()[i])
        cum = [0]
        for f in freq:
            cum.append(cum[-1] + f)
        cost = tuple(PROB_BITS - math.log2(f) for f in freq)
        models.append(_Model(tuple(cum), freq, RICE_K[i], cost))
    return tuple(models)


def frequency_table(index: int) -> tuple[int, ...]:
    """The 32 integer frequencies of model ``index``: symbols zigzag(-15..15), then ESCAPE."""
    return _models()[_check_index(index)].freq


# ---------------------------------------------------------------- validation


def _check_index(index: object) -> int:
    if isinstance(index, bool):
        raise TypeError("scale index must be an int, got bool")
    i = operator.index(index)  # type: ignore[arg-type]
    if not 0 <= i < NUM_SCALES:
        raise ValueError(f"scale index must be in 0..{NUM_SCALES - 1}, got {i}")
    return i


def _scale_list(scale_idx: ScaleIndices, count: int) -> Sequence[int]:
    """Per-value scale indices, validated (bytes are returned as is)."""
    if isinstance(scale_idx, (bytes, bytearray)):
        if len(scale_idx) != count:
            raise ValueError(f"got {len(scale_idx)} scale indices for {count} values")
        if count and max(scale_idx) >= NUM_SCALES:
            raise ValueError(f"scale index must be in 0..{NUM_SCALES - 1}, got {max(scale_idx)}")
        return bytes(scale_idx)
    if isinstance(scale_idx, (int, np.integer)):
        return (_check_index(scale_idx),) * count
    if isinstance(scale_idx, (str, memoryview)):
        raise TypeError(f"scale_idx must be bytes, an int or a sequence of ints, got {type(scale_idx).__name__}")
    indices = [_check_index(i) for i in scale_idx]
    if len(indices) != count:
        raise ValueError(f"got {len(indices)} scale indices for {count} values")
    return indices


def _int_list(values: Sequence[int] | np.ndarray) -> list[int]:
    if isinstance(values, np.ndarray):
        if values.ndim != 1:
            raise ValueError(f"values must be one-dimensional, got shape {values.shape}")
        if values.dtype.kind not in "iu":
            raise TypeError(f"values must have an integer dtype, got {values.dtype}")
        return values.tolist()  # type: ignore[no-any-return]
    if isinstance(values, (str, bytes, bytearray, memoryview)):
        raise TypeError(f"values must be a sequence of ints, got {type(values).__name__}")
    return [operator.index(v) for v in values]


def _value_error(value: int) -> ValueError:
    return ValueError(f"value {value} out of range: |value| must be <= {MAX_ABS_VALUE}")


# ---------------------------------------------------------------- encoder


def _emit(out: bytearray, low: int) -> int:
    """Move the top byte of the 32-bit window into ``out``, propagating a carry."""
    if low > _MASK32:
        i = len(out) - 1
        while out[i] == 0xFF:
            out[i] = 0
            i -= 1
        out[i] += 1
    out.append((low >> 24) & 0xFF)
    return (low << 8) & _MASK32


def _put_bits(out: bytearray, low: int, rng: int, value: int, nbits: int) -> tuple[int, int]:
    """Bypass-code ``value`` in ``nbits`` bits (16-bit chunks, most significant first)."""
    while nbits > 0:
        width = nbits - 16 * ((nbits - 1) // 16)
        nbits -= width
        chunk = (value >> nbits) & ((1 << width) - 1)
        r = rng >> width
        low += r * chunk
        rng = rng - r * chunk if chunk == (1 << width) - 1 else r
        while rng < _BOT:
            low = _emit(out, low)
            rng <<= 8
    return low, rng


def _put_escape(out: bytearray, low: int, rng: int, value: int, k: int) -> tuple[int, int]:
    """Code an escaped value: Rice(k) quotient in unary, then remainder and sign."""
    magnitude = value if value >= 0 else -value
    if magnitude > MAX_ABS_VALUE:
        raise _value_error(value)
    sign = 1 if value < 0 else 0
    x = magnitude - (ALPHABET_MAX + 1)
    q = x >> k
    if q < RICE_LIMIT:
        for _ in range(q):
            low, rng = _put_bits(out, low, rng, 1, 1)
        low, rng = _put_bits(out, low, rng, 0, 1)
        return _put_bits(out, low, rng, ((x & ((1 << k) - 1)) << 1) | sign, k + 1)
    for _ in range(RICE_LIMIT):
        low, rng = _put_bits(out, low, rng, 1, 1)
    raw = x - (RICE_LIMIT << k)
    return _put_bits(out, low, rng, (raw << 1) | sign, _RAW_BITS + 1)


def encode_ints(values: Sequence[int] | np.ndarray, scale_idx: ScaleIndices) -> bytes:
    """Range-code ``values``, value ``j`` with the model ``SCALES[scale_idx[j]]``.

    ``scale_idx`` is one index per value (``bytes`` or a sequence of ints) or a
    single int used for every value.  Raises ``ValueError`` for a value with
    ``|v| > MAX_ABS_VALUE``, a bad index or mismatched lengths.  The result is
    the shortest canonical encoding; zero values give ``b""``.
    """
    vals = _int_list(values)
    indices = _scale_list(scale_idx, len(vals))
    models = _models()
    out = bytearray()
    low = 0
    rng = _RANGE_INIT
    for v, i in zip(vals, indices):
        model = models[i]
        s = v + v if v >= 0 else -v - v - 1
        r = rng >> PROB_BITS
        if s < _ESC:
            low += r * model.cum[s]
            rng = r * model.freq[s]
            while rng < _BOT:
                low = _emit(out, low)
                rng <<= 8
        else:
            c = model.cum[_ESC]
            low += r * c
            rng -= r * c
            while rng < _BOT:
                low = _emit(out, low)
                rng <<= 8
            low, rng = _put_escape(out, low, rng, v, model.k)
    # Flush: the final code point is the one in [low, low + rng) with the most
    # trailing zero bytes (a multiple of 2**32 if there is one, else the
    # smallest multiple of 2**24); trailing zero bytes are then dropped.
    point = (low + _MASK32) >> 32 << 32
    if point >= low + rng:
        point = (low + 0xFFFFFF) >> 24 << 24
    _emit(out, point)
    return bytes(out).rstrip(b"\0")


# ---------------------------------------------------------------- decoder


class _Decoder:
    """Decoder state: ``code`` is the offset of the code point inside the current range."""

    __slots__ = ("code", "data", "end", "pos", "rng")

    def __init__(self, data: bytes) -> None:
        self.data = data
        self.end = len(data)
        self.code = int.from_bytes(data[:4].ljust(4, b"\0"), "big")
        self.pos = 4
        self.rng = _RANGE_INIT
        if self.code >= self.rng:
            raise InvalidPacket("range-coded payload is corrupt: first code word is FFFFFFFF")

    def normalise(self) -> None:
        rng = self.rng
        if rng < _BOT:
            code = self.code
            pos = self.pos
            data = self.data
            while rng < _BOT:
                code = (code << 8) | (data[pos] if pos < self.end else 0)
                pos += 1
                rng <<= 8
            self.code = code
            self.pos = pos
            self.rng = rng

    def bits(self, nbits: int) -> int:
        """Read an ``nbits``-bit bypass value (16-bit chunks, most significant first)."""
        value = 0
        while nbits > 0:
            width = nbits - 16 * ((nbits - 1) // 16)
            nbits -= width
            top = (1 << width) - 1
            r = self.rng >> width
            chunk = self.code // r
            if chunk >= top:
                chunk = top
                self.rng -= r * top
            else:
                self.rng = r
            self.code -= r * chunk
            self.normalise()
            value = (value << width) | chunk
        return value

    def escape(self, k: int) -> int:
        """Read the escape code that follows an ESCAPE symbol."""
        q = 0
        while q < RICE_LIMIT and self.bits(1):
            q += 1
        if q < RICE_LIMIT:
            word = self.bits(k + 1)
            x = (q << k) | (word >> 1)
        else:
            word = self.bits(_RAW_BITS + 1)
            x = (word >> 1) + (RICE_LIMIT << k)
        magnitude = x + ALPHABET_MAX + 1
        if magnitude > MAX_ABS_VALUE:
            raise InvalidPacket(
                f"range-coded payload is corrupt: escaped magnitude {magnitude} exceeds {MAX_ABS_VALUE}"
            )
        return -magnitude if word & 1 else magnitude

    def check_canonical(self) -> None:
        """Reject anything but the exact bytes the encoder's flush produces."""
        shifted = self.pos - 4
        n = self.end
        if n > shifted + 1:
            extra = n - shifted - 1
            noun = "byte" if extra == 1 else "bytes"
            raise InvalidPacket(f"range-coded payload is corrupt: {extra} trailing {noun} after the code")
        if n and self.data[n - 1] == 0:
            raise InvalidPacket("range-coded payload is corrupt: ends with a zero byte")
        if n == shifted + 1:
            top = self.data[n - 1]
            if self.code >= _BOT or self.rng - self.code > (256 - top) << 24:
                raise InvalidPacket("range-coded payload is corrupt: final byte is not canonical")


def decode_ints(data: bytes, scale_idx: ScaleIndices, count: int) -> np.ndarray:
    """Decode ``count`` values coded by :func:`encode_ints` with the same ``scale_idx``.

    Returns an ``int32`` array.  Bytes past the end of ``data`` read as zero.
    Raises :class:`InvalidPacket` for any input that is not exactly the
    canonical encoding of ``count`` values (it never loops beyond
    ``count`` symbols or raises anything else for bad bytes).
    """
    if not isinstance(data, (bytes, bytearray, memoryview)):
        raise TypeError(f"data must be bytes, got {type(data).__name__}")
    count = operator.index(count)
    if count < 0:
        raise ValueError(f"count must be >= 0, got {count}")
    indices = _scale_list(scale_idx, count)
    models = _models()
    dec = _Decoder(bytes(data))
    result = [0] * count
    for j, i in enumerate(indices):
        model = models[i]
        cum = model.cum
        r = dec.rng >> PROB_BITS
        target = dec.code // r
        if target >= _TOTAL:
            target = _TOTAL - 1
        s = bisect_right(cum, target) - 1
        c = cum[s]
        dec.code -= r * c
        if s < _ESC:
            dec.rng = r * model.freq[s]
            dec.normalise()
            result[j] = (s >> 1) ^ -(s & 1)
        else:
            dec.rng -= r * c
            dec.normalise()
            result[j] = dec.escape(model.k)
    dec.check_canonical()
    return np.array(result, dtype=np.int32)


# ---------------------------------------------------------------- rate estimation


def _escape_bits(magnitude: int, k: int) -> int:
    """Bypass bits after an ESCAPE symbol for ``|v| = magnitude`` (sign included)."""
    q = (magnitude - ALPHABET_MAX - 1) >> k
    if q < RICE_LIMIT:
        return q + 1 + k + 1
    return RICE_LIMIT + _RAW_BITS + 1


def estimate_bits(values: Sequence[int] | np.ndarray, scale_idx: ScaleIndices) -> float:
    """Ideal code length in bits of ``values`` under the models (no flush overhead).

    The real payload is within about one byte of this for short vectors.
    """
    vals = _int_list(values)
    indices = _scale_list(scale_idx, len(vals))
    models = _models()
    bits = 0.0
    for v, i in zip(vals, indices):
        model = models[i]
        s = v + v if v >= 0 else -v - v - 1
        if s < _ESC:
            bits += model.cost[s]
        else:
            magnitude = abs(v)
            if magnitude > MAX_ABS_VALUE:
                raise _value_error(v)
            bits += model.cost[_ESC] + _escape_bits(magnitude, model.k)
    return bits


@lru_cache(maxsize=1)
def _cost_matrix() -> np.ndarray:
    return np.array([m.cost for m in _models()], dtype=np.float64)


def fit_scale_index(samples: np.ndarray | Sequence[int]) -> int:
    """Scale index whose model gives the shortest ideal code for zero-mean ``samples``.

    ``samples`` are quantised integers (an integer array, or floats that are
    whole numbers).  Ties go to the smaller index.
    """
    arr = np.asarray(samples)
    if arr.dtype.kind == "f":
        if not np.all(np.isfinite(arr)) or not np.array_equal(arr, np.round(arr)):
            raise ValueError("samples must be whole numbers (quantised values)")
        arr = arr.astype(np.int64)
    elif arr.dtype.kind not in "iu":
        raise TypeError(f"samples must be integers, got dtype {arr.dtype}")
    flat = arr.astype(np.int64).ravel()
    if flat.size == 0:
        raise ValueError("samples is empty")
    magnitude = np.abs(flat)
    if int(magnitude.max()) > MAX_ABS_VALUE:
        raise ValueError(f"samples must satisfy |v| <= {MAX_ABS_VALUE}")
    symbols = np.minimum(np.where(flat >= 0, 2 * flat, -2 * flat - 1), _ESC)
    counts = np.bincount(symbols, minlength=_NSYM).astype(np.float64)
    total = _cost_matrix() @ counts
    escaped = magnitude[symbols == _ESC] - (ALPHABET_MAX + 1)
    if escaped.size:
        ks = np.array(RICE_K, dtype=np.int64)
        q = escaped[None, :] >> ks[:, None]
        extra = np.where(q < RICE_LIMIT, q + ks[:, None] + 2, RICE_LIMIT + _RAW_BITS + 1)
        total = total + extra.sum(axis=1)
    return int(np.argmin(total))
