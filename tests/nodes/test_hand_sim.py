"""hand_sim: real decisions drive the simulated hand; it writes frames, a sheet, a GIF and a trace."""

from __future__ import annotations

import numpy as np
import pytest
import scipy.io as sio
from PIL import Image

from emgflow import Msg
from emgflow.data import data_path
from emgflow.nodes.hand import MODELS
from emgflow.nodes.hand_sim import HandFigure, HandSim, Snapshot, hand_geometry

from .fake_clock import MS, FakeClock


def gesture_snippets() -> np.ndarray:
    """Real 20 Hz Ninapro DB5 S1 decisions: 1.5 s around the first onset of five movements."""
    y = sio.loadmat(data_path("ninapro-db5-e1/s1/S1_E1_A1.mat"))["restimulus"].ravel()[::10]
    parts = [y[i - 5:i + 25] for i in (int(np.argmax(y == c)) for c in (1, 3, 7, 11, 12))]
    return np.concatenate(parts).astype(np.int64)


def test_sim_renders_real_decisions(tmp_path):
    labels = gesture_snippets()
    clock = FakeClock()
    node = HandSim(out_dir=str(tmp_path), fps=5, model="glove10")
    node.clock = clock
    node.sleep = lambda s: clock.advance(s * 1000)
    node.setup()
    start = clock()
    for k, cls in enumerate(labels):
        if not 60 <= k < 70:  # 500 ms without decisions: the watchdog must show on the trace
            node.process(Msg(data=np.array([[cls]]), start=k, t_acq=clock() - 20 * MS))
        for _ in range(5):
            clock.advance(10)
            node.tick()
    node.finish()
    node.teardown()
    seconds = (clock() - start) / 1e9
    frames = sorted(tmp_path.glob("frame_*.png"))
    submitted = len(frames) + node.counters["frames_skipped"]
    # Never more than fps frames a second; how many of those the renderer drew depends on its speed.
    assert 1 <= len(frames) and submitted <= seconds * 5 + 2
    assert [f.name for f in frames] == [f"frame_{i:05d}.png" for i in range(len(frames))]
    for name, size in (("sheet.png", None), ("trace.png", None), ("hand.gif", None), (frames[-1].name, (960, 540))):
        with Image.open(tmp_path / name) as im:
            assert size is None or im.size == size
            pixels = np.asarray(im.convert("L"), dtype=float)
            assert pixels.std() > 10, f"{name} looks blank"
    with Image.open(tmp_path / "hand.gif") as gif:
        assert gif.n_frames == len(frames)
    assert node.counters["safe_events"] == 2  # the silent gap and the end of stream
    assert node.counters.get("render_errors", 0) == 0


def test_frames_show_the_pose():
    """Different poses give different pictures, and the drawn fingers fold as they flex."""
    model = MODELS["brunel"]
    fig = HandFigure(model)
    images = []
    for grip in ("open", "power"):
        pose = model.grip(grip)
        fig.draw(Snapshot(0.0, pose, pose, False, grip, None, ""))
        fig.fig.canvas.draw()
        images.append(np.asarray(fig.fig.canvas.buffer_rgba(), dtype=float))
    assert np.abs(images[0] - images[1]).mean() > 1.0
    open_tips = {f: segs[-1][0] for f, segs in hand_geometry(model, model.grip("open")).items()}
    fist = hand_geometry(model, model.grip("power"))
    for finger in ("index", "middle", "ring", "little"):
        assert fist[finger][-1][1]  # the fingertip segment folds over the palm
        assert fist[finger][-1][0][1, 1] < open_tips[finger][1, 1] - 1.0  # and ends far lower


@pytest.mark.parametrize("name", sorted(MODELS))
def test_every_model_draws(name):
    model = MODELS[name]
    fig = HandFigure(model)
    fig.draw(Snapshot(1.0, model.grip("tripod"), model.grip("power"), True, "safe", None, "watchdog"))
    fig.fig.canvas.draw()
