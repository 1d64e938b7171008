"""hand_sim and hand_view: real decisions drive the simulated hand; its poses, drawn by a view,
become frames, a sheet and a GIF; the hand itself writes the trace."""

from __future__ import annotations

import numpy as np
import pytest
import scipy.io as sio
from PIL import Image

from emgflow import Msg, ParamError, StreamInfo
from emgflow.data import data_path
from emgflow.hand.drawing import HandFigure, Snapshot, hand_geometry
from emgflow.hand.models import MODELS
from emgflow.nodes.hand_sim import HandSim
from emgflow.nodes.hand_view import HandView
from emgflow.testing import run_node

from .fake_clock import MS, FakeClock


def gesture_snippets() -> np.ndarray:
    """Real 20 Hz Ninapro DB5 S1 decisions: 1.5 s around the first onset of five movements."""
    y = sio.loadmat(data_path("ninapro-db5-e1/s1/S1_E1_A1.mat"))["restimulus"].ravel()[::10]
    parts = [y[i - 5:i + 25] for i in (int(np.argmax(y == c)) for c in (1, 3, 7, 11, 12))]
    return np.concatenate(parts).astype(np.int64)


def test_sim_and_view_render_real_decisions(tmp_path):
    labels = gesture_snippets()
    clock = FakeClock()
    hand = HandSim(out_dir=str(tmp_path), model="glove10")
    hand.clock = clock
    hand.sleep = lambda s: clock.advance(s * 1000)
    hand.setup()
    start, poses = clock(), []
    for k, cls in enumerate(labels):
        if not 60 <= k < 70:  # 500 ms without decisions: the watchdog must show on the trace
            poses.append(hand.process(Msg(data=np.array([[cls]]), start=k, t_acq=clock() - 20 * MS))["pose"])
        for _ in range(5):
            clock.advance(10)
            poses.append(hand.tick()["pose"])
    poses.append(hand.finish()["pose"])
    hand.teardown()
    assert hand.counters["safe_events"] == 2  # the silent gap and the end of stream
    assert poses[-1].meta["safe"] and poses[-1].meta["reason"] == "end of stream"

    view = HandView(out_dir=str(tmp_path), model="glove10", fps=5)
    run_node(view, poses)
    seconds = (clock() - start) / 1e9
    frames = sorted(tmp_path.glob("frame_*.png"))
    assert 3 <= len(frames) <= seconds * 5 + 2  # never more than fps frames a second, plus the last
    assert [f.name for f in frames] == [f"frame_{i:05d}.png" for i in range(len(frames))]
    for name, size in (("sheet.png", None), ("trace.png", None), ("hand.gif", None), (frames[-1].name, (960, 540))):
        with Image.open(tmp_path / name) as im:
            assert size is None or im.size == size
            pixels = np.asarray(im.convert("L"), dtype=float)
            assert pixels.std() > 10, f"{name} looks blank"
    shown = gif_durations(tmp_path / "hand.gif")
    assert len(shown) <= len(frames)  # Pillow merges identical neighbours (the settled last frame may be one)
    assert sum(shown) == pytest.approx(1000 * (view._frame_t[-1] + 1), abs=10 * len(shown))  # real time, + 1 s
    assert view.counters["frames"] == len(frames) and view.counters.get("render_errors", 0) == 0


def gif_durations(path) -> list[int]:
    """How long each frame of a GIF stays on screen, ms."""
    with Image.open(path) as gif:
        shown = []
        for i in range(gif.n_frames):
            gif.seek(i)
            shown.append(gif.info["duration"])
    return shown


def still_then_moving(model_name: str = "brunel") -> list[Msg]:
    """3 s of one held pose, then 0.5 s of a moving one, as hand_sim publishes them every 10 ms."""
    model = MODELS[model_name]
    rest, power = model.grip("rest"), model.grip("power")
    msgs = []
    for k in range(350):
        pose = rest if k < 300 else rest + (power - rest) * (k - 299) / 50
        meta = {"t_ns": 10_000 * MS + k * 10 * MS, "target": power.tolist() if k >= 300 else rest.tolist(),
                "safe": False, "gesture": "power" if k >= 300 else "rest", "class": 5 if k >= 300 else 0,
                "reason": "fresh command"}
        msgs.append(Msg(data=pose[None, :], start=k, meta=meta))
    return msgs


def test_view_draws_a_still_hand_at_still_fps(tmp_path):
    view = HandView(out_dir=str(tmp_path), fps=10, still_fps=1)
    run_node(view, still_then_moving())
    # still: 0, 1, 2 s; moving (3.00 .. 3.49 s): every 100 ms; the newest pose at the end
    expected = [0.0, 1.0, 2.0, 3.0, 3.1, 3.2, 3.3, 3.4, 3.49]
    np.testing.assert_allclose(view._frame_t, expected)
    assert len(list(tmp_path.glob("frame_*.png"))) == len(expected)
    assert gif_durations(tmp_path / "hand.gif") == [1000, 1000, 1000, 100, 100, 100, 100, 90, 1000]  # real time, the last frame 1 s


def test_view_counts_what_is_not_a_hand_sim_pose(tmp_path):
    good = still_then_moving()[:3]
    bad = [good[0].replace(meta={}, start=3), good[0].replace(data=np.zeros((1, 4)), start=4),
           good[0].replace(meta={**good[0].meta, "target": [0.5]}, start=5)]
    view = HandView(out_dir=str(tmp_path))
    run_node(view, good + bad)
    assert view.counters["in.malformed"] == 3 and view.counters["frames"] == 2  # the first and the newest good


def test_view_checks_the_model_against_the_stream():
    with pytest.raises(ParamError, match="10 columns"):
        HandView(model="brunel").describe({"in": StreamInfo(rate=0.0, channels=10)})
    with pytest.raises(ParamError, match="still_fps"):
        HandView(fps=2, still_fps=5)


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
