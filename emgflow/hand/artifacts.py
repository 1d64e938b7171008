"""End-of-run pictures of a simulated hand: joint trace, contact sheet and animated GIF.

matplotlib and pillow are imported inside the functions, by the nodes that draw.
"""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np

from .drawing import FINGER_COLORS
from .models import HandModel


def trace_png(path: Path, model: HandModel, t_s: np.ndarray, poses: np.ndarray, targets: np.ndarray,
              safe: np.ndarray) -> None:
    """Joint values (solid) and targets (dashed) over time, one panel per joint, safe periods shaded."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    n = len(model.joints)
    fig = Figure(figsize=(10, 1.1 * n + 1.2), dpi=100, facecolor="white")
    FigureCanvasAgg(fig)
    axes = fig.subplots(n, 1, sharex=True, squeeze=False)[:, 0]
    edges = np.flatnonzero(np.diff(np.r_[0, safe.astype(int), 0]))
    spans = [(t_s[a], t_s[min(b, len(t_s) - 1)]) for a, b in zip(edges[::2], edges[1::2])]
    spans = [(a, b) for a, b in spans if b > a]  # the instant at start-up is not a period
    for ax, j, k in zip(axes, model.joints, range(n)):
        color = FINGER_COLORS.get(j.fingers[0], "#444444")
        for a, b in spans:
            ax.axvspan(a, b, color="#d62728", alpha=0.12, linewidth=0)
        ax.plot(t_s, targets[:, k], "--", color="#777777", linewidth=0.9)
        ax.plot(t_s, poses[:, k], color=color, linewidth=1.6)
        ax.set_ylim(j.lo - 0.05 * (j.hi - j.lo), j.hi + 0.05 * (j.hi - j.lo))
        ax.set_ylabel(j.name, rotation=0, ha="right", va="center", fontsize=9)
        ax.tick_params(labelsize=8)
        ax.grid(alpha=0.3)
    axes[-1].set_xlabel("time (s)")
    fig.suptitle(f"hand_sim trace: {model.name} ({model.unit}); solid = pose sent, dashed = target, "
                 f"red = safe pose ({len(spans)} period{'s' if len(spans) != 1 else ''})", fontsize=11)
    fig.tight_layout()
    fig.savefig(path)


def contact_sheet(frames: list[Path], path: Path, count: int = 12, columns: int = 4, scale: float = 0.4) -> None:
    """Up to ``count`` frames, evenly spaced over the run, tiled into one PNG."""
    from PIL import Image

    picks = [frames[int(i)] for i in np.unique(np.linspace(0, len(frames) - 1, min(count, len(frames))).round())]
    tiles = []
    for p in picks:
        with Image.open(p) as im:
            tiles.append(im.convert("RGB").resize((int(im.width * scale), int(im.height * scale)), Image.LANCZOS))
    w, h = tiles[0].size
    rows = math.ceil(len(tiles) / columns)
    sheet = Image.new("RGB", (w * min(columns, len(tiles)), h * rows), "white")
    for i, tile in enumerate(tiles):
        sheet.paste(tile, ((i % columns) * w, (i // columns) * h))
    sheet.save(path)


def animated_gif(frames: list[Path], times_s: list[float], path: Path, max_frames: int = 150,
                 scale: float = 0.75, last_s: float = 1.0) -> None:
    """An animated GIF of the frames drawn at ``times_s`` (every k-th frame past ``max_frames``):
    each stays on screen until the next one's time, so the GIF plays in real time; the last one
    ``last_s``."""
    from PIL import Image

    step = max(1, math.ceil(len(frames) / max_frames))
    images = []
    for p in frames[::step]:
        with Image.open(p) as im:
            small = im.convert("RGB").resize((int(im.width * scale), int(im.height * scale)), Image.BILINEAR)
            images.append(small.quantize(colors=128, method=Image.Quantize.FASTOCTREE))
    shown = np.diff(np.r_[times_s[::step], times_s[-1] + last_s])
    durations = [max(20, int(round(1000 * s))) for s in shown]  # viewers slow down delays under 20 ms
    images[0].save(path, save_all=True, append_images=images[1:], duration=durations, loop=0)
