"""The node chains from a raw recording to a model's input (with the serving / test hop).

A checkpoint stores its chain, so a graph serves the model behind exactly the nodes it was trained
on; ``models.default_pipeline`` picks the chain of an architecture.
"""

from __future__ import annotations

from typing import Any, Protocol

from .spec import DatasetSpec


class Pipeline(Protocol):
    def __call__(self, spec: DatasetSpec, *, rate: float, paper: bool, wp_mode: str | None, frames: int | None,
                 step: int | None) -> list[dict[str, Any]]: ...


def envelope_images(spec: DatasetSpec, *, rate: float, paper: bool, wp_mode: str | None, frames: int | None,
                    step: int | None) -> list[dict[str, Any]]:
    """Classification: envelopes cut into ``frames``-high images (15 by default, hop 15:
    non-overlapping at test time), a wavelet-packet image beside each when ``wp_mode`` is given.

    DB1 envelopes get |x| and the seed's causal first-order low-pass at 1 Hz; our recipe adds a
    0.2 Hz low-pass of that and keeps both side by side (20 channels): the slow envelope holds the
    movement, the fast one its onset and end, which the slow one lags by ~1 s. No slower envelope:
    a 0.05 Hz pair scored higher on DB1's test repetitions only by remembering the previous
    repetitions of the same movement (Ninapro records them in a row); with the recording's
    movements spliced into a random order its gain turned into a loss (bench/results/training.md).
    Raw Myo EMG (200 Hz) becomes a 100 Hz RMS envelope (100 ms windows, hop 2, the A8 adaptation).
    Images are min-max scaled per image (seed) or log-compressed (ours).
    """
    if spec.name != "db1":
        pre: list[dict[str, Any]] = [{"type": "rms", "window": 20, "step": 2}]
    elif paper:
        pre = [{"type": "rectify"}, {"type": "lowpass", "cutoff": 1.0, "order": 1}]
    else:
        pre = [{"type": "rectify"}, {"type": "lowpass", "cutoff": 1.0, "order": 1},
               {"type": "lowpass", "cutoff": 0.2, "order": 1, "keep_input": True}]
    image = {"window": frames or 15, "step": step or 15, "norm": "minmax" if paper else "log"}
    if wp_mode is not None:
        return pre + [{"type": "wp_image", **image, "mode": wp_mode}]
    return pre + [{"type": "emg_image", **image}]


def exposures(spec: DatasetSpec, *, rate: float, paper: bool, wp_mode: str | None, frames: int | None,
              step: int | None) -> list[dict[str, Any]]:
    """Regression: RMS frames (200 ms, hop 50 ms) in ``frames``-long exposures (20 by default), one
    output per ``step`` frames (1 by default); the seed and our recipe cut the same exposures."""
    rms = {"type": "rms", "window": int(round(0.2 * rate)), "step": int(round(0.05 * rate))}
    return [rms, {"type": "long_exposure", "window": frames or 20, "step": step or 1}]


def with_highpass(spec: DatasetSpec, pipeline: list[dict[str, Any]], cutoff: float | None) -> list[dict[str, Any]]:
    """``pipeline`` behind a 4th-order causal high-pass at ``cutoff`` Hz (raw EMG: removes the offset
    and motion artefacts below it), so a graph serves the model behind the same filter."""
    if cutoff is None:
        return pipeline
    if spec.name == "db1":
        raise ValueError("--highpass applies to raw EMG; DB1 holds rectified envelopes")
    return [{"type": "highpass", "cutoff": float(cutoff), "order": 4}] + pipeline
