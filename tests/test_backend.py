"""Tests for facelink.backend: selection, the ONNX Runtime session contract, buffer reuse."""

from __future__ import annotations

import sys
import tracemalloc
from pathlib import Path

import numpy as np
import onnx
import pytest
from onnx import TensorProto, helper, numpy_helper

from facelink.backend import (
    BACKEND_ORDER,
    InferenceSession,
    TensorSpec,
    available_backends,
    create_session,
    select_backend,
)
from facelink.backend._base import BACKEND_API
from facelink.errors import BackendUnavailable, InputError
from facelink.models import MODEL_SPECS

pytest.importorskip("onnxruntime")


def _affine_model(path: Path, shape: list[int | str], out_dims: int | None = None) -> Path:
    """``y = x * 2 + 1`` on float32 ``shape`` (names ``x`` → ``y``), plus ``s = sum(x)`` [1]."""
    x = helper.make_tensor_value_info("x", TensorProto.FLOAT, shape)
    y = helper.make_tensor_value_info("y", TensorProto.FLOAT, shape)
    s = helper.make_tensor_value_info("s", TensorProto.FLOAT, [1])
    two = numpy_helper.from_array(np.array(2.0, np.float32), "two")
    one = numpy_helper.from_array(np.array(1.0, np.float32), "one")
    nodes = [
        helper.make_node("Mul", ["x", "two"], ["x2"]),
        helper.make_node("Add", ["x2", "one"], ["y"]),
        helper.make_node("ReduceSum", ["x"], ["s0"], keepdims=0),
        helper.make_node("Reshape", ["s0", "shape1"], ["s"]),
    ]
    shape1 = numpy_helper.from_array(np.array([1], np.int64), "shape1")
    graph = helper.make_graph(nodes, "affine", [x], [y, s], initializer=[two, one, shape1])
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    model.ir_version = 8
    onnx.checker.check_model(model)
    onnx.save(model, path)
    return path


@pytest.fixture
def affine(tmp_path: Path) -> Path:
    return _affine_model(tmp_path / "affine.onnx", [2, 256, 256])


@pytest.fixture(autouse=True)
def _no_backend_env(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("FACELINK_BACKEND", raising=False)


def test_backend_modules_provide_the_api() -> None:
    import importlib

    from facelink import backend

    for name in BACKEND_ORDER:
        mod = importlib.import_module(backend._MODULES[name])
        assert all(hasattr(mod, n) for n in BACKEND_API)
        reason = mod.probe()  # None when usable here, else why not (TensorRT on a GPU-less machine)
        assert name == mod.NAME and (reason is None or (isinstance(reason, str) and reason))


def test_select_backend_auto_and_explicit() -> None:
    assert "onnxruntime" in available_backends()
    auto = select_backend()
    assert auto.name == available_backends()[0]  # TensorRT first where it is usable
    ort = select_backend("onnxruntime")
    assert ort.version == __import__("onnxruntime").__version__
    assert select_backend(" ONNXRuntime ").name == "onnxruntime"


def test_facelink_backend_env_override(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("FACELINK_BACKEND", "onnxruntime")
    assert select_backend().name == "onnxruntime"
    if "tensorrt" not in available_backends():
        monkeypatch.setenv("FACELINK_BACKEND", "tensorrt")
        with pytest.raises(BackendUnavailable, match="use --backend onnxruntime"):
            select_backend()
    assert select_backend("onnxruntime").name == "onnxruntime"  # an explicit name wins over the env
    monkeypatch.setenv("FACELINK_BACKEND", "openvino")
    with pytest.raises(ValueError, match="unknown FACELINK_BACKEND 'openvino'"):
        select_backend("auto")
    monkeypatch.setenv("FACELINK_BACKEND", "auto")
    assert select_backend().name == available_backends()[0]


def test_unknown_and_planned_backends() -> None:
    with pytest.raises(ValueError, match=r"unknown backend 'cuda'; choose one of auto, onnxruntime, tensorrt"):
        select_backend("cuda")
    with pytest.raises(BackendUnavailable, match="use --backend onnxruntime"):
        select_backend("tensorrt")
    with pytest.raises(TypeError):
        select_backend(None)  # type: ignore[arg-type]


def test_missing_onnxruntime(monkeypatch: pytest.MonkeyPatch, affine: Path) -> None:
    monkeypatch.setitem(sys.modules, "onnxruntime", None)  # import now raises ImportError
    assert available_backends() == ()
    with pytest.raises(BackendUnavailable, match="no inference backend can run here.*pip install onnxruntime"):
        select_backend()
    with pytest.raises(BackendUnavailable, match="pip install onnxruntime"):
        create_session(affine, backend="onnxruntime")


def test_session_metadata(affine: Path) -> None:
    with create_session(affine, threads=1) as s:
        assert isinstance(s, InferenceSession) and s.backend == "onnxruntime"
        assert s.inputs == (TensorSpec("x", (2, 256, 256), np.dtype(np.float32)),)
        assert s.outputs == (
            TensorSpec("y", (2, 256, 256), np.dtype(np.float32)),
            TensorSpec("s", (1,), np.dtype(np.float32)),
        )
        assert s.providers == ("CPUExecutionProvider",) and s.threads == 1
        assert "x[2, 256, 256]" in repr(s)
    assert s.closed and "closed" in repr(s)


def test_real_model_metadata(models) -> None:
    for name, path in models.onnx.items():
        spec = MODEL_SPECS[name]
        with create_session(path, threads=2) as s:
            assert s.inputs == (TensorSpec(spec.input_name, spec.input_shape, np.dtype(np.float32)),)
            assert tuple(o.name for o in s.outputs) == spec.output_names
            assert tuple(o.shape for o in s.outputs) == spec.output_shapes
            x = np.random.default_rng(0).uniform(*spec.input_range, spec.input_shape).astype(np.float32)
            out = s.run({spec.input_name: x})
            assert all(np.isfinite(v).all() for v in out.values())


def test_outputs_are_reused_buffers(affine: Path) -> None:
    with create_session(affine) as s:
        a = np.full((2, 256, 256), 3.0, np.float32)
        first = s.run({"x": a})
        y_first = first["y"]
        np.testing.assert_array_equal(y_first, 7.0)
        assert first["s"][0] == pytest.approx(3.0 * a.size)
        second = s.run({"x": np.zeros_like(a)})
        assert second["y"] is y_first  # same array object ...
        np.testing.assert_array_equal(y_first, 1.0)  # ... overwritten: callers copy what they keep


def test_run_allocates_no_output_memory(affine: Path) -> None:
    x = np.ones((2, 256, 256), np.float32)  # 512 KiB output per run
    with create_session(affine) as s:
        s.run({"x": x})
        tracemalloc.start()
        try:
            for _ in range(20):
                s.run({"x": x})
            _, peak = tracemalloc.get_traced_memory()
        finally:
            tracemalloc.stop()
    assert peak < 64 * 1024, f"run() allocated {peak} bytes of Python/numpy memory"


def test_bad_feeds(affine: Path) -> None:
    good = np.zeros((2, 256, 256), np.float32)
    with create_session(affine) as s:
        with pytest.raises(ValueError, match=r"missing \['x'\], unexpected \[\]"):
            s.run({})
        with pytest.raises(ValueError, match=r"unexpected \['z'\]"):
            s.run({"x": good, "z": good})
        with pytest.raises(ValueError, match="input 'x' must be float32, got float64"):
            s.run({"x": good.astype(np.float64)})
        with pytest.raises(ValueError, match=r"input 'x' must have shape \[2, 256, 256\], got \[1, 256, 256\]"):
            s.run({"x": good[:1]})
        with pytest.raises(TypeError, match="must be a numpy array, not list"):
            s.run({"x": good.tolist()})
        with pytest.raises(TypeError, match="feeds must be a mapping"):
            s.run([good])  # type: ignore[arg-type]
        # a non-contiguous view is accepted and read correctly
        wide = np.arange(2 * 256 * 512, dtype=np.float32).reshape(2, 256, 512)
        np.testing.assert_array_equal(s.run({"x": wide[:, :, ::2]})["y"], wide[:, :, ::2] * 2 + 1)
    with pytest.raises(ValueError, match="closed session"):
        s.run({"x": good})
    s.close()  # idempotent


def test_dynamic_shapes_reuse_until_shape_changes(tmp_path: Path) -> None:
    path = _affine_model(tmp_path / "dyn.onnx", ["n", 4])
    with create_session(path) as s:
        assert s.inputs[0].shape == (-1, 4) and not s.inputs[0].static
        a = s.run({"x": np.ones((2, 4), np.float32)})["y"]
        b = s.run({"x": np.zeros((2, 4), np.float32)})["y"]
        assert a is b and (b == 1.0).all()
        c = s.run({"x": np.ones((3, 4), np.float32)})["y"]
        assert c.shape == (3, 4) and (c == 3.0).all()
        with pytest.raises(ValueError, match=r"must have shape \[-1, 4\]"):
            s.run({"x": np.ones((3, 5), np.float32)})


def test_session_arguments(affine: Path, tmp_path: Path) -> None:
    with pytest.raises(BackendUnavailable, match="provider NoSuchExecutionProvider is not available"):
        create_session(affine, providers=["NoSuchExecutionProvider"])
    with pytest.raises(ValueError, match="threads must be a positive int"):
        create_session(affine, threads=0)
    with pytest.raises(ValueError, match="at least one"):
        create_session(affine, providers=[])
    with pytest.raises(FileNotFoundError):
        create_session(tmp_path / "missing.onnx")
    junk = tmp_path / "junk.onnx"
    junk.write_bytes(b"\x00not an onnx model")
    with pytest.raises(InputError, match="cannot load ONNX model"):
        create_session(junk)
    with create_session(affine, providers=[("CPUExecutionProvider", {})], threads=2) as s:
        assert s.providers == ("CPUExecutionProvider",)
