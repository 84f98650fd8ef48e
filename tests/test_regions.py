"""Region references (bitstream version 3): the sender's open-mouth crop, chosen, packed,
verified, parsed and drawn by the generator."""

from __future__ import annotations

import dataclasses
import io

import numpy as np
import pytest
from PIL import Image, ImageDraw

from facelink import bitstream as bs
from facelink.codec import QUALITY_PRESETS, Reference, StreamDecoder, StreamEncoder
from facelink.codec._regions import MIN_MOUTH_OPENING, SETTLE_FRAMES, RegionPicker, mouth_opening, parse_region
from facelink.errors import InvalidPacket
from facelink.face._topology import LIPS_INNER
from facelink.generator import Generator
from facelink.keypoints import canonicalize, default_basis
from facelink.security import StreamVerifier, TrustStore, generate_identity, seal_packets, signer_extension

from test_generator import draw_face, mask_of, posed  # noqa: E402

#: the colour painted inside the sender's open mouth (a tongue nothing else could produce)
INTERIOR = (40, 170, 90)


def _mouth(amount: float, yaw: float = 0.0) -> np.ndarray:
    """Mean-face landmarks with the mouth opened by ``amount`` std of the first mode."""
    b = default_basis()
    return posed(80.0, (128.0, 120.0), yaw=yaw, shape=b.mean + amount * b.std[0] * b.modes[0])


def _frame(lm: np.ndarray) -> np.ndarray:
    img = Image.fromarray(draw_face(256, 256, lm))
    ImageDraw.Draw(img).polygon([(float(x), float(y)) for x, y in lm[list(LIPS_INNER), :2]], fill=INTERIOR)
    return np.asarray(img)


def _opening(lm: np.ndarray) -> float:
    return mouth_opening(canonicalize(default_basis(), lm.astype(np.float64))[0])


@pytest.fixture(scope="module")
def closed():
    lm = _mouth(0.0)
    return draw_face(256, 256, lm), lm


def _picker(budget: int = 8000) -> RegionPicker:
    return RegionPicker(b"\x07" * 32, default_basis(), budget, _opening(_mouth(0.0)))


def _offer_all(picker: RegionPicker, amounts, yaw: float = 0.0) -> list[tuple[int, bytes]]:
    out = []
    for i, a in enumerate(amounts):
        lm = _mouth(a, yaw)
        pkt = picker.offer(i, _frame(lm), lm)
        if pkt is not None:
            out.append((i, pkt))
    return out


def test_the_mouth_opens_wide_enough_in_the_test_frames():
    assert _opening(_mouth(0.0)) < 0.1 < MIN_MOUTH_OPENING < _opening(_mouth(4.0))


def test_picker_sends_the_widest_opening_once_after_it_settles():
    amounts = [0.0] * 5 + [1.0, 2.5, 4.0, 3.0, 2.0] + [0.0] * 10
    sent = _offer_all(_picker(), amounts)
    assert len(sent) == 1
    i, pkt = sent[0]
    p = bs.parse_packet(pkt)
    assert isinstance(p, bs.RegionReference) and p.kind == bs.RegionKind.MOUTH_OPEN
    assert p.frame_seq == 7 and i == 7 + SETTLE_FRAMES  # the widest frame, sent once it has passed
    assert p.digest_prefix == b"\x07" * 8 and len(p.points) == len(LIPS_INNER)
    assert len(pkt) < 8000


def test_picker_replaces_the_crop_only_for_a_much_wider_mouth_and_within_budget():
    sent = _offer_all(_picker(), [2.5] * 8 + [2.7] * 8 + [5.0] * 8)
    assert [bs.parse_packet(p).frame_seq for _, p in sent] == [0, 16]
    assert _offer_all(_picker(budget=0), [4.0] * 10) == []
    assert _offer_all(_picker(budget=300), [4.0] * 10) == []  # no JPEG quality fits: none sent


def test_picker_ignores_turned_heads_and_lost_faces():
    assert _offer_all(_picker(), [4.0] * 10, yaw=0.5) == []
    p = _picker()
    assert p.offer(0, np.zeros((256, 256, 3), np.uint8), None) is None


def test_region_round_trip_keeps_the_crop_and_points():
    (_, pkt), = _offer_all(_picker(), [4.0] * 8)
    r = parse_region(bs.parse_packet(pkt))
    lm = _mouth(4.0)
    assert r.image.dtype == np.uint8 and r.image.ndim == 3
    assert abs(r.opening - _opening(lm)) < 1e-3
    inside = mask_of(*r.image.shape[:2], r.pixels)
    assert np.abs(r.image[inside].astype(float).mean(axis=0) - INTERIOR).max() < 25  # the crop shows the interior


def _with(pkt: bytes, **fields) -> bs.RegionReference:
    return dataclasses.replace(bs.parse_packet(pkt), **fields)


@pytest.mark.parametrize(
    ("change", "message"),
    [
        (lambda p: _with(p, points=_with(p).points[:5]), "mouth region reference has 5 points"),
        (lambda p: _with(p, image=b"not an image"), r"region reference image does not decode"),
        (lambda p: _with(p, image=_png()), "region reference image is PNG, not JPEG"),
        (lambda p: _with(p, image=_jpeg(600, 40)), r"region reference image is 600x40"),
        (lambda p: _with(p, points=tuple((30000, y, a, b) for _, y, a, b in _with(p).points)), "points fall outside"),
        (lambda p: _with(p, points=tuple((x, y, a, 0) for x, y, a, _ in _with(p).points)), "opening 0.00 out of range"),
    ],
)
def test_bad_region_references_are_refused_with_one_line(change, message):
    (_, pkt), = _offer_all(_picker(), [4.0] * 8)
    with pytest.raises(InvalidPacket, match=message) as e:
        parse_region(change(pkt))
    assert "\n" not in str(e.value)


def _png() -> bytes:
    buf = io.BytesIO()
    Image.new("RGB", (20, 20)).save(buf, format="PNG")
    return buf.getvalue()


def _jpeg(w: int, h: int) -> bytes:
    buf = io.BytesIO()
    Image.new("RGB", (w, h)).save(buf, format="JPEG")
    return buf.getvalue()


def test_unknown_region_kinds_are_ignored():
    (_, pkt), = _offer_all(_picker(), [4.0] * 8)
    assert parse_region(_with(pkt, kind=200)) is None


# ------------------------------------------------------------------ generator


def test_generator_draws_the_senders_own_mouth_interior(closed):
    img, lm = closed
    drv = _mouth(4.0)
    inner = mask_of(256, 256, drv[list(LIPS_INNER), :2])
    core = inner & np.roll(inner, 3, 0) & np.roll(inner, -3, 0) & np.roll(inner, 3, 1) & np.roll(inner, -3, 1)
    (_, pkt), = _offer_all(_picker(), [4.0] * 8)
    r = parse_region(bs.parse_packet(pkt))
    with Generator(img, lm) as gen:
        before = gen.render(drv)
        gen.set_mouth_interior(r.image, r.pixels, r.canonical)
        after = gen.render(drv)
        smaller = gen.render(_mouth(2.5))  # a narrower mouth still reads the crop (anchored at both lips)
    d_before = np.abs(before[core].astype(float).mean(axis=0) - INTERIOR).max()
    d_after = np.abs(after[core].astype(float).mean(axis=0) - INTERIOR).max()
    assert d_before > 60 and d_after < 30, (d_before, d_after)
    inner2 = mask_of(256, 256, _mouth(2.5)[list(LIPS_INNER), :2])
    assert np.abs(smaller[inner2].astype(float).mean(axis=0) - INTERIOR).max() < 45
    # the crop only changes the mouth's interior: away from the lips nothing moved
    lips = drv[list(LIPS_INNER), :2]
    (x0, y0), (x1, y1) = np.floor(lips.min(axis=0)).astype(int) - 8, np.ceil(lips.max(axis=0)).astype(int) + 8
    away = np.ones((256, 256), bool)
    away[y0:y1, x0:x1] = False
    assert np.array_equal(after[away], before[away])


def test_set_mouth_interior_validates_its_inputs(closed):
    img, lm = closed
    with Generator(img, lm) as gen:
        with pytest.raises(ValueError, match="uint8 RGB"):
            gen.set_mouth_interior(np.zeros((8, 8), np.uint8), np.zeros((20, 2)), np.zeros((20, 2)))
        with pytest.raises(ValueError, match=r"\(20, 2\)"):
            gen.set_mouth_interior(np.zeros((8, 8, 3), np.uint8), np.zeros((5, 2)), np.zeros((5, 2)))


# ------------------------------------------------------------------ stream: decoder, seals


#: the stream's mouth: opens wide at frames 2-3 (the crop, sent 5 frames later), wide again at 10-11
STREAM_MOUTH = [0.0, 2.0, 4.0, 4.0] + [1.0] * 6 + [4.0, 4.0]


def _stream(budget: int = 8000):
    lm0 = _mouth(0.0)
    ref = Reference.create(draw_face(256, 256, lm0), lm0)
    ident = generate_identity("alice")
    params = QUALITY_PRESETS["medium"].with_(region_bytes=budget)
    enc = StreamEncoder(ref, params, width=256, height=256, fps=30, session_id=b"\x02" * 16, created_us=1, extensions=(signer_extension(ident),))
    picker = RegionPicker(enc.header.reference_digest, default_basis(), budget, _opening(lm0))
    pkts = list(enc.start())
    for i, a in enumerate(STREAM_MOUTH):
        lm = _mouth(a)
        p, _ = enc.encode(i, i / 30, lm)
        pkts.append(p)
        extra = picker.offer(i, _frame(lm), lm)
        if extra is not None:
            pkts.append(extra)
    pkts.append(enc.end())
    return ident, pkts


def test_decoder_keeps_the_sessions_region_and_refuses_strangers():
    _, pkts = _stream()
    dec = StreamDecoder()
    regions = [p for p in pkts if p[3] == bs.PacketType.REGION_REFERENCE]
    assert len(regions) == 1 and pkts[0][2] == 3
    with pytest.raises(InvalidPacket, match="before the session header"):
        StreamDecoder().feed(regions[0])
    for p in pkts:
        dec.feed(p)
    assert dec.region_serial == 1 and bs.RegionKind.MOUTH_OPEN in dec.regions
    dec.feed(regions[0])  # repeated for a late joiner: nothing changes
    assert dec.region_serial == 1
    stranger = bytes(_with(regions[0], digest_prefix=b"\x00" * 8))
    with pytest.raises(InvalidPacket, match="another session"):
        dec.feed(stranger)


def test_seals_cover_region_references():
    ident, pkts = _stream()
    sealed = list(seal_packets(pkts, ident))
    trust = TrustStore(keys=(ident.public,))

    def intact(stream) -> bool:
        v = StreamVerifier(trust, from_start=True)
        for p in stream:
            v.feed(p)
        v.finish()
        return v.summary().intact

    assert intact(sealed)
    i = next(k for k, p in enumerate(sealed) if p[3] == bs.PacketType.REGION_REFERENCE)
    tampered = bytearray(sealed[i])
    tampered[-3] ^= 0x40  # one bit of the JPEG
    assert not intact(sealed[:i] + [bytes(tampered)] + sealed[i + 1 :])
    assert not intact(sealed[:i] + sealed[i + 1 :])  # a region dropped on the way is noticed too


def test_renderer_uses_the_region_for_the_senders_face_only():
    from facelink.receiver import FrameRenderer

    _, pkts = _stream()
    lm0 = _mouth(0.0)
    inner = mask_of(256, 256, _mouth(4.0)[list(LIPS_INNER), :2])
    away = {}
    for name, target in (("own", None), ("transfer", Reference.create(draw_face(256, 256, lm0, seed=3), lm0))):
        rnd = FrameRenderer(backend="onnxruntime", target=target)
        frames = [r for p in pkts if (r := rnd.push(p)) is not None]
        assert [f.index for f in frames] == list(range(len(STREAM_MOUTH)))
        # frame 2: wide open before the crop arrived; frame 10: wide open after
        away[name] = [np.abs(frames[k].image[inner].astype(float).mean(axis=0) - INTERIOR).max() for k in (2, 10)]
    assert away["own"][0] > 60 and away["own"][1] < 35, away
    assert away["transfer"][1] > 60, away  # a motion-transfer target keeps its own (synthetic) interior


# ------------------------------------------------------------------ fuzz: what arrives from the network

from hypothesis import given, settings  # noqa: E402
from hypothesis import strategies as st  # noqa: E402

from _support import FUZZ  # noqa: E402


@FUZZ
@given(
    image=st.one_of(st.binary(min_size=1, max_size=400), st.builds(lambda n, q: _jpeg(n, q), st.integers(4, 90), st.integers(4, 90))),
    points=st.lists(st.tuples(*[st.integers(-32768, 32767)] * 4), min_size=1, max_size=64).map(tuple),
    kind=st.integers(1, 255),
)
def test_fuzz_region_parsing_refuses_or_accepts_never_crashes(image, points, kind):
    pkt = bs.RegionReference(b"\x07" * 8, kind, 3, points, image)
    try:
        r = parse_region(bs.parse_packet(bytes(pkt)))
    except InvalidPacket as e:
        assert "\n" not in str(e)
        return
    if r is not None:
        assert r.image.ndim == 3 and r.pixels.shape == (20, 2) and np.isfinite(r.canonical).all()
