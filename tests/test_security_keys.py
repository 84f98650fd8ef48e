"""Identity keys and the trust directory: file formats, permissions, revocation, fuzzed parsers."""

from __future__ import annotations

import os
import re
import shutil

import pytest
from _support import FUZZ
from facelink.errors import InputError, VerificationError
from facelink.security import (
    TrustStore,
    fingerprint,
    generate_identity,
    load_identity,
    load_public,
    parse_identity,
    parse_public,
    parse_revoked,
    resolve_key_path,
    revoke_key,
    trust_key,
    write_identity,
)
from hypothesis import given
from hypothesis import strategies as st


@pytest.fixture(scope="module")
def alice():
    return generate_identity("alice")


@pytest.fixture()
def keydir(tmp_path, alice):
    key, pub = write_identity(alice, tmp_path / "keys")
    return key, pub


def test_generate_writes_private_0600_and_public_files(keydir, alice):
    key, pub = keydir
    assert oct(os.stat(key).st_mode & 0o777) == "0o600"
    assert oct(os.stat(key.parent).st_mode & 0o777) == "0o700"
    loaded = load_identity(key)
    assert loaded.public == alice.public
    assert loaded.sign(b"m") == alice.sign(b"m")  # Ed25519 is deterministic: the same secret came back
    assert loaded.curve_secret == alice.curve_secret
    assert load_public(pub) == alice.public
    assert load_public(key) == alice.public  # the public half of a .key file
    text = pub.read_text()
    assert "secret" not in text.split("format:")[1]
    assert alice.curve_secret.decode() not in text


def test_fingerprint_is_16_hex_digits_of_the_ed25519_key(alice):
    assert re.fullmatch(r"[0-9a-f]{16}", alice.fingerprint)
    assert fingerprint(alice.public.ed25519) == alice.fingerprint
    assert generate_identity("bob").fingerprint != alice.fingerprint


def test_generate_refuses_to_overwrite(keydir, alice):
    key, pub = keydir
    before = key.read_bytes()
    with pytest.raises(InputError, match="already exists"):
        write_identity(generate_identity("alice"), key.parent)
    assert key.read_bytes() == before
    pub.unlink()  # even half of a pair is not overwritten
    with pytest.raises(InputError, match="already exists"):
        write_identity(generate_identity("alice"), key.parent)
    assert key.read_bytes() == before


@pytest.mark.parametrize("mode", [0o644, 0o640, 0o604, 0o660, 0o602, 0o620])
def test_private_key_readable_or_writable_by_others_is_refused(keydir, mode):
    key, _ = keydir
    os.chmod(key, mode)
    with pytest.raises(InputError, match=rf"permissions {mode:04o} are too open; run `chmod 600"):
        load_identity(key)
    with pytest.raises(InputError, match="too open"):
        load_public(key)  # reading the public half of a .key goes through the same check
    os.chmod(key, 0o600)
    load_identity(key)
    os.chmod(key, 0o400)
    load_identity(key)


def test_public_key_given_as_the_signing_key_says_so(tmp_path, keydir, capsys):
    key, pub = keydir
    with pytest.raises(InputError, match=r"this is a public key; signing needs the secret identity key NAME.key \(probably .*alice.key\)"):
        load_identity(pub)  # mode 0644 by design: not "permissions too open"
    renamed = tmp_path / "alice-copy.txt"
    renamed.write_bytes(pub.read_bytes())
    with pytest.raises(InputError, match="this is a public key"):
        load_identity(renamed)
    from facelink.cli import main

    assert main(["encode", str(tmp_path / "in.mp4"), "-o", str(tmp_path / "o.flk"), "--key", str(pub)]) == 1
    err = capsys.readouterr().err  # the key is loaded before the input is opened
    assert "this is a public key" in err and "too open" not in err and err.count("\n") == 1


def test_missing_and_wrong_files_say_what_to_do(tmp_path, keydir):
    with pytest.raises(InputError, match="facelink keys generate"):
        load_identity(tmp_path / "nope.key")
    with pytest.raises(InputError, match="not a regular file"):
        d = tmp_path / "dir.key"
        d.mkdir(mode=0o700)
        load_identity(d)
    key, pub = keydir
    with pytest.raises(InputError, match="not a FaceLink public key file"):
        parse_public(key.read_bytes())  # a .key is not a .pub
    with pytest.raises(InputError, match="not a FaceLink identity key file"):
        parse_identity(pub.read_bytes())


def test_resolve_key_path(tmp_path, keydir):
    key, _ = keydir
    assert resolve_key_path("alice", key.parent) == key
    assert resolve_key_path(str(key)) == key
    assert resolve_key_path("other", tmp_path) == tmp_path / "other.key"


def test_pub_file_binding_detects_a_swapped_curve_key(keydir):
    _, pub = keydir
    other = generate_identity("mallory").public.curve.decode()
    text = pub.read_text()
    forged = re.sub(r"curve: \S+", f"curve: {other}", text)
    with pytest.raises(InputError, match="binding signature does not match"):
        parse_public(forged.encode())
    renamed = text.replace("name: alice", "name: alice2")
    with pytest.raises(InputError, match="binding signature does not match"):
        parse_public(renamed.encode())


@pytest.mark.parametrize(
    "edit, message",
    [
        (lambda t: t.replace("format: facelink-pub-v1", "format: facelink-pub-v9"), "format is"),
        (lambda t: t + "name: again\n", "given twice"),
        (lambda t: re.sub(r"ed25519: (\S+)", lambda m: "ed25519: " + m.group(1)[:-2], t), "64 lowercase hex"),
        (lambda t: re.sub(r"ed25519: (\S+)", lambda m: "ed25519: " + m.group(1).upper(), t), "lowercase hex"),
        (lambda t: re.sub(r"curve: \S+", "curve: short", t), "40 Z85"),
        (lambda t: re.sub(r"binding: \S+\n", "", t), "missing binding"),
        (lambda t: t + "extra: 1\n", "unexpected"),
        (lambda t: t.replace("name: alice", "name: ../etc"), "key name"),
        (lambda t: t + "#" * 5000, "larger than"),
    ],
)
def test_pub_file_parser_rejects_malformed_files(keydir, edit, message):
    _, pub = keydir
    with pytest.raises(InputError, match=message):
        parse_public(edit(pub.read_text()).encode())


def test_comments_and_blank_lines_are_ignored(keydir, alice):
    _, pub = keydir
    text = "\n# a comment\n\n" + pub.read_text().replace("\n", "\r\n") + "\n\n"
    assert parse_public(text.encode()) == alice.public


# ---------------------------------------------------------------- trust directory


def test_trust_lookup_and_curve_lookup(tmp_path, alice, keydir):
    _, pub = keydir
    tdir = tmp_path / "trust"
    path, added = trust_key(tdir, load_public(pub))
    assert added and path.name == f"alice-{alice.fingerprint}.pub"
    assert trust_key(tdir, load_public(pub)) == (path, False)
    store = TrustStore.load(tdir)
    assert store.lookup(alice.public.ed25519) == alice.public
    assert store.check(alice.public.ed25519) == alice.public
    assert store.by_curve(alice.public.curve) == alice.public
    assert store.find(alice.fingerprint) == alice.public and store.find("alice") == alice.public
    bob = generate_identity("bob")
    assert store.lookup(bob.public.ed25519) is None and store.by_curve(bob.public.curve) is None
    with pytest.raises(VerificationError, match=f"sender key {bob.fingerprint} is not trusted"):
        store.check(bob.public.ed25519)


@pytest.mark.parametrize("how", ["fingerprint", "pubfile", "name", "fullhex"])
def test_revoked_key_stays_refused_even_if_readded(tmp_path, alice, keydir, how):
    _, pub = keydir
    tdir = tmp_path / "trust"
    trust_key(tdir, load_public(pub))
    spec = {"fingerprint": alice.fingerprint, "pubfile": str(pub), "name": "alice", "fullhex": alice.public.ed25519.hex()}[how]
    _, removed = revoke_key(tdir, spec)
    assert len(removed) == 1 and not removed[0].exists()
    store = TrustStore.load(tdir)
    assert store.is_revoked(alice.public.ed25519)
    # re-added by mistake: copied straight back into the directory
    shutil.copy(pub, tdir / "alice-again.pub")
    store = TrustStore.load(tdir)
    assert len(store.keys) == 1
    assert store.lookup(alice.public.ed25519) is None
    assert store.by_curve(alice.public.curve) is None
    with pytest.raises(VerificationError, match=f"sender key {alice.fingerprint} is revoked"):
        store.check(alice.public.ed25519)
    with pytest.raises(InputError, match="is revoked"):
        trust_key(tdir, load_public(pub))


def test_revoke_unknown_fingerprint_is_recorded(tmp_path):
    tdir = tmp_path / "trust"
    entry, removed = revoke_key(tdir, "00112233:44556677")
    assert entry == "0011223344556677" and removed == []
    with pytest.raises(InputError, match="not a key file, fingerprint"):
        revoke_key(tdir, "nobody")


def test_malformed_revocation_list_fails_closed(tmp_path, alice, keydir):
    _, pub = keydir
    tdir = tmp_path / "trust"
    trust_key(tdir, load_public(pub))
    (tdir / "revoked").write_text("this is not a key\n")
    with pytest.raises(InputError, match="revocation list"):
        TrustStore.load(tdir)


def test_bad_pub_file_in_trust_dir_is_skipped_and_reported(tmp_path, alice, keydir):
    _, pub = keydir
    tdir = tmp_path / "trust"
    trust_key(tdir, load_public(pub))
    (tdir / "junk.pub").write_text("garbage")
    store = TrustStore.load(tdir)
    assert [k.name for k in store.keys] == ["alice"]
    assert len(store.problems) == 1 and "junk.pub" in store.problems[0]


def test_unsafe_or_missing_trust_dir_is_refused(tmp_path):
    with pytest.raises(InputError, match="no such trust directory"):
        TrustStore.load(tmp_path / "missing")
    d = tmp_path / "open"
    d.mkdir()
    os.chmod(d, 0o777)
    with pytest.raises(InputError, match="writable by group/others"):
        TrustStore.load(d)


# ---------------------------------------------------------------- fuzz: only InputError, never a crash


@FUZZ
@given(st.binary(max_size=600))
def test_fuzz_key_parsers_on_random_bytes(data):
    for parse in (parse_public, parse_identity, parse_revoked):
        try:
            parse(data)
        except InputError:
            pass


_VALID = {}


def _valid_texts():
    if not _VALID:
        ident = generate_identity("fuzz")
        _VALID["pub"] = ident.public.to_text().encode()
        _VALID["key"] = ident.to_text().encode()
        _VALID["revoked"] = f"# c\n{ident.public.ed25519.hex()} fuzz 2024-01-01\n{ident.fingerprint}\n".encode()
    return _VALID


@FUZZ
@given(
    st.sampled_from(["pub", "key", "revoked"]),
    st.lists(st.tuples(st.integers(0, 10_000), st.integers(0, 255)), min_size=1, max_size=6),
    st.integers(0, 10_000),
)
def test_fuzz_key_parsers_on_mutated_valid_files(which, edits, cut):
    data = bytearray(_valid_texts()[which])
    for pos, value in edits:
        data[pos % len(data)] = value
    data = bytes(data[: max(1, cut % (len(data) + 1))])
    parse = {"pub": parse_public, "key": parse_identity, "revoked": parse_revoked}[which]
    try:
        parse(data)
    except InputError:
        pass
