"""``facelink keys generate|show|trust|revoke|cert``: device identities, trust directories, C2PA certificates."""

from __future__ import annotations

from pathlib import Path

from ._common import emit_json


def register(sub) -> None:
    p = sub.add_parser("keys", help="identity keys (Ed25519 + CurveZMQ) and trust directories")
    ksub = p.add_subparsers(dest="keys_command", metavar="ACTION")
    ksub.required = True

    g = ksub.add_parser(
        "generate",
        help="create DIR/NAME.key (secret, mode 0600), DIR/NAME.pub and the C2PA certificate DIR/NAME.c2pa.pem",
        description="Create identity NAME: DIR/NAME.key (secret, mode 0600) and DIR/NAME.pub (share this one). "
        "It also issues NAME's C2PA certificate (DIR/NAME.c2pa.pem, from the local CA DIR/CA.ca.key, created on first "
        "use), so recordings made with this key carry C2PA Content Credentials; --no-cert skips that (e.g. for a "
        "sender-only device) and `facelink keys cert NAME` issues it later.",
    )
    g.add_argument("name", metavar="NAME", help="key name: letters, digits, . _ - (e.g. kiosk-1)")
    g.add_argument("--dir", metavar="DIR", help="key directory (default: $FACELINK_HOME/keys)")
    g.add_argument("--no-cert", action="store_true", help="do not issue the C2PA certificate (see `facelink keys cert`)")
    g.add_argument("--ca", default="local", metavar="CA", help="CA name in the key directory for the certificate (default: local; created if absent)")
    g.add_argument("--json", action="store_true", help="print one JSON object")
    g.set_defaults(func=_generate)

    s = ksub.add_parser("show", help="show keys: named ones, all in the key directory, or a trust directory")
    s.add_argument("keys", nargs="*", metavar="KEY", help="key name (in --dir) or path to a .key/.pub file")
    s.add_argument("--dir", metavar="DIR", help="key directory (default: $FACELINK_HOME/keys)")
    s.add_argument("--trust", metavar="TRUSTDIR", help="list the trusted and revoked keys of this trust directory")
    s.add_argument("--json", action="store_true", help="print one JSON object")
    s.set_defaults(func=_show)

    t = ksub.add_parser("trust", help="trust a sender's public key (copy PUBFILE into the trust directory)")
    t.add_argument("pubfile", metavar="PUBFILE", help="the sender's NAME.pub")
    t.add_argument("--dir", metavar="TRUSTDIR", help="trust directory (default: $FACELINK_HOME/trust)")
    t.add_argument("--json", action="store_true", help="print one JSON object")
    t.set_defaults(func=_trust)

    r = ksub.add_parser("revoke", help="revoke a key: it stays refused even if its .pub is trusted again")
    r.add_argument("key", metavar="KEY", help="a .pub file, a fingerprint (16 hex digits) or a trusted key's name")
    r.add_argument("--dir", metavar="TRUSTDIR", help="trust directory (default: $FACELINK_HOME/trust)")
    r.add_argument("--json", action="store_true", help="print one JSON object")
    r.set_defaults(func=_revoke)

    c = ksub.add_parser(
        "cert",
        help="issue the C2PA certificate chain (DIR/NAME.c2pa.pem) for identity NAME's Ed25519 key",
        description="Issue an X.509 certificate for the Ed25519 key of identity NAME, signed by a local CA "
        "(DIR/CA.ca.key + DIR/CA.ca.pem, created on first use), so the receiver can sign C2PA manifests in "
        "recorded MP4 files. A local CA is on no C2PA trust list: C2PA validators report such credentials as untrusted.",
    )
    c.add_argument("name", metavar="NAME", help="identity key name (in --dir) or path to its .key file")
    c.add_argument("--ca", default="local", metavar="CA", help="CA name in the key directory (default: local; created if absent)")
    c.add_argument("--days", type=int, default=365, metavar="N", help="certificate lifetime in days (default: 365)")
    c.add_argument("--dir", metavar="DIR", help="key directory (default: $FACELINK_HOME/keys)")
    c.add_argument("--json", action="store_true", help="print one JSON object")
    c.set_defaults(func=_cert)


#: the private key of a local C2PA CA beside the identities (see ``facelink keys cert``)
CA_KEY_SUFFIX = ".ca.key"


def _usage(msg: str):
    from . import _UsageError

    return _UsageError(f"facelink keys: {msg}")


def _describe(pub, path=None) -> dict:
    out = {
        "name": pub.name,
        "fingerprint": pub.fingerprint,
        "ed25519": pub.ed25519.hex(),
        "curve": pub.curve.decode("ascii"),
    }
    if path is not None:
        out["path"] = str(path)
    return out


def _generate(args) -> int:
    from ..security import default_key_dir, generate_identity, write_identity

    try:
        ident = generate_identity(args.name)
    except ValueError as e:
        raise _usage(str(e)) from None
    key_dir = Path(args.dir).expanduser() if args.dir else default_key_dir()
    ca = None
    if not args.no_cert:
        from ..errors import InputError
        from ..provenance import load_or_create_ca

        for p in (key_dir / f"{ident.name}.key", key_dir / f"{ident.name}.pub"):
            if p.exists() or p.is_symlink():  # say so before a CA is created for nothing
                raise InputError(f"{p}: already exists; pick another name or remove the old key first")
        ca = load_or_create_ca(args.ca, key_dir)  # a broken CA fails here, before any key is written
    key_path, pub_path = write_identity(ident, key_dir)
    chain_file = None
    if ca is not None:
        from ..provenance import chain_path, issue_certificate
        from ..provenance._certs import write_chain

        chain_file = chain_path(ident.name, key_dir)
        write_chain(issue_certificate(ident, ca[0], ca[1]), chain_file)
    if args.json:
        emit_json(
            {
                **_describe(ident.public),
                "key": str(key_path),
                "pub": str(pub_path),
                "c2pa_chain": str(chain_file) if chain_file else None,
                "ca_created": bool(ca and ca[2]),
            }
        )
    else:
        print(f"{key_path} (secret, mode 0600)\n{pub_path} (share this one)\nfingerprint {ident.fingerprint}")
        if chain_file is not None:
            print(f"{chain_file} (C2PA certificate from the local CA {args.ca}; C2PA validators show it as untrusted)")
    return 0


def _show(args) -> int:
    from ..errors import InputError
    from ..security import TrustStore, default_key_dir, load_public, resolve_key_path
    from ..security._local import LOCAL_KEY_NAME

    key_dir = Path(args.dir).expanduser() if args.dir else default_key_dir()
    shown: list[dict] = []
    problems: list[str] = []
    if args.keys:
        for spec in args.keys:
            path = resolve_key_path(spec, key_dir)
            shown.append(_describe(load_public(path), path))
    elif not args.trust:
        if not key_dir.is_dir():
            raise InputError(f"{key_dir}: no key directory yet; create a key with `facelink keys generate NAME`")
        for path in sorted(key_dir.glob("*.key")):
            if path.name.endswith(CA_KEY_SUFFIX):  # a C2PA CA (`keys cert`/`keys generate`), not an identity
                continue
            try:
                shown.append(_describe(load_public(path), path))
            except InputError as e:
                problems.append(str(e))
                continue
            chain = path.with_name(path.name[: -len(".key")] + ".c2pa.pem")
            shown[-1]["c2pa_chain"] = str(chain) if chain.is_file() else None
    out: dict = {"keys": shown, "problems": problems}
    if args.trust:
        store = TrustStore.load(args.trust)
        out["trusted"] = [_describe(k) for k in store.keys if not store.is_revoked(k.ed25519)]
        out["revoked"] = sorted(store.revoked)
        out["problems"] = problems + list(store.problems)
    if args.json:
        emit_json(out)
        return 0
    for k in shown:
        cert = {None: f"  (no C2PA certificate: `facelink keys cert {k['name']}`)", "": ""}.get(k.get("c2pa_chain", ""), "  + C2PA certificate")
        if k.get("c2pa_chain", "") is None and k["name"] == LOCAL_KEY_NAME:
            cert = "  (C2PA certificate issued automatically at its first recording)"
        print(f"{k['fingerprint']}  {k['name']:<20} {k['path']}{cert}")
    if args.trust:
        print(f"trusted in {args.trust}:")
        for k in out["trusted"]:
            print(f"  {k['fingerprint']}  {k['name']}")
        if out["revoked"]:
            print("revoked:")
            for entry in out["revoked"]:
                print(f"  {entry[:16] if len(entry) == 64 else entry}")
    import sys

    for p in out["problems"]:
        print(f"facelink: warning: {p}", file=sys.stderr)
    return 0


def _trust(args) -> int:
    from ..security import default_trust_dir, load_public, trust_key

    pub = load_public(Path(args.pubfile).expanduser())
    directory = Path(args.dir).expanduser() if args.dir else default_trust_dir()
    path, added = trust_key(directory, pub)
    if args.json:
        emit_json({**_describe(pub, path), "added": added})
    else:
        state = "now trusted" if added else "already trusted"
        print(f"{pub.fingerprint}  {pub.name}: {state} ({path})")
    return 0


def _revoke(args) -> int:
    from ..security import default_trust_dir, revoke_key

    directory = Path(args.dir).expanduser() if args.dir else default_trust_dir()
    entry, removed = revoke_key(directory, args.key)
    from ..security import fingerprint

    fp = fingerprint(bytes.fromhex(entry)) if len(entry) == 64 else entry
    if args.json:
        emit_json({"revoked": entry, "fingerprint": fp, "removed": [str(p) for p in removed], "trust_dir": str(directory)})
    else:
        print(f"{fp}: revoked in {directory} ({len(removed)} trusted file(s) removed)")
    return 0


def _cert(args) -> int:
    from ..provenance import chain_path, issue_certificate, load_or_create_ca
    from ..provenance._certs import write_chain
    from ..security import default_key_dir, load_identity, resolve_key_path

    if not 1 <= args.days <= 3650:
        raise _usage("--days must be 1..3650")
    key_dir = Path(args.dir).expanduser() if args.dir else default_key_dir()
    key_path = resolve_key_path(args.name, key_dir)
    ident = load_identity(key_path)
    ca_key, ca_cert, created = load_or_create_ca(args.ca, key_dir)
    chain = issue_certificate(ident, ca_key, ca_cert, days=args.days)
    out_path = chain_path(ident.name, key_dir)
    write_chain(chain, out_path)
    cert = chain.certificate
    info = {
        "name": ident.name,
        "fingerprint": ident.fingerprint,
        "chain": str(out_path),
        "ca": str(key_dir / f"{args.ca}.ca.pem"),
        "ca_created": created,
        "subject": cert.subject.rfc4514_string(),
        "issuer": cert.issuer.rfc4514_string(),
        "serial": str(cert.serial_number),
        "not_after": cert.not_valid_after_utc.strftime("%Y-%m-%dT%H:%M:%SZ"),
        "certificate_sha256": chain.certificate_sha256.hex(),
    }
    if args.json:
        emit_json(info)
    else:
        if created:
            print(f"{info['ca']}: new local CA (its key {key_dir / (args.ca + '.ca.key')} is secret, mode 0600)")
        print(f"{out_path}: C2PA certificate for {ident.name} ({ident.fingerprint}), valid until {info['not_after']}")
        print("note: a local CA is on no C2PA trust list; C2PA validators will show these credentials as untrusted")
    return 0
