"""Provenance records of rendered video: a signed session manifest, and C2PA Content Credentials.

* :class:`RecordingLog` collects, while a receiver renders, the sessions, frames and
  verified seals that went into one output video.
* :func:`write_provenance` signs them with the receiver's Ed25519 key into
  ``VIDEO.facelink.json`` (:func:`sidecar_path`) and, for MP4 outputs, embeds a C2PA
  manifest (optional ``c2pa-python``; certificates from ``facelink keys cert``).
* :func:`parse_manifest` verifies a manifest before it interprets it;
  :func:`check_provenance` is what ``facelink verify`` reports.

The formats and the trust model are in ``docs/provenance.md``.
"""

from __future__ import annotations

from ._c2pa import (
    ASSERTION_LABEL,
    TRAINED_ALGORITHMIC_MEDIA,
    C2paReport,
    c2pa_available,
    embed_c2pa,
    read_c2pa,
)
from ._certs import (
    C2PA_CLAIM_SIGNING,
    DEFAULT_CA,
    CertChain,
    chain_path,
    ensure_chain,
    issue_certificate,
    load_chain,
    load_or_create_ca,
)
from ._content import (
    CONTENT_METHOD,
    ContentFingerprint,
    ContentLog,
    ContentMatch,
    frame_grid,
    match_content,
)
from ._manifest import (
    MANIFEST_FORMAT,
    MANIFEST_VERSION,
    MAX_MANIFEST_BYTES,
    ManifestError,
    ManifestSession,
    RecordingLog,
    SessionManifest,
    SessionRecord,
    canonical_json,
    parse_manifest,
    seal_log_hash,
    session_entry,
    sign_manifest,
)
from ._record import (
    MANIFEST_SUFFIX,
    Recorded,
    check_provenance,
    file_sha256,
    sidecar_path,
    write_provenance,
    write_receive_provenance,
)

__all__ = [
    "ASSERTION_LABEL",
    "C2PA_CLAIM_SIGNING",
    "CONTENT_METHOD",
    "DEFAULT_CA",
    "MANIFEST_FORMAT",
    "MANIFEST_SUFFIX",
    "MANIFEST_VERSION",
    "MAX_MANIFEST_BYTES",
    "TRAINED_ALGORITHMIC_MEDIA",
    "C2paReport",
    "CertChain",
    "ContentFingerprint",
    "ContentLog",
    "ContentMatch",
    "ManifestError",
    "ManifestSession",
    "Recorded",
    "RecordingLog",
    "SessionManifest",
    "SessionRecord",
    "c2pa_available",
    "canonical_json",
    "chain_path",
    "check_provenance",
    "embed_c2pa",
    "ensure_chain",
    "file_sha256",
    "frame_grid",
    "issue_certificate",
    "load_chain",
    "load_or_create_ca",
    "match_content",
    "parse_manifest",
    "read_c2pa",
    "seal_log_hash",
    "session_entry",
    "sidecar_path",
    "sign_manifest",
    "write_provenance",
    "write_receive_provenance",
]
