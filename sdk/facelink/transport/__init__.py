"""Keypoint streams over ZeroMQ: a signing sender, a verifying receiver, and a loopback pair.

* :class:`Sender` (DEALER, connects) and :class:`Receiver` (ROUTER, binds): thin
  runners around the pure cores in :mod:`facelink.codec` and :mod:`facelink.security`.
  CurveZMQ on by default; the receiver admits only trusted sender keys (ZAP).
* :class:`ReceiverCore`: verification + decoding + requests back, without sockets.
* :class:`LoopbackLink`: both ends in one process over ``tcp://127.0.0.1`` (the demo's link).
* :class:`ControlMessage`: the receiver-to-sender requests (reference, key frame, header).

Design and guarantees: ``docs/security.md``.
"""

from __future__ import annotations

from ._control import CONTROL_MAGIC, ControlMessage, ControlType
from ._link import MAX_MESSAGE_SIZE, MAX_PACKET_SIZE, LinkOptions, check_endpoint
from ._loopback import LoopbackLink, LoopbackReport
from ._receiver import (
    Delivery,
    FeedResult,
    Receiver,
    ReceiverCore,
    ReceiverStats,
    merge_summaries,
)
from ._refcache import ReferenceCache, reference_chunks
from ._sender import Sender, SenderStats, make_codec

__all__ = [
    "CONTROL_MAGIC",
    "MAX_MESSAGE_SIZE",
    "MAX_PACKET_SIZE",
    "ControlMessage",
    "ControlType",
    "Delivery",
    "FeedResult",
    "LinkOptions",
    "LoopbackLink",
    "LoopbackReport",
    "Receiver",
    "ReceiverCore",
    "ReceiverStats",
    "ReferenceCache",
    "Sender",
    "SenderStats",
    "check_endpoint",
    "make_codec",
    "merge_summaries",
    "reference_chunks",
]
