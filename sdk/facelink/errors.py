"""FaceLink's error hierarchy.

Every error the SDK raises on purpose derives from :class:`FaceLinkError`, so
callers (and the CLI) can catch one type.  Messages are one line and say what
to do next.  ``TypeError``/``ValueError`` keep their usual meaning for wrong
argument types and values passed by a programmer.
"""

from __future__ import annotations

__all__ = [
    "AudioError",
    "BackendUnavailable",
    "FaceLinkError",
    "InputError",
    "InvalidPacket",
    "ModelFetchError",
    "NoFaceError",
    "VerificationError",
]


class FaceLinkError(Exception):
    """Root of every error FaceLink raises deliberately."""

    #: process exit code the CLI uses for this error class
    exit_code = 1


class InvalidPacket(FaceLinkError):
    """A packet, stream or ``.flk`` file is malformed (truncated, corrupted, wrong version)."""

    exit_code = 3


class VerificationError(FaceLinkError):
    """A signature, seal or hash chain did not verify.  Deliberately uninformative."""

    exit_code = 3


class BackendUnavailable(FaceLinkError):
    """An inference backend cannot be used here (package missing, version too old, no device)."""


class ModelFetchError(FaceLinkError):
    """Encoder models could not be fetched, verified or converted."""


class InputError(FaceLinkError):
    """A user-supplied file or URI cannot be used (not a video, empty, unreadable)."""


class AudioError(InputError):
    """An audio track or stream cannot be used (corrupt, unsupported codec or layout).

    Callers that encode video treat it as a warning: the video still encodes, without sound.
    """


class NoFaceError(InputError):
    """An image that must show a face (a reference) shows none."""
