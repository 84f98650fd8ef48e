"""ZeroMQ socket setup for a FaceLink link: the receiver binds a ROUTER, each sender connects a DEALER.

Every packet is one single-frame message.  Options favour latency over completeness:
small high-water marks, LINGER 0 (a clean close lingers briefly on purpose), no
queueing towards a peer that is not connected (IMMEDIATE), ZMTP heartbeats to
notice a dead peer, fast reconnects.  CurveZMQ is on unless explicitly disabled;
the receiver is the Curve server and admits only client keys its ``authorize``
callback accepts (a ZAP handler thread).
"""

from __future__ import annotations

import threading
from collections.abc import Callable

import zmq

from ..bitstream import MAX_CHUNK_DATA
from ..errors import InputError

__all__ = ["MAX_MESSAGE_SIZE", "MAX_PACKET_SIZE", "LinkOptions", "check_endpoint", "receiver_socket", "sender_socket"]

#: the largest packet a conforming sender emits (docs/bitstream.md): a REFERENCE_CHUNK, 16 bytes
#: of header, digest prefix, index and count, then at most MAX_CHUNK_DATA (65000) bytes.  The
#: others are far smaller: a session header with the assigned extensions <= 294 bytes, a frame
#: <= 541, a seal <= 80, a control message 5.
MAX_PACKET_SIZE = 16 + MAX_CHUNK_DATA
#: ZMQ_MAXMSGSIZE of every FaceLink socket (one packet per message): 64 KiB.  A peer that sends a
#: larger message is disconnected by ZeroMQ before the message is allocated.
MAX_MESSAGE_SIZE = 1 << 16

#: the ZAP domain a FaceLink receiver authenticates in
ZAP_DOMAIN = "facelink"
#: monitor events a sender reacts to
SENDER_EVENTS = (
    zmq.EVENT_HANDSHAKE_SUCCEEDED
    | zmq.EVENT_DISCONNECTED
    | zmq.EVENT_HANDSHAKE_FAILED_AUTH
    | zmq.EVENT_HANDSHAKE_FAILED_PROTOCOL
    | zmq.EVENT_HANDSHAKE_FAILED_NO_DETAIL
)


class LinkOptions:
    """Socket tuning shared by both ends (seconds and message counts)."""

    send_hwm = 16
    recv_hwm = 256
    heartbeat_ivl_ms = 1000
    heartbeat_timeout_ms = 3000
    reconnect_ivl_ms = 100
    reconnect_ivl_max_ms = 2000


def check_endpoint(endpoint: str, *, bind: bool) -> str:
    """Accept ``tcp://HOST:PORT`` (``tcp://*:PORT`` to listen), ``ipc://`` and ``inproc://``."""
    if not isinstance(endpoint, str) or "://" not in endpoint:
        raise InputError(f"{endpoint!r}: not a ZeroMQ endpoint; use tcp://HOST:PORT")
    scheme, rest = endpoint.split("://", 1)
    if scheme not in ("tcp", "ipc", "inproc"):
        raise InputError(f"{endpoint}: unsupported transport {scheme!r}; use tcp://HOST:PORT")
    if scheme == "tcp":
        host, sep, port = rest.rpartition(":")
        if not sep or not host or not (port == "*" and bind or port.isdigit() and 0 < int(port) < 65536):
            raise InputError(f"{endpoint}: expected tcp://HOST:PORT with a port in 1..65535")
        if host == "*" and not bind:
            raise InputError(f"{endpoint}: a sender needs a host to connect to, not *")
    return endpoint


def _common(sock: zmq.Socket) -> None:
    o = LinkOptions
    sock.setsockopt(zmq.LINGER, 0)
    sock.setsockopt(zmq.MAXMSGSIZE, MAX_MESSAGE_SIZE)
    sock.setsockopt(zmq.SNDHWM, o.send_hwm)
    sock.setsockopt(zmq.RCVHWM, o.recv_hwm)
    sock.setsockopt(zmq.HEARTBEAT_IVL, o.heartbeat_ivl_ms)
    sock.setsockopt(zmq.HEARTBEAT_TIMEOUT, o.heartbeat_timeout_ms)
    sock.setsockopt(zmq.HEARTBEAT_TTL, o.heartbeat_timeout_ms)
    sock.setsockopt(zmq.RECONNECT_IVL, o.reconnect_ivl_ms)
    sock.setsockopt(zmq.RECONNECT_IVL_MAX, o.reconnect_ivl_max_ms)


def sender_socket(
    ctx: zmq.Context,
    endpoint: str,
    *,
    curve_secret: bytes | None,
    curve_public: bytes | None,
    server_key: bytes | None,
) -> tuple[zmq.Socket, zmq.Socket]:
    """A DEALER connected to ``endpoint`` (Curve client when keys are given) and its monitor socket."""
    sock = ctx.socket(zmq.DEALER)
    _common(sock)
    sock.setsockopt(zmq.IMMEDIATE, 1)  # no queue towards a receiver that is not there: frames go stale
    if server_key is not None:
        if curve_secret is None or curve_public is None:
            raise ValueError("a Curve client needs its own key pair")
        sock.curve_secretkey = curve_secret
        sock.curve_publickey = curve_public
        sock.curve_serverkey = server_key
    monitor = sock.get_monitor_socket(SENDER_EVENTS)
    sock.connect(endpoint)
    return sock, monitor


class _KeyGate:
    """ZAP credentials provider: asks ``authorize(z85 key)`` for every Curve client handshake."""

    def __init__(self, authorize: Callable[[bytes], bool]) -> None:
        self.authorize = authorize
        self.denied = 0
        self.allowed = 0
        self._lock = threading.Lock()

    def callback(self, domain: str, key: bytes) -> bool:
        try:
            ok = bool(self.authorize(bytes(key)))
        except Exception:  # noqa: BLE001 - a failing trust lookup must deny, never crash the ZAP thread
            ok = False
        with self._lock:
            if ok:
                self.allowed += 1
            else:
                self.denied += 1
        return ok


def receiver_socket(
    ctx: zmq.Context,
    endpoint: str,
    *,
    curve_secret: bytes | None,
    curve_public: bytes | None,
    authorize: Callable[[bytes], bool] | None,
) -> tuple[zmq.Socket, str, object | None, _KeyGate | None]:
    """A ROUTER bound to ``endpoint``; with Curve keys, a Curve server behind a ZAP handler.

    Returns (socket, bound endpoint, authenticator or None, key gate or None).
    """
    auth = gate = None
    if curve_secret is not None:
        from zmq.auth.thread import ThreadAuthenticator

        if authorize is None:
            raise ValueError("a Curve server needs an authorize callback")
        auth = ThreadAuthenticator(ctx)
        auth.start()
        gate = _KeyGate(authorize)
        auth.configure_curve_callback(ZAP_DOMAIN, credentials_provider=gate)
    sock = ctx.socket(zmq.ROUTER)
    _common(sock)
    sock.setsockopt(zmq.ROUTER_MANDATORY, 1)  # replies to a vanished sender fail loudly instead of vanishing
    if curve_secret is not None:
        sock.curve_server = True
        sock.curve_secretkey = curve_secret
        sock.curve_publickey = curve_public
        sock.zap_domain = ZAP_DOMAIN.encode("ascii")
    try:
        sock.bind(endpoint)
    except zmq.ZMQError as e:
        sock.close(0)
        if auth is not None:
            auth.stop()
        raise InputError(f"{endpoint}: cannot listen ({e.strerror}); is another receiver using the port?") from None
    bound = sock.getsockopt_string(zmq.LAST_ENDPOINT)
    return sock, bound, auth, gate

