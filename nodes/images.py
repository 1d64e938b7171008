"""Seed-model input images: EMG images, wavelet-packet (WP) images and "long exposure" RMS images.

- ``emg_image`` (Chen & Luo): each sliding window of an envelope stream, ``frames x channels``,
  min-max normalised over the whole image (the seed), log-compressed, or raw.
- ``wp_image``: the same EMG image stacked with a WP image of the same size (model A's input).
  ``tree15`` (default): per channel, the 15-sample window padded to 16 and split by a full
  level-3 Haar packet tree; the 15 node energies (root, level 1, 2, 3 in frequency order) form
  the 15 rows. ``framewise``: row t is the energy of one level-2 Haar node over the causal
  16-sample sub-window ending at frame t (zeros before the stream start).
- ``long_exposure`` (LE-ConvMN): each window of an RMS frame stream, laid out
  ``electrodes x frames`` so that electrode layout and time stay together.

Every image node emits one row per window: ``(n, planes, frames, channels)`` for the
classification images and ``(n, electrodes, frames)`` for exposures, ``start`` = window index.
The pure functions below are the offline definitions; the nodes reuse them on the windows
``emgflow.streaming.SlidingWindows`` cuts, so online equals offline.
"""

from __future__ import annotations

import numpy as np

from emgflow.errors import ParamError
from emgflow.params import Param
from emgflow.streaming import TrailingWindows, WindowedInput, WindowedNode, sliding_windows

NORMS = ("minmax", "log", "none")
LOG_FLOOR = 0.01
"""``log`` images are ``ln(x + LOG_FLOOR)``: envelopes vary multiplicatively between repetitions."""
WP_MODES = ("tree15", "framewise")
WP_BANDS = ("aa", "ad", "da", "dd")
"""Level-2 Haar packet nodes by path (a = low-pass, d = high-pass), as pywt names them."""
_SQRT_HALF = np.sqrt(0.5)


def minmax(images: np.ndarray) -> np.ndarray:
    """Scale each image (all axes but the first) to [0, 1]; a constant image becomes all zeros."""
    axes = tuple(range(1, images.ndim))
    lo = images.min(axis=axes, keepdims=True)
    span = images.max(axis=axes, keepdims=True) - lo
    return np.divide(images - lo, span, out=np.zeros_like(images), where=span > 0)


def emg_image(windows: np.ndarray, norm: str = "minmax") -> np.ndarray:
    """EMG images from windows ``(n, frames, channels)``: ``(n, 1, frames, channels)`` float32.

    ``norm``: ``minmax`` scales each image to [0, 1]; ``log`` takes ``ln(x + LOG_FLOOR)`` of an
    envelope (never negative); ``none`` keeps the values.
    """
    images = np.asarray(windows, dtype=np.float32)[:, None]
    if norm == "minmax":
        return minmax(images)
    if norm == "log":
        return np.log(np.maximum(images, 0) + np.float32(LOG_FLOOR))
    return images


def _haar_split(x: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """One orthonormal Haar analysis step along the last axis (even length): (approx, detail)."""
    even, odd = x[..., 0::2], x[..., 1::2]
    return (even + odd) * _SQRT_HALF, (even - odd) * _SQRT_HALF


def haar_packet_energies(x: np.ndarray, levels: int = 3) -> np.ndarray:
    """Energies of every node of a full Haar packet tree along the last axis.

    Returns ``(..., 2**(levels+1) - 1)``: the root, then each level in pywt's ``'freq'`` order.
    The last axis must be a multiple of ``2**levels`` long. Signs of detail coefficients may
    differ from pywt's, which leaves every energy unchanged.
    """
    level = [np.asarray(x, dtype=np.float64)]
    energies = [np.sum(level[0] ** 2, axis=-1)]
    for _ in range(levels):
        nxt = []
        for i, node in enumerate(level):
            a, d = _haar_split(node)
            nxt += [a, d] if i % 2 == 0 else [d, a]  # frequency (Gray-code) order
        level = nxt
        energies += [np.sum(node ** 2, axis=-1) for node in level]
    return np.stack(energies, axis=-1)


def wp_tree15(windows: np.ndarray) -> np.ndarray:
    """The "tree15" WP image of 15-frame windows ``(n, 15, channels)``: ``(n, 15, channels)``.

    Row r is log1p of the energy of packet node r (root, 2 level-1, 4 level-2, 8 level-3
    nodes) of the channel's window, symmetric-padded to 16 samples.
    """
    if windows.shape[1] != 15:
        raise ValueError(f"tree15 WP images need 15-frame windows, got {windows.shape[1]}")
    padded = np.pad(np.asarray(windows, dtype=np.float64), ((0, 0), (0, 1), (0, 0)), mode="symmetric")
    energies = haar_packet_energies(np.moveaxis(padded, 1, -1))  # (n, channels, 15)
    return np.log1p(np.moveaxis(energies, -1, 1)).astype(np.float32)


def band_energy(subwindows: np.ndarray, band: str) -> np.ndarray:
    """Energy of one Haar packet node (path such as ``"ad"``) of ``(n, 16, channels)`` sub-windows."""
    node = np.moveaxis(np.asarray(subwindows, dtype=np.float64), 1, -1)
    for step in band:
        a, d = _haar_split(node)
        node = a if step == "a" else d
    return np.sum(node ** 2, axis=-1)


class BandEnergy:
    """Per-sample causal WP band energy: row t uses the 16 samples ending at t (zeros before start).

    Stateful across chunks; ``BandEnergy(band).push(x)`` on a whole recording is the offline form.
    """

    span = 16

    def __init__(self, band: str) -> None:
        if band not in WP_BANDS:
            raise ValueError(f"band must be one of {WP_BANDS}, got {band!r}")
        self.band = band
        self._windows = TrailingWindows(self.span)

    def push(self, x: np.ndarray) -> np.ndarray:
        """log1p band energies, one row per input row: ``(len(x), channels)``."""
        return np.log1p(band_energy(self._windows.push(x), self.band))


def wp_image(windows: np.ndarray, mode: str = "tree15", norm: str = "minmax",
             energy_windows: np.ndarray | None = None) -> np.ndarray:
    """Model A's input: EMG image and WP image stacked, ``(n, 2, frames, channels)`` float32.

    ``tree15`` computes the WP image from ``windows``; ``framewise`` takes the windows of the
    ``BandEnergy`` stream (``energy_windows``, same window indices).
    """
    if mode == "tree15":
        wp = wp_tree15(windows)
    elif energy_windows is None:
        raise ValueError("framewise WP images need energy_windows (windows of a BandEnergy stream)")
    else:
        wp = np.asarray(energy_windows, dtype=np.float32)
    wp = wp[:, None].astype(np.float32)
    return np.concatenate([emg_image(windows, norm), minmax(wp) if norm == "minmax" else wp], axis=1)  # WP: log1p already


def wp_images_offline(x: np.ndarray, window: int, step: int, mode: str = "tree15", band: str = "ad",
                      norm: str = "minmax") -> np.ndarray:
    """``wp_image`` over a whole recording ``(samples, channels)``: what the node emits in total."""
    energy = BandEnergy(band).push(x) if mode == "framewise" else None
    energy_windows = None if energy is None else sliding_windows(energy, window, step)
    return wp_image(sliding_windows(x, window, step), mode, norm, energy_windows)


def long_exposure(windows: np.ndarray, norm: str = "none") -> np.ndarray:
    """Long-exposure images from windows of RMS frames ``(n, frames, electrodes)``: ``(n, electrodes, frames)``.

    ``norm="log"`` takes ``ln(x + LOG_FLOOR)``, compressing heavy-tailed RMS (the LE-ConvMN lab
    used a mu-law). On DB5 it helped frame-by-frame models and hurt the stateful ones, so the
    default keeps raw RMS (``bench/results/training.md``).
    """
    images = np.ascontiguousarray(np.swapaxes(np.asarray(windows, dtype=np.float32), 1, 2))
    return np.log(np.maximum(images, 0) + np.float32(LOG_FLOOR)) if norm == "log" else images


class EmgImage(WindowedNode):
    """EMG images (Chen & Luo): one ``(1, frames, channels)`` image per sliding window of an envelope."""

    kind = "emg_image"
    window = Param(int, 15, ge=1, unit="samples", help="image height: frames (samples) per window")
    step = Param(int, 15, ge=1, unit="samples", help="hop between consecutive images")
    norm = Param(str, "minmax", choices=NORMS,
                 help="per-image min-max to [0, 1], log of the envelope (ln(x + 0.01)), or raw values")

    def out_row_values(self, window: int, channels: int) -> int:
        return window * channels

    def reduce(self, windows: np.ndarray) -> np.ndarray:
        return emg_image(windows, self.norm)


class WpImage(WindowedNode):
    """Model A input: the EMG image stacked with a same-size wavelet-packet image, ``(2, frames, channels)``."""

    kind = "wp_image"
    window = Param(int, 15, ge=1, unit="samples", help="image height: frames (samples) per window")
    step = Param(int, 15, ge=1, unit="samples", help="hop between consecutive images")
    norm = Param(str, "minmax", choices=NORMS,
                 help="per-image min-max of each plane to [0, 1], log of the EMG plane (the WP plane is "
                      "log1p energies already), or raw values")
    mode = Param(str, "tree15", choices=WP_MODES,
                 help="tree15: 15 packet-node energies per channel (needs window 15); "
                      "framewise: one level-2 node's energy over the 16 samples ending at each frame")
    band = Param(str, "ad", choices=WP_BANDS, help="level-2 Haar packet node used by framewise mode")

    def check(self) -> None:
        if self.mode == "tree15" and self.window != 15:
            raise ParamError("window", f"tree15 WP images have 15 rows, so window must be 15 (got {self.window}); "
                                       "use mode: framewise for other sizes")

    def setup(self) -> None:
        super().setup()
        if self.mode == "framewise":
            # Window the samples and their band energies together so both planes share window indices.
            energy = BandEnergy(self.band)
            self.windowed = WindowedInput(self, "in", lambda x: np.concatenate([x, energy.push(x)], axis=1))

    def out_row_values(self, window: int, channels: int) -> int:
        return 2 * window * channels  # two planes

    def reduce(self, windows: np.ndarray) -> np.ndarray:
        if self.mode != "framewise":
            return wp_image(windows, self.mode, self.norm)
        c = windows.shape[2] // 2
        return wp_image(windows[..., :c], self.mode, self.norm, energy_windows=windows[..., c:])


class LongExposure(WindowedNode):
    """LE-ConvMN input: each window of an RMS frame stream as an ``electrodes x frames`` image."""

    kind = "long_exposure"
    window = Param(int, 20, ge=1, unit="frames", help="exposure length: RMS frames per image")
    step = Param(int, 1, ge=1, unit="frames", help="hop between exposures (one model output per exposure)")
    norm = Param(str, "none", choices=("none", "log"), help="raw RMS, or its log (ln(x + 0.01))")

    def out_row_values(self, window: int, channels: int) -> int:
        return window * channels

    def reduce(self, windows: np.ndarray) -> np.ndarray:
        return long_exposure(windows, self.norm)
