"""Calibration sources: videos and images, each with a person id and a train/eval side."""

from __future__ import annotations

import hashlib
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from ..errors import InputError

__all__ = ["FrameSequence", "Source", "gather_sources", "open_source", "sample_indices"]

VIDEO_SUFFIXES = frozenset({".mp4", ".mov", ".avi", ".mkv", ".webm", ".m4v"})
IMAGE_SUFFIXES = frozenset({".jpg", ".jpeg", ".png", ".bmp", ".webp"})


@dataclass(frozen=True)
class Source:
    """One clip or image: where it is, whose face it shows, and which side of the split it is on."""

    path: Path
    name: str
    person: str
    kind: str  # "video" or "image"
    split: str  # "train" or "eval"
    frames: int | None = None


@dataclass(frozen=True)
class FrameSequence:
    """Frames fed in order to one tracker: ``frames`` yields ``(rgb uint8 image, time in s)``."""

    name: str
    person: str
    split: str
    frames: Iterator[tuple[np.ndarray, float]]


def sample_indices(total: int | None, wanted: int, min_stride: int) -> list[int]:
    """``wanted`` frame indices spread evenly over ``total`` frames, at least ``min_stride`` apart."""
    if total is None or total <= 0:
        return [i * min_stride for i in range(wanted)]
    stride = max(min_stride, total // wanted)
    return [i for i in range(0, total, stride)][:wanted]


def _hash_eval(person: str, fraction: float) -> bool:
    h = int.from_bytes(hashlib.sha256(person.encode()).digest()[:8], "big")
    return h / 2.0**64 < fraction


def _data_root_sources(root: Path) -> list[Source]:
    from ..datasets import real_clips, split_clips

    clips = real_clips(root)
    train, evals = split_clips(clips)
    side = {c.rel: "eval" for c in evals} | {c.rel: "train" for c in train}
    return [Source(c.path, c.rel, c.person, "video", side[c.rel], c.frames) for c in clips]


def _files(path: Path) -> list[Path]:
    if path.is_file():
        return [path]
    return sorted(p for p in path.rglob("*") if p.is_file() and p.suffix.lower() in VIDEO_SUFFIXES | IMAGE_SUFFIXES)


def gather_sources(data: Sequence[str], eval_data: Sequence[str] = (), eval_fraction: float = 0.2) -> list[Source]:
    """Sources from ``--data`` paths (and explicit held-out ``--eval`` paths).

    A directory holding ``manifest.tsv`` and ``subsets/video_real.txt`` is FaceLink's development
    data: its real clips come with person ids and the fixed person split of
    :mod:`facelink.datasets`.  Other files (videos, images; directories are searched) count each
    file stem as one person; without ``eval_data`` a stable hash of the person id holds out
    ``eval_fraction`` of them.  Raises :class:`InputError` when a path is missing or a side is empty.
    """
    sources: list[Source] = []
    loose: list[Path] = []
    for raw in data:
        p = Path(raw).expanduser()
        if not p.exists():
            raise InputError(f"{p}: no such file or directory")
        if p.is_dir() and (p / "manifest.tsv").is_file() and (p / "subsets" / "video_real.txt").is_file():
            sources += _data_root_sources(p)
        else:
            files = _files(p)
            if not files:
                raise InputError(f"{p}: no videos or images found")
            loose += files
    explicit_eval: list[Path] = []
    for raw in eval_data:
        p = Path(raw).expanduser()
        if not p.exists():
            raise InputError(f"{p}: no such file or directory")
        files = _files(p)
        if not files:
            raise InputError(f"{p}: no videos or images found")
        explicit_eval += files
    for f in loose:
        kind = "image" if f.suffix.lower() in IMAGE_SUFFIXES else "video"
        person = f.stem
        split = "train" if explicit_eval else ("eval" if _hash_eval(person, eval_fraction) else "train")
        sources.append(Source(f, str(f), person, kind, split))
    for f in explicit_eval:
        kind = "image" if f.suffix.lower() in IMAGE_SUFFIXES else "video"
        sources.append(Source(f, str(f), f.stem, kind, "eval"))
    train_persons = {s.person for s in sources if s.split == "train"}
    eval_persons = {s.person for s in sources if s.split == "eval"}
    both = sorted(train_persons & eval_persons)
    if both:
        raise InputError(f"persons {both} appear on both sides of the split; pass their files only once")
    if not train_persons or not eval_persons:
        raise InputError(
            f"calibration needs train and held-out persons, found {len(train_persons)} and {len(eval_persons)}; "
            "pass more files or name the held-out ones with --eval"
        )
    return sources


def open_source(source: Source, wanted: int, min_stride: int) -> FrameSequence:
    """The sampled frames of ``source`` as a :class:`FrameSequence` (decoded lazily)."""
    from ..io import load_image, open_video

    if source.kind == "image":

        def one() -> Iterator[tuple[np.ndarray, float]]:
            yield load_image(str(source.path)), 0.0

        return FrameSequence(source.name, source.person, source.split, one())

    def frames() -> Iterator[tuple[np.ndarray, float]]:
        with open_video(str(source.path)) as video:
            total = source.frames if source.frames is not None else video.info.frames
            keep = set(sample_indices(total, wanted, min_stride))
            last = max(keep)
            for i, frame in enumerate(video):
                if i in keep:
                    yield frame.image, frame.time
                if i >= last:
                    break

    return FrameSequence(source.name, source.person, source.split, frames())
