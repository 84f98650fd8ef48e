"""The type of a packet without parsing its body (runners that count or route packets)."""

from __future__ import annotations

from .packets import PacketType, _check_header, _data

__all__ = ["packet_type"]


def packet_type(data: bytes) -> PacketType:
    """The :class:`PacketType` of ``data``, after checking its length, magic and version.

    Raises :class:`~facelink.errors.InvalidPacket` for anything that is not a FaceLink packet
    header; the body is not looked at (use :func:`parse_packet` for that).
    """
    return _check_header(_data(data))
