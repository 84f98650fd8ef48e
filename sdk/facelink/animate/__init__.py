"""Audio-driven talking heads: speech features, the audio -> motion model, natural head motion."""

from ._features import HOP_S, MEL_BINS, SAMPLE_RATE, log_mel, read_speech

__all__ = ["HOP_S", "MEL_BINS", "SAMPLE_RATE", "log_mel", "read_speech"]
