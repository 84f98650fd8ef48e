"""Media I/O: bounded reference loading, video reading errors, writer timestamps."""

import numpy as np
import pytest
from PIL import Image

from facelink.errors import InputError
from facelink.io import MAX_REFERENCE_SIDE, VideoWriter, load_image, open_video


def test_huge_reference_is_downscaled_without_decoding_it_whole(tmp_path):
    big = tmp_path / "8k.jpg"
    Image.new("RGB", (7680, 4320), (120, 90, 60)).save(big, quality=80)
    img = load_image(str(big))
    assert img.dtype == np.uint8 and max(img.shape[:2]) == MAX_REFERENCE_SIDE
    assert img.shape[1] / img.shape[0] == pytest.approx(7680 / 4320, rel=0.01)


@pytest.mark.parametrize("content", [b"", b"GIF89a broken", b"\x89PNG\r\n\x1a\n" + b"\0" * 40])
def test_unreadable_images_are_input_errors(tmp_path, content):
    p = tmp_path / "x.png"
    p.write_bytes(content)
    with pytest.raises(InputError, match="not a readable image"):
        load_image(str(p))


def test_missing_image(tmp_path):
    with pytest.raises(InputError, match="no such file"):
        load_image(str(tmp_path / "nope.jpg"))


def test_writer_keeps_timestamps_and_pads_odd_sizes(tmp_path):
    path = tmp_path / "v.mp4"
    times = [0.0, 0.04, 0.1, 0.2, 0.5]
    with VideoWriter(str(path), 63, 47, 25) as w:
        for i, t in enumerate(times):
            w.write(np.full((47, 63, 3), 40 * i, np.uint8), t)
    frames = list(open_video(str(path)))
    assert len(frames) == len(times)
    assert np.allclose([f.time for f in frames], times, atol=1e-3)
    assert frames[0].image.shape == (48, 64, 3)


def test_background_writer_keeps_order_and_reports_errors(tmp_path):
    from facelink.io import BackgroundWriter, VideoWriter, open_video

    path = str(tmp_path / "bg.mp4")
    with BackgroundWriter(VideoWriter(path, 64, 48, 25), depth=2) as w:
        for i in range(20):
            w.write(np.full((48, 64, 3), 10 * i, np.uint8), i / 25)
    with open_video(path) as v:
        got = [(round(f.time * 25), int(f.image.mean())) for f in v]
    assert [t for t, _ in got] == list(range(20)) and all(abs(m - 10 * t) <= 3 for t, m in got)
    bad = BackgroundWriter(VideoWriter(str(tmp_path / "bad.mp4"), 64, 48, 25))
    bad.write(np.zeros((48, 64), np.uint8), 0.0)  # not RGB: fails on the writer's thread
    with pytest.raises(Exception):
        for i in range(1, 50):
            bad.write(np.zeros((48, 64, 3), np.uint8), i / 25)
        bad.close()
