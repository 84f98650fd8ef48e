"""TensorRT backend: engines built on the target from ONNX, cached, run with pycuda buffers.

Supports TensorRT 8.5 (JetPack 5) through 10.x (JetPack 6) and later, by feature detection
rather than version assumptions:

* **Building.**  ``trt.Builder(logger)`` → ``builder.create_network(flags)`` →
  ``trt.OnnxParser(network, logger).parse(bytes)`` → ``builder.create_builder_config()`` with
  ``set_memory_pool_limit(MemoryPoolType.WORKSPACE, …)`` → ``build_serialized_network``.
  A Q/DQ (INT8) graph becomes a **strongly typed** network where TensorRT has
  ``NetworkDefinitionCreationFlag.STRONGLY_TYPED`` (9.x/10.x; always on in 11): the graph's
  Q/DQ nodes alone decide what runs in INT8, the rest runs in the graph's float type.  Older
  TensorRT (8.5/8.6) gets ``EXPLICIT_BATCH`` and ``BuilderFlag.INT8`` (+ ``FP16`` for the
  layers left unquantized).  A float graph (the generator's networks, ``precision fp32``
  encoder models) is built weakly typed with ``BuilderFlag.FP16`` where the GPU has fast FP16.
* **Caching.**  Engines live in ``$FACELINK_HOME/engines`` under a name keyed by the ONNX
  file's SHA-256, the TensorRT version, the GPU name and compute capability and the build
  flags (:func:`engine_cache_key`), with a JSON sidecar holding those fields.  A cached engine
  that fails to deserialise, or whose sidecar names another GPU or TensorRT, is rebuilt — and a
  warning says so.
* **Running.**  One CUDA context per process (the device's primary context,
  ``pycuda.driver.Device(0).retain_primary_context()``), pushed and popped around every call so
  sessions work from any thread; page-locked host buffers (``cuda.pagelocked_empty``) and device
  buffers (``cuda.mem_alloc``) allocated once per session; ``context.set_tensor_address`` per
  I/O tensor and ``context.execute_async_v3(stream.handle)`` on the session's CUDA stream (the
  name-based tensor API, present from TensorRT 8.5 on, the only one left in 10.x).

The pure parts — version parsing, build flag selection, cache keys — are plain functions so
they are tested without TensorRT.
"""

from __future__ import annotations

import hashlib
import importlib
import json
import logging
import os
import re
import threading
import time
from collections.abc import Collection, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from types import ModuleType
from typing import Any, ClassVar

import numpy as np

from ..errors import BackendUnavailable, InputError
from ._base import InferenceSession, TensorSpec

__all__ = [
    "MIN_VERSION",
    "NAME",
    "BuildPlan",
    "TensorRTSession",
    "check_version",
    "create_session",
    "engine_cache_key",
    "engine_filename",
    "parse_version",
    "plan_build",
    "probe",
    "version",
]

NAME = "tensorrt"
#: oldest TensorRT with the name-based I/O API (``set_tensor_address``/``execute_async_v3``)
MIN_VERSION = (8, 5)
#: builder workspace limit (bytes); the encoder networks need a few MiB, the generator more
DEFAULT_WORKSPACE = 1 << 30
#: bump when the build recipe changes in a way the cache key does not capture
ENGINE_FORMAT = 1

_log = logging.getLogger("facelink.tensorrt")
_QDQ_OPS = frozenset({"QuantizeLinear", "DequantizeLinear"})


# -- pure parts ---------------------------------------------------------------------------------


def parse_version(text: str) -> tuple[int, ...]:
    """``"10.3.0.26"`` → ``(10, 3, 0, 26)``; suffixes such as ``"8.5.2.2+cuda11.4"`` are ignored."""
    if not isinstance(text, str):
        raise TypeError(f"version must be a str, not {type(text).__name__}")
    m = re.match(r"\s*(\d+(?:\.\d+)*)", text)
    if m is None:
        raise ValueError(f"cannot parse TensorRT version {text!r}")
    return tuple(int(p) for p in m.group(1).split("."))


def check_version(text: str) -> tuple[int, ...]:
    """The parsed version, or :class:`BackendUnavailable` when it is older than :data:`MIN_VERSION`."""
    try:
        v = parse_version(text)
    except ValueError:
        raise BackendUnavailable(
            f"needs TensorRT >= {'.'.join(map(str, MIN_VERSION))}, have an unparsable version {text!r}"
        ) from None
    if v[:2] < MIN_VERSION:
        raise BackendUnavailable(
            f"needs TensorRT >= {'.'.join(map(str, MIN_VERSION))}, have {text}; upgrade JetPack/TensorRT "
            "or use --backend onnxruntime"
        )
    return v


@dataclass(frozen=True)
class BuildPlan:
    """How to build one engine: network creation flags, builder flags, and whether strongly typed."""

    network_flags: tuple[str, ...]
    builder_flags: tuple[str, ...]
    strongly_typed: bool

    @property
    def precision(self) -> str:
        if self.strongly_typed:
            return "strongly-typed"
        return "+".join(f.lower() for f in self.builder_flags) or "fp32"


def plan_build(
    network_flag_names: Collection[str],
    builder_flag_names: Collection[str],
    *,
    has_qdq: bool,
    fp16: bool = True,
    fast_fp16: bool = True,
) -> BuildPlan:
    """The flags for a graph, given the flag names this TensorRT defines (feature detection).

    ``network_flag_names``/``builder_flag_names`` are the members of
    ``trt.NetworkDefinitionCreationFlag``/``trt.BuilderFlag``.  Q/DQ graphs are strongly typed
    where ``STRONGLY_TYPED`` exists, else INT8 (+FP16 for unquantized layers when ``fp16``);
    float graphs get FP16 when ``fp16`` and the GPU has fast FP16.  ``EXPLICIT_BATCH`` is set
    where it still exists and is not yet deprecated (TensorRT < 10 requires it).
    """
    net: list[str] = []
    strongly = has_qdq and "STRONGLY_TYPED" in network_flag_names
    if "EXPLICIT_BATCH" in network_flag_names and "STRONGLY_TYPED" not in network_flag_names:
        net.append("EXPLICIT_BATCH")  # TensorRT 8.x: implicit batch is the default there
    if strongly:
        net.append("STRONGLY_TYPED")
        return BuildPlan(tuple(net), (), True)
    flags: list[str] = []
    if has_qdq:
        if "INT8" not in builder_flag_names:
            raise BackendUnavailable("this TensorRT has neither STRONGLY_TYPED networks nor BuilderFlag.INT8")
        flags.append("INT8")
    if fp16 and fast_fp16 and "FP16" in builder_flag_names:
        flags.append("FP16")
    return BuildPlan(tuple(net), tuple(flags), False)


def engine_cache_key(
    onnx_sha256: str,
    trt_version: str,
    gpu_name: str,
    compute_capability: tuple[int, int],
    plan: BuildPlan,
) -> dict[str, Any]:
    """Everything an engine depends on; engines are reused only when all of it matches."""
    return {
        "engine_format": ENGINE_FORMAT,
        "onnx_sha256": onnx_sha256,
        "tensorrt": trt_version,
        "gpu": gpu_name,
        "compute_capability": f"{compute_capability[0]}.{compute_capability[1]}",
        "network_flags": list(plan.network_flags),
        "builder_flags": list(plan.builder_flags),
    }


def engine_filename(model_stem: str, key: Mapping[str, Any]) -> str:
    """``STEM-<16 hex of the key>.engine``: another GPU, TensorRT or ONNX gives another name."""
    digest = hashlib.sha256(json.dumps(dict(key), sort_keys=True).encode()).hexdigest()[:16]
    safe = re.sub(r"[^A-Za-z0-9_.-]", "_", model_stem)[:80]
    return f"{safe}-{digest}.engine"


def _describe(key: Mapping[str, Any]) -> str:
    return f"{key.get('gpu')} (sm {key.get('compute_capability')}), TensorRT {key.get('tensorrt')}"


# -- imports and probing --------------------------------------------------------------------------


def _trt() -> ModuleType:
    try:
        trt = importlib.import_module("tensorrt")
    except ImportError as exc:
        raise BackendUnavailable(
            f"needs TensorRT >= {'.'.join(map(str, MIN_VERSION))}, have none ({exc}); on Jetson install "
            "JetPack's python3-libnvinfer, elsewhere pip install tensorrt; or use --backend onnxruntime"
        ) from None
    check_version(str(getattr(trt, "__version__", "")))
    return trt


def _cuda() -> ModuleType:
    try:
        cuda = importlib.import_module("pycuda.driver")
    except ImportError as exc:
        raise BackendUnavailable(
            f"the TensorRT backend needs pycuda ({exc}); pip install pycuda (or facelink[jetson]), "
            "or use --backend onnxruntime"
        ) from None
    return cuda


_CUDA_LOCK = threading.Lock()
_CUDA_READY: list[Any] = []  # [device] once cuda.init() succeeded


def _device(cuda: ModuleType) -> Any:
    """CUDA device 0, initialising the driver once; BackendUnavailable when there is no GPU."""
    with _CUDA_LOCK:
        if _CUDA_READY:
            return _CUDA_READY[0]
        try:
            cuda.init()
            count = cuda.Device.count()
        except Exception as exc:  # noqa: BLE001 - pycuda raises its own LogicError/RuntimeError types
            reason = str(exc).strip() or type(exc).__name__
            raise BackendUnavailable(f"CUDA is not usable here ({reason}); use --backend onnxruntime") from None
        if count < 1:
            raise BackendUnavailable(
                "the TensorRT backend needs a CUDA GPU and none is present; use --backend onnxruntime"
            )
        dev = cuda.Device(0)
        _CUDA_READY.append(dev)
        return dev


def probe() -> str | None:
    """None if TensorRT, pycuda and a CUDA GPU are all here, else one line saying what is missing."""
    try:
        _trt()
        _device(_cuda())
    except BackendUnavailable as exc:
        return str(exc)
    return None


def version() -> str:
    """The installed TensorRT version."""
    return str(_trt().__version__)


# -- building and caching ---------------------------------------------------------------------


def _engine_dir() -> Path:
    from ..models import facelink_home

    return facelink_home() / "engines"


def _has_qdq(onnx_bytes: bytes) -> bool:
    import onnx

    try:
        model = onnx.load_model_from_string(onnx_bytes)
    except Exception as exc:  # noqa: BLE001 - protobuf's DecodeError and friends
        raise InputError(
            f"not an ONNX model ({type(exc).__name__}); rebuild it with `facelink models fetch --force`"
        ) from None
    return any(n.op_type in _QDQ_OPS for n in model.graph.node)


def _build(trt: ModuleType, onnx_bytes: bytes, plan: BuildPlan, workspace: int, label: str) -> bytes:
    logger = trt.Logger(trt.Logger.WARNING)
    builder = trt.Builder(logger)
    flags = 0
    for name in plan.network_flags:
        flags |= 1 << int(getattr(trt.NetworkDefinitionCreationFlag, name))
    network = builder.create_network(flags)
    parser = trt.OnnxParser(network, logger)
    if not parser.parse(onnx_bytes):
        errors = [str(parser.get_error(i)) for i in range(parser.num_errors)]
        first = " ".join(errors[0].split()) if errors else "no parser error recorded"
        raise InputError(f"TensorRT cannot parse {label}: {first}")
    config = builder.create_builder_config()
    config.set_memory_pool_limit(trt.MemoryPoolType.WORKSPACE, workspace)
    for name in plan.builder_flags:
        config.set_flag(getattr(trt.BuilderFlag, name))
    blob = builder.build_serialized_network(network, config)
    if blob is None:
        raise InputError(f"TensorRT could not build an engine for {label} (see the TensorRT messages above)")
    return bytes(blob)


def _deserialize(trt: ModuleType, runtime: Any, blob: bytes) -> Any | None:
    try:
        return runtime.deserialize_cuda_engine(blob)
    except Exception:  # noqa: BLE001 - TensorRT raises or returns None depending on version
        return None


def _load_or_build(
    trt: ModuleType,
    runtime: Any,
    model_path: Path,
    device: Any,
    *,
    fp16: bool,
    workspace: int,
    cache_dir: Path | None,
) -> tuple[Any, Path | None, bool]:
    """(engine, engine path or None, built now) for ``model_path`` on ``device``."""
    onnx_bytes = model_path.read_bytes()
    sha = hashlib.sha256(onnx_bytes).hexdigest()
    has_qdq = _has_qdq(onnx_bytes)
    builder_probe = trt.Builder(trt.Logger(trt.Logger.ERROR))
    plan = plan_build(
        trt.NetworkDefinitionCreationFlag.__members__,
        trt.BuilderFlag.__members__,
        has_qdq=has_qdq,
        fp16=fp16,
        fast_fp16=bool(getattr(builder_probe, "platform_has_fast_fp16", True)),
    )
    del builder_probe
    cc = tuple(device.compute_capability())
    key = engine_cache_key(sha, str(trt.__version__), str(device.name()), (int(cc[0]), int(cc[1])), plan)
    label = model_path.name
    if cache_dir is None:
        return _fresh(trt, runtime, onnx_bytes, plan, workspace, label), None, True
    cache_dir.mkdir(parents=True, exist_ok=True)
    path = cache_dir / engine_filename(model_path.stem, key)
    meta_path = path.with_suffix(".json")
    from .._files import atomic_write as _atomic_write
    from .._files import locked as _locked

    with _locked(cache_dir / ".lock", 3600.0):
        if path.is_file():
            reason = None
            try:
                meta = json.loads(meta_path.read_text())
            except (OSError, ValueError):
                meta = None
                reason = "its description is missing or unreadable"
            if meta is not None and meta.get("key") != key:
                reason = f"it was built for {_describe(meta.get('key', {}))}"
            if reason is None:
                engine = _deserialize(trt, runtime, path.read_bytes())
                if engine is not None:
                    return engine, path, False
                reason = "it does not deserialise (built for another GPU or TensorRT version, or damaged)"
            _log.warning(
                "cached TensorRT engine %s is unusable: %s; rebuilding for %s", path.name, reason, _describe(key)
            )
        else:
            others = [p.name for p in cache_dir.glob(f"{path.name.rsplit('-', 1)[0]}-*.engine")]
            if others:
                _log.warning(
                    "no TensorRT engine of %s for %s in %s (found %d for other GPUs/TensorRT versions); building one",
                    label, _describe(key), cache_dir, len(others),
                )  # fmt: skip
        start = time.perf_counter()
        _log.warning("building TensorRT engine for %s (%s); this takes a while once", label, plan.precision)
        blob = _build(trt, onnx_bytes, plan, workspace, label)
        engine = _deserialize(trt, runtime, blob)
        if engine is None:
            raise BackendUnavailable(
                f"TensorRT built an engine for {label} but cannot load it; check the TensorRT install"
            )
        _atomic_write(path, blob)
        meta = {"key": key, "model": str(model_path), "built_s": round(time.perf_counter() - start, 1)}
        _atomic_write(meta_path, (json.dumps(meta, indent=1, sort_keys=True) + "\n").encode())
        return engine, path, True


def _fresh(trt: ModuleType, runtime: Any, onnx_bytes: bytes, plan: BuildPlan, workspace: int, label: str) -> Any:
    engine = _deserialize(trt, runtime, _build(trt, onnx_bytes, plan, workspace, label))
    if engine is None:
        raise BackendUnavailable(f"TensorRT built an engine for {label} but cannot load it; check the TensorRT install")
    return engine


# -- the session -----------------------------------------------------------------------------------


class TensorRTSession(InferenceSession):
    """A TensorRT engine with page-locked host and device buffers allocated once (see the base class)."""

    backend: ClassVar[str] = NAME

    def __init__(
        self,
        model_path: str | os.PathLike[str],
        *,
        fp16: bool = True,
        workspace: int = DEFAULT_WORKSPACE,
        cache_dir: str | os.PathLike[str] | None | bool = True,
    ) -> None:
        path = Path(model_path)
        if not path.is_file():
            raise FileNotFoundError(f"ONNX model {path} does not exist")
        if not isinstance(workspace, int) or isinstance(workspace, bool) or workspace < (1 << 20):
            raise ValueError(f"workspace must be an int of at least 1 MiB, got {workspace!r}")
        trt = _trt()
        cuda = _cuda()
        device = _device(cuda)
        cache = _engine_dir() if cache_dir is True else (None if cache_dir in (None, False) else Path(cache_dir))  # type: ignore[arg-type]
        self._cuda = cuda
        self._ctx = device.retain_primary_context()
        self._ctx.push()
        try:
            self._runtime = trt.Runtime(trt.Logger(trt.Logger.WARNING))
            self._engine, self.engine_path, self.built = _load_or_build(
                trt, self._runtime, path, device, fp16=fp16, workspace=workspace, cache_dir=cache
            )
            self._context = self._engine.create_execution_context()
            if self._context is None:
                raise BackendUnavailable(f"TensorRT cannot create an execution context for {path.name} (GPU memory?)")
            self._stream = cuda.Stream()
            inputs: list[TensorSpec] = []
            outputs: list[TensorSpec] = []
            self._host: dict[str, np.ndarray] = {}
            self._device_buf: dict[str, Any] = {}
            for i in range(self._engine.num_io_tensors):
                name = self._engine.get_tensor_name(i)
                shape = tuple(int(d) for d in self._engine.get_tensor_shape(name))
                dtype = np.dtype(trt.nptype(self._engine.get_tensor_dtype(name)))
                if any(d < 0 for d in shape):
                    raise InputError(
                        f"{path.name}: tensor {name!r} has a dynamic shape {list(shape)}; export it static"
                    )
                spec = TensorSpec(name, shape, dtype)
                is_input = self._engine.get_tensor_mode(name) == trt.TensorIOMode.INPUT
                (inputs if is_input else outputs).append(spec)
                host = cuda.pagelocked_empty(shape, dtype)
                dev = cuda.mem_alloc(max(host.nbytes, 1))
                self._host[name] = host
                self._device_buf[name] = dev
                if not self._context.set_tensor_address(name, int(dev)):
                    raise BackendUnavailable(f"TensorRT refused the buffer address of {name!r}")
            self._inputs = tuple(inputs)
            self._outputs = tuple(outputs)
            self.trt_version = str(trt.__version__)
        except BaseException:
            for dev in getattr(self, "_device_buf", {}).values():
                dev.free()
            self._ctx.pop()
            self._ctx.detach()
            raise
        self._ctx.pop()
        self._closed = False
        self._lock = threading.Lock()

    def run(self, feeds: Mapping[str, np.ndarray]) -> dict[str, np.ndarray]:
        arrays = self._checked_feeds(feeds)
        cuda = self._cuda
        with self._lock:
            self._ctx.push()
            try:
                for spec, arr in zip(self._inputs, arrays):
                    host = self._host[spec.name]
                    np.copyto(host, arr)
                    cuda.memcpy_htod_async(self._device_buf[spec.name], host, self._stream)
                if not self._context.execute_async_v3(self._stream.handle):
                    raise InputError("TensorRT execution failed (see the TensorRT messages above)")
                for spec in self._outputs:
                    cuda.memcpy_dtoh_async(self._host[spec.name], self._device_buf[spec.name], self._stream)
                self._stream.synchronize()
            finally:
                self._ctx.pop()
        return {s.name: self._host[s.name] for s in self._outputs}

    def close(self) -> None:
        if self._closed:
            return
        self._closed = True
        self._ctx.push()
        try:
            for dev in self._device_buf.values():
                dev.free()
            self._device_buf.clear()
            del self._context, self._engine, self._runtime, self._stream
        finally:
            self._ctx.pop()
            self._ctx.detach()


def create_session(
    model_path: str | os.PathLike[str],
    providers: Sequence[str | tuple[str, dict[str, Any]]] | None = None,
    threads: int | None = None,
    *,
    fp16: bool = True,
    workspace: int = DEFAULT_WORKSPACE,
    cache_dir: str | os.PathLike[str] | None | bool = True,
) -> TensorRTSession:
    """Build (or load from the cache) an engine for ``model_path`` and allocate its buffers.

    ``providers`` must be None (an ONNX Runtime notion); ``threads`` is accepted and unused (the
    GPU runs the work).  ``cache_dir`` True: ``$FACELINK_HOME/engines``; None/False: no cache.
    """
    if providers is not None:
        raise ValueError("providers are an ONNX Runtime option; the TensorRT backend takes none")
    if threads is not None and (not isinstance(threads, int) or isinstance(threads, bool) or threads < 1):
        raise ValueError(f"threads must be a positive int or None, got {threads!r}")
    return TensorRTSession(model_path, fp16=fp16, workspace=workspace, cache_dir=cache_dir)
