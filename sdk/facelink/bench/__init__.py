"""Benchmarks: FaceLink against real video codecs (rate-quality), and the pipeline's speed.

>>> from facelink.bench import psnr, ssim, ms_ssim, bd_rate
>>> bd_rate([10, 20, 40], [30, 33, 36], [5, 10, 20], [30, 33, 36]).value   # half the rate
-0.5

The command line is ``facelink bench codec`` / ``facelink bench speed``; plots need the
``bench`` extra (matplotlib), everything else only the runtime dependencies.
"""

from ._codec import (
    DEFAULT_PEER_KBPS,
    FAST_PEER_KBPS,
    MAX_MKR,
    METRICS,
    ClipResult,
    CodecBenchConfig,
    Metric,
    PreparedClip,
    RunResult,
    compare_runs,
    facelink_points,
    metric_value,
    prepare_clip,
    run_clip,
    summarize,
)
from ._metrics import StructuralReference, gaussian_window, landmark_error, luma, ms_ssim, ms_ssim_scales, psnr, ssim
from ._peers import PEERS, PeerCodec, PeerRun, PeerSetting, available_peers, encode_decode, peer_settings
from ._rd import BDResult, RateAtQuality, bd_rate, efficient_front, pchip, rate_at_quality
from ._report import codec_markdown, contact_sheet, speed_markdown
from ._run import ClipSpec, default_clips, rerender_report, resolve_clips, run_codec_bench
from ._speed import WARMUP, peak_rss_mb, run_speed_bench

__all__ = [
    "BDResult",
    "ClipResult",
    "ClipSpec",
    "CodecBenchConfig",
    "DEFAULT_PEER_KBPS",
    "FAST_PEER_KBPS",
    "MAX_MKR",
    "METRICS",
    "Metric",
    "PEERS",
    "PeerCodec",
    "PeerRun",
    "PeerSetting",
    "PreparedClip",
    "RateAtQuality",
    "RunResult",
    "StructuralReference",
    "WARMUP",
    "available_peers",
    "bd_rate",
    "codec_markdown",
    "compare_runs",
    "contact_sheet",
    "default_clips",
    "efficient_front",
    "encode_decode",
    "facelink_points",
    "gaussian_window",
    "landmark_error",
    "luma",
    "metric_value",
    "ms_ssim",
    "ms_ssim_scales",
    "pchip",
    "peak_rss_mb",
    "peer_settings",
    "prepare_clip",
    "psnr",
    "rate_at_quality",
    "rerender_report",
    "resolve_clips",
    "run_clip",
    "run_codec_bench",
    "run_speed_bench",
    "speed_markdown",
    "ssim",
    "summarize",
]
