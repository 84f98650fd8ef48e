"""Tests for INT8 calibration and the Q/DQ graphs (facelink.calibration, facelink.models._quantize).

The end-to-end run calibrates the real models on crops the real tracker makes from frames
rendered out of the public-domain portrait (shifted, rotated, scaled, brightness-varied), never
on ../shared/data.  Q/DQ graphs are checked structurally against what TensorRT's explicit
quantization expects, and run in ONNX Runtime against the accuracy budget.
"""

from __future__ import annotations

import contextlib
import io
import json
import math
import shutil
from pathlib import Path

import numpy as np
import onnx
import pytest
from facelink.calibration import (
    BUDGET,
    DetectionAgreement,
    Recipe,
    box_iou,
    compute_ranges,
    count_macs,
    entropy_threshold,
    gather_sources,
    jetson_estimate,
    load_recipe,
    percentile_threshold,
    sample_indices,
)
from facelink.cli import main
from facelink.errors import InputError, ModelFetchError
from facelink.models import MODEL_SPECS, facelink_home, model_path, resolve_precision
from facelink.models._quantize import (
    QMAX,
    TABLE_FORMAT,
    ModelRanges,
    RangeTable,
    convert_literal,
    default_table_path,
    int8_filename,
    plan_quantization,
    quantize_model,
    table_json,
    weight_scales,
)
from onnx import TensorProto, helper, numpy_helper
from PIL import Image

ort = pytest.importorskip("onnxruntime")

ROOT = Path(__file__).resolve().parents[1]
QUANTIZED = ("face_detector", "face_landmark")


# -- helpers ------------------------------------------------------------------------------------


def render(portrait: np.ndarray, dx: float, dy: float, angle: float, scale: float, gain: float) -> np.ndarray:
    """The portrait moved by (dx, dy) px, rotated ``angle`` degrees, scaled, brightness × ``gain``, 480x640."""
    h, w = 480, 640
    a = math.radians(angle)
    c, s = math.cos(a), math.sin(a)
    ih, iw = portrait.shape[:2]
    ox, oy = w / 2 + dx, h / 2 + dy
    # output pixel (u, v) -> input (x, y): inverse rotation and scale about the shifted centre
    coeffs = (
        c / scale,
        s / scale,
        iw / 2 - (c * ox + s * oy) / scale,
        -s / scale,
        c / scale,
        ih / 2 - (-s * ox + c * oy) / scale,
    )
    img = Image.fromarray(portrait).transform(
        (w, h), Image.Transform.AFFINE, coeffs, resample=Image.Resampling.BILINEAR
    )
    return np.clip(np.asarray(img, dtype=np.float32) * gain, 0, 255).astype(np.uint8)


TRAIN_VIEWS = [
    (0, 0, 0, 1.0, 1.0), (40, -20, 8, 0.9, 0.8), (-50, 30, -10, 1.1, 1.2), (20, 40, 15, 0.8, 1.0),
    (-30, -40, -5, 1.2, 0.7), (60, 10, 4, 1.0, 1.3), (-70, 0, 12, 0.85, 0.9), (10, -30, -14, 0.95, 1.1),
]  # fmt: skip
EVAL_VIEWS = [(25, 15, -7, 1.05, 0.85), (-35, -10, 10, 0.9, 1.15), (45, -25, 3, 1.15, 1.0), (-15, 35, -12, 0.8, 0.95)]


def literal(name: str) -> onnx.ModelProto:
    return convert_literal(name, (facelink_home() / "models" / MODEL_SPECS[name].tflite_filename).read_bytes())


def ort_session(model: onnx.ModelProto):
    so = ort.SessionOptions()
    so.log_severity_level = 3
    return ort.InferenceSession(model.SerializeToString(), so, providers=["CPUExecutionProvider"])


def assert_tensorrt_qdq(model: onnx.ModelProto, float_nodes: set[str] = frozenset()) -> None:  # type: ignore[assignment]
    """Every Conv/Gemm weight per-channel symmetric int8 (axis 0, zero points 0), activations per tensor."""
    g = model.graph
    inits = {t.name: numpy_helper.to_array(t) for t in g.initializer}
    producer = {o: n for n in g.node for o in n.output}
    for q in (n for n in g.node if n.op_type in ("QuantizeLinear", "DequantizeLinear")):
        scale, zero = inits[q.input[1]], inits[q.input[2]]
        assert scale.dtype == np.float32 and (scale > 0).all(), q.name
        assert zero.dtype == np.int8 and not zero.any(), q.name
    weighted = [n for n in g.node if n.op_type in ("Conv", "Gemm")]
    assert weighted
    for n in weighted:
        key = {n.name, n.output[0]}
        if key & float_nodes:
            assert n.input[1] in inits and inits[n.input[1]].dtype == np.float32, n.name
            continue
        dq = producer[n.input[1]]
        assert dq.op_type == "DequantizeLinear" and dq.input[0] in inits, n.name
        q, scale, zero = inits[dq.input[0]], inits[dq.input[1]], inits[dq.input[2]]
        axis = next(a.i for a in dq.attribute if a.name == "axis")
        assert axis == 0 and q.dtype == np.int8 and scale.shape == zero.shape == (q.shape[0],), n.name
        assert int(np.abs(q.astype(np.int32)).max()) <= QMAX
        per_channel = np.abs(q.reshape(q.shape[0], -1).astype(np.int32)).max(axis=1)
        assert np.all((per_channel == QMAX) | (per_channel == 0)), n.name  # symmetric max scaling
        act = producer[n.input[0]]
        assert act.op_type == "DequantizeLinear", f"{n.name}: activation input not quantized"
        quant = producer[act.input[0]]
        assert quant.op_type == "QuantizeLinear" and list(quant.input[1:]) == list(act.input[1:])
        assert inits[act.input[1]].shape == () and inits[act.input[2]].shape == (), f"{n.name}: not per-tensor"
        if len(n.input) > 2:
            assert n.input[2] in inits and inits[n.input[2]].dtype == np.float32  # bias stays float


def crops_of(portrait: np.ndarray, views: list[tuple]) -> tuple[list[np.ndarray], list[np.ndarray]]:
    from facelink.backend._onnxruntime import OnnxRuntimeSession
    from facelink.calibration import FrameSequence, collect_crops

    det = OnnxRuntimeSession(model_path("face_detector"))
    lm = OnnxRuntimeSession(model_path("face_landmark"))
    seq = FrameSequence(
        "portrait", "astronaut", "train", iter([(render(portrait, *v), 0.1 * i) for i, v in enumerate(views)])
    )
    got = collect_crops([seq], det, lm)
    return got.detector, got.landmark


# -- pure parts -------------------------------------------------------------------------------


def test_percentile_threshold() -> None:
    hist = np.ones(100)
    assert percentile_threshold(hist, 0.5, 50.0) == pytest.approx(25.0)  # bin 49's upper edge
    assert percentile_threshold(hist, 0.5, 100.0) == pytest.approx(50.0)
    assert percentile_threshold(np.zeros(10), 1.0, 99.0) == 10.0


def test_entropy_threshold_clips_rare_outliers_but_not_a_flat_distribution() -> None:
    rng = np.random.default_rng(0)
    bulk = np.abs(rng.normal(0.0, 1.0, 200_000))
    outliers = np.full(20, 40.0)
    values = np.concatenate([bulk, outliers])
    hist, edges = np.histogram(values, bins=2048, range=(0.0, values.max()))
    t = entropy_threshold(hist, edges[1] - edges[0])
    assert np.percentile(bulk, 99.0) < t < 0.25 * values.max()
    flat = np.full(2048, 100.0)
    assert entropy_threshold(flat, 1.0) >= 0.9 * 2048


def test_sample_indices_spread_over_the_clip() -> None:
    assert sample_indices(100, 5, 3) == [0, 20, 40, 60, 80]
    assert sample_indices(10, 5, 3) == [0, 3, 6, 9]
    assert sample_indices(None, 3, 4) == [0, 4, 8]


def test_recipe_file_matches_the_built_in_recipe() -> None:
    assert load_recipe(ROOT / "calibration" / "recipe.json") == Recipe()


def test_recipe_validation(tmp_path: Path) -> None:
    bad = tmp_path / "r.json"
    bad.write_text(json.dumps({"train_frames": 3}))
    with pytest.raises(InputError, match="unknown keys \\['train_frames'\\]"):
        load_recipe(bad)
    bad.write_text(json.dumps({"eval_fraction": 1.5}))
    with pytest.raises(InputError, match="eval_fraction must be in"):
        load_recipe(bad)
    with pytest.raises(ValueError, match="train_frames_per_clip must be a positive int"):
        Recipe(train_frames_per_clip=0)


def test_sources_split_by_person(tmp_path: Path) -> None:
    files = []
    for name in ("alice", "bob", "carol"):
        p = tmp_path / f"{name}.png"
        Image.new("RGB", (8, 8)).save(p)
        files.append(p)
    got = gather_sources([str(files[0]), str(files[1])], [str(files[2])])
    assert [(s.person, s.split, s.kind) for s in got] == [
        ("alice", "train", "image"),
        ("bob", "train", "image"),
        ("carol", "eval", "image"),
    ]
    with pytest.raises(InputError, match="appear on both sides"):
        gather_sources([str(files[0])], [str(files[0])])
    with pytest.raises(InputError, match="needs train and held-out persons"):
        gather_sources([str(files[0])], [])
    with pytest.raises(InputError, match="no such file"):
        gather_sources([str(tmp_path / "missing.mp4")])


def test_range_table_round_trip_and_validation() -> None:
    entry = ModelRanges("ab" * 32, {"t1": 1.5, "t0": 0.1}, {"conv": "why"})
    blob = table_json({"face_landmark": entry}, "percentile", {"generated_by": "test"})
    assert blob == table_json({"face_landmark": entry}, "percentile", {"generated_by": "test"})  # deterministic
    table = RangeTable.from_json(blob)
    assert table.model("face_landmark") == entry and table.method == "percentile" and len(table.sha256) == 64
    with pytest.raises(ModelFetchError, match="no entry for face_detector"):
        table.model("face_detector")
    obj = json.loads(blob)
    obj["models"]["face_landmark"]["ranges"]["t1"] = -1.0
    with pytest.raises(ModelFetchError, match="ranges must be positive"):
        RangeTable.from_json(json.dumps(obj).encode())
    with pytest.raises(ModelFetchError, match=f"expected '{TABLE_FORMAT}'"):
        RangeTable.from_json(b'{"format": "other"}')
    with pytest.raises(ModelFetchError, match="not JSON"):
        RangeTable.from_json(b"\xff")


def test_count_macs_and_jetson_estimate() -> None:
    x = helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, 3, 8, 8])
    y = helper.make_tensor_value_info("z", TensorProto.FLOAT, [1, 4, 8, 8])
    w1 = numpy_helper.from_array(np.zeros((4, 3, 3, 3), np.float32), "w1")
    w2 = numpy_helper.from_array(np.zeros((4, 1, 3, 3), np.float32), "w2")
    nodes = [
        helper.make_node("Conv", ["x", "w1"], ["y"], pads=[1, 1, 1, 1]),
        helper.make_node("Conv", ["y", "w2"], ["y2"], pads=[1, 1, 1, 1], group=4),
        helper.make_node("Relu", ["y2"], ["z"]),
    ]
    m = helper.make_model(
        helper.make_graph(nodes, "g", [x], [y], [w1, w2]), opset_imports=[helper.make_opsetid("", 17)]
    )
    c = count_macs(m)
    assert c["per_conv"] == {"y": 4 * 64 * 27, "y2": 4 * 64 * 9} and c["total_macs"] == 4 * 64 * 36
    assert c["elementwise"] == 4 * 64
    est = jetson_estimate(
        {"m": 10_000_000}, dense_int8_tops=20.0, utilisations=(0.1,), layers={"m": 10}, per_layer_us=5.0
    )
    assert est["models"]["m"]["ms_at_10pct"] == pytest.approx(2 * 1e7 / 2e12 * 1000 + 0.05, abs=1e-3)


def test_detection_agreement_counts() -> None:
    from facelink.face import Detection

    def det(box: tuple) -> Detection:
        return Detection(box, np.zeros((6, 2), np.float32), 0.9)

    a = DetectionAgreement()
    a.add([], [])
    a.add([det((0, 0, 10, 10))], [det((1, 1, 11, 11))])  # IoU 0.68
    a.add([det((0, 0, 10, 10))], [det((6, 6, 16, 16))])  # IoU 0.09
    a.add([det((0, 0, 10, 10))], [])
    a.add([], [det((0, 0, 10, 10))])
    d = a.as_dict()
    assert (
        d["frames"],
        d["agree"],
        d["both_no_face"],
        d["iou_at_most_threshold"],
        d["missed_by_int8"],
        d["extra_in_int8"],
    ) == (5, 2, 1, 1, 1, 1)
    assert box_iou((0, 0, 10, 10), (5, 0, 15, 10)) == pytest.approx(1 / 3)


def test_resolve_precision(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("FACELINK_PRECISION", raising=False)
    assert resolve_precision("auto", "onnxruntime") == "fp32"
    assert resolve_precision("auto", "tensorrt") == "int8"
    assert resolve_precision(" INT8 ", "onnxruntime") == "int8"
    monkeypatch.setenv("FACELINK_PRECISION", "int8")
    assert resolve_precision("auto", "onnxruntime") == "int8"
    assert resolve_precision("fp32", "tensorrt") == "fp32"  # an explicit choice wins over the env
    monkeypatch.setenv("FACELINK_PRECISION", "fp8")
    with pytest.raises(ValueError, match="unknown FACELINK_PRECISION 'fp8'"):
        resolve_precision("auto", "onnxruntime")
    with pytest.raises(ValueError, match="unknown precision 'half'"):
        resolve_precision("half", "onnxruntime")


# -- the graphs ---------------------------------------------------------------------------------


def test_literal_and_cpu_forms_compute_the_same(models) -> None:
    for name in QUANTIZED:
        lit, cpu = literal(name), onnx.load(models.onnx[name])
        assert "PRelu" not in {n.op_type for n in cpu.graph.node}
        if name == "face_landmark":
            assert "PRelu" in {n.op_type for n in lit.graph.node}
            assert not {"Pad"} & {n.op_type for n in cpu.graph.node}
        spec = MODEL_SPECS[name]
        a, b = ort_session(lit), ort_session(cpu)
        for seed in range(3):
            x = np.random.default_rng(seed).uniform(*spec.input_range, spec.input_shape).astype(np.float32)
            for u, v in zip(a.run(None, {"input": x}), b.run(None, {"input": x})):
                assert float(np.abs(u - v).max()) <= 1e-3 * max(1.0, float(np.abs(u).max()))


def test_plan_shares_scales_through_maxpool_and_pad(models) -> None:
    plan = plan_quantization(literal("face_landmark"))
    assert plan.inherited["channel_padding_1"] == "p_re_lu_3"
    assert "input_nchw" in plan.calibrated and "channel_padding_1" not in plan.calibrated
    kept = plan_quantization(literal("face_landmark"), {"conv2d_21": "test"})
    assert len(kept.convs) == len(plan.convs) - 1 and kept.float_nodes == {"conv2d_21": "test"}
    with pytest.raises(ModelFetchError, match="names no Conv"):
        plan_quantization(literal("face_landmark"), {"nope": "x"})


def test_quantize_model_structure_determinism_and_errors(models) -> None:
    m = literal("face_landmark")
    plan = plan_quantization(m)
    ranges = {t: 1.0 + 0.01 * i for i, t in enumerate(plan.calibrated)}
    q = quantize_model(m, ranges, {"conv2d_21": "head"})
    assert_tensorrt_qdq(q, {"conv2d_21"})
    assert q.SerializeToString() == quantize_model(m, ranges, {"conv2d_21": "head"}).SerializeToString()
    inits = {t.name: numpy_helper.to_array(t) for t in q.graph.initializer}
    assert inits["channel_padding_1_scale"] == inits["p_re_lu_3_scale"]  # shared, exact
    assert inits["input_nchw_scale"] == np.float32(ranges["input_nchw"] / QMAX)
    w = numpy_helper.to_array(next(t for t in m.graph.initializer if t.name == "conv2d_1/Kernel_dequantize"))
    np.testing.assert_allclose(inits["conv2d_1/Kernel_dequantize_scale"], weight_scales(w).astype(np.float32))
    props = {p.key: p.value for p in q.metadata_props}
    assert props["facelink.precision"] == "int8" and json.loads(props["facelink.float_nodes"]) == {"conv2d_21": "head"}
    ranges.pop("input_nchw")
    with pytest.raises(ModelFetchError, match="lacks 1 tensors.*re-run `facelink calibrate`"):
        quantize_model(m, ranges)


def test_minmax_ranges_agree_with_onnxruntime_calibrator(models, portrait, tmp_path: Path) -> None:
    from onnxruntime.quantization import CalibrationDataReader, CalibrationMethod, create_calibrator

    m = literal("face_landmark")
    _, crops = crops_of(portrait, TRAIN_VIEWS[:2])
    plan = plan_quantization(m)
    ours = compute_ranges(m, plan.calibrated, crops, "minmax")
    onnx.save(m, tmp_path / "m.onnx")

    class Reader(CalibrationDataReader):
        def __init__(self) -> None:
            self.it = iter(crops)

        def get_next(self):
            x = next(self.it, None)
            return None if x is None else {"input": x[None]}

    with contextlib.redirect_stdout(io.StringIO()):
        cal = create_calibrator(
            tmp_path / "m.onnx", ["Conv"], augmented_model_path=str(tmp_path / "aug.onnx"),
            calibrate_method=CalibrationMethod.MinMax, extra_options={"symmetric": True},
        )  # fmt: skip
        cal.collect_data(Reader())
        theirs = cal.compute_data()
    for t in plan.calibrated:
        lo, hi = theirs[t].range_value
        assert ours[t] == pytest.approx(max(abs(float(np.ravel(lo)[0])), abs(float(np.ravel(hi)[0]))), rel=1e-6), t


# -- end to end: facelink calibrate on rendered portrait frames -----------------------------------------


@pytest.fixture(scope="module")
def calibrated(models, portrait, tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, dict]:
    """``facelink calibrate`` on 8 train and 4 held-out views of the portrait (PNG files)."""
    root = tmp_path_factory.mktemp("calib")
    paths = {}
    for split, views in (("train", TRAIN_VIEWS), ("eval", EVAL_VIEWS)):
        paths[split] = []
        for i, v in enumerate(views):
            p = root / f"{split}_{i}.png"
            Image.fromarray(render(portrait, *v)).save(p)
            paths[split].append(str(p))
    recipe = root / "recipe.json"
    recipe.write_text(json.dumps({"latency_runs": 3}))
    out = root / "out"
    stdout = io.StringIO()
    with contextlib.redirect_stdout(stdout):
        rc = main(["calibrate", "--data", *paths["train"], "--eval", *paths["eval"], "--out", str(out),
                   "--recipe", str(recipe), "--json"])  # fmt: skip
    assert rc == 0
    return out, json.loads(stdout.getvalue())


def test_calibrate_writes_table_graphs_and_reports(calibrated) -> None:
    out, summary = calibrated
    for f in ("int8_ranges.json", "face_detector.int8.onnx", "face_landmark.int8.onnx", "report.json", "report.md"):
        assert (out / f).is_file(), f
    report = json.loads((out / "report.json").read_text())
    assert report["data"]["train"]["detector_inputs"] >= 8 and report["data"]["train"]["landmark_crops"] >= 8
    assert report["data"]["eval"]["frames"] == len(EVAL_VIEWS)
    assert {s["split"] for s in report["data"]["sources"]} == {"train", "eval"}
    for name in QUANTIZED:
        lat = report["latency_cpu"][name]
        assert lat["fp32"]["median_ms"] > 0 and lat["int8"]["median_ms"] > 0 and lat["int8_speedup"] > 0
    md = (out / "report.md").read_text()
    assert "What stayed in higher precision" in md and "Jetson Orin Nano" in md
    table = RangeTable.load(out / "int8_ranges.json")
    assert set(table.models) == set(QUANTIZED) and table.method == "percentile"
    assert summary["table"] == str(out / "int8_ranges.json")


def test_calibrated_graphs_are_tensorrt_style_qdq(calibrated) -> None:
    out, _ = calibrated
    table = RangeTable.load(out / "int8_ranges.json")
    for name in QUANTIZED:
        model = onnx.load(out / f"{name}.int8.onnx")
        onnx.checker.check_model(model)
        assert_tensorrt_qdq(model, set(table.model(name).float_nodes))


def test_calibrated_int8_meets_the_budget_on_held_out_views(calibrated) -> None:
    out, summary = calibrated
    report = json.loads((out / "report.json").read_text())
    assert report["landmark_error"]["crops"] >= len(EVAL_VIEWS)
    assert report["landmark_error"]["mean_pct_iod"] <= BUDGET["landmark_mean_pct_iod"]
    assert report["detection_agreement"]["agreement_pct"] >= BUDGET["detection_agreement_pct"]
    assert report["detection_agreement"]["both_no_face"] == 0  # the faces were found
    assert summary["within_budget"] is True


def test_calibrate_cli_errors(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["calibrate", "--data", str(tmp_path / "none.mp4"), "--out", str(tmp_path / "o")]) == 1
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "no such file" in err
    assert main(["calibrate", "--data", "x", "--out", "o", "--method", "kl"]) == 2


# -- the committed default table ------------------------------------------------------------------------


def test_default_table_covers_the_current_graphs(models) -> None:
    table = RangeTable.load(default_table_path())
    for name in QUANTIZED:
        entry = table.model(name)
        assert entry.source_sha256 == MODEL_SPECS[name].sha256
        plan = plan_quantization(literal(name), entry.float_nodes)
        assert set(plan.calibrated) <= set(entry.ranges), f"{name}: re-run facelink calibrate --update-default"


def test_default_int8_models_build_offline_deterministically(
    models, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from facelink.models import _fetch

    home = tmp_path / "home"
    (home / "models").mkdir(parents=True)
    for name in MODEL_SPECS:  # a pre-seeded cache: verified sources only, no network
        shutil.copy(models.tflite[name], home / "models")
    monkeypatch.setenv("FACELINK_HOME", str(home))

    def offline(dest: Path, progress: object) -> Path:
        raise OSError("[Errno 101] Network is unreachable")

    monkeypatch.setattr(_fetch, "_download_wheel", offline)
    table = RangeTable.load(default_table_path())
    for name in QUANTIZED:
        path = model_path(name, precision="int8")
        assert path.name == int8_filename(name, MODEL_SPECS[name].sha256, table.sha256)
        assert path == model_path(name, precision="int8")  # cached
        first = path.read_bytes()
        path.unlink()
        assert model_path(name, precision="int8").read_bytes() == first  # rebuilt bit-identically
        assert_tensorrt_qdq(onnx.load(path), set(table.model(name).float_nodes))
    with pytest.raises(ModelFetchError, match="no entry for iris_landmark"):
        model_path("iris_landmark", precision="int8")
    with pytest.raises(ValueError, match="unknown precision 'int4'"):
        model_path("face_landmark", precision="int4")


def test_default_int8_tracker_stays_within_budget(models, portrait) -> None:
    from facelink.face import create_models, create_tracker, inter_ocular

    fp32 = create_tracker("onnxruntime", precision="fp32")
    det8, lm8 = create_models("onnxruntime", precision="int8")
    from facelink.face import FaceTracker

    int8 = FaceTracker(det8, lm8)
    for i, v in enumerate(EVAL_VIEWS):
        frame = render(portrait, *v)
        fp32.reset()
        int8.reset()
        a, b = fp32.update(frame, 0.0), int8.update(frame, 0.0)
        assert a is not None and b is not None, f"view {i}: face lost"
        err = float(np.mean(np.linalg.norm(a.raw_landmarks[:, :2] - b.raw_landmarks[:, :2], axis=1)))
        # whole pipeline (detection ROI included): a little above the per-crop figure, well under 1 % IOD
        assert 100.0 * err / inter_ocular(a.raw_landmarks) < 2 * BUDGET["landmark_mean_pct_iod"], f"view {i}"


def test_encode_precision_flag(models, portrait, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from facelink.io import VideoWriter

    monkeypatch.delenv("FACELINK_PRECISION", raising=False)
    clip = tmp_path / "clip.mp4"
    with VideoWriter(str(clip), 640, 480, fps=10) as w:
        for i in range(4):
            w.write(render(portrait, 5 * i, 0, i, 1.0, 1.0), i / 10)
    stdout = io.StringIO()
    with contextlib.redirect_stdout(stdout):
        rc = main(
            [
                "encode",
                str(clip),
                "-o",
                str(tmp_path / "s.flk"),
                "--backend",
                "onnxruntime",
                "--precision",
                "int8",
                "--json",
            ]
        )
    assert rc == 0
    out = json.loads(stdout.getvalue())
    assert out["precision"] == "int8" and out["face_frames"] == 4
    assert "FACELINK_PRECISION" not in __import__("os").environ  # restored after the call
    assert main(["encode", str(clip), "-o", str(tmp_path / "t.flk"), "--precision", "int4"]) == 2
