"""ONNX Runtime backend: any execution provider, CPU by default.

Outputs are bound once, through ONNX Runtime's IO binding, to numpy arrays the session owns, so
``run`` allocates no output memory: every call writes into the same arrays.  (Outputs whose
shape is only known at run time are copied into buffers that are reallocated only when that
shape changes.)  Graph optimisation is ``ORT_ENABLE_ALL``.
"""

from __future__ import annotations

import importlib
import os
from collections.abc import Mapping, Sequence
from pathlib import Path
from types import ModuleType
from typing import Any, ClassVar

import numpy as np

from ..errors import BackendUnavailable, InputError
from ._base import InferenceSession, TensorSpec

__all__ = ["NAME", "OnnxRuntimeSession", "create_session", "probe", "version"]

NAME = "onnxruntime"

#: providers accepted as ``providers=``: a name, or ``(name, options)``
Provider = str | tuple[str, dict[str, Any]]

_DTYPES: dict[str, np.dtype] = {
    "tensor(float)": np.dtype(np.float32),
    "tensor(float16)": np.dtype(np.float16),
    "tensor(double)": np.dtype(np.float64),
    "tensor(int8)": np.dtype(np.int8),
    "tensor(uint8)": np.dtype(np.uint8),
    "tensor(int16)": np.dtype(np.int16),
    "tensor(int32)": np.dtype(np.int32),
    "tensor(int64)": np.dtype(np.int64),
    "tensor(bool)": np.dtype(np.bool_),
}


def _ort() -> ModuleType:
    try:
        return importlib.import_module("onnxruntime")
    except ImportError as exc:
        raise BackendUnavailable(
            f"onnxruntime is not importable ({exc}); pip install onnxruntime (or onnxruntime-gpu)"
        ) from None


def probe() -> str | None:
    """None if ONNX Runtime can run here, else why not."""
    try:
        _ort()
    except BackendUnavailable as exc:
        return str(exc)
    return None


def version() -> str:
    """The installed ONNX Runtime version."""
    return str(_ort().__version__)


def _spec(arg: Any) -> TensorSpec:
    dtype = _DTYPES.get(arg.type)
    if dtype is None:
        raise InputError(f"model tensor {arg.name!r} has unsupported type {arg.type}")
    shape = tuple(d if isinstance(d, int) and d >= 0 else -1 for d in arg.shape)
    return TensorSpec(arg.name, shape, dtype)


class OnnxRuntimeSession(InferenceSession):
    """An ONNX Runtime session with preallocated, reused output buffers (see the base class)."""

    backend: ClassVar[str] = NAME

    def __init__(
        self,
        model_path: str | os.PathLike[str],
        providers: Sequence[Provider] | None = None,
        threads: int | None = None,
    ) -> None:
        ort = _ort()
        path = Path(model_path)
        if not path.is_file():
            raise FileNotFoundError(f"ONNX model {path} does not exist")
        if threads is not None and (not isinstance(threads, int) or isinstance(threads, bool) or threads < 1):
            raise ValueError(f"threads must be a positive int or None, got {threads!r}")
        chosen = list(providers) if providers is not None else ["CPUExecutionProvider"]
        if not chosen:
            raise ValueError("providers must name at least one ONNX Runtime execution provider")
        have = ort.get_available_providers()
        for p in chosen:
            pname = p[0] if isinstance(p, tuple) else p
            if pname not in have:
                raise BackendUnavailable(
                    f"ONNX Runtime provider {pname} is not available here (have {', '.join(have)})"
                )

        so = ort.SessionOptions()
        so.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
        so.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
        so.inter_op_num_threads = 1
        so.intra_op_num_threads = threads or 0  # 0: ONNX Runtime's default (physical cores)
        so.log_severity_level = 3
        # Busy-waiting worker threads steal the CPU from capture, codec and display on a small
        # board (measured here under load: tracking 31-47 -> 9-21 ms/frame with spinning off).
        # FACELINK_ORT_SPIN=1 turns it back on for a machine that runs nothing else.
        spin = "1" if os.environ.get("FACELINK_ORT_SPIN") == "1" else "0"
        so.add_session_config_entry("session.intra_op.allow_spinning", spin)
        try:
            self._sess = ort.InferenceSession(str(path), sess_options=so, providers=chosen)
        except Exception as exc:  # noqa: BLE001 - ORT's errors (Fail, InvalidProtobuf, …) derive from Exception only
            first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
            raise InputError(f"cannot load ONNX model {path}: {first}") from None
        self.providers: tuple[str, ...] = tuple(self._sess.get_providers())
        self.threads = threads
        self._inputs = tuple(_spec(a) for a in self._sess.get_inputs())
        self._outputs = tuple(_spec(a) for a in self._sess.get_outputs())
        self._binding = self._sess.io_binding()
        self._buffers: dict[str, np.ndarray] = {}
        self._dynamic: list[int] = []
        for i, spec in enumerate(self._outputs):
            if spec.static:
                buf = np.empty(spec.shape, dtype=spec.dtype)
                self._buffers[spec.name] = buf
                self._binding.bind_output(spec.name, "cpu", 0, spec.dtype, list(spec.shape), buf.ctypes.data)
            else:  # bound now so the binding lists outputs in model order; rebound per run
                self._binding.bind_output(spec.name, "cpu")
                self._dynamic.append(i)
        self._closed = False

    def run(self, feeds: Mapping[str, np.ndarray]) -> dict[str, np.ndarray]:
        arrays = self._checked_feeds(feeds)
        for spec, arr in zip(self._inputs, arrays):
            self._binding.bind_cpu_input(spec.name, arr)
        for i in self._dynamic:  # unallocated again: ORT sizes it for this run's shapes
            self._binding.bind_output(self._outputs[i].name, "cpu")
        self._sess.run_with_iobinding(self._binding)
        if self._dynamic:
            values = self._binding.get_outputs()
            for i in self._dynamic:
                spec = self._outputs[i]
                value = values[i].numpy()
                buf = self._buffers.get(spec.name)
                if buf is None or buf.shape != value.shape:
                    buf = self._buffers[spec.name] = np.empty(value.shape, dtype=spec.dtype)
                np.copyto(buf, value)
        return {s.name: self._buffers[s.name] for s in self._outputs}

    def close(self) -> None:
        if not self._closed:
            self._closed = True
            self._binding.clear_binding_inputs()
            self._binding.clear_binding_outputs()
            del self._binding, self._sess


def create_session(
    model_path: str | os.PathLike[str], providers: Sequence[Provider] | None = None, threads: int | None = None
) -> OnnxRuntimeSession:
    """Load ``model_path`` with ONNX Runtime (``providers`` default CPU; ``threads`` intra-op)."""
    return OnnxRuntimeSession(model_path, providers=providers, threads=threads)
