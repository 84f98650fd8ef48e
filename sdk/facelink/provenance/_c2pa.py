"""C2PA Content Credentials in recorded MP4 files, through the optional ``c2pa-python`` package.

Embedding (:func:`embed_c2pa`): one claim with a ``c2pa.actions`` assertion
(``c2pa.created``, digitalSourceType ``trainedAlgorithmicMedia``) and an
``org.facelink.session`` assertion carrying the FaceLink session manifest (signed by
the receiver key, with ``video: null``: the file's hash cannot be inside the file;
C2PA's own hard binding covers it) and the certificate chain, signed by the
receiver's Ed25519 key through its certificate (``facelink keys cert``).

Reading (:func:`read_c2pa`): c2pa-python's validation (claim signature, hard binding
of the file, certificate profile) with no trust list, then FaceLink's own checks:
the embedded FaceLink manifest verifies, and the claim was signed with the very
certificate that manifest names for its receiver key (so a FaceLink assertion copied
into somebody else's claim is not mistaken for the receiver's).
"""

from __future__ import annotations

import hashlib
import json
import os
from dataclasses import dataclass, field
from pathlib import Path

from ..security import Identity
from ._certs import CertChain, certificate_key
from ._manifest import ManifestError, SessionManifest, parse_manifest

__all__ = [
    "ASSERTION_LABEL",
    "C2PA_FORMATS",
    "TRAINED_ALGORITHMIC_MEDIA",
    "C2paReport",
    "c2pa_available",
    "embed_c2pa",
    "read_c2pa",
]

ASSERTION_LABEL = "org.facelink.session"
TRAINED_ALGORITHMIC_MEDIA = "http://cv.iptc.org/newscodes/digitalsourcetype/trainedAlgorithmicMedia"
#: output suffixes that get a C2PA manifest, and their MIME types
C2PA_FORMATS = {".mp4": "video/mp4", ".m4v": "video/mp4", ".mov": "video/quicktime"}
INSTALL_HINT = "install it with `pip install 'facelink[c2pa]'`"


def c2pa_available() -> tuple[bool, str]:
    """(True, version) when c2pa-python imports, else (False, why not)."""
    try:
        import c2pa
    except ImportError as e:
        return False, f"c2pa-python is not installed ({e}); {INSTALL_HINT}"
    except OSError as e:  # the native library failed to load
        return False, f"c2pa-python cannot load its native library ({e})"
    return True, getattr(c2pa, "__version__", "unknown")


def _manifest_definition(title: str, mime: str, manifest_doc: dict, chain: CertChain, generator: str) -> dict:
    return {
        "claim_generator_info": [{"name": "FaceLink", "version": generator}],
        "title": title,
        "format": mime,
        "assertions": [
            {
                "label": "c2pa.actions",
                "data": {
                    "actions": [
                        {
                            "action": "c2pa.created",
                            "digitalSourceType": TRAINED_ALGORITHMIC_MEDIA,
                            "softwareAgent": {"name": "FaceLink", "version": generator},
                            "description": "talking-head video synthesised by a FaceLink receiver from a signed keypoint stream",
                        }
                    ]
                },
            },
            {
                "label": ASSERTION_LABEL,
                "data": {
                    "manifest": manifest_doc,
                    "certificates": [c.decode("ascii") for c in _pems(chain)],
                },
            },
        ],
    }


def _pems(chain: CertChain) -> list[bytes]:
    from cryptography.hazmat.primitives import serialization

    return [chain.certificate.public_bytes(serialization.Encoding.PEM), chain.ca.public_bytes(serialization.Encoding.PEM)]


def embed_c2pa(
    video: str | os.PathLike[str], manifest_file: bytes, chain: CertChain, identity: Identity, *, generator: str = "", title: str | None = None
) -> None:
    """Embed a C2PA manifest into ``video`` in place (written beside it, then renamed).

    ``manifest_file``: the signed FaceLink manifest (``video: null``) to carry.  Raises
    ``ImportError`` without c2pa-python, ``ValueError`` for a chain of another key, and
    ``RuntimeError`` with c2pa's message when signing fails.
    """
    import c2pa

    path = Path(video)
    mime = C2PA_FORMATS.get(path.suffix.lower())
    if mime is None:
        raise ValueError(f"{path}: C2PA embedding needs an MP4/MOV output, not {path.suffix or 'no extension'}")
    if certificate_key(chain.certificate) != identity.public.ed25519:
        raise ValueError("the C2PA certificate is for another key than the receiver's")
    definition = _manifest_definition(title or path.name, mime, json.loads(manifest_file), chain, generator)
    tmp = path.with_name(f".{path.name}.c2pa{path.suffix}")
    try:
        signer = c2pa.Signer.from_callback(identity.sign, c2pa.C2paSigningAlg.ED25519, chain.pem().decode("ascii"), None)
        try:
            builder = c2pa.Builder(definition)
            with open(path, "rb") as src, open(tmp, "w+b") as dst:
                builder.sign(signer, mime, src, dst)
        finally:
            signer.close()
        os.replace(tmp, path)
    except c2pa.C2paError as e:
        raise RuntimeError(f"C2PA signing failed: {e}") from None
    finally:
        tmp.unlink(missing_ok=True)


@dataclass
class C2paReport:
    """What :func:`read_c2pa` found; ``as_dict`` is the ``c2pa`` object of ``facelink verify --json``."""

    available: bool
    present: bool | None = None
    validation_state: str | None = None
    failures: list[str] = field(default_factory=list)
    digital_source_type: str | None = None
    issuer: str | None = None
    common_name: str | None = None
    facelink: bool | None = None
    manifest: SessionManifest | None = None
    manifest_error: str | None = None
    manifest_status: str | None = None
    signed_by_receiver: bool | None = None
    reason: str | None = None

    @property
    def valid(self) -> bool | None:
        """Claim signature, hard binding and certificate profile verify (trust aside)."""
        if not self.present:
            return None
        return self.validation_state in ("Valid", "Trusted")

    def as_dict(self) -> dict:
        return {
            "available": self.available,
            "present": self.present,
            "valid": self.valid,
            "validation_state": self.validation_state,
            "failures": self.failures,
            "digital_source_type": self.digital_source_type,
            "issuer": self.issuer,
            "common_name": self.common_name,
            "facelink_manifest": self.facelink,
            "signed_by_receiver": self.signed_by_receiver,
            "reason": self.reason,
        }


def _reader(c2pa, path: Path, mime: str, settings: dict | None):
    with open(path, "rb") as f:
        if settings is None:
            return c2pa.Reader(mime, f)
        return c2pa.Reader(mime, f, context=c2pa.Context.from_dict(settings))


def read_c2pa(video: str | os.PathLike[str]) -> C2paReport:
    """Read and check the C2PA manifest of ``video`` (never raises for a bad or missing one)."""
    ok, why = c2pa_available()
    if not ok:
        return C2paReport(False, reason=why)
    import c2pa

    path = Path(video)
    mime = C2PA_FORMATS.get(path.suffix.lower(), "video/mp4")
    rep = C2paReport(True)
    try:
        reader = _reader(c2pa, path, mime, None)
        with reader:
            active = reader.get_active_manifest()
            state = reader.get_validation_state()
            results = reader.get_validation_results() or {}
    except c2pa.C2paError as e:
        text = str(e)
        if "ManifestNotFound" in type(e).__name__ or "ManifestNotFound" in text or "no JUMBF" in text:
            rep.present = False
            rep.reason = "no C2PA manifest in the file"
        else:
            rep.present = False
            rep.reason = f"C2PA data unreadable: {text[:200]}"
        return rep
    except OSError as e:
        rep.reason = f"cannot read: {e.strerror}"
        return rep
    rep.present = active is not None
    if active is None:
        rep.reason = "no active C2PA manifest"
        return rep
    rep.validation_state = state
    am = results.get("activeManifest") or {}
    rep.failures = sorted({str(f.get("code")) for f in am.get("failure", []) if isinstance(f, dict)})
    info = active.get("signature_info") or {}
    rep.issuer, rep.common_name = info.get("issuer"), info.get("common_name")
    serial = info.get("cert_serial_number")
    data = None
    for a in active.get("assertions") or []:
        label = a.get("label", "")
        if label.startswith("c2pa.actions"):
            for act in (a.get("data") or {}).get("actions") or []:
                if act.get("action") == "c2pa.created":
                    rep.digital_source_type = act.get("digitalSourceType")
        elif label == ASSERTION_LABEL:
            data = a.get("data")
    rep.facelink = False
    if not isinstance(data, dict) or not isinstance(data.get("manifest"), dict):
        rep.reason = "the C2PA manifest carries no FaceLink session manifest"
        return rep
    try:
        rep.manifest = parse_manifest(json.dumps(data["manifest"]).encode("utf-8"))
        rep.facelink = True
    except ManifestError as e:
        rep.manifest_error = str(e)
        rep.manifest_status = e.status
        rep.reason = f"embedded FaceLink manifest: {e}"
        return rep
    rep.signed_by_receiver = _signed_by_receiver(c2pa, path, mime, rep.manifest, data.get("certificates"), serial)
    if not rep.signed_by_receiver:
        rep.reason = "the C2PA claim is not signed with the certificate the FaceLink manifest names for its receiver key"
    elif rep.validation_state == "Valid" and rep.failures == ["signingCredential.untrusted"]:
        rep.reason = "valid, signed by the receiver's certificate from a local CA that is on no C2PA trust list (untrusted to C2PA tools)"
    return rep


def _signed_by_receiver(c2pa, path: Path, mime: str, manifest: SessionManifest, pems, serial) -> bool:
    """True iff the claim was signed with the certificate whose hash the receiver signed into its manifest."""
    from cryptography import x509
    from cryptography.hazmat.primitives import serialization

    if manifest.c2pa_certificate_sha256 is None or not isinstance(pems, list) or len(pems) != 2 or not all(isinstance(p, str) for p in pems):
        return False
    try:
        ee, ca = (x509.load_pem_x509_certificate(p.encode("ascii")) for p in pems)
    except (ValueError, UnicodeEncodeError):
        return False
    der = serialization.Encoding.DER
    if hashlib.sha256(ee.public_bytes(der)).digest() != manifest.c2pa_certificate_sha256:
        return False
    if hashlib.sha256(ca.public_bytes(der)).digest() != manifest.c2pa_ca_sha256:
        return False
    if certificate_key(ee) != manifest.receiver or str(ee.serial_number) != str(serial):
        return False
    # the claim's certificate chains to exactly that CA (and has that serial): the receiver's certificate
    try:
        with _reader(c2pa, path, mime, {"trust": {"trust_anchors": pems[1]}}) as r:
            am = (r.get_validation_results() or {}).get("activeManifest") or {}
    except c2pa.C2paError:
        return False
    codes = {str(f.get("code")) for f in am.get("failure", []) if isinstance(f, dict)}
    return not any(c.startswith(("signingCredential.", "claimSignature.")) for c in codes)
