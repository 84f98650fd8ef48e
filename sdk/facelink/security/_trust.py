"""The trust directory: public keys a receiver accepts, and a revocation list that always wins.

Layout (like SSH's ``authorized_keys``, one file per key)::

    TRUSTDIR/NAME-FINGERPRINT.pub   trusted public keys (``facelink keys trust`` copies them here)
    TRUSTDIR/revoked                 one revoked key per line: ``<ed25519 hex | fingerprint> [note]``

A key listed in ``revoked`` stays refused even if its ``.pub`` file is copied
back by mistake.  A malformed ``revoked`` file makes the whole store unusable
(fail closed); a malformed ``.pub`` file is skipped and reported (that only
removes trust).  The directory must not be writable by group or others.
"""

from __future__ import annotations

import datetime as _dt
import os
import re
import stat
from dataclasses import dataclass
from pathlib import Path

from ..errors import InputError, VerificationError
from ._keys import PublicIdentity, fingerprint, load_public

__all__ = ["REVOKED_FILE", "TrustStore", "parse_revoked", "revoke_key", "trust_key"]

REVOKED_FILE = "revoked"
#: a revocation list larger than this is not one we wrote
MAX_REVOKED_FILE = 1 << 20
_ENTRY = re.compile(r"[0-9a-f]{64}|[0-9a-f]{16}")


def parse_revoked(data: bytes, source: str = "revoked") -> frozenset[str]:
    """Revoked entries (64-hex Ed25519 keys or 16-hex fingerprints); InputError if malformed."""
    if len(data) > MAX_REVOKED_FILE:
        raise InputError(f"{source}: larger than {MAX_REVOKED_FILE} bytes; fix or remove the revocation list")
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError:
        raise InputError(f"{source}: not UTF-8 text; fix the revocation list (one key or fingerprint per line)") from None
    out = set()
    for n, raw in enumerate(text.split("\n"), 1):
        line = raw.strip()
        if not line or line.startswith("#"):
            continue
        token = line.split(None, 1)[0]
        if not _ENTRY.fullmatch(token):
            raise InputError(
                f"{source}: line {n} does not start with a 64-hex key or 16-hex fingerprint; fix the revocation list"
            )
        out.add(token)
    return frozenset(out)


def _check_dir(d: Path) -> None:
    try:
        st = os.stat(d)
    except FileNotFoundError:
        raise InputError(f"{d}: no such trust directory; trust a sender with `facelink keys trust SENDER.pub --dir {d}`") from None
    if not stat.S_ISDIR(st.st_mode):
        raise InputError(f"{d}: not a directory, expected a trust directory")
    if stat.S_IMODE(st.st_mode) & 0o022:
        raise InputError(f"{d}: trust directory is writable by group/others; run `chmod go-w {d}`")


@dataclass(frozen=True)
class TrustStore:
    """Trusted public keys and revoked entries: pure lookups, loaded by :meth:`load`."""

    keys: tuple[PublicIdentity, ...] = ()
    revoked: frozenset[str] = frozenset()
    directory: Path | None = None
    #: ``.pub`` files that were skipped, with the reason (one line each)
    problems: tuple[str, ...] = ()

    @classmethod
    def load(cls, directory: str | os.PathLike[str]) -> TrustStore:
        """Read a trust directory; InputError if it is missing, unsafe, or its revocation list is malformed."""
        d = Path(directory).expanduser()
        _check_dir(d)
        revoked_path = d / REVOKED_FILE
        revoked: frozenset[str] = frozenset()
        if revoked_path.exists():
            try:
                revoked = parse_revoked(revoked_path.read_bytes(), str(revoked_path))
            except OSError as e:
                raise InputError(f"{revoked_path}: cannot read ({e.strerror}); fix its permissions") from None
        keys: list[PublicIdentity] = []
        problems: list[str] = []
        for p in sorted(d.glob("*.pub")):
            try:
                keys.append(load_public(p))
            except InputError as e:
                problems.append(str(e))
        return cls(tuple(keys), revoked, d, tuple(problems))

    def is_revoked(self, ed25519: bytes) -> bool:
        """True if the key (by full key or by fingerprint) is on the revocation list."""
        return ed25519.hex() in self.revoked or fingerprint(ed25519) in self.revoked

    def lookup(self, ed25519: bytes) -> PublicIdentity | None:
        """The trusted, unrevoked identity with this Ed25519 key, else None."""
        if len(ed25519) != 32 or self.is_revoked(ed25519):
            return None
        for k in self.keys:
            if k.ed25519 == ed25519:
                return k
        return None

    def check(self, ed25519: bytes) -> PublicIdentity:
        """The trusted identity, or VerificationError saying why the key is refused."""
        fp = fingerprint(ed25519)
        where = f" in {self.directory}" if self.directory else ""
        if self.is_revoked(ed25519):
            raise VerificationError(f"sender key {fp} is revoked{where}; the stream is refused")
        found = self.lookup(ed25519)
        if found is None:
            raise VerificationError(
                f"sender key {fp} is not trusted{where}; trust it with `facelink keys trust SENDER.pub` or pass --insecure"
            )
        return found

    def by_curve(self, curve: bytes) -> PublicIdentity | None:
        """The trusted, unrevoked identity owning this Curve public key (40-char Z85), else None."""
        for k in self.keys:
            if k.curve == curve and not self.is_revoked(k.ed25519):
                return k
        return None

    def find(self, spec: str) -> PublicIdentity | None:
        """A trusted key by fingerprint (16 hex), full Ed25519 hex, or name."""
        s = spec.replace(":", "").lower()
        for k in self.keys:
            if s in (k.fingerprint, k.ed25519.hex()) or spec == k.name:
                return k
        return None


def _now() -> str:
    return _dt.datetime.now(_dt.timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")


def _make_dir(d: Path) -> None:
    try:
        d.mkdir(parents=True, exist_ok=True, mode=0o700)
    except OSError as e:
        raise InputError(f"{d}: cannot create trust directory ({e.strerror})") from None
    _check_dir(d)


def trust_key(directory: str | os.PathLike[str], pub: PublicIdentity) -> tuple[Path, bool]:
    """Copy ``pub`` into the trust directory; returns (path, newly_added).  Refuses revoked keys."""
    d = Path(directory).expanduser()
    _make_dir(d)
    store = TrustStore.load(d)
    if store.is_revoked(pub.ed25519):
        raise InputError(
            f"key {pub.fingerprint} ({pub.name}) is revoked in {d / REVOKED_FILE}; remove its line there first if this is deliberate"
        )
    for p in sorted(d.glob("*.pub")):
        try:
            if load_public(p).ed25519 == pub.ed25519:
                return p, False
        except InputError:
            continue
    path = d / f"{pub.name}-{pub.fingerprint}.pub"
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_NOFOLLOW", 0), 0o644)
    except FileExistsError:
        raise InputError(f"{path}: already exists but does not hold this key; remove it first") from None
    with os.fdopen(fd, "w", encoding="ascii") as f:
        f.write(pub.to_text())
    return path, True


def revoke_key(directory: str | os.PathLike[str], spec: str) -> tuple[str, list[Path]]:
    """Revoke a key given as a ``.pub``/``.key`` path, fingerprint, full hex key or trusted name.

    Appends it to ``revoked`` and deletes its ``.pub`` files from the directory.
    Returns (the revoked entry, the removed files).
    """
    d = Path(directory).expanduser()
    _make_dir(d)
    store = TrustStore.load(d)
    p = Path(spec).expanduser()
    name = "-"
    if p.is_file():
        pub = load_public(p)
        entry, name = pub.ed25519.hex(), pub.name
    else:
        found = store.find(spec)
        token = spec.replace(":", "").lower()
        if found is not None:
            entry, name = found.ed25519.hex(), found.name
        elif _ENTRY.fullmatch(token):
            entry = token
        else:
            raise InputError(f"{spec}: not a key file, fingerprint (16 hex digits) or trusted key name; see `facelink keys show --trust {d}`")
    removed = []
    for q in sorted(d.glob("*.pub")):
        try:
            k = load_public(q)
        except InputError:
            continue
        if entry in (k.ed25519.hex(), k.fingerprint):
            q.unlink()
            removed.append(q)
    if entry not in store.revoked:
        path = d / REVOKED_FILE
        header = "" if path.exists() else (
            "# FaceLink revoked keys: one per line, '<ed25519 hex | fingerprint> [note]'.\n"
            "# Keys listed here stay refused even if their .pub file is added again.\n"
        )
        with open(path, "a", encoding="utf-8") as f:
            f.write(f"{header}{entry} {name} {_now()}\n")
    return entry, removed


