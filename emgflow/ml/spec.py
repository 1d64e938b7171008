"""A dataset's description: where its subjects' recordings are and how its repetitions split.

Its own module so that the shipped datasets (``datasets``) and a user's dataset file (``datafile``)
build the same thing without importing each other.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable

from emgflow.recordings import Recording, load

from .discover import Subjects


@dataclass(frozen=True)
class DatasetSpec:
    """A dataset: how to find its subjects' recordings and how its repetitions split.

    ``discover()`` maps each subject id to its recording files, read from the files that exist
    (``discover``), so a recording added to the folder is a subject without a code change.
    ``test`` / ``val`` are repetition ids; training uses every other repetition (validation is
    carved from training repetitions). ``reader`` turns one file into a Recording with ``label``
    (and, where the dataset has them, ``repetition``) streams.
    """

    name: str
    discover: Callable[[], Subjects]
    test: tuple[int, ...]
    val: tuple[int, ...]
    classes: str | tuple[str, ...] | None = None
    """Class names in class order, or their ``class_names`` key; None: no labels (regression only)."""
    target: str | None = None
    """Stream regressed by model B (``glove``, ``force``) or None."""
    target_columns: tuple[int, ...] | None = None
    target_names: tuple[str, ...] = ()
    rest_segments_per_rep: int | None = None
    """Keep this many rest segments per repetition (Tsinganos' subsampling); None keeps all."""
    description: str = ""
    reader: Callable[[Path], Recording] = load

    @property
    def subjects(self) -> tuple[Any, ...]:
        return tuple(self.discover())

    def files(self, subject: Any) -> list[Path]:
        """One subject's recording files; an unknown subject is refused listing the ones that exist."""
        found = self.discover()
        if subject not in found:
            raise ValueError(f"{self.name} has no subject {subject!r}; subjects: {', '.join(map(str, found))}")
        return found[subject]
