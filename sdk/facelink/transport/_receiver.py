"""The receiving end of a link: a ZeroMQ ROUTER -> verify -> decode, with requests back to the sender.

:class:`ReceiverCore` is the pure part (no sockets, no clocks: time is an argument):
one :class:`~facelink.security.StreamVerifier` per connection, one
:class:`~facelink.codec.StreamDecoder` per session, a reference cache, and the
requests to send back (reference, key frame, header).  :class:`Receiver` moves
messages between the socket and the core.

Policy: one session is *active* at a time.  A new session (another session id)
takes over when the active one has ended, has been silent for ``idle_switch``
seconds, or comes from the same signer and is not older (the sender restarted).
Everything that arrives is verified and decoded -- keypoint packets are tiny -- so
"newest frame wins" is the caller's business when it renders (see ``facelink receive``).

Isolation: a refusal concerns one connection only (it is recorded in ``refusals`` and
that connection's packets are dropped).  A session this receiver has retired (ended
and replaced, or replaced by a newer one) cannot come back: a connection presenting it
is refused as a replay.  A second connection joining the active session is decoded only
after its first accepted seal, whose counter must be above every seal already accepted
for that session on any connection: a replayed copy of the running session is refused
before any of its frames reach the decoder.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field, fields, replace

import zmq

from .. import bitstream as bs
from ..codec import FrameKind, KeypointFrame, StreamDecoder
from ..errors import InvalidPacket, VerificationError
from ..keypoints import ExpressionBasis
from ..security import (
    Identity,
    PacketVerdict,
    PublicIdentity,
    SealStatus,
    SpanVerdict,
    StreamVerifier,
    TrustStore,
    VerifySummary,
)
from ._control import ControlMessage, ControlType
from ._link import _KeyGate, receiver_socket
from ._refcache import ReferenceCache, reference_chunks

__all__ = ["Delivery", "FeedResult", "Receiver", "ReceiverCore", "ReceiverStats", "merge_summaries"]

#: a reference blob larger than this is refused (the decoder would have to hold it all)
MAX_REFERENCE_BYTES = 32 << 20
#: a sender that sent nothing for this long is forgotten
LINK_TIMEOUT = 30.0
#: most connections tracked at once (older idle ones are forgotten first)
MAX_LINKS = 16
#: connections kept per session (older ones are folded into one summary)
MAX_SESSION_LINKS = 8
#: refusal messages and finished-session summaries kept
MAX_HISTORY = 64
#: session ids remembered as retired (a connection presenting one again is a replay)
MAX_SEEN_SESSIONS = 4096


@dataclass(frozen=True)
class Delivery:
    """One packet as the receiver handled it.

    ``verdict`` is None when the packet was not verified (its connection was refused);
    ``frame`` is the decoded frame when the packet belongs to the active session;
    ``latency`` is arrival wall time minus the frame's capture time on the sender's
    clock (meaningful with synchronised clocks; exact on loopback).
    """

    peer: bytes
    packet: bytes
    verdict: PacketVerdict | None
    frame: KeypointFrame | None
    session_id: bytes | None
    latency: float | None = None


@dataclass(frozen=True)
class FeedResult:
    """What one packet produced: the delivery, requests to send back (peer, bytes), closed spans."""

    delivery: Delivery
    requests: tuple[tuple[bytes, bytes], ...] = ()
    spans: tuple[SpanVerdict, ...] = ()


@dataclass(frozen=True)
class ReceiverStats:
    """Counters of a receiver, plus the merged verification summary of the active (or last) session."""

    packets: int
    bytes: int
    frames: int
    frames_lost: int
    frames_no_face: int
    invalid_packets: int
    ignored_packets: int
    sessions: int
    refusals: tuple[str, ...]
    key_requests: int
    reference_requests: int
    sync_requests: int
    references_from_cache: int
    verify: VerifySummary | None

    def as_dict(self) -> dict:
        d = {f.name: getattr(self, f.name) for f in fields(self)}
        d["refusals"] = list(self.refusals)
        d["verify"] = self.verify.as_dict() if self.verify else None
        return d


def merge_summaries(items: list[VerifySummary]) -> VerifySummary | None:
    """One summary for a session seen over several connections: counters add up."""
    if not items:
        return None
    out = items[0]
    for s in items[1:]:
        out = replace(
            out,
            packets=out.packets + s.packets,
            seals_accepted=out.seals_accepted + s.seals_accepted,
            seals_rejected=out.seals_rejected + s.seals_rejected,
            spans_verified=out.spans_verified + s.spans_verified,
            spans_incomplete=out.spans_incomplete + s.spans_incomplete,
            spans_mismatch=out.spans_mismatch + s.spans_mismatch,
            packets_verified=out.packets_verified + s.packets_verified,
            packets_unverified=out.packets_unverified + s.packets_unverified,
            packets_pending=out.packets_pending + s.packets_pending,
            frames_verified=out.frames_verified + s.frames_verified,
            frames_unverified=out.frames_unverified + s.frames_unverified,
            foreign_headers=out.foreign_headers + s.foreign_headers,
            ended=out.ended or s.ended,
            end_verified=out.end_verified or s.end_verified,
            first_problem=out.first_problem or s.first_problem,
        )
    return out


def _session_summary(s: _Session) -> VerifySummary | None:
    parts = ([s.folded] if s.folded is not None else []) + [lk.verifier.summary() for lk in s.links]
    return merge_summaries(parts)


@dataclass
class _Link:
    """One connection (ZeroMQ routing id): its own verifier, since every connection starts with a sync."""

    peer: bytes
    verifier: StreamVerifier
    identity: PublicIdentity | None
    first: float
    last: float
    session_id: bytes | None = None
    refused: str | None = None
    packets: int = 0
    last_sync_req: float = -1e9
    #: joined an already running session: not decoded until its first accepted seal continues it
    probation: bool = False


@dataclass
class _Session:
    session_id: bytes
    header: bs.SessionHeader
    decoder: StreamDecoder
    signer: bytes | None
    last: float
    links: list[_Link] = field(default_factory=list)
    folded: VerifySummary | None = None  # connections no longer tracked, merged
    ended: bool = False
    cached: bool = False
    last_ref_req: float = -1e9
    last_key_req: float = -1e9
    top_counter: int = -1  # highest seal counter accepted for this session, on any connection
    top_peer: bytes | None = None


class ReceiverCore:
    """Verify and decode packets from any number of connections; pure (time is an argument)."""

    def __init__(
        self,
        trust: TrustStore | Callable[[], TrustStore] | None = None,
        *,
        insecure: bool = False,
        refcache: ReferenceCache | None = None,
        max_age: float | None = None,
        idle_switch: float = 2.0,
        basis: ExpressionBasis | None = None,
    ) -> None:
        store = trust if isinstance(trust, TrustStore) else TrustStore()
        self._trust: Callable[[], TrustStore] = trust if callable(trust) else (lambda: store)
        self.insecure = insecure
        self.refcache = refcache
        self.max_age = max_age
        self.idle_switch = idle_switch
        self.basis = basis
        self.links: dict[bytes, _Link] = {}
        self.session: _Session | None = None
        self._retired: list[VerifySummary] = []
        self._c = dict.fromkeys(
            (
                "packets",
                "bytes",
                "frames",
                "frames_lost",
                "frames_no_face",
                "invalid_packets",
                "ignored_packets",
                "sessions",
                "key_requests",
                "reference_requests",
                "sync_requests",
                "references_from_cache",
            ),
            0,
        )
        self.refusals: list[str] = []
        #: every refusal so far (``refusals`` keeps the last MAX_HISTORY messages)
        self.refused = 0
        self._seen: dict[bytes, None] = {}  # retired session ids, oldest first

    # -- public -------------------------------------------------------------------------

    @property
    def ready(self) -> bool:
        """True once the active session's header and reference are known."""
        return self.session is not None and self.session.decoder.ready

    def feed(
        self, peer: bytes, data: bytes, *, now: float, wall: float | None = None, identity: PublicIdentity | None = None
    ) -> FeedResult:
        """Handle one packet from connection ``peer``.

        ``now``: monotonic seconds (timers); ``wall``: seconds since the epoch (latency,
        session age); ``identity``: the trusted key that authenticated this connection
        (CurveZMQ), whose Ed25519 key must then be the stream's signer.
        """
        c = self._c
        c["packets"] += 1
        c["bytes"] += len(data)
        link = self._link(peer, now, identity)
        link.packets += 1
        link.last = now
        requests: list[tuple[bytes, bytes]] = []
        if link.refused is not None:
            c["ignored_packets"] += 1
            return FeedResult(Delivery(peer, data, None, None, None))
        try:
            verdict = link.verifier.feed(data, now=wall)
        except VerificationError as e:
            self._refuse(link, str(e))
            return FeedResult(Delivery(peer, data, None, None, None))
        v = link.verifier
        if link.session_id is None and v.header is not None:
            self._attach(link, now, requests)
            if link.refused is not None:
                return FeedResult(Delivery(peer, data, verdict, None, None), tuple(requests), verdict.spans)
        if v.header is None and now - link.first >= 0.5 and now - link.last_sync_req >= 1.0:
            link.last_sync_req = now
            c["sync_requests"] += 1
            requests.append((peer, bytes(ControlMessage(ControlType.SYNC_REQUEST))))
        s = self.session
        if s is not None and link.session_id == s.session_id and verdict.kind is bs.PacketType.SEAL and verdict.seal is SealStatus.ACCEPTED:
            try:
                counter = bs.Seal.parse(data).counter
            except InvalidPacket:  # cannot happen for an accepted seal; refuse rather than guess
                counter = -1
            if counter <= s.top_counter and link.peer != s.top_peer:
                self._refuse(
                    link,
                    f"a connection replayed seal {counter} of session {s.session_id.hex()[:16]}, already accepted "
                    "from another connection; that connection is refused",
                )
                return FeedResult(Delivery(peer, data, verdict, None, None), tuple(requests), verdict.spans)
            if counter > s.top_counter:
                s.top_counter, s.top_peer = counter, link.peer
            link.probation = False
        frame = None
        latency = None
        if s is not None and link.session_id == s.session_id and link.probation:
            c["ignored_packets"] += 1
        elif s is not None and link.session_id == s.session_id and not verdict.note:
            s.last = now
            frame = self._decode(s, link, data, now, requests)
            if frame is not None and wall is not None and frame.decodable:
                latency = wall - (s.header.created_us / 1e6 + frame.time)
        elif link.session_id is not None:
            c["ignored_packets"] += 1
        return FeedResult(Delivery(peer, data, verdict, frame, link.session_id, latency), tuple(requests), verdict.spans)

    def tick(self, now: float) -> list[tuple[bytes, bytes]]:
        """Periodic work: re-request a missing reference or header; forget dead connections."""
        out: list[tuple[bytes, bytes]] = []
        s = self.session
        if s is not None and not s.decoder.ready and s.links and now - s.last_ref_req >= 2.0:
            s.last_ref_req = now
            self._c["reference_requests"] += 1
            out.append((s.links[-1].peer, bytes(ControlMessage(ControlType.REFERENCE_REQUEST, s.header.reference_digest[:8]))))
        for peer, link in list(self.links.items()):
            if now - link.last > LINK_TIMEOUT:
                self.drop_link(peer)
        return out

    def drop_link(self, peer: bytes) -> None:
        """Forget a connection (it went away); its counts stay in the statistics."""
        link = self.links.pop(peer, None)
        if link is not None and (self.session is None or link not in self.session.links):
            link.verifier.finish()
            if link.verifier.header is not None:
                self._retired.append(link.verifier.summary())
                del self._retired[:-MAX_HISTORY]

    def summary(self) -> VerifySummary | None:
        """Merged verification summary of the active session (or the last one)."""
        s = self.session
        if s is not None:
            return _session_summary(s)
        return self._retired[-1] if self._retired else None

    def stats(self) -> ReceiverStats:
        c = self._c
        return ReceiverStats(**c, refusals=tuple(self.refusals), verify=self.summary())

    # -- internals ----------------------------------------------------------------------

    def _link(self, peer: bytes, now: float, identity: PublicIdentity | None) -> _Link:
        link = self.links.get(peer)
        if link is None:
            if len(self.links) >= MAX_LINKS:
                oldest = min(self.links.values(), key=lambda lk: lk.last)
                self.drop_link(oldest.peer)
            verifier = StreamVerifier(self._trust(), insecure=self.insecure, max_age=self.max_age)
            link = _Link(peer, verifier, identity, now, now)
            self.links[peer] = link
        return link

    def _refuse(self, link: _Link, message: str) -> None:
        link.refused = message
        self.refused += 1
        self.refusals.append(message)
        del self.refusals[:-MAX_HISTORY]

    def _retire(self, session_id: bytes) -> None:
        self._seen[session_id] = None
        while len(self._seen) > MAX_SEEN_SESSIONS:
            del self._seen[next(iter(self._seen))]

    def _attach(self, link: _Link, now: float, requests: list[tuple[bytes, bytes]]) -> None:
        v = link.verifier
        hdr = v.header
        if hdr is None or v.header_bytes is None:
            return
        if link.identity is not None and not self.insecure and v.signer_key != link.identity.ed25519:
            self._refuse(
                link,
                f"stream signed by key {v.summary().signer} but the link is authenticated as {link.identity.fingerprint}; refused",
            )
            return
        if hdr.reference_size > MAX_REFERENCE_BYTES:
            self._refuse(link, f"session reference is {hdr.reference_size} bytes (limit {MAX_REFERENCE_BYTES}); refused")
            return
        s = self.session
        if hdr.session_id in self._seen and (s is None or s.session_id != hdr.session_id):
            self._refuse(link, f"session {hdr.session_id.hex()[:16]} was already retired by this receiver: a replayed session; refused")
            return
        link.session_id = hdr.session_id
        if s is not None and s.session_id == hdr.session_id:
            link.probation = True  # until its first accepted seal shows it continues the session
            s.links.append(link)
            if len(s.links) > MAX_SESSION_LINKS:
                old = s.links.pop(0)
                old.verifier.finish()
                s.folded = merge_summaries([x for x in (s.folded, old.verifier.summary()) if x is not None])
            return
        restarted = s is not None and s.signer == v.signer_key and hdr.created_us >= s.header.created_us
        if s is not None and not (s.ended or now - s.last >= self.idle_switch or restarted):
            if s.signer == v.signer_key:  # an older session of the same signer while a newer one runs: a replay
                self._refuse(link, f"session {hdr.session_id.hex()[:16]} is older than the running session of the same sender: a replay; refused")
            return  # another session is active: this one waits (its packets are counted as ignored)
        decoder = StreamDecoder(basis=self.basis)
        try:
            decoder.feed(v.header_bytes)
        except InvalidPacket as e:
            self._refuse(link, f"session header unusable: {e}")
            return
        if s is not None:
            self._retire(s.session_id)
            for lk in s.links:
                lk.verifier.finish()
            merged = _session_summary(s)
            if merged is not None:
                self._retired.append(merged)
                del self._retired[:-MAX_HISTORY]
        self.session = s = _Session(hdr.session_id, hdr, decoder, v.signer_key, now, [link])
        self._c["sessions"] += 1
        blob = self.refcache.get(hdr.reference_digest) if self.refcache is not None else None
        if blob is not None:
            try:
                for chunk in reference_chunks(blob, hdr.version):
                    decoder.feed(chunk)
            except InvalidPacket:
                pass
            if decoder.ready:
                s.cached = True
                self._c["references_from_cache"] += 1
        if not decoder.ready:
            s.last_ref_req = now
            self._c["reference_requests"] += 1
            requests.append((link.peer, bytes(ControlMessage(ControlType.REFERENCE_REQUEST, hdr.reference_digest[:8]))))

    def _decode(self, s: _Session, link: _Link, data: bytes, now: float, requests: list[tuple[bytes, bytes]]) -> KeypointFrame | None:
        was_ready = s.decoder.ready
        try:
            frame = s.decoder.feed(data)
        except InvalidPacket:
            self._c["invalid_packets"] += 1
            return None
        if s.decoder.ended:
            s.ended = True
        if not was_ready and s.decoder.ready and not s.cached:
            s.cached = True
            if self.refcache is not None and s.decoder.reference is not None:
                self.refcache.put(s.decoder.reference.blob)
        if frame is None:
            return None
        c = self._c
        c["frames"] += 1
        if frame.kind is FrameKind.LOST:
            c["frames_lost"] += 1
            if s.decoder.ready and now - s.last_key_req >= 0.25:
                s.last_key_req = now
                c["key_requests"] += 1
                requests.append((link.peer, bytes(ControlMessage(ControlType.KEY_REQUEST))))
        elif frame.kind is FrameKind.NO_FACE:
            c["frames_no_face"] += 1
        return frame


class Receiver:
    """Listens on a ZeroMQ ROUTER and feeds a :class:`ReceiverCore`; replies go back to each sender.

    With ``curve=True`` (the default) the socket is a CurveZMQ server keyed by
    ``identity`` and only Curve keys of trusted, unrevoked senders complete the
    handshake; each connection must then carry a stream signed by that same sender.
    ``trust_dir`` (if given) is re-read when it changes, so a revocation takes effect
    for new connections without a restart.
    """

    def __init__(
        self,
        endpoint: str,
        identity: Identity | None,
        *,
        trust: TrustStore | None = None,
        trust_dir: str | None = None,
        curve: bool = True,
        insecure: bool = False,
        refcache: ReferenceCache | None = None,
        max_age: float | None = None,
        clock: Callable[[], float] = time.monotonic,
        wall: Callable[[], float] = time.time,
    ) -> None:
        if curve and identity is None:
            raise ValueError("a CurveZMQ receiver needs an identity (its Curve key pair), or curve=False")
        self.endpoint = endpoint
        self.identity = identity
        self.curve = curve
        self.trust_dir = trust_dir
        self._store = trust if trust is not None else (TrustStore.load(trust_dir) if trust_dir else TrustStore())
        self._store_stamp = self._stamp()
        self._store_checked = 0.0
        self.clock = clock
        self.wall = wall
        self.core = ReceiverCore(self.trust, insecure=insecure, refcache=refcache, max_age=max_age)
        self._ctx: zmq.Context | None = None
        self._sock: zmq.Socket | None = None
        self._auth: object | None = None
        self.gate: _KeyGate | None = None
        self.bound: str | None = None
        self.replies_failed = 0
        self.multipart_dropped = 0
        self.unauthorised_dropped = 0

    # -- trust, re-read when the directory changes ------------------------------------------

    def _stamp(self) -> tuple[float, ...]:
        if not self.trust_dir:
            return ()
        import os

        out = []
        for p in (self.trust_dir, os.path.join(self.trust_dir, "revoked")):
            try:
                out.append(os.stat(p).st_mtime)
            except OSError:
                out.append(0.0)
        return tuple(out)

    def trust(self) -> TrustStore:
        """The current trust store (re-read at most once a second when ``trust_dir`` changed)."""
        if self.trust_dir and time.monotonic() - self._store_checked >= 1.0:
            self._store_checked = time.monotonic()
            stamp = self._stamp()
            if stamp != self._store_stamp:
                try:
                    self._store = TrustStore.load(self.trust_dir)
                    self._store_stamp = stamp
                except Exception:  # noqa: BLE001 - an unreadable store must refuse everyone, not crash
                    self._store = TrustStore()
        return self._store

    def _authorize(self, curve_key: bytes) -> bool:
        return self.trust().by_curve(curve_key) is not None

    # -- lifecycle ----------------------------------------------------------------------------

    def open(self) -> str:
        """Bind and start listening; returns the bound endpoint (``tcp://127.0.0.1:*`` picks a port)."""
        if self._sock is not None:
            return self.bound  # type: ignore[return-value]
        self._ctx = zmq.Context()
        ident = self.identity
        try:
            self._sock, self.bound, self._auth, self.gate = receiver_socket(
                self._ctx,
                self.endpoint,
                curve_secret=ident.curve_secret if self.curve and ident else None,
                curve_public=ident.public.curve if self.curve and ident else None,
                authorize=self._authorize if self.curve else None,
            )
        except BaseException:
            self._ctx.term()
            self._ctx = None
            raise
        return self.bound

    def close(self) -> ReceiverStats:
        if self._sock is not None:
            self._sock.close(0)
            self._sock = None
            if self._auth is not None:
                self._auth.stop()  # type: ignore[attr-defined]
                self._auth = None
            self._ctx.term()  # type: ignore[union-attr]
            self._ctx = None
        return self.core.stats()

    def __enter__(self) -> Receiver:
        self.open()
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    # -- driving --------------------------------------------------------------------------------

    def poll(self, timeout: float, max_messages: int = 1024) -> list[FeedResult]:
        """Wait up to ``timeout`` s for packets, then handle every queued one (at most ``max_messages``)."""
        sock = self._sock
        if sock is None:
            raise RuntimeError("Receiver.open() first")
        out: list[FeedResult] = []
        if sock.poll(max(0, int(timeout * 1000)), zmq.POLLIN):
            for _ in range(max_messages):
                try:
                    frames = sock.recv_multipart(zmq.NOBLOCK, copy=False)
                except zmq.Again:
                    break
                if len(frames) != 2:
                    self.multipart_dropped += 1
                    continue
                peer, msg = frames[0].bytes, frames[1]
                identity = None
                if self.curve:
                    try:
                        user = msg.get("User-Id")
                    except zmq.ZMQError:
                        user = None
                    identity = self.trust().by_curve(user.encode("ascii")) if isinstance(user, str) else None
                    if identity is None:
                        self.unauthorised_dropped += 1  # revoked since it connected
                        continue
                res = self.core.feed(peer, msg.bytes, now=self.clock(), wall=self.wall(), identity=identity)
                self._reply(res.requests)
                out.append(res)
        self._reply(tuple(self.core.tick(self.clock())))
        return out

    def _reply(self, requests) -> None:
        for peer, data in requests:
            try:
                self._sock.send_multipart([peer, data], zmq.NOBLOCK)  # type: ignore[union-attr]
            except (zmq.Again, zmq.ZMQError):
                self.replies_failed += 1
