"""What a dataset build asks of a format's writer (`dynsal.data.build`): the LMDB and HDF5 writers implement it."""
from __future__ import annotations

from abc import ABC, abstractmethod
from pathlib import Path
from typing import Callable, Dict, List, Sequence, Tuple

from dynsal.data.dataset import PlanItem, Sample, VideoSource


class DatasetWriter(ABC):
    """Writes one split's Samples into files of its format inside the build's staging folder.

    A writer is made by a `WriterFactory` (staging folder, split, sample count) — on a fresh staging folder, or on
    one an interrupted build left, whose committed samples it keeps.
    """

    @abstractmethod
    def put(self, sample: Sample) -> None:
        """Write one sample (at its plan position); it is durable only after `commit`."""

    @abstractmethod
    def commit(self) -> None:
        """Make every sample put so far durable (the build then records their video as done)."""

    @abstractmethod
    def close(self) -> None:
        """Release the files (also after a failure); what was committed stays."""

    @abstractmethod
    def finish(self) -> None:
        """Once every video is in and the writer is closed: what completes the outputs (e.g. a seal, a list file)."""

    @abstractmethod
    def outputs(self) -> List[Tuple[Path, Path]]:
        """(path in the staging folder, final path next to it) of every output, moved in place at the end."""

    @abstractmethod
    def describe(self) -> Dict:
        """The format's entries of the dataset's manifest (shapes, files, ...)."""

    def damaged_videos(self, plan: Sequence[PlanItem], sources: Sequence[VideoSource]) -> List[str]:
        """Videos recorded as done whose samples an interruption damaged, to be written again (none by default)."""
        return []


#: (staging folder, split, sample count) -> the writer of that split
WriterFactory = Callable[[Path, str, int], DatasetWriter]
