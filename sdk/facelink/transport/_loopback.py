"""Sender -> receiver over a real loopback ZeroMQ link in one process (for ``facelink demo`` and tests).

>>> with LoopbackLink(reference, params, width=w, height=h, fps=25) as link:
...     for frame in frames:
...         for d in link.send(frame.index, frame.time, landmarks):   # deliveries on the receiver side
...             renderer.push(d.packet)                               # e.g. a FrameRenderer
...     report = link.close()

Both ends get fresh in-memory identities (unless given), CurveZMQ is on, the
receiver trusts exactly the sender's key, and every packet is sealed and verified.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from fractions import Fraction

import numpy as np

from ..codec import CodecParams, Reference
from ..errors import FaceLinkError
from ..keypoints import Pose
from ..security import DEFAULT_SEAL_INTERVAL, Identity, TrustStore, generate_identity
from ._receiver import Delivery, Receiver, ReceiverStats
from ._refcache import ReferenceCache
from ._sender import Sender, SenderStats

__all__ = ["LoopbackLink", "LoopbackReport"]


@dataclass(frozen=True)
class LoopbackReport:
    """Both ends' statistics after :meth:`LoopbackLink.close`."""

    sender: SenderStats
    receiver: ReceiverStats
    endpoint: str
    curve: bool

    def as_dict(self) -> dict:
        return {"sender": self.sender.as_dict(), "receiver": self.receiver.as_dict(), "endpoint": self.endpoint, "curve": self.curve}


class LoopbackLink:
    """A signed session from an in-process :class:`Sender` to an in-process :class:`Receiver`.

    ``send()`` encodes one frame, sends it over ``tcp://127.0.0.1`` (a random port)
    and returns what the receiver delivered up to and including that frame.
    """

    def __init__(
        self,
        reference: Reference,
        params: CodecParams,
        *,
        width: int,
        height: int,
        fps: Fraction | float,
        anchor: Pose | None = None,
        curve: bool = True,
        seal_interval: float = DEFAULT_SEAL_INTERVAL,
        sender_identity: Identity | None = None,
        receiver_identity: Identity | None = None,
        refcache: ReferenceCache | None = None,
        timeout: float = 5.0,
        audio_kbps: float | None = None,
    ) -> None:
        """``audio_kbps``: the session carries sound (``link.sender.send_audio``)."""
        self.sender_identity = sender_identity or generate_identity("loopback-sender")
        self.receiver_identity = receiver_identity or generate_identity("loopback-receiver")
        self.timeout = timeout
        self.curve = curve
        self.receiver = Receiver(
            "tcp://127.0.0.1:*",
            self.receiver_identity,
            trust=TrustStore(keys=(self.sender_identity.public,)),
            curve=curve,
            refcache=refcache,
        )
        self._sender_args = {
            "reference": reference, "params": params, "width": width, "height": height, "fps": fps, "anchor": anchor,
            "receiver_key": self.receiver_identity.public.curve if curve else None, "curve": curve,
            "seal_interval": seal_interval, "audio_kbps": audio_kbps,
        }  # fmt: skip
        self.sender: Sender | None = None
        self.endpoint = ""
        self._pending: list[Delivery] = []

    def open(self) -> LoopbackLink:
        """Start both ends and wait until the receiver holds the verified header and reference."""
        self.endpoint = self.receiver.open()
        try:
            self.sender = Sender(self.endpoint, self.sender_identity, **self._sender_args)  # type: ignore[arg-type]
            self.sender.open()
            deadline = time.monotonic() + self.timeout
            if not self.sender.wait_connected(self.timeout):
                raise FaceLinkError(f"loopback link {self.endpoint}: no connection after {self.timeout:g} s")
            self.sender.start_session()
            while not self.receiver.core.ready:
                if time.monotonic() > deadline:
                    raise FaceLinkError(f"loopback link {self.endpoint}: no session after {self.timeout:g} s")
                self.sender.service(0.005)
                self._pending.extend(r.delivery for r in self.receiver.poll(0.005))
        except BaseException:
            self._shutdown()
            raise
        return self

    def send(
        self, index: int, t: float, landmarks: np.ndarray | None, eyes: object = None, image: np.ndarray | None = None
    ) -> list[Delivery]:
        """Send one frame (``eyes``: its :class:`~facelink.face.EyeState`, if tracked; ``image``:
        the frame, for region references); returns the receiver's deliveries up to and including it."""
        if self.sender is None:
            raise RuntimeError("LoopbackLink.open() first")
        sent = self.sender.send_frame(index, t, landmarks, eyes=eyes, image=image)
        out, self._pending = self._pending, []
        deadline = time.monotonic() + self.timeout
        seq = index & 0xFFFF
        while sent:
            got = self.receiver.poll(0.002)
            out.extend(r.delivery for r in got)
            if any(d.frame is not None and d.frame.index & 0xFFFF == seq for d in out):
                break
            self.sender.service(0.0)
            if time.monotonic() > deadline:
                raise FaceLinkError(f"loopback link: frame {index} did not arrive within {self.timeout:g} s")
        return out

    def close(self) -> LoopbackReport:
        """End the session (End + final seal), collect what is left, and stop both ends."""
        sender_stats = self.sender.close(linger=1.0) if self.sender is not None else SenderStats()
        deadline = time.monotonic() + 1.0
        while time.monotonic() < deadline:
            v = self.receiver.core.summary()
            if v is not None and v.end_verified:
                break
            self.receiver.poll(0.01)
        self.sender = None
        return LoopbackReport(sender_stats, self.receiver.close(), self.endpoint, self.curve)

    def _shutdown(self) -> None:
        if self.sender is not None:
            self.sender.close(linger=0.0)
            self.sender = None
        self.receiver.close()

    def __enter__(self) -> LoopbackLink:
        return self.open()

    def __exit__(self, exc_type, *exc) -> None:
        if exc_type is None:
            if self.sender is not None:
                self.close()
        else:
            self._shutdown()
