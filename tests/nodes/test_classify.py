"""The classify node: replaying a recording through the checkpoint's pipeline gives evaluate()'s predictions."""

from __future__ import annotations

import numpy as np
import pytest

torch = pytest.importorskip("torch")

from emgflow.errors import ParamError  # noqa: E402
from emgflow.message import Msg, StreamInfo  # noqa: E402
from emgflow.ml import checkpoint  # noqa: E402
from emgflow.ml.datasets import build_nodes, dataset, load_subject, run_pipeline  # noqa: E402
from emgflow.ml.evaluate import evaluate  # noqa: E402
from emgflow.ml.config import TrainConfig  # noqa: E402
from emgflow.ml.train import train_model  # noqa: E402
from emgflow.testing import chunk, concat, run_node  # noqa: E402
from emgflow.nodes.classify import Classify  # noqa: E402
from emgflow.nodes.replay import Replay  # noqa: E402


@pytest.fixture(scope="module")
def model_file(data_dir, tmp_path_factory):
    """A tiny LSTM-CNN (WP images of 1 Hz + 0.2 Hz envelopes, 20 columns) trained for two epochs on DB1 S3."""
    torch.set_num_threads(1)
    ckpt = train_model(TrainConfig(dataset="db1", subject=3, model="lstm_cnn", epochs=2, train_step=15, hidden=8,
                                   device="cpu"))
    return checkpoint.save(ckpt, tmp_path_factory.mktemp("ckpt") / "db1.pt")


def test_replayed_recording_gives_the_evaluation_predictions(model_file, data_dir):
    ckpt = checkpoint.load(model_file)
    subj = load_subject(dataset("db1"), 3)
    offline = evaluate(ckpt, subj)
    # Online: replay -> rectify -> lowpass -> lowpass -> wp_image -> classify, each node fed message by message.
    msgs = run_node(Replay(path=str(subj.recordings[0].source), speed=0, chunk=37))["emg"]
    for node in build_nodes(ckpt["pipeline"]) + [Classify(model=str(model_file))]:
        outs = run_node(node, msgs)
        msgs = outs["out"]
    online = concat(msgs)[:, 0]
    assert len(online) == len(subj.recordings[0].emg) // 15
    rows = np.asarray(offline["rows"]["index"])  # the test windows evaluate() scored, by window index
    np.testing.assert_array_equal(online[rows], offline["predictions"])
    assert (online[rows] == np.asarray(offline["rows"]["label"])).mean() == pytest.approx(offline["test_acc"])


@pytest.mark.parametrize("engine", ["onnx", "torchscript"])
def test_compiled_engines_give_eager_pytorch_probabilities(model_file, data_dir, engine):
    """ONNX Runtime and TorchScript serving give plain PyTorch's probabilities, chunk by chunk."""
    ckpt = checkpoint.load(model_file)
    emg = load_subject(dataset("db1"), 3).recordings[0].emg[:6000]
    rows, _, rate = run_pipeline(ckpt["pipeline"], emg, 100.0)
    msgs = chunk(rows.astype(np.float32), np.random.default_rng(1), rate=rate, max_size=9)
    got = concat(run_node(Classify(model=str(model_file), engine=engine), msgs)["proba"])
    want = concat(run_node(Classify(model=str(model_file), engine="eager"), msgs)["proba"])
    assert got.shape == (len(rows), 13) and got.dtype == np.float32
    np.testing.assert_allclose(got, want, rtol=1e-5, atol=1e-6)


def test_describe_checks_the_stream_against_the_checkpoint(model_file):
    node = Classify(model=str(model_file))
    infos = node.describe({"in": StreamInfo(rate=100 / 15, channels=20)})
    assert infos["proba"].channels == 13 and infos["proba"].names[0] == "rest"
    with pytest.raises(ParamError, match="16 channels, the model expects 20") as err:
        node.describe({"in": StreamInfo(rate=200 / 30, channels=16)})
    assert err.value.param == "model"
    with pytest.raises(ParamError, match="Hz, the model expects"):
        node.describe({"in": StreamInfo(rate=200 / 15, channels=20)})


def test_wrong_rate_at_run_time_is_refused_and_malformed_rows_are_dropped(model_file):
    node = Classify(model=str(model_file))
    good = np.zeros((2, 2, 15, 20), dtype=np.float32)
    msgs = [Msg(good, rate=100 / 15), Msg(good[:, :, :14], rate=100 / 15, start=2),
            Msg(good[:, :, :, :18], rate=100 / 15, start=4), Msg(good, rate=100 / 15, start=6)]
    out = run_node(node, msgs)
    assert node.counters["in.malformed"] == 2
    assert [m.start for m in out["out"]] == [0, 6] and out["out"][0].data.shape == (2, 1)
    with pytest.raises(checkpoint.CheckpointError, match="13.3333 Hz"):
        run_node(Classify(model=str(model_file)), [Msg(good, rate=200 / 15)])


def test_an_engine_without_its_modules_is_a_param_error(model_file, monkeypatch):
    monkeypatch.setattr("importlib.util.find_spec", lambda name: None)
    with pytest.raises(ParamError, match="onnx needs onnxruntime, onnxscript") as err:
        Classify(model=str(model_file)).describe({"in": StreamInfo(rate=100 / 15, channels=20)})
    assert err.value.param == "engine"
    assert Classify(model=str(model_file), engine="torchscript").describe({"in": StreamInfo()})["out"].channels == 1


def test_missing_checkpoint_is_a_param_error(tmp_path):
    with pytest.raises(ParamError, match="checkpoint not found"):
        Classify(model=str(tmp_path / "none.pt")).describe({"in": StreamInfo()})
