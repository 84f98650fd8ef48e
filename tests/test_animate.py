"""Audio-driven animation: speech features, the motion that speech does not determine, windows."""

from __future__ import annotations

import numpy as np
import pytest

from facelink.animate._features import HOP_S, MEL_BINS, SAMPLE_RATE, _filters, log_mel
from facelink.animate._model import AHEAD, K, PAST, mouth_gap, normalise_mel, target_coeffs, windows
from facelink.animate._motion import BLINK_MIN_S, IdleMotion


def _tone(freq: float, seconds: float = 1.0, amp: float = 0.5) -> np.ndarray:
    t = np.arange(int(seconds * SAMPLE_RATE)) / SAMPLE_RATE
    return (amp * np.sin(2 * np.pi * freq * t)).astype(np.float32)


def test_log_mel_shape_and_frame_timing():
    pcm = _tone(440.0, 1.0)
    mel = log_mel(pcm)
    assert mel.shape == (len(pcm) // 160 + 1, MEL_BINS) and mel.dtype == np.float32
    # a click at 0.5 s shows in the frame centred on it
    click = np.zeros(SAMPLE_RATE, np.float32)
    click[8000:8040] = 0.9
    e = log_mel(click).sum(axis=1)
    assert abs(int(np.argmax(e)) * HOP_S - 0.5025) < 0.015


def test_log_mel_puts_a_tone_in_the_right_band():
    centres = (_filters() * np.fft.rfftfreq(512, 1 / SAMPLE_RATE)[None, :]).sum(axis=1)
    for f in (300.0, 1000.0, 3000.0):
        band = int(np.argmax(log_mel(_tone(f))[20:-20].mean(axis=0)))
        assert abs(centres[band] - f) < 0.12 * f, (f, centres[band])
    assert log_mel(_tone(1000.0, amp=0.5)).max() > log_mel(_tone(1000.0, amp=0.05)).max() + 4  # 20 dB


def test_log_mel_refuses_nan():
    with pytest.raises(ValueError, match="NaN"):
        log_mel(np.array([0.0, np.nan], np.float32))


def test_windows_centre_on_each_frame_time_and_pad_at_the_edges():
    mel = np.arange(300, dtype=np.float32)[:, None] * np.ones((1, MEL_BINS), np.float32)
    w = windows(mel, np.array([0.0, 1.0, 2.99]))
    assert w.shape == (3, PAST + AHEAD, MEL_BINS)
    assert w[1, PAST, 0] == 100 and w[1, 0, 0] == 100 - PAST and w[1, -1, 0] == 100 + AHEAD - 1
    assert w[0, 0, 0] == 0 and w[2, -1, 0] == 299  # clamped, not wrapped
    assert AHEAD * HOP_S <= 0.2  # the look-ahead a live caller must wait for


def test_normalisation_removes_loudness():
    mel = log_mel(_tone(500.0, amp=0.4))
    assert np.allclose(normalise_mel(mel), normalise_mel(mel + 3.0), atol=1e-5)


def test_targets_are_relative_to_the_clips_usual_face():
    from facelink.keypoints import default_basis

    b = default_basis()
    c = np.zeros((10, 24))
    c[:, 0] = 0.3
    c[4, 0] = 0.3 + 2 * b.std[0]
    ok = np.ones(10, bool)
    t = target_coeffs(c, ok)
    assert t.shape == (10, K) and np.allclose(t[[0, 9], 0], 0) and np.isclose(t[4, 0], 2.0)
    # the first mode opens the mouth: the lip gap moves with it
    gap = mouth_gap(t)
    assert abs(gap[4] - gap[0]) > 1e-3 and np.isclose(gap[0], gap[9])


def _run(seconds: float, fps: float = 30.0, **kw):
    m = IdleMotion(fps, **kw)
    frames = [m.step(0.3) for _ in range(int(seconds * fps))]
    rot = np.array([f.rotation for f in frames])
    lids = np.array([f.openness[0] for f in frames])
    return rot, lids, frames


def test_idle_motion_is_seeded_and_does_not_loop():
    a, _, _ = _run(20, seed=1)
    b, _, _ = _run(20, seed=1)
    c, _, _ = _run(20, seed=2)
    assert np.array_equal(a, b) and not np.allclose(a, c)
    rot, _, _ = _run(600, seed=3)  # ten minutes
    yaw = rot[:, 0] - rot[:, 0].mean()
    ac = np.correlate(yaw[: 9000], yaw[: 9000], "full")[9000 - 1 :] / (yaw[:9000] @ yaw[:9000])
    assert ac[300:].max() < 0.7  # no lag beyond 10 s repeats the motion


def test_idle_motion_blinks_at_a_natural_rate_and_closes_fully():
    _, lids, _ = _run(600, seed=4)
    starts = np.flatnonzero((lids[1:] < 1.0) & (lids[:-1] >= 1.0))
    per_minute = len(starts) / 10
    assert 10 <= per_minute <= 25, per_minute
    assert lids.min() == 0.0 and np.diff(starts).min() >= BLINK_MIN_S * 30 - 1
    # a blink lasts a handful of frames, not seconds
    shut = lids < 0.5
    runs = np.diff(np.flatnonzero(np.diff(np.r_[0, shut.astype(int), 0])))[::2]
    assert runs.max() <= 6


def test_motion_styles_scale_the_movement():
    calm, _, _ = _run(120, seed=5, style="calm")
    lively, _, _ = _run(120, seed=5, style="lively")
    assert np.degrees(lively.std(axis=0)).sum() > 2 * np.degrees(calm.std(axis=0)).sum()
    assert 0.5 < np.degrees(calm.std(axis=0)).max() < 5 and np.degrees(lively.std(axis=0)).max() < 12


def test_idle_motion_rejects_bad_arguments():
    with pytest.raises(ValueError, match="motion style"):
        IdleMotion(30, style="wild")
    with pytest.raises(ValueError, match="fps"):
        IdleMotion(0)


@pytest.mark.skipif(not __import__("facelink.animate._model", fromlist=["model_path"]).model_path().is_file(), reason="model not shipped")
def test_predictions_do_not_depend_on_the_batch_size():
    """The backend reuses its output buffers: every batch's result must be kept, not aliased."""
    from facelink.animate._model import AudioToExpression

    m = AudioToExpression(backend="onnxruntime")
    mel = log_mel(_tone(220.0, 3.0) * (np.arange(3 * SAMPLE_RATE) % 8000 < 4000))
    times = np.arange(90) / 30
    a, b = m.predict(mel, times, batch=7), m.predict(mel, times, batch=512)
    assert a.shape == (90, K) and np.allclose(a, b, atol=1e-5) and a.std(axis=0).max() > 0


def _voice(seconds: float, seed: int) -> np.ndarray:
    rng = np.random.default_rng(seed)
    t = np.arange(int(seconds * SAMPLE_RATE)) / SAMPLE_RATE
    syll = (np.sin(2 * np.pi * rng.uniform(2.5, 4.5) * t + rng.uniform(0, 6)) > 0).astype(np.float32)
    return (0.3 * np.sin(2 * np.pi * 140 * t) * syll + 0.01 * rng.standard_normal(t.size)).astype(np.float32)


@pytest.mark.skipif(not __import__("facelink.animate._model", fromlist=["model_path"]).model_path().is_file(), reason="model not shipped")
def test_streaming_is_causal_on_time_and_agrees_with_the_whole_recording():
    from facelink.animate._model import AudioToExpression, StreamingAudioToExpression

    fps = 25.0
    speech = _voice(12.0, 1)
    s = StreamingAudioToExpression(fps, backend="onnxruntime", norm_seconds=60.0)
    assert s.latency_s <= 0.2
    rows, rng, pos = [], np.random.default_rng(0), 0
    while pos < speech.size:  # chunks of 5..70 ms, as a microphone delivers them
        n = int(rng.integers(80, 1120))
        for f, c in s.push(speech[pos : pos + n]):
            heard = (pos + n) / SAMPLE_RATE
            assert f / fps + s.latency_s - 0.006 <= heard <= f / fps + s.latency_s + 0.08  # out as soon as it is due
            rows.append(c)
        pos += n
    got = np.array(rows)
    assert abs(len(got) - (12.0 - s.latency_s) * fps) <= 2
    whole = AudioToExpression(backend="onnxruntime").predict(log_mel(speech), np.arange(len(got)) / fps)
    r = np.corrcoef(mouth_gap(got)[50:], mouth_gap(whole)[50:])[0, 1]
    assert r > 0.95, r  # the same network on the same features; only the running medians differ
    # causal: a different future leaves every row already out unchanged
    s1 = StreamingAudioToExpression(fps, backend="onnxruntime")
    s2 = StreamingAudioToExpression(fps, backend="onnxruntime")
    head = s1.push(speech[:80000])
    assert [f for f, _ in s2.push(speech[:80000])] == [f for f, _ in head] and len(head) > 100
    tail1 = s1.push(_voice(2.0, 5))
    tail2 = s2.push(np.zeros(32000, np.float32))
    assert tail1 and tail2 and tail1[0][0] == tail2[0][0] == head[-1][0] + 1  # the new rows depend on the new audio only
    assert not np.array_equal(tail1[-1][1], tail2[-1][1])


def test_streaming_refuses_bad_input():
    from facelink.animate._model import StreamingAudioToExpression, model_path

    if not model_path().is_file():
        pytest.skip("model not shipped")
    with pytest.raises(ValueError, match="fps"):
        StreamingAudioToExpression(0)
    with pytest.raises(ValueError, match="NaN"):
        StreamingAudioToExpression(25).push(np.array([np.nan], np.float32))
