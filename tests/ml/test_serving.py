"""The regress node: stateful streaming equals the offline stateful pass; gaps reset the memory."""

from __future__ import annotations

import numpy as np
import pytest

torch = pytest.importorskip("torch")

from emgflow.errors import ParamError  # noqa: E402
from emgflow.message import StreamInfo  # noqa: E402
from emgflow.ml import checkpoint  # noqa: E402
from emgflow.ml.datasets import Windows, build_nodes, run_pipeline  # noqa: E402
from emgflow.ml.config import TrainConfig  # noqa: E402
from emgflow.ml.predict import predict_stream  # noqa: E402
from emgflow.ml.train import train_model  # noqa: E402
from emgflow.recordings import load  # noqa: E402
from emgflow.testing import chunk, concat, run_node  # noqa: E402
from emgflow.nodes.regress import Regress  # noqa: E402
from emgflow.nodes.replay import Replay  # noqa: E402


@pytest.fixture(scope="module")
def model_file(data_dir, tmp_path_factory):
    """A tiny LE-ConvMN (one 4-channel ConvLSTM layer + the 10-joint layer), one epoch on DB5 S1."""
    torch.set_num_threads(1)
    ckpt = train_model(TrainConfig(dataset="db5", subject=1, model="convlstm", epochs=1, hidden=[4], device="cpu"))
    return checkpoint.save(ckpt, tmp_path_factory.mktemp("ckpt") / "db5.pt")


def offline(ckpt: dict, rows: np.ndarray) -> np.ndarray:
    """The evaluation path: one stateful pass over consecutive rows, de-normalised."""
    n = len(rows)
    w = Windows(rows, np.zeros(n), np.zeros(n), np.zeros(n, int), np.arange(n))
    pred = predict_stream(checkpoint.model_from(ckpt), w, torch.device("cpu"))
    return pred * np.asarray(ckpt["target_std"]) + np.asarray(ckpt["target_mean"])


def test_replay_through_the_pipeline_equals_the_offline_pass(model_file, data_dir):
    ckpt = checkpoint.load(model_file)
    assert ckpt["config"]["layout"] == "channels"  # our default (the node rebuilds either layout from the config)
    path = data_dir / "ninapro-db5-e1/s1/S1_E1_A1.mat"
    msgs = run_node(Replay(path=str(path), speed=0, chunk=23, start_s=100.0, stop_s=160.0))["emg"]
    for node in build_nodes(ckpt["pipeline"]) + [Regress(model=str(model_file))]:
        msgs = run_node(node, msgs)["out"]
    online = concat(msgs)
    emg = load(path).emg[20000:32000]
    rows, _, rate = run_pipeline(ckpt["pipeline"], emg, 200.0)
    assert online.shape == (len(rows), 10) and msgs[0].rate == rate == 20.0
    np.testing.assert_allclose(online, offline(ckpt, rows), rtol=1e-4, atol=1e-3)


def test_a_gap_resets_the_state(model_file, data_dir):
    ckpt = checkpoint.load(model_file)
    emg = load(data_dir / "ninapro-db5-e1/s1/S1_E1_A1.mat").emg[20000:26000]
    rows, _, rate = run_pipeline(ckpt["pipeline"], emg, 200.0)
    msgs = chunk(rows, np.random.default_rng(0), rate=rate, max_size=12)
    lost = len(msgs) // 2
    node = Regress(model=str(model_file))
    out = run_node(node, msgs[:lost] + msgs[lost + 1:])["out"]
    after = msgs[lost + 1].start
    got = np.concatenate([m.data for m in out if m.start >= after])
    assert node.counters["state_reset"] == 1 and node.counters["in.gap"] == len(msgs[lost].data)
    np.testing.assert_allclose(got, offline(ckpt, rows[after:]), rtol=1e-4, atol=1e-3)
    before = np.concatenate([m.data for m in out if m.start < after])
    np.testing.assert_allclose(before, offline(ckpt, rows[:msgs[lost].start]), rtol=1e-4, atol=1e-3)


def test_regress_refuses_a_classifier_stream(model_file):
    node = Regress(model=str(model_file))
    assert node.describe({"in": StreamInfo(rate=20.0, channels=16)})["out"].names[0] == "thumb MCP"
    with pytest.raises(ParamError, match="8 channels, the model expects 16"):
        node.describe({"in": StreamInfo(rate=20.0, channels=8)})
