"""emgflow.ml.serving: every engine gives plain PyTorch's outputs for every architecture, state included."""

from __future__ import annotations

import warnings

import numpy as np
import pytest

torch = pytest.importorskip("torch")

from emgflow.ml.models import build, model_config  # noqa: E402
from emgflow.ml.serving import compile_net, missing_for  # noqa: E402

CLASSIFIERS = {
    "lstm_cnn": (model_config("lstm_cnn", n_outputs=5, channels=8, frames=15, planes=2, hidden=6), (2, 15, 8)),
    "lstm_cnn attentional": (model_config("lstm_cnn", n_outputs=5, channels=8, frames=15, planes=2, hidden=6,
                                          attention="attentional"), (2, 15, 8)),
    "cnn": (model_config("cnn", n_outputs=5, channels=8, frames=15, planes=1), (1, 15, 8)),
    "lstm_cnn x3": (model_config("lstm_cnn", n_outputs=5, channels=8, frames=15, planes=2, hidden=6, members=3),
                    (2, 15, 8)),
}
REGRESSORS = {
    "convlstm image": (model_config("convlstm", n_outputs=3, channels=6, frames=10, hidden=[4]), (6, 10)),
    "convlstm channels x3": (model_config("convlstm", n_outputs=3, channels=6, frames=10, hidden=[5, 4],
                                          layout="channels", members=3), (6, 10)),
    "convlstm channels dense": (model_config("convlstm", n_outputs=3, channels=6, frames=10, hidden=[5, 4],
                                             layout="channels", readout="dense"), (6, 10)),
    "lstm": (model_config("lstm", n_outputs=3, channels=6, frames=10, hidden=7, step=2), (6, 10)),
}
ENGINES = ["onnx", "torchscript"]


def compiled(table: dict, name: str, engine: str) -> tuple:
    """(eager net, its compiled runner, one-row inputs) for an architecture of ``table``."""
    torch.manual_seed(0)
    cfg, shape = table[name]
    net = build(cfg).eval()
    run = compile_net(net, shape, recurrent=table is REGRESSORS, engine=engine)
    return net, run, np.abs(np.random.default_rng(0).standard_normal((12, 1) + shape)).astype(np.float32)


@pytest.mark.parametrize("engine", ENGINES)
@pytest.mark.parametrize("name", sorted(CLASSIFIERS))
def test_classifier_engines_match_eager(name, engine):
    net, run, xs = compiled(CLASSIFIERS, name, engine)
    for x in xs[:5]:
        with torch.inference_mode():
            want = net(torch.from_numpy(x)).numpy()
        np.testing.assert_allclose(run(x), want, rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize("engine", ENGINES)
@pytest.mark.parametrize("name", sorted(REGRESSORS))
def test_recurrent_engines_carry_and_restart_the_state_like_eager(name, engine):
    net, run, xs = compiled(REGRESSORS, name, engine)
    state, eager_state = None, []
    for k, x in enumerate(xs):
        if k == 8:  # a reset: both start again from a zero state
            state, eager_state = None, []
        y, state = run(x, state)
        with torch.inference_mode():
            want, eager_state = net(torch.from_numpy(x), eager_state)
        np.testing.assert_allclose(y, want.numpy(), rtol=1e-5, atol=1e-5)


def test_unknown_or_missing_engine_is_refused(monkeypatch):
    net = build(CLASSIFIERS["cnn"][0]).eval()
    with pytest.raises(ValueError, match="unknown engine 'tensorrt'"):
        compile_net(net, (1, 15, 8), recurrent=False, engine="tensorrt")
    monkeypatch.setattr("importlib.util.find_spec", lambda name: None)
    assert missing_for("onnx") == ["onnxruntime", "onnxscript"] and missing_for("eager") == []
    with pytest.raises(ImportError, match="needs onnxruntime, onnxscript"):
        compile_net(net, (1, 15, 8), recurrent=False, engine="onnx")


@pytest.mark.parametrize("engine", ["onnx", "torchscript", "eager"])
def test_engines_take_read_only_rows_as_received_from_zmq(engine):
    net, run, xs = compiled(CLASSIFIERS, "cnn", engine)
    row = xs[0]
    row.setflags(write=False)
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # torch warns on a non-writable array it would share memory with
        got = run(row)
    with torch.inference_mode():
        np.testing.assert_allclose(got, net(torch.from_numpy(xs[0].copy())).numpy(), rtol=1e-5, atol=1e-6)
