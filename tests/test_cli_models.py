"""``facelink models show``: what is cached, where, how large, and whether it matches its pins."""

from __future__ import annotations

import json
import shutil

from facelink.cli import main
from facelink.models import MODEL_SPECS


def _show(capsys, *extra):
    code = main(["models", "show", *extra])
    out, err = capsys.readouterr()
    return code, out, err


def test_show_lists_the_verified_cache(models, tmp_path, monkeypatch, capsys):
    home = tmp_path / "home"
    (home / "models").mkdir(parents=True)
    for spec in MODEL_SPECS.values():
        shutil.copy(models.tflite[spec.name], home / "models" / spec.tflite_filename)
        shutil.copy(models.onnx[spec.name], home / "models" / spec.onnx_filename)
    monkeypatch.setenv("FACELINK_HOME", str(home))
    code, out, err = _show(capsys, "--json")
    assert code == 0, err
    rep = json.loads(out)
    assert rep["home"] == str(home) and rep["complete"] is True and rep["pins_verified"] is True
    lm = rep["models"]["face_landmark"]
    assert lm["tflite"]["pin"] == "ok" and lm["tflite"]["bytes"] == models.tflite["face_landmark"].stat().st_size
    assert lm["onnx"]["present"] and lm["onnx"]["path"].endswith(MODEL_SPECS["face_landmark"].onnx_filename)
    assert rep["assets"]["astronaut"]["present"] is False and rep["assets"]["astronaut"]["pin"] == "missing"
    assert rep["total_bytes"] == sum((home / "models" / n).stat().st_size for n in (p.name for p in (home / "models").iterdir()))
    code, out, err = _show(capsys)
    assert code == 0 and "face_landmark" in out and "sha256 pin ok" in out and err == ""


def test_show_flags_a_file_that_does_not_match_its_pin(tmp_path, monkeypatch, capsys):
    home = tmp_path / "home"
    (home / "models").mkdir(parents=True)
    (home / "models" / MODEL_SPECS["face_landmark"].tflite_filename).write_bytes(b"not the pinned graph")
    monkeypatch.setenv("FACELINK_HOME", str(home))
    code, out, _ = _show(capsys, "--json")
    rep = json.loads(out)
    assert code == 0 and rep["pins_verified"] is False and rep["complete"] is False
    assert rep["models"]["face_landmark"]["tflite"]["pin"] == "mismatch"
    assert rep["models"]["face_detector"]["tflite"]["pin"] == "missing"
    code, out, err = _show(capsys)
    assert code == 0 and "PIN MISMATCH" in out and "models fetch --force" in err and err.count("\n") == 1


def test_empty_cache_says_what_to_run(tmp_path, monkeypatch, capsys):
    monkeypatch.setenv("FACELINK_HOME", str(tmp_path / "nothing-yet"))
    code, out, err = _show(capsys)
    assert code == 0 and "not fetched" in out and "facelink models fetch" in err
    assert not (tmp_path / "nothing-yet").exists(), "show reads only"


def test_models_help_lists_show(capsys):
    assert main(["models", "--help"]) == 0
    out = capsys.readouterr().out
    assert "fetch" in out and "show" in out
