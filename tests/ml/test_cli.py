"""`emgflow train` and `emgflow eval` end to end on real recordings (one short epoch each)."""

from __future__ import annotations

import functools
import json

import pytest
from typer.testing import CliRunner

torch = pytest.importorskip("torch")

from emgflow.cli.app import app  # noqa: E402

runner = CliRunner()


def test_train_then_eval_a_classifier_writes_the_report(data_dir, tmp_path):
    model = tmp_path / "cnn.pt"
    res = runner.invoke(app, ["train", "--model", "cnn", "--dataset", "db1", "--subject", "4", "--epochs", "1",
                              "--train-step", "30", "--seed", "3", "--out", str(model)])
    assert res.exit_code == 0, res.output
    text = " ".join(res.output.split())  # rich wraps long lines
    assert "epoch 1/1 train loss" in text and "| validation loss" in text and "ETA" in text
    assert "refit: a fresh model on the training and validation repetitions for the 1 epochs" in text
    assert "refit epoch 1/1 train loss" in text
    assert "its own training windows" in text and "(dropout and noise off)" in text
    assert ("rectify() -> lowpass(cutoff=1.0, order=1) -> lowpass(cutoff=0.2, order=1, keep_input=True) -> "
            "emg_image(window=15, step=15, norm=log)"
            ) in " ".join(res.output.split())  # rich wraps long lines
    res = runner.invoke(app, ["eval", str(model), "--out", str(tmp_path / "report")])
    assert res.exit_code == 0, res.output
    files = {p.name for p in (tmp_path / "report").iterdir()}
    assert files == {"metrics.json", "loss.png", "confusion.png", "per_class.png", "errors.png"}
    doc = json.loads((tmp_path / "report" / "metrics.json").read_text())
    assert set(doc["baselines"]) == {"lda", "rf"} and doc["data"]["test_reps"] == [2, 5, 7]
    assert len(doc["metrics"]["per_class_acc"]) == 13 and doc["recipe"]["name"] == "improved"
    text = " ".join(res.output.split())
    assert "scoring db1 subject 4 (session S4_A1_E1) on its test repetitions 2, 5, 7: 1065 windows in 39 segments" \
        in text and "trained on subject(s) 4" in text
    assert "wrong windows: movement as rest" in text and "rest as movement" in text
    assert doc["baselines"]["rf"]["errors"]["edge_windows"] == doc["metrics"]["errors"]["edge_windows"] == 3


def test_train_from_yaml_then_eval_a_regressor(data_dir, tmp_path, monkeypatch):
    from emgflow.ml import baselines

    monkeypatch.setattr(baselines, "fit_spgp", functools.partial(baselines.fit_spgp, inducing=10, steps=5))
    cfg = tmp_path / "b.yaml"
    # empty keys mean the defaults (the recipe's lr, seed 0)
    cfg.write_text("model: lstm\ndataset: db5\nsubject: 3\nepochs: 1\nhidden: 8\nmembers: 2\nlr:\nseed:\n")
    model = tmp_path / "lstm.pt"
    res = runner.invoke(app, ["train", "--config", str(cfg), "--out", str(model)])
    assert res.exit_code == 0, res.output
    assert "CC" in res.output and "long_exposure" in res.output
    assert torch.load(model, weights_only=True)["config"]["members"] == 2  # a seed ensemble of two
    res = runner.invoke(app, ["eval", str(model), "--out", str(tmp_path / "rep")])
    assert res.exit_code == 0, res.output
    files = {p.name for p in (tmp_path / "rep").iterdir()}
    assert files == {"metrics.json", "loss.png", "trace.png", "per_joint.png"}
    doc = json.loads((tmp_path / "rep" / "metrics.json").read_text())
    assert set(doc["metrics"]["per_joint"]["index PIP"]) == {"cc", "rmse", "nrmse"}
    assert set(doc["baselines"]) == {"ridge", "spgp"} and "spgp" in res.output
    res = runner.invoke(app, ["train", "--model", "lstm", "--dataset", "db5", "--subject", "1", "--hidden", "8",
                              "--init", str(model), "--out", str(tmp_path / "adapted.pt")])
    assert res.exit_code == 2 and "members: checkpoint 2, this run None" in res.output  # an ensemble's weights


def test_bad_options_are_clear_errors(tmp_path):
    res = runner.invoke(app, ["train", "--model", "cnn", "--dataset", "db9", "--subject", "1", "--out", "x.pt"])
    assert res.exit_code == 2 and "unknown dataset 'db9'" in res.output
    res = runner.invoke(app, ["train", "--model", "cnn", "--dataset", "db1", "--subject", "5", "--out", "x.pt"])
    assert res.exit_code == 2 and "db1 has no subject '5'" in res.output
    res = runner.invoke(app, ["train", "--model", "cnn", "--dataset", "grip", "--subject", "v8", "--out", "x.pt"])
    assert res.exit_code == 2 and "no class labels" in res.output
    res = runner.invoke(app, ["train", "--model", "cnn", "--dataset", "db1", "--subject", "1", "--members", "0",
                              "--out", "x.pt"])
    assert res.exit_code == 2 and "members must be >= 1" in res.output
    res = runner.invoke(app, ["train", "--model", "cnn", "--dataset", "db1", "--subject", "1", "--attention",
                              "attentional", "--out", "x.pt"])
    assert res.exit_code == 2 and "attention applies to lstm_cnn" in res.output
    res = runner.invoke(app, ["train", "--model", "lstm_cnn", "--dataset", "db1", "--subject", "1", "--attention",
                              "mean", "--out", "x.pt"])
    assert res.exit_code == 2 and "attention must be one of context, attentional" in res.output
    res = runner.invoke(app, ["eval", str(tmp_path / "missing.pt"), "--out", str(tmp_path / "r")])
    assert res.exit_code == 2 and "checkpoint not found" in res.output
