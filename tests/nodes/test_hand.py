"""The hand models and the safety core shared by every hand output (emgflow/hand/).

Time is explicit: a fake ``now_ns`` clock is injected, so nothing here sleeps or times anything.
"""

from __future__ import annotations

import numpy as np
import pytest
import scipy.io as sio

from emgflow import Msg, ParamError, StreamInfo
from emgflow.data import data_path
from emgflow.hand.models import GESTURE_PRESETS, GRIPS, MODELS, resolve_gestures
from emgflow.hand.output import HandCommand, HandOutput
from emgflow.hand.safety import HandSafety

from .fake_clock import MS, FakeClock


class RecordingHand(HandOutput):
    """A hand output whose device is a list: every write is kept for inspection."""

    def open_device(self) -> None:
        self.written: list[HandCommand] = []

    def write(self, cmd: HandCommand) -> bool:
        self.written.append(cmd)
        return True


def make_node(clock: FakeClock, **params) -> RecordingHand:
    node = RecordingHand(**params)
    node.clock = clock
    node.sleep = lambda s: clock.advance(s * 1000)
    node.setup()
    return node


def ninapro_decisions(stride: int = 10) -> np.ndarray:
    """Real class labels (Ninapro DB5 S1 exercise 1, 200 Hz) taken every ``stride`` rows: a
    20 Hz decision stream with real gesture timing."""
    m = sio.loadmat(data_path("ninapro-db5-e1/s1/S1_E1_A1.mat"))
    return m["restimulus"].ravel()[::stride].astype(np.int64)


# --- models -------------------------------------------------------------------------------------

@pytest.mark.parametrize("name", sorted(MODELS))
def test_every_grip_and_preset_is_inside_the_limits(name):
    model = MODELS[name]
    assert model.safe in GRIPS
    for grip in GRIPS:
        pose = model.grip(grip)
        assert pose.shape == (len(model.joints),)
        assert np.all(pose >= model.lo) and np.all(pose <= model.hi), grip
    for preset in GESTURE_PRESETS:
        resolve_gestures(model, preset)


def test_glove10_joints_follow_the_regression_output_order():
    names = MODELS["glove10"].names
    assert names == ("thumb_mcp", "thumb_ip", "index_mcp", "index_pip", "middle_mcp", "middle_pip",
                     "ring_mcp", "ring_pip", "little_mcp", "little_pip")
    assert MODELS["ability"].names[-2:] == ("thumb_flexor", "thumb_rotator")
    assert MODELS["ability"].grip("power")[-1] < 0  # the rotator closes towards -100


def test_gesture_map_accepts_grips_poses_and_hold():
    model = MODELS["brunel"]
    gm = resolve_gestures(model, {0: "open", "1": [0.1, 0.2, 0.3, 0.4, 0.5], 2: "hold"})
    assert gm[0][0] == "open" and np.array_equal(gm[0][1], np.zeros(5))
    assert np.allclose(gm[1][1], [0.1, 0.2, 0.3, 0.4, 0.5])
    assert gm[2] == ("hold", None)
    for bad in ({0: "fist"}, {0: [0.5] * 4}, {0: [2.0] * 5}, {-1: "open"}, {"x": "open"}, "nope"):
        with pytest.raises(ParamError) as err:
            resolve_gestures(model, bad)
        assert err.value.param == "gestures"


# --- safety core --------------------------------------------------------------------------------

def test_commands_are_clamped_to_the_limits():
    clock = FakeClock()
    model = MODELS["ability"]
    s = HandSafety(model, clock=clock, max_speed=1e9)
    assert s.command(np.array([500, -20, 50, 99, 1e6, 40]), t_acq=clock() - 5 * MS)
    assert s.counters["clamped"] == 1
    assert np.array_equal(s.target, [100, 0, 50, 99, 100, 0])
    clock.advance(10)
    assert np.array_equal(s.step(), s.target)


def test_pose_never_leaves_the_limits_and_never_moves_faster_than_max_speed():
    clock = FakeClock()
    model = MODELS["glove10"]
    s = HandSafety(model, clock=clock)
    rng = np.random.default_rng(0)
    prev = s.pose.copy()
    for _ in range(500):
        dt_ms = float(rng.uniform(0.1, 30.0))
        clock.advance(dt_ms)
        s.command(rng.normal(50, 200, len(model.joints)), t_acq=clock() - MS)
        pose = s.step()
        assert np.all(pose >= model.lo) and np.all(pose <= model.hi)
        assert np.max(np.abs(pose - prev)) <= model.max_speed * dt_ms / 1000 + 1e-9
        prev = pose


def test_rate_limit_uses_real_elapsed_time_and_caps_a_stall():
    clock = FakeClock()
    model = MODELS["brunel"]  # 2.0 per second
    s = HandSafety(model, clock=clock, safe_pose=model.grip("open"), timeout_ms=10_000)
    s.command(np.ones(5), t_acq=clock())
    clock.advance(40)
    assert np.allclose(s.step(), 0.08)  # 40 ms at 2.0/s
    clock.advance(20)
    assert np.allclose(s.step(), 0.12)
    clock.advance(2000)  # the caller stalled: no jump, at most MAX_DT_S of motion
    s.command(np.ones(5), t_acq=clock())
    assert np.allclose(s.step(), 0.12 + 2.0 * HandSafety.MAX_DT_S)
    for _ in range(50):
        clock.advance(10)
        s.step()
    assert s.settled and np.array_equal(s.pose, np.ones(5))


def test_watchdog_goes_to_the_safe_pose_then_fresh_commands_resume():
    clock = FakeClock()
    model = MODELS["brunel"]
    s = HandSafety(model, clock=clock, timeout_ms=250)
    assert s.safe and not s.take_events()  # starts in the safe state, at the safe pose
    assert s.command(model.grip("power"), t_acq=clock())
    assert [e.kind for e in s.take_events()] == ["resume"] and not s.safe
    for _ in range(25):  # 250 ms of silence: still under control
        clock.advance(10)
        s.step()
    assert not s.safe
    clock.advance(10)
    s.step()
    events = s.take_events()
    assert s.safe and [e.kind for e in events] == ["safe"] and "watchdog" in events[0].reason
    assert s.counters["safe_events"] == 1
    assert np.array_equal(s.target, model.grip(model.safe))
    for _ in range(100):
        clock.advance(10)
        s.step()
    assert np.array_equal(s.pose, model.grip(model.safe))
    assert s.command(model.grip("open"), t_acq=clock())
    assert [e.kind for e in s.take_events()] == ["resume"] and s.counters["resumes"] == 2
    assert np.array_equal(s.target, model.grip("open"))


def test_hold_safe_freezes_where_the_hand_is():
    clock = FakeClock()
    model = MODELS["brunel"]
    s = HandSafety(model, clock=clock, hold_safe=True)
    s.command(np.ones(5), t_acq=clock())
    for _ in range(10):
        clock.advance(10)
        s.step()
    clock.advance(300)
    frozen = s.step()
    assert s.safe and np.array_equal(s.target, frozen)


def test_stale_and_unstamped_commands_are_never_executed():
    clock = FakeClock()
    model = MODELS["brunel"]
    s = HandSafety(model, clock=clock, max_age_ms=100)
    before = s.target.copy()
    assert not s.command(np.ones(5), t_acq=clock() - 101 * MS)
    assert not s.command(np.ones(5), t_acq=0)
    assert not s.command(np.ones(5), t_acq=clock() + MS)
    assert not s.command(np.full(5, np.nan), t_acq=clock())
    assert not s.command(np.ones(3), t_acq=clock())
    assert s.counters["stale"] == 1 and s.counters["no_t_acq"] == 1 and s.counters["future_t_acq"] == 1
    assert s.counters["nonfinite"] == 1 and s.counters["bad_shape"] == 1
    assert np.array_equal(s.target, before) and s.safe  # nothing executed, nothing resumed
    assert s.command(np.ones(5), t_acq=clock() - 99 * MS)
    unchecked = HandSafety(model, clock=clock, max_age_ms=None)
    assert unchecked.command(np.ones(5), t_acq=0)


def test_stale_commands_do_not_feed_the_watchdog():
    clock = FakeClock()
    s = HandSafety(MODELS["brunel"], clock=clock, timeout_ms=250, max_age_ms=50)
    s.command(np.ones(5), t_acq=clock())
    for _ in range(30):
        clock.advance(10)
        s.command(np.ones(5), t_acq=clock() - 60 * MS)  # a live but late upstream
        s.step()
    assert s.safe and s.counters["stale"] == 30


# --- the node -----------------------------------------------------------------------------------

def test_real_decision_stream_drives_the_hand_safely():
    """Real Ninapro labels as 20 Hz decisions (t_acq 30 ms before arrival), with a 600 ms gap
    where the upstream dies: every write is in range and within max speed, the gap trips the
    watchdog (event 1) and the next decision resumes control (event 0)."""
    labels = ninapro_decisions()[:1200]  # 60 s of decisions: rest, index flexion, index extension
    clock = FakeClock()
    node = make_node(clock, model="brunel", input="class", gestures="ninapro-e1")
    model = MODELS["brunel"]
    events, poses = [], []

    def keep(out: dict[str, Msg]) -> None:
        events.extend([out["event"]] if "event" in out else [])
        poses.extend([out["pose"]] if "pose" in out else [])

    for k, cls in enumerate(labels):
        if not 400 <= k < 412:  # decisions 400..411 never come: the upstream is silent 600 ms
            keep(node.process(Msg(data=np.array([[cls]]), start=k, t_acq=clock() - 30 * MS)))
        for _ in range(5):  # the runtime ticks every 10 ms between decisions
            clock.advance(10)
            keep(node.tick())
    written = np.array([c.pose for c in node.written])
    assert np.all(written >= model.lo) and np.all(written <= model.hi)
    times = np.array([c.t_ns for c in node.written]) / 1e9
    steps = np.abs(np.diff(written, axis=0)).max(axis=1)
    assert np.all(steps <= model.max_speed * np.maximum(np.diff(times), 0) + 1e-9)
    assert [int(e.data[0, 0]) for e in events] == [0, 1, 0]  # first resume, watchdog, resume
    assert events[1].meta["event"] == "safe" and "watchdog" in events[1].meta["reason"]
    assert node.counters["safe_events"] == 1
    assert node.counters["commands"] == len(labels) - 12
    assert [p.start for p in poses] == list(range(len(poses)))  # pose stream is contiguous
    expected = model.grip(GESTURE_PRESETS["ninapro-e1"][int(labels[-1])])
    assert np.array_equal(node.safety.target, expected)
    gestures_seen = {c.gesture for c in node.written}
    assert {"rest", "index_flex", "index_ext", "safe"} <= gestures_seen


def test_class_minus_one_holds_and_unknown_classes_are_refused():
    clock = FakeClock()
    node = make_node(clock, gestures={0: "open", 1: "power"})
    node.process(Msg(data=np.array([[1]]), t_acq=clock()))
    clock.advance(100)
    node.tick()
    target = node.safety.target.copy()
    node.process(Msg(data=np.array([[-1]]), start=1, t_acq=clock()))
    assert np.array_equal(node.safety.target, target) and node.written[-1].cls == -1
    node.process(Msg(data=np.array([[7]]), start=2, t_acq=clock()))
    assert node.counters["unknown_class"] == 1 and np.array_equal(node.safety.target, target)


def test_after_a_safe_period_hold_resumes_where_the_hand_is():
    clock = FakeClock()
    node = make_node(clock, gestures={0: "power"})
    node.process(Msg(data=np.array([[0]]), t_acq=clock()))
    for _ in range(40):
        clock.advance(10)
        node.tick()
    assert node.safety.safe
    clock.advance(10)
    node.process(Msg(data=np.array([[-1]]), start=1, t_acq=clock()))
    assert not node.safety.safe and np.array_equal(node.safety.target, node.safety.pose)


@pytest.mark.parametrize("data", [
    np.array([[0.5]]),  # not an integer class
    np.array([[np.nan]]),
    np.array([["power"]]),
    np.zeros((0, 1)),
    np.zeros((3, 2)),
    np.array([1, 2]),
])
def test_malformed_messages_are_counted_and_dropped(data):
    clock = FakeClock()
    node = make_node(clock)
    out = node.process(Msg(data=data, t_acq=clock()))
    assert node.counters["bad_msg"] == 1 and node.safety.safe
    assert "event" not in out


def test_joint_targets_from_real_glove_data_with_input_range():
    """DB5 glove sensors (the 10 regression joints) mapped onto glove10 degrees by input_range:
    every write is inside the limits, out-of-range glove values are clamped, not executed raw."""
    m = sio.loadmat(data_path("ninapro-db5-e1/s1/S1_E1_A1.mat"))
    glove = m["glove"][:, [1, 2, 4, 5, 7, 8, 11, 12, 15, 16]].astype(float)[::10][:600]
    lo, hi = np.percentile(glove, 5, axis=0), np.percentile(glove, 95, axis=0)
    clock = FakeClock()
    node = make_node(clock, model="glove10", input="joints",
                     input_range=[[float(a), float(b)] for a, b in zip(lo, hi)])
    model = MODELS["glove10"]
    for k, row in enumerate(glove):
        node.process(Msg(data=row[None, :], start=k, t_acq=clock() - 10 * MS))
        for _ in range(5):
            clock.advance(10)
            node.tick()
    written = np.array([c.pose for c in node.written])
    assert np.all(written >= model.lo) and np.all(written <= model.hi)
    assert node.counters["clamped"] > 0  # the 5..95 % range leaves real samples outside
    expected = np.clip(model.lo + (glove[-1] - lo) / (hi - lo) * (model.hi - model.lo), model.lo, model.hi)
    assert np.allclose(node.safety.target, expected)


def test_finish_moves_to_the_safe_pose_at_max_speed():
    clock = FakeClock()
    node = make_node(clock, model="brunel", gestures={0: "power"})
    node.process(Msg(data=np.array([[0]]), t_acq=clock()))
    for _ in range(20):
        clock.advance(10)
        node.tick()
    assert not node.safety.safe
    out = node.finish()
    model = MODELS["brunel"]
    assert np.array_equal(node.written[-1].pose, model.grip(model.safe)) and node.written[-1].safe
    assert out["event"].meta["reason"] == "end of stream"
    rows = out["pose"].data
    assert len(rows) > 1 and np.abs(np.diff(rows, axis=0)).max() <= model.max_speed * 0.010 + 1e-9


def test_param_errors_name_the_parameter():
    with pytest.raises(ParamError) as err:
        RecordingHand(safe_pose="fist")
    assert err.value.param == "safe_pose"
    with pytest.raises(ParamError) as err:
        RecordingHand(model="glove10", input="joints", input_range=[[0, 1]] * 3)
    assert err.value.param == "input_range"
    with pytest.raises(ParamError) as err:
        RecordingHand(model="ability", input="joints").describe({"in": StreamInfo(rate=20, channels=10)})
    assert err.value.param == "input"
    info = RecordingHand(model="ability", input="joints").describe({"in": StreamInfo(rate=20, channels=6)})
    assert info["pose"].channels == 6 and info["pose"].names == MODELS["ability"].names
