"""Tests for the TensorRT backend: the pure parts everywhere, engines where TensorRT and a GPU exist."""

from __future__ import annotations

import logging
from pathlib import Path

import numpy as np
import pytest
from facelink.backend import BACKEND_ORDER, available_backends, select_backend
from facelink.backend import _tensorrt as trt_backend
from facelink.backend._tensorrt import (
    BuildPlan,
    check_version,
    engine_cache_key,
    engine_filename,
    parse_version,
    plan_build,
)
from facelink.errors import BackendUnavailable


def has_tensorrt() -> bool:
    """TensorRT >= 8.5, pycuda and a CUDA GPU are all usable here."""
    return trt_backend.probe() is None


needs_tensorrt = pytest.mark.skipif(
    not has_tensorrt(), reason=f"TensorRT backend unavailable here: {trt_backend.probe()}"
)

# flag names as the real modules define them (members of NetworkDefinitionCreationFlag / BuilderFlag)
TRT85_NET = {"EXPLICIT_BATCH", "EXPLICIT_PRECISION"}
TRT85_BUILDER = {"FP16", "INT8", "DEBUG", "GPU_FALLBACK", "STRICT_TYPES", "REFIT", "TF32", "SPARSE_WEIGHTS"}
TRT10_NET = {"EXPLICIT_BATCH", "STRONGLY_TYPED", "PREFER_AOT_PYTHON_PLUGINS"}
TRT10_BUILDER = {"FP16", "BF16", "INT8", "FP8", "INT4", "REFIT", "TF32", "SPARSE_WEIGHTS", "STRIP_PLAN"}
TRT11_NET = {"STRONGLY_TYPED", "PREFER_AOT_PYTHON_PLUGINS", "PREFER_JIT_PYTHON_PLUGINS"}
TRT11_BUILDER = {"REFIT", "SPARSE_WEIGHTS", "STRIP_PLAN"}


@pytest.fixture(autouse=True)
def _no_backend_env(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("FACELINK_BACKEND", raising=False)


# -- versions --------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "text, expected",
    [("10.3.0.26", (10, 3, 0, 26)), ("8.5.2.2", (8, 5, 2, 2)), ("8.5.2.2+cuda11.4", (8, 5, 2, 2)), (" 11.0 ", (11, 0))],
)
def test_parse_version(text: str, expected: tuple[int, ...]) -> None:
    assert parse_version(text) == expected


def test_parse_version_rejects_garbage() -> None:
    with pytest.raises(ValueError, match="cannot parse TensorRT version"):
        parse_version("unknown")
    with pytest.raises(TypeError):
        parse_version(10)  # type: ignore[arg-type]


@pytest.mark.parametrize("text", ["8.5.1.7", "8.6.1", "10.3.0.26", "10.13.0", "11.0.0"])
def test_supported_versions_pass(text: str) -> None:
    assert check_version(text)[:2] >= (8, 5)


@pytest.mark.parametrize("text", ["8.4.3.1", "8.2.1.8", "7.1.3"])
def test_old_versions_say_what_is_needed(text: str) -> None:
    with pytest.raises(BackendUnavailable, match=rf"^needs TensorRT >= 8\.5, have {text}; upgrade"):
        check_version(text)


def test_unparsable_version_is_unavailable() -> None:
    with pytest.raises(BackendUnavailable, match="needs TensorRT >= 8.5, have an unparsable version 'dev'"):
        check_version("dev")


# -- build plans (feature detection) ---------------------------------------------------------------


def test_trt10_builds_qdq_graphs_strongly_typed() -> None:
    plan = plan_build(TRT10_NET, TRT10_BUILDER, has_qdq=True)
    assert plan == BuildPlan(("STRONGLY_TYPED",), (), True)
    assert plan.precision == "strongly-typed"


def test_trt10_builds_float_graphs_in_fp16_when_the_gpu_is_fast_at_it() -> None:
    assert plan_build(TRT10_NET, TRT10_BUILDER, has_qdq=False) == BuildPlan((), ("FP16",), False)
    assert plan_build(TRT10_NET, TRT10_BUILDER, has_qdq=False, fast_fp16=False) == BuildPlan((), (), False)
    assert plan_build(TRT10_NET, TRT10_BUILDER, has_qdq=False, fp16=False).precision == "fp32"


def test_trt85_has_no_strong_typing_so_qdq_graphs_get_int8_and_fp16() -> None:
    plan = plan_build(TRT85_NET, TRT85_BUILDER, has_qdq=True)
    assert plan == BuildPlan(("EXPLICIT_BATCH",), ("INT8", "FP16"), False)
    assert plan.precision == "int8+fp16"
    assert plan_build(TRT85_NET, TRT85_BUILDER, has_qdq=False) == BuildPlan(("EXPLICIT_BATCH",), ("FP16",), False)
    assert plan_build(TRT85_NET, TRT85_BUILDER, has_qdq=True, fp16=False).builder_flags == ("INT8",)


def test_trt11_without_precision_flags() -> None:
    assert plan_build(TRT11_NET, TRT11_BUILDER, has_qdq=True) == BuildPlan(("STRONGLY_TYPED",), (), True)
    assert plan_build(TRT11_NET, TRT11_BUILDER, has_qdq=False) == BuildPlan((), (), False)


def test_qdq_without_any_int8_path_is_unavailable() -> None:
    with pytest.raises(BackendUnavailable, match="neither STRONGLY_TYPED networks nor BuilderFlag.INT8"):
        plan_build({"EXPLICIT_BATCH"}, {"FP16"}, has_qdq=True)


# -- engine cache keys ---------------------------------------------------------------------------


def _key(**over: object) -> dict:
    args = {
        "onnx_sha256": "ab" * 32,
        "trt_version": "10.3.0.30",
        "gpu_name": "Orin (nvgpu)",
        "compute_capability": (8, 7),
        "plan": BuildPlan(("STRONGLY_TYPED",), (), True),
    }
    args.update(over)
    return engine_cache_key(**args)  # type: ignore[arg-type]


def test_engine_key_names_everything_an_engine_depends_on() -> None:
    key = _key()
    assert key["tensorrt"] == "10.3.0.30" and key["gpu"] == "Orin (nvgpu)" and key["compute_capability"] == "8.7"
    assert key["onnx_sha256"] == "ab" * 32 and key["network_flags"] == ["STRONGLY_TYPED"]


@pytest.mark.parametrize(
    "change",
    [
        {"onnx_sha256": "cd" * 32},
        {"trt_version": "8.5.2.2"},
        {"gpu_name": "NVIDIA H100 80GB HBM3"},
        {"compute_capability": (9, 0)},
        {"plan": BuildPlan((), ("FP16",), False)},
    ],
)
def test_engine_file_name_changes_with_every_key_field(change: dict) -> None:
    base = engine_filename("face_landmark.int8-1055cb9d4a9c", _key())
    assert base == engine_filename("face_landmark.int8-1055cb9d4a9c", _key())  # stable
    assert engine_filename("face_landmark.int8-1055cb9d4a9c", _key(**change)) != base


def test_engine_file_name_is_safe() -> None:
    name = engine_filename("../weird name/ü", _key())
    assert "/" not in name and " " not in name and name.endswith(".engine")


# -- selection without TensorRT ------------------------------------------------------------------


def test_tensorrt_comes_first_in_the_explicit_order() -> None:
    assert BACKEND_ORDER == ("tensorrt", "onnxruntime")


@pytest.mark.skipif(has_tensorrt(), reason="TensorRT is usable here")
def test_auto_falls_back_to_onnxruntime_and_tensorrt_says_why() -> None:
    assert "tensorrt" not in available_backends()
    assert select_backend("auto").name == "onnxruntime"
    reason = trt_backend.probe()
    assert reason is not None and "\n" not in reason
    with pytest.raises(BackendUnavailable, match=r"needs TensorRT >= 8\.5|pycuda|CUDA|GPU"):
        select_backend("tensorrt")


@pytest.mark.skipif(has_tensorrt(), reason="TensorRT is usable here")
def test_facelink_backend_env_selects_tensorrt(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("FACELINK_BACKEND", "tensorrt")
    with pytest.raises(BackendUnavailable, match="use --backend onnxruntime"):
        select_backend()


def test_create_session_rejects_onnxruntime_options(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="providers are an ONNX Runtime option"):
        trt_backend.create_session(tmp_path / "m.onnx", providers=["CPUExecutionProvider"])
    with pytest.raises(ValueError, match="threads must be a positive int"):
        trt_backend.create_session(tmp_path / "m.onnx", threads=0)


# -- real engines (TensorRT >= 8.5, pycuda, a CUDA GPU) ----------------------------------------------


@needs_tensorrt
@pytest.mark.parametrize("precision", ["fp32", "int8"])
def test_engine_matches_onnxruntime(models, portrait, precision: str, tmp_path: Path) -> None:
    from facelink.backend._onnxruntime import OnnxRuntimeSession
    from facelink.face import Roi, crop
    from facelink.models import model_path

    path = model_path("face_landmark", precision=precision)
    x = crop(portrait, Roi(256.0, 220.0, 300.0), 192)[None]
    with trt_backend.create_session(path, cache_dir=tmp_path) as trt_sess, OnnxRuntimeSession(path) as ort_sess:
        assert [s.name for s in trt_sess.inputs] == [s.name for s in ort_sess.inputs]
        got = trt_sess.run({"input": x})
        ref = ort_sess.run({"input": x})
        lm, lm_ref = got["landmarks"].reshape(468, 3), ref["landmarks"].reshape(468, 3)
        iod = float(np.linalg.norm(lm_ref[263, :2] - lm_ref[33, :2]))
        # FP16 (fp32 graph) / INT8 kernels vs ONNX Runtime's float emulation: well under 1 % IOD
        assert float(np.mean(np.linalg.norm(lm[:, :2] - lm_ref[:, :2], axis=1))) / iod < 0.01
        assert got["landmarks"] is trt_sess.run({"input": x})["landmarks"]  # reused page-locked buffer


@needs_tensorrt
def test_engine_cache_is_reused_and_a_damaged_engine_rebuilt(
    models, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    from facelink.models import model_path

    path = model_path("face_detector", precision="int8")
    with trt_backend.create_session(path, cache_dir=tmp_path) as first:
        assert first.built and first.engine_path is not None
        engine = first.engine_path
    with trt_backend.create_session(path, cache_dir=tmp_path) as second:
        assert not second.built and second.engine_path == engine
    engine.write_bytes(b"not an engine")
    with (
        caplog.at_level(logging.WARNING, logger="facelink.tensorrt"),
        trt_backend.create_session(path, cache_dir=tmp_path) as third,
    ):
        assert third.built
    assert any("does not deserialise" in r.getMessage() and "rebuilding" in r.getMessage() for r in caplog.records)
