"""Jitter and reorder buffer for AUDIO packets: a pure core (no clock, no thread, no socket).

Packets go in as they arrive, keyed by their 16-bit audio ``seq`` (unwrapped here); slots
come out strictly in sequence order, each either a packet or a *loss* (``payload`` None,
to be concealed by the decoder).  A missing packet is declared lost once a packet
``depth`` or more sequence numbers after it has arrived, so reordering by up to ``depth``
packets costs nothing and a loss is decided after ``depth`` packets (``depth`` x 20 ms at
the default frame size).  Duplicates and packets arriving after their slot was released
are dropped and counted.  A jump of more than ``max_gap`` packets (a long outage, or a
sender that restarted its counter) re-synchronises on the new sequence instead of
emitting thousands of concealed slots; the timestamps then tell the player where the
audio resumes.
"""

from __future__ import annotations

from dataclasses import dataclass

__all__ = ["JitterBuffer", "Slot"]

_SEQ = 1 << 16
_TS = 1 << 32


def _unwrap(value: int, ref: int, modulus: int) -> int:
    """The integer congruent to ``value`` (mod ``modulus``) nearest to ``ref``."""
    d = (value - ref) % modulus
    if d >= modulus // 2:
        d -= modulus
    return ref + d


@dataclass(frozen=True)
class Slot:
    """One audio packet slot in play order: unwrapped ``seq`` and ``timestamp`` (48 kHz samples
    on the stream clock); ``payload`` None means the packet was lost (conceal it)."""

    seq: int
    timestamp: int
    payload: bytes | None

    @property
    def lost(self) -> bool:
        return self.payload is None


class JitterBuffer:
    """Reorders AUDIO packets and decides losses; see the module docstring."""

    def __init__(self, frame_samples: int, *, depth: int = 3, max_gap: int = 50, capacity: int = 256) -> None:
        for name, v, lo in (("frame_samples", frame_samples, 1), ("depth", depth, 0), ("max_gap", max_gap, 1), ("capacity", capacity, 1)):
            if isinstance(v, bool) or not isinstance(v, int) or v < lo:
                raise ValueError(f"{name} must be an int >= {lo}, got {v!r}")
        if max_gap <= depth or capacity <= max_gap:
            raise ValueError("need depth < max_gap < capacity")
        self.frame_samples = frame_samples
        self.depth = depth
        self.max_gap = max_gap
        self.capacity = capacity
        self._buf: dict[int, tuple[int, bytes]] = {}
        self._next: int | None = None  # unwrapped seq of the next slot to release
        self._next_ts: int | None = None
        self._last_seq: int | None = None  # unwrapped seq of the latest arrival (unwrap reference)
        self._last_ts: int | None = None
        self._started = False
        #: counters
        self.received = 0
        self.released = 0
        self.lost = 0
        self.duplicates = 0
        self.late = 0
        self.resyncs = 0

    @property
    def buffered(self) -> int:
        return len(self._buf)

    def push(self, seq: int, timestamp: int, payload: bytes) -> list[Slot]:
        """Take one packet (wire ``seq`` u16, ``timestamp`` u32); returns the slots now ready."""
        if not isinstance(payload, (bytes, bytearray)) or not payload:
            raise ValueError("payload must be non-empty bytes")
        ref = self._last_seq if self._last_seq is not None else seq
        s = _unwrap(seq & 0xFFFF, ref, _SEQ)
        t = _unwrap(timestamp & 0xFFFFFFFF, self._last_ts if self._last_ts is not None else timestamp, _TS)
        self.received += 1
        out: list[Slot] = []
        if self._next is not None and s < self._next:
            if self._next - s > self.max_gap:  # far behind: a restarted sender
                out += self._resync()
            else:
                self.late += 1
                return out
        elif s in self._buf:
            self.duplicates += 1
            return out
        if self._started and self._next is not None and s - self._next > self.max_gap:
            out += self._resync()
        self._last_seq, self._last_ts = s, t
        self._buf[s] = (t, bytes(payload))
        if len(self._buf) > self.capacity:  # cannot happen with max_gap < capacity; bounded anyway
            del self._buf[min(self._buf)]
        if not self._started:
            lo = min(self._buf)
            if max(self._buf) - lo >= self.depth:
                self._started = True
                self._next, self._next_ts = lo, self._buf[lo][0]
        return out + self._release()

    def _resync(self) -> list[Slot]:
        out = self.flush()
        self.resyncs += 1
        self._started = False
        self._next = self._next_ts = None
        return out

    def _release(self, drain: bool = False) -> list[Slot]:
        out: list[Slot] = []
        while self._started and self._buf and self._next is not None and self._next_ts is not None:
            first = min(self._buf)
            if first - self._next > self.max_gap:  # never conceal more than max_gap slots in a row
                self._next, self._next_ts = first, self._buf[first][0]
                self.resyncs += 1
            item = self._buf.pop(self._next, None)
            if item is not None:
                ts, payload = item
                out.append(Slot(self._next, ts, payload))
                self.released += 1
            elif drain or max(self._buf) - self._next >= self.depth:
                ts = self._next_ts
                out.append(Slot(self._next, ts, None))
                self.lost += 1
            else:
                break
            self._next += 1
            self._next_ts = ts + self.frame_samples
        return out

    def flush(self) -> list[Slot]:
        """Release everything buffered, in order, with the gaps between as losses (end of stream)."""
        if not self._started and self._buf:
            self._started = True
            self._next = min(self._buf)
            self._next_ts = self._buf[self._next][0]
        return self._release(drain=True)
