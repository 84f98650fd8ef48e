"""This machine's own signing identity, so local files are signed without any set-up.

Like SSH's host key: ``facelink encode`` without ``--key`` signs with
``$FACELINK_HOME/keys/local.key``, created on first use (mode 0600) and added to the
default trust directory, so a stream encoded here decodes here without ``--insecure``.
Another machine decodes it only after ``facelink keys trust local.pub``.
"""

from __future__ import annotations

from ..errors import InputError
from ._keys import Identity, default_key_dir, default_trust_dir, generate_identity, load_identity, write_identity
from ._trust import trust_key

__all__ = ["LOCAL_KEY_NAME", "local_identity"]

LOCAL_KEY_NAME = "local"


def local_identity() -> Identity:
    """Load (or create and locally trust) ``$FACELINK_HOME/keys/local.key``."""
    path = default_key_dir() / f"{LOCAL_KEY_NAME}.key"
    if path.exists():
        return load_identity(path)
    ident = generate_identity(LOCAL_KEY_NAME)
    try:
        write_identity(ident, default_key_dir())
    except InputError:
        if path.exists():  # another process created it first
            return load_identity(path)
        raise
    trust_key(default_trust_dir(), ident.public)
    return ident
