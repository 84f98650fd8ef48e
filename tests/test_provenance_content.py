"""Content fingerprints (the pure core): grids, segments, the signed encoding, and matching."""

from __future__ import annotations

import numpy as np
import pytest
from facelink.provenance import ContentFingerprint, ContentLog, frame_grid, match_content
from facelink.provenance import _content as content


def _scene(n: int, seed: int, h: int = 96, w: int = 128) -> list[np.ndarray]:
    """A textured background with a bright blob moving on it: content that changes every frame."""
    rng = np.random.default_rng(seed)
    bg = rng.integers(30, 200, (h // 8, w // 8, 3)).repeat(8, 0).repeat(8, 1).astype(np.float64)
    yy, xx = np.mgrid[0:h, 0:w]
    out = []
    for i in range(n):
        cy, cx = h / 2 + 20 * np.sin(i / 5 + seed), w / 2 + 30 * np.cos(i / 7 + seed)
        blob = 120 * np.exp(-((yy - cy) ** 2 + (xx - cx) ** 2) / 200.0)
        out.append(np.clip(bg + blob[..., None], 0, 255).astype(np.uint8))
    return out


def _grids(frames) -> np.ndarray:
    return np.array([frame_grid(f) for f in frames])


def _fp(frames) -> ContentFingerprint:
    log = ContentLog()
    for f in frames:
        log.add(f)
    return log.fingerprint()


def test_frame_grid_is_relative_to_the_frame():
    f = _scene(1, 3)[0]
    g = frame_grid(f)
    assert g.shape == (16, 16)
    half = f.reshape(48, 2, 64, 2, 3).mean(axis=(1, 3))  # a 0.5x copy (area average)
    assert np.abs(frame_grid(half.astype(np.uint8)) - g).max() < 1.0
    assert np.allclose(frame_grid(np.full((33, 50), 77, np.uint8)), 77)  # fractional cells
    with pytest.raises(ValueError):
        frame_grid(np.zeros((8, 8, 3), np.uint8))
    with pytest.raises(TypeError):
        frame_grid([[1, 2]])  # type: ignore[arg-type]


def test_segments_and_the_signed_encoding_round_trip():
    fp = _fp(_scene(21, 1))
    assert (fp.frames, fp.segment_frames, fp.segments) == (21, 8, 3) and fp.bounds(2) == (16, 21)
    back = ContentFingerprint.from_body(fp.as_body())
    assert back.frames == 21 and np.array_equal(back.grids, fp.grids)
    body = fp.as_body()
    body["segments"] = 4
    with pytest.raises(ValueError):
        ContentFingerprint.from_body(body)


def test_long_recordings_merge_segments(monkeypatch):
    monkeypatch.setattr(content, "MAX_SEGMENTS", 4)
    monkeypatch.setattr(content, "_LIVE_SEGMENTS", 6)
    frames = _scene(70, 2)
    fp = _fp(frames)
    # 70 frames: 9 segments of 8 > 6 while recording -> 16 per segment (5) -> > 4 at signing -> 32 per segment
    assert fp.segment_frames == 32 and fp.segments == 3 and fp.frames == 70
    g = _grids(frames)
    assert np.abs(fp.grids[1].astype(float) - g[32:64].mean(0)).max() <= 0.5 + 1e-9
    assert np.abs(fp.grids[2].astype(float) - g[64:].mean(0)).max() <= 0.5 + 1e-9


def test_genuine_copies_match():
    frames = _scene(40, 4)
    fp = _fp(frames)
    g = _grids(frames)
    r = match_content(fp, g)
    assert r.matched and r.whole and r.offset == 0 and r.segments_failed == 0 and r.worst_max < 1.0  # rounding to grey levels
    rng = np.random.default_rng(0)
    noisy = g + rng.normal(0, 0.7, g.shape)  # codec noise on the cell means
    assert match_content(fp, noisy).matched
    assert match_content(fp, g * 0.9 + 12).matched  # levels changed (TV/PC range, brightness)
    ex = match_content(fp, g[13:35])  # an excerpt, found without a hint
    assert ex.matched and not ex.whole and ex.offset == 13 and ex.edge_frames == 3 + 3
    assert match_content(fp, g[13:35], hints=(13,)).offset == 13


def test_forgeries_do_not_match():
    frames = _scene(40, 4)
    fp = _fp(frames)
    g = _grids(frames)
    other = _grids(_scene(40, 5))
    r = match_content(fp, other)
    assert not r.matched and r.segments_failed == r.segments_checked
    spliced = g.copy()
    spliced[16:24] = other[16:24]
    r = match_content(fp, spliced)
    assert not r.matched and r.segments_failed == 1 and r.offset == 0
    moved = g.copy()  # one region changed by 12 grey levels in one segment (a small edit)
    moved[8:16, 4:6, 4:6] += 12
    assert not match_content(fp, moved).matched
    r = match_content(fp, np.concatenate([g, other[:3]]))
    assert not r.matched and "did not write" in r.reason
    assert not match_content(fp, np.zeros((0, 16, 16))).matched


def test_truncated_or_bomb_data_is_refused():
    import base64
    import zlib

    body = _fp(_scene(9, 6)).as_body()
    body["data"] = base64.b64encode(zlib.compress(bytes(10 << 20))).decode()
    with pytest.raises(ValueError, match="wrong length"):
        ContentFingerprint.from_body(body)
    body["data"] = "not base64!"
    with pytest.raises(ValueError, match="base64"):
        ContentFingerprint.from_body(body)
