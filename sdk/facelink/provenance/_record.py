"""Runners around the manifest core: write a recording's provenance, and check a video's.

* :func:`write_provenance` -- after a receiver/decoder closed its output video: embed
  C2PA (MP4, when c2pa-python and a certificate are available), then write the signed
  manifest ``VIDEO.facelink.json`` beside it, with the SHA-256 of the final file.
* :func:`check_provenance` -- ``facelink verify``: find the manifest (sidecar and/or
  C2PA), check its signature, whether it describes this very file, whether it agrees
  with the watermark, and whether its keys are trusted.
"""

from __future__ import annotations

import hashlib
import os
from dataclasses import dataclass
from pathlib import Path

from .._version import __version__
from ..errors import InputError
from ..security import Identity, TrustStore, VerifySummary, fingerprint
from ._manifest import (
    MAX_MANIFEST_BYTES,
    ManifestError,
    RecordingLog,
    SessionManifest,
    parse_manifest,
    session_entry,
    sign_manifest,
)

__all__ = ["MANIFEST_SUFFIX", "Recorded", "check_provenance", "file_sha256", "sidecar_path", "write_provenance", "write_receive_provenance"]

#: the manifest of ``VIDEO`` is ``VIDEO + MANIFEST_SUFFIX``
MANIFEST_SUFFIX = ".facelink.json"


def sidecar_path(video: str | os.PathLike[str]) -> Path:
    """``clip.mp4`` -> ``clip.mp4.facelink.json``."""
    return Path(os.fspath(video) + MANIFEST_SUFFIX)


def file_sha256(path: str | os.PathLike[str]) -> tuple[bytes, int]:
    """(SHA-256, size) of a file, read in 1 MiB blocks."""
    h = hashlib.sha256()
    n = 0
    with open(path, "rb") as f:
        while block := f.read(1 << 20):
            h.update(block)
            n += len(block)
    return h.digest(), n


@dataclass(frozen=True)
class Recorded:
    """What :func:`write_provenance` wrote."""

    manifest_path: Path
    manifest: SessionManifest
    c2pa: bool
    c2pa_skipped: str | None

    def as_dict(self) -> dict:
        return {
            "manifest": str(self.manifest_path),
            "receiver": self.manifest.receiver_fingerprint,
            "sessions": [s.session_id.hex() for s in self.manifest.sessions],
            "c2pa": self.c2pa,
            "c2pa_skipped": self.c2pa_skipped,
            "complete": self.manifest.complete,
            "incomplete_reason": self.manifest.incomplete_reason,
        }


def _atomic_write(path: Path, data: bytes) -> None:
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    try:
        with open(tmp, "wb") as f:
            f.write(data)
        os.replace(tmp, path)
    except OSError as e:
        tmp.unlink(missing_ok=True)
        raise InputError(f"{path}: cannot write the provenance manifest ({e.strerror})") from None


def write_provenance(
    video: str | os.PathLike[str],
    log: RecordingLog,
    identity: Identity,
    *,
    summary: VerifySummary | None = None,
    manifest_path: str | os.PathLike[str] | None = None,
    key_dir: str | os.PathLike[str] | None = None,
    c2pa: bool = True,
    auto_certificate: bool | None = None,
    name: str | None = None,
) -> Recorded | None:
    """Sign the provenance of a finished recording; None when no frame was rendered.

    ``identity`` must be the receiver key whose fingerprint the watermark carries.
    ``summary``: the stream verifier's summary (names and trust of the sender as this
    receiver saw them).  ``manifest_path`` defaults to :func:`sidecar_path` of ``video``.
    ``auto_certificate`` (default: for this machine's ``local`` key) issues the C2PA
    certificate from the local CA when there is none.  ``name``: the video's file name
    as recorded (default: ``video``'s; for outputs written under a temporary name).
    """
    from ..security._local import LOCAL_KEY_NAME

    from dataclasses import replace

    records = log.records
    if not records:
        return None
    content = log.content.fingerprint()
    if content is None or content.frames != sum(r.frames for r in records):
        raise ValueError("the recording log has no content fingerprint for every frame (RecordingLog.frame(..., image=))")
    path = Path(video)
    name = name or path.name
    sessions = []
    missing_end, unsigned = [], []
    for rec in records:
        sender_name = trusted = None
        end = rec.end_verified
        if summary is not None and summary.session_id == rec.session_id.hex():
            sender_name, trusted = summary.signer_name, summary.trusted
            end = end or bool(summary.end_verified)
        entry = session_entry(rec, sender_name=sender_name, sender_trusted=trusted)
        entry = replace(entry, end_verified=end and entry.sender is not None)  # an unsigned End verifies nothing
        sessions.append(entry)
        if entry.sender is None:
            unsigned.append(entry.session_id.hex()[:8])
        elif not end:
            missing_end.append(entry.session_id.hex()[:8])
    reasons = [log.interrupted] if log.interrupted else []
    if unsigned:
        reasons.append(f"session {', '.join(unsigned)} unsigned: nothing in it was verified")
    if missing_end:
        reasons.append(f"End packet not verified for session {', '.join(missing_end)}")
    base = SessionManifest(
        receiver=identity.public.ed25519,
        receiver_name=identity.name,
        sessions=tuple(sessions),
        generator=f"facelink {__version__}",
        content=content,
        complete=not reasons,
        incomplete_reason="; ".join(reasons)[:300] if reasons else None,
    )
    embedded, skipped = False, None
    if c2pa:
        auto = identity.name == LOCAL_KEY_NAME if auto_certificate is None else auto_certificate
        embedded, skipped, base = _try_c2pa(path, name, base, identity, key_dir, auto)
    digest, size = file_sha256(path)
    final = replace(base, video_sha256=digest, video_bytes=size, video_name=name)
    data = sign_manifest(final, identity)
    out = Path(manifest_path) if manifest_path is not None else sidecar_path(path)
    _atomic_write(out, data)
    return Recorded(out, parse_manifest(data), embedded, skipped)


def _try_c2pa(path: Path, name: str, base: SessionManifest, identity: Identity, key_dir, auto: bool) -> tuple[bool, str | None, SessionManifest]:
    from dataclasses import replace

    from ._c2pa import C2PA_FORMATS, c2pa_available, embed_c2pa
    from ._certs import ensure_chain

    if path.suffix.lower() not in C2PA_FORMATS:
        return False, f"C2PA is embedded only in MP4/MOV outputs, not {path.suffix or 'files without an extension'}", base
    ok, why = c2pa_available()
    if not ok:
        return False, why, base
    chain, why = ensure_chain(identity, key_dir, auto=auto)
    if chain is None:
        return False, why, base
    with_cert = replace(base, c2pa_certificate_sha256=chain.certificate_sha256, c2pa_ca_sha256=chain.ca_sha256)
    try:
        embed_c2pa(path, sign_manifest(with_cert, identity), chain, identity, generator=__version__, title=name)
    except (RuntimeError, ValueError, OSError) as e:
        return False, f"C2PA embedding failed: {e}", base
    return True, None, with_cert


def write_receive_provenance(output: str | os.PathLike[str] | None, renderer, identity: Identity | None, stats=None) -> Recorded | None:
    """``facelink receive -o FILE``: the provenance of FILE once it is in place (no-op without output).

    ``renderer``: the :class:`~facelink.receiver.SessionRenderer` that rendered it (its
    ``log`` must have observed the receiver's results); ``identity``: the receiver's key
    (None: this machine's local key, as the watermark used); ``stats``: the receiver's
    final :class:`~facelink.transport.ReceiverStats`.
    """
    if output is None or renderer is None or not Path(output).is_file():
        return None
    if identity is None:
        from ..security._local import local_identity

        identity = local_identity()
    return write_provenance(output, renderer.log, identity, summary=getattr(stats, "verify", None))


# ---------------------------------------------------------------- checking a video


def _read_manifest(path: Path) -> bytes:
    with open(path, "rb") as f:
        return f.read(MAX_MANIFEST_BYTES + 1)


def check_provenance(
    video: str | os.PathLike[str],
    mark: dict,
    trust: TrustStore | None,
    *,
    manifest_path: str | os.PathLike[str] | None = None,
    use_c2pa: bool = True,
    grids=None,
) -> dict:
    """The provenance fields of ``facelink verify --json`` for ``video``.

    ``mark``: the watermark detection's ``as_dict()`` (``session``, ``receiver``,
    ``payload_bits_ok``, ``first_frame_index``); ``trust``: the trust store to judge keys
    by (None: no trust available, so ``signature_valid`` is at best null); ``grids``: the
    content grids of *every* frame of the video (:func:`~facelink.provenance.frame_grid`),
    compared with the manifest's signed fingerprint when the file is not the exact one
    the receiver signed (None: not compared, so only the exact file can be valid).

    A manifest applies to the video only when its content does: the exact file (SHA-256,
    or C2PA's hard binding), or frames matching the signed content fingerprint within
    tolerance.  The watermark's payload alone never suffices: anyone can stamp it.
    """
    from ._c2pa import read_c2pa

    out: dict = {
        "manifest": None,
        "manifest_status": "absent",
        "manifest_error": None,
        "manifest_version": None,
        "manifest_receiver": None,
        "manifest_session": None,
        "manifest_describes_file": None,
        "manifest_matches_mark": None,
        "content_match": None,
        "content": None,
        "copy": None,
        "partial": None,
        "incomplete_reason": None,
        "sender": None,
        "sender_signed": None,
        "sender_trusted_by_receiver": None,
        "sender_trusted": None,
        "motion_source": None,
        "receiver_trusted": None,
        "signature_valid": None,
        "verdict": "none",
        "c2pa": None,
        "provenance": "",
    }
    explicit = manifest_path is not None
    side = Path(manifest_path) if explicit else sidecar_path(video)
    manifest: SessionManifest | None = None
    if side.exists() or explicit:
        out["manifest"] = str(side)
        try:
            manifest = parse_manifest(_read_manifest(side))
            out["manifest_status"] = "valid"
        except ManifestError as e:
            out["manifest_status"], out["manifest_error"] = e.status, str(e)
        except OSError as e:
            out["manifest_status"], out["manifest_error"] = "unreadable", f"{side}: cannot read ({e.strerror})"
    rep = read_c2pa(video) if use_c2pa else None
    if rep is not None:
        out["c2pa"] = rep.as_dict()
    source = "sidecar"
    c2pa_claim = rep is not None and rep.facelink and rep.manifest is not None and rep.signed_by_receiver
    if manifest is None and out["manifest_status"] == "absent" and c2pa_claim:  # a bad sidecar is never papered over
        manifest, source = rep.manifest, "c2pa"  # type: ignore[union-attr]
        out["manifest_status"] = "valid"
        out["manifest"] = out["manifest"] or "c2pa"
    if manifest is None:
        bad_c2pa = rep is not None and bool(rep.present) and (rep.manifest_status is not None or bool(rep.facelink and not rep.signed_by_receiver))
        if out["manifest_status"] == "absent" and not bad_c2pa:
            out["provenance"] = f"no provenance manifest ({side.name} absent" + (", no FaceLink C2PA manifest)" if use_c2pa else ")")
            return out
        out["signature_valid"] = False
        out["verdict"] = "invalid"
        if out["manifest_status"] == "absent":
            out["manifest_status"] = rep.manifest_status or "bad_signature"  # type: ignore[union-attr]
            out["manifest_error"] = rep.reason  # type: ignore[union-attr]
            out["manifest"] = "c2pa"
        out["provenance"] = f"manifest cannot be relied on: {out['manifest_error']}"
        return out

    out["manifest_receiver"] = manifest.receiver_fingerprint
    out["manifest_version"] = manifest.version
    # 1. does it describe this very file?
    if source == "sidecar" and manifest.video_sha256 is not None:
        try:
            digest, size = file_sha256(video)
            out["manifest_describes_file"] = digest == manifest.video_sha256 and size == manifest.video_bytes
        except OSError:
            out["manifest_describes_file"] = False
    elif source == "c2pa":
        out["manifest_describes_file"] = bool(rep and rep.valid)  # C2PA's hard binding covers the file
    # 2. the watermark's payload (informative; it can be stamped by anyone)
    mark_session = None
    if mark.get("payload_bits_ok") and mark.get("session") and mark.get("receiver"):
        mark_session = manifest.session_by_tag(mark["session"])
        out["manifest_matches_mark"] = mark_session is not None and manifest.receiver_fingerprint.startswith(mark["receiver"])
    # 3. otherwise: do the pixels match what the receiver signed?
    match = None
    if out["manifest_describes_file"]:
        out["copy"] = "exact"
    elif manifest.content is not None and grids is not None:
        from ._content import match_content

        hints = _offset_hints(mark, manifest.content.frames)
        match = match_content(manifest.content, grids, hints=hints)
        out["content"] = match.as_dict()
        out["content_match"] = match.matched
        if match.matched:
            out["copy"] = "re-encoded" if match.whole else "re-encoded excerpt"
    applies = bool(out["manifest_describes_file"]) or (match is not None and match.matched)
    # the sessions the video shows (all of them for a whole copy)
    covered = _covered_sessions(manifest, match) if applies else ()
    session = mark_session if (mark_session is not None and mark_session in covered) else (covered[0] if covered else None)
    if session is not None:
        out["manifest_session"] = session.session_id.hex()
        out["sender"] = session.sender_fingerprint
        out["sender_signed"] = session.sender is not None
        out["sender_trusted_by_receiver"] = session.sender_trusted
        out["motion_source"] = _motion_source(session.header)
    if applies and manifest.complete is not None:
        out["partial"] = not manifest.complete
        out["incomplete_reason"] = manifest.incomplete_reason
    if trust is not None:
        out["receiver_trusted"] = trust.lookup(manifest.receiver) is not None
        if session is not None and session.sender is not None:
            out["sender_trusted"] = trust.lookup(session.sender) is not None
    # the verdict
    who = f"receiver {manifest.receiver_fingerprint}"
    if not applies:
        out["signature_valid"] = False
        out["verdict"] = "invalid"
        if manifest.content is None:
            what = "a v1 manifest (no content fingerprint) applies only to the exact file it names, and this is not that file"
        elif grids is None:
            what = "it does not describe this file and the content was not compared"
        else:
            what = f"the video's content does not match the content it signed ({match.reason})"  # type: ignore[union-attr]
        if out["manifest_matches_mark"]:
            what += "; the watermark names its session, but anyone can stamp that"
        out["provenance"] = f"manifest signed by {who} does not describe this video: {what}"
        return out
    problems = []
    if out["manifest_matches_mark"] is False:
        problems.append(f"the watermark names another session or receiver (session {mark.get('session')}, receiver {mark.get('receiver')})")
    for s in covered:
        if s.sender is None:
            problems.append(f"session {s.session_id.hex()[:8]} was an UNSIGNED stream (decoded with --insecure): no sender vouched for it")
        elif s.sender_trusted is False:
            problems.append(f"sender {s.sender_fingerprint} was NOT trusted by the receiver (decoded with --insecure)")
        elif trust is not None and trust.is_revoked(s.sender):
            problems.append(f"sender {s.sender_fingerprint} is REVOKED")
    if trust is None:
        trust_note = "no trust directory to judge the receiver key by"
        valid = None
    elif trust.is_revoked(manifest.receiver):
        trust_note, valid = f"{who} is REVOKED", False
    elif out["receiver_trusted"]:
        trust_note, valid = f"{who} is trusted", True
    else:
        trust_note, valid = f"{who} is not trusted", False
    if problems:
        valid = False
    out["signature_valid"] = valid
    if out["copy"] == "exact":
        what = "describes this exact file" + (" (C2PA hard binding)" if source == "c2pa" else "")
    else:
        c = match.as_dict()  # type: ignore[union-attr]
        span = "the whole recording" if match.whole else f"frames {match.offset}-{match.offset + match.frames - 1} of {match.recording_frames} (an excerpt)"  # type: ignore[union-attr]
        if match.edge_frames:  # type: ignore[union-attr]
            span += f", {match.edge_frames} frames at its cut edges checked coarsely"  # type: ignore[union-attr]
        what = (
            f"re-encoded copy: content matches {span} within tolerance "
            f"(worst segment RMS {c['worst_rms']}, max {c['worst_max']} grey levels; {c['segments_checked']} segments)"
        )
    partial = ""
    if out["partial"]:
        partial = f"; PARTIAL recording: {manifest.incomplete_reason}"
    elif manifest.complete is None:
        partial = "; v1 manifest: completeness not recorded"
    out["provenance"] = f"manifest signature valid, {what}{partial}; {trust_note}" + "".join(f"; {p}" for p in problems)
    if valid is False:
        out["verdict"] = "invalid"
    elif out["partial"]:
        out["verdict"] = "partial"
    else:
        out["verdict"] = "valid" if valid else "unverified"
    return out


def _offset_hints(mark: dict, frames: int) -> tuple[int, ...]:
    """Recording frame indices of the video's first frame consistent with the watermark's counter."""
    first = mark.get("first_frame_index")
    if not isinstance(first, int) or first < 0:
        return ()
    return tuple(range(first, frames, 16384))


def _covered_sessions(manifest: SessionManifest, match) -> tuple:
    """The manifest sessions whose frames the video shows (in output order; all for an exact or whole copy)."""
    if match is None or match.whole:
        return manifest.sessions
    lo, hi = match.offset, match.offset + match.frames
    out, start = [], 0
    for s in manifest.sessions:
        if start < hi and lo < start + s.frames:
            out.append(s)
        start += s.frames
    return tuple(out) or manifest.sessions[:1]


def _motion_source(header: bytes) -> str:
    """"audio-driven" when the signed session header says its motion was made from speech
    (``facelink animate``), else "tracked" (a sender's face, tracked by its camera or file)."""
    from ..animate._stream import source_of
    from ..bitstream import SessionHeader

    return source_of(SessionHeader.parse(header).extensions) or "tracked"
