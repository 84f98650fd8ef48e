"""The development data recipe: where ``../shared/data`` is, who is in which clip, the person split.

FaceLink fits its expression basis, calibrates INT8 models, trains and evaluates on real
talking-head clips gathered in ``../shared/data`` (never copied into the repository).
Clips of one person must not straddle the train/evaluation split, so every clip is
mapped to a person here.  The map is written by hand from the manifest's notes.
"""

from __future__ import annotations

import csv
import os
from dataclasses import dataclass
from pathlib import Path

__all__ = ["Clip", "EVAL_PERSONS", "data_root", "real_clips", "split_clips"]

#: person id for each clip of ``subsets/video_real.txt`` (same person, same id)
PERSONS: dict[str, str] = {
    "AliaksandrSiarohin__first-order-model/00.mp4": "obama",
    "AliaksandrSiarohin__first-order-model/04.mp4": "trump",
    "AliaksandrSiarohin__first-order-model/08.mp4": "fom_actor08",
    "AliaksandrSiarohin__first-order-model/10.mp4": "dicaprio",
    "FuxiVirtualHuman__styletalk/KristiNoem.mp4": "noem",
    "FuxiVirtualHuman__styletalk/Obama_clip1.mp4": "obama",
    "FuxiVirtualHuman__styletalk/Obama_clip2.mp4": "obama",
    "FuxiVirtualHuman__styletalk/Obama_clip3.mp4": "obama",
    "FuxiVirtualHuman__styletalk/andrew_clip_1.mp4": "andrew_ng",
    "FuxiVirtualHuman__styletalk/andrew_clip_2.mp4": "andrew_ng",
    "FuxiVirtualHuman__styletalk/feifeili_clip1.mp4": "feifei_li",
    "FuxiVirtualHuman__styletalk/feifeili_clip2_short.mp4": "feifei_li",
    "FuxiVirtualHuman__styletalk/feifeili_clip3.mp4": "feifei_li",
    "FuxiVirtualHuman__styletalk/furious_talk1_clip2.mp4": "furious1",
    "FuxiVirtualHuman__styletalk/furious_talk2_clip3.mp4": "furious2",
    "FuxiVirtualHuman__styletalk/furious_talk2_clip6.mp4": "furious2",
    "FuxiVirtualHuman__styletalk/happyenglish_clip2.mp4": "happyenglish",
    "FuxiVirtualHuman__styletalk/nice_clip1.mp4": "rosen",
    "FuxiVirtualHuman__styletalk/reagan_clip1.mp4": "reagan",
    "FuxiVirtualHuman__styletalk/sad_emotion_clip1.mp4": "sad_actor",
    "FuxiVirtualHuman__styletalk/sadfather_clip1.mp4": "sadfather",
    "FuxiVirtualHuman__styletalk/sadgirl_clip1.mp4": "sadgirl",
    "FuxiVirtualHuman__styletalk/spata_clip1.mp4": "spata",
    "FuxiVirtualHuman__styletalk/surprisegirl_clip2.mp4": "surprisegirl",
    "FuxiVirtualHuman__styletalk/trump_clip1.mp4": "trump",
    "FuxiVirtualHuman__styletalk/vscodehappy_clip1.mp4": "vscodehappy",
    "Hangz-nju-cuhk__Talking-Face_PC-AVS/00002.mp4": "aldridge",
    "Hangz-nju-cuhk__Talking-Face_PC-AVS/00010.mp4": "damon",
    "Hangz-nju-cuhk__Talking-Face_PC-AVS/00015.mp4": "christie",
    "Hangz-nju-cuhk__Talking-Face_PC-AVS/00086.mp4": "oliver",
    "Hangz-nju-cuhk__Talking-Face_PC-AVS/00098.mp4": "beckham",
    "Hangz-nju-cuhk__Talking-Face_PC-AVS/00373.mp4": "adams",
    "Hangz-nju-cuhk__Talking-Face_PC-AVS/00473.mp4": "stewart",
    "Hangz-nju-cuhk__Talking-Face_PC-AVS/517600055.mp4": "aldridge",
    "Hangz-nju-cuhk__Talking-Face_PC-AVS/620900105.mp4": "farah",
    "Hangz-nju-cuhk__Talking-Face_PC-AVS/681100216.mp4": "harris",
    "Hangz-nju-cuhk__Talking-Face_PC-AVS/731200067.mp4": "bearded_731",
    "Hangz-nju-cuhk__Talking-Face_PC-AVS/741400104.mp4": "downey",
    "Hangz-nju-cuhk__Talking-Face_PC-AVS/741400163.mp4": "downey",
    "Hangz-nju-cuhk__Talking-Face_PC-AVS/796100172.mp4": "tv_man_796",
    "OpenTalker__DPE/d.mp4": "dpe_d",
    "OpenTalker__DPE/s.mp4": "dpe_s",
    "OpenTalker__SadTalker/WDA_AlexandriaOcasioCortez_000.mp4": "aoc",
    "OpenTalker__SadTalker/WDA_KatieHill_000.mp4": "hill",
    "OpenTalker__video-retalking/1.mp4": "retalk1",
    "OpenTalker__video-retalking/2.mp4": "retalk2",
    "OpenTalker__video-retalking/3.mp4": "aoc",
    "OpenTalker__video-retalking/4.mp4": "retalk4",
    "OpenTalker__video-retalking/5.mp4": "retalk5",
    "Weizhi-Zhong__IP_LAP/129.mp4": "iplap129",
    "Zejun-Yang__AniPortrait/pose_ref_video.mp4": "may",
    "ajay-sainy__Wav2Lip-GFPGAN/kim_7s_raw.mp4": "kim",
    "ali-vilab__dreamtalk/M030_front_happy_level3_001.mp4": "mead_m030",
    "ali-vilab__dreamtalk/M030_front_neutral_level1_001.mp4": "mead_m030",
    "ali-vilab__dreamtalk/M030_front_surprised_level3_001.mp4": "mead_m030",
    "ali-vilab__dreamtalk/W009_front_happy_level3_001.mp4": "mead_w009",
    "ali-vilab__dreamtalk/W009_front_neutral_level1_001.mp4": "mead_w009",
    "ali-vilab__dreamtalk/W009_front_surprised_level3_001.mp4": "mead_w009",
    "ali-vilab__dreamtalk/W011_front_happy_level3_001.mp4": "mead_w011",
    "ali-vilab__dreamtalk/W011_front_neutral_level1_001.mp4": "mead_w011",
    "ali-vilab__dreamtalk/W011_front_surprised_level3_001.mp4": "mead_w011",
    "bytedance__LatentSync/demo1_video.mp4": "latentsync1",
    "bytedance__LatentSync/demo2_video.mp4": "latentsync2",
    "bytedance__LatentSync/demo3_video.mp4": "latentsync3",
    "bytedance__X-Portrait/driving_video.mp4": "xportrait",
    "filby89__spectre/0Fi83BHQsMA_00002.mp4": "lrs3_0fi",
    "filby89__spectre/M003_level_1_disgusted_015.mp4": "mead_m003",
    "filby89__spectre/M026_level_3_disgusted_018.mp4": "mead_m026",
    "filby89__spectre/M030_level_3_angry_016.mp4": "mead_m030",
    "filby89__spectre/OzA6jRYjVQs_00004.mp4": "lrs3_oza",
    "filby89__spectre/PbgB2TaYhio_00007.mp4": "lrs3_pbg",
    "filby89__spectre/QoT0S2vu9m4_00002.mp4": "lrs3_qot",
    "filby89__spectre/W023_level_2_surprised_010.mp4": "mead_w023",
    "filby89__spectre/W036_level_3_happy_007.mp4": "mead_w036",
    "filby89__spectre/W040_level_3_happy_029.mp4": "mead_w040",
    "harlanhong__ACTalker/video.mp4": "actalker",
    "harlanhong__CVPR2022-DaGAN/driving.mp4": "dagan",
    # EAMM's MEAD clips: fear and surprised show one woman, sad shows M030; the
    # others are not identified in the notes and are kept as their own persons
    "jixinya__EAMM/contempt.mp4": "eamm_contempt",
    "jixinya__EAMM/disgusted.mp4": "eamm_disgusted",
    "jixinya__EAMM/fear.mp4": "eamm_fear_surprised",
    "jixinya__EAMM/happy.mp4": "eamm_happy",
    "jixinya__EAMM/sad.mp4": "mead_m030",
    "jixinya__EAMM/surprised.mp4": "eamm_fear_surprised",
    "tanshuai0219__EDTalk/expression_source.mp4": "happyenglish",
    "tanshuai0219__EDTalk/mouth_source.mp4": "klobuchar",
    "tanshuai0219__EDTalk/pose_source1.mp4": "aoc",
    "tanshuai0219__EDTalk/pose_source2.mp4": "lieu",
    "tanshuai0219__EDTalk/uncrop_Obama.mp4": "obama",
    "tencent-ailab__V-Express/RD_Radio10_0_clip_0.mp4": "rd_radio10",
    "tencent-ailab__V-Express/test_samples_short_case_AOC_gt.mp4": "aoc",
    "yerfor__MimicTalk/German_20s.mp4": "german_anchor",
    "yoyo-nb__Thin-Plate-Spline-Motion-Model/driving.mp4": "jackie_chan",
}

#: persons held out of every fit and training run; all evaluation numbers are on them.
#: Chosen to cover both sexes, crops (256/224/512/1080p wide/portrait), MEAD and in-the-wild.
EVAL_PERSONS: frozenset[str] = frozenset(
    {
        "obama", "feifei_li", "furious2", "adams", "downey", "aoc", "mead_w009",
        "mead_m003", "latentsync2", "dagan", "eamm_fear_surprised", "jackie_chan",
        "lrs3_pbg", "retalk4", "german_anchor", "dpe_d",
    }
)  # fmt: skip


@dataclass(frozen=True)
class Clip:
    """One real clip of the development data."""

    path: Path
    rel: str
    person: str
    width: int
    height: int
    fps: float
    frames: int


def data_root() -> Path | None:
    """``$FACELINK_DATA`` or ``../shared/data`` beside the checkout, if it exists."""
    env = os.environ.get("FACELINK_DATA")
    candidates = [Path(env)] if env else []
    here = Path(__file__).resolve()
    candidates += [p / "shared" / "data" for p in here.parents[:5]]
    candidates.append(Path.cwd().parent / "shared" / "data")
    for c in candidates:
        if (c / "manifest.tsv").is_file():
            return c
    return None


def real_clips(root: Path | None = None) -> list[Clip]:
    """The clips of ``subsets/video_real.txt`` with their person ids (empty without the data)."""
    root = root or data_root()
    if root is None:
        return []
    meta = {r["path"]: r for r in csv.DictReader(open(root / "manifest.tsv", newline=""), delimiter="\t")}
    out = []
    for line in (root / "subsets" / "video_real.txt").read_text().splitlines():
        rel = line.strip()
        if not rel:
            continue
        m = meta[rel]
        out.append(
            Clip(root / rel, rel, PERSONS.get(rel, rel), int(m["width"]), int(m["height"]), float(m["fps"]), int(m["frames"]))
        )
    return out


def split_clips(clips: list[Clip]) -> tuple[list[Clip], list[Clip]]:
    """(train, eval) by person: no person appears on both sides."""
    train = [c for c in clips if c.person not in EVAL_PERSONS]
    evals = [c for c in clips if c.person in EVAL_PERSONS]
    return train, evals
