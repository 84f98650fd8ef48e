"""Error control for the watermark payload: CRC-24 and a rate-1/3 convolutional code.

Pure functions on bit arrays (``uint8`` 0/1, most significant bit first).  The
layout is specified in ``docs/provenance.md``:

* the identity word: session tag (32 bits) and receiver fingerprint (24 bits)
  with CRC-24/OpenPGP (polynomial ``0x864CFB``, initial value ``0xB704CE``, no
  reflection, no final XOR); the same in every frame of a session;
* the counter word: ``(frame_index // 64) % 256`` with CRC-8 (polynomial
  ``0x07``, initial value ``0xFF``); changes every 64 frames;
* each word and 6 zero tail bits are encoded by the K = 7 convolutional code
  with generators 133, 171, 165 (octal): 258 and 66 coded bits;
* decoding is soft-decision Viterbi; a decoded word is accepted only when its
  CRC matches.
"""

from __future__ import annotations

import numpy as np

__all__ = [
    "COUNTER_CODE",
    "ID_CODE",
    "Code",
    "bits_to_bytes",
    "bytes_to_bits",
    "conv_encode",
    "crc",
    "viterbi_decode",
]

#: constraint length and generator polynomials (octal 133, 171, 165), MSB = current input bit
CONSTRAINT = 7
GENERATORS = (0o133, 0o171, 0o165)
_TAIL = CONSTRAINT - 1
_STATES = 1 << _TAIL


def bytes_to_bits(data: bytes) -> np.ndarray:
    """Bits of ``data``, most significant bit of the first byte first."""
    return np.unpackbits(np.frombuffer(bytes(data), dtype=np.uint8))


def bits_to_bytes(bits: np.ndarray) -> bytes:
    """Inverse of :func:`bytes_to_bits` (the bit count must be a multiple of 8)."""
    bits = np.asarray(bits, dtype=np.uint8)
    if bits.ndim != 1 or bits.size % 8:
        raise ValueError(f"need a 1-D array of a multiple of 8 bits, got shape {bits.shape}")
    return np.packbits(bits).tobytes()


def crc(bits: np.ndarray, width: int, poly: int, init: int) -> int:
    """MSB-first CRC (no reflection, no final XOR) of a bit sequence."""
    top = 1 << (width - 1)
    mask = (1 << width) - 1
    reg = init
    for b in np.asarray(bits, dtype=np.uint8).tolist():
        reg ^= (b & 1) * top
        reg = ((reg << 1) ^ poly) & mask if reg & top else (reg << 1) & mask
    return reg
def _parity(x: np.ndarray) -> np.ndarray:
    x = x.copy()
    out = np.zeros_like(x)
    while np.any(x):
        out ^= x & 1
        x >>= 1
    return out


# trellis tables: register r = (input << 6) | state, next state = r >> 1
_REG = np.arange(1 << CONSTRAINT, dtype=np.int64)
_OUT = np.stack([_parity(_REG & g) for g in GENERATORS], axis=1).astype(np.int8)  # (128, 3) 0/1
_NEXT = _REG >> 1
# for each next state n: its two predecessor registers (input bit = n >> 5, state = ((n & 31) << 1) | t)
_PRED_REG = np.array(
    [[((n >> (_TAIL - 1)) << _TAIL) | (((n & ((_STATES >> 1) - 1)) << 1) | t) for t in (0, 1)] for n in range(_STATES)],
    dtype=np.int64,
)
_PRED_STATE = _PRED_REG & (_STATES - 1)
_PRED_SIGN = (1 - 2 * _OUT[_PRED_REG]).astype(np.float32)  # (64, 2, 3): +1 for a 0 bit, -1 for a 1 bit


def conv_encode(bits: np.ndarray) -> np.ndarray:
    """Terminated convolutional encoding: ``3 * (len(bits) + 6)`` coded bits."""
    state = 0
    out = []
    for b in list(np.asarray(bits, dtype=np.uint8).tolist()) + [0] * _TAIL:
        reg = ((b & 1) << _TAIL) | state
        out.append(_OUT[reg])
        state = reg >> 1
    return np.concatenate(out).astype(np.uint8)


def viterbi_decode(soft: np.ndarray) -> np.ndarray:
    """Maximum-likelihood input bits for soft coded values (positive = bit 0).

    ``soft`` holds ``3 * (n + 6)`` values, e.g. correlations; their scale does not
    matter.  Returns the ``n`` information bits (the tail is dropped).
    """
    soft = np.asarray(soft, dtype=np.float32)
    n_out = len(GENERATORS)
    if soft.ndim != 1 or soft.size % n_out or soft.size // n_out <= _TAIL:
        raise ValueError(f"soft values must be a 1-D multiple of {n_out} longer than the tail, got shape {soft.shape}")
    steps = soft.size // n_out
    sym = soft.reshape(steps, n_out)
    metric = np.full(_STATES, -np.inf, dtype=np.float32)
    metric[0] = 0.0
    choice = np.empty((steps, _STATES), dtype=np.uint8)
    for t in range(steps):
        branch = metric[_PRED_STATE] + _PRED_SIGN @ sym[t]  # (64, 2)
        c = (branch[:, 1] > branch[:, 0]).astype(np.uint8)
        choice[t] = c
        metric = np.where(c == 1, branch[:, 1], branch[:, 0])
        if t >= steps - _TAIL:  # termination: only zero inputs remain possible
            metric[(np.arange(_STATES) >> (_TAIL - 1)) == 1] = -np.inf
    state = 0
    bits = np.empty(steps, dtype=np.uint8)
    for t in range(steps - 1, -1, -1):
        bits[t] = state >> (_TAIL - 1)
        state = int(_PRED_STATE[state, choice[t, state]])
    return bits[: steps - _TAIL]


class Code:
    """A message of ``message_bytes`` bytes + a CRC, convolutionally coded (rate 1/3, terminated)."""

    def __init__(self, message_bytes: int, crc_width: int, crc_poly: int, crc_init: int) -> None:
        self.message_bytes = message_bytes
        self.message_bits = 8 * message_bytes
        self.crc_width = crc_width
        self.crc_poly = crc_poly
        self.crc_init = crc_init
        #: coded bits per codeword
        self.coded_bits = len(GENERATORS) * (self.message_bits + crc_width + _TAIL)

    def _crc_bits(self, bits: np.ndarray) -> np.ndarray:
        value = crc(bits, self.crc_width, self.crc_poly, self.crc_init)
        return ((value >> np.arange(self.crc_width - 1, -1, -1)) & 1).astype(np.uint8)

    def encode(self, message: bytes) -> np.ndarray:
        """Coded bits (0/1) of a message."""
        if len(message) != self.message_bytes:
            raise ValueError(f"message must be {self.message_bytes} bytes, got {len(message)}")
        bits = bytes_to_bits(message)
        return conv_encode(np.concatenate([bits, self._crc_bits(bits)]))

    def decode(self, soft: np.ndarray) -> tuple[bytes, bool]:
        """Viterbi-decode soft values (positive = bit 0): (message, CRC ok)."""
        soft = np.asarray(soft, dtype=np.float32)
        if soft.shape != (self.coded_bits,):
            raise ValueError(f"need {self.coded_bits} soft values, got shape {soft.shape}")
        bits = viterbi_decode(soft)
        msg, check = bits[: self.message_bits], bits[self.message_bits :]
        return bits_to_bytes(msg), bool(np.array_equal(check, self._crc_bits(msg)))


#: session tag (4 bytes) + receiver fingerprint (3 bytes), CRC-24/OpenPGP: 3 x (56 + 24 + 6) = 258 coded bits
ID_CODE = Code(7, 24, 0x864CFB, 0xB704CE)
#: frame counter (1 byte), CRC-8 (polynomial 0x07, initial value 0xFF): 3 x (8 + 8 + 6) = 66 coded bits
COUNTER_CODE = Code(1, 8, 0x07, 0xFF)
