"""Tests for the generator's learned refinement stage (facelink.generator._refine).

The runtime is checked with small hand-built ONNX graphs whose output is known exactly (so the
padding, cropping and large-box paths can be verified), and the shipped network for what a
user relies on: it loads, is small, has its training record, and changes the face box only.
The training code (PyTorch, the ``train`` extra) is tested when torch is installed.
"""

from __future__ import annotations

import numpy as np
import onnx
import pytest
from facelink.generator import Generator
from facelink.generator._refine import (
    MAX_SIDE,
    N_INPUTS,
    STRIDE,
    Refiner,
    default_refiner_path,
    edge_ramp,
    refiner_inputs,
    resolve_refiner,
)
from onnx import TensorProto, helper

pytest.importorskip("onnxruntime")

from test_generator import draw_face, posed  # noqa: E402


@pytest.fixture(autouse=True)
def _cache(tmp_path, monkeypatch):
    monkeypatch.setenv("FACELINK_HOME", str(tmp_path / "home"))
    monkeypatch.delenv("FACELINK_BACKEND", raising=False)


def linear_refiner(path, weights: np.ndarray, bias: np.ndarray, stride_check: bool = True, flow_bias=(0.0, 0.0), outputs=("flow", "residual")) -> str:
    """A 1x1 convolution refiner: residual = weights @ inputs + bias (per pixel), flow = ``flow_bias``.

    With ``stride_check`` it also fails (at run time) on sizes that are not multiples of
    STRIDE, like the real network: a MaxPool with kernel = stride = STRIDE and no padding,
    upsampled back and multiplied by 0, adds nothing but needs whole blocks.
    """
    w = helper.make_tensor("w", TensorProto.FLOAT, [3, N_INPUTS, 1, 1], weights.astype(np.float32).ravel().tolist())
    b = helper.make_tensor("b", TensorProto.FLOAT, [3], bias.astype(np.float32).ravel().tolist())
    fw = helper.make_tensor("fw", TensorProto.FLOAT, [2, N_INPUTS, 1, 1], [0.0] * (2 * N_INPUTS))
    fb = helper.make_tensor("fb", TensorProto.FLOAT, [2], [float(v) for v in flow_bias])
    nodes = [
        helper.make_node("Conv", ["inputs", "w", "b"], ["residual"] if not stride_check else ["lin"]),
        helper.make_node("Conv", ["inputs", "fw", "fb"], [outputs[0]]),
    ]
    inits = [w, b, fw, fb]
    if stride_check:
        nodes += [
            helper.make_node("Conv", ["inputs", "w", "b"], ["c"]),
            helper.make_node("MaxPool", ["c"], ["p"], kernel_shape=[STRIDE, STRIDE], strides=[STRIDE, STRIDE]),
            helper.make_node("Resize", ["p", "", "scales"], ["u"], mode="nearest"),
            helper.make_node("Mul", ["u", "zero"], ["z"]),
            helper.make_node("Add", ["lin", "z"], ["residual"]),
        ]
        inits += [
            helper.make_tensor("scales", TensorProto.FLOAT, [4], [1.0, 1.0, float(STRIDE), float(STRIDE)]),
            helper.make_tensor("zero", TensorProto.FLOAT, [], [0.0]),
        ]
    graph = helper.make_graph(
        nodes,
        "test_refiner",
        [helper.make_tensor_value_info("inputs", TensorProto.FLOAT, [1, N_INPUTS, "h", "w"])],
        [
            helper.make_tensor_value_info(outputs[0], TensorProto.FLOAT, [1, 2, "h", "w"]),
            helper.make_tensor_value_info("residual", TensorProto.FLOAT, [1, 3, "h", "w"]),
        ],
        inits,
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    model.ir_version = 8
    onnx.checker.check_model(model)
    onnx.save(model, str(path))
    return str(path)


# --------------------------------------------------------------------------- inputs
def test_refiner_inputs_channels():
    h, w = 5, 7
    rng = np.random.default_rng(0)
    patch = rng.integers(0, 256, (h, w, 3), dtype=np.uint8)
    ident = rng.uniform(-1, 1, (h, w, 2)).astype(np.float32)
    grid = ident.copy()
    grid[0, 0] += [0.01, -0.02]  # a small move
    grid[1, 1] += [5.0, -5.0]  # a huge one: clipped
    grid[2, 2, 1] = 0.95  # below the atlas line
    x = refiner_inputs(patch, grid, ident, (100.0, 50.0), 10.0, 0.9)
    assert x.shape == (N_INPUTS, h, w) and x.dtype == np.float32
    np.testing.assert_allclose(x[:3], patch.transpose(2, 0, 1) / 255.0, atol=1e-7)
    np.testing.assert_allclose(x[3:5, 0, 0], [0.01 * 100 / 10, -0.02 * 50 / 10], atol=1e-5)
    assert x[3, 1, 1] == 1.0 and x[4, 1, 1] == -1.0
    assert x[3:5, 3, 3].tolist() == [0.0, 0.0]
    assert x[5, 2, 2] == 1.0 and x[5].sum() == (grid[..., 1] > 0.9).sum()


# --------------------------------------------------------------------------- runtime
@pytest.mark.parametrize("shape", [(16, 16), (37, 53), (200, 171)])
def test_refiner_pads_and_crops_to_any_box(tmp_path, shape):
    rng = np.random.default_rng(1)
    wts = rng.normal(0, 0.1, (3, N_INPUTS))
    bias = rng.normal(0, 0.01, 3)
    ref = Refiner(linear_refiner(tmp_path / "lin.onnx", wts, bias), backend="onnxruntime")
    h, w = shape
    x = rng.uniform(-1, 1, (N_INPUTS, h, w)).astype(np.float32)
    flow, r = ref.predict(x)
    assert r.shape == (3, h, w) and flow.shape == (2, h, w) and not flow.any()
    np.testing.assert_allclose(r, np.einsum("co,ohw->chw", wts, x) + bias[:, None, None], atol=1e-5)
    patch = rng.integers(0, 256, (h, w, 3), dtype=np.uint8)
    out = ref(patch, x)
    ramp = edge_ramp(h, min(h, w))[:, None, None] * edge_ramp(w, min(h, w))[None, :, None]
    want = np.clip(patch + 255.0 * r.transpose(1, 2, 0) * ramp, 0, 255)
    assert out.dtype == np.uint8 and np.abs(out - want).max() <= 0.5 + 1e-3
    ref.close()


def test_large_boxes_are_refined_at_reduced_resolution(tmp_path):
    # a smooth input: the reduced-resolution residual, upsampled, stays close to the full one
    wts = np.zeros((3, N_INPUTS))
    wts[0, 0], wts[1, 3], wts[2, 5] = 0.5, 0.25, 0.1
    ref = Refiner(linear_refiner(tmp_path / "lin.onnx", wts, np.zeros(3)), backend="onnxruntime")
    h, w = MAX_SIDE * 2 + 30, MAX_SIDE + 7
    yy, xx = np.mgrid[0:h, 0:w].astype(np.float32)
    x = np.stack([np.sin(xx / 40), np.cos(yy / 50), xx / w, yy / h - 0.5, xx / w - 0.5, (yy > h / 2)]).astype(np.float32)
    flow, r = ref.predict(x)
    full = np.einsum("co,ohw->chw", wts, x)
    assert r.shape == full.shape
    err = np.abs(r - full)
    assert np.median(err) < 2e-3
    assert err[:, : h // 2 - 8].max() < 0.02  # away from the step in channel 5
    ref.close()
    # the flow comes back in full-resolution pixels: a network that moves by 1.5 of its own
    # (reduced) pixels moves by 1.5 f of the box's
    f = -(-h // MAX_SIDE)
    moving = Refiner(linear_refiner(tmp_path / "mv.onnx", wts, np.zeros(3), flow_bias=(1.5, -0.5)), backend="onnxruntime")
    flow, _ = moving.predict(x)
    np.testing.assert_allclose(flow[0], 1.5 * f, atol=1e-4)
    np.testing.assert_allclose(flow[1], -0.5 * f, atol=1e-4)
    moving.close()


def test_refiner_flow_moves_the_warped_face(tmp_path):
    """Flow (+2, -1) px: each output pixel is the patch's pixel 2 right and 1 up (edges clamped),
    faded in at the box edge like the residual."""
    rng = np.random.default_rng(3)
    h, w = 60, 80
    patch = rng.integers(0, 256, (h, w, 3), dtype=np.uint8)
    x = rng.uniform(0, 1, (N_INPUTS, h, w)).astype(np.float32)
    ref = Refiner(linear_refiner(tmp_path / "mv.onnx", np.zeros((3, N_INPUTS)), np.zeros(3), flow_bias=(2.0, -1.0)), backend="onnxruntime")
    out = ref(patch, x).astype(np.float64)
    ys, xs = np.clip(np.arange(h) - 1, 0, h - 1), np.clip(np.arange(w) + 2, 0, w - 1)
    moved = patch[ys][:, xs].astype(np.float64)
    ramp = edge_ramp(h, min(h, w))[:, None, None] * edge_ramp(w, min(h, w))[None, :, None]
    want = patch + ramp * (moved - patch)
    assert np.abs(out - want).max() <= 1.0
    assert np.array_equal(out[10:-10, 10:-10], moved[10:-10, 10:-10])
    ref.close()


def test_refiner_rejects_a_model_of_another_shape(tmp_path):
    path = linear_refiner(tmp_path / "old.onnx", np.zeros((3, N_INPUTS)), np.zeros(3), outputs=("motion", "residual"))
    with pytest.raises(ValueError, match="not a FaceLink refiner"):
        Refiner(path, backend="onnxruntime")


def test_resolve_refiner(tmp_path):
    assert resolve_refiner("off") is None and resolve_refiner(None) is None
    assert resolve_refiner("on") == default_refiner_path()
    assert resolve_refiner("int8") == default_refiner_path("int8")
    with Generator(draw_face(64, 64, posed(20.0, (32.0, 30.0))), posed(20.0, (32.0, 30.0))) as gen:
        assert gen.refiner is None  # off by default
    with pytest.raises(FileNotFoundError, match="refiner model not found"):
        resolve_refiner(str(tmp_path / "missing.onnx"))


def test_generator_applies_the_refiner_inside_the_face_box_only(tmp_path):
    lm = posed(80.0, (128.0, 120.0), yaw=0.1)
    img = draw_face(256, 256, lm)
    drv = posed(80.0, (131.0, 118.0), yaw=0.15)
    bias = np.array([0.2, -0.1, 0.05])
    model = linear_refiner(tmp_path / "bias.onnx", np.zeros((3, N_INPUTS)), bias)
    with Generator(img, lm, refiner="off") as plain, Generator(img, lm, refiner=model) as refined:
        a, b = plain.render(drv), refined.render(drv)
        assert plain.face_box == refined.face_box and refined.refiner is not None and plain.refiner is None
        x0, y0, x1, y1 = refined.face_box
    outside = np.ones(a.shape[:2], bool)
    outside[y0:y1, x0:x1] = False
    assert np.array_equal(a[outside], b[outside])
    h, w = y1 - y0, x1 - x0
    ramp = edge_ramp(h, min(h, w))[:, None, None] * edge_ramp(w, min(h, w))[None, :, None]
    want = np.clip(a[y0:y1, x0:x1].astype(np.float64) + 255 * bias * ramp, 0, 255)
    assert np.abs(b[y0:y1, x0:x1] - want).max() <= 1.0
    # full strength inside, faded at the box edge: no step against the untouched pixels around it
    assert ramp[h // 2, w // 2, 0] == 1.0 and ramp[0, w // 2, 0] < 0.25 and ramp[h // 2, 0, 0] < 0.25


def test_edge_ramp():
    r = edge_ramp(100, 100)  # feather 5 px
    assert r[0] == pytest.approx(0.1) and r[4] == pytest.approx(0.9) and np.all(r[5:95] == 1.0)
    assert np.array_equal(r, r[::-1]) and np.all(np.diff(r[:50]) >= 0)
    small = edge_ramp(10, 10)  # at least 4 px, even when the box is small
    assert small[0] == pytest.approx(0.125) and small[4] == 1.0


# --------------------------------------------------------------------------- shipped model
shipped = pytest.mark.skipif(default_refiner_path() is None, reason="no shipped refiner (generator/data/refiner.onnx)")


@shipped
def test_shipped_refiner_is_small_rank4_and_documented():
    path = default_refiner_path()
    assert path.stat().st_size < 10 * 2**20
    model = onnx.load(str(path))
    ops = {n.op_type for n in model.graph.node}
    assert ops <= {"Conv", "Relu", "Resize", "Concat", "ConvTranspose", "Constant", "Shape", "Gather", "Cast", "Unsqueeze", "Slice", "Mul", "Sub", "Div", "Floor"}
    for vi in list(model.graph.input) + list(model.graph.output):
        assert len(vi.type.tensor_type.shape.dim) == 4
    info = Refiner(path, backend="onnxruntime").info
    assert info["config"]["seed"] == 0 and info["train_seconds"] > 0 and info["samples"] > 0
    from facelink.datasets import EVAL_PERSONS, PERSONS

    assert info["train_clips"] and not {PERSONS.get(c, c) for c in info["train_clips"] + info["val_clips"]} & EVAL_PERSONS


@shipped
def test_shipped_refiner_makes_bounded_changes_to_a_face(tmp_path):
    lm = posed(80.0, (128.0, 120.0), yaw=0.1)
    img = draw_face(256, 256, lm)
    drv = posed(80.0, (130.0, 121.0), yaw=0.2, pitch=0.05)
    with Generator(img, lm, refiner="off") as plain, Generator(img, lm, refiner="on") as refined:
        a, b = plain.render(drv), refined.render(drv)
        x0, y0, x1, y1 = refined.face_box
    d = np.abs(a.astype(np.int16) - b.astype(np.int16))
    outside = np.ones(a.shape[:2], bool)
    outside[y0:y1, x0:x1] = False
    assert d[outside].max() == 0
    assert 0 < d.mean() < 12  # it does something, and it is a correction, not a new image


shipped_int8 = pytest.mark.skipif(default_refiner_path("int8") is None, reason="no shipped INT8 refiner (generator/data/refiner.int8.onnx)")


@shipped_int8
def test_shipped_int8_refiner_is_the_fp32_one_quantized(tmp_path):
    """Q/DQ on every convolution but the flow head (per-channel int8 weights), float output
    layers, and on a face it predicts what the FP32 network predicts to within a grey level or
    two and a tenth of a pixel."""
    path = default_refiner_path("int8")
    model = onnx.load(str(path))
    ops = [n.op_type for n in model.graph.node]
    convs = ops.count("Conv")  # 10 quantized, the flow head float
    assert convs == 11 and ops.count("QuantizeLinear") == convs - 1 and ops.count("DequantizeLinear") == 2 * (convs - 1)
    assert any(i.data_type == TensorProto.INT8 and len(i.dims) == 4 for i in model.graph.initializer)
    props = {p.key: p.value for p in model.metadata_props}
    assert props["facelink.precision"] == "int8" and "flow head" in props["facelink.float_nodes"]
    fp32, int8 = Refiner(default_refiner_path(), backend="onnxruntime"), Refiner(path, backend="onnxruntime")
    assert int8.info["int8"]["method"] == "percentile" and int8.info["config"] == fp32.info["config"]
    lm = posed(80.0, (128.0, 120.0), yaw=0.1)
    with Generator(draw_face(256, 256, lm), lm) as gen:
        _, inputs = gen.warp_parts(posed(80.0, (130.0, 121.0), yaw=0.2, pitch=0.05))
    (fa, a), (fb, b) = fp32.predict(inputs), int8.predict(inputs)
    assert np.abs(a).mean() * 255 > 0.5 and np.abs(fa).mean() > 0.05  # the network does something here
    assert np.abs(a - b).mean() * 255 < 1.5 and np.abs(a - b).max() * 255 < 12
    assert np.abs(fa - fb).mean() < 0.1 and np.abs(fa - fb).max() < 1.0  # pixels
    fp32.close()
    int8.close()


@shipped
def test_refiner_quantizer_is_deterministic(tmp_path):
    """`python -m facelink.train refiner-int8` is deterministic: same model and inputs, same bytes;
    calibration inputs of any size are cropped to whole network strides."""
    from facelink.train._quantize import quantize_refiner

    rng = np.random.default_rng(0)
    xs = [rng.random((N_INPUTS, 40 + 8 * k, 56), dtype=np.float32) for k in range(3)]
    a, b = tmp_path / "a.onnx", tmp_path / "b.onnx"
    rec = quantize_refiner(default_refiner_path(), xs, a)
    quantize_refiner(default_refiner_path(), xs, b)
    assert a.read_bytes() == b.read_bytes()
    assert rec["int8"]["calibration_inputs"] == 3 and rec["int8"]["quantized_convs"] == 10
    assert all(v > 0 for v in rec["int8"]["ranges"].values())
    flow, out = Refiner(a, backend="onnxruntime").predict(xs[0])
    assert out.shape == (3, 40, 56) and flow.shape == (2, 40, 56) and np.isfinite(out).all() and np.isfinite(flow).all()


# --------------------------------------------------------------------------- training code
def test_training_code_exports_what_the_runtime_runs(tmp_path):
    torch = pytest.importorskip("torch", reason="training tests need the train extra (PyTorch)")
    from facelink.train._data import Sample
    from facelink.train._model import RefinerNet
    from facelink.train._train import TrainConfig, train

    net = RefinerNet()
    x = torch.rand(1, N_INPUTS, 48, 64)
    flow0, res0 = net(x)
    assert float(flow0.abs().max()) == 0.0 and float(res0.abs().max()) == 0.0  # untrained = identity (both heads start at 0)
    rng = np.random.default_rng(0)
    samples = []
    for k in range(6):
        inp = rng.uniform(0, 1, (N_INPUTS, 70, 90)).astype(np.float16)
        target = np.clip(inp[:3].astype(np.float32) * 255 + 20, 0, 255).astype(np.uint8)  # the warp is 20 levels too dark
        samples.append(Sample(inp, target, "synthetic", k))
    cfg = TrainConfig(steps=60, batch=4, crop=64, lr=3e-3, log_every=20, threads=1)
    path = train(cfg, samples, samples[:2], tmp_path / "run", {"samples": len(samples), "train_clips": ["synthetic"]})
    assert (tmp_path / "run" / "loss.json").is_file()
    ref = Refiner(path, backend="onnxruntime")
    assert ref.info["config"]["steps"] == 60
    inp = samples[0].inputs.astype(np.float32)
    flow, r = ref.predict(inp)
    net.load_state_dict(torch.load(tmp_path / "run" / "refiner.pt"))
    padded = np.pad(inp, ((0, 0), (0, -70 % STRIDE), (0, -90 % STRIDE)), mode="edge")
    with torch.no_grad():
        want_flow, want = (t[0, :, :70, :90].numpy() for t in net.eval()(torch.from_numpy(padded[None])))
    np.testing.assert_allclose(r, want, atol=1e-4)
    np.testing.assert_allclose(flow, want_flow, atol=1e-4)
    assert r.mean() > 0.01  # it learned to brighten
    # the runtime composes flow and residual as training did (up to the uint8 rounding of the resample)
    patch = np.clip(inp[:3].transpose(1, 2, 0) * 255 + 0.5, 0, 255).astype(np.uint8)
    inp[:3] = patch.transpose(2, 0, 1) / 255.0
    from facelink.train._model import apply

    with torch.no_grad():
        f, rr = (torch.from_numpy(a[None]) for a in ref.predict(inp))
        trained = apply(torch.from_numpy(inp[None, :3]), f, rr)[0].numpy().transpose(1, 2, 0) * 255
    got = ref(patch, inp).astype(np.float64)
    inner = np.s_[5:-5, 5:-5]  # the runtime fades the change at the box edge
    assert np.abs(got[inner] - trained[inner]).max() <= 1.5
