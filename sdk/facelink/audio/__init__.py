"""Sound for FaceLink: Opus audio in the signed keypoint stream, in sync with the frames.

Pure-ish cores, driven by the pipeline layer:

* :mod:`PCM <facelink.audio._pcm>`: any rate / channel count to 48 kHz mono float32
  (:func:`resample`, :class:`Resampler`).
* :func:`read_audio_track`: a media file's audio (``AudioError`` -> encode the video alone,
  with a warning; ``None`` when there is no track).
* :class:`OpusEncoder` / :class:`OpusDecoder` (PyAV's libopus, 6-24 kbit/s; loss concealed
  with Opus's own PLC).
* :class:`AudioPacketizer` (sender: PCM + stream times -> ``AUDIO`` packets) and
  :class:`AudioDepacketizer` (receiver: packets in any order -> :class:`AudioChunk` s in
  play order, through the :class:`JitterBuffer`); :func:`assemble` and
  :func:`decode_audio` for files.  Muxing into MP4: :class:`facelink.io.VideoWriter`
  with ``audio_rate=`` and ``write_audio``.
* The clap test clip and A/V offset measurement (:func:`make_clap_clip`,
  :func:`measure_av_offset`), and the demo's speech (:func:`speech_track`).

Wire format: ``docs/bitstream.md`` (AUDIO packets, extension 4, version 3); seals:
``docs/security.md``; how to use it: ``docs/audio.md``.
"""

from __future__ import annotations

from ._clap import AvOffset, ClapClip, av_offset, find_click, find_flashes, make_clap_clip, measure_av_offset, write_clap_clip
from ._jitter import JitterBuffer, Slot
from ._mic import MIC_FORMATS, Microphone
from ._speaker import SPEAKER_FORMATS, Speaker
from ._opus import FRAME_MS, MAX_KBPS, MIN_KBPS, OpusDecoder, OpusEncoder, opus_available
from ._pcm import RATE, Resampler, resample, to_float32, to_mono
from ._speech import DEMO_TEXT, SpeechTrack, espeak_available, espeak_speech, speech_track, tone_speech
from ._stream import AudioChunk, AudioDepacketizer, AudioPacketizer, AudioStats, SessionSound, assemble, decode_audio, stream_samples
from ._track import AudioTrack, TrackCursor, read_audio_track

__all__ = [
    "AudioChunk",
    "AudioDepacketizer",
    "AudioPacketizer",
    "AudioStats",
    "AudioTrack",
    "AvOffset",
    "ClapClip",
    "DEMO_TEXT",
    "FRAME_MS",
    "JitterBuffer",
    "MAX_KBPS",
    "MIC_FORMATS",
    "Microphone",
    "MIN_KBPS",
    "OpusDecoder",
    "OpusEncoder",
    "RATE",
    "Resampler",
    "Slot",
    "SPEAKER_FORMATS",
    "SessionSound",
    "Speaker",
    "SpeechTrack",
    "TrackCursor",
    "assemble",
    "av_offset",
    "decode_audio",
    "espeak_available",
    "espeak_speech",
    "find_click",
    "find_flashes",
    "make_clap_clip",
    "measure_av_offset",
    "opus_available",
    "read_audio_track",
    "resample",
    "speech_track",
    "stream_samples",
    "to_float32",
    "to_mono",
    "tone_speech",
    "write_clap_clip",
]
