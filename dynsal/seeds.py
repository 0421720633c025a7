"""Seeds of per-frame random draws, shared by evaluation (metric draws, baselines) and dataset building
(crops, observer subsets): a draw depends on what it is for, never on order, process or machine."""
from __future__ import annotations

import zlib

import numpy as np


def frame_seed(seed: int, video: str, frame: str, stream: int = 0) -> int:
    """A seed for one frame's random draws, fixed by (seed, video, frame, stream) alone.

    Independent of the order and process in which frames are handled, so `--jobs` and `--shard` never
    change a result. Evaluation: stream 0 drives the metrics' draws, stream 1 the chance baseline.
    """
    key = [int(seed), zlib.crc32(video.encode()), zlib.crc32(frame.encode()), int(stream)]
    return int(np.random.SeedSequence(key).generate_state(1)[0])
