"""Signed keypoint streams: each span of packets is hashed and closed by an Ed25519 seal packet.

Pure core: bytes in, bytes and verdicts out; no sockets, clocks or files (time is an
argument).  The format is specified in ``docs/security.md``; in short:

* The session header names the signer: extension tag :data:`SIGNER_TAG` holds the
  sender's 32-byte Ed25519 public key.
* Packets between seals form a *span*.  Span number ``counter`` (0, 1, 2, ... within the
  session) is hashed on its own, from a root that depends only on the session and the
  counter, over every packet of the span except seals::

      root = SHA-256("facelink/chain/v2\0" || session_id || u32le(counter))
      h    = SHA-256(h || u32le(len(packet)) || packet)          for each packet

* A :class:`~facelink.bitstream.Seal` carries ``covered_through_seq`` (the ``seq`` of the
  last frame sent so far), ``counter``, ``time_ms`` (sender milliseconds since the
  header's ``created_us``) and an Ed25519 signature over::

      "facelink/seal/v2\0" || SHA-256(session header bytes) || u16le(covered_through_seq)
          || u32le(counter) || u32le(time_ms) || h

  The chain hash ``h`` is not on the wire: the receiver recomputes it from the packets
  it got, so a seal verifies iff exactly the sender's packets of that span arrived, in
  order.  Every seal also authenticates the exact session header (key, session id,
  codec parameters, reference digest, start time).

Spans are independent: losing or damaging one never affects the next.  Splicing and
reordering are caught because the counter and ``covered_through_seq`` are signed; a
verifier rejects every seal whose counter is not above the highest it accepted
(replays), and with ``max_age`` refuses a stream whose seals were signed too long
before ``now`` (a replayed recording of a whole session).
"""

from __future__ import annotations

import enum
import hashlib
import math
import struct
from collections import deque
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from fractions import Fraction

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey

from ..bitstream import AUDIO_CLOCK_HZ, AUDIO_VERSION, BITSTREAM_VERSION, PacketType, Seal, SessionHeader, parse_packet
from ..codec._extensions import SIGNER_TAG  # the session-header tag table lives with the codec
from ..errors import InvalidPacket, VerificationError
from ._keys import Identity, PublicIdentity, fingerprint
from ._trust import TrustStore

__all__ = [
    "DEFAULT_SEAL_INTERVAL",
    "SIGNER_TAG",
    "PacketVerdict",
    "SealStatus",
    "SealWriter",
    "SpanStatus",
    "SpanVerdict",
    "StreamVerifier",
    "VerifySummary",
    "chain_root",
    "chain_step",
    "header_signer",
    "iter_verified",
    "seal_message",
    "seal_packets",
    "signer_extension",
    "span_hash",
]

#: default longest time between seals, seconds
DEFAULT_SEAL_INTERVAL = 0.5
#: a span longer than this many packets (or bytes) cannot come from a conforming sender
MAX_SPAN_PACKETS = 4096
MAX_SPAN_BYTES = 8 << 20
#: boundaries tried to find a seal's span after the seal before it was lost
MAX_RESYNC_TRIES = 64
#: largest seal counter and time_ms (both are signed as u32): 2^32 seals, 49.7 days
MAX_COUNTER = 0xFFFFFFFF
MAX_TIME_MS = 0xFFFFFFFF

_ROOT = b"facelink/chain/v2\x00"
_SEAL = b"facelink/seal/v2\x00"
_SEAL_V3 = b"facelink/seal/v3\x00"  # sessions with audio (bitstream version 3)
_LEN = struct.Struct("<I")
_SEALED = struct.Struct("<HII")  # covered_through_seq, counter, time_ms
_SEALED_V3 = struct.Struct("<HHII")  # covered_through_seq, audio_through_seq, counter, time_ms
_FRAME_TYPES = (PacketType.KEY_FRAME, PacketType.PREDICTED_FRAME, PacketType.NO_FACE)


# ---------------------------------------------------------------- chain primitives


def chain_root(session_id: bytes, counter: int) -> bytes:
    """Root of span number ``counter`` of a session (the chain hash of an empty span)."""
    return hashlib.sha256(_ROOT + bytes(session_id) + _LEN.pack(counter)).digest()


def chain_step(h: bytes, packet: bytes) -> bytes:
    """Absorb one packet into the running chain hash."""
    return hashlib.sha256(h + _LEN.pack(len(packet)) + packet).digest()


def span_hash(session_id: bytes, counter: int, packets: Iterable[bytes]) -> bytes:
    """The chain hash of span number ``counter``: its root, then each packet in order."""
    h = chain_root(session_id, counter)
    for p in packets:
        h = chain_step(h, p)
    return h


def seal_message(
    header_digest: bytes,
    covered_through_seq: int,
    counter: int,
    time_ms: int,
    chain_hash: bytes,
    audio_through_seq: int | None = None,
) -> bytes:
    """The exact bytes a seal's Ed25519 signature covers (``audio_through_seq``: version-3 seals)."""
    if audio_through_seq is not None:
        return _SEAL_V3 + header_digest + _SEALED_V3.pack(covered_through_seq, audio_through_seq, counter, time_ms) + chain_hash
    return _SEAL + header_digest + _SEALED.pack(covered_through_seq, counter, time_ms) + chain_hash


def signer_extension(key: Identity | PublicIdentity) -> tuple[int, bytes]:
    """The ``(SIGNER_TAG, ed25519 public key)`` session-header extension for ``key``."""
    pub = key.public if isinstance(key, Identity) else key
    return SIGNER_TAG, pub.ed25519


def header_signer(header: SessionHeader) -> bytes | None:
    """The signer key named by a session header, ``None`` if unsigned.

    Raises VerificationError if the extension is present but malformed.
    """
    for tag, value in header.extensions:
        if tag == SIGNER_TAG:
            if len(value) != 32:
                raise VerificationError("session header's signer extension is malformed; the stream cannot be verified")
            return value
    return None


# ---------------------------------------------------------------- sender side


def _seconds(name: str, value: object) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise TypeError(f"{name} must be a number of seconds, got {type(value).__name__}")
    if not math.isfinite(value):
        raise ValueError(f"{name} must be finite, got {value!r}")
    return float(value)


class SealWriter:
    """Sender side: hashes every packet and emits a seal every ``interval`` seconds of stream.

    ``push(packet, now)`` returns the packets to send, in order: the packet itself and,
    when a span is complete, a seal after it.  A span closes after
    ``floor(interval * fps)`` frame packets (so seals come every ``interval`` seconds of
    stream time), or when :meth:`poll` sees packets waiting longer than ``interval``
    (a stalled source), or on :meth:`seal`.  Push the session header first.

    ``now`` is any clock in seconds; ``start`` is its reading at the header's
    ``created_us`` (default: the first ``now`` the writer is given).  Each seal carries
    ``time_ms = round(1000 * (now - start))``, never decreasing, with the latest ``now``
    seen; receivers compare ``created_us + time_ms`` with their own clock (``max_age``).
    """

    def __init__(
        self, identity: Identity, header: bytes, *, interval: float = DEFAULT_SEAL_INTERVAL, start: float | None = None
    ) -> None:
        if not isinstance(identity, Identity):
            raise TypeError(f"identity must be an Identity, got {type(identity).__name__}")
        if isinstance(interval, bool) or not isinstance(interval, (int, float)) or not 0 < interval <= 60 or not math.isfinite(interval):
            raise ValueError(f"seal interval must be in (0, 60] seconds, got {interval!r}")
        try:
            hdr = SessionHeader.parse(bytes(header))
        except InvalidPacket as e:
            raise ValueError(f"header is not a session header packet: {e}") from None
        if header_signer(hdr) != identity.public.ed25519:
            raise ValueError("session header does not name this identity as signer; add signer_extension(identity)")
        self.identity = identity
        self.header = bytes(header)
        self.session_id = hdr.session_id
        #: seals of a session with audio are version 3 and also cover the last AUDIO seq
        self._version = AUDIO_VERSION if hdr.version >= AUDIO_VERSION else BITSTREAM_VERSION
        self._ats = 0xFFFF  # "through the audio packet before seq 0": none sent yet
        self.interval = float(interval)
        #: frame packets per span at the session's nominal rate
        self.frames_per_seal = max(1, math.floor(float(Fraction(hdr.fps_num, hdr.fps_den)) * self.interval + 1e-9))
        self._digest = hashlib.sha256(self.header).digest()
        self._start = None if start is None else _seconds("start", start)
        self._now: float | None = None
        self._time_ms = 0
        self._counter = 0
        self._h = chain_root(self.session_id, 0)
        self._pending = 0
        self._frames = 0
        self._cts = 0xFFFF  # "through the frame before seq 0": nothing covered yet
        self._t_first: float | None = None
        #: counters: seals emitted, packets chained, bytes of seals
        self.seals = 0
        self.packets = 0
        self.seal_bytes = 0

    @property
    def pending(self) -> int:
        """Packets chained since the last seal."""
        return self._pending

    @property
    def counter(self) -> int:
        """The counter the next seal will carry (= seals emitted so far)."""
        return self._counter

    def _tick(self, now: float | None) -> None:
        if now is None:
            return
        t = _seconds("now", now)
        if self._start is None:
            self._start = t
        if self._now is None or t > self._now:
            self._now = t

    def push(self, packet: bytes, now: float) -> list[bytes]:
        """Chain ``packet`` (sent at ``now`` seconds); returns ``[packet]`` or ``[packet, seal]``."""
        data = bytes(packet)
        try:
            pkt = parse_packet(data)
        except InvalidPacket as e:
            raise ValueError(f"not a FaceLink packet: {e}") from None
        if pkt.TYPE is PacketType.SEAL:
            raise ValueError("seal packets are made by the SealWriter, not pushed into it")
        self._tick(now)
        self._h = chain_step(self._h, data)
        self.packets += 1
        self._pending += 1
        if self._t_first is None:
            self._t_first = now
        if pkt.TYPE in _FRAME_TYPES:
            self._cts = pkt.seq  # type: ignore[union-attr]
            self._frames += 1
            if self._frames >= self.frames_per_seal:
                return [data, self.seal()]
        elif pkt.TYPE is PacketType.AUDIO:
            self._ats = pkt.seq  # type: ignore[union-attr]
        return [data]

    def poll(self, now: float) -> list[bytes]:
        """``[seal]`` if packets have waited ``interval`` seconds since the first unsealed one, else ``[]``."""
        if self._pending and self._t_first is not None and now - self._t_first >= self.interval:
            return [self.seal(now)]
        return []

    def push_isolated(self, packets: list[bytes], now: float) -> list[bytes]:
        """Chain control packets (header, reference chunks, End) in a span of their own.

        Returns ``[seal of the pending span, if any] + packets + [seal]``.  A receiver can
        then tell a lost control packet (an empty span, a reference with chunks missing)
        from an altered frame (a MISMATCH in a span whose frames all arrived), and the
        header is authenticated by the small span right after it even on a lossy link.
        """
        self._tick(now)
        out = [self.seal()] if self._pending else []
        for p in packets:
            out += self.push(p, now)
        if self._pending:
            out.append(self.seal())
        return out

    def seal(self, now: float | None = None) -> bytes:
        """Close the current span now (an empty span too) and return the seal packet.

        ``now`` defaults to the latest time given to :meth:`push`/:meth:`poll`.
        """
        self._tick(now)
        if self._counter > MAX_COUNTER:
            raise ValueError(f"this session has sent {MAX_COUNTER + 1} seals, the most a session can; start a new session")
        if self._start is not None and self._now is not None:
            self._time_ms = max(self._time_ms, round(1000 * (self._now - self._start)))
        if self._time_ms > MAX_TIME_MS:
            raise ValueError("this session is older than 2^32 ms (49.7 days), the longest a session can be; start a new session")
        chain_hash = self._h
        ats = self._ats if self._version >= AUDIO_VERSION else None
        msg = seal_message(self._digest, self._cts, self._counter, self._time_ms, chain_hash, ats)
        out = bytes(Seal(self._cts, self._counter, self._time_ms, self.identity.sign(msg), ats, version=self._version))
        self._counter += 1
        self._h = chain_root(self.session_id, self._counter)
        self._pending = 0
        self._frames = 0
        self._t_first = None
        self.seals += 1
        self.seal_bytes += len(out)
        return out


# ---------------------------------------------------------------- receiver side


class SpanStatus(enum.Enum):
    """What a receiver can say about the packets between two seals."""

    VERIFIED = "verified"  # the span's seal verifies: exactly these packets, in this order, from the signer
    INCOMPLETE = "incomplete"  # the seal does not verify and the receiver saw packets go missing (or joined mid-span)
    MISMATCH = "mismatch"  # the seal does not verify and nothing was seen missing: altered/reordered/injected/forged
    UNSEALED = "unsealed"  # no seal followed these packets (stream cut short)


class SealStatus(enum.Enum):
    """What a receiver made of one seal packet."""

    ACCEPTED = "accepted"  # verifies over the packets of its span
    BAD_SIGNATURE = "bad_signature"  # does not verify although nothing was lost: forged, corrupted, another session, or its span was altered
    REPLAYED = "replayed"  # its counter is not above the highest accepted one: replayed or reordered
    UNCHECKED = "unchecked"  # cannot be checked: no (signed) session header yet, or packets of its span were lost


@dataclass(frozen=True)
class SpanVerdict:
    """The verdict on one span: arrival indices ``first..last`` (inclusive) of its packets."""

    status: SpanStatus
    first: int
    last: int
    seal_index: int | None
    frames: int
    missing_frames: int
    reason: str

    @property
    def verified(self) -> bool:
        return self.status is SpanStatus.VERIFIED

    @property
    def packets(self) -> int:
        return max(0, self.last - self.first + 1)

    def covers(self, index: int) -> bool:
        """True if the packet with arrival index ``index`` is in this span."""
        return self.first <= index <= self.last


@dataclass(frozen=True)
class PacketVerdict:
    """What :meth:`StreamVerifier.feed` says about one packet; ``spans`` are the spans it closed."""

    index: int
    kind: PacketType | None
    seal: SealStatus | None = None
    spans: tuple[SpanVerdict, ...] = ()
    note: str = ""


@dataclass(frozen=True)
class VerifySummary:
    """Counts and identity of a verified (or refused) stream."""

    session_id: str | None
    signed: bool
    signer: str | None
    signer_name: str | None
    trusted: bool
    created_us: int | None
    packets: int
    seals_accepted: int
    seals_rejected: int
    spans_verified: int
    spans_incomplete: int
    spans_mismatch: int
    packets_verified: int
    packets_unverified: int
    packets_pending: int
    frames_verified: int
    frames_unverified: int
    foreign_headers: int
    ended: bool
    end_verified: bool
    first_problem: str

    @property
    def intact(self) -> bool:
        """True for a complete, fully verified, trusted stream: what a ``.flk`` file must be."""
        return (
            self.signed
            and self.trusted
            and self.seals_rejected == 0
            and self.spans_incomplete == 0
            and self.spans_mismatch == 0
            and self.packets_unverified == 0
            and self.packets_pending == 0
            and self.foreign_headers == 0
            and self.end_verified
        )

    def as_dict(self) -> dict:
        d = {k: getattr(self, k) for k in self.__dataclass_fields__}
        d["intact"] = self.intact
        return d


class StreamVerifier:
    """Receiver side: feed packets in arrival order, get per-packet and per-span verdicts.

    Each seal is checked against the span hash the verifier computes from the packets
    it received since the previous seal.  A seal that verifies makes its span VERIFIED.
    One that does not makes its span INCOMPLETE when the verifier saw packets go missing
    (a gap in frame ``seq`` numbers, seal counters or reference chunks, an empty span,
    or a receiver that joined mid-span; the seal is then UNCHECKED), and MISMATCH
    otherwise (the seal is then BAD_SIGNATURE): altered, reordered, injected, spliced
    or forged.  Spans are independent, so the next span verifies again after a loss; after
    a lost seal the verifier finds where the next seal's span starts, and a seal whose
    (signed) counter skips numbers also reports the spans that never arrived.  A seal
    whose counter is not above the highest accepted one is REPLAYED and ignored.
    A receiver that joins late keeps what arrives before the session header and
    reports it once the header is known.

    Session-level refusals raise :class:`~facelink.errors.VerificationError` from
    :meth:`feed`: an unsigned stream, a key that is not in ``trust`` or is revoked
    (all three accepted, and flagged, with ``insecure=True``), and, with ``max_age``,
    an authentic seal signed (``created_us + time_ms``) more than ``max_age`` seconds
    before ``now``: a replayed recording.  After a refusal every later :meth:`feed`
    raises too.
    """

    def __init__(
        self,
        trust: TrustStore | None = None,
        *,
        insecure: bool = False,
        max_age: float | None = None,
        from_start: bool = False,
    ) -> None:
        """``from_start=True`` for recordings: a header that is the first packet starts the session.

        Its first seal must then have counter 0, so a recording whose first spans were cut
        off is INCOMPLETE.  On a live link the first header may be a repeat, whose counter
        is unknown.
        """
        if max_age is not None and not (_seconds("max_age", max_age) > 0):
            raise ValueError(f"max_age must be > 0 seconds, got {max_age!r}")
        self.trust = trust if trust is not None else TrustStore()
        self.insecure = bool(insecure)
        self.max_age = max_age
        self.from_start = bool(from_start)
        self._pub: Ed25519PublicKey | None = None
        self.header: SessionHeader | None = None
        self.header_bytes: bytes | None = None
        self.signer: PublicIdentity | None = None
        self.signer_key: bytes | None = None
        self.trusted = False
        self._digest = b""
        self._refused: str | None = None
        self._n = 0
        # current span
        self._span: list[tuple[bytes, PacketType | None, int]] = []  # (packet, kind, arrival index)
        self._span_overflow = False
        self._start_known = False
        self._span_first = 0
        self._span_packets = 0
        self._span_bytes = 0
        self._span_frames = 0
        self._span_missing = 0
        self._span_anomalies = 0
        self._span_end = False
        self._span_chunks: dict[tuple[bytes, int], set[int]] = {}
        # audio (version 3): like frames, AUDIO seq gaps and the seals' audio_through_seq show loss
        self._span_audio = 0
        self._span_audio_missing = 0
        self._expect_aseq: int | None = None
        self._last_audio_seq: int | None = None
        self._last_ats: int | None = None
        # before the header: raw packets since the last seal, and that seal
        self._pre: deque[bytes] = deque()
        self._pre_bytes = 0
        self._pre_lost = False
        self._early_seal: Seal | None = None
        self._early_empty = False  # nothing arrived between that seal and the one before it
        # sequence tracking
        self._expect_seq: int | None = None
        self._last_frame_seq: int | None = None
        self._last_cts: int | None = None
        self._last_counter: int | None = None  # counter of the last seal that closed a span (authentic or not)
        self._top_counter: int | None = None  # highest accepted counter
        self._frames_hint = 0  # frames in the last verified span that had frames (where to look after a lost seal)
        # counters
        self._c = dict.fromkeys(
            (
                "seals_accepted",
                "seals_rejected",
                "spans_verified",
                "spans_incomplete",
                "spans_mismatch",
                "packets_verified",
                "packets_unverified",
                "frames_verified",
                "frames_unverified",
                "foreign_headers",
            ),
            0,
        )
        self._ended = False
        self._end_verified = False
        self._first_problem = ""

    # -- public ---------------------------------------------------------------------

    @property
    def signed(self) -> bool:
        return self.signer_key is not None

    @property
    def highest_counter(self) -> int | None:
        """The highest seal counter accepted so far (seals at or below it are replays)."""
        return self._top_counter

    def feed(self, data: bytes, *, now: float | None = None) -> PacketVerdict:
        """Take the next packet as it arrived; ``now`` (seconds since the epoch) only for ``max_age``."""
        if self._refused is not None:
            raise VerificationError(self._refused)
        data = bytes(data)
        index = self._n
        self._n += 1
        try:
            pkt = parse_packet(data)
        except InvalidPacket:
            pkt = None
        if isinstance(pkt, Seal):
            return self._on_seal(pkt, index, now)
        kind = pkt.TYPE if pkt is not None else None
        note = ""
        if isinstance(pkt, SessionHeader):
            if self.header is None:
                self._adopt_header(pkt, data, index, now)
                return PacketVerdict(index, kind)
            if data != self.header_bytes:
                self._c["foreign_headers"] += 1
                note = "foreign session header" if pkt.session_id != self.header.session_id else "altered session header"
                self._problem(f"packet {index}: {note}")
        if self.header is None:
            self._keep_early(data)
            return PacketVerdict(index, kind, note=note)
        self._absorb(data, pkt, index)
        return PacketVerdict(index, kind, note=note)

    def finish(self) -> tuple[SpanVerdict, ...]:
        """End of input: packets after the last seal are reported UNSEALED."""
        out = []
        if self.header is None and self._pre:
            out.append(self._close(SpanStatus.UNSEALED, None, "stream ended before any session header"))
        elif self._span_packets:
            out.append(self._close(SpanStatus.UNSEALED, None, "no seal followed these packets (stream cut short)"))
        return tuple(out)

    def summary(self) -> VerifySummary:
        c = self._c
        pending = self._span_packets if self.header is not None else len(self._pre)
        return VerifySummary(
            session_id=self.header.session_id.hex() if self.header else None,
            signed=self.signed,
            signer=fingerprint(self.signer_key) if self.signer_key else None,
            signer_name=self.signer.name if self.signer else None,
            trusted=self.trusted,
            created_us=self.header.created_us if self.header else None,
            packets=self._n,
            seals_accepted=c["seals_accepted"],
            seals_rejected=c["seals_rejected"],
            spans_verified=c["spans_verified"],
            spans_incomplete=c["spans_incomplete"],
            spans_mismatch=c["spans_mismatch"],
            packets_verified=c["packets_verified"],
            packets_unverified=c["packets_unverified"],
            packets_pending=pending,
            frames_verified=c["frames_verified"],
            frames_unverified=c["frames_unverified"],
            foreign_headers=c["foreign_headers"],
            ended=self._ended,
            end_verified=self._end_verified,
            first_problem=self._first_problem or ("" if self.signed else "stream is not signed"),
        )

    # -- internals --------------------------------------------------------------------

    def _problem(self, text: str) -> None:
        if not self._first_problem:
            self._first_problem = text

    def _refuse(self, message: str) -> None:
        self._refused = message
        raise VerificationError(message)

    def _adopt_header(self, hdr: SessionHeader, data: bytes, index: int, now: float | None) -> None:
        try:
            key = header_signer(hdr)
        except VerificationError as e:
            if not self.insecure:
                self._refuse(str(e))
            key = None
        if key is None:
            if not self.insecure:
                self._refuse("stream is not signed; refuse it, or accept it knowingly with --insecure")
        else:
            try:
                self._pub = Ed25519PublicKey.from_public_bytes(key)
            except ValueError:
                self._refuse("session header's signer key is not a valid Ed25519 key; the stream cannot be verified")
            try:
                self.signer = self.trust.check(key)
                self.trusted = True
            except VerificationError as e:
                if not self.insecure:
                    self._refuse(str(e))
        self.header, self.header_bytes, self.signer_key = hdr, data, key
        self._digest = hashlib.sha256(data).digest()
        early, self._early_seal = self._early_seal, None
        pre, self._pre = list(self._pre), deque()
        # A conforming sender starts a span with every session header, so a header that
        # follows nothing (or a seal) starts the span; packets before it mean we joined mid-span
        # (unless a seal came just before them).
        self._start_known = not pre or (early is not None and not self._pre_lost)
        if early is not None:
            # the last seal before the header (a live sender's sync seal): it closes an empty span
            # as a rule, and then it can be checked now; if not, its fields are not authenticated
            # and only help tell loss from tampering (a counter or frame gap means something went missing)
            if self._early_empty and self._seal_verifies(early, ()):
                self._accept(early, now)
            self._last_counter = early.counter
            self._last_cts = early.covered_through_seq
            self._expect_seq = (early.covered_through_seq + 1) & 0xFFFF
            if early.audio_through_seq is not None:
                self._last_ats = early.audio_through_seq
                self._expect_aseq = (early.audio_through_seq + 1) & 0xFFFF
        elif index == 0 and self.from_start:
            self._last_counter = -1  # a recording starts with the session's first span: counter 0
            self._last_ats, self._expect_aseq = 0xFFFF, 0  # and with AUDIO seq 0
        for k, p in enumerate(pre):
            try:
                q = parse_packet(p)
            except InvalidPacket:
                q = None
            self._absorb(p, q, index - len(pre) + k)
        self._absorb(data, hdr, index)

    def _keep_early(self, data: bytes) -> None:
        if not self._pre:
            self._span_first = self._n - 1
        self._pre.append(data)
        self._pre_bytes += len(data)
        while len(self._pre) > MAX_SPAN_PACKETS or self._pre_bytes > MAX_SPAN_BYTES:
            self._pre_bytes -= len(self._pre.popleft())
            self._pre_lost = True

    def _absorb(self, data: bytes, pkt, index: int) -> None:
        if self._span_packets == 0:
            self._span_first = index
        self._span_packets += 1
        self._span_bytes += len(data)
        kind = pkt.TYPE if pkt is not None else None
        if not self._span_overflow:
            if self._span_packets > MAX_SPAN_PACKETS or self._span_bytes > MAX_SPAN_BYTES:
                # no conforming sender goes this long without a seal: stop keeping it, report it unverifiable
                self._span_overflow = True
                self._span = []
            else:
                self._span.append((data, kind, index))
        if kind in _FRAME_TYPES:
            self._span_frames += 1
            seq = pkt.seq
            if self._expect_seq is not None and seq != self._expect_seq:
                gap = (seq - self._expect_seq) & 0xFFFF
                if gap < 0x8000:
                    self._span_missing += gap  # frames lost on the way
                else:
                    self._span_anomalies += 1  # a frame went backwards: reordered, replayed or injected
            self._expect_seq = (seq + 1) & 0xFFFF
            self._last_frame_seq = seq
        elif kind is PacketType.AUDIO:
            self._span_audio += 1
            seq = pkt.seq
            if self._expect_aseq is not None and seq != self._expect_aseq:
                gap = (seq - self._expect_aseq) & 0xFFFF
                if gap < 0x8000:
                    self._span_audio_missing += gap  # audio packets lost on the way
                else:
                    self._span_anomalies += 1  # audio went backwards: reordered, replayed or injected
            self._expect_aseq = (seq + 1) & 0xFFFF
            self._last_audio_seq = seq
        elif kind is PacketType.END:
            self._ended = True
            self._span_end = True
        elif kind is PacketType.REFERENCE_CHUNK and len(self._span_chunks) < 64:
            self._span_chunks.setdefault((pkt.digest_prefix, pkt.count), set()).add(pkt.index)

    def _verifies(self, seal: Seal, start: int = 0) -> bool:
        """True if ``seal`` verifies over the current span's packets from position ``start`` on."""
        return not self._span_overflow and self._seal_verifies(seal, (p for p, _, _ in self._span[start:]))

    def _seal_verifies(self, seal: Seal, packets: Iterable[bytes]) -> bool:
        if self._pub is None or self.header is None:
            return False
        h = span_hash(self.header.session_id, seal.counter, packets)
        msg = seal_message(self._digest, seal.covered_through_seq, seal.counter, seal.time_ms, h, seal.audio_through_seq)
        try:
            self._pub.verify(seal.signature, msg)
        except InvalidSignature:
            return False
        return True

    def _accept(self, seal: Seal, now: float | None) -> None:
        """Count an authentic seal; refuse the stream if it is older than ``max_age``."""
        if self.max_age is not None and now is not None and self.header is not None:
            age = now - (self.header.created_us / 1e6 + seal.time_ms / 1000)
            if age > self.max_age:
                self._refuse(
                    f"stream was signed {age:.0f} s ago, longer ago than the allowed {self.max_age:g} s "
                    "(a replayed recording?)"
                )
        self._c["seals_accepted"] += 1
        self._top_counter = seal.counter

    def _after_lost_seal(self, seal: Seal) -> int | None:
        """Where the span of ``seal`` starts in the current span when seals before it were lost.

        The packets since the last seal then hold the tail of the lost seal's span(s) and
        then this seal's span; try the likely boundaries (the last verified span's frame
        count first, then from the end backwards, at most MAX_RESYNC_TRIES) and return the
        first position from which the seal verifies, or None.
        """
        n = len(self._span)
        candidates: list[int] = []
        if self._frames_hint:
            frames = [i for i, (_, kind, _) in enumerate(self._span) if kind in _FRAME_TYPES]
            if len(frames) > self._frames_hint:
                candidates.append(frames[-self._frames_hint])
        candidates += [j for j in range(n, max(0, n - MAX_RESYNC_TRIES), -1) if j not in candidates]
        for j in candidates[:MAX_RESYNC_TRIES]:
            if self._verifies(seal, j):
                return j
        return None

    def _losses(self, seal: Seal) -> list[str]:
        """What the verifier saw go missing in the current span (empty: nothing)."""
        out = []
        if self._span_missing:
            out.append(f"{self._span_missing} frame packet(s) missing")
        if self._span_audio_missing:
            out.append(f"{self._span_audio_missing} audio packet(s) missing")
        if self._last_counter is not None and seal.counter > self._last_counter + 1:
            out.append(f"{seal.counter - self._last_counter - 1} seal(s) missing before this one")
        if not self._start_known:
            out.append("receiver joined mid-span")
        if self._span_overflow:
            out.append("span too long to check")
        if self._span_packets == 0:
            out.append("every packet of the span was lost")
        if any(len(got) < count for (_, count), got in self._span_chunks.items()):
            out.append("reference chunks missing")
        return out

    def _on_seal(self, seal: Seal, index: int, now: float | None) -> PacketVerdict:
        if self.header is None:
            early: tuple[SpanVerdict, ...] = ()
            if self._pre:
                early = (self._close(SpanStatus.INCOMPLETE, index, "received before the session header"),)
            self._pre.clear()
            self._pre_bytes = 0
            self._pre_lost = False
            self._early_seal = seal
            self._early_empty = not early
            return PacketVerdict(index, PacketType.SEAL, SealStatus.UNCHECKED, early)
        if self.signer_key is None:
            self._c["seals_rejected"] += 1
            return PacketVerdict(index, PacketType.SEAL, SealStatus.UNCHECKED, note="seal in an unsigned stream")
        if self._top_counter is not None and seal.counter <= self._top_counter:
            # seals are not part of any span, so ignoring this one leaves the current span intact
            self._c["seals_rejected"] += 1
            self._problem(f"packet {index}: replayed seal (counter {seal.counter}, already at {self._top_counter})")
            return PacketVerdict(index, PacketType.SEAL, SealStatus.REPLAYED)
        cts = seal.covered_through_seq
        # frames the seal says were sent but that never arrived
        last = self._last_frame_seq if self._span_frames else self._last_cts
        if last is not None and last != cts:
            gap = (cts - last) & 0xFFFF
            if gap < 0x8000:
                self._span_missing += gap
            elif self._span_frames:
                self._span_anomalies += 1  # a frame beyond what the seal covers: injected
        ats = seal.audio_through_seq
        last_a = self._last_audio_seq if self._span_audio else self._last_ats
        if ats is not None and last_a is not None and last_a != ats:
            gap = (ats - last_a) & 0xFFFF
            if gap < 0x8000:
                self._span_audio_missing += gap
            elif self._span_audio:
                self._span_anomalies += 1  # audio beyond what the seal covers: injected
        spans: tuple[SpanVerdict, ...] = ()
        counter_gap = self._last_counter is not None and seal.counter > self._last_counter + 1
        split = 0 if self._verifies(seal) else self._after_lost_seal(seal) if counter_gap else None
        if split is not None:
            self._accept(seal, now)
            seal_status = SealStatus.ACCEPTED
            if split:
                # the packets before the boundary belong to span(s) whose seal was lost
                lost = seal.counter - self._last_counter - 1  # type: ignore[operator]
                head = self._split_off(split, f"the seal of these packets was lost ({lost} seal(s) missing)")
                span = self._close(SpanStatus.VERIFIED, index, "")
                spans = (head, span)
            else:
                span = self._close(SpanStatus.VERIFIED, index, "")
                if counter_gap:
                    # the (authenticated) counter says whole spans, seals included, never arrived
                    spans = (self._lost_spans(seal.counter - self._last_counter - 1, index), span)  # type: ignore[operator]
            if span.frames:
                self._frames_hint = span.frames
        else:
            losses = self._losses(seal)
            if self._span_anomalies:
                status, reason = SpanStatus.MISMATCH, "frame packets out of order, repeated or injected"
            elif losses:
                status, reason = SpanStatus.INCOMPLETE, "; ".join(losses)
            else:
                status, reason = SpanStatus.MISMATCH, "the seal does not verify over these packets: altered, injected, spliced, or a forged seal"
            if status is SpanStatus.MISMATCH:
                self._c["seals_rejected"] += 1
                seal_status = SealStatus.BAD_SIGNATURE
            else:
                seal_status = SealStatus.UNCHECKED
            span = self._close(status, index, reason)
        spans = spans or (span,)
        self._last_counter = seal.counter
        self._last_cts = cts
        self._expect_seq = (cts + 1) & 0xFFFF
        self._last_frame_seq = None
        if ats is not None:
            self._last_ats = ats
            self._expect_aseq = (ats + 1) & 0xFFFF
        self._last_audio_seq = None
        self._start_known = True
        return PacketVerdict(index, PacketType.SEAL, seal_status, spans)

    def _lost_spans(self, count: int, index: int) -> SpanVerdict:
        """An empty INCOMPLETE verdict standing for ``count`` spans of which nothing arrived."""
        reason = f"{count} span(s) lost entirely: no packet and no seal of them arrived"
        self._c["spans_incomplete"] += 1
        self._problem(f"before packet {index}: {reason}")
        return SpanVerdict(SpanStatus.INCOMPLETE, index, index - 1, None, 0, 0, reason)

    def _close(self, status: SpanStatus, seal_index: int | None, reason: str) -> SpanVerdict:
        n = self._span_packets if self.header is not None else len(self._pre)
        last = (seal_index if seal_index is not None else self._n) - 1
        first = self._span_first if n else last + 1
        span = self._report(
            SpanVerdict(status, first, last, seal_index, self._span_frames, self._span_missing, reason), n, self._span_end
        )
        self._span = []
        self._span_overflow = False
        self._span_packets = self._span_bytes = self._span_frames = self._span_missing = self._span_anomalies = 0
        self._span_audio = self._span_audio_missing = 0
        self._span_end = False
        self._span_chunks = {}
        return span

    def _split_off(self, j: int, reason: str) -> SpanVerdict:
        """Report the first ``j`` packets of the current span INCOMPLETE; the rest stays the current span."""
        head, tail = self._span[:j], self._span[j:]
        frames = sum(1 for _, kind, _ in head if kind in _FRAME_TYPES)
        span = self._report(
            SpanVerdict(SpanStatus.INCOMPLETE, head[0][2], head[-1][2], None, frames, self._span_missing, reason),
            len(head),
            any(kind is PacketType.END for _, kind, _ in head),
        )
        self._span = tail
        self._span_first = tail[0][2] if tail else self._span_first
        self._span_packets = len(tail)
        self._span_bytes = sum(len(p) for p, _, _ in tail)
        self._span_frames -= frames
        self._span_missing = 0
        self._span_audio -= sum(1 for _, kind, _ in head if kind is PacketType.AUDIO)
        self._span_audio_missing = 0
        self._span_end = any(kind is PacketType.END for _, kind, _ in tail)
        return span

    def _report(self, span: SpanVerdict, n: int, has_end: bool) -> SpanVerdict:
        """Count a span verdict covering ``n`` packets into the summary."""
        c = self._c
        if span.status is SpanStatus.VERIFIED:
            c["spans_verified"] += 1
            c["packets_verified"] += n
            c["frames_verified"] += span.frames
            if has_end:
                self._end_verified = True
        else:
            if span.status is SpanStatus.INCOMPLETE:
                c["spans_incomplete"] += 1
            elif span.status is SpanStatus.MISMATCH:
                c["spans_mismatch"] += 1
            c["packets_unverified"] += n
            c["frames_unverified"] += span.frames
            if n:
                self._problem(f"packets {span.first}-{span.last}: {span.status.value}: {span.reason}")
        return span


def seal_packets(packets: Iterable[bytes], identity: Identity, *, interval: float = DEFAULT_SEAL_INTERVAL) -> Iterator[bytes]:
    """Seal a recorded session (for ``.flk`` files): the packets of one session, in order, header first.

    The header must name ``identity`` as signer (encode with ``extensions=(signer_extension(identity),)``).
    The header, the reference chunks and ``End`` each get a span of their own (as on a
    live link), frames are sealed every ``interval`` seconds of stream.  Seal times are
    stream times: a frame's nominal time plus its ``pts_offset``.
    """
    it = iter(packets)
    try:
        header = bytes(next(it))
    except StopIteration:
        raise ValueError("no packets to seal: a session starts with its header") from None
    w = SealWriter(identity, header, interval=interval, start=0.0)
    hdr = SessionHeader.parse(header)
    period = Fraction(hdr.fps_den, hdr.fps_num)
    yield from w.push_isolated([header], 0.0)
    opening = True
    t = 0.0
    n = -1
    last_seq: int | None = None
    for p in it:
        data = bytes(p)
        try:
            pkt = parse_packet(data)
        except InvalidPacket as e:
            raise ValueError(f"not a FaceLink packet: {e}") from None
        kind = pkt.TYPE
        if opening and kind is PacketType.REFERENCE_CHUNK:
            yield from w.push(data, t)
            continue
        if opening:
            opening = False
            if w.pending:
                yield w.seal(t)
        if kind in _FRAME_TYPES:
            seq = pkt.seq  # type: ignore[union-attr]
            n = 0 if last_seq is None else n + ((seq - last_seq) & 0xFFFF)
            last_seq = seq
            t = max(t, float(n * period) + pkt.pts_offset / 90000)  # type: ignore[union-attr]
            yield from w.push(data, t)
        elif kind is PacketType.AUDIO:
            # audio travels in the frame spans, in stream order (its timestamp is on the same clock)
            t = max(t, pkt.timestamp / AUDIO_CLOCK_HZ)  # type: ignore[union-attr]
            yield from w.push(data, t)
        else:
            yield from w.push_isolated([data], t)
    if w.pending:
        yield w.seal(t)


def iter_verified(
    packets: Iterable[bytes],
    trust: TrustStore | None,
    *,
    insecure: bool = False,
    summary: list[VerifySummary] | None = None,
) -> Iterator[bytes]:
    """Strict verification of a complete recorded stream (a ``.flk`` file): check, then release.

    Yields each packet only after the seal covering it verified; raises
    VerificationError at the first problem: refused signer, bad or replayed seal, any
    span that is not VERIFIED, a second session header, or a stream that does not end
    with a sealed ``End``.  With ``insecure=True`` an unsigned stream passes through
    unchecked and an untrusted signer is accepted (its seals must still verify).
    If ``summary`` is a list, the final :class:`VerifySummary` is appended to it.
    """
    v = StreamVerifier(trust, insecure=insecure, from_start=True)
    try:
        yield from _verified(v, packets)
    finally:  # also when the stream was cut short or refused: the summary says how far it got
        if summary is not None:
            summary.append(v.summary())


def _verified(v: StreamVerifier, packets: Iterable[bytes]) -> Iterator[bytes]:
    held: list[bytes] = []
    held_bytes = 0
    for data in packets:
        verdict = v.feed(data)
        if verdict.index == 0 and verdict.kind is not PacketType.SESSION_HEADER:
            raise VerificationError("stream does not start with its session header (truncated or spliced)")
        if not v.signed:  # insecure and unsigned: nothing to check
            yield data
            continue
        if verdict.note:
            raise VerificationError(f"packet {verdict.index}: {verdict.note} (spliced streams)")
        if verdict.kind is PacketType.SEAL:
            for span in verdict.spans:
                if not span.verified:
                    raise VerificationError(f"packets {span.first}-{span.last} failed verification ({span.status.value}: {span.reason})")
            if verdict.seal is not SealStatus.ACCEPTED:
                raise VerificationError(f"packet {verdict.index}: seal {verdict.seal.value.replace('_', ' ')}")  # type: ignore[union-attr]
            yield from held
            held.clear()
            held_bytes = 0
            yield data
            continue
        held.append(data)
        held_bytes += len(data)
        if len(held) > MAX_SPAN_PACKETS or held_bytes > MAX_SPAN_BYTES:
            raise VerificationError(f"packet {verdict.index}: too many packets without a seal (not a conforming sender)")
    v.finish()
    if v.header is None:
        raise VerificationError("stream holds no session header")
    if not v.signed:
        return
    if held:
        raise VerificationError(f"stream truncated: the last {len(held)} packet(s) are not covered by a seal")
    if not v.summary().end_verified:
        raise VerificationError("stream truncated: no sealed End packet")
