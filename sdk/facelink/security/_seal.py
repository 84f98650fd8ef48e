"""Signed keypoint streams: a hash chain over every packet, closed by Ed25519 seal packets.

Pure core: bytes in, bytes and verdicts out; no sockets, clocks or files (time is an
argument).  The format is specified in ``docs/security.md``; in short:

* The session header names the signer: extension tag :data:`SIGNER_TAG` holds the
  sender's 32-byte Ed25519 public key.
* Packets between seals form a *span*.  Its chain starts at a root and absorbs every
  packet except seals::

      root_0   = SHA-256("facelink/chain/v1\\0" || session_id)
      h        = SHA-256(h || u32le(len(packet)) || packet)
      root_n+1 = SHA-256("facelink/chain-next/v1\\0" || chain_hash_n)

* A :class:`~facelink.bitstream.Seal` carries the span's final ``chain_hash``, the
  ``seq`` of the last frame sent so far, and an Ed25519 signature over::

      "facelink/seal/v1\\0" || SHA-256(session header bytes) || u16le(covered_through_seq) || chain_hash

  so every seal also authenticates the exact session header (key, session id, codec
  parameters, reference digest, start time) the receiver decodes with.

Because a seal carries the hash it signs, a receiver can authenticate a seal even
when it lost packets of the span; it then reports that span unverified and
re-synchronises its chain on the seal, so the next span verifies again.
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

from ..bitstream import PacketType, Seal, SessionHeader, parse_packet
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
    "next_root",
    "seal_message",
    "seal_packets",
    "signer_extension",
]

#: session-header extension tag: the sender's Ed25519 public key (32 bytes)
SIGNER_TAG = 2
#: default longest time between seals, seconds
DEFAULT_SEAL_INTERVAL = 0.5
#: how many recent seal hashes a verifier remembers to recognise replays
REPLAY_MEMORY = 4096
#: a span longer than this many packets (or bytes) cannot come from a conforming sender
MAX_SPAN_PACKETS = 4096
MAX_SPAN_BYTES = 8 << 20

_ROOT = b"facelink/chain/v1\x00"
_NEXT = b"facelink/chain-next/v1\x00"
_SEAL = b"facelink/seal/v1\x00"
_LEN = struct.Struct("<I")
_CTS = struct.Struct("<H")
_FRAME_TYPES = (PacketType.KEY_FRAME, PacketType.PREDICTED_FRAME, PacketType.NO_FACE)


# ---------------------------------------------------------------- chain primitives


def chain_root(session_id: bytes) -> bytes:
    """Root of a session's first span."""
    return hashlib.sha256(_ROOT + bytes(session_id)).digest()


def chain_step(h: bytes, packet: bytes) -> bytes:
    """Absorb one packet into the running chain hash."""
    return hashlib.sha256(h + _LEN.pack(len(packet)) + packet).digest()


def next_root(chain_hash: bytes) -> bytes:
    """Root of the span after a seal with ``chain_hash``."""
    return hashlib.sha256(_NEXT + chain_hash).digest()


def seal_message(header_digest: bytes, covered_through_seq: int, chain_hash: bytes) -> bytes:
    """The exact bytes a seal's Ed25519 signature covers."""
    return _SEAL + header_digest + _CTS.pack(covered_through_seq) + chain_hash


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


class SealWriter:
    """Sender side: chains every packet and emits a seal every ``interval`` seconds of stream.

    ``push(packet, now)`` returns the packets to send, in order: the packet itself and,
    when a span is complete, a seal after it.  A span closes after
    ``floor(interval * fps)`` frame packets (so seals come every ``interval`` seconds of
    stream time), or when :meth:`poll` sees packets waiting longer than ``interval``
    (a stalled source), or on :meth:`seal`.  Push the session header first.
    """

    def __init__(self, identity: Identity, header: bytes, *, interval: float = DEFAULT_SEAL_INTERVAL) -> None:
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
        self.interval = float(interval)
        #: frame packets per span at the session's nominal rate
        self.frames_per_seal = max(1, math.floor(float(Fraction(hdr.fps_num, hdr.fps_den)) * self.interval + 1e-9))
        self._digest = hashlib.sha256(self.header).digest()
        self._h = chain_root(self.session_id)
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

    def push(self, packet: bytes, now: float) -> list[bytes]:
        """Chain ``packet`` (sent at ``now`` seconds); returns ``[packet]`` or ``[packet, seal]``."""
        data = bytes(packet)
        try:
            pkt = parse_packet(data)
        except InvalidPacket as e:
            raise ValueError(f"not a FaceLink packet: {e}") from None
        if pkt.TYPE is PacketType.SEAL:
            raise ValueError("seal packets are made by the SealWriter, not pushed into it")
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
        return [data]

    def poll(self, now: float) -> list[bytes]:
        """``[seal]`` if packets have waited ``interval`` seconds since the first unsealed one, else ``[]``."""
        if self._pending and self._t_first is not None and now - self._t_first >= self.interval:
            return [self.seal()]
        return []

    def push_isolated(self, packets: list[bytes], now: float) -> list[bytes]:
        """Chain control packets (header, reference chunks, End) in a span of their own.

        Returns ``[seal of the pending span, if any] + packets + [seal]``.  A receiver can
        then tell a lost control packet (an unverifiable frame-less span) from an altered
        frame (a MISMATCH in a span whose frames all arrived).
        """
        out = [self.seal()] if self._pending else []
        for p in packets:
            out += self.push(p, now)
        if self._pending:
            out.append(self.seal())
        return out

    def seal(self) -> bytes:
        """Close the current span now (an empty span too) and return the seal packet."""
        chain_hash = self._h
        sig = self.identity.sign(seal_message(self._digest, self._cts, chain_hash))
        out = bytes(Seal(self._cts, chain_hash, sig))
        self._h = next_root(chain_hash)
        self._pending = 0
        self._frames = 0
        self._t_first = None
        self.seals += 1
        self.seal_bytes += len(out)
        return out


# ---------------------------------------------------------------- receiver side


class SpanStatus(enum.Enum):
    """What a receiver can say about the packets between two seals."""

    VERIFIED = "verified"  # an authentic seal covers exactly these packets, in this order
    INCOMPLETE = "incomplete"  # the seal is authentic, but packets were lost (or the receiver joined mid-span)
    MISMATCH = "mismatch"  # the seal is authentic, nothing looks lost, yet the chain differs: altered/reordered/injected
    UNSEALED = "unsealed"  # no authentic seal followed these packets (stream cut short)


class SealStatus(enum.Enum):
    """What a receiver made of one seal packet."""

    ACCEPTED = "accepted"
    BAD_SIGNATURE = "bad_signature"  # forged, corrupted, or from another session
    REPLAYED = "replayed"  # authentic but seen before, or older than the last accepted seal
    UNCHECKED = "unchecked"  # no (signed) session header yet: nothing to check it against


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

    Tolerates loss: a span with lost packets is reported INCOMPLETE and the chain
    re-synchronises on its (authentic) seal.  Detects altered, reordered, injected and
    spliced packets (MISMATCH), forged seals and seals from other sessions
    (BAD_SIGNATURE), and replayed seals (REPLAYED).  A receiver that joins late keeps
    what arrives before the session header and checks it once the header is known.

    Session-level refusals raise :class:`~facelink.errors.VerificationError` from
    :meth:`feed`: an unsigned stream, a key that is not in ``trust`` or is revoked
    (all three accepted, and flagged, with ``insecure=True``), or a session older than
    ``max_age`` seconds at ``now``.  After a refusal every later :meth:`feed` raises too.
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

        On a live link that is only an assumption (the receiver may have joined at a
        header repeat), so a first span that does not verify is INCOMPLETE, not MISMATCH.
        """
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
        self._h: bytes | None = None
        self._root_proven = False
        self._span_first = 0
        self._span_packets = 0
        self._span_bytes = 0
        self._span_frames = 0
        self._span_missing = 0
        self._span_anomalies = 0
        self._span_end = False
        # before the header: raw packets since the last seal, and that seal
        self._pre: deque[bytes] = deque()
        self._pre_bytes = 0
        self._pre_lost = False
        self._early_seal: Seal | None = None
        # sequence tracking
        self._expect_seq: int | None = None
        self._last_frame_seq: int | None = None
        self._last_cts: int | None = None
        self._seen: deque[bytes] = deque(maxlen=REPLAY_MEMORY)
        self._seen_set: set[bytes] = set()
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
            return self._on_seal(pkt, index)
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
        """End of input: packets after the last accepted seal are reported UNSEALED."""
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
        if self.max_age is not None and now is not None and now - hdr.created_us / 1e6 > self.max_age:
            self._refuse(f"session started {now - hdr.created_us / 1e6:.0f} s ago, older than the allowed {self.max_age:g} s (a replay?)")
        self.header, self.header_bytes, self.signer_key = hdr, data, key
        self._digest = hashlib.sha256(data).digest()
        if key is None:
            self._h = None
            self._pre.clear()
            self._absorb(data, hdr, index)
            return
        early, self._early_seal = self._early_seal, None
        pre, self._pre = list(self._pre), deque()
        if early is not None and self._seal_authentic(early):
            self._c["seals_accepted"] += 1
            self._remember(early.chain_hash)
            self._last_cts = early.covered_through_seq
            self._expect_seq = (early.covered_through_seq + 1) & 0xFFFF
            self._h, self._root_proven = next_root(early.chain_hash), not self._pre_lost
        elif index == 0:
            self._h, self._root_proven = chain_root(hdr.session_id), self.from_start
        else:
            self._h, self._root_proven = None, False
        self._span_first = index - len(pre)
        for p in pre:
            try:
                q = parse_packet(p)
            except InvalidPacket:
                q = None
            self._absorb(p, q, None)
        self._absorb(data, hdr, index)

    def _keep_early(self, data: bytes) -> None:
        if not self._pre:
            self._span_first = self._n - 1
        self._pre.append(data)
        self._pre_bytes += len(data)
        while len(self._pre) > MAX_SPAN_PACKETS or self._pre_bytes > MAX_SPAN_BYTES:
            self._pre_bytes -= len(self._pre.popleft())
            self._pre_lost = True

    def _absorb(self, data: bytes, pkt, index: int | None) -> None:
        if self._span_packets == 0 and index is not None:
            self._span_first = index
        self._span_packets += 1
        self._span_bytes += len(data)
        if self._h is not None:
            self._h = chain_step(self._h, data)
        if pkt is not None and pkt.TYPE in _FRAME_TYPES:
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
        elif pkt is not None and pkt.TYPE is PacketType.END:
            self._ended = True
            self._span_end = True
        if self._span_packets > MAX_SPAN_PACKETS or self._span_bytes > MAX_SPAN_BYTES:
            # no conforming sender goes this long without a seal: stop hashing, report it unverifiable
            self._h, self._root_proven = None, False

    def _seal_authentic(self, seal: Seal) -> bool:
        if self._pub is None:
            return False
        try:
            self._pub.verify(seal.signature, seal_message(self._digest, seal.covered_through_seq, seal.chain_hash))
        except InvalidSignature:
            return False
        return True

    def _remember(self, chain_hash: bytes) -> None:
        if len(self._seen) == self._seen.maxlen:
            self._seen_set.discard(self._seen[0])
        self._seen.append(chain_hash)
        self._seen_set.add(chain_hash)

    def _on_seal(self, seal: Seal, index: int) -> PacketVerdict:
        if self.header is None:
            spans: tuple[SpanVerdict, ...] = ()
            if self._pre:
                spans = (self._close(SpanStatus.INCOMPLETE, index, "received before the session header"),)
            self._pre.clear()
            self._pre_bytes = 0
            self._pre_lost = False
            self._early_seal = seal
            return PacketVerdict(index, PacketType.SEAL, SealStatus.UNCHECKED, spans)
        if self.signer_key is None:
            self._c["seals_rejected"] += 1
            return PacketVerdict(index, PacketType.SEAL, SealStatus.UNCHECKED, note="seal in an unsigned stream")
        if not self._seal_authentic(seal):
            self._c["seals_rejected"] += 1
            self._problem(f"packet {index}: seal signature does not verify (forged, corrupted or from another session)")
            return PacketVerdict(index, PacketType.SEAL, SealStatus.BAD_SIGNATURE)
        cts = seal.covered_through_seq
        if seal.chain_hash in self._seen_set or (
            self._last_cts is not None and (cts - self._last_cts) & 0xFFFF >= 0x8000
        ):
            self._c["seals_rejected"] += 1
            self._problem(f"packet {index}: replayed seal (seen before or older than the last one)")
            return PacketVerdict(index, PacketType.SEAL, SealStatus.REPLAYED)
        # frames the seal says were sent but that never arrived
        if self._last_frame_seq is not None or self._last_cts is not None:
            last = self._last_frame_seq if self._span_frames else self._last_cts
            if last is not None and last != cts:
                gap = (cts - last) & 0xFFFF
                if gap < 0x8000:
                    self._span_missing += gap
        if self._h is not None and self._h == seal.chain_hash:
            status, reason = SpanStatus.VERIFIED, ""
        elif self._span_anomalies:
            status, reason = SpanStatus.MISMATCH, "frame packets out of order, repeated or injected"
        elif self._span_missing:
            status, reason = SpanStatus.INCOMPLETE, f"{self._span_missing} frame packet(s) missing"
        elif self._h is None or not self._root_proven:
            status, reason = SpanStatus.INCOMPLETE, "receiver joined mid-span or lost sync"
        elif not self._span_frames and cts == self._last_cts:
            status, reason = SpanStatus.INCOMPLETE, "control packets lost or altered (no frames in this span)"
        else:
            status, reason = SpanStatus.MISMATCH, "chain does not match the seal: packets altered, reordered, injected or lost"
        self._c["seals_accepted"] += 1
        span = self._close(status, index, reason)
        self._remember(seal.chain_hash)
        self._last_cts = cts
        self._expect_seq = (cts + 1) & 0xFFFF
        self._last_frame_seq = None
        self._h, self._root_proven = next_root(seal.chain_hash), True
        return PacketVerdict(index, PacketType.SEAL, SealStatus.ACCEPTED, (span,))

    def _close(self, status: SpanStatus, seal_index: int | None, reason: str) -> SpanVerdict:
        n = self._span_packets if self.header is not None else len(self._pre)
        last = (seal_index if seal_index is not None else self._n) - 1
        first = self._span_first if n else last + 1
        span = SpanVerdict(status, first, last, seal_index, self._span_frames, self._span_missing, reason)
        c = self._c
        if status is SpanStatus.VERIFIED:
            c["spans_verified"] += 1
            c["packets_verified"] += n
            c["frames_verified"] += self._span_frames
            if self._span_end:
                self._end_verified = True
        else:
            if status is SpanStatus.INCOMPLETE:
                c["spans_incomplete"] += 1
            elif status is SpanStatus.MISMATCH:
                c["spans_mismatch"] += 1
            c["packets_unverified"] += n
            c["frames_unverified"] += self._span_frames
            if n:
                self._problem(f"packets {span.first}-{span.last}: {status.value}: {reason}")
        self._span_packets = self._span_bytes = self._span_frames = self._span_missing = self._span_anomalies = 0
        self._span_end = False
        return span


def seal_packets(packets: Iterable[bytes], identity: Identity, *, interval: float = DEFAULT_SEAL_INTERVAL) -> Iterator[bytes]:
    """Seal a recorded session (for ``.flk`` files): the packets of one session, in order, header first.

    The header must name ``identity`` as signer (encode with ``extensions=(signer_extension(identity),)``).
    Header and reference chunks get a span of their own, frames are sealed every
    ``interval`` seconds of stream, and ``End`` is sealed on its own at the end.
    """
    it = iter(packets)
    try:
        header = bytes(next(it))
    except StopIteration:
        raise ValueError("no packets to seal: a session starts with its header") from None
    w = SealWriter(identity, header, interval=interval)
    yield from w.push(header, 0.0)
    opening = True
    for p in it:
        data = bytes(p)
        kind = data[3] if len(data) > 3 else -1
        if opening and kind == PacketType.REFERENCE_CHUNK:
            yield from w.push(data, 0.0)
            continue
        if opening:
            opening = False
            yield w.seal()
        if kind in (PacketType.KEY_FRAME, PacketType.PREDICTED_FRAME, PacketType.NO_FACE):
            yield from w.push(data, 0.0)
        else:
            yield from w.push_isolated([data], 0.0)
    if w.pending or opening:
        yield w.seal()


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
            if verdict.seal is not SealStatus.ACCEPTED:
                raise VerificationError(f"packet {verdict.index}: seal {verdict.seal.value.replace('_', ' ')}")  # type: ignore[union-attr]
            for span in verdict.spans:
                if not span.verified:
                    raise VerificationError(f"packets {span.first}-{span.last} failed verification ({span.status.value}: {span.reason})")
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
    if summary is not None:
        summary.append(v.summary())
    if v.header is None:
        raise VerificationError("stream holds no session header")
    if not v.signed:
        return
    if held:
        raise VerificationError(f"stream truncated: the last {len(held)} packet(s) are not covered by a seal")
    if not v.summary().end_verified:
        raise VerificationError("stream truncated: no sealed End packet")
