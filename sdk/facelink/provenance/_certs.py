"""X.509 certificates for C2PA: a local CA, and end-entity certificates for receivers' Ed25519 keys.

C2PA signs claims with X.509 credentials, not bare keys.  ``facelink keys cert NAME``
issues a certificate for the Ed25519 key of identity ``NAME`` (the key that signs the
FaceLink manifest and whose fingerprint the watermark carries), from a CA kept beside
the keys::

    KEYDIR/CA.ca.key     the CA's Ed25519 private key (PKCS#8 PEM, mode 0600)
    KEYDIR/CA.ca.pem     the CA's self-signed certificate
    KEYDIR/NAME.c2pa.pem the chain C2PA embeds: NAME's certificate, then the CA's

The end-entity certificate has what the C2PA certificate profile requires of a
claim signer: X.509 v3, critical key usage digitalSignature only, extended key usage
emailProtection and c2pa-kp-claimSigning (never anyExtendedKeyUsage), basic
constraints cA=false, subject and authority key identifiers, and an Ed25519
signature.  A C2PA validator checks the chain structurally, then looks for its root
on a trust list: a local CA is on none, so validators report the credential as
*untrusted* ("Valid", not "Trusted").  That is honest: trust in a FaceLink receiver
comes from FaceLink trust directories (``facelink verify --trust``); a deployment
that wants C2PA-level trust issues the receiver's certificate from a CA that is on
the C2PA trust list instead (``--ca`` accepts any CA whose key file is here).
"""

from __future__ import annotations

import datetime as _dt
import hashlib
import os
from dataclasses import dataclass
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import (
    Ed25519PrivateKey,
    Ed25519PublicKey,
)
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID, ObjectIdentifier

from ..errors import InputError
from ..security import Identity, default_key_dir, fingerprint

__all__ = [
    "C2PA_CLAIM_SIGNING",
    "DEFAULT_CA",
    "CertChain",
    "certificate_key",
    "chain_path",
    "ensure_chain",
    "issue_certificate",
    "load_chain",
    "load_or_create_ca",
]

#: c2pa-kp-claimSigning extended key usage (C2PA 2.x)
C2PA_CLAIM_SIGNING = ObjectIdentifier("1.3.6.1.4.1.62558.2.1")
#: the CA ``facelink keys cert`` uses unless told otherwise
DEFAULT_CA = "local"
CA_DAYS = 3650
CERT_DAYS = 365
#: re-issue automatic certificates this close to expiry
RENEW_BEFORE = _dt.timedelta(days=7)
MAX_PEM = 64 << 10


def _now() -> _dt.datetime:
    return _dt.datetime.now(_dt.timezone.utc)


def chain_path(name: str, key_dir: str | os.PathLike[str] | None = None) -> Path:
    """Where the C2PA certificate chain of identity ``name`` lives: ``KEYDIR/NAME.c2pa.pem``."""
    return Path(key_dir or default_key_dir()) / f"{name}.c2pa.pem"


def _write_new(path: Path, data: bytes, mode: int) -> None:
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC | getattr(os, "O_NOFOLLOW", 0), mode)
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(data)
        os.chmod(tmp, mode)
        os.replace(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise


def _read(path: Path, what: str) -> bytes:
    try:
        with open(path, "rb") as f:
            data = f.read(MAX_PEM + 1)
    except OSError as e:
        raise InputError(f"{path}: cannot read {what} ({e.strerror})") from None
    if len(data) > MAX_PEM:
        raise InputError(f"{path}: too large to be a {what}")
    return data


@dataclass(frozen=True)
class CertChain:
    """An end-entity certificate and the CA certificate that issued it."""

    certificate: x509.Certificate
    ca: x509.Certificate

    def pem(self) -> bytes:
        """The chain as C2PA embeds it: end-entity first."""
        return self.certificate.public_bytes(serialization.Encoding.PEM) + self.ca.public_bytes(serialization.Encoding.PEM)

    @property
    def certificate_sha256(self) -> bytes:
        return hashlib.sha256(self.certificate.public_bytes(serialization.Encoding.DER)).digest()

    @property
    def ca_sha256(self) -> bytes:
        return hashlib.sha256(self.ca.public_bytes(serialization.Encoding.DER)).digest()

    @property
    def public_key(self) -> bytes | None:
        return certificate_key(self.certificate)


def certificate_key(cert: x509.Certificate) -> bytes | None:
    """The raw Ed25519 public key of a certificate, or None for other key types."""
    key = cert.public_key()
    if not isinstance(key, Ed25519PublicKey):
        return None
    return key.public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)


def _check_ca_name(name: str) -> str:
    from ..security._keys import _check_name

    try:
        return _check_name(name)
    except (TypeError, ValueError) as e:
        raise InputError(f"CA name: {e}") from None


def load_or_create_ca(name: str = DEFAULT_CA, key_dir: str | os.PathLike[str] | None = None, *, create: bool = True) -> tuple[Ed25519PrivateKey, x509.Certificate, bool]:
    """The CA ``KEYDIR/NAME.ca.{key,pem}``: (private key, certificate, created now)."""
    from ..security._keys import check_private_permissions

    _check_ca_name(name)
    d = Path(key_dir or default_key_dir())
    key_path, cert_path = d / f"{name}.ca.key", d / f"{name}.ca.pem"
    if key_path.exists() or cert_path.exists():
        check_private_permissions(key_path)
        try:
            key = serialization.load_pem_private_key(_read(key_path, "CA key"), password=None)
            cert = x509.load_pem_x509_certificate(_read(cert_path, "CA certificate"))
        except ValueError:
            raise InputError(f"{key_path}: not a FaceLink CA key/certificate pair; remove both files to create a new CA") from None
        if not isinstance(key, Ed25519PrivateKey) or certificate_key(cert) != key.public_key().public_bytes(
            serialization.Encoding.Raw, serialization.PublicFormat.Raw
        ):
            raise InputError(f"{cert_path}: does not belong to {key_path} (or is not Ed25519); remove both to create a new CA")
        return key, cert, False
    if not create:
        raise InputError(f"{cert_path}: no such CA; create it with `facelink keys cert NAME --ca {name}`")
    d.mkdir(parents=True, exist_ok=True, mode=0o700)
    key = Ed25519PrivateKey.generate()
    pub = key.public_key()
    raw = pub.public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)
    subject = x509.Name(
        [
            x509.NameAttribute(NameOID.ORGANIZATION_NAME, "FaceLink"),
            x509.NameAttribute(NameOID.COMMON_NAME, f"FaceLink CA {name} {fingerprint(raw)}"),
        ]
    )
    now = _now()
    cert = (
        x509.CertificateBuilder()
        .subject_name(subject)
        .issuer_name(subject)
        .public_key(pub)
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - _dt.timedelta(minutes=5))
        .not_valid_after(now + _dt.timedelta(days=CA_DAYS))
        .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
        .add_extension(
            x509.KeyUsage(False, False, False, False, False, key_cert_sign=True, crl_sign=True, encipher_only=False, decipher_only=False),
            critical=True,
        )
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(pub), critical=False)
        .sign(key, None)
    )
    pem_key = key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption())
    _write_new(key_path, pem_key, 0o600)
    _write_new(cert_path, cert.public_bytes(serialization.Encoding.PEM), 0o644)
    return key, cert, True


def issue_certificate(
    identity: Identity,
    ca_key: Ed25519PrivateKey,
    ca_cert: x509.Certificate,
    *,
    days: int = CERT_DAYS,
) -> CertChain:
    """An end-entity certificate for ``identity``'s Ed25519 key that C2PA accepts for claim signing."""
    if not 1 <= days <= 3650:
        raise ValueError("certificate lifetime must be 1 to 3650 days")
    pub = Ed25519PublicKey.from_public_bytes(identity.public.ed25519)
    now = _now()
    not_after = min(now + _dt.timedelta(days=days), ca_cert.not_valid_after_utc)
    subject = x509.Name(
        [
            x509.NameAttribute(NameOID.ORGANIZATION_NAME, "FaceLink"),
            x509.NameAttribute(NameOID.COMMON_NAME, f"FaceLink receiver {identity.name} {identity.fingerprint}"),
        ]
    )
    cert = (
        x509.CertificateBuilder()
        .subject_name(subject)
        .issuer_name(ca_cert.subject)
        .public_key(pub)
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - _dt.timedelta(minutes=5))
        .not_valid_after(not_after)
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .add_extension(
            x509.KeyUsage(True, False, False, False, False, key_cert_sign=False, crl_sign=False, encipher_only=False, decipher_only=False),
            critical=True,
        )
        .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.EMAIL_PROTECTION, C2PA_CLAIM_SIGNING]), critical=False)
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(pub), critical=False)
        .add_extension(x509.AuthorityKeyIdentifier.from_issuer_public_key(ca_key.public_key()), critical=False)
        .sign(ca_key, None)
    )
    return CertChain(cert, ca_cert)


def load_chain(path: str | os.PathLike[str]) -> CertChain:
    """Read ``NAME.c2pa.pem`` (end-entity certificate, then its CA); InputError if malformed."""
    p = Path(path)
    try:
        certs = x509.load_pem_x509_certificates(_read(p, "certificate chain"))
    except ValueError:
        certs = []
    if len(certs) != 2:
        raise InputError(f"{p}: not a certificate chain (end-entity + CA); issue one with `facelink keys cert NAME`")
    return CertChain(certs[0], certs[1])


def write_chain(chain: CertChain, path: Path) -> None:
    path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
    _write_new(path, chain.pem(), 0o644)


def chain_problem(chain: CertChain, identity: Identity, now: _dt.datetime | None = None) -> str | None:
    """Why ``chain`` cannot sign for ``identity`` now (None: it can)."""
    now = now or _now()
    if chain.public_key != identity.public.ed25519:
        return f"its certificate is for another key than {identity.name} ({identity.fingerprint})"
    if not chain.certificate.not_valid_before_utc <= now <= chain.certificate.not_valid_after_utc:
        return f"its certificate is not valid now (valid {chain.certificate.not_valid_before_utc:%Y-%m-%d} to {chain.certificate.not_valid_after_utc:%Y-%m-%d})"
    return None


def ensure_chain(identity: Identity, key_dir: str | os.PathLike[str] | None = None, *, auto: bool) -> tuple[CertChain | None, str]:
    """The C2PA chain for ``identity`` from ``KEYDIR/NAME.c2pa.pem``: (chain, "") or (None, why not).

    With ``auto`` (this machine's own local key) a missing, mismatched or expiring chain
    is (re-)issued from the default local CA, created on first use.
    """
    path = chain_path(identity.name, key_dir)
    chain: CertChain | None = None
    why = f"no certificate for key {identity.name} ({path} missing); issue one with `facelink keys cert {identity.name}`"
    if path.exists():
        try:
            chain = load_chain(path)
            why = chain_problem(chain, identity) or ""
            if not why and chain.certificate.not_valid_after_utc - _now() < RENEW_BEFORE and auto:
                why = "its certificate expires soon"
        except InputError as e:
            why = str(e)
        if why:
            why = f"{path}: {why}; issue a new one with `facelink keys cert {identity.name}`"
            chain = None
    if chain is None and auto:
        ca_key, ca_cert, _ = load_or_create_ca(DEFAULT_CA, key_dir)
        chain = issue_certificate(identity, ca_key, ca_cert)
        write_chain(chain, path)
        why = ""
    return chain, why
