"""``facelink keys``: a new key comes with its C2PA certificate; ``show`` knows FaceLink's own CA files."""

from __future__ import annotations

import json

import pytest
from facelink.cli import main
from facelink.provenance import c2pa_available, chain_path, ensure_chain, load_chain
from facelink.security import default_key_dir, load_identity
from test_cli_decode import stream  # noqa: F401 - the signed 20-frame stream fixture

HAS_C2PA, C2PA_WHY = c2pa_available()


def _run(capsys, *argv):
    code = main(list(argv))
    out, err = capsys.readouterr()
    return code, out, err


def test_generate_issues_the_c2pa_certificate_with_the_key(tmp_path, capsys):
    kd = tmp_path / "keys"
    code, out, err = _run(capsys, "keys", "generate", "kiosk", "--dir", str(kd), "--json")
    assert code == 0, err
    info = json.loads(out)
    assert info["c2pa_chain"] == str(chain_path("kiosk", kd)) and info["ca_created"] is True
    ident = load_identity(kd / "kiosk.key")
    chain = load_chain(info["c2pa_chain"])
    assert chain.public_key == ident.public.ed25519
    chain.certificate.verify_directly_issued_by(chain.ca)
    got, why = ensure_chain(ident, kd, auto=False)  # what a recording with this key uses
    assert got is not None and why == ""
    # a second key reuses the CA; --no-cert leaves the certificate for `keys cert`
    code, out, _ = _run(capsys, "keys", "generate", "kiosk-2", "--dir", str(kd), "--json")
    assert code == 0 and json.loads(out)["ca_created"] is False
    assert load_chain(chain_path("kiosk-2", kd)).ca == chain.ca
    code, out, _ = _run(capsys, "keys", "generate", "tx-only", "--dir", str(kd), "--no-cert", "--json")
    assert code == 0 and json.loads(out)["c2pa_chain"] is None and not chain_path("tx-only", kd).exists()
    # an existing name fails before anything is written
    code, _, err = _run(capsys, "keys", "generate", "kiosk", "--dir", str(kd))
    assert code == 1 and "already exists" in err
    assert load_identity(kd / "kiosk.key").fingerprint == ident.fingerprint


def test_generate_with_a_broken_ca_writes_no_key(tmp_path, capsys):
    kd = tmp_path / "keys"
    kd.mkdir(mode=0o700)
    (kd / "local.ca.key").write_text("not a key\n")
    (kd / "local.ca.key").chmod(0o600)
    (kd / "local.ca.pem").write_text("not a certificate\n")
    code, _, err = _run(capsys, "keys", "generate", "kiosk", "--dir", str(kd))
    assert code == 1 and "local.ca.key" in err and err.count("\n") == 1
    assert not (kd / "kiosk.key").exists()


@pytest.mark.skipif(not HAS_C2PA, reason=f"c2pa-python unavailable: {C2PA_WHY}")
def test_a_recording_by_a_freshly_generated_key_gets_c2pa(stream, tmp_path, capsys):  # noqa: F811
    from facelink.pipeline import decode_file

    assert main(["keys", "generate", "fresh-rx"]) == 0  # the default key directory, as `receive --key fresh-rx` uses
    capsys.readouterr()
    rx = load_identity(default_key_dir() / "fresh-rx.key")
    res = decode_file(str(stream), str(tmp_path / "n.mp4"), identity=rx)
    assert res.provenance is not None and res.provenance.c2pa is True and res.provenance.c2pa_skipped is None


def test_show_skips_the_ca_files_and_reports_certificates(tmp_path, capsys):
    kd = tmp_path / "keys"
    assert main(["keys", "generate", "rx", "--dir", str(kd)]) == 0
    assert main(["keys", "generate", "tx", "--dir", str(kd), "--no-cert"]) == 0
    assert (kd / "local.ca.key").is_file()
    capsys.readouterr()
    code, out, err = _run(capsys, "keys", "show", "--dir", str(kd))
    assert code == 0 and err == "", "no warning about FaceLink's own CA key"
    assert "local.ca" not in out and "rx" in out and "no C2PA certificate" in out
    code, out, err = _run(capsys, "keys", "show", "--dir", str(kd), "--json")
    shown = json.loads(out)
    assert shown["problems"] == [] and [k["name"] for k in shown["keys"]] == ["rx", "tx"]
    assert shown["keys"][0]["c2pa_chain"] == str(chain_path("rx", kd)) and shown["keys"][1]["c2pa_chain"] is None
    # a file that really is not a key is still reported
    (kd / "junk.key").write_text("hello\n")
    (kd / "junk.key").chmod(0o600)
    code, _, err = _run(capsys, "keys", "show", "--dir", str(kd))
    assert code == 0 and "junk.key" in err and "not a FaceLink identity key file" in err


def test_public_key_names_use_one_lookup_rule(tmp_path):
    from facelink.security import trust_key
    from facelink.security._keys import resolve_public_key

    kd, td = tmp_path / "keys", tmp_path / "trust"
    assert main(["keys", "generate", "bob", "--dir", str(kd), "--no-cert"]) == 0
    assert main(["keys", "generate", "carol", "--dir", str(tmp_path / "elsewhere"), "--no-cert"]) == 0
    bob = load_identity(kd / "bob.key").public
    carol = load_identity(tmp_path / "elsewhere" / "carol.key").public
    trust_key(td, carol)
    assert resolve_public_key("bob", kd, td) == bob  # the key directory, like --key bob
    (kd / "bob.pub").unlink()
    assert resolve_public_key("bob", kd, td) == bob  # the public half of bob.key
    assert resolve_public_key("carol", kd, td) == carol  # then the trust directory, by name
    assert resolve_public_key(carol.fingerprint, kd, td) == carol  # or fingerprint
    assert resolve_public_key(str(tmp_path / "elsewhere" / "carol.pub"), kd, td) == carol  # a path as given
    with pytest.raises(Exception, match="no key of that name in .* trusted in"):
        resolve_public_key("dave", kd, td)


def test_send_finds_the_receiver_key_by_name_in_the_key_directory(tmp_path, capsys):
    assert main(["keys", "generate", "named-tx", "--no-cert"]) == 0
    assert main(["keys", "generate", "named-rx", "--no-cert"]) == 0  # in $FACELINK_HOME/keys, not trusted anywhere
    capsys.readouterr()
    base = ["send", str(tmp_path / "missing.mp4"), "--to", "tcp://127.0.0.1:9", "--key", "named-tx"]
    code = main([*base, "--receiver-key", "named-rx"])
    err = capsys.readouterr().err
    assert code == 1 and "missing.mp4" in err, "the key was found; the (missing) input is the next problem"
    code = main([*base, "--receiver-key", "nobody-by-that-name"])
    err = capsys.readouterr().err
    assert code == 1 and "nobody-by-that-name: no such key file, no key of that name in" in err and err.count("\n") == 1
