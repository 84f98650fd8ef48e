"""The generator's one bilinear sample: a tiny ONNX graph run through :mod:`facelink.backend`.

Graph (opset 17, rank-4 tensors only, so TensorRT's 2-D GridSample can run it)::

    source (1, 3, Hs, Ws) float32 ─┐
                                   ├─ GridSample(bilinear, border, align_corners=1)
    grid   (1, H, W, 2)  float32 ──┘      │ (1, 3, H, W)
                                  Transpose(0, 2, 3, 1) → Clip(0, 255) → Add(0.5) → Cast(uint8)
                                          │
    image  (1, H, W, 3) uint8 ◄───────────┘

``grid`` holds normalised source coordinates (-1 = centre of the first pixel, +1 = centre of
the last one).  The graph is built with ``onnx.helper`` on first use, kept in memory, and
written once to ``$FACELINK_HOME/generator/warp-<hash>.onnx`` (the backend loads paths).
"""

from __future__ import annotations

import hashlib
import os
import threading
from functools import lru_cache
from pathlib import Path

import numpy as np

from ..backend import InferenceSession, create_session
from ..models import facelink_home

__all__ = ["WARP_OPSET", "Warp", "warp_model_bytes", "warp_model_path"]

WARP_OPSET = 17
_LOCK = threading.Lock()


@lru_cache(maxsize=1)
def warp_model_bytes() -> bytes:
    """The serialised warp graph (built once per process)."""
    import onnx
    from onnx import TensorProto, helper

    nodes = [
        helper.make_node(
            "GridSample", ["source", "grid"], ["sampled"], mode="bilinear", padding_mode="border", align_corners=1
        ),
        helper.make_node("Transpose", ["sampled"], ["nhwc"], perm=[0, 2, 3, 1]),
        helper.make_node("Clip", ["nhwc", "zero", "full"], ["clipped"]),
        helper.make_node("Add", ["clipped", "half"], ["rounded"]),
        helper.make_node("Cast", ["rounded"], ["image"], to=TensorProto.UINT8),
    ]
    inits = [
        helper.make_tensor("zero", TensorProto.FLOAT, [], [0.0]),
        helper.make_tensor("full", TensorProto.FLOAT, [], [255.0]),
        helper.make_tensor("half", TensorProto.FLOAT, [], [0.5]),
    ]
    graph = helper.make_graph(
        nodes,
        "facelink_generator_warp",
        [
            helper.make_tensor_value_info("source", TensorProto.FLOAT, [1, 3, "src_h", "src_w"]),
            helper.make_tensor_value_info("grid", TensorProto.FLOAT, [1, "out_h", "out_w", 2]),
        ],
        [helper.make_tensor_value_info("image", TensorProto.UINT8, [1, "out_h", "out_w", 3])],
        inits,
    )
    model = helper.make_model(
        graph, opset_imports=[helper.make_opsetid("", WARP_OPSET)], producer_name="facelink.generator"
    )
    model.ir_version = 8  # readable by every ONNX Runtime >= 1.14 and TensorRT >= 8.5
    onnx.checker.check_model(model)
    return model.SerializeToString()


def warp_model_path() -> Path:
    """Path of the warp graph in the FaceLink cache, written on first use (keyed by content)."""
    data = warp_model_bytes()
    digest = hashlib.sha256(data).hexdigest()[:12]
    path = facelink_home() / "generator" / f"warp-{digest}.onnx"
    with _LOCK:
        if not path.is_file() or path.stat().st_size != len(data):
            path.parent.mkdir(parents=True, exist_ok=True)
            tmp = path.with_name(f"{path.name}.{os.getpid()}.{threading.get_ident()}.tmp")
            tmp.write_bytes(data)
            os.replace(tmp, path)
    return path


class Warp:
    """One session of the warp graph with a fixed source image; ``__call__(grid)`` samples it."""

    def __init__(self, source_nchw: np.ndarray, backend: str = "auto", threads: int | None = None) -> None:
        if source_nchw.ndim != 4 or source_nchw.shape[:2] != (1, 3) or source_nchw.dtype != np.float32:
            raise ValueError("source must be a (1, 3, H, W) float32 array")
        self.source = np.ascontiguousarray(source_nchw)
        self.session: InferenceSession = create_session(warp_model_path(), backend=backend, threads=threads)

    def __call__(self, grid: np.ndarray) -> np.ndarray:
        """(1, H, W, 3) uint8 for a (1, H, W, 2) float32 grid; the array is reused by the next call."""
        return self.session.run({"source": self.source, "grid": grid})["image"]

    def close(self) -> None:
        self.session.close()
