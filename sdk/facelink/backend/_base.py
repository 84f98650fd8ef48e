"""The contract every FaceLink inference backend provides.

A backend is a private module (``_onnxruntime``, later ``_tensorrt``) that defines every name in
:data:`BACKEND_API`:

``NAME``
    the backend's name, as used by ``--backend`` and ``FACELINK_BACKEND``.
``probe() -> str | None``
    ``None`` when the backend can run here, else one line saying why not and what to install.
``version() -> str``
    the version of the runtime library underneath.
``create_session(model_path, providers=None, threads=None) -> InferenceSession``
    load a model; raises :class:`~facelink.errors.BackendUnavailable` when it cannot run here.

Sessions are :class:`InferenceSession` subclasses: fixed input/output metadata, ``run`` writing
outputs into buffers that are allocated once and reused, explicit ``close``.
"""

from __future__ import annotations

import abc
from collections.abc import Mapping
from dataclasses import dataclass
from types import TracebackType
from typing import ClassVar, TypeVar

import numpy as np

__all__ = ["BACKEND_API", "InferenceSession", "TensorSpec", "check_feeds"]

#: names every backend module must define
BACKEND_API = ("NAME", "probe", "version", "create_session")

_S = TypeVar("_S", bound="InferenceSession")


@dataclass(frozen=True)
class TensorSpec:
    """Name, shape and dtype of a model input or output.  ``-1`` marks a run-time dimension."""

    name: str
    shape: tuple[int, ...]
    dtype: np.dtype

    def matches(self, shape: tuple[int, ...]) -> bool:
        """True if an array of ``shape`` fits this spec."""
        return len(shape) == len(self.shape) and all(d == -1 or d == s for d, s in zip(self.shape, shape))

    @property
    def static(self) -> bool:
        """True when every dimension is known before running."""
        return all(d >= 0 for d in self.shape)


def check_feeds(inputs: tuple[TensorSpec, ...], feeds: Mapping[str, np.ndarray]) -> list[np.ndarray]:
    """Validate ``feeds`` against ``inputs``; return C-contiguous arrays in ``inputs`` order.

    Raises ``TypeError`` for a non-array feed and ``ValueError`` (one line) for a missing or
    unexpected name, a wrong dtype (never cast silently) or a wrong shape.
    """
    if not isinstance(feeds, Mapping):
        raise TypeError(f"feeds must be a mapping of input name to numpy array, not {type(feeds).__name__}")
    expected = [s.name for s in inputs]
    missing = [n for n in expected if n not in feeds]
    extra = sorted(str(n) for n in feeds if n not in expected)
    if missing or extra:
        raise ValueError(f"feeds must be exactly {expected}: missing {missing}, unexpected {extra}")
    arrays = []
    for spec in inputs:
        arr = feeds[spec.name]
        if not isinstance(arr, np.ndarray):
            raise TypeError(f"input {spec.name!r} must be a numpy array, not {type(arr).__name__}")
        if arr.dtype != spec.dtype:
            raise ValueError(f"input {spec.name!r} must be {spec.dtype.name}, got {arr.dtype.name}")
        if not spec.matches(arr.shape):
            raise ValueError(f"input {spec.name!r} must have shape {list(spec.shape)}, got {list(arr.shape)}")
        arrays.append(np.ascontiguousarray(arr))
    return arrays


class InferenceSession(abc.ABC):
    """One loaded model on one backend.

    ``run`` returns ``{output name: array}``; the arrays are buffers owned by the session,
    allocated once and overwritten by the next ``run`` — copy what you keep.  A session is not
    safe to ``run`` from two threads at once.  Use it as a context manager or call ``close``.
    """

    #: name of the backend that created the session (``"onnxruntime"``, ``"tensorrt"``)
    backend: ClassVar[str]
    #: set by each backend's constructor
    _inputs: tuple[TensorSpec, ...]
    _outputs: tuple[TensorSpec, ...]
    _closed: bool

    @property
    def inputs(self) -> tuple[TensorSpec, ...]:
        """The model's inputs, in the model's order."""
        return self._inputs

    @property
    def outputs(self) -> tuple[TensorSpec, ...]:
        """The model's outputs, in the model's order."""
        return self._outputs

    @property
    def closed(self) -> bool:
        """True once :meth:`close` has run."""
        return self._closed

    def _checked_feeds(self, feeds: Mapping[str, np.ndarray]) -> list[np.ndarray]:
        """Feeds validated against :attr:`inputs` (see :func:`check_feeds`); refuses a closed session."""
        if self._closed:
            raise ValueError("run() on a closed session")
        return check_feeds(self._inputs, feeds)

    @abc.abstractmethod
    def run(self, feeds: Mapping[str, np.ndarray]) -> dict[str, np.ndarray]:
        """Run the model on ``feeds`` (exactly the input names); outputs are reused buffers."""

    @abc.abstractmethod
    def close(self) -> None:
        """Release the runtime's resources; idempotent.  ``run`` afterwards raises ValueError."""

    def __enter__(self: _S) -> _S:
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.close()

    def __repr__(self) -> str:
        state = "closed" if self.closed else ", ".join(f"{s.name}{list(s.shape)}" for s in self.inputs)
        return f"<{type(self).__name__} backend={self.backend} {state}>"
