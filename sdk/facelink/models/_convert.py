"""TFLite → ONNX conversion for FaceLink's MediaPipe graphs (BlazeFace, Face Mesh, Iris, selfie segmentation).

The converter handles exactly the operators those graphs use — CONV_2D, DEPTHWISE_CONV_2D,
PRELU, RELU, ADD, MAX_POOL_2D, PAD, RESHAPE, CONCATENATION and DEQUANTIZE (of float16
constants); for the selfie-segmentation graph also HARD_SWISH, LOGISTIC, MUL (with a broadcast
squeeze-excitation operand), AVERAGE_POOL_2D, RESIZE_BILINEAR and MediaPipe's custom
``Convolution2DTransposeBias`` — and rejects anything else with a
:class:`~facelink.errors.ModelFetchError` that names the operator.

Operator notes.  ``HARD_SWISH`` is ONNX ``HardSwish`` (``x * relu6(x + 3) / 6``);
``AVERAGE_POOL_2D`` is ``AveragePool`` with ``count_include_pad=0`` (TFLite averages the
in-bounds cells only), or ``GlobalAveragePool`` when one VALID window covers the input;
``RESIZE_BILINEAR`` is ``Resize`` (linear) with ``align_corners``, ``half_pixel`` or
``asymmetric`` coordinates as its options say (TFLite and ONNX Runtime both clamp source
coordinates to the input).  ``Convolution2DTransposeBias`` (custom options: the C struct
``{int32 padding (1 SAME, 2 VALID), stride_w, stride_h}``, weights ``[O, KH, KW, I]``, bias
``[O]``) is ``ConvTranspose``: an input pixel ``i`` lands at ``i * stride - pad_before + k``, with
``pad_before`` from TFLite's padding rule applied to the output size (SAME: output = input *
stride, ``pad_before = total // 2`` of ``total = (in - 1) * stride + k - out``); the pixels past
the output size are cut (``pads`` end), and output pixels no tap reaches (a kernel shorter than
the stride) are added by ``output_padding`` (they hold the bias alone).

Layout.  TFLite is NHWC; inside the ONNX graph every rank-4 activation is NCHW (one Transpose
after the input, one before each rank-4 output), so every convolution, pool and pad is a plain
rank-4 NCHW op that TensorRT maps directly.  Activations of rank < 4 (BlazeFace's reshaped
heads) are stored padded with trailing 1s to rank 4 and reshaped to their TFLite shape at the
graph output.  Shapes are static; the opset is 17.

Exactness.  TFLite's SAME padding is reproduced as explicit, possibly asymmetric pads computed
from the static shapes (``before = total // 2``, the extra pixel after), and every operator's
computed output shape is checked against the shape the TFLite file declares.  Float16 weights
are widened to float32 initializers exactly as TFLite's DEQUANTIZE does.

The graph's input keeps TFLite's NHWC float32 layout and value range, and its outputs keep
TFLite's shapes, so results compare one-to-one with the TFLite interpreter.

CPU form (``rewrite_for_cpu=True``, the default and what the model cache holds).  ONNX Runtime's
NCHWc layout transformer (the fast MLAS convolution path on x86) handles Conv, MaxPool, Add,
Concat and Relu but not PRelu or Pad, so the literal graph pays two layout conversions around
every PRelu and channel Pad (Face Mesh: 23 + 3; ~3x slower than TFLite's XNNPACK).  Two rewrites,
exact in real arithmetic, keep everything in that set, still plain rank-4 ops TensorRT parses:

* ``PRelu(x, a)`` with a per-channel slope becomes ``x + Conv_dw1x1(Relu(Conv_dw1x1(x, -1)), 1 - a)``
  (for x < 0: ``x + (1 - a)(-x) = a x``; for x >= 0: ``x``);
* ``Add(Pad_channels(m, +P), Conv(z, W, b))`` (BlazeBlock's stride-2 shortcut, channel counts
  multiples of 16 so NCHWc can concatenate blocks) becomes
  ``Concat(Add(m, Conv(z, W[:C], b[:C])), Conv(z, W[C:], b[C:]))``: no zeros are added.

Outputs move by float rounding only (Face Mesh landmarks <= 5e-5 px).  ``rewrite_for_cpu=False``
keeps the literal structure (native PRelu, which TensorRT fuses into convolutions); FaceLink
quantizes that form (:mod:`facelink.models._quantize`).
"""

from __future__ import annotations

import re
import struct
from collections.abc import Sequence
from typing import Any

import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper

from .._version import __version__
from ..errors import ModelFetchError
from ._tflite import (
    Activation,
    AddOptions,
    BuiltinOp,
    ConcatenationOptions,
    Conv2DOptions,
    DepthwiseConv2DOptions,
    Model,
    MulOptions,
    Operator,
    Padding,
    Pool2DOptions,
    ResizeBilinearOptions,
    SubGraph,
    TensorType,
    op_name,
    read_model,
)

__all__ = ["CONVERTER_VERSION", "OPSET", "convert"]

#: bump whenever the produced graph changes; cached ONNX file names include it
#: (2: PRelu and channel-padded shortcuts rewritten for ONNX Runtime's NCHWc layout)
CONVERTER_VERSION = 2
#: ONNX opset of the produced graphs
OPSET = 17
# IR version 8 is the oldest that carries opset 17; older runtimes and TensorRT parsers read it
_IR_VERSION = 8

_NHWC_TO_NCHW = (0, 3, 1, 2)
#: channel counts the channel-pad rewrite requires (ONNX Runtime's NCHWc block: 8 on AVX2, 16 on AVX-512)
_NCHWC_ALIGN = 16
_NCHW_TO_NHWC = (0, 2, 3, 1)
#: TFLite NHWC axis → ONNX NCHW axis
_AXIS_NCHW = (0, 2, 3, 1)


def _fail(msg: str) -> ModelFetchError:
    return ModelFetchError(f"cannot convert TFLite model: {msg}")


def _storage_shape(shape: tuple[int, ...]) -> tuple[int, ...]:
    """ONNX shape of an activation with TFLite shape ``shape`` (NCHW, or padded to rank 4)."""
    if len(shape) == 4:
        return tuple(shape[i] for i in _NHWC_TO_NCHW)
    return tuple(shape) + (1,) * (4 - len(shape))


def _window(size: int, k: int, stride: int, dilation: int, padding: int) -> tuple[int, int, int]:
    """``(out, pad_before, pad_after)`` of one spatial axis, as TFLite computes them."""
    eff = (k - 1) * dilation + 1
    if padding == Padding.SAME:
        out = -(-size // stride)
        total = max((out - 1) * stride + eff - size, 0)
        return out, total // 2, total - total // 2
    if padding == Padding.VALID:
        if size < eff:
            raise _fail(f"VALID window {eff} is larger than the input ({size})")
        return (size - eff) // stride + 1, 0, 0
    raise _fail(f"unknown padding type {padding}")


class _Graph:
    """Builds the ONNX graph while walking the TFLite operators in order."""

    def __init__(self, model: Model, graph: SubGraph, rewrite_for_cpu: bool = True) -> None:
        self.model = model
        self.g = graph
        self.rewrite_for_cpu = rewrite_for_cpu
        self.nodes: list[onnx.NodeProto] = []
        self.inits: list[onnx.TensorProto] = []
        self.used: set[str] = set()
        self.values: dict[int, str] = {}  # tensor index → ONNX name of an activation
        self.consts: dict[int, np.ndarray] = {}  # tensor index → constant (TFLite layout, fp32/int)
        self.op_index = 0
        self.op_label = ""

    # -- naming and emission -----------------------------------------------------------------

    def fresh(self, base: str) -> str:
        base = re.sub(r"[^A-Za-z0-9_./:-]", "_", base) or "t"
        name, n = base, 1
        while name in self.used:
            n += 1
            name = f"{base}__{n}"
        self.used.add(name)
        return name

    def init(self, base: str, array: np.ndarray) -> str:
        name = self.fresh(base)
        self.inits.append(numpy_helper.from_array(np.ascontiguousarray(array), name))
        return name

    def node(self, op: str, inputs: Sequence[str], output: str | None = None, **attrs: Any) -> str:
        out = output if output is not None else self.fresh(f"{self.op_label}_{op}")
        self.nodes.append(
            helper.make_node(op, list(inputs), [out], name=self.fresh(f"n{len(self.nodes)}_{op}"), **attrs)
        )
        return out

    def err(self, msg: str) -> ModelFetchError:
        return _fail(f"operator {self.op_index} ({self.op_label}): {msg}")

    # -- tensors ------------------------------------------------------------------------------

    def tshape(self, idx: int) -> tuple[int, ...]:
        shape = self.g.tensors[idx].shape
        if any(d <= 0 for d in shape):
            raise self.err(f"tensor {self.g.tensors[idx].name!r} has non-static shape {list(shape)}")
        if len(shape) > 4:
            raise self.err(f"tensor {self.g.tensors[idx].name!r} has rank {len(shape)} (at most 4 supported)")
        return shape

    def const(self, idx: int) -> np.ndarray | None:
        """The constant value of tensor ``idx``, or None when it is computed at run time."""
        if idx in self.consts:
            return self.consts[idx]
        if idx in self.values:
            return None
        data = self.model.tensor_data(self.g, idx)
        if data is not None:
            if data.dtype == np.float64:
                raise self.err(f"float64 constant {self.g.tensors[idx].name!r} is not supported")
            self.consts[idx] = data
        return data

    def need_const(self, idx: int, what: str) -> np.ndarray:
        if idx < 0:
            raise self.err(f"{what} is absent")
        data = self.const(idx)
        if data is None:
            raise self.err(f"{what} ({self.g.tensors[idx].name!r}) must be a constant")
        return data

    def act(self, idx: int) -> str:
        """ONNX name of activation tensor ``idx`` (must already be computed)."""
        if idx < 0:
            raise self.err("a required input is absent")
        if idx not in self.values:
            raise self.err(f"input {self.g.tensors[idx].name!r} is not computed by an earlier operator")
        return self.values[idx]

    def operand(self, idx: int, out_shape: tuple[int, ...]) -> str:
        """An activation, or a constant broadcast-compatible with ``out_shape`` in storage layout."""
        data = self.const(idx)
        if data is None:
            if len(self.tshape(idx)) != len(out_shape):
                raise self.err(
                    f"activation {self.g.tensors[idx].name!r} has rank {len(self.tshape(idx))}, "
                    f"output rank {len(out_shape)}"
                )
            return self.act(idx)
        arr = np.asarray(data, dtype=np.float32)
        if arr.ndim > len(out_shape):
            raise self.err(f"constant {self.g.tensors[idx].name!r} has higher rank than the output")
        arr = arr.reshape((1,) * (len(out_shape) - arr.ndim) + arr.shape)
        if len(out_shape) == 4:
            arr = arr.transpose(_NHWC_TO_NCHW)
        else:
            arr = arr.reshape(arr.shape + (1,) * (4 - arr.ndim))
        return self.init(self.g.tensors[idx].name, arr)

    def set_output(self, op: Operator, name: str, shape: tuple[int, ...]) -> None:
        """Record the op's single output, checking the computed shape against the file."""
        if len(op.outputs) != 1:
            raise self.err(f"expected 1 output, found {len(op.outputs)}")
        idx = op.outputs[0]
        t = self.g.tensors[idx]
        if t.type != TensorType.FLOAT32:
            raise self.err(f"output {t.name!r} has type {t.type}, only float32 activations are supported")
        declared = self.tshape(idx)
        if tuple(shape) != declared:
            raise self.err(f"computed output shape {list(shape)} but the file declares {list(declared)}")
        if idx in self.values or idx in self.consts or any(idx == i for i in self.g.inputs):
            raise self.err(f"tensor {t.name!r} is written twice")
        if self.nodes and self.nodes[-1].output[0] == name:  # name the value after the TFLite tensor
            name = self.nodes[-1].output[0] = self.fresh(t.name)
        self.values[idx] = name

    def activation(self, x: str, fused: int) -> str:
        if fused == Activation.NONE:
            return x
        if fused == Activation.RELU:
            return self.node("Relu", [x])
        if fused == Activation.RELU6:
            lo = self.init("relu6_min", np.array(0.0, np.float32))
            hi = self.init("relu6_max", np.array(6.0, np.float32))
            return self.node("Clip", [x, lo, hi])
        names = {2: "RELU_N1_TO_1", 4: "TANH", 5: "SIGN_BIT"}
        raise self.err(f"fused activation {names.get(fused, fused)} is not supported")

    def n_inputs(self, op: Operator, lo: int, hi: int | None = None) -> None:
        hi = lo if hi is None else hi
        if not lo <= len(op.inputs) <= hi:
            raise self.err(f"expected {lo}..{hi} inputs, found {len(op.inputs)}")

    # -- operators ----------------------------------------------------------------------------

    def conv(self, op: Operator, depthwise: bool) -> None:
        opt = op.options
        if not isinstance(opt, DepthwiseConv2DOptions if depthwise else Conv2DOptions):
            raise self.err("missing or wrong builtin options")
        self.n_inputs(op, 2, 3)
        x = self.act(op.inputs[0])
        n, h, w, c = self._rank4(op.inputs[0])
        kernel = np.asarray(self.need_const(op.inputs[1], "filter"), dtype=np.float32)
        if kernel.ndim != 4:
            raise self.err(f"filter has rank {kernel.ndim}, expected 4")
        if min(opt.stride_h, opt.stride_w, opt.dilation_h, opt.dilation_w) < 1:
            raise self.err("strides and dilations must be >= 1")
        if depthwise:  # [1, KH, KW, C*M] → [C*M, 1, KH, KW], one group per input channel
            if kernel.shape[0] != 1 or kernel.shape[3] % c:
                raise self.err(f"depthwise filter shape {list(kernel.shape)} does not fit {c} input channels")
            weight, group = kernel.transpose(3, 0, 1, 2), c
        else:  # [O, KH, KW, I] → OIHW; I < C means a grouped convolution
            if kernel.shape[3] < 1 or c % kernel.shape[3] or kernel.shape[0] % (c // kernel.shape[3]):
                raise self.err(f"filter shape {list(kernel.shape)} does not fit {c} input channels")
            weight, group = kernel.transpose(0, 3, 1, 2), c // kernel.shape[3]
        cout, kh, kw = weight.shape[0], weight.shape[2], weight.shape[3]
        oh, pt, pb = _window(h, kh, opt.stride_h, opt.dilation_h, opt.padding)
        ow, pl, pr = _window(w, kw, opt.stride_w, opt.dilation_w, opt.padding)
        inputs = [x, self.init(self.g.tensors[op.inputs[1]].name, weight)]
        if len(op.inputs) == 3 and op.inputs[2] >= 0:
            bias = np.asarray(self.need_const(op.inputs[2], "bias"), dtype=np.float32)
            if bias.shape != (cout,):
                raise self.err(f"bias shape {list(bias.shape)} does not match {cout} output channels")
            inputs.append(self.init(self.g.tensors[op.inputs[2]].name, bias))
        y = self.node(
            "Conv",
            inputs,
            kernel_shape=[kh, kw],
            strides=[opt.stride_h, opt.stride_w],
            dilations=[opt.dilation_h, opt.dilation_w],
            pads=[pt, pl, pb, pr],
            group=group,
        )
        self.set_output(op, self.activation(y, opt.activation), (n, oh, ow, cout))

    def _pool_window(self, op: Operator):
        """A 2-D pooling operator's options, input and output geometry (shared by MAX and AVERAGE)."""
        opt = op.options
        if not isinstance(opt, Pool2DOptions):
            raise self.err("missing or wrong builtin options")
        self.n_inputs(op, 1)
        x = self.act(op.inputs[0])
        n, h, w, c = self._rank4(op.inputs[0])
        if min(opt.stride_h, opt.stride_w, opt.filter_h, opt.filter_w) < 1:
            raise self.err("strides and filter sizes must be >= 1")
        oh, pt, pb = _window(h, opt.filter_h, opt.stride_h, 1, opt.padding)
        ow, pl, pr = _window(w, opt.filter_w, opt.stride_w, 1, opt.padding)
        attrs = {"kernel_shape": [opt.filter_h, opt.filter_w], "strides": [opt.stride_h, opt.stride_w], "pads": [pt, pl, pb, pr]}
        return opt, x, (n, h, w, c), (oh, ow), attrs

    def max_pool(self, op: Operator) -> None:
        opt, x, (n, _, _, c), (oh, ow), attrs = self._pool_window(op)
        # ONNX MaxPool ignores padded cells, as TFLite's SAME max pooling does
        y = self.node("MaxPool", [x], **attrs)
        self.set_output(op, self.activation(y, opt.activation), (n, oh, ow, c))

    def pad(self, op: Operator) -> None:
        self.n_inputs(op, 2)
        x = self.act(op.inputs[0])
        shape = self.tshape(op.inputs[0])
        pads = np.asarray(self.need_const(op.inputs[1], "paddings"))
        if pads.dtype.kind not in "iu" or pads.shape != (len(shape), 2) or (pads < 0).any():
            raise self.err(f"paddings {pads.tolist()} do not fit a rank-{len(shape)} input")
        pads = pads.astype(np.int64)
        out = tuple(int(d + a + b) for d, (a, b) in zip(shape, pads))
        if len(shape) == 4:
            pads = pads[list(_NHWC_TO_NCHW)]
        else:
            pads = np.concatenate([pads, np.zeros((4 - len(shape), 2), np.int64)])
        onnx_pads = self.init(f"{self.op_label}_pads", np.concatenate([pads[:, 0], pads[:, 1]]))
        self.set_output(op, self.node("Pad", [x, onnx_pads], mode="constant"), out)

    def prelu(self, op: Operator) -> None:
        self.n_inputs(op, 2)
        shape = self._rank4(op.inputs[0])
        alpha = self.need_const(op.inputs[1], "alpha")
        try:
            fits = alpha.ndim <= 4 and np.broadcast_shapes(alpha.shape, shape) == shape
        except ValueError:
            fits = False
        if not fits:
            raise self.err(f"alpha shape {list(alpha.shape)} does not broadcast to {list(shape)}")
        x = self.act(op.inputs[0])
        c = shape[3]
        flat = np.asarray(alpha, dtype=np.float32).reshape(-1)
        if self.rewrite_for_cpu and (flat.size == 1 or alpha.shape[-1:] == (c,) and flat.size == c):
            # x + (1 - a) * relu(-x): both scalings are depthwise 1x1 convolutions (see the module doc)
            slope = np.broadcast_to(flat, (c,)).astype(np.float32)
            name = self.g.tensors[op.inputs[1]].name
            neg = self.init(f"{name}_neg", np.full((c, 1, 1, 1), -1.0, np.float32))
            gain = self.init(f"{name}_gain", (np.float32(1.0) - slope).reshape(c, 1, 1, 1))
            dw = {"kernel_shape": [1, 1], "group": c}
            t = self.node("Relu", [self.node("Conv", [x, neg], **dw)])
            y = self.node("Add", [x, self.node("Conv", [t, gain], **dw)])
        else:
            y = self.node("PRelu", [x, self.operand(op.inputs[1], shape)])
        self.set_output(op, y, shape)

    def relu(self, op: Operator) -> None:
        self.n_inputs(op, 1)
        self.set_output(op, self.node("Relu", [self.act(op.inputs[0])]), self.tshape(op.inputs[0]))

    def add(self, op: Operator) -> None:
        opt = op.options
        self._binary(op, "Add", opt.activation if isinstance(opt, AddOptions) else Activation.NONE, "adding", same_rank=False)

    def _binary(self, op: Operator, onnx_op: str, fused: Activation, verb: str, same_rank: bool) -> None:
        """ADD / MUL: one input may be a constant; an activation broadcasts only when
        ``same_rank`` (MUL's squeeze-excitation channel scale: same rank broadcasts alike in
        NCHW, both transposed), otherwise it must have the output's shape."""
        self.n_inputs(op, 2)
        a, b = op.inputs
        if min(a, b) < 0:
            raise self.err("an input is absent")
        if self.const(a) is not None and self.const(b) is not None:
            raise self.err(f"{verb} two constants is not supported")
        try:
            shape = tuple(int(d) for d in np.broadcast_shapes(self.tshape(a), self.tshape(b)))
        except ValueError:
            raise self.err(f"shapes {list(self.tshape(a))} and {list(self.tshape(b))} do not broadcast") from None
        for i in (a, b):
            if self.const(i) is None:
                if same_rank and len(self.tshape(i)) != len(shape):
                    raise self.err("broadcasting an activation of another rank is not supported")
                if not same_rank and self.tshape(i) != shape:
                    raise self.err("broadcasting an activation is not supported")
        y = self.node(onnx_op, [self.operand(a, shape), self.operand(b, shape)])
        self.set_output(op, self.activation(y, fused), shape)

    def reshape(self, op: Operator) -> None:
        self.n_inputs(op, 1, 2)
        src = self.tshape(op.inputs[0])
        if len(op.outputs) != 1:
            raise self.err(f"expected 1 output, found {len(op.outputs)}")
        dst = self.tshape(op.outputs[0])
        if int(np.prod(src)) != int(np.prod(dst)):
            raise self.err(f"cannot reshape {list(src)} to {list(dst)}")
        x = self.act(op.inputs[0])
        if len(src) == 4:  # back to TFLite's element order first
            x = self.node("Transpose", [x], perm=list(_NCHW_TO_NHWC))
        nhwc_dst = dst if len(dst) == 4 else _storage_shape(dst)
        y = self.node("Reshape", [x, self.init(f"{self.op_label}_shape", np.array(nhwc_dst, np.int64))])
        if len(dst) == 4:
            y = self.node("Transpose", [y], perm=list(_NHWC_TO_NCHW))
        self.set_output(op, y, dst)

    def concat(self, op: Operator) -> None:
        opt = op.options
        if not isinstance(opt, ConcatenationOptions):
            raise self.err("missing or wrong builtin options")
        if not op.inputs:
            raise self.err("no inputs")
        shapes = [self.tshape(i) for i in op.inputs]
        rank = len(shapes[0])
        if not -rank <= opt.axis < rank:
            raise self.err(f"axis {opt.axis} out of range for rank {rank}")
        axis = opt.axis % rank
        for s in shapes:
            if len(s) != rank or any(d != e for k, (d, e) in enumerate(zip(s, shapes[0])) if k != axis):
                raise self.err(f"input shapes {[list(s) for s in shapes]} do not concatenate on axis {axis}")
        out = list(shapes[0])
        out[axis] = sum(s[axis] for s in shapes)
        names = [self.operand(i, s) for i, s in zip(op.inputs, shapes)]
        y = self.node("Concat", names, axis=_AXIS_NCHW[axis] if rank == 4 else axis)
        self.set_output(op, self.activation(y, opt.activation), tuple(out))

    def dequantize(self, op: Operator) -> None:
        self.n_inputs(op, 1)
        data = self.need_const(op.inputs[0], "input")
        if data.dtype != np.float16:
            raise self.err(f"only float16 weights are supported, found {data.dtype}")
        if len(op.outputs) != 1 or self.g.tensors[op.outputs[0]].type != TensorType.FLOAT32:
            raise self.err("output must be one float32 tensor")
        idx = op.outputs[0]
        if self.tshape(idx) != data.shape:
            raise self.err(f"output shape {list(self.tshape(idx))} differs from input {list(data.shape)}")
        if idx in self.values or idx in self.consts:
            raise self.err(f"tensor {self.g.tensors[idx].name!r} is written twice")
        self.consts[idx] = data.astype(np.float32)

    def unary(self, op: Operator, onnx_op: str) -> None:
        """An elementwise operator with no options (LOGISTIC → Sigmoid, HARD_SWISH → HardSwish)."""
        self.n_inputs(op, 1)
        self.set_output(op, self.node(onnx_op, [self.act(op.inputs[0])]), self.tshape(op.inputs[0]))

    def mul(self, op: Operator) -> None:
        """MUL; one activation may broadcast over the other (squeeze-excitation's channel scale)."""
        opt = op.options
        self._binary(op, "Mul", opt.activation if isinstance(opt, MulOptions) else Activation.NONE, "multiplying", same_rank=True)

    def average_pool(self, op: Operator) -> None:
        opt, x, (n, h, w, c), (oh, ow), attrs = self._pool_window(op)
        if (oh, ow) == (1, 1) and (opt.filter_h, opt.filter_w) == (h, w) and opt.padding == Padding.VALID:
            y = self.node("GlobalAveragePool", [x])
        else:  # TFLite divides by the in-bounds cells of each window: count_include_pad=0
            y = self.node("AveragePool", [x], **attrs, count_include_pad=0)
        self.set_output(op, self.activation(y, opt.activation), (n, oh, ow, c))

    def resize_bilinear(self, op: Operator) -> None:
        opt = op.options
        if not isinstance(opt, ResizeBilinearOptions):
            raise self.err("missing or wrong builtin options")
        self.n_inputs(op, 2)
        x = self.act(op.inputs[0])
        n, h, w, c = self._rank4(op.inputs[0])
        size = np.asarray(self.need_const(op.inputs[1], "size"))
        if size.dtype.kind not in "iu" or size.shape != (2,) or (size < 1).any():
            raise self.err(f"size {size.tolist()} is not two positive integers")
        oh, ow = (int(v) for v in size)
        if opt.align_corners and opt.half_pixel_centers:
            raise self.err("align_corners and half_pixel_centers together are not supported")
        mode = "align_corners" if opt.align_corners else "half_pixel" if opt.half_pixel_centers else "asymmetric"
        sizes = self.init(f"{self.op_label}_sizes", np.array([n, c, oh, ow], np.int64))
        y = self.node("Resize", [x, "", "", sizes], mode="linear", coordinate_transformation_mode=mode)
        self.set_output(op, y, (n, oh, ow, c))

    def transpose_conv_bias(self, op: Operator) -> None:
        """MediaPipe's ``Convolution2DTransposeBias`` custom op as ``ConvTranspose`` (module doc)."""
        self.n_inputs(op, 3)
        raw = op.custom_options
        if len(raw) < 12:
            raise self.err(f"custom options of {len(raw)} bytes; expected padding, stride_w, stride_h (12 bytes)")
        padding, stride_w, stride_h = struct.unpack_from("<3i", raw)
        if padding not in (1, 2):  # TfLitePadding: 1 SAME, 2 VALID
            raise self.err(f"unknown padding {padding} in custom options")
        if min(stride_w, stride_h) < 1:
            raise self.err(f"strides ({stride_h}, {stride_w}) must be >= 1")
        x = self.act(op.inputs[0])
        n, h, w, c = self._rank4(op.inputs[0])
        kernel = np.asarray(self.need_const(op.inputs[1], "filter"), dtype=np.float32)
        if kernel.ndim != 4 or kernel.shape[3] != c:
            raise self.err(f"filter shape {list(kernel.shape)} does not fit {c} input channels")
        cout, kh, kw = kernel.shape[:3]
        bias = np.asarray(self.need_const(op.inputs[2], "bias"), dtype=np.float32)
        if bias.shape != (cout,):
            raise self.err(f"bias shape {list(bias.shape)} does not match {cout} output channels")
        dims = []
        for size, k, stride in ((h, kh, stride_h), (w, kw, stride_w)):
            out = size * stride if padding == 1 else size * stride + max(k - stride, 0)
            # TFLite's padding rule for the forward convolution out -> size; only "before" is used
            total = max((-(-out // stride) - 1) * stride + k - out, 0) if padding == 1 else 0
            before = total // 2
            after = (size - 1) * stride + k - out - before
            # a kernel shorter than the stride leaves the last output pixels uncovered (bias only):
            # ONNX's output_padding (< stride) extends the output at the end
            dims.append((out, before, max(after, 0), max(-after, 0)))
        (oh, pt, pb, eh), (ow, pl, pr, ew) = dims
        extra = {"output_padding": [eh, ew]} if eh or ew else {}
        weight = self.init(self.g.tensors[op.inputs[1]].name, kernel.transpose(3, 0, 1, 2))  # IOHW
        y = self.node(
            "ConvTranspose",
            [x, weight, self.init(self.g.tensors[op.inputs[2]].name, bias)],
            kernel_shape=[kh, kw],
            strides=[stride_h, stride_w],
            pads=[pt, pl, pb, pr],
            **extra,
        )
        self.set_output(op, y, (n, oh, ow, cout))

    def split_padded_adds(self) -> None:
        """``Add(Pad_channels(m), Conv(z))`` → ``Concat(Add(m, Conv(z)[:C]), Conv(z)[C:])`` (module doc)."""
        inits = {t.name: t for t in self.inits}
        producer = {n.output[0]: n for n in self.nodes}
        uses: dict[str, int] = {}
        for n in self.nodes:
            for i in n.input:
                uses[i] = uses.get(i, 0) + 1
        replaced: dict[int, list[onnx.NodeProto]] = {}
        dropped: set[int] = set()
        for n in self.nodes:
            if n.op_type != "Add":
                continue
            for pad_in, conv_in in ((n.input[0], n.input[1]), (n.input[1], n.input[0])):
                pad, conv = producer.get(pad_in), producer.get(conv_in)
                if pad is None or conv is None or pad.op_type != "Pad" or conv.op_type != "Conv":
                    continue
                if uses.get(pad_in) != 1 or uses.get(conv_in) != 1 or len(conv.input) != 3:
                    continue
                pads = numpy_helper.to_array(inits[pad.input[1]]).tolist()
                weight = numpy_helper.to_array(inits[conv.input[1]])
                bias = numpy_helper.to_array(inits[conv.input[2]])
                extra = pads[5]
                keep = weight.shape[0] - extra
                if pads != [0, 0, 0, 0, 0, extra, 0, 0] or keep % _NCHWC_ALIGN or extra % _NCHWC_ALIGN or keep < 1:
                    continue
                attrs = {a.name: helper.get_attribute_value(a) for a in conv.attribute}
                label = conv.output[0]
                head = self.fresh(f"{label}_head")
                tail = self.fresh(f"{label}_tail")
                total = self.fresh(f"{n.output[0]}_head")
                w_head = self.init(f"{label}_w_head", weight[:keep])
                b_head = self.init(f"{label}_b_head", bias[:keep])
                w_tail = self.init(f"{label}_w_tail", weight[keep:])
                b_tail = self.init(f"{label}_b_tail", bias[keep:])
                parts = [
                    helper.make_node(
                        "Conv", [conv.input[0], w_head, b_head], [head], name=self.fresh(f"{conv.name}_head"), **attrs
                    ),
                    helper.make_node(
                        "Conv", [conv.input[0], w_tail, b_tail], [tail], name=self.fresh(f"{conv.name}_tail"), **attrs
                    ),
                    helper.make_node("Add", [pad.input[0], head], [total], name=self.fresh(f"{n.name}_head")),
                    helper.make_node(
                        "Concat", [total, tail], [n.output[0]], name=self.fresh(f"{n.name}_concat"), axis=1
                    ),
                ]
                replaced[id(n)] = parts
                dropped.update((id(pad), id(conv)))
                break
        if not replaced:
            return
        self.nodes = [m for n in self.nodes if id(n) not in dropped for m in replaced.get(id(n), [n])]
        used = {i for n in self.nodes for i in n.input}
        self.inits = [t for t in self.inits if t.name in used]

    def _rank4(self, idx: int) -> tuple[int, int, int, int]:
        shape = self.tshape(idx)
        if len(shape) != 4:
            raise self.err(f"input {self.g.tensors[idx].name!r} has rank {len(shape)}, expected 4 (NHWC)")
        return shape  # type: ignore[return-value]


def convert(
    model: Model | bytes,
    *,
    output_names: Sequence[str] | None = None,
    input_name: str = "input",
    graph_name: str = "facelink",
    metadata: dict[str, str] | None = None,
    rewrite_for_cpu: bool = True,
) -> onnx.ModelProto:
    """Convert a TFLite model (decoded or raw bytes) to a checked ONNX model.

    ``output_names`` renames the subgraph outputs in order (default: TFLite's names).  The
    single input is renamed ``input_name``.  ``metadata`` is stored as ONNX metadata props.
    ``rewrite_for_cpu`` applies the ONNX Runtime rewrites of the module doc (PRelu, channel Pad);
    False keeps TFLite's literal structure (the form FaceLink quantizes for TensorRT).
    Raises :class:`ModelFetchError` for unsupported operators or anything inconsistent.
    """
    if not isinstance(model, Model):
        model = read_model(model)
    if len(model.subgraphs) != 1:
        raise _fail(f"expected 1 subgraph, found {len(model.subgraphs)}")
    g = model.subgraphs[0]
    b = _Graph(model, g, rewrite_for_cpu)
    if len(g.inputs) != 1:
        raise _fail(f"expected 1 graph input, found {len(g.inputs)}")
    if output_names is not None and len(output_names) != len(g.outputs):
        raise _fail(f"graph has {len(g.outputs)} outputs, {len(output_names)} names given")
    if not g.outputs:
        raise _fail("graph has no outputs")
    out_names = list(output_names) if output_names is not None else [g.tensors[i].name for i in g.outputs]
    if len(set(out_names)) != len(out_names) or input_name in out_names:
        raise _fail(f"input/output names {[input_name, *out_names]} are not distinct")

    in_idx = g.inputs[0]
    in_t = g.tensors[in_idx]
    in_shape = in_t.shape
    if in_t.type != TensorType.FLOAT32 or len(in_shape) != 4 or any(d <= 0 for d in in_shape):
        raise _fail(f"input {in_t.name!r} must be static float32 NHWC, found type {in_t.type} shape {list(in_shape)}")
    b.used.update([input_name, *out_names])
    b.values[in_idx] = b.node("Transpose", [input_name], b.fresh("input_nchw"), perm=list(_NHWC_TO_NCHW))

    handlers = {
        BuiltinOp.CONV_2D: lambda op: b.conv(op, depthwise=False),
        BuiltinOp.DEPTHWISE_CONV_2D: lambda op: b.conv(op, depthwise=True),
        BuiltinOp.MAX_POOL_2D: b.max_pool,
        BuiltinOp.PAD: b.pad,
        BuiltinOp.PRELU: b.prelu,
        BuiltinOp.RELU: b.relu,
        BuiltinOp.ADD: b.add,
        BuiltinOp.RESHAPE: b.reshape,
        BuiltinOp.CONCATENATION: b.concat,
        BuiltinOp.DEQUANTIZE: b.dequantize,
        BuiltinOp.HARD_SWISH: lambda op: b.unary(op, "HardSwish"),
        BuiltinOp.LOGISTIC: lambda op: b.unary(op, "Sigmoid"),
        BuiltinOp.MUL: b.mul,
        BuiltinOp.AVERAGE_POOL_2D: b.average_pool,
        BuiltinOp.RESIZE_BILINEAR: b.resize_bilinear,
    }
    custom_handlers = {"Convolution2DTransposeBias": b.transpose_conv_bias}
    for k, op in enumerate(g.operators):
        code = model.operator_codes[op.opcode]
        custom = model.custom_codes[op.opcode]
        b.op_index = k
        b.op_label = op_name(code) if custom is None else f"CUSTOM:{custom}"
        handler = handlers.get(code) if custom is None else custom_handlers.get(custom)
        if handler is None:
            raise _fail(
                f"unsupported operator {b.op_label} (operator {k}); FaceLink converts only "
                "CONV_2D, DEPTHWISE_CONV_2D, PRELU, RELU, ADD, MAX_POOL_2D, PAD, RESHAPE, "
                "CONCATENATION, DEQUANTIZE, HARD_SWISH, LOGISTIC, MUL, AVERAGE_POOL_2D, "
                "RESIZE_BILINEAR and CUSTOM:Convolution2DTransposeBias"
            )
        handler(op)
    if rewrite_for_cpu:
        b.split_padded_adds()

    b.op_label, b.op_index = "output", len(g.operators)
    outputs = []
    for idx, name in zip(g.outputs, out_names):
        if idx not in b.values:
            raise _fail(f"output {g.tensors[idx].name!r} is not computed by the graph")
        shape = b.tshape(idx)
        if len(shape) == 4:
            b.node("Transpose", [b.values[idx]], name, perm=list(_NCHW_TO_NHWC))
        else:
            b.node("Reshape", [b.values[idx], b.init(f"{name}_shape", np.array(shape, np.int64))], name)
        outputs.append(helper.make_tensor_value_info(name, TensorProto.FLOAT, list(shape)))

    graph = helper.make_graph(
        b.nodes,
        graph_name,
        [helper.make_tensor_value_info(input_name, TensorProto.FLOAT, list(in_shape))],
        outputs,
        initializer=b.inits,
    )
    onnx_model = helper.make_model(
        graph,
        opset_imports=[helper.make_opsetid("", OPSET)],
        producer_name="facelink",
        producer_version=f"{__version__}+converter{CONVERTER_VERSION}",
        doc_string=f"Converted from TFLite by FaceLink's converter v{CONVERTER_VERSION}",
    )
    onnx_model.ir_version = _IR_VERSION
    props = {"facelink.converter_version": str(CONVERTER_VERSION), "facelink.cpu_rewrite": str(int(rewrite_for_cpu))}
    helper.set_model_props(onnx_model, {**props, **(metadata or {})})
    try:
        onnx.checker.check_model(onnx_model)
        inferred = onnx.shape_inference.infer_shapes(onnx_model, check_type=True, strict_mode=True)
    except (onnx.checker.ValidationError, onnx.shape_inference.InferenceError) as exc:
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise _fail(f"ONNX check failed: {first}") from None
    for vi, declared in zip(inferred.graph.output, outputs):
        dims = [d.dim_value for d in vi.type.tensor_type.shape.dim]
        want = [d.dim_value for d in declared.type.tensor_type.shape.dim]
        if dims != want:
            raise _fail(f"output {vi.name!r} infers to shape {dims}, expected {want}")
    return onnx_model
