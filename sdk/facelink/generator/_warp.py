"""The generator's one bilinear sample: a tiny ONNX graph run through :mod:`facelink.backend`.

Graph (opset 17, rank-4 tensors only, so TensorRT's 2-D GridSample can run it)::

    source (1, 3, Hs, Ws) float32 ─┐
                                   ├─ GridSample(bilinear, border, align_corners=1)
    grid   (1, H, W, 2)  float32 ──┘      │ (1, 3, H, W)
                                  Transpose(0, 2, 3, 1) → Clip(0, 255) → Add(0.5) → Cast(uint8)
                                          │
    image  (1, H, W, 3) uint8 ◄───────────┘

With a background plate (``_plate.py``) the source carries the head layer premultiplied by its
alpha plus the alpha as a 4th channel, and the graph blends over a third input, the plate under
the face box (NCHW), before the transpose: ``Slice`` ×2 → ``rgb + (1 - alpha) * plate``.

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


@lru_cache(maxsize=2)
def warp_model_bytes(plate: bool = False) -> bytes:
    """The serialised warp graph (built once per process).

    ``plate=True``: the source holds the head layer premultiplied (``alpha * F``, then
    ``alpha``), and the graph blends the sample over a third input, ``plate`` (1, 3, H, W)
    float32 (the background behind the head, see ``_plate.py``):
    ``image = rgb + (1 - alpha) * plate``, still rank 4 only.
    """
    import onnx
    from onnx import TensorProto, helper

    nodes = [
        helper.make_node(
            "GridSample", ["source", "grid"], ["sampled"], mode="bilinear", padding_mode="border", align_corners=1
        ),
    ]
    inits = [
        helper.make_tensor("zero", TensorProto.FLOAT, [], [0.0]),
        helper.make_tensor("full", TensorProto.FLOAT, [], [255.0]),
        helper.make_tensor("half", TensorProto.FLOAT, [], [0.5]),
    ]
    inputs = [
        helper.make_tensor_value_info("source", TensorProto.FLOAT, [1, 4 if plate else 3, "src_h", "src_w"]),
        helper.make_tensor_value_info("grid", TensorProto.FLOAT, [1, "out_h", "out_w", 2]),
    ]
    colour = "sampled"
    if plate:
        # premultiplied head layer over the plate, blended in NCHW before the one transpose
        inputs.append(helper.make_tensor_value_info("plate", TensorProto.FLOAT, [1, 3, "out_h", "out_w"]))
        inits += [
            helper.make_tensor("one", TensorProto.FLOAT, [], [1.0]),
            helper.make_tensor("c0", TensorProto.INT64, [1], [0]),
            helper.make_tensor("c3", TensorProto.INT64, [1], [3]),
            helper.make_tensor("c4", TensorProto.INT64, [1], [4]),
            helper.make_tensor("axis", TensorProto.INT64, [1], [1]),
        ]
        nodes += [
            helper.make_node("Slice", ["sampled", "c0", "c3", "axis"], ["premul"]),
            helper.make_node("Slice", ["sampled", "c3", "c4", "axis"], ["alpha"]),
            helper.make_node("Sub", ["one", "alpha"], ["behind"]),
            helper.make_node("Mul", ["plate", "behind"], ["shown"]),
            helper.make_node("Add", ["premul", "shown"], ["blended"]),
        ]
        colour = "blended"
    nodes += [
        helper.make_node("Transpose", [colour], ["nhwc"], perm=[0, 2, 3, 1]),
        helper.make_node("Clip", ["nhwc", "zero", "full"], ["clipped"]),
        helper.make_node("Add", ["clipped", "half"], ["rounded"]),
        helper.make_node("Cast", ["rounded"], ["image"], to=TensorProto.UINT8),
    ]
    graph = helper.make_graph(
        nodes,
        "facelink_generator_warp_plate" if plate else "facelink_generator_warp",
        inputs,
        [helper.make_tensor_value_info("image", TensorProto.UINT8, [1, "out_h", "out_w", 3])],
        inits,
    )
    model = helper.make_model(
        graph, opset_imports=[helper.make_opsetid("", WARP_OPSET)], producer_name="facelink.generator"
    )
    model.ir_version = 8  # readable by every ONNX Runtime >= 1.14 and TensorRT >= 8.5
    onnx.checker.check_model(model)
    return model.SerializeToString()


def warp_model_path(plate: bool = False) -> Path:
    """Path of the warp graph in the FaceLink cache, written on first use (keyed by content)."""
    data = warp_model_bytes(plate)
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
        if source_nchw.ndim != 4 or source_nchw.shape[:2] not in ((1, 3), (1, 4)) or source_nchw.dtype != np.float32:
            raise ValueError("source must be a (1, 3, H, W) or, with a head alpha, (1, 4, H, W) float32 array")
        self.source = np.ascontiguousarray(source_nchw)
        self.plate = source_nchw.shape[1] == 4
        self.session: InferenceSession = create_session(warp_model_path(self.plate), backend=backend, threads=threads)

    def __call__(self, grid: np.ndarray, plate: np.ndarray | None = None) -> np.ndarray:
        """(1, H, W, 3) uint8 for a (1, H, W, 2) float32 grid; the array is reused by the next call.

        With a 4-channel source, ``plate`` (1, 3, H, W) float32 is what shows where the sampled
        alpha is below 1."""
        feeds = {"source": self.source, "grid": grid}
        if self.plate:
            if plate is None:
                raise ValueError("this warp blends over a plate: pass plate=(1, 3, H, W) float32")
            feeds["plate"] = plate
        return self.session.run(feeds)["image"]

    def close(self) -> None:
        self.session.close()
