"""Identity keys: an Ed25519 signing key plus a CurveZMQ key pair per device, in text files.

``NAME.key`` (mode 0600, secret)::

    # FaceLink identity key "NAME" (fingerprint 3f9a1c0e5b7d2a44). SECRET: keep mode 0600.
    format: facelink-key-v1
    name: NAME
    ed25519-secret: <64 hex digits: the 32-byte Ed25519 seed>
    curve-secret: <40 Z85 characters: the CurveZMQ secret key>

``NAME.pub`` (shareable)::

    # FaceLink public key "NAME" (fingerprint 3f9a1c0e5b7d2a44).
    format: facelink-pub-v1
    name: NAME
    ed25519: <64 hex digits>
    curve: <40 Z85 characters>
    binding: <128 hex digits: Ed25519 signature binding the name and Curve key to the Ed25519 key>

Lines are ``field: value``; ``#`` lines and blank lines are ignored; every field
appears exactly once.  The *fingerprint* of a key is the first 8 bytes of the
SHA-256 of its Ed25519 public key, as 16 hex digits.  No pickle, no ASN.1.
"""

from __future__ import annotations

import hashlib
import os
import re
import stat
from dataclasses import dataclass, field
from pathlib import Path

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives.asymmetric.ed25519 import (
    Ed25519PrivateKey,
    Ed25519PublicKey,
)

from .._home import facelink_home
from ..errors import InputError

__all__ = [
    "Identity",
    "PublicIdentity",
    "default_key_dir",
    "default_trust_dir",
    "facelink_home",
    "fingerprint",
    "generate_identity",
    "load_identity",
    "load_public",
    "parse_identity",
    "parse_public",
    "resolve_key_path",
    "resolve_public_key",
    "write_identity",
]

KEY_FORMAT = "facelink-key-v1"
PUB_FORMAT = "facelink-pub-v1"
#: key files are tiny; anything larger is not one of ours
MAX_KEY_FILE = 4096
_NAME = re.compile(r"[A-Za-z0-9_][A-Za-z0-9._-]{0,63}")
_HEX = re.compile(r"[0-9a-f]+")
_Z85 = "0123456789abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ.-:+=^!/*?&<>()[]{}@%$#"
_BINDING_DOMAIN = b"facelink/pub-binding/v1\x00"



def default_key_dir() -> Path:
    """Where ``facelink keys generate`` puts identities: ``$FACELINK_HOME/keys``."""
    return facelink_home() / "keys"


def default_trust_dir() -> Path:
    """The default trust directory: ``$FACELINK_HOME/trust``."""
    return facelink_home() / "trust"


def fingerprint(ed25519_public: bytes) -> str:
    """Short hex fingerprint (16 hex digits) of an Ed25519 public key."""
    if not isinstance(ed25519_public, (bytes, bytearray)) or len(ed25519_public) != 32:
        raise ValueError("an Ed25519 public key is 32 bytes")
    return hashlib.sha256(bytes(ed25519_public)).digest()[:8].hex()


def _check_name(name: object) -> str:
    if not isinstance(name, str):
        raise TypeError(f"key name must be a str, got {type(name).__name__}")
    if not _NAME.fullmatch(name):
        raise ValueError(f"key name {name!r} must be 1-64 of A-Z a-z 0-9 . _ - and not start with . or -")
    return name


def _z85_key(value: str) -> bytes:
    """A 40-character Z85 Curve key, checked (alphabet and exact round trip); ValueError otherwise."""
    from zmq.utils import z85

    if len(value) != 40 or any(c not in _Z85 for c in value):
        raise ValueError("a Curve key is 40 Z85 characters")
    raw = value.encode("ascii")
    try:
        ok = z85.encode(z85.decode(raw)) == raw
    except Exception:  # noqa: BLE001 - pyzmq raises KeyError/struct.error/ValueError on bad input
        ok = False
    if not ok:
        raise ValueError("a Curve key is 40 Z85 characters")
    return raw


def _binding_message(name: str, ed25519: bytes, curve: bytes) -> bytes:
    from zmq.utils import z85

    return _BINDING_DOMAIN + name.encode("ascii") + b"\x00" + ed25519 + z85.decode(curve)


@dataclass(frozen=True)
class PublicIdentity:
    """A device's public keys: Ed25519 (32 raw bytes) for seals, Curve (40-char Z85) for the link."""

    name: str
    ed25519: bytes
    curve: bytes
    binding: bytes = field(default=b"", repr=False, compare=False)

    def __post_init__(self) -> None:
        _check_name(self.name)
        if not isinstance(self.ed25519, bytes) or len(self.ed25519) != 32:
            raise ValueError("ed25519 must be 32 bytes")
        if not isinstance(self.curve, bytes):
            raise TypeError("curve must be bytes (40 Z85 characters)")
        _z85_key(self.curve.decode("ascii", "replace"))

    @property
    def fingerprint(self) -> str:
        """16 hex digits naming this key everywhere it is shown."""
        return fingerprint(self.ed25519)

    def verify(self, signature: bytes, message: bytes) -> bool:
        """True iff ``signature`` is this key's Ed25519 signature of ``message``."""
        if len(signature) != 64:
            return False
        try:
            Ed25519PublicKey.from_public_bytes(self.ed25519).verify(signature, message)
        except (InvalidSignature, ValueError):
            return False
        return True

    def binding_valid(self) -> bool:
        """True iff the file's binding signature ties name and Curve key to the Ed25519 key."""
        return self.verify(self.binding, _binding_message(self.name, self.ed25519, self.curve))

    def to_text(self) -> str:
        """The ``NAME.pub`` file contents."""
        return (
            f'# FaceLink public key "{self.name}" (fingerprint {self.fingerprint}).\n'
            f"# Share freely; a receiver trusts it with `facelink keys trust {self.name}.pub`.\n"
            f"format: {PUB_FORMAT}\n"
            f"name: {self.name}\n"
            f"ed25519: {self.ed25519.hex()}\n"
            f"curve: {self.curve.decode('ascii')}\n"
            f"binding: {self.binding.hex()}\n"
        )


@dataclass(frozen=True, eq=False)
class Identity:
    """A device identity: the Ed25519 signing key and the CurveZMQ secret key, with the public half."""

    name: str
    signing_key: Ed25519PrivateKey = field(repr=False)
    curve_secret: bytes = field(repr=False)
    public: PublicIdentity

    @property
    def fingerprint(self) -> str:
        return self.public.fingerprint

    def sign(self, message: bytes) -> bytes:
        """The 64-byte Ed25519 signature of ``message``."""
        return self.signing_key.sign(message)

    def to_text(self) -> str:
        """The ``NAME.key`` file contents (secret)."""
        from cryptography.hazmat.primitives import serialization

        seed = self.signing_key.private_bytes(
            serialization.Encoding.Raw, serialization.PrivateFormat.Raw, serialization.NoEncryption()
        )
        return (
            f'# FaceLink identity key "{self.name}" (fingerprint {self.fingerprint}).\n'
            "# SECRET: keep this file mode 0600 and never share it; share NAME.pub instead.\n"
            f"format: {KEY_FORMAT}\n"
            f"name: {self.name}\n"
            f"ed25519-secret: {seed.hex()}\n"
            f"curve-secret: {self.curve_secret.decode('ascii')}\n"
        )


def _identity(name: str, signing_key: Ed25519PrivateKey, curve_secret: bytes) -> Identity:
    import zmq
    from cryptography.hazmat.primitives import serialization

    pub = signing_key.public_key().public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)
    curve_public = zmq.curve_public(curve_secret)
    binding = signing_key.sign(_binding_message(name, pub, curve_public))
    return Identity(name, signing_key, curve_secret, PublicIdentity(name, pub, curve_public, binding))


def generate_identity(name: str) -> Identity:
    """A fresh identity: a new Ed25519 key and a new CurveZMQ key pair."""
    import zmq

    _check_name(name)
    _, curve_secret = zmq.curve_keypair()
    return _identity(name, Ed25519PrivateKey.generate(), curve_secret)


def _fields(data: bytes, what: str, expected: tuple[str, ...]) -> dict[str, str]:
    """Parse ``field: value`` lines; ValueError for anything but exactly the expected fields."""
    if len(data) > MAX_KEY_FILE:
        raise ValueError(f"larger than {MAX_KEY_FILE} bytes")
    try:
        text = data.decode("ascii")
    except UnicodeDecodeError:
        raise ValueError("not ASCII text") from None
    out: dict[str, str] = {}
    for n, raw in enumerate(text.split("\n"), 1):
        line = raw.rstrip("\r").strip()
        if not line or line.startswith("#"):
            continue
        key, sep, value = line.partition(":")
        key, value = key.strip(), value.strip()
        if not sep or key not in expected:
            raise ValueError(f"line {n}: unexpected {key[:20]!r}")
        if key in out:
            raise ValueError(f"line {n}: {key} given twice")
        out[key] = value
    missing = [k for k in expected if k not in out]
    if missing:
        raise ValueError(f"missing {', '.join(missing)}")
    if out["format"] != what:
        raise ValueError(f"format is {out['format'][:30]!r}, expected {what}")
    return out


def _hex(value: str, nbytes: int, what: str) -> bytes:
    if len(value) != 2 * nbytes or not _HEX.fullmatch(value):
        raise ValueError(f"{what} must be {2 * nbytes} lowercase hex digits")
    return bytes.fromhex(value)


def parse_public(data: bytes, source: str = "public key") -> PublicIdentity:
    """Parse a ``.pub`` file; InputError if malformed or if its binding signature is wrong."""
    try:
        f = _fields(data, PUB_FORMAT, ("format", "name", "ed25519", "curve", "binding"))
        pub = PublicIdentity(
            _check_name(f["name"]),
            _hex(f["ed25519"], 32, "ed25519"),
            _z85_key(f["curve"]),
            _hex(f["binding"], 64, "binding"),
        )
    except ValueError as e:
        raise InputError(f"{source}: not a FaceLink public key file ({e}); regenerate it with `facelink keys generate`") from None
    if not pub.binding_valid():
        raise InputError(f"{source}: binding signature does not match its keys (altered file?); get a fresh copy from the key's owner")
    return pub


def parse_identity(data: bytes, source: str = "identity key") -> Identity:
    """Parse a ``.key`` file (no permission check: see :func:`load_identity`); InputError if malformed."""
    try:
        f = _fields(data, KEY_FORMAT, ("format", "name", "ed25519-secret", "curve-secret"))
        name = _check_name(f["name"])
        seed = _hex(f["ed25519-secret"], 32, "ed25519-secret")
        curve_secret = _z85_key(f["curve-secret"])
    except ValueError as e:
        raise InputError(f"{source}: not a FaceLink identity key file ({e}); regenerate it with `facelink keys generate`") from None
    return _identity(name, Ed25519PrivateKey.from_private_bytes(seed), curve_secret)


def _read_small(path: Path, what: str) -> bytes:
    try:
        with open(path, "rb") as f:
            data = f.read(MAX_KEY_FILE + 1)
    except FileNotFoundError:
        raise InputError(f"{path}: no such {what}; create one with `facelink keys generate NAME`") from None
    except IsADirectoryError:
        raise InputError(f"{path}: is a directory, expected a {what}") from None
    except OSError as e:
        raise InputError(f"{path}: cannot read {what} ({e.strerror})") from None
    return data


def check_private_permissions(path: Path) -> None:
    """Refuse a private key file that group or others may read or write (like ssh)."""
    try:
        st = os.stat(path)
    except FileNotFoundError:
        raise InputError(f"{path}: no such identity key; create one with `facelink keys generate NAME`") from None
    if not stat.S_ISREG(st.st_mode):
        raise InputError(f"{path}: not a regular file, expected an identity key")
    mode = stat.S_IMODE(st.st_mode)
    if mode & 0o077:
        raise InputError(f"{path}: private key permissions {mode:04o} are too open; run `chmod 600 {path}`")


def _is_public_key_file(p: Path) -> bool:
    """A ``.pub`` file given where the secret key is needed (it is world-readable by design)."""
    try:
        if not p.is_file():
            return False
        with open(p, "rb") as f:
            head = f.read(MAX_KEY_FILE + 1)
    except OSError:
        return False
    return any(line.strip() == b"format: facelink-pub-v1" for line in head.splitlines())


def load_identity(path: str | os.PathLike[str]) -> Identity:
    """Load ``NAME.key``; refuses files readable or writable by group/others, and public key files."""
    p = Path(path)
    if _is_public_key_file(p):
        secret = p.with_suffix(".key") if p.suffix == ".pub" else None
        hint = f" (probably {secret})" if secret is not None else ""
        raise InputError(f"{p}: this is a public key; signing needs the secret identity key NAME.key{hint}")
    check_private_permissions(p)
    return parse_identity(_read_small(p, "identity key"), str(p))


def load_public(path: str | os.PathLike[str]) -> PublicIdentity:
    """Load a ``.pub`` file, or the public half of a ``.key`` file (permission-checked)."""
    p = Path(path)
    if p.suffix == ".key":
        return load_identity(p).public
    return parse_public(_read_small(p, "public key"), str(p))


def _is_path(spec: str) -> bool:
    return Path(spec).expanduser().exists() or os.sep in spec or spec.endswith((".key", ".pub"))


def resolve_key_path(spec: str, key_dir: str | os.PathLike[str] | None = None) -> Path:
    """``--key`` argument to a path: a path as given (an existing file, or one with a
    ``/`` or a ``.key``/``.pub`` suffix), else the name's ``KEY_DIR/SPEC.key``."""
    if _is_path(spec):
        return Path(spec).expanduser()
    return Path(key_dir or default_key_dir()) / f"{spec}.key"


def resolve_public_key(
    spec: str,
    key_dir: str | os.PathLike[str] | None = None,
    trust_dir: str | os.PathLike[str] | None = None,
) -> PublicIdentity:
    """A public key argument (``--receiver-key``): the one lookup rule for key names.

    A path (as :func:`resolve_key_path` tells them) is used as given.  A name is looked
    up in the key directory first (``KEY_DIR/NAME.pub``, else the public half of
    ``KEY_DIR/NAME.key``), then in the trust directory by name or fingerprint.
    """
    if _is_path(spec):
        return load_public(Path(spec).expanduser())
    kd = Path(key_dir or default_key_dir())
    td = Path(trust_dir).expanduser() if trust_dir is not None else default_trust_dir()
    for candidate in (kd / f"{spec}.pub", kd / f"{spec}.key"):
        if _NAME.fullmatch(spec) and candidate.is_file():
            return load_public(candidate)
    from ._trust import TrustStore

    found = TrustStore.load(td).find(spec) if td.is_dir() else None
    if found is None:
        raise InputError(
            f"{spec}: no such key file, no key of that name in {kd}, and no key of that name or fingerprint "
            f"trusted in {td}; give the receiver's .pub path, or `facelink keys trust RECEIVER.pub`"
        )
    return found


def _make_private_dir(d: Path) -> None:
    try:
        d.mkdir(parents=True, exist_ok=True, mode=0o700)
    except OSError as e:
        raise InputError(f"{d}: cannot create key directory ({e.strerror})") from None
    if not d.is_dir():
        raise InputError(f"{d}: not a directory")


def write_identity(identity: Identity, directory: str | os.PathLike[str]) -> tuple[Path, Path]:
    """Write ``DIR/NAME.key`` (0600) and ``DIR/NAME.pub``; never overwrites either."""
    d = Path(directory)
    _make_private_dir(d)
    key_path, pub_path = d / f"{identity.name}.key", d / f"{identity.name}.pub"
    for p in (key_path, pub_path):
        if p.exists() or p.is_symlink():
            raise InputError(f"{p}: already exists; pick another name or remove the old key first")
    written: list[Path] = []
    try:
        for p, text, mode in ((key_path, identity.to_text(), 0o600), (pub_path, identity.public.to_text(), 0o644)):
            fd = os.open(p, os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_NOFOLLOW", 0), mode)
            written.append(p)
            with os.fdopen(fd, "w", encoding="ascii") as f:
                f.write(text)
            os.chmod(p, mode)  # umask may have removed bits; make the mode exact
    except FileExistsError:
        for p in written:
            p.unlink(missing_ok=True)
        raise InputError(f"{d}/{identity.name}.*: already exists; pick another name or remove the old key first") from None
    except OSError as e:
        for p in written:
            p.unlink(missing_ok=True)
        raise InputError(f"{d}: cannot write key files ({e.strerror})") from None
    return key_path, pub_path
