"""Decode a signed ``.flk`` stream to a watermarked video with its provenance manifest."""

from __future__ import annotations

import os
from collections.abc import Callable
from pathlib import Path

from .._files import atomic_output, check_output
from ..errors import InputError
from ..rendering import DecodeResult, decode_packets
from ..security import Identity

__all__ = ["decode_file"]


def decode_file(
    src: str | os.PathLike[str],
    out: str | os.PathLike[str],
    trust: str | os.PathLike[str] | None = None,
    *,
    insecure: bool = False,
    identity: Identity | None = None,
    reference_image: str | None = None,
    pose_offset: tuple[float, float, float] = (0.0, 0.0, 0.0),
    eye_contact: bool = False,
    backend: str = "auto",
    refiner: str | None = "off",
    provenance: bool = True,
    c2pa: bool = True,
    progress: Callable[[int, int | None], None] | None = None,
) -> DecodeResult:
    """Decode the stream ``src`` to the video ``out`` (``facelink decode``), verifying it first.

    Every packet reaches the decoder only after the seal covering it verified against the
    trust directory ``trust`` (default ``$FACELINK_HOME/trust``); any integrity problem
    raises :class:`~facelink.errors.VerificationError`.  ``insecure`` accepts unsigned
    streams and untrusted signers (whose seals must still verify).  ``out`` appears only on
    success (written under a temporary name, then renamed).

    Every frame is watermarked for ``identity`` (default: this machine's local key), which
    also signs the provenance manifest written beside ``out`` (``OUT.facelink.json``), with
    C2PA Content Credentials embedded first in an MP4 when ``c2pa`` (skipped, with the reason
    in ``result.provenance``, when c2pa-python or a certificate is missing).  Damaged
    packets end the output early, counted in ``result.invalid_packets`` (``result.partial``).

    ``reference_image`` drives another face (motion transfer); ``pose_offset`` (yaw, pitch,
    roll degrees) re-poses the head; ``eye_contact`` redirects the gaze at the camera.
    """
    from ..bitstream import iter_flk
    from ..face._reference import load_target
    from ..provenance import sidecar_path, write_provenance
    from ..security import TrustStore, default_trust_dir, iter_verified

    src, out = os.fspath(src), os.fspath(out)
    check_output(out)
    if not os.path.isfile(src):
        raise InputError(f"{src}: no such file")
    tdir = Path(trust).expanduser() if trust else default_trust_dir()
    store = TrustStore.load(tdir) if (tdir.exists() or not insecure) else None
    target = load_target(reference_image, backend) if reference_image else None
    if identity is None and provenance:
        from ..security._local import local_identity

        identity = local_identity()
    manifest = sidecar_path(out)
    summaries: list = []
    res: DecodeResult | None = None
    try:
        with atomic_output(out) as tmp:
            packets = iter_verified(iter_flk(src), store, insecure=insecure, summary=summaries)
            res = decode_packets(
                packets, str(tmp), target=target, pose_offset=pose_offset, backend=backend, progress=progress,
                strict=True, refiner=refiner, verified=True, eye_contact=eye_contact,
                receiver_key=identity.public.ed25519 if identity is not None else None,
            )  # fmt: skip
            res.verification = summaries[0].as_dict() if summaries else None
            if provenance and identity is not None and res.log is not None:
                res.provenance = write_provenance(
                    tmp, res.log, identity, summary=summaries[0] if summaries else None, manifest_path=manifest,
                    c2pa=c2pa, name=Path(out).name,
                )  # fmt: skip
    except BaseException:
        if res is not None and res.provenance is not None:  # the manifest was written but the video did not land
            manifest.unlink(missing_ok=True)
        raise
    res.output = out
    res.sessions = tuple(_session_tags(res))
    return res


def _session_tags(res: DecodeResult) -> list[str]:
    from ._encode import session_tag_hex

    return [session_tag_hex(rec.header) for rec in res.log.records] if res.log is not None else []
