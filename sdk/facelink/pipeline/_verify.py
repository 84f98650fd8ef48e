"""Verify a video: the FaceLink watermark, and the signed provenance manifest that applies to it."""

from __future__ import annotations

import os
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from ..errors import InputError
from ..watermark import MAX_FRAMES, MIN_FRAMES, PUBLIC_MARK_KEY, Detection, MarkKey

__all__ = ["VerifyReport", "verify_video"]


@dataclass(frozen=True)
class VerifyReport:
    """What :func:`verify_video` found: the watermark detection and the provenance verdict.

    The typed fields are the ones most callers read; :meth:`as_dict` is the whole
    ``facelink verify --json`` object (``docs/provenance.md`` lists every key).
    """

    video: str
    mark: Detection
    #: "valid", "partial", "invalid", "unverified" or "none" (no manifest applies)
    verdict: str
    #: the sender's key fingerprint from the manifest, or None
    sender: str | None
    #: the manifest's signature (and, with a trust store, its keys): True, False, or None when no manifest applies
    signature_valid: bool | None
    #: the trust directory the keys were judged by, or None
    trust: str | None
    mark_key: str = "public"
    #: every provenance field of the JSON object
    provenance: dict = field(default_factory=dict, repr=False)

    @property
    def synthetic(self) -> bool:
        return self.mark.synthetic

    @property
    def session(self) -> str | None:
        return self.mark.payload.session.hex() if self.mark.payload else None

    @property
    def receiver(self) -> str | None:
        return self.mark.payload.receiver.hex() if self.mark.payload else None

    def as_dict(self) -> dict:
        """The ``facelink verify --json`` object (also the C API's verify report)."""
        out = self.mark.as_dict()
        out.update(video=self.video, mark_key=self.mark_key)
        out.update(self.provenance)
        out["trust"] = self.trust
        return out


def verify_video(
    path: str | os.PathLike[str],
    trust: str | os.PathLike[str] | None = None,
    *,
    manifest: str | os.PathLike[str] | None = None,
    c2pa: bool = True,
    mark_key: MarkKey = PUBLIC_MARK_KEY,
    max_frames: int = MAX_FRAMES,
    progress: Callable[[int, int | None], None] | None = None,
) -> VerifyReport:
    """Is the video ``path`` FaceLink output, from which session, receiver and sender (``facelink verify``)?

    Looks for the watermark (``mark_key``, in at most ``max_frames`` frames) and checks the
    signed provenance manifest: ``manifest`` (default ``VIDEO.facelink.json`` beside the
    video) or, with ``c2pa``, the one embedded as C2PA Content Credentials.  Keys are judged
    by the trust directory ``trust`` (default ``$FACELINK_HOME/trust`` when it exists).
    Whatever it finds is in the report; only unreadable input raises.
    """
    from ..io import open_video
    from ..watermark import WatermarkDetector

    video = os.fspath(path)
    if max_frames < MIN_FRAMES:
        raise ValueError(f"max_frames must be at least {MIN_FRAMES}")
    if trust is not None and not os.path.isdir(trust):
        raise InputError(f"{os.fspath(trust)}: trust directory does not exist")
    if manifest is not None and not os.path.isfile(manifest):
        raise InputError(f"{os.fspath(manifest)}: no such manifest file")
    det = WatermarkDetector(mark_key, max_frames=max_frames)
    content = _wants_content(video, manifest, c2pa)
    grids: list = []
    with open_video(video) as reader:
        for frame in reader:
            if not det.full:
                det.add(frame.image)
            if content:
                grids.append(_grid(frame.image))
            elif det.full:
                break
            if progress is not None:
                progress(len(grids) or det.frames, None if content else max_frames)
    mark = det.result()
    trust_dir = _trust_dir(trust)
    prov = _provenance(video, mark.as_dict(), trust_dir, manifest, c2pa, grids if content else None)
    return VerifyReport(
        video=video,
        mark=mark,
        verdict=prov["verdict"],
        sender=prov["sender"],
        signature_valid=prov["signature_valid"],
        trust=trust_dir,
        mark_key="public" if mark_key.is_public else mark_key.fingerprint,
        provenance=prov,
    )


def _trust_dir(trust: str | os.PathLike[str] | None) -> str | None:
    from ..security import default_trust_dir

    if trust is not None:
        return os.fspath(trust)
    default = default_trust_dir()
    return str(default) if default.is_dir() else None


def _grid(image):
    from ..provenance import frame_grid

    return frame_grid(image).astype("float32") if min(image.shape[:2]) >= 16 else None


def _wants_content(video: str, manifest, c2pa: bool) -> bool:
    """Read every frame for the content check only when a manifest may apply (sidecar, given, or C2PA in MP4/MOV)."""
    from ..provenance import sidecar_path
    from ..provenance._c2pa import C2PA_FORMATS

    if manifest is not None or sidecar_path(video).exists():
        return True
    return c2pa and os.path.splitext(video)[1].lower() in C2PA_FORMATS


def _provenance(video: str, mark: dict, trust_dir: str | None, manifest, c2pa: bool, grids) -> dict:
    import numpy as np

    from ..provenance import check_provenance
    from ..security import TrustStore

    store = TrustStore.load(Path(trust_dir)) if trust_dir is not None else None
    if grids is not None:
        grids = None if any(g is None for g in grids) else np.asarray(grids).reshape(-1, 16, 16)
    out = check_provenance(video, mark, store, manifest_path=manifest, use_c2pa=c2pa, grids=grids)
    out.pop("trust", None)
    return out
