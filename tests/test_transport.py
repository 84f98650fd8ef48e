"""Transport: control messages, reference cache, the receiver core, and real ZeroMQ links on loopback.

Every socket test uses a random loopback port and bounded waits: a hung test is a failed test.
"""

from __future__ import annotations

import random
import threading
import time

import pytest
import zmq
from _support import FUZZ
from facelink import bitstream as bs
from facelink.codec import QUALITY_PRESETS, FrameKind
from facelink.errors import InvalidPacket
from facelink.security import (
    Identity,
    PublicIdentity,
    SpanStatus,
    TrustStore,
    generate_identity,
)
from facelink.transport import (
    ControlMessage,
    ControlType,
    LoopbackLink,
    Receiver,
    ReceiverCore,
    ReferenceCache,
    Sender,
    check_endpoint,
    reference_chunks,
)
from hypothesis import given
from hypothesis import strategies as st
from test_codec import _motion, _reference
from test_security_seal import make_stream, trusted

PARAMS = QUALITY_PRESETS["medium"].with_(key_interval=30)
#: the longest any socket test waits for something
WAIT = 5.0


@pytest.fixture(scope="module")
def scene():
    ref = _reference(size=(64, 64))
    return ref, _motion(ref, n=240)


@pytest.fixture(scope="module")
def ids():
    return {n: generate_identity(n) for n in ("tx", "rx", "mallory")}


# ---------------------------------------------------------------- control messages


@pytest.mark.parametrize(
    "msg, wire",
    [
        (ControlMessage(ControlType.SYNC_REQUEST), b"FC\x01\x01"),
        (ControlMessage(ControlType.REFERENCE_REQUEST, b"\xaa" * 8), b"FC\x01\x02" + b"\xaa" * 8),
        (ControlMessage(ControlType.KEY_REQUEST), b"FC\x01\x03"),
    ],
)
def test_control_messages_round_trip_byte_exact(msg, wire):
    assert bytes(msg) == wire
    assert ControlMessage.parse(wire) == msg


@pytest.mark.parametrize(
    "wire, error",
    [
        (b"FC\x01", "control message truncated: 3 bytes"),
        (b"XX\x01\x01", "bad control magic 5858"),
        (b"FC\x02\x01", "unsupported control version 2"),
        (b"FC\x01\x09", "unknown control type 0x09"),
        (b"FC\x01\x01\x00", "SYNC_REQUEST: body is 1 bytes, expected 0"),
        (b"FC\x01\x02" + b"\x00" * 7, "REFERENCE_REQUEST: body is 7 bytes, expected 8"),
    ],
)
def test_control_message_errors(wire, error):
    with pytest.raises(InvalidPacket, match=error):
        ControlMessage.parse(wire)


@FUZZ
@given(st.binary(max_size=20))
def test_fuzz_control_parser(data):
    try:
        msg = ControlMessage.parse(data)
    except InvalidPacket:
        return
    assert bytes(msg) == data


# ---------------------------------------------------------------- reference cache


def test_reference_cache_round_trip_corruption_and_eviction(tmp_path):
    cache = ReferenceCache(tmp_path / "rc", max_entries=2)
    blobs = [bytes([i]) * 1000 for i in range(3)]
    import hashlib

    digests = [hashlib.sha256(b).digest() for b in blobs]
    assert cache.get(digests[0]) is None
    p = cache.put(blobs[0])
    assert cache.get(digests[0]) == blobs[0]
    p.write_bytes(b"tampered")
    assert cache.get(digests[0]) is None and not p.exists()  # checked against its name, then dropped
    for b in blobs:
        cache.put(b)
        time.sleep(0.01)
    assert len(list((tmp_path / "rc").iterdir())) == 2 and cache.get(digests[2]) == blobs[2]


def test_reference_chunks_reassemble_in_a_decoder(scene):
    from facelink.codec import StreamDecoder

    stream = make_stream(n=1)
    ref = scene[0]
    dec = StreamDecoder()
    dec.feed(stream[0])
    for c in reference_chunks(ref.blob):
        dec.feed(c)
    assert dec.ready and dec.reference.blob == ref.blob


# ---------------------------------------------------------------- the receiver core, in memory


def _feed(core, packets, peer=b"A", t0=0.0, identity=None):
    results = []
    for i, p in enumerate(packets):
        results.append(core.feed(peer, p, now=t0 + i / 30, wall=None, identity=identity))
    return results


def _requests(results):
    return [ControlMessage.parse(d).kind for r in results for _, d in r.requests]


def test_core_decodes_verifies_and_asks_for_a_missing_reference(scene, tmp_path):
    stream = make_stream(n=60, live=True)
    without_ref = [p for p in stream if p[3] != bs.PacketType.REFERENCE_CHUNK]
    cache = ReferenceCache(tmp_path / "rc")
    core = ReceiverCore(trusted("alice"), refcache=cache)
    results = _feed(core, without_ref[:10])
    assert ControlType.REFERENCE_REQUEST in _requests(results)
    assert not core.ready
    # the sender answers with the chunks (in their own sealed span)
    ref_span = [p for p in stream if p[3] == bs.PacketType.REFERENCE_CHUNK]
    _feed(core, ref_span, t0=1.0)
    assert core.ready and cache.get(scene[0].digest) == scene[0].blob
    # a second receiver with the warm cache never asks
    core2 = ReceiverCore(trusted("alice"), refcache=cache)
    results = _feed(core2, without_ref)
    assert ControlType.REFERENCE_REQUEST not in _requests(results)
    st_ = core2.stats()
    assert st_.references_from_cache == 1 and st_.frames == 60 and st_.frames_lost == 0


def test_core_asks_for_a_key_frame_after_loss(scene):
    stream = make_stream(n=90, live=True)
    f = [i for i, p in enumerate(stream) if p[3] == bs.PacketType.PREDICTED_FRAME][5]
    core = ReceiverCore(trusted("alice"))
    results = _feed(core, stream[:f] + stream[f + 1 :])
    assert ControlType.KEY_REQUEST in _requests(results)
    assert core.stats().frames_lost > 0


def test_core_switches_to_a_restarted_senders_new_session():
    first = make_stream(n=30, live=True)
    second = make_stream(n=30, live=True, session=b"\x33" * 16)
    core = ReceiverCore(trusted("alice"))
    _feed(core, first[:40], peer=b"A")  # no End: the sender "crashed"
    _feed(core, second, peer=b"B", t0=0.5)  # same signer, new connection, new session
    assert core.stats().sessions == 2 and core.session.session_id == b"\x33" * 16
    assert core.summary().end_verified


def test_core_refuses_untrusted_signers_and_link_signer_mismatch(ids):
    stream = make_stream(n=10, live=True)
    core = ReceiverCore(TrustStore())
    results = _feed(core, stream)
    assert core.refusals and "not trusted" in core.refusals[0]
    assert all(r.delivery.frame is None for r in results)
    core = ReceiverCore(trusted("alice"))
    _feed(core, stream, identity=ids["mallory"].public)  # link authenticated as someone else
    assert "link is authenticated as" in core.refusals[0]
    assert core.stats().frames == 0


def test_core_a_refused_connection_does_not_stop_the_others(ids):
    from test_security_seal import _ident

    good = make_stream(n=30, live=True)
    bad = make_stream(_ident("mallory"), n=30, live=True, session=b"\x44" * 16)  # untrusted signer
    core = ReceiverCore(trusted("alice"))
    _feed(core, bad[:12], peer=b"M")
    _feed(core, good, peer=b"A", t0=0.1)
    _feed(core, bad[12:], peer=b"M", t0=0.2)
    assert core.refused == 1 and "not trusted" in core.refusals[0]
    assert core.session.session_id == b"\x11" * 16 and core.summary().end_verified and core.stats().frames == 30


def test_core_an_older_session_of_the_running_sender_cannot_take_over():
    running = make_stream(n=30, live=True, session=b"\x55" * 16, created_us=1_700_000_100_000_000)
    old = make_stream(n=30, live=True, session=b"\x66" * 16, created_us=1_700_000_000_000_000)  # recorded earlier
    core = ReceiverCore(trusted("alice"))
    _feed(core, running[:30], peer=b"A")
    frames = core.stats().frames
    _feed(core, old, peer=b"R", t0=0.2)  # the replay, while the running session is live
    assert core.session.session_id == b"\x55" * 16 and core.stats().sessions == 1
    assert core.refused == 1 and "older than the running session" in core.refusals[0]
    assert core.stats().frames == frames


def test_core_a_replayed_copy_of_the_running_session_is_refused_before_decoding():
    stream = make_stream(n=60, live=True)
    core = ReceiverCore(trusted("alice"))
    half = len(stream) // 2
    _feed(core, stream[:half], peer=b"A")
    frames = core.stats().frames
    results = _feed(core, stream, peer=b"R", t0=0.5)  # the same packets again, on another connection
    assert core.refused == 1 and "replayed seal" in core.refusals[0]
    assert all(r.delivery.frame is None for r in results) and core.stats().frames == frames
    _feed(core, stream[half:], peer=b"A", t0=1.0)  # the genuine connection carries on undisturbed
    assert core.summary().end_verified and core.stats().frames == 60


def test_core_a_retired_session_cannot_come_back():
    first = make_stream(n=20, live=True)
    second = make_stream(n=20, live=True, session=b"\x33" * 16)
    core = ReceiverCore(trusted("alice"))
    _feed(core, first, peer=b"A")  # complete, End verified
    _feed(core, second, peer=b"B", t0=1.0)  # takes over (the first ended)
    _feed(core, first, peer=b"R", t0=2.0)  # the first one replayed after it was retired
    assert core.session.session_id == b"\x33" * 16 and core.stats().sessions == 2
    assert core.refused == 1 and "already retired" in core.refusals[0]


# ---------------------------------------------------------------- real sockets


def test_endpoint_checks():
    check_endpoint("tcp://127.0.0.1:5555", bind=False)
    check_endpoint("tcp://*:5555", bind=True)
    for bad, bind in (("127.0.0.1:5555", False), ("udp://x:1", False), ("tcp://*:5555", False), ("tcp://h:0", False)):
        with pytest.raises(Exception, match="tcp://HOST:PORT|a host"):
            check_endpoint(bad, bind=bind)


def _sender(endpoint, ident, scene, *, receiver_key=None, curve=True, **kw):
    ref = scene[0]
    return Sender(endpoint, ident, reference=ref, params=PARAMS, width=64, height=64, fps=30, receiver_key=receiver_key, curve=curve, **kw)


def _pump(sender, receiver, seconds, until=None):
    """Service both ends for up to ``seconds`` (or until ``until()``); returns receiver results."""
    out = []
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if sender is not None:
            sender.service(0.002)
        if receiver is not None:
            out.extend(receiver.poll(0.002))
        if until is not None and until():
            break
    return out


def test_loopback_end_to_end_with_curve_and_seals(scene):
    ref, motion = scene
    with LoopbackLink(ref, PARAMS, width=64, height=64, fps=30) as link:
        got = []
        for i in range(90):
            got += link.send(i, i / 30, motion[i])
        report = link.close()
    frames = [d.frame for d in got if d.frame is not None]
    assert [f.index for f in frames] == list(range(90))
    assert all(f.kind in (FrameKind.KEY, FrameKind.PREDICTED) for f in frames)
    v = report.receiver.verify
    assert v.intact and v.frames_verified == 90 and v.end_verified
    assert report.sender.seals == v.seals_accepted  # zero dropped seals
    assert all(d.latency is not None and d.latency < 2.0 for d in got if d.frame is not None)


def test_unauthorised_curve_client_receives_nothing(scene, ids):
    rx, tx, mallory = ids["rx"], ids["tx"], ids["mallory"]
    with Receiver("tcp://127.0.0.1:*", rx, trust=TrustStore(keys=(tx.public,))) as receiver:
        s = _sender(receiver.bound, mallory, scene, receiver_key=rx.public.curve)
        s.open()
        try:
            _pump(s, receiver, 1.0, until=lambda: s.stats.auth_failures > 0)
            for i in range(5):
                assert not s.send_frame(i, i / 30, scene[1][i])
            _pump(s, receiver, 0.3)
            assert s.stats.auth_failures > 0 and not s.connected and s.stats.frames_sent == 0
        finally:
            s.close(linger=0)
        # a client without Curve at all gets nowhere either
        ctx = zmq.Context.instance()
        raw = ctx.socket(zmq.DEALER)
        raw.setsockopt(zmq.LINGER, 0)
        raw.connect(receiver.bound)
        try:
            raw.send(make_stream(n=1)[0], zmq.NOBLOCK)  # queued for a handshake that never succeeds
        except zmq.Again:
            pass
        _pump(None, receiver, 0.5)
        raw.close(0)
        assert receiver.core.stats().packets == 0
        assert receiver.gate.denied >= 1 and receiver.gate.allowed == 0


def test_trusted_link_key_with_a_stream_signed_by_another_key_is_refused(scene, ids):
    rx, tx, mallory = ids["rx"], ids["tx"], ids["mallory"]
    # mallory signs, but connects with tx's (trusted) Curve key
    hybrid = Identity("tx", mallory.signing_key, tx.curve_secret, PublicIdentity("tx", mallory.public.ed25519, tx.public.curve))
    trust = TrustStore(keys=(tx.public, mallory.public))
    with Receiver("tcp://127.0.0.1:*", rx, trust=trust) as receiver:
        with _sender(receiver.bound, hybrid, scene, receiver_key=rx.public.curve) as s:
            s.start_session()
            _pump(s, receiver, WAIT, until=lambda: bool(receiver.core.refusals))
        assert "link is authenticated as" in receiver.core.refusals[0]
        assert receiver.core.stats().frames == 0


def _lossy_relay(front: str, back: str, loss: float, seed: int, stop: threading.Event, ready: list):
    """ROUTER facing the sender, DEALER towards the receiver; drops ``loss`` of the forward packets."""
    ctx = zmq.Context()
    a = ctx.socket(zmq.ROUTER)
    b = ctx.socket(zmq.DEALER)
    for s in (a, b):
        s.setsockopt(zmq.LINGER, 0)
    a.bind(front)
    ready.append(a.getsockopt_string(zmq.LAST_ENDPOINT))
    b.connect(back)
    rnd = random.Random(seed)
    peer = None
    poller = zmq.Poller()
    poller.register(a, zmq.POLLIN)
    poller.register(b, zmq.POLLIN)
    try:
        while not stop.is_set():
            for sock, _ in poller.poll(20):
                if sock is a:
                    peer, data = a.recv_multipart()
                    if rnd.random() >= loss:
                        b.send(data)
                elif peer is not None:
                    a.send_multipart([peer, b.recv()])
                else:
                    b.recv()
    finally:
        a.close(0)
        b.close(0)
        ctx.term()


def test_twenty_percent_packet_loss_recovers_within_one_key_interval(scene, ids):
    tx, motion = ids["tx"], scene[1]
    with Receiver("tcp://127.0.0.1:*", None, trust=TrustStore(keys=(tx.public,)), curve=False) as receiver:
        stop, ready = threading.Event(), []
        relay = threading.Thread(target=_lossy_relay, args=("tcp://127.0.0.1:*", receiver.bound, 0.2, 3, stop, ready))
        relay.start()
        try:
            deadline = time.monotonic() + WAIT
            while not ready and time.monotonic() < deadline:
                time.sleep(0.01)
            with _sender(ready[0], tx, scene, curve=False) as s:
                s.start_session()
                _pump(s, receiver, WAIT, until=lambda: receiver.core.ready)
                assert receiver.core.ready, "header and reference get through 20 % loss (re-requested)"
                frames = []
                for i in range(240):
                    s.send_frame(i, i / 30, motion[i])
                    frames += [r.delivery.frame for r in _pump(s, receiver, 1 / 60) if r.delivery.frame is not None]
                frames += [r.delivery.frame for r in _pump(s, receiver, 0.5) if r.delivery.frame is not None]
        finally:
            stop.set()
            relay.join(WAIT)
    assert not relay.is_alive()
    assert 120 < len(frames) < 240  # about 20 % lost
    run = longest = 0
    for f in frames:
        run = run + 1 if f.kind is FrameKind.LOST else 0
        longest = max(longest, run)
    assert longest < PARAMS.key_interval  # key requests make it much shorter in practice
    st_ = receiver.core.stats()
    assert st_.key_requests > 0
    v = st_.verify
    assert v.seals_rejected == 0 and v.spans_mismatch == 0  # loss is reported as loss, never as tampering
    assert v.spans_incomplete > 0


def test_late_join_restart_and_refcache(scene, ids, tmp_path):
    """Receiver starts after the sender; then restarts on the same endpoint with a warm reference cache."""
    from test_cli_transport import _endpoint

    tx, rx, motion = ids["tx"], ids["rx"], scene[1]
    trust = TrustStore(keys=(tx.public,))
    cache = ReferenceCache(tmp_path / "rc")
    endpoint = _endpoint()  # ipc: no other process can take it between the two receivers
    s = _sender(endpoint, tx, scene, receiver_key=rx.public.curve)
    s.open()
    s.start_session()  # the session exists before any receiver does
    try:
        # no receiver yet: frames are skipped, nothing piles up
        for i in range(10):
            assert not s.send_frame(i, i / 30, motion[i])
        assert s.stats.frames_skipped == 10 and s.stats.backlog_max == 0
        index = 10
        for round_ in range(2):
            with Receiver(endpoint, rx, trust=trust, refcache=cache) as receiver:
                _pump(s, receiver, WAIT, until=lambda: receiver.core.ready)
                got = []
                for _ in range(45):
                    s.send_frame(index, index / 30, motion[index % len(motion)])
                    index += 1
                    got += _pump(s, receiver, 0.005)
                got += _pump(s, receiver, 0.8, until=lambda: receiver.core.summary().spans_verified >= 4)
                st_ = receiver.core.stats()
                v = st_.verify
                assert v.frames_verified > 0 and v.spans_mismatch == 0 and v.seals_rejected == 0
                faces = [r.delivery.frame for r in got if r.delivery.frame is not None and r.delivery.frame.has_face]
                assert faces, "frames decode after (re)joining"
                if round_ == 0:
                    assert st_.reference_requests >= 1 and st_.references_from_cache == 0
                else:  # restarted receiver: the reference comes from its cache, no request
                    assert st_.references_from_cache == 1 and st_.reference_requests == 0
            _pump(s, None, 0.3, until=lambda: not s.connected)
        assert s.stats.connects == 2
    finally:
        s.close(linger=0)


def test_sender_restart_starts_a_new_session(scene, ids):
    tx, rx, motion = ids["tx"], ids["rx"], scene[1]
    with Receiver("tcp://127.0.0.1:*", rx, trust=TrustStore(keys=(tx.public,))) as receiver:
        sessions = []
        for run_ in range(2):
            with _sender(receiver.bound, tx, scene, receiver_key=rx.public.curve) as s:
                assert s.wait_connected(WAIT)
                s.start_session()
                _pump(s, receiver, WAIT, until=lambda: receiver.core.ready and receiver.core.session.session_id == s.session_id)
                for i in range(20):
                    s.send_frame(i, i / 30, motion[i])
                    _pump(s, receiver, 0.002)
                sessions.append(s.session_id)
            _pump(None, receiver, WAIT, until=lambda: receiver.core.summary().end_verified)
            assert receiver.core.summary().end_verified
        assert receiver.core.stats().sessions == 2 and receiver.core.session.session_id == sessions[1]
        assert sessions[0] != sessions[1]


def test_single_frame_messages_only(scene, ids):
    tx = ids["tx"]
    with Receiver("tcp://127.0.0.1:*", None, trust=TrustStore(keys=(tx.public,)), curve=False) as receiver:
        ctx = zmq.Context()
        raw = ctx.socket(zmq.DEALER)
        raw.setsockopt(zmq.LINGER, 0)
        raw.connect(receiver.bound)
        stream = make_stream(n=5, live=True)
        raw.send_multipart(stream[:2])  # a multipart message is not a packet
        _pump(None, receiver, 1.0, until=lambda: receiver.multipart_dropped > 0)
        raw.close(0)
        ctx.term()
        assert receiver.multipart_dropped == 1 and receiver.core.stats().packets == 0


def test_unverifiable_spans_are_flagged_on_the_live_path(ids):
    """A tampered frame sent over a real link: the span is MISMATCH, the rest verifies."""
    tx = ids["tx"]
    stream = make_stream(tx, n=60, live=True)
    f = [i for i, p in enumerate(stream) if p[3] == bs.PacketType.PREDICTED_FRAME][20]
    bad = bytearray(stream[f])
    bad[-1] ^= 1
    stream[f] = bytes(bad)
    with Receiver("tcp://127.0.0.1:*", None, trust=TrustStore(keys=(tx.public,)), curve=False) as receiver:
        ctx = zmq.Context()
        raw = ctx.socket(zmq.DEALER)
        raw.setsockopt(zmq.LINGER, 0)
        raw.connect(receiver.bound)
        time.sleep(0.05)
        for p in stream:
            raw.send(p)
        got = _pump(None, receiver, WAIT, until=lambda: (receiver.core.summary() or None) and receiver.core.summary().end_verified)
        raw.close(0)
        ctx.term()
    spans = [sp for r in got for sp in r.spans]
    assert [sp.status for sp in spans].count(SpanStatus.MISMATCH) == 1
    bad_span = next(sp for sp in spans if sp.status is SpanStatus.MISMATCH)
    flagged = [r.delivery for r in got if bad_span.covers(r.delivery.verdict.index)]
    assert any(d.frame is not None for d in flagged)  # frames in that span are identifiable as unverified


# ---------------------------------------------------------------- maximum message size (issue #20 item 4)

_OVERSIZE_CHILD = r"""
import json, resource, sys, time
import zmq
from facelink.transport._link import receiver_socket

ctx = zmq.Context()
sock, bound, _, _ = receiver_socket(ctx, "tcp://127.0.0.1:*", curve_secret=None, curve_public=None, authorize=None)
before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
print(bound, flush=True)
got, deadline = [], time.monotonic() + 20
while time.monotonic() < deadline and not got:
    if sock.poll(200):
        got.append(len(sock.recv_multipart()[-1]))
after = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
print(json.dumps({"received": got, "rss_growth_kib": after - before}), flush=True)
sock.close(0)
ctx.term()
"""


def test_every_socket_limits_the_message_size_to_the_largest_packet():
    from facelink.bitstream import MAX_CHUNK_DATA, ReferenceChunk
    from facelink.transport import MAX_MESSAGE_SIZE, MAX_PACKET_SIZE
    from facelink.transport._link import receiver_socket, sender_socket

    largest = ReferenceChunk(b"\x01" * 8, 0, 1, b"\x00" * MAX_CHUNK_DATA)
    assert len(bytes(largest)) == MAX_PACKET_SIZE <= MAX_MESSAGE_SIZE < 2 * MAX_PACKET_SIZE
    ctx = zmq.Context()
    try:
        r, bound, _, _ = receiver_socket(ctx, "tcp://127.0.0.1:*", curve_secret=None, curve_public=None, authorize=None)
        s, mon = sender_socket(ctx, bound, curve_secret=None, curve_public=None, server_key=None)
        assert r.getsockopt(zmq.MAXMSGSIZE) == MAX_MESSAGE_SIZE and s.getsockopt(zmq.MAXMSGSIZE) == MAX_MESSAGE_SIZE
        for x in (s, mon, r):
            x.close(0)
    finally:
        ctx.term()


def test_an_oversize_message_is_dropped_without_being_allocated(tmp_path):
    import json
    import os
    import subprocess
    import sys

    env = dict(os.environ, PYTHONPATH=os.pathsep.join(p for p in sys.path if p))
    child = subprocess.Popen([sys.executable, "-c", _OVERSIZE_CHILD], stdout=subprocess.PIPE, text=True, env=env)
    ctx = zmq.Context()
    try:
        bound = child.stdout.readline().strip()
        assert bound.startswith("tcp://"), bound
        big = ctx.socket(zmq.DEALER)  # a hostile peer without any limit of its own
        big.setsockopt(zmq.LINGER, 2000)
        big.connect(bound)
        big.send(bytes(96 << 20))  # 96 MiB in one message
        time.sleep(0.5)
        small = ctx.socket(zmq.DEALER)
        small.setsockopt(zmq.LINGER, 2000)
        small.connect(bound)
        small.send(b"FL\x01\x05" + bytes(3))
        out, _ = child.communicate(timeout=30)
        report = json.loads(out.strip().splitlines()[-1])
        assert report["received"] == [7]  # the small message arrived, the oversize one never did
        assert report["rss_growth_kib"] < 32 * 1024  # nowhere near the 96 MiB it would cost to buffer
    finally:
        if child.poll() is None:
            child.kill()
            child.wait()
        ctx.destroy(linger=0)
