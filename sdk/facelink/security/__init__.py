"""Keys, trust and signed streams: who sent a keypoint stream, and whether it arrived intact.

* Identities (:func:`generate_identity`, :func:`load_identity`): an Ed25519 signing key
  and a CurveZMQ key pair per device, in small text files (``NAME.key`` mode 0600,
  ``NAME.pub``); keys are named by 16-hex-digit fingerprints.
* Trust (:class:`TrustStore`): a directory of trusted ``.pub`` files plus a revocation
  list that always wins.
* Seals (:class:`SealWriter`, :class:`StreamVerifier`, :func:`iter_verified`): the
  packets of each span are hashed and closed by a compact Ed25519-signed seal packet
  (counter, time, signature) at least every 0.5 s; spans verify independently, so a
  loss costs one span.  Pure cores: bytes in, bytes and verdicts out.

The wire format and the guarantees are in ``docs/security.md``.
"""

from __future__ import annotations

from ._keys import (
    Identity,
    PublicIdentity,
    check_private_permissions,
    default_key_dir,
    default_trust_dir,
    facelink_home,
    fingerprint,
    generate_identity,
    load_identity,
    load_public,
    parse_identity,
    parse_public,
    resolve_key_path,
    write_identity,
)
from ._seal import (
    DEFAULT_SEAL_INTERVAL,
    SIGNER_TAG,
    PacketVerdict,
    SealStatus,
    SealWriter,
    SpanStatus,
    SpanVerdict,
    StreamVerifier,
    VerifySummary,
    chain_root,
    chain_step,
    header_signer,
    iter_verified,
    seal_message,
    seal_packets,
    signer_extension,
    span_hash,
)
from ._trust import REVOKED_FILE, TrustStore, parse_revoked, revoke_key, trust_key

__all__ = [
    "DEFAULT_SEAL_INTERVAL",
    "REVOKED_FILE",
    "SIGNER_TAG",
    "Identity",
    "PacketVerdict",
    "PublicIdentity",
    "SealStatus",
    "SealWriter",
    "SpanStatus",
    "SpanVerdict",
    "StreamVerifier",
    "TrustStore",
    "VerifySummary",
    "chain_root",
    "chain_step",
    "check_private_permissions",
    "default_key_dir",
    "default_trust_dir",
    "facelink_home",
    "fingerprint",
    "generate_identity",
    "header_signer",
    "iter_verified",
    "load_identity",
    "load_public",
    "parse_identity",
    "parse_public",
    "parse_revoked",
    "resolve_key_path",
    "revoke_key",
    "seal_message",
    "seal_packets",
    "signer_extension",
    "span_hash",
    "trust_key",
    "write_identity",
]
