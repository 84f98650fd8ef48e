"""Learned refinement of the warped face (generator v2's second stage).

The warp (``_generator.py``) can only move pixels the reference already has.  The refiner is a
small convolutional network that looks at what the warp produced and where each pixel came
from, and adds a residual where the warp cannot explain the face: the mouth interior when the
mouth opens wider than in the reference, lids and eyes, stretched skin at disocclusions, seams
between the face and the rigid head band.

Inputs, built per frame by :func:`refiner_inputs` (the same function prepares training data,
so the network sees at run time exactly what it was trained on), a ``(1, 6, H, W)`` float32
tensor over the generator's face box:

  0-2  the warped face, RGB in [0, 1];
  3-4  the backward flow: source minus output position, in units of the reference face's
       scale (about its inter-ocular distance), clipped to [-1, 1];
  5    1 where the pixel was sampled from the mouth or eye atlases (synthesised interiors).

Outputs, both ``(1, C, H, W)`` float32 over the same box: ``flow`` (C = 2) a correction of the
warp's motion in output pixels (x, y), and ``residual`` (C = 3) RGB in [0, 1] units.  The
refined face is the warped face resampled at each pixel plus its flow (bilinear, edges
clamped; the warp's own GridSample graph, :mod:`._warp`), plus the residual; the change fades
in over the box's outer edge (:data:`FEATHER`).  H and W must be multiples of :data:`STRIDE`;
the face box is edge-padded to that.  Boxes larger than :data:`MAX_SIDE` are refined at a lower
resolution (area-averaged inputs, bilinearly upsampled flow and residual), so a 1080p face
costs about what a 256x256 one does.

Graph: rank-4 ops only (Conv, Relu, Resize, Concat, ConvTranspose, Mul), opset 17; it runs
through :mod:`facelink.backend` (ONNX Runtime FP32 or INT8 Q/DQ, TensorRT).  The shipped
weights (``data/refiner.onnx``) are trained by ``python -m facelink.train``, and
``data/refiner.int8.onnx`` is their INT8 Q/DQ version (``python -m facelink.train refiner-int8``;
see ``docs/generator.md``).
"""

from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np

from ..backend import InferenceSession, create_session
from ._warp import warp_model_path

__all__ = ["FEATHER", "MAX_SIDE", "N_INPUTS", "STRIDE", "Refiner", "default_refiner_path", "edge_ramp", "refiner_inputs", "resolve_refiner"]

N_INPUTS = 6
#: the network downsamples by 16 (a stride-4 stem and two stride-2 stages)
STRIDE = 16
#: face boxes with a longer side are refined at ceil(side / MAX_SIDE) times lower resolution
MAX_SIDE = 320
#: the residual fades in over this share of the box's shorter side from each edge (at least 4 px),
#: so the refined box meets the untouched reference pixels around it without a visible seam
FEATHER = 0.05
_DATA = Path(__file__).resolve().parent / "data"


#: the shipped models: ``on`` = FP32, ``int8`` = its INT8 Q/DQ version (``python -m facelink.train refiner-int8``)
_SHIPPED = {"on": "refiner.onnx", "int8": "refiner.int8.onnx"}


def default_refiner_path(precision: str = "fp32") -> Path | None:
    """The shipped refiner (``generator/data/refiner.onnx``, or ``refiner.int8.onnx`` for
    ``precision="int8"``), or ``None`` if not installed."""
    p = _DATA / _SHIPPED["int8" if precision == "int8" else "on"]
    return p if p.is_file() else None


def resolve_refiner(refiner: str | Path | None) -> Path | None:
    """``"on"`` → the shipped FP32 model, ``"int8"`` → the shipped INT8 Q/DQ model,
    ``"off"``/``None`` → no refiner, anything else → a path to an ONNX refiner."""
    if refiner is None or refiner == "off":
        return None
    if isinstance(refiner, str) and refiner in _SHIPPED:
        p = _DATA / _SHIPPED[refiner]
        if not p.is_file():
            raise FileNotFoundError(f"the shipped refiner (facelink/generator/data/{_SHIPPED[refiner]}) is not installed")
        return p
    p = Path(refiner)
    if not p.is_file():
        raise FileNotFoundError(f"refiner model not found: {p}")
    return p


def refiner_inputs(
    patch: np.ndarray,
    grid: np.ndarray,
    identity: np.ndarray,
    px_per_unit: tuple[float, float],
    face_scale: float,
    atlas_top: float,
) -> np.ndarray:
    """The ``(6, h, w)`` float32 network input for one face box (see the module docstring).

    ``patch`` (h, w, 3) uint8 warp output; ``grid`` (h, w, 2) the normalised sampling grid;
    ``identity`` (h, w, 2) the grid of the output pixels themselves (no motion);
    ``px_per_unit`` source pixels per normalised unit (x, y); ``face_scale`` the reference
    face's scale in pixels; ``atlas_top`` the normalised y below which the source holds the
    mouth/eye atlases.
    """
    h, w = patch.shape[:2]
    out = np.empty((N_INPUTS, h, w), np.float32)
    np.multiply(patch.transpose(2, 0, 1), np.float32(1 / 255), out=out[:3])
    for c in range(2):
        d = out[3 + c]
        np.subtract(grid[..., c], identity[..., c], out=d)
        d *= np.float32(px_per_unit[c] / face_scale)
        np.clip(d, -1.0, 1.0, out=d)
    np.greater(grid[..., 1], np.float32(atlas_top), out=out[5], casting="unsafe")
    return out


def edge_ramp(n: int, short_side: int) -> np.ndarray:
    """(n,) float32 weights rising linearly from the edges to 1 over the feather width."""
    width = max(4.0, FEATHER * short_side)
    d = np.minimum(np.arange(n), np.arange(n)[::-1]) + 0.5
    return np.minimum(1.0, d / width).astype(np.float32)


def _linear_matrix(n_out: int, n_in: int) -> np.ndarray:
    """(n_out, n_in) bilinear upsampling matrix (pixel centres aligned, edges clamped)."""
    pos = (np.arange(n_out) + 0.5) * (n_in / n_out) - 0.5
    lo = np.clip(np.floor(pos).astype(int), 0, n_in - 1)
    hi = np.clip(lo + 1, 0, n_in - 1)
    f = np.clip(pos - lo, 0.0, 1.0).astype(np.float32)
    m = np.zeros((n_out, n_in), np.float32)
    m[np.arange(n_out), lo] += 1 - f
    m[np.arange(n_out), hi] += f
    return m


class Refiner:
    """One inference session of a refiner network; ``__call__(patch, inputs)`` refines a face box."""

    def __init__(self, model_path: str | Path, backend: str = "auto", threads: int | None = None) -> None:
        self.model_path = Path(model_path)
        self.session: InferenceSession = create_session(self.model_path, backend=backend, threads=threads)
        names = {o.name for o in self.session.outputs}
        if names != {"flow", "residual"} or [i.name for i in self.session.inputs] != ["inputs"]:
            self.session.close()
            raise ValueError(f"{self.model_path} is not a FaceLink refiner (input 'inputs', outputs 'flow' and 'residual')")
        self._resample: InferenceSession = create_session(warp_model_path(), backend=backend, threads=threads)
        self.info = _read_info(self.model_path)

    @property
    def backend(self) -> str:
        return self.session.backend

    def predict(self, inputs: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """``(flow (2, h, w), residual (3, h, w))`` float32 for ``(6, h, w)`` inputs of any size
        (padded and, above :data:`MAX_SIDE`, scaled here)."""
        _, h, w = inputs.shape
        f = max(1, math.ceil(max(h, w) / MAX_SIDE))
        if f > 1:  # area-average by f (after edge padding to a multiple of f)
            ph, pw = -h % f, -w % f
            x = np.pad(inputs, ((0, 0), (0, ph), (0, pw)), mode="edge") if ph or pw else inputs
            x = x.reshape(N_INPUTS, (h + ph) // f, f, (w + pw) // f, f).mean(axis=(2, 4), dtype=np.float32)
        else:
            x = inputs
        sh, sw = x.shape[1:]
        ph, pw = -sh % STRIDE, -sw % STRIDE
        if ph or pw:
            x = np.pad(x, ((0, 0), (0, ph), (0, pw)), mode="edge")
        out = self.session.run({"inputs": np.ascontiguousarray(x[None])})
        flow, r = out["flow"][0, :, :sh, :sw], out["residual"][0, :, :sh, :sw]
        if f > 1:
            ry, rx = _linear_matrix(h, sh), _linear_matrix(w, sw)
            flow = np.einsum("yh,chw,xw->cyx", ry, flow * np.float32(f), rx, optimize=True)
            r = np.einsum("yh,chw,xw->cyx", ry, r, rx, optimize=True)
        return np.ascontiguousarray(flow), np.ascontiguousarray(r)

    def __call__(self, patch: np.ndarray, inputs: np.ndarray) -> np.ndarray:
        """The refined ``(h, w, 3)`` uint8 face box: ``patch`` resampled along the predicted flow
        plus the predicted residual, the change faded to zero at the box edges (:data:`FEATHER`)."""
        flow, r = self.predict(inputs)
        h, w = patch.shape[:2]
        grid = np.empty((1, h, w, 2), np.float32)
        sx, sy = np.float32(2.0 / max(w - 1, 1)), np.float32(2.0 / max(h - 1, 1))
        np.multiply(np.arange(w, dtype=np.float32)[None, :] + flow[0], sx, out=grid[0, ..., 0])
        np.multiply(np.arange(h, dtype=np.float32)[:, None] + flow[1], sy, out=grid[0, ..., 1])
        grid -= np.float32(1.0)
        source = np.ascontiguousarray(patch.transpose(2, 0, 1)[None], dtype=np.float32)
        moved = self._resample.run({"source": source, "grid": grid})["image"][0]
        fy, fx = edge_ramp(h, min(h, w)), edge_ramp(w, min(h, w))
        ramp = fy[:, None, None] * fx[None, :, None]
        base = patch.astype(np.float32)
        change = moved.astype(np.float32)
        change += r.transpose(1, 2, 0) * np.float32(255.0)
        change -= base
        change *= ramp
        base += change
        np.clip(base, 0.0, 255.0, out=base)
        base += np.float32(0.5)
        return base.astype(np.uint8)

    def close(self) -> None:
        self.session.close()
        self._resample.close()


def _read_info(path: Path) -> dict:
    """The training record stored in the model's metadata (``facelink.refiner``), if any."""
    try:
        import onnx

        model = onnx.load(str(path), load_external_data=False)
        for p in model.metadata_props:
            if p.key == "facelink.refiner":
                return json.loads(p.value)
    except Exception:  # noqa: BLE001 - metadata is informative only
        pass
    return {}
