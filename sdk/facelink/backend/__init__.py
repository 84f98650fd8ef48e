"""Inference backends behind one contract, chosen in an explicit order.

>>> from facelink.backend import create_session
>>> with create_session(path, backend="auto", threads=2) as s:
...     out = s.run({"input": x})          # arrays reused by the next run: copy what you keep

``backend="auto"`` honours ``FACELINK_BACKEND`` and otherwise takes the first usable backend in
:data:`BACKEND_ORDER`.  Every backend module provides the names in
:data:`facelink.backend._base.BACKEND_API` (as pyzmq's ``backend/select.py`` does).
"""

from __future__ import annotations

import importlib
import os
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from types import ModuleType
from typing import Any

from ..errors import BackendUnavailable
from ._base import BACKEND_API, InferenceSession, TensorSpec

__all__ = [
    "BACKEND_ORDER",
    "Backend",
    "InferenceSession",
    "TensorSpec",
    "available_backends",
    "create_session",
    "select_backend",
]

#: preference order for ``backend="auto"``: TensorRT when it imports and a CUDA GPU is present
BACKEND_ORDER: tuple[str, ...] = ("tensorrt", "onnxruntime")
_MODULES = {"tensorrt": "facelink.backend._tensorrt", "onnxruntime": "facelink.backend._onnxruntime"}


@dataclass(frozen=True)
class Backend:
    """A usable backend: its name, its runtime's version, and its session factory."""

    name: str
    version: str
    create_session: Callable[..., InferenceSession]


def _module(name: str) -> ModuleType:
    mod = importlib.import_module(_MODULES[name])
    missing = [n for n in BACKEND_API if not hasattr(mod, n)]
    if missing:  # a packaging bug, not a user error
        raise ImportError(f"backend module {mod.__name__} lacks {missing}")
    return mod


def available_backends() -> tuple[str, ...]:
    """Names of the backends that can run here, in preference order."""
    return tuple(n for n in BACKEND_ORDER if _module(n).probe() is None)


def select_backend(name: str = "auto") -> Backend:
    """The backend ``name`` (or, for ``"auto"``, ``$FACELINK_BACKEND`` or the first usable one).

    Raises ``ValueError`` for an unknown name and :class:`BackendUnavailable` (saying what to
    install) when the chosen backend cannot run here.
    """
    if not isinstance(name, str):
        raise TypeError(f"backend must be a str, not {type(name).__name__}")
    source = "backend"
    name = name.strip().lower()
    if name == "auto":
        env = os.environ.get("FACELINK_BACKEND", "").strip().lower()
        if env and env != "auto":
            name, source = env, "FACELINK_BACKEND"
    known = ("auto", *sorted(BACKEND_ORDER))
    if name not in known:
        raise ValueError(f"unknown {source} {name!r}; choose one of {', '.join(known)}")
    if name == "auto":
        reasons = []
        for candidate in BACKEND_ORDER:
            reason = _module(candidate).probe()
            if reason is None:
                name = candidate
                break
            reasons.append(f"{candidate}: {reason}")
        else:
            raise BackendUnavailable(f"no inference backend can run here ({'; '.join(reasons)})")
    mod = _module(name)
    reason = mod.probe()
    if reason is not None:
        raise BackendUnavailable(reason)
    return Backend(name=mod.NAME, version=mod.version(), create_session=mod.create_session)


def create_session(
    model_path: str | os.PathLike[str],
    backend: str = "auto",
    providers: Sequence[str | tuple[str, dict[str, Any]]] | None = None,
    threads: int | None = None,
) -> InferenceSession:
    """Load ``model_path`` on ``backend`` (see :func:`select_backend`).

    ``providers`` are backend-specific execution providers (ONNX Runtime: default CPU);
    ``threads`` caps intra-op CPU threads (default: the runtime's choice).
    """
    return select_backend(backend).create_session(model_path, providers=providers, threads=threads)
