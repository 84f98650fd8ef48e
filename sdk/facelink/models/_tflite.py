"""A minimal, bounds-checked reader for TFLite flatbuffers (schema v3), written with ``struct``.

It decodes the part of the TFLite schema FaceLink's converter needs: the model's buffers and
operator codes, and for each subgraph its tensors (name, type, shape, buffer), operators
(opcode, inputs, outputs, builtin options) and graph inputs/outputs.  Builtin options are
decoded for Conv2D, DepthwiseConv2D, Pool2D, Add, Mul, Concatenation, Reshape and
ResizeBilinear; other options tables are kept as ``None`` (the converter rejects operators it
does not know anyway).  A custom operator's ``custom_options`` bytes are kept raw (MediaPipe's
``Convolution2DTransposeBias`` stores a C struct there, not a FlexBuffer).

FlatBuffers layout reminders: a table starts with an ``int32`` offset back to its vtable
(``vtable = table - soffset``); the vtable holds ``uint16`` sizes then one ``uint16`` offset
per field (0 = absent, use the default); references to tables, vectors and strings are
``uint32`` offsets relative to where they are stored; vectors and strings start with a
``uint32`` element count.

Every offset and length is checked against the data, and the total number of tables decoded is
bounded by the data size, so malformed, truncated or hostile input raises
:class:`~facelink.errors.ModelFetchError` and nothing else, in time linear in its size.
"""

from __future__ import annotations

import struct
from collections.abc import Callable
from dataclasses import dataclass
from typing import ClassVar, TypeVar

import numpy as np

from ..errors import ModelFetchError

__all__ = [
    "Activation",
    "AddOptions",
    "BuiltinOp",
    "ConcatenationOptions",
    "Conv2DOptions",
    "DepthwiseConv2DOptions",
    "Model",
    "MulOptions",
    "Operator",
    "Padding",
    "Pool2DOptions",
    "ReshapeOptions",
    "ResizeBilinearOptions",
    "SubGraph",
    "Tensor",
    "TensorType",
    "read_model",
]

_T = TypeVar("_T")


class BuiltinOp:
    """TFLite ``BuiltinOperator`` codes that FaceLink's graphs use."""

    ADD = 0
    AVERAGE_POOL_2D = 1
    CONCATENATION = 2
    CONV_2D = 3
    DEPTHWISE_CONV_2D = 4
    DEQUANTIZE = 6
    LOGISTIC = 14
    MAX_POOL_2D = 17
    MUL = 18
    RELU = 19
    RESHAPE = 22
    RESIZE_BILINEAR = 23
    CUSTOM = 32
    PAD = 34
    PRELU = 54
    HARD_SWISH = 117


#: names of common builtin operator codes, for error messages
# fmt: off
OP_NAMES: dict[int, str] = {
    0: "ADD", 1: "AVERAGE_POOL_2D", 2: "CONCATENATION", 3: "CONV_2D", 4: "DEPTHWISE_CONV_2D",
    5: "DEPTH_TO_SPACE", 6: "DEQUANTIZE", 7: "EMBEDDING_LOOKUP", 8: "FLOOR", 9: "FULLY_CONNECTED",
    11: "L2_NORMALIZATION", 12: "L2_POOL_2D", 14: "LOGISTIC", 16: "LSTM", 17: "MAX_POOL_2D",
    18: "MUL", 19: "RELU", 20: "RELU_N1_TO_1", 21: "RELU6", 22: "RESHAPE", 23: "RESIZE_BILINEAR",
    25: "SOFTMAX", 26: "SPACE_TO_DEPTH", 28: "TANH", 32: "CUSTOM", 34: "PAD", 36: "GATHER",
    37: "BATCH_TO_SPACE_ND", 38: "SPACE_TO_BATCH_ND", 39: "TRANSPOSE", 40: "MEAN", 41: "SUB",
    42: "DIV", 43: "SQUEEZE", 45: "STRIDED_SLICE", 47: "EXP", 49: "SPLIT", 53: "CAST", 54: "PRELU",
    55: "MAXIMUM", 57: "MINIMUM", 60: "PADV2", 67: "TRANSPOSE_CONV", 83: "PACK",
    97: "RESIZE_NEAREST_NEIGHBOR", 98: "LEAKY_RELU", 99: "SQUARED_DIFFERENCE", 100: "MIRROR_PAD",
    102: "SPLIT_V", 114: "QUANTIZE", 117: "HARD_SWISH", 124: "DENSIFY", 150: "GELU",
}
# fmt: on


def op_name(code: int) -> str:
    """Human-readable name of a builtin operator code (``BUILTIN_<n>`` when not in the table)."""
    return OP_NAMES.get(code, f"BUILTIN_{code}")


class TensorType:
    """TFLite ``TensorType`` values and the numpy dtypes of the ones with plain element data."""

    FLOAT32 = 0
    FLOAT16 = 1
    INT32 = 2
    UINT8 = 3
    INT64 = 4
    INT16 = 7
    INT8 = 9
    FLOAT64 = 10

    DTYPES: ClassVar[dict[int, np.dtype]] = {
        0: np.dtype("<f4"),
        1: np.dtype("<f2"),
        2: np.dtype("<i4"),
        3: np.dtype("u1"),
        4: np.dtype("<i8"),
        7: np.dtype("<i2"),
        9: np.dtype("i1"),
        10: np.dtype("<f8"),
    }


class Padding:
    """TFLite ``Padding`` enum."""

    SAME = 0
    VALID = 1


class Activation:
    """TFLite ``ActivationFunctionType`` enum."""

    NONE = 0
    RELU = 1
    RELU_N1_TO_1 = 2
    RELU6 = 3
    TANH = 4
    SIGN_BIT = 5


@dataclass(frozen=True)
class Conv2DOptions:
    """``Conv2DOptions``: padding, strides, fused activation, dilations."""

    padding: int
    stride_w: int
    stride_h: int
    activation: int
    dilation_w: int
    dilation_h: int


@dataclass(frozen=True)
class DepthwiseConv2DOptions:
    """``DepthwiseConv2DOptions``: as Conv2D plus the depth multiplier."""

    padding: int
    stride_w: int
    stride_h: int
    depth_multiplier: int
    activation: int
    dilation_w: int
    dilation_h: int


@dataclass(frozen=True)
class Pool2DOptions:
    """``Pool2DOptions``: padding, strides, filter size, fused activation."""

    padding: int
    stride_w: int
    stride_h: int
    filter_w: int
    filter_h: int
    activation: int


@dataclass(frozen=True)
class AddOptions:
    """``AddOptions``: fused activation."""

    activation: int


@dataclass(frozen=True)
class MulOptions:
    """``MulOptions``: fused activation."""

    activation: int


@dataclass(frozen=True)
class ResizeBilinearOptions:
    """``ResizeBilinearOptions``: corner alignment and half-pixel centres."""

    align_corners: bool
    half_pixel_centers: bool


@dataclass(frozen=True)
class ConcatenationOptions:
    """``ConcatenationOptions``: axis (may be negative) and fused activation."""

    axis: int
    activation: int


@dataclass(frozen=True)
class ReshapeOptions:
    """``ReshapeOptions``: the target shape, when stored as an option rather than an input."""

    new_shape: tuple[int, ...]


Options = (
    Conv2DOptions
    | DepthwiseConv2DOptions
    | Pool2DOptions
    | AddOptions
    | MulOptions
    | ConcatenationOptions
    | ReshapeOptions
    | ResizeBilinearOptions
)


@dataclass(frozen=True)
class Tensor:
    """One tensor of a subgraph; ``buffer`` indexes :attr:`Model.buffers` (0 = no data)."""

    name: str
    type: int
    shape: tuple[int, ...]
    buffer: int


@dataclass(frozen=True)
class Operator:
    """One operator; ``inputs``/``outputs`` index the subgraph's tensors, -1 = optional input absent.

    ``custom_options``: the raw ``custom_options`` bytes (custom operators), empty when absent.
    """

    opcode: int
    inputs: tuple[int, ...]
    outputs: tuple[int, ...]
    options: Options | None
    custom_options: bytes = b""


@dataclass(frozen=True)
class SubGraph:
    """A subgraph: tensors, operators in execution order, graph input and output tensor indices."""

    name: str
    tensors: tuple[Tensor, ...]
    operators: tuple[Operator, ...]
    inputs: tuple[int, ...]
    outputs: tuple[int, ...]


@dataclass(frozen=True)
class Model:
    """A decoded TFLite model.  ``operator_codes`` are builtin codes; custom ops have a ``custom_codes`` name."""

    version: int
    description: str
    operator_codes: tuple[int, ...]
    custom_codes: tuple[str | None, ...]
    subgraphs: tuple[SubGraph, ...]
    buffers: tuple[memoryview, ...]

    def tensor_data(self, graph: SubGraph, index: int) -> np.ndarray | None:
        """The constant data of tensor ``index`` as a read-only array of its shape, or None."""
        t = graph.tensors[index]
        data = self.buffers[t.buffer]
        if len(data) == 0:
            return None
        dtype = TensorType.DTYPES.get(t.type)
        if dtype is None:
            raise ModelFetchError(f"tensor {t.name!r}: unsupported constant type {t.type}")
        count = 1
        for d in t.shape:
            if d < 0:
                raise ModelFetchError(f"tensor {t.name!r}: constant with dynamic shape {list(t.shape)}")
            count *= d
        if count * dtype.itemsize != len(data):
            raise ModelFetchError(
                f"tensor {t.name!r}: buffer holds {len(data)} bytes, shape {list(t.shape)} "
                f"of {dtype.name} needs {count * dtype.itemsize}"
            )
        return np.frombuffer(data, dtype=dtype).reshape(t.shape)


# -- low-level reader -------------------------------------------------------------------------

_U8 = struct.Struct("<B")
_I8 = struct.Struct("<b")
_U16 = struct.Struct("<H")
_I32 = struct.Struct("<i")
_U32 = struct.Struct("<I")
_U64 = struct.Struct("<Q")


class _Reader:
    """Checked access to a flatbuffer.  Every failure is a :class:`ModelFetchError`."""

    def __init__(self, data: bytes | bytearray | memoryview) -> None:
        self.data = memoryview(data).cast("B") if not isinstance(data, memoryview) else data.cast("B")
        self.size = len(self.data)
        # each distinct table occupies at least 4 bytes, so a well-formed file never needs more
        self.budget = self.size // 4 + 16

    def fail(self, what: str) -> ModelFetchError:
        return ModelFetchError(f"malformed TFLite model: {what}")

    def _scalar(self, s: struct.Struct, pos: int, what: str) -> int:
        if pos < 0 or pos + s.size > self.size:
            raise self.fail(f"{what} at byte {pos} is outside the {self.size}-byte file")
        return s.unpack_from(self.data, pos)[0]

    def u32(self, pos: int, what: str = "offset") -> int:
        return self._scalar(_U32, pos, what)

    def table(self, pos: int, what: str) -> _Table:
        self.budget -= 1
        if self.budget < 0:
            raise self.fail("more tables than the file size allows (cyclic or shared offsets)")
        if pos % 4:
            raise self.fail(f"{what} table at unaligned byte {pos}")
        soff = self._scalar(_I32, pos, f"{what} table")
        vt = pos - soff
        vt_size = self._scalar(_U16, vt, f"{what} vtable")
        tbl_size = self._scalar(_U16, vt + 2, f"{what} vtable")
        if vt_size < 4 or vt_size % 2 or vt + vt_size > self.size:
            raise self.fail(f"{what} vtable size {vt_size} at byte {vt}")
        if tbl_size < 4 or pos + tbl_size > self.size:
            raise self.fail(f"{what} table size {tbl_size} at byte {pos}")
        return _Table(self, pos, vt, (vt_size - 4) // 2, tbl_size, what)

    def vector_header(self, pos: int, elem_size: int, what: str) -> tuple[int, int]:
        """``(first_element_pos, count)`` of the vector at ``pos``, checked to fit the file."""
        count = self.u32(pos, f"{what} length")
        start = pos + 4
        if count * elem_size > self.size - start:
            raise self.fail(f"{what} of {count} elements at byte {pos} runs past the end of the file")
        return start, count

    def string(self, pos: int, what: str) -> str:
        start, count = self.vector_header(pos, 1, what)
        raw = bytes(self.data[start : start + count])
        try:
            return raw.decode("utf-8")
        except UnicodeDecodeError:
            raise self.fail(f"{what} is not UTF-8") from None


class _Table:
    """One flatbuffer table: typed field access with schema defaults for absent fields."""

    __slots__ = ("nfields", "pos", "r", "tsize", "vt", "what")

    def __init__(self, r: _Reader, pos: int, vt: int, nfields: int, tsize: int, what: str) -> None:
        self.r, self.pos, self.vt, self.nfields, self.tsize, self.what = r, pos, vt, nfields, tsize, what

    def _field(self, idx: int, width: int) -> int | None:
        """Absolute position of field ``idx`` (``width`` bytes) or None if absent."""
        if idx >= self.nfields:
            return None
        off = self.r._scalar(_U16, self.vt + 4 + 2 * idx, f"{self.what} vtable")
        if off == 0:
            return None
        if off < 4 or off + width > self.tsize:
            raise self.r.fail(f"{self.what} field {idx} at offset {off} is outside its {self.tsize}-byte table")
        return self.pos + off

    def scalar(self, idx: int, s: struct.Struct, default: int) -> int:
        p = self._field(idx, s.size)
        return default if p is None else self.r._scalar(s, p, f"{self.what} field {idx}")

    def ref(self, idx: int) -> int | None:
        """Target position of an offset field (table, vector or string), or None if absent."""
        p = self._field(idx, 4)
        if p is None:
            return None
        return p + self.r.u32(p, f"{self.what} field {idx}")

    def table(self, idx: int, what: str) -> _Table | None:
        p = self.ref(idx)
        return None if p is None else self.r.table(p, what)

    def string(self, idx: int, what: str) -> str:
        p = self.ref(idx)
        return "" if p is None else self.r.string(p, what)

    def ints(self, idx: int, what: str, s: struct.Struct = _I32) -> tuple[int, ...]:
        p = self.ref(idx)
        if p is None:
            return ()
        start, count = self.r.vector_header(p, s.size, what)
        return tuple(x[0] for x in s.iter_unpack(self.r.data[start : start + count * s.size]))

    def bytes_view(self, idx: int, what: str) -> memoryview:
        p = self.ref(idx)
        if p is None:
            return memoryview(b"")
        start, count = self.r.vector_header(p, 1, what)
        return self.r.data[start : start + count]

    def tables(self, idx: int, what: str, parse: Callable[[_Table], _T]) -> tuple[_T, ...]:
        p = self.ref(idx)
        if p is None:
            return ()
        start, count = self.r.vector_header(p, 4, what)
        out = []
        for i in range(count):
            slot = start + 4 * i
            out.append(parse(self.r.table(slot + self.r.u32(slot, what), f"{what}[{i}]")))
        return tuple(out)


# -- schema ------------------------------------------------------------------------------------

_CONV2D_OPTIONS = 1
_DEPTHWISE_OPTIONS = 2
_POOL2D_OPTIONS = 5
_CONCATENATION_OPTIONS = 10
_ADD_OPTIONS = 11
_RESIZE_BILINEAR_OPTIONS = 15
_RESHAPE_OPTIONS = 17
_MUL_OPTIONS = 21
#: custom options larger than this are not plausible for any operator FaceLink converts
_MAX_CUSTOM_OPTIONS = 4096

_MAX_RANK = 8


def _options(kind: int, t: _Table) -> Options | None:
    def b(i: int, d: int = 0) -> int:  # byte-sized enums
        return t.scalar(i, _I8, d)

    def i32(i: int, d: int = 0) -> int:
        return t.scalar(i, _I32, d)

    if kind == _CONV2D_OPTIONS:
        return Conv2DOptions(b(0), i32(1), i32(2), b(3), i32(4, 1), i32(5, 1))
    if kind == _DEPTHWISE_OPTIONS:
        return DepthwiseConv2DOptions(b(0), i32(1), i32(2), i32(3), b(4), i32(5, 1), i32(6, 1))
    if kind == _POOL2D_OPTIONS:
        return Pool2DOptions(b(0), i32(1), i32(2), i32(3), i32(4), b(5))
    if kind == _ADD_OPTIONS:
        return AddOptions(b(0))
    if kind == _CONCATENATION_OPTIONS:
        return ConcatenationOptions(i32(0), b(1))
    if kind == _RESHAPE_OPTIONS:
        return ReshapeOptions(t.ints(0, "ReshapeOptions.new_shape"))
    if kind == _MUL_OPTIONS:
        return MulOptions(b(0))
    if kind == _RESIZE_BILINEAR_OPTIONS:  # fields 0 and 1 (new_height/new_width) are deprecated
        return ResizeBilinearOptions(bool(t.scalar(2, _U8, 0)), bool(t.scalar(3, _U8, 0)))
    return None


def _operator(t: _Table) -> Operator:
    kind = t.scalar(3, _U8, 0)
    opt_table = t.table(4, "builtin options") if kind else None
    custom = t.bytes_view(5, "Operator.custom_options")
    if len(custom) > _MAX_CUSTOM_OPTIONS:
        raise t.r.fail(f"custom options of {len(custom)} bytes (more than {_MAX_CUSTOM_OPTIONS})")
    return Operator(
        opcode=t.scalar(0, _U32, 0),
        inputs=t.ints(1, "Operator.inputs"),
        outputs=t.ints(2, "Operator.outputs"),
        options=_options(kind, opt_table) if opt_table is not None else None,
        custom_options=bytes(custom),
    )


def _tensor(t: _Table) -> Tensor:
    shape = t.ints(0, "Tensor.shape")
    if len(shape) > _MAX_RANK:
        raise t.r.fail(f"tensor of rank {len(shape)} (more than {_MAX_RANK})")
    return Tensor(name=t.string(3, "Tensor.name"), type=t.scalar(1, _I8, 0), shape=shape, buffer=t.scalar(2, _U32, 0))


def _subgraph(t: _Table) -> SubGraph:
    return SubGraph(
        name=t.string(4, "SubGraph.name"),
        tensors=t.tables(0, "SubGraph.tensors", _tensor),
        operators=t.tables(3, "SubGraph.operators", _operator),
        inputs=t.ints(1, "SubGraph.inputs"),
        outputs=t.ints(2, "SubGraph.outputs"),
    )


def _opcode(t: _Table) -> tuple[int, str | None]:
    deprecated = t.scalar(0, _I8, 0)
    builtin = t.scalar(3, _I32, 0)
    custom = t.string(1, "OperatorCode.custom_code") or None
    # schema >= 2.4: the real code is the larger of the two (the byte saturates at 127)
    return max(deprecated, builtin), custom


def _buffer(r: _Reader) -> Callable[[_Table], memoryview]:
    def parse(t: _Table) -> memoryview:
        data = t.bytes_view(0, "Buffer.data")
        offset = t.scalar(1, _U64, 0)
        size = t.scalar(2, _U64, 0)
        if offset > 1:  # data stored outside the flatbuffer, after it in the same file
            if size > r.size or offset > r.size - size:
                raise r.fail(f"buffer data at byte {offset} ({size} bytes) is outside the file")
            return r.data[offset : offset + size]
        return data

    return parse


def _check_graph(g: SubGraph, n_buffers: int, n_codes: int, gi: int) -> None:
    n = len(g.tensors)
    for t in g.tensors:
        if t.buffer >= n_buffers:
            raise ModelFetchError(f"malformed TFLite model: tensor {t.name!r} names buffer {t.buffer} of {n_buffers}")
    for name, idx in (("inputs", g.inputs), ("outputs", g.outputs)):
        for i in idx:
            if not 0 <= i < n:
                raise ModelFetchError(f"malformed TFLite model: subgraph {gi} {name} name tensor {i} of {n}")
    for k, op in enumerate(g.operators):
        if op.opcode >= n_codes:
            raise ModelFetchError(f"malformed TFLite model: operator {k} uses opcode {op.opcode} of {n_codes}")
        for i in op.inputs + op.outputs:
            if not -1 <= i < n:
                raise ModelFetchError(f"malformed TFLite model: operator {k} names tensor {i} of {n}")
        if any(i < 0 for i in op.outputs):
            raise ModelFetchError(f"malformed TFLite model: operator {k} has an absent output")


def read_model(data: bytes | bytearray | memoryview) -> Model:
    """Decode a TFLite flatbuffer.  Buffers are zero-copy views of ``data``.

    Raises :class:`ModelFetchError` (one line) for anything malformed: bad offsets or lengths,
    a missing ``TFL3`` identifier, out-of-range tensor, buffer or opcode indices.
    """
    r = _Reader(data)
    if r.size < 8:
        raise r.fail(f"{r.size} bytes is too short")
    if bytes(r.data[4:8]) != b"TFL3":
        raise r.fail("no TFL3 file identifier (not a .tflite file)")
    root = r.table(r.u32(0, "root offset"), "Model")
    codes = root.tables(1, "Model.operator_codes", _opcode)
    buffers = root.tables(4, "Model.buffers", _buffer(r))
    subgraphs = root.tables(2, "Model.subgraphs", _subgraph)
    if not subgraphs:
        raise r.fail("no subgraphs")
    for gi, g in enumerate(subgraphs):
        _check_graph(g, len(buffers), len(codes), gi)
    return Model(
        version=root.scalar(0, _U32, 0),
        description=root.string(3, "Model.description"),
        operator_codes=tuple(c for c, _ in codes),
        custom_codes=tuple(c for _, c in codes),
        subgraphs=subgraphs,
        buffers=buffers,
    )
