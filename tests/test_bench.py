"""``facelink.bench``: metrics against known values, BD-rate, peer codecs, the whole bench on synthetic clips.

No real data and no GPU: the clips are procedurally generated moving textures and the
public-domain portrait (``portrait`` fixture) animated across a wider frame.  Tests that need
the face models skip (saying why) when they are unavailable; the peers-only path runs without.
"""

from __future__ import annotations

import importlib.util
import json
import math
from fractions import Fraction
from pathlib import Path

import numpy as np
import pytest
from facelink.bench import (
    MAX_MKR,
    PEERS,
    CodecBenchConfig,
    PeerSetting,
    available_peers,
    bd_rate,
    compare_runs,
    efficient_front,
    encode_decode,
    facelink_points,
    landmark_error,
    metric_value,
    ms_ssim,
    ms_ssim_scales,
    pchip,
    peer_settings,
    psnr,
    rate_at_quality,
    resolve_clips,
    run_codec_bench,
    ssim,
)
from facelink.bench._metrics import MS_SSIM_WEIGHTS, gaussian_window
from facelink.cli import main
from facelink.io import VideoWriter
from PIL import Image

ROOT = Path(__file__).resolve().parents[1]
HAVE_MPL = importlib.util.find_spec("matplotlib") is not None


# ---------------------------------------------------------------------------------------
# synthetic clips


def _write(path: Path, frames: list[np.ndarray], fps: float = 25) -> Path:
    h, w = frames[0].shape[:2]
    with VideoWriter(str(path), w, h, fps, crf=12) as vw:
        for i, f in enumerate(frames):
            vw.write(f, i / fps)
    return path


def _texture(n: int, w: int, h: int, seed: int = 0) -> list[np.ndarray]:
    """A drifting multi-frequency texture with a moving bright disc (no face)."""
    rng = np.random.default_rng(seed)
    base = rng.integers(0, 256, (h // 4 + 8, w // 4 + 8, 3)).astype(np.float32)
    base = np.asarray(Image.fromarray(base.astype(np.uint8)).resize((w + 32, h + 32), Image.Resampling.BICUBIC), np.float32)
    yy, xx = np.mgrid[0:h, 0:w]
    out = []
    for i in range(n):
        f = base[i : i + h, 2 * i : 2 * i + w].copy()
        f += 40 * np.sin((xx + 3 * i) / 6.0)[..., None]
        disc = (xx - (w / 3 + 2 * i)) ** 2 + (yy - h / 2) ** 2 < (h / 6) ** 2
        f[disc] = 230
        out.append(np.clip(f, 0, 255).astype(np.uint8))
    return out


@pytest.fixture(scope="module")
def texture_clip(tmp_path_factory) -> Path:
    return _write(tmp_path_factory.mktemp("tex") / "texture.mp4", _texture(12, 96, 64))


@pytest.fixture(scope="module")
def face_clip(tmp_path_factory, portrait) -> Path:
    """The portrait's face (160 px) sliding right and nodding inside a 240x160 frame."""
    face = np.asarray(Image.fromarray(portrait[10:330, 60:380]).resize((160, 160), Image.Resampling.LANCZOS))
    frames = []
    for i in range(10):
        canvas = np.full((160, 240, 3), 40, np.uint8)
        s = 160 - 2 * (i % 3)  # a little zoom: the face "breathes"
        f = np.asarray(Image.fromarray(face).resize((s, s), Image.Resampling.BILINEAR))
        x = 50 + 3 * i
        canvas[(160 - s) // 2 : (160 - s) // 2 + s, x : x + s] = f
        frames.append(canvas)
    return _write(tmp_path_factory.mktemp("face") / "face.mp4", frames)


# ---------------------------------------------------------------------------------------
# metrics


def _pattern(h: int = 72, w: int = 96) -> tuple[np.ndarray, np.ndarray]:
    y, x = np.mgrid[0:h, 0:w].astype(np.float64)
    a = np.round(127.5 + 60 * np.sin(x / 5.0) + 50 * np.cos(y / 7.0 + x / 11.0)).astype(np.uint8)
    b = np.round(127.5 + 60 * np.sin((x - 1.5) / 5.0) + 45 * np.cos(y / 7.0 + x / 11.0) + 10 * np.sin(x * y / 50.0)).astype(np.uint8)
    return a, b


def test_identical_frames_are_perfect():
    a = _texture(1, 200, 192)[0]
    assert psnr(a, a) == math.inf
    assert ssim(a, a) == pytest.approx(1.0, abs=1e-12)
    assert ms_ssim(a, a) == pytest.approx(1.0, abs=1e-12)


@pytest.mark.parametrize("sigma", [2.0, 5.0, 10.0])
def test_psnr_of_gaussian_noise(sigma):
    rng = np.random.default_rng(7)
    a = np.full((256, 256, 3), 128.0)
    b = a + rng.normal(0.0, sigma, a.shape)
    assert psnr(a, b) == pytest.approx(20 * math.log10(255 / sigma), abs=0.05)


def test_ssim_matches_reference_implementation():
    # golden values from scikit-image 0.25 structural_similarity(gaussian_weights=True,
    # sigma=1.5, use_sample_covariance=False, data_range=255), i.e. Wang et al.'s ssim_index.m
    a, b = _pattern()
    assert ssim(a, b) == pytest.approx(0.8383344315968373, abs=1e-9)
    rgb_a = np.stack([a, b, 255 - a], -1)
    rgb_b = np.stack([b, a, 255 - b], -1)
    assert ssim(rgb_a, rgb_b) == pytest.approx(0.9590021526920341, abs=1e-9)  # on BT.601 luma


def test_ssim_of_constant_images_is_the_luminance_term():
    c1 = (0.01 * 255) ** 2
    a = np.full((200, 200), 100.0)
    b = np.full((200, 200), 120.0)
    lum = (2 * 100 * 120 + c1) / (100**2 + 120**2 + c1)
    assert ssim(a, b) == pytest.approx(lum, rel=1e-12)
    # MS-SSIM: contrast-structure is 1 at every scale, luminance enters at the coarsest only
    assert ms_ssim(a, b) == pytest.approx(lum ** MS_SSIM_WEIGHTS[-1], rel=1e-12)


def _naive_ms_ssim(x: np.ndarray, y: np.ndarray) -> float:
    """Direct 2-D-window MS-SSIM (Wang et al. 2003) for cross-checking the separable version."""
    g = gaussian_window()
    w2 = np.outer(g, g)
    c1, c2 = (0.01 * 255) ** 2, (0.03 * 255) ** 2
    x, y = x.astype(np.float64), y.astype(np.float64)
    val = 1.0
    for j, wt in enumerate(MS_SSIM_WEIGHTS):
        win = lambda z: np.einsum("ijkl,kl->ij", np.lib.stride_tricks.sliding_window_view(z, (11, 11)), w2)
        mx, my = win(x), win(y)
        vx, vy, cxy = win(x * x) - mx**2, win(y * y) - my**2, win(x * y) - mx * my
        cs = (2 * cxy + c2) / (vx + vy + c2)
        if j == len(MS_SSIM_WEIGHTS) - 1:
            val *= np.mean((2 * mx * my + c1) / (mx**2 + my**2 + c1) * cs) ** wt
        else:
            val *= np.mean(cs) ** wt
            x = (x[0::2, 0::2] + x[1::2, 0::2] + x[0::2, 1::2] + x[1::2, 1::2]) / 4
            y = (y[0::2, 0::2] + y[1::2, 0::2] + y[0::2, 1::2] + y[1::2, 1::2]) / 4
    return float(val)


def test_ms_ssim_matches_a_direct_implementation():
    a, b = _pattern(192, 176)
    assert ms_ssim(a, b) == pytest.approx(_naive_ms_ssim(a, b), abs=1e-10)
    assert ms_ssim(a, b) > ssim(a, b)  # the coarse scales forgive a 1.5 px shift


def test_ms_ssim_scales_and_small_images():
    assert ms_ssim_scales(256, 256) == 5
    assert ms_ssim_scales(176, 300) == 5
    assert ms_ssim_scales(175, 175) == 4
    assert ms_ssim_scales(64, 64) == 3
    a, b = _pattern(64, 64)
    assert 0 < ms_ssim(a, b) <= 1
    with pytest.raises(ValueError, match="at least 11x11"):
        ssim(np.zeros((8, 8)), np.zeros((8, 8)))
    with pytest.raises(ValueError, match="differ in shape"):
        psnr(np.zeros((8, 8)), np.zeros((8, 9)))


def test_quality_falls_with_noise():
    a = _texture(1, 128, 128)[0].astype(np.float64)
    rng = np.random.default_rng(3)
    vals = [(psnr(a, a + rng.normal(0, s, a.shape)), ssim(a, a + rng.normal(0, s, a.shape))) for s in (2, 8, 32)]
    assert vals[0][0] > vals[1][0] > vals[2][0]
    assert vals[0][1] > vals[1][1] > vals[2][1]


def test_landmark_error_normalised_by_inter_ocular_distance():
    t = np.random.default_rng(0).uniform(0, 100, (468, 3))
    d = t + np.array([3.0, 4.0, 9.0])  # depth is ignored
    assert landmark_error(d, t, 50.0) == pytest.approx(0.1)
    with pytest.raises(ValueError):
        landmark_error(d, t, 0.0)


# ---------------------------------------------------------------------------------------
# rate-quality


RATES = [10.0, 20.0, 50.0, 100.0, 200.0]
PSNRS = [28.0, 31.0, 34.5, 37.0, 39.0]


def test_bd_rate_of_a_curve_against_itself_is_zero():
    r = bd_rate(RATES, PSNRS, RATES, PSNRS)
    assert r.value == pytest.approx(0.0, abs=1e-12)
    assert r.overlap == (28.0, 39.0)


def test_bd_rate_against_twice_the_rate_is_minus_half():
    doubled = [2 * v for v in RATES]
    assert bd_rate(doubled, PSNRS, RATES, PSNRS).value == pytest.approx(-0.5, abs=1e-9)
    assert bd_rate(RATES, PSNRS, doubled, PSNRS).value == pytest.approx(1.0, abs=1e-9)


def test_bd_rate_partial_and_missing_overlap():
    # a test curve covering only part of the anchor's quality range is compared on that part;
    # at half the anchor's rates it is -50 % up to the end slopes of a 3-point PCHIP
    part = bd_rate(RATES, PSNRS, [10.0, 25.0, 50.0], [31.0, 34.5, 37.0])
    assert part.overlap == (31.0, 37.0) and part.value == pytest.approx(-0.5, abs=0.01)
    none = bd_rate(RATES, PSNRS, [1.0, 2.0], [20.0, 25.0])
    assert none.value is None and "no quality overlap" in none.note
    single = bd_rate(RATES, PSNRS, [3.0], [30.0])
    assert single.value is None and "fewer than two points" in single.note


def test_efficient_front_drops_dominated_points():
    r, q = efficient_front([10, 20, 15, 30, 40], [30, 29, 31, 31, 35])
    assert r.tolist() == [10, 15, 40] and q.tolist() == [30, 31, 35]


def test_pchip_is_monotone_and_exact_on_lines():
    x = [0.0, 1.0, 2.0, 3.0]
    assert pchip(x, [1.0, 3.0, 5.0, 7.0], np.array([0.5, 2.25])).tolist() == pytest.approx([2.0, 5.5])
    t = np.linspace(0, 3, 301)
    y = pchip(x, [0.0, 0.0, 1.0, 1.0], t)  # a step: no overshoot either side
    assert y.min() >= 0.0 and y.max() <= 1.0 and np.all(np.diff(y) >= -1e-12)


def test_rate_at_quality_bounds():
    assert rate_at_quality(RATES, PSNRS, 31.0).kbps == pytest.approx(20.0)
    mid = rate_at_quality(RATES, PSNRS, 33.0)
    assert mid.bound == "exact" and 20.0 < mid.kbps < 50.0
    low = rate_at_quality(RATES, PSNRS, 20.0)
    assert low.bound == "floor" and low.kbps == 10.0
    high = rate_at_quality(RATES, PSNRS, 45.0)
    assert high.bound == "ceiling" and high.kbps == 200.0


def _run(codec, setting, kbps, psnr_db, akd):
    return {
        "codec": codec,
        "setting": setting,
        "kbps": kbps,
        "target_kbps": None,
        "reference_bytes": 0,
        "quality": {"psnr": psnr_db, "akd": akd},
    }


def test_compare_runs_savings_and_bounds():
    runs = [_run("x264", f"{r:g}", r, q, 10.0 / r) for r, q in zip(RATES, PSNRS)]
    runs += [_run("facelink", "low", 2.0, 25.0, 0.5), _run("facelink", "high", 4.0, 34.5, 0.3)]
    cmp = compare_runs(runs)["x264"]
    assert cmp["floor_kbps"] == 10.0
    psnr_s = cmp["metrics"]["psnr"]["savings"]
    assert psnr_s["low"] == {"facelink_kbps": 2.0, "peer_kbps": 10.0, "ratio": 5.0, "bound": "floor"}
    assert psnr_s["high"]["bound"] == "exact" and psnr_s["high"]["ratio"] == pytest.approx(50.0 / 4.0, rel=1e-3)
    # AKD is a distortion (lower is better): FaceLink's 0.5 equals the peer's AKD at 20 kbps
    akd_s = cmp["metrics"]["akd"]["savings"]
    assert akd_s["low"]["bound"] == "exact" and akd_s["low"]["peer_kbps"] == pytest.approx(20.0, rel=1e-6)
    assert cmp["metrics"]["psnr"]["bd_rate"] is not None


# ---------------------------------------------------------------------------------------
# peer codecs


def test_peers_encode_decode_and_count_every_byte():
    frames = _texture(12, 80, 64)
    peers = available_peers()
    assert peers, "this PyAV build has none of libx264/libx265/libsvtav1"
    for peer in peers:
        settings = peer_settings(peer, (20, 200))
        assert settings[-1].target_kbps is None and "floor" in settings[-1].label
        runs = [encode_decode(frames, Fraction(25), peer, s) for s in settings]
        for r in runs:
            assert len(r.frames) == len(frames) and r.frames[0].shape == frames[0].shape
            assert r.bytes >= sum(r.packet_bytes) > 0 and r.key_frames >= 1
        _, high, floor = runs
        assert sum(high.packet_bytes) > sum(floor.packet_bytes)
        assert np.mean([psnr(a, b) for a, b in zip(frames, high.frames)]) > np.mean([psnr(a, b) for a, b in zip(frames, floor.frames)])


def test_peer_rejects_odd_sizes_and_unknown_names():
    with pytest.raises(ValueError, match="even frame sizes"):
        encode_decode([np.zeros((9, 8, 3), np.uint8)], Fraction(25), PEERS["x264"], PeerSetting("x", 10))
    with pytest.raises(ValueError, match="unknown peer codec"):
        available_peers(["vp7"])


def test_config_validation():
    with pytest.raises(ValueError, match="even"):
        CodecBenchConfig(size=66 + 1)
    with pytest.raises(ValueError, match=">= 64"):
        CodecBenchConfig(size=48)
    with pytest.raises(ValueError, match="frames"):
        CodecBenchConfig(frames=2)
    assert [n for n, _ in facelink_points(fast=True)] == ["low", "high"]
    assert len(facelink_points()) == 5


# ---------------------------------------------------------------------------------------
# the whole bench


def test_peers_only_bench_without_models(texture_clip, tmp_path):
    peers = tuple(available_peers(["x264", "svtav1"]))
    config = CodecBenchConfig(size=64, frames=8, facelink=tuple(facelink_points(fast=True)), peers=peers, peer_kbps=(50,))
    rep = run_codec_bench(resolve_clips([str(texture_clip)]), tmp_path, config, plots=False, models=None)
    assert rep["complete"] and len(rep["clips"]) == 1
    clip = rep["clips"][0]
    assert clip["facelink_skipped"] == "face models unavailable"
    assert clip["coded_frames"] == 7 and clip["crop"]["side"] == 64  # wide 96x64: centre square
    assert {r["codec"] for r in clip["runs"]} == {p.name for p in peers}
    for r in clip["runs"]:
        assert r["kbps"] == pytest.approx(8 * r["bytes"] / clip["duration_s"] / 1000, rel=1e-3)
        assert 0 < r["quality"]["ssim"] <= 1 and r["quality"]["akd"] is None
    assert rep["overall"]["clips"] == 0 and clip["comparison"] == {}
    on_disk = json.loads((tmp_path / "report.json").read_text())
    assert on_disk["clips"][0]["runs"] == clip["runs"]
    assert "# FaceLink codec benchmark" in (tmp_path / "report.md").read_text()


def test_cli_bench_codec_fast_on_a_face(face_models, face_clip, texture_clip, tmp_path, capsys):
    out = tmp_path / "out"
    args = ["bench", "codec", "--clips", str(face_clip), str(texture_clip), "--out", str(out), "--fast", "--json", "--peer-kbps", "30"]
    if not HAVE_MPL:
        args.append("--no-plots")
    assert main(args) == 0
    summary = json.loads(capsys.readouterr().out)
    assert summary["clips"] == 2 and summary["facelink_clips"] == 1
    rep = json.loads((out / "report.json").read_text())
    face, tex = rep["clips"]
    assert face["crop"]["side"] == 160 and face["crop"]["x"] > 0, "the square follows the face to the right"
    assert "no face in the first frame" in " ".join(tex["notes"]) and tex["facelink_skipped"]
    fl = [r for r in face["runs"] if r["codec"] == "facelink"]
    assert [r["setting"] for r in fl] == ["low", "high"]
    for r in fl:
        assert r["reference_bytes"] > 1000 and r["bytes"] < r["reference_bytes"], "the reference is not in the rate"
        assert r["kbps"] == pytest.approx(8 * r["bytes"] / face["duration_s"] / 1000, rel=1e-3)
        assert r["quality"]["akd"] is not None and r["quality"]["mkr"] is not None
        assert 10 < r["quality"]["psnr"] < 60
    assert fl[0]["bytes"] < fl[1]["bytes"], "the finer preset costs more"
    for peer in summary["comparison"].values():
        assert set(peer["metrics"]) >= {"psnr", "ssim", "ms_ssim"}
        for m in peer["metrics"].values():
            assert (m["bd_rate"] is None) == bool(m["note"])
            assert set(m["savings"]) <= {"low", "high"}
    sheet = Image.open(out / "contact" / f"{face['name']}.png")
    assert sheet.size[0] > 4 * 128 and sheet.size[1] > 128
    # the contact sheet has rows at the widest mouth and the largest turn, and two re-posed
    # (--pose -30,0,0 and 30,0,0) views of the headline FaceLink run
    labels = list(face["sampled_frames"].values())
    assert any(s.startswith("widest mouth") for s in labels) and any("largest turn" in s for s in labels)
    assert face["free_view_frame"] is not None
    n_rows = len(face["sampled_frames"]) + 2
    tile = (sheet.size[0] - 4) // 4 - 4
    assert sheet.size[1] >= 20 + n_rows * (tile + 16 + 4)
    assert "mouth_ssim" in fl[0]["quality"]
    assert (out / "contact" / "overall.png").is_file()
    md = (out / "report.md").read_text()
    assert "## Bandwidth saving at equal quality" in md and "## BD-rate" in md and face["name"] in md
    if HAVE_MPL:
        assert (out / "plots" / "rd_overall.png").stat().st_size > 10_000


@pytest.mark.skipif(not HAVE_MPL, reason="matplotlib (the bench extra) is not installed")
def test_rd_plot_from_a_report(tmp_path):
    from facelink.bench._plots import rd_figure

    runs = [_run("x264", f"{r:g}", r, q, 10.0 / r) for r, q in zip(RATES, PSNRS)] + [_run("facelink", "medium", 3.0, 27.0, 1.0)]
    rd_figure(runs, tmp_path / "rd.png", "test")
    img = Image.open(tmp_path / "rd.png")
    assert img.size[0] > 500 and np.asarray(img).std() > 10


def test_unreliable_akd_is_left_out_of_the_analysis():
    ok = {"codec": "x264", "setting": "a", "kbps": 10.0, "quality": {"akd": 2.0, "mkr": 0.1}}
    lost = {"codec": "x264", "setting": "b", "kbps": 5.0, "quality": {"akd": 60.0, "mkr": 0.9}}
    assert metric_value(ok, "akd") == 2.0 and metric_value(lost, "akd") is None
    assert metric_value({"quality": {"akd": 1.0, "mkr": MAX_MKR}}, "akd") == 1.0


def test_cli_bench_report_rerenders(texture_clip, tmp_path, capsys):
    config = CodecBenchConfig(size=64, frames=6, peers=tuple(available_peers(["x264"])), peer_kbps=(40,))
    run_codec_bench(resolve_clips([str(texture_clip)]), tmp_path, config, plots=False, models=None)
    (tmp_path / "report.md").unlink()
    assert main(["bench", "report", str(tmp_path), "--no-plots", "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["clips"] == 1
    assert "x264" in (tmp_path / "report.md").read_text()
    (tmp_path / "report.json").write_text("{}")
    assert main(["bench", "report", str(tmp_path), "--no-plots"]) == 1
    assert "not a facelink bench codec report" in capsys.readouterr().err


def test_cli_bench_errors(tmp_path, capsys, monkeypatch):
    assert main(["bench", "codec", "--clips", str(tmp_path / "nope.mp4"), "--out", str(tmp_path / "o"), "--no-plots"]) == 1
    err = capsys.readouterr().err.strip()
    assert err.endswith("no such file") and "\n" not in err
    assert main(["bench", "codec", "--clips", "x.mp4", "--out", str(tmp_path), "--size", "129"]) == 2
    assert "even number" in capsys.readouterr().err
    assert main(["bench", "codec", "--clips", "x.mp4", "--out", str(tmp_path), "--peers", "vp7"]) == 2
    assert "unknown peer codec" in capsys.readouterr().err
    assert main(["bench", "codec", "--clips", "x.mp4", "--out", str(tmp_path), "--peer-kbps", "ten"]) == 2
    capsys.readouterr()
    (tmp_path / "file").write_text("")
    assert main(["bench", "codec", "--clips", str(tmp_path / "file"), "--out", str(tmp_path / "file"), "--no-plots"]) == 1
    assert "not a directory" in capsys.readouterr().err
    import facelink.bench

    monkeypatch.setattr(facelink.bench, "default_clips", lambda split="eval", per_person=1: [])
    assert main(["bench", "codec", "--out", str(tmp_path / "o2")]) == 2
    assert "development data" in capsys.readouterr().err
    assert main(["bench", "speed", "--out", str(tmp_path / "o3")]) == 2
    assert main(["bench", "speed", "--out", str(tmp_path / "o3"), "--frames", "2"]) == 2


def test_cli_bench_speed(face_models, face_clip, tmp_path, capsys):
    pytest.importorskip("facelink.generator")
    assert main(["bench", "speed", "--clips", str(face_clip), "--out", str(tmp_path), "--frames", "8", "--json"]) == 0
    res = json.loads(capsys.readouterr().out)
    stages = {r["stage"].split(" (")[0]: r for r in res["encoder"]}
    for name in ("detect", "track", "landmarks FP32", "fit", "sender total"):
        assert stages[name]["ms"] > 0
    int8 = next(r for r in res["encoder"] if r["stage"].startswith("landmarks INT8"))
    assert int8.get("ms") is not None or int8["note"]
    assert [g["size"] for g in res["generator"]] == [256, 512] and all(g["ms"] > 0 for g in res["generator"])
    paths = [r["path"] for r in res["latency"]]
    assert any(p.startswith("packet → frame") for p in paths) and any("ZeroMQ" in p for p in paths)
    assert res["peak_rss_mb"] > 50
    assert json.loads((tmp_path / "speed.json").read_text())["encoder"] == res["encoder"]
    assert "## Encoder" in (tmp_path / "speed.md").read_text()


def test_results_script_keeps_other_sections(face_models, face_clip, tmp_path):
    import runpy

    bench = tmp_path / "codec"
    assert (
        main(
            [
                "bench",
                "codec",
                "--clips",
                str(face_clip),
                "--out",
                str(bench),
                "--fast",
                "--no-plots",
                "--peers",
                "x264",
                "--peer-kbps",
                "30",
            ]
        )
        == 0
    )
    doc = tmp_path / "results.md"
    doc.write_text("# Results\n\n## Someone else's section\n\nkept as is\n")
    mod = runpy.run_path(str(ROOT / "benchmarks" / "results.py"))
    assert mod["main"](["--codec", str(bench), "--out", str(doc)]) == 0
    text = doc.read_text()
    assert "## Someone else's section\n\nkept as is" in text
    assert "## Codec comparison: figures" in text and "facelink bench codec" in text
    first = text
    assert mod["main"](["--codec", str(bench), "--out", str(doc)]) == 0
    assert doc.read_text() == first, "regenerating is idempotent"


# ------------------------------------------------------------------ viewer cues (bench/_cues.py)


def _cues(open_: list[float], gaze_x: list[float] | None = None):
    from facelink.bench._cues import CUES, Cues

    n = len(open_)
    v = np.zeros((n, len(CUES)))
    v[:, CUES.index("eye_open")] = open_
    v[:, CUES.index("mouth")] = np.linspace(0.0, 0.3, n)
    v[:, CUES.index("brow")] = 0.15
    v[:, CUES.index("gaze_x")] = gaze_x if gaze_x is not None else np.zeros(n)
    v[:, CUES.index("gaze_y")] = 0.01 * np.sin(np.arange(n))
    return Cues(v)


def test_cue_comparison_counts_the_closures_the_output_shows():
    from facelink.bench._cues import compare_cues

    truth = [0.25] * 10 + [0.08, 0.07] + [0.25] * 10 + [0.09] + [0.25] * 10  # two blinks
    shows_one = [0.25] * 10 + [0.25, 0.06] + [0.25] * 10 + [0.25] + [0.25] * 10  # the first, a frame late
    out = compare_cues(_cues(truth), _cues(shows_one))
    assert out["closures"] == 2 and out["closures_shown"] == 1 and out["closure_recall"] == 0.5
    assert out["r_mouth"] == pytest.approx(1.0) and out["err_mouth"] == pytest.approx(0.0)
    assert out["r_brow"] is None  # a constant cue has no correlation
    same = compare_cues(_cues(truth), _cues(truth))
    assert same["closure_recall"] == 1.0 and same["r_eye_open"] == pytest.approx(1.0)
    none = compare_cues(_cues([0.25] * 20), _cues([0.25] * 20))
    assert none["closures"] == 0 and none["closure_recall"] is None


def test_cues_with_missing_faces_and_mismatched_lengths():
    from facelink.bench._cues import compare_cues

    a = _cues([0.25, float("nan"), 0.2, 0.22, 0.24])
    assert compare_cues(a, a)["r_eye_open"] == pytest.approx(1.0)
    with pytest.raises(ValueError, match="same frames"):
        compare_cues(a, _cues([0.25] * 4))


def test_eye_moments_pick_blink_glance_and_widest_eyes():
    from facelink.bench._cues import eye_moments

    open_ = [0.22] * 30
    open_[7] = 0.05  # a blink
    open_[20] = 0.3  # wide eyes
    gaze = [0.0] * 30
    gaze[7] = 0.4  # noise under the shut lid: not a glance
    gaze[12] = 0.15  # a glance
    m = eye_moments(_cues(open_, gaze))
    assert m[7] == "deepest blink" and m[12] == "largest glance" and m[20] == "widest eyes"
